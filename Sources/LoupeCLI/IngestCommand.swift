import ArgumentParser
import Catalog

struct IngestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Clean a CSV and store it as a new version of a dataset (clean rows, quarantine, report).",
        discussion: """
            With --append, the new version holds the previous version's rows plus the file's \
            clean rows, leaving out rows the previous version already has.
            """)

    @Argument(help: "The CSV to ingest.")
    var file: String

    @Option(help: "The dataset to add a version to.")
    var dataset: String = Catalog.defaultDataset

    @Flag(help: "Add the file's rows to the previous version instead of replacing it.")
    var append = false

    @Flag(help: "Print the cleaning report as JSON.")
    var json = false

    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        let catalog = try storeOptions.catalog()
        let bytes = try readFile(file)
        let result = try oneLine(file) { try catalog.ingest(csv: bytes, dataset: dataset, source: file, append: append) }
        if json {
            print(result.cleaning.report.json())
            return
        }
        let m = result.manifest
        print(cleaningSummary(result.cleaning.report, source: file))
        for rule in result.cleaning.report.rules where rule.failed > 0 {
            print("  \(rule.rule.id): \(rule.failed) rows")
        }
        if let parent = m.parent {
            print("appended to v\(parent): \(result.duplicatesOfEarlierRows) rows were already there")
        }
        print("stored dataset \(m.name) v\(m.version): \(m.counts.clean) rows")
    }
}
