import ArgumentParser
import ArtifactStore
import Catalog
import Reports
import DataCleaning
import Foundation
import LoupeUtilities
import TreeModel
import TreeTraining

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a calibrated price model on a dataset and register it in the store.",
        discussion: """
            Trains on the newest version of --dataset (on first use, the default dataset is \
            the bundled diamonds data). With --data, the file is cleaned and stored as a new \
            version of the dataset first; quarantined rows are left out (see `loupe clean`). \
            The model is registered as the next version of --model with its lineage; \
            --promote makes it the production version. Progress goes to stderr.
            """)

    @Option(name: .long, help: "Ingest this CSV as a new dataset version and train on it.")
    var data: String?

    @Option(help: "The dataset to train on.")
    var dataset: String = Catalog.defaultDataset

    @Option(help: "The model name to register the new version under.")
    var model: String = Catalog.defaultModel

    @Flag(help: "Promote the new version to production.")
    var promote = false

    @Option(name: .shortAndLong, help: "Also write the model to this file.")
    var out: String?

    @OptionGroup var storeOptions: StoreOptions

    @Option(help: "Also write the full training report (JSON) here.")
    var report: String?

    @Option(help: "Labelled data to evaluate the model on after training (CSV).")
    var test: String?

    @Option(parsing: .unconditional, help: "Coverage level of the price ranges in the evaluation.")
    var level: Double = ConformalIntervals.defaultLevel

    @Flag(help: "Print the summary as JSON on stdout.")
    var json = false

    @Flag(name: .shortAndLong, help: "No progress output.")
    var quiet = false

    @OptionGroup(title: "Training parameters")
    var training: TrainingOptions

    func run() throws {
        let configuration = try training.configuration()
        let catalog = try storeOptions.catalog()
        let datasetVersion: DatasetManifest
        if let data {
            let bytes = try readFile(data)
            let ingested = try oneLine(data) { try catalog.ingest(csv: bytes, dataset: dataset, source: data) }
            datasetVersion = ingested.manifest
            if !quiet { Terminal.note(cleaningSummary(ingested.cleaning.report, source: data)) }
        } else {
            datasetVersion = try oneLine("dataset \(dataset)") { try catalog.latestDataset(dataset) }
        }
        // Never the reference set's rows: retrains measure every version on them.
        let table = try oneLine("dataset \(dataset)") {
            try catalog.trainingTable(try catalog.table(of: datasetVersion), dataset: dataset)
        }
        if !quiet { Terminal.note("training on dataset \(dataset) v\(datasetVersion.version) (\(table.count) rows)") }
        let trained = try train(table, configuration: configuration, quiet: quiet)
        let clock = ContinuousClock()
        let writeStart = clock.now
        let registered = try oneLine("store \(storeOptions.location)") {
            try catalog.register(trained, name: model, dataset: datasetVersion.reference)
        }
        let writeTime = clock.now - writeStart
        // Read the version back through the store (re-hash, decompress, parse, validate): the
        // cost a server pays to load it, next to what training it cost.
        let readStart = clock.now
        let readBack = try oneLine("store \(storeOptions.location)") { try catalog.ensemble(of: registered) }
        let readTime = clock.now - readStart
        guard readBack == trained.model else { throw CLIError("model \(model) v\(registered.version) did not read back identical") }
        _ = try? ModelReportPage(catalog: catalog).page(for: registered)  // stored with the model
        if promote {
            _ = try oneLine("store \(storeOptions.location)") {
                try catalog.promote(name: model, version: registered.version, reason: "loupe train --promote")
            }
        }
        if let out { try writeFile(out, trained.model.serialized()) }
        if let report { try writeFile(report, Array(trained.report.json().utf8)) }
        let location = "model \(model) v\(registered.version)\(promote ? " (production)" : "") in \(storeOptions.location)"
            + (out.map { ", and \($0)" } ?? "")

        var evaluation: EvaluationReport?
        if let test {
            let testData = try DataSource.file(test).clean()
            if !quiet { Terminal.note(cleaningSummary(testData.report, source: test)) }
            evaluation = EvaluationReport(model: trained.model, table: testData.clean, level: level)
        }
        if !quiet {
            Terminal.note("store: model v\(registered.version) written in \(milliseconds(writeTime)), read back and "
                + "verified in \(milliseconds(readTime)) (training took \(Terminal.duration(trained.report.totalSeconds)))")
        }
        if json {
            print(TrainSummary(report: trained.report, model: location, version: registered.version, test: evaluation).json())
        } else {
            print(describe(trained.report, model: location))
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
    lines.append("saved: \(path)")
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
    var version: Int
    var test: EvaluationReport?

    func json() -> String {
        var slim = self
        slim.report.trainLossCurve = []
        slim.report.holdoutPoints = nil
        slim.report.validationLossCurve = []
        return encodeJSON(slim)
    }
}

/// Pretty, key-sorted JSON; non-finite numbers as strings.
func encodeJSON(_ value: some Encodable) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    // As the store's manifests: ISO 8601 UTC, not Foundation's default seconds since 2001.
    encoder.dateEncodingStrategy = .iso8601
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return String(decoding: (try? encoder.encode(value)) ?? Data(), as: UTF8.self)
}

/// "35 ms".
func milliseconds(_ d: Duration) -> String {
    let ms = d.seconds * 1000
    return format(ms, ms < 10 ? 1 : 0) + " ms"
}

/// Fixed decimals.
func format(_ value: Double, _ decimals: Int) -> String {
    String(format: "%.\(decimals)f", value)
}
