import ArgumentParser
import DataCleaning
import Foundation
import TreeModel
import TreeTraining

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Clean a data set and train a calibrated price model on it.",
        discussion: """
            Without --data, trains on the bundled diamonds data. The data is cleaned first; \
            quarantined rows are left out (see `loupe clean`). Progress goes to stderr.
            """)

    @Option(name: .long, help: "Training data (CSV). Default: the bundled diamonds data.")
    var data: String?

    @Option(name: .shortAndLong, help: "Where to write the model.")
    var out: String = "model.loupe"

    @Option(help: "Also write the full training report (JSON) here.")
    var report: String?

    @Option(help: "Labelled data to evaluate the model on after training (CSV).")
    var test: String?

    @Option(help: "Coverage level of the price ranges in the evaluation.")
    var level: Double = ConformalIntervals.defaultLevel

    @Flag(help: "Print the summary as JSON on stdout.")
    var json = false

    @Flag(name: .shortAndLong, help: "No progress output.")
    var quiet = false

    @OptionGroup(title: "Training parameters")
    var training: TrainingOptions

    func run() throws {
        let configuration = try training.configuration()
        let source = DataSource(path: data)
        let cleaned = try source.clean()
        if !quiet { Terminal.note(cleaningSummary(cleaned.report, source: source.name)) }
        let trained = try train(cleaned.clean, configuration: configuration, quiet: quiet)
        try writeFile(out, trained.model.serialized())
        if let report { try writeFile(report, Array(trained.report.json().utf8)) }

        var evaluation: EvaluationReport?
        if let test {
            let testData = try DataSource.file(test).clean()
            if !quiet { Terminal.note(cleaningSummary(testData.report, source: test)) }
            evaluation = EvaluationReport(model: trained.model, table: testData.clean, level: level)
        }
        if json {
            print(TrainSummary(report: trained.report, model: out, test: evaluation).json())
        } else {
            print(describe(trained.report, model: out))
            if let evaluation {
                print("\ntest set (\(test!)):")
                print(evaluation.table())
            }
        }
    }
}

/// Trains with a live progress line (round, losses, ETA) unless quiet.
func train(_ data: DiamondTable, configuration: TrainingConfiguration, quiet: Bool) throws -> TrainedModel {
    let clock = ContinuousClock()
    var last = clock.now
    let trainer = Trainer(configuration: configuration)
    return try oneLine {
        try trainer.train(data) { p in
            guard !quiet else { return }
            let now = clock.now
            let isLast = p.round == p.totalRounds
            // A terminal line a few times a second; a log line every 100 rounds.
            let due = Terminal.stderrIsTTY ? now - last > .milliseconds(100) : p.round % 100 == 0
            guard due || isLast else { return }
            last = now
            var line = "round \(p.round)/\(p.totalRounds)  train rmse \(format(p.trainLoss, 4))"
            if let v = p.validationLoss { line += "  valid rmse \(format(v, 4)) (best round \(p.bestRound))" }
            line += "  elapsed \(Terminal.duration(p.elapsedSeconds))  eta \(Terminal.duration(p.etaSeconds))"
            Terminal.progress(line, final: isLast)
        }
    }
}

/// The human summary of a training run.
func describe(_ report: TrainingReport, model path: String) -> String {
    var lines: [String] = []
    let r = report.rows
    lines.append("model written to \(path)")
    lines.append("rows: \(r.train) train, \(r.validation) validation, \(r.calibration) calibration")
    lines.append("trees: \(report.bestRound) kept of \(report.roundsTrained) trained in \(Terminal.duration(report.seconds))")
    if let holdout = report.holdout {
        lines.append("holdout (calibration rows, never trained on):")
        lines.append(holdout.table().split(separator: "\n", omittingEmptySubsequences: false).prefix(2).joined(separator: "\n"))
    }
    let top = report.importance.sorted { $0.gainShare > $1.gainShare }.prefix(4)
    lines.append("most important: " + top.map { "\($0.feature) \(format($0.gainShare * 100, 1))%" }.joined(separator: ", "))
    return lines.joined(separator: "\n")
}

struct TrainSummary: Encodable {
    var report: TrainingReport
    var model: String
    var test: EvaluationReport?

    func json() -> String {
        var slim = self
        slim.report.trainLossCurve = []
        slim.report.validationLossCurve = []
        return encodeJSON(slim)
    }
}

/// Pretty, key-sorted JSON; non-finite numbers as strings.
func encodeJSON(_ value: some Encodable) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return String(decoding: (try? encoder.encode(value)) ?? Data(), as: UTF8.self)
}

/// Fixed decimals.
func format(_ value: Double, _ decimals: Int) -> String {
    String(format: "%.\(decimals)f", value)
}
