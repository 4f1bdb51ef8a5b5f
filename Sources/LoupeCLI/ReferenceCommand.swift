import ArgumentParser
import Catalog
import Foundation
import TreeTraining

struct ReferenceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reference",
        abstract: "The reference set: trusted rows every retrain measures both models on, and no version trains on.",
        discussion: """
            The first retrain with enough new rows sets it aside from them (rows no model has seen); \
            `loupe train`, `tune` and retrains leave its rows out. It changes only when you refresh it \
            (after a market move, its old prices would hold back every model that follows the move).
            """,
        subcommands: [Show.self, Refresh.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The reference set's version, size and origin.")

        @Option(help: "The dataset.")
        var dataset: String = Catalog.defaultDataset

        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            let catalog = try storeOptions.readOnlyCatalog()
            let found = try oneLine("dataset \(dataset)") { try catalog.reference(of: dataset) }
            guard let reference = found else {
                print("no reference set for \(dataset) yet: the first retrain with 500 or more new rows sets one aside")
                return
            }
            let m = reference.manifest
            print("\(m.name) v\(m.version): \(reference.table.count) rows, \(m.source ?? "-"), \(timestamp(m.created)) UTC")
        }
    }

    struct Refresh: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set aside a new reference set drawn from the newest dataset version.",
            discussion: """
                Its rows may have trained existing versions (they are compared on it all the same); \
                no version trained after this will see them.
                """)

        @Option(help: "The dataset.")
        var dataset: String = Catalog.defaultDataset

        @Option(parsing: .unconditional, help: "Rows to set aside.")
        var rows: Int = 2000

        @OptionGroup var storeOptions: StoreOptions

        func validate() throws {
            guard rows >= 100 else { throw ValidationError("--rows must be at least 100, got \(rows)") }
        }

        func run() throws {
            let catalog = try storeOptions.catalog()
            let version = try oneLine("dataset \(dataset)") { try catalog.latestDataset(dataset) }
            let table = try catalog.table(of: version)
            guard table.count >= rows * 2 else {
                throw CLIError("dataset \(dataset) v\(version.version) has \(table.count) rows; --rows \(rows) would take half or more")
            }
            var random = SeededRandom(seed: UInt64.random(in: 1...UInt64.max))
            let chosen = random.permutation(table.count).prefix(rows).map { $0 }
            let manifest = try catalog.setAsideReference(
                chosen, of: table, from: version, source: "refreshed from \(dataset) v\(version.version) by loupe reference refresh")
            print("\(manifest.name) v\(manifest.version): \(rows) rows set aside from \(dataset) v\(version.version)")
        }
    }
}
