import ArgumentParser
import DiamondSchema
import TreeModel
import TreeTraining

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Clean the bundled data, train a model on it, and price an example diamond.")

    @Option(name: .shortAndLong, help: "Where to write the model.")
    var out: String = "model.loupe"

    @Option(help: "Worker threads (0: every core).")
    var threads: Int = 0

    static let example = Diamond(
        carat: 1.01, cut: .ideal, color: .g, clarity: .vs1, depth: 61.8, table: 56, x: 6.43, y: 6.47, z: 3.99)

    func run() throws {
        let source = DataSource.bundled
        let cleaned = try source.clean()
        print(cleaningSummary(cleaned.report, source: source.name))
        for rule in cleaned.report.rules where rule.failed > 0 {
            print("  \(rule.rule.id): \(rule.failed) rows")
        }
        var configuration = TrainingConfiguration()
        configuration.threads = threads
        let trained = try train(cleaned.clean, configuration: configuration, quiet: false)
        try writeFile(out, trained.model.serialized())
        print(describe(trained.report, model: out))
        let d = Self.example
        print("")
        print("A \(d.carat) carat \(d.cut) \(d.color) \(d.clarity) diamond (depth \(d.depth), table \(d.table), "
            + "\(d.x) × \(d.y) × \(d.z) mm):")
        print("  " + describe(trained.model.estimate(d)))
        print("")
        print("Next: loupe predict \(out) --carat 0.5 --cut Premium --color E --clarity SI1 "
            + "--depth 62 --table 58 --x 5.1 --y 5.05 --z 3.15")
    }
}
