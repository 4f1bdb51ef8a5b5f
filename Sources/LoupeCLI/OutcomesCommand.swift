import ArgumentParser
import Catalog
import Foundation
import LiveAccuracy
import RequestLog

struct OutcomesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outcomes",
        abstract: "Feed back realised prices (sales) and see each version's live accuracy.",
        discussion: """
            An outcome is a diamond and the price it sold for. It is joined to the call that priced it \
            (by principal and request_id, else by the same diamond's newest Predict) and scored with the \
            version that answered and every version live now (production, canary, shadow, the version \
            before production), in the request log's database. Live accuracy shows in `loupe models \
            list`, the report page and /metrics; `loupe serve` rolls back a canary or a new production \
            that does worse there than its baseline.
            """,
        subcommands: [Ingest.self, Show.self], defaultSubcommand: Show.self)

    struct Ingest: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read outcomes from a CSV file and record them.",
            discussion: """
                Columns: carat,cut,color,clarity,depth,table,x,y,z and sold_price (or price); optional \
                sold_at (ISO 8601 or Unix seconds), principal, request_id (needs principal) and outcome_id. \
                Rows that cannot be read are listed with their line and reason; the others are recorded. \
                Ingesting the same outcomes again changes nothing.
                """)

        @Argument(help: "The CSV file of outcomes.")
        var file: String

        @Option(help: "The model name.")
        var model: String = Catalog.defaultModel

        @Flag(help: "Print JSON.")
        var json = false

        @OptionGroup var storeOptions: StoreOptions
        @OptionGroup var logOptions: RequestLogOptions

        func run() async throws {
            guard let data = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read \(file)") }
            let (outcomes, rejected) = try oneLine(file) { try OutcomeFile.parse(Array(data)) }
            let catalog = try storeOptions.readOnlyCatalog()
            // Created when missing: outcomes may arrive before the first `loupe serve`.
            let guestbook = try await logOptions.openGuestbook(store: storeOptions.path, create: true, backgroundNice: 0)
            var summary: OutcomeIngest.Summary
            do {
                summary = try await OutcomeIngest(catalog: catalog, guestbook: guestbook, model: model).ingest(outcomes)
            } catch {
                await guestbook.close()
                throw CLIError("\(error)")
            }
            await guestbook.close()
            summary.rejected = rejected + summary.rejected
            summary.received += rejected.count
            if json {
                print(encodeJSON(summary))
                return
            }
            print("\(summary.accepted) of \(summary.received) outcomes recorded: \(summary.matchedByRequest) by request id, "
                + "\(summary.matchedByDiamond) by diamond, \(summary.unmatched) unmatched; scored with "
                + summary.versionsScored.map { "v\($0)" }.joined(separator: ", "))
            for r in summary.rejected.prefix(20) { print("  line \(r.line): \(r.reason)") }
            if summary.rejected.count > 20 { print("  … and \(summary.rejected.count - 20) more") }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Each version's live accuracy against realised prices.")

        @Option(help: "The model name.")
        var model: String = Catalog.defaultModel

        @Option(help: "Only outcomes recorded in this last span (e.g. 7d, 12h).")
        var since: String?

        @Flag(help: "Print JSON.")
        var json = false

        @OptionGroup var storeOptions: StoreOptions
        @OptionGroup var logOptions: RequestLogOptions

        func run() async throws {
            let from = try since.map { Date().addingTimeInterval(-(try parseDuration($0))) }
            let guestbook = try await logOptions.openGuestbook(store: storeOptions.path)
            let scores: [OutcomeScore]
            do { scores = try await guestbook.outcomeScores(model: model, since: from) } catch {
                await guestbook.close()
                throw CLIError("\(error)")
            }
            await guestbook.close()
            let accuracy = LiveAccuracy.byVersion(scores).values.sorted { $0.version < $1.version }
            if json {
                print(encodeJSON(accuracy))
                return
            }
            guard !accuracy.isEmpty else {
                print("no outcomes recorded for model \(model) yet; feed some with `loupe outcomes ingest sold.csv`")
                return
            }
            print(pad("version", 9) + pad("outcomes", 10) + pad("served", 8) + pad("RMSE", 10) + pad("MAPE", 9) + "coverage")
            for a in accuracy {
                print(pad("\(a.version)", 9) + pad("\(a.outcomes)", 10) + pad("\(a.served)", 8) + pad(format(a.rmse, 1), 10)
                    + pad(format(a.mape, 2) + "%", 9) + (a.coverage.map { format($0 * 100, 1) + "%" } ?? "-"))
            }
        }
    }
}
