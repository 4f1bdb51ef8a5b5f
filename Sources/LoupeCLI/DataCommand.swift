import ArgumentParser
import BundledData

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Write the bundled diamonds data (CSV) to stdout, or show where it comes from.")

    @Flag(help: "Print the data's provenance instead of the data.")
    var provenance = false

    func run() throws {
        if provenance {
            print(BundledData.provenance)
        } else {
            Terminal.out(BundledData.diamondsCSV())
        }
    }
}
