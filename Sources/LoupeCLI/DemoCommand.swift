import ArgumentParser
import Catalog
import DiamondSchema
import TreeModel
import TreeTraining

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Train a model on the bundled data, register and promote it in the store, and price an example diamond.")

    @Option(parsing: .unconditional, help: "Worker threads (0: every core).")
    var threads: Int = 0

    @OptionGroup var storeOptions: StoreOptions

    static let example = Diamond(
        carat: 1.01, cut: .ideal, color: .g, clarity: .vs1, depth: 61.8, table: 56, x: 6.43, y: 6.47, z: 3.99)

    func run() throws {
        let catalog = try storeOptions.catalog()
        let dataset = try oneLine("store \(storeOptions.location)") { try catalog.latestDataset() }
        print("dataset \(dataset.name) v\(dataset.version) (\(dataset.source ?? "?")): \(dataset.counts.rowsIn) rows in, "
            + "\(dataset.counts.clean) clean, \(dataset.counts.quarantined) quarantined")
        let table = try oneLine("dataset \(dataset.name)") { try catalog.table(of: dataset) }
        var configuration = TrainingConfiguration()
        configuration.threads = threads
        let trained = try train(table, configuration: configuration, quiet: false)
        let manifest = try oneLine("store \(storeOptions.location)") {
            let manifest = try catalog.register(trained, dataset: dataset.reference, note: "loupe demo")
            _ = try catalog.promote(name: manifest.name, version: manifest.version, reason: "loupe demo")
            return manifest
        }
        print(describe(trained.report, model: "model \(manifest.name) v\(manifest.version) (production) in \(storeOptions.location)"))
        let d = Self.example
        print("")
        print("A \(d.carat) carat \(d.cut) \(d.color) \(d.clarity) diamond (depth \(d.depth), table \(d.table), "
            + "\(d.x) × \(d.y) × \(d.z) mm):")
        print("  " + describe(trained.model.estimate(d)))
        print("")
        print("Next: loupe predict diamonds --carat 0.5 --cut Premium --color E --clarity SI1 "
            + "--depth 62 --table 58 --x 5.1 --y 5.05 --z 3.15")
        print("      loupe models list")
    }
}
