import ArgumentParser
import HyperTuning
import LoupeClient
import LoupeProtocol
import Catalog
import Foundation
import Retraining
import TreeTraining

struct RetrainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retrain",
        abstract: "Retrain on the newest data and promote the challenger only if it beats production.",
        discussion: """
            Appends --new-rows (if given) to the dataset as a new version, holds out a fresh \
            part of the data, trains a challenger on the rest with production's parameters \
            (or the defaults), measures challenger and champion on the same holdout, registers \
            the challenger, and promotes it if its RMSE is lower by at least --margin.
            """)

    @Option(help: "The model to retrain.")
    var model: String = Catalog.defaultModel

    @Option(help: "The dataset to train on.")
    var dataset: String = Catalog.defaultDataset

    @Option(help: "Labelled rows (CSV) to append to the dataset first.")
    var newRows: String?

    @Option(parsing: .unconditional, help: "Required relative RMSE improvement over production (0.01 = 1%).")
    var margin: Double = 0.01

    @Option(parsing: .unconditional, help: "Fraction of the data held out to compare challenger and champion.")
    var holdout: Double = 0.1

    @Flag(help: "Train with the default parameters instead of production's.")
    var defaults = false

    @Option(parsing: .unconditional, help: "Worker threads (0: every core).")
    var threads: Int = 0

    @Flag(help: "Print the outcome as JSON.")
    var json = false

    @OptionGroup var storeOptions: StoreOptions

    @OptionGroup var serverOptions: ServerOptions

    @Option(help: "Tune the parameters first within this budget: trials (60) or time (90s, 5m).")
    var tune: String?

    @Option(help: ArgumentHelp(
        "Override a guardrail for this run (recorded in the outcome): label-shift (the new rows' prices sit far from production's predictions as a whole), decile-regression (much worse than production in some price decile), coverage (ranges off their level on the holdout), reference-regression (worse than production on the reference set). Repeatable.",
        valueName: "guardrail"))
    var accept: [String] = []

    func run() async throws {
        let accepted = try accept.map { name in
            guard let guardrail = Guardrail(rawValue: name) else {
                throw CLIError("--accept must name a guardrail (\(Guardrail.allCases.map(\.rawValue).joined(separator: ", "))), got \"\(name)\"")
            }
            return guardrail
        }
        if let client = try await serverOptions.connect(store: storeOptions) {
            try await retrainRemotely(client, accepting: accepted)
            await client.close()
            return
        }
        let catalog = try storeOptions.catalog()
        var request = RetrainRequest(
            model: model, dataset: dataset, newRowsCSV: try newRows.map(readFile), promotionMargin: margin,
            holdoutFraction: holdout, accept: Set(accepted), requestedBy: "loupe retrain")
        if defaults { request.configuration = TrainingConfiguration() }
        if let tune {
            var tuning = TuningConfiguration()
            let budget = try Self.budget(tune)
            tuning.maxTrials = budget.trials ?? 100_000
            tuning.timeBudgetSeconds = budget.seconds
            tuning.threads = threads
            request.tuning = tuning
        }
        if var c = request.configuration ?? (try? catalog.store.model(name: model, alias: .production))
            .flatMap({ $0 }).flatMap(RetrainPipeline.configuration(from:))
        {
            c.threads = threads
            request.configuration = c
        }
        let clock = ContinuousClock()
        var last = clock.now
        let outcome = try oneLine("retrain") {
            try RetrainPipeline(catalog: catalog).run(request) { stage, percent, eta, message in
                let now = clock.now
                guard now - last > .milliseconds(200) || stage != .training else { return }
                last = now
                let etaText = eta.map { "  eta \(Terminal.duration($0))" } ?? ""
                Terminal.progress("[\(stage.rawValue)] \(format(percent, 0))%  \(message)\(etaText)")
            }
        }
        Terminal.progress("done", final: true)
        if json {
            print(encodeJSON(outcome))
            return
        }
        if let run = outcome.tuningRun { print("tuning run \(run) chose the parameters") }
        if let count = outcome.labelOutlierCount, count > 0 {
            print("\(count) new rows set aside as label outliers, e.g. row "
                + (outcome.labelOutliers?.first.map { "\($0.row): \($0.reason)" } ?? "-"))
        }
        if let challenger = outcome.challengerVersion {
            print("dataset \(dataset) v\(outcome.datasetVersion); challenger \(model) v\(challenger)"
                + (outcome.newTrainingRows.map { ", trained with \($0) new rows" } ?? ""))
        }
        print(outcome.reason)
        print(outcome.promoted ? "promoted v\(outcome.challengerVersion.map(String.init) ?? "-") to production"
              : "production stays v\(outcome.championVersion.map(String.init) ?? "-")")
    }

    /// Starts the job on the server and follows it until it ends.
    private func retrainRemotely(_ client: LoupeClient, accepting accepted: [Guardrail]) async throws {
        var request = Loupe_V1_RetrainRequest()
        request.accept = accepted.map(\.rawValue)
        request.modelName = model
        request.dataset = dataset
        if margin != 0.01 { request.promotionMargin = margin }
        if let tune {
            let budget = try Self.budget(tune)
            var t = Loupe_V1_TuningBudget()
            t.maxTrials = UInt32(budget.trials ?? 0)
            t.maxSeconds = UInt32(budget.seconds ?? 0)
            request.tune = t
        }
        if let newRows {
            let cleaned = try DataSource.file(newRows).clean()
            var rows = Loupe_V1_LabelledRows()
            rows.diamonds = Loupe_V1_DiamondColumns(featureColumns: cleaned.clean.columns)
            rows.prices = cleaned.clean.price
            request.rows = rows
        }
        let id: String
        do { id = try await client.retrain(request).jobID } catch { throw CLIError(error.oneLine) }
        Terminal.note("job \(id) started on \(serverOptions.server!)")
        var job: Loupe_V1_Job
        repeat {
            try await Task.sleep(for: .milliseconds(250))
            do { job = try await client.job(id) } catch { throw CLIError(error.oneLine) }
            Terminal.progress("[\(job.stage)] \(format(job.percent, 0))%  \(job.message)")
        } while ![.succeeded, .failed, .cancelled].contains(job.stage)
        Terminal.progress("", final: true)
        guard job.stage == .succeeded else {
            throw CLIError("job \(id) failed: \(job.result.error.message)")
        }
        print("challenger \(model) v\(job.result.model.version): \(job.result.decision)")
        print(job.result.promoted ? "promoted to production (the server now serves it)" : "production unchanged")
    }

    static func budget(_ text: String) throws -> (trials: Int?, seconds: Double?) {
        let t = text.lowercased()
        if let unit = t.last, "smh".contains(unit), let amount = Double(t.dropLast()), amount > 0 {
            return (nil, amount * (unit == "s" ? 1 : unit == "m" ? 60 : 3600))
        }
        if let trials = Int(t), trials > 0 { return (trials, nil) }
        throw CLIError("--tune must be a number of trials (60) or a time (90s, 5m), got \"\(text)\"")
    }
}
