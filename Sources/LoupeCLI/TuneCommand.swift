import ArgumentParser
import ArtifactStore
import Catalog
import Foundation
import HyperTuning
import TreeTraining

struct TuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tune",
        abstract: "Search the trainer's parameters for the lowest validation RMSE; optionally train and register the best.",
        discussion: """
            Random start-up trials, then multivariate TPE proposals; successive halving on \
            boosting rounds stops weak trials early; early stopping inside every trial. Trials \
            run in parallel, one per core. Every trial is saved in the store as it finishes \
            (records/tuning/<run>.json), so a run can be inspected and resumed with --resume. \
            The budget is a number of trials, a time (90s, 5m, 1h), or both: --budget 60 --budget 5m.
            """)

    @Option(help: "The dataset to tune on (its newest version).")
    var dataset: String = Catalog.defaultDataset

    @Option(name: .long, help: "Ingest this CSV as a new dataset version and tune on it.")
    var data: String?

    @Option(parsing: .singleValue, help: "Trials (e.g. 60) and/or wall time (e.g. 5m). Default: 40 trials within 2m.")
    var budget: [String] = []

    @Option(parsing: .unconditional, help: "k-fold cross-validation instead of one holdout (k ≥ 2; disables pruning).")
    var folds: Int = 1

    @Option(parsing: .unconditional, help: "Re-score this many of the best trials on a second holdout split and fit the best on both (default 0: fit the search's best).")
    var finalists: Int = TuningConfiguration().finalists

    @Option(parsing: .unconditional, help: "Random trials before model-based proposals.")
    var startupTrials: Int = TuningConfiguration().startupTrials

    @Option(parsing: .unconditional, help: "Seed of the proposals, the split and the trials.")
    var seed: UInt64 = 42

    @Option(parsing: .unconditional, help: "Threads for the whole run (0: every core).")
    var threads: Int = 0

    @Option(help: "Continue a saved run (its id).")
    var resume: String?

    @Flag(help: "List saved tuning runs.")
    var list = false

    @Flag(help: "Train a model with the best parameters and register it.")
    var register = false

    @Flag(help: "With --register: promote the new model to production.")
    var promote = false

    @Flag(name: .shortAndLong, help: "No progress output.")
    var quiet = false

    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        let catalog = try storeOptions.catalog()
        if list {
            for id in try catalog.tuningRunIDs() {
                let run = try catalog.tuningRun(id)
                let best = run.best.flatMap(\.rmse).map { "$" + format($0, 1) } ?? "-"
                print("\(id)  trials \(run.trials.count)  best \(best)  \(run.stopReason ?? "not finished")")
            }
            return
        }
        var configuration = TuningConfiguration(folds: folds, seed: seed)
        configuration.threads = threads
        configuration.startupTrials = startupTrials
        configuration.finalists = finalists
        try applyBudget(&configuration)

        let datasetVersion: DatasetManifest
        if let data {
            let bytes = try readFile(data)
            datasetVersion = try oneLine(data) { try catalog.ingest(csv: bytes, dataset: dataset, source: data).manifest }
        } else {
            datasetVersion = try oneLine("dataset \(dataset)") { try catalog.latestDataset(dataset) }
        }
        // Never the reference set's rows: retrains measure every version on them.
        let table = try oneLine("dataset \(dataset)") {
            try catalog.trainingTable(try catalog.table(of: datasetVersion), dataset: dataset)
        }
        let previous = try resume.map { id in try oneLine("tuning run \(id)") { try catalog.tuningRun(id) } }
        let id = previous?.id ?? Self.newRunID()
        let tuner = try oneLine("tune") {
            try Tuner(configuration: configuration, data: table, id: id, resume: previous)
        }
        if !quiet {
            Terminal.note("tuning run \(id) on dataset \(dataset) v\(datasetVersion.version) (\(table.count) rows)")
        }
        let run = try oneLine("tune") {
            try tuner.tune(progress: { p in
                guard !quiet else { return }
                let best = p.bestRMSE.map { "$" + format($0, 1) } ?? "-"
                let left = p.secondsLeft.map { "  left \(Terminal.duration($0))" } ?? ""
                let last = p.lastTrial
                let lastText = last.state == .failed ? "failed"
                    : "\(last.state.rawValue) at round \(last.roundsTrained), $\(format(last.rmse ?? .nan, 1))"
                Terminal.progress("trial \(p.trialsDone)/\(p.trialBudget)  best \(best)  elapsed "
                    + "\(Terminal.duration(p.elapsedSeconds))\(left)  last: \(lastText)")
            }, record: { try catalog.save($0) })
        }
        if !quiet { Terminal.progress("", final: true) }
        guard run.best != nil else {
            throw CLIError("no trial succeeded; see `loupe tune --list` and the run \(id) in the store")
        }
        if !quiet { Terminal.note("polishing the best trial at a smaller learning rate and sizing the final fit") }
        let finished = try oneLine("tune") { try tuner.fitFinal(record: { try catalog.save($0) }) }
        guard let best = finished.best, let final = finished.final,
            var bestConfiguration = Tuner.bestConfiguration(of: finished)
        else { throw CLIError("no trial succeeded; see `loupe tune --list` and the run \(id) in the store") }
        let counts = Dictionary(grouping: run.trials, by: \.state).mapValues(\.count)
        print("tuning run \(id): \(run.trials.count) trials (\(counts[.completed] ?? 0) completed, "
            + "\(counts[.pruned] ?? 0) pruned, \(counts[.failed] ?? 0) failed); \(run.stopReason ?? "")")
        print("best: trial \(best.number), validation RMSE $\(format(best.rmse ?? .nan, 1)) at \(best.bestRound) rounds")
        for (name, value) in best.parameters.sorted(by: { $0.key < $1.key }) {
            print("  \(name) = \(value == value.rounded() && abs(value) < 1e6 ? String(Int(value)) : format(value, 5))")
        }
        if let rescored = final.finalistRMSE, !rescored.isEmpty {
            let scores = rescored.sorted { $0.key < $1.key }.map { number, rmse in
                let first = run.trials.first { $0.number == number }?.rmse ?? .nan
                return "trial \(number) $\(format(first, 1)) / $\(format(rmse, 1))"
            }
            print("finalists re-scored on a second split (first / second): " + scores.joined(separator: ", ")
                + "; fitted trial \(best.number)")
        }
        if let finished = final.finishedRMSE {
            print("the best trial was pruned at round \(best.roundsTrained); trained on to early stopping: "
                + "validation RMSE $\(format(finished, 1))")
        }
        if final.learningRate < final.searchedLearningRate {
            print("polished: learning rate \(format(final.learningRate, 5)), validation RMSE $\(format(final.validationRMSE, 1)) "
                + "at \(final.bestRound) rounds (kept)")
        } else if let polished = final.polishedRMSE {
            print("polished: validation RMSE $\(format(polished, 1)) at learning rate "
                + "\(format(Tuner.polishLearningRate(final.searchedLearningRate, tuner.configuration), 5)) (not better; kept the searched rate)")
        }
        print("final fit: learning rate \(format(final.learningRate, 5)), \(final.rounds) rounds on every row but the calibration slice")
        guard register else { return }
        bestConfiguration.threads = threads
        let trained = try train(table, configuration: bestConfiguration, quiet: quiet)
        let manifest = try oneLine("store \(storeOptions.location)") {
            let manifest = try catalog.register(trained, dataset: datasetVersion.reference, note: "tuning run \(id)")
            if promote { _ = try catalog.promote(name: manifest.name, version: manifest.version, reason: "loupe tune --promote") }
            return manifest
        }
        print(describe(trained.report, model: "model \(manifest.name) v\(manifest.version)\(promote ? " (production)" : "")"))
    }

    private func applyBudget(_ c: inout TuningConfiguration) throws {
        var sawTrials = false
        var sawTime = false
        for text in budget {
            let t = text.trimmingCharacters(in: .whitespaces).lowercased()
            if let unit = t.last, "smh".contains(unit), let amount = Double(t.dropLast()), amount > 0 {
                c.timeBudgetSeconds = amount * (unit == "s" ? 1 : unit == "m" ? 60 : 3600)
                sawTime = true
            } else if let trials = Int(t.replacingOccurrences(of: "trials", with: "").trimmingCharacters(in: .whitespaces)),
                trials > 0
            {
                c.maxTrials = trials
                sawTrials = true
            } else {
                throw CLIError("--budget must be a number of trials (60) or a time (90s, 5m, 1h), got \"\(text)\"")
            }
        }
        // One kind of budget given: the other is not a limit.
        if sawTrials && !sawTime { c.timeBudgetSeconds = nil }
        if sawTime && !sawTrials { c.maxTrials = 100_000 }
    }

    static func newRunID() -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        return "tune-" + formatter.string(from: Date())
    }
}
