import ArgumentParser
import DataCleaning
import DiamondSchema

struct CleanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clean",
        abstract: "Check a diamonds CSV against the cleaning rules; write the clean rows and a quarantine.",
        discussion: """
            Every input row ends up in exactly one of the two outputs: the clean set, or the \
            quarantine with its row number and the rules it failed. The report gives, per rule, \
            rows checked and failed and the first failing rows. See docs/CLEANING.md.
            """)

    @Argument(help: "The CSV to clean (header row required; columns in any order).")
    var file: String

    @Option(name: .shortAndLong, help: "Write the clean rows here (CSV).")
    var out: String?

    @Option(help: "Write the quarantined rows here (CSV).")
    var quarantine: String?

    @Option(help: "Write the report here (JSON).")
    var report: String?

    @Flag(help: "Print the report as JSON instead of a table.")
    var json = false

    @Flag(help: "Keep exact duplicate rows instead of quarantining them.")
    var keepDuplicates = false

    @Option(parsing: .unconditional, help: "How far the stated depth may be from 100·2z/(x+y), in percentage points.")
    var depthTolerance: Double = ValidationRanges.standard.depthTolerance

    @Option(parsing: .unconditional, help: "Failing rows shown per rule in the report.")
    var samples: Int = 5

    func run() throws {
        var configuration = CleaningConfiguration.standard
        configuration.dropDuplicates = !keepDuplicates
        configuration.ranges.depthTolerance = depthTolerance
        configuration.sampleLimit = samples
        let result = try DataSource.file(file).clean(configuration)
        if let out { try writeFile(out, result.cleanCSV()) }
        if let quarantine { try writeFile(quarantine, result.quarantineCSV()) }
        if let report { try writeFile(report, Array(result.report.json().utf8)) }
        print(json ? result.report.json() : result.report.table())
    }
}
