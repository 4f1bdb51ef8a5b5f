import ArgumentParser
import Catalog
import Reports

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a model version's training report: one self-contained HTML page with charts.",
        discussion: "Opens in any browser without a network. The page is stored with the model the first time it is made.")

    @Argument(help: "NAME@VERSION, NAME@production, a version number, … (default: the current model).")
    var spec: String = Catalog.defaultModel

    @Option(name: .shortAndLong, help: "Where to write the page.")
    var out: String = "report.html"

    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        let catalog = try storeOptions.catalog()
        let spec = try parseSpec(spec)
        let html = try oneLine("model \(spec)") {
            try ModelReportPage(catalog: catalog).page(for: try catalog.manifest(for: spec))
        }
        try writeFile(out, Array(html.utf8))
        print("wrote \(out)")
    }
}
