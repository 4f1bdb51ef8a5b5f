import ArgumentParser
import Catalog
import Foundation
import Retraining
import TreeTraining

struct RetrainCommand: ParsableCommand {
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

    @Option(help: "Required relative RMSE improvement over production (0.01 = 1%).")
    var margin: Double = 0.01

    @Option(help: "Fraction of the data held out to compare challenger and champion.")
    var holdout: Double = 0.1

    @Flag(help: "Train with the default parameters instead of production's.")
    var defaults = false

    @Option(help: "Worker threads (0: every core).")
    var threads: Int = 0

    @Flag(help: "Print the outcome as JSON.")
    var json = false

    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        let catalog = try storeOptions.catalog()
        var request = RetrainRequest(
            model: model, dataset: dataset, newRowsCSV: try newRows.map(readFile), promotionMargin: margin,
            holdoutFraction: holdout, requestedBy: "loupe retrain")
        if defaults { request.configuration = TrainingConfiguration() }
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
        print("dataset \(dataset) v\(outcome.datasetVersion); challenger \(model) v\(outcome.challengerVersion)")
        print(outcome.reason)
        print(outcome.promoted ? "promoted v\(outcome.challengerVersion) to production"
              : "production stays v\(outcome.championVersion.map(String.init) ?? "-")")
    }
}
