import ArgumentParser
import Catalog
import Foundation
import Retraining

struct JobsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs",
        abstract: "Retraining jobs on this store: every one a server or `loupe retrain --server` started.",
        discussion: """
            Jobs are recorded in the store when they are queued, at every stage and when they end, so \
            they outlive the server that ran them; a job that was running when its server stopped is \
            listed as failed (interrupted) once a server starts on the store again.
            """,
        subcommands: [List.self, Show.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every job, newest first.")

        @OptionGroup var storeOptions: StoreOptions

        @Flag(help: "Print JSON.")
        var json = false

        func run() throws {
            let catalog = try storeOptions.readOnlyCatalog()
            let jobs = JobManager.all(in: catalog)
            if json {
                print(encodeJSON(jobs))
                return
            }
            guard !jobs.isEmpty else {
                print("no retraining jobs on this store yet")
                return
            }
            print(pad("job", 32) + pad("model", 10) + pad("by", 14) + pad("stage", 14) + pad("started (UTC)", 21) + "result")
            for job in jobs {
                print(pad(job.id, 32) + pad(job.model ?? "-", 10) + pad(job.requestedBy ?? "-", 14)
                    + pad(job.stage.rawValue, 14) + pad(timestamp(job.started), 21) + Self.result(job))
            }
        }

        static func result(_ job: JobStatus) -> String {
            if let error = job.error { return error }
            guard let outcome = job.outcome else { return job.message }
            return (outcome.promoted ? "promoted v\(outcome.challengerVersion.map(String.init) ?? "-")" : "not promoted")
                + ": " + outcome.reason
        }

        private func pad(_ text: String, _ width: Int) -> String {
            text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One job: its stages, outcome or error, as JSON.")

        @Argument(help: "The job id (from `loupe jobs list` or the Retrain call).")
        var id: String

        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            let catalog = try storeOptions.readOnlyCatalog()
            guard let job = JobManager.read(id, in: catalog) else {
                throw CLIError("no job \"\(id)\" on the store \(storeOptions.location) (`loupe jobs list` shows them)")
            }
            print(encodeJSON(job))
        }
    }
}
