import ArgumentParser
import Catalog
import TreeModel
import TreeTraining

struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Measure a model on labelled data: RMSE, MAE, MAPE, R² in dollars, range coverage and width, by price decile and by cut, color and clarity level.")

    @Argument(help: ArgumentHelp(stringLiteral: ModelArgument.help))
    var model: ModelArgument

    @OptionGroup var storeOptions: StoreOptions

    @Argument(help: "Labelled data (CSV with a price column). It is cleaned first.")
    var data: String

    @Option(parsing: .unconditional, help: "Coverage level of the price ranges.")
    var level: Double = ConformalIntervals.defaultLevel

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        guard level > 0 && level < 1 else { throw CLIError("--level must be between 0 and 1, got \(level)") }
        let ensemble = try loadModel(model, store: storeOptions)
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

/// Loads a model from a file or from the store.
func loadModel(_ argument: ModelArgument, store: StoreOptions) throws -> Ensemble {
    switch argument.source {
    case .file(let path):
        return try loadModel(path)
    case .store(let spec):
        let catalog = try store.catalog()
        return try oneLine("model \(spec)") { try catalog.ensemble(of: try catalog.manifest(for: spec)) }
    }
}
