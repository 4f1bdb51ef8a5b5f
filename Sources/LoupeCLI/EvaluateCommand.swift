import ArgumentParser
import TreeModel
import TreeTraining

struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Measure a model on labelled data: RMSE, MAE, MAPE, R² in dollars, range coverage, by price decile.")

    @Argument(help: "The model file.")
    var model: String

    @Argument(help: "Labelled data (CSV with a price column). It is cleaned first.")
    var data: String

    @Option(help: "Coverage level of the price ranges.")
    var level: Double = ConformalIntervals.defaultLevel

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        guard level > 0 && level < 1 else { throw CLIError("--level must be between 0 and 1, got \(level)") }
        let ensemble = try loadModel(model)
        let cleaned = try DataSource.file(data).clean()
        Terminal.note(cleaningSummary(cleaned.report, source: data))
        guard cleaned.clean.count > 0 else { throw CLIError("\(data): no clean rows to evaluate on") }
        let report = EvaluationReport(model: ensemble, table: cleaned.clean, level: level)
        print(json ? encodeJSON(report) : report.table())
    }
}

/// Reads a model file, with a one-line error naming it.
func loadModel(_ path: String) throws -> Ensemble {
    let bytes = try readFile(path)
    return try oneLine(path) { try Ensemble(serialized: bytes) }
}
