import ArgumentParser
import ArtifactStore
import Catalog
import Foundation
import Scheduling

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "What is in production, and what the retraining scheduler did last and will do next.")

    @OptionGroup var storeOptions: StoreOptions

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let catalog = try storeOptions.readOnlyCatalog()
        let production = try? catalog.store.model(name: Catalog.defaultModel, alias: .production)
        let scheduler = try oneLine("store \(storeOptions.location)") { try catalog.schedulerStatus() }
        if json {
            print(encodeJSON(StatusJSON(production: production?.version, scheduler: scheduler)))
            return
        }
        if let production {
            print("production: \(production.name) v\(production.version), trained on \(production.dataset), "
                + "holdout RMSE $\(production.metrics["rmse"].map { format($0, 1) } ?? "-")")
        } else {
            print("production: none yet")
        }
        guard let s = scheduler else {
            print("scheduler: no server has run a scheduler on this store yet")
            return
        }
        print("scheduler (as of \(timestamp(s.updated)) UTC): triggers \(s.triggers.joined(separator: ", "))")
        if let running = s.running { print("  running: \(running)") }
        if let last = s.lastRun {
            let outcome = last.error.map { "failed: \($0)" }
                ?? last.result.map { (last.promoted == true ? "promoted v\(last.modelVersion ?? 0): " : "kept production: ") + $0 }
                ?? "in progress"
            print("  last run: \(timestamp(last.started)) (\(last.trigger), \(last.job)) — \(outcome)")
        }
        if let next = s.nextIntervalRun { print("  next interval run: \(timestamp(next))") }
        if let retry = s.nextRetry { print("  after \(s.consecutiveFailures) failure(s), next try: \(timestamp(retry))") }
        if let gap = s.waitingForGapUntil { print("  waiting for the minimum gap until \(timestamp(gap))") }
        if !s.pendingTriggers.isEmpty { print("  pending: \(s.pendingTriggers.joined(separator: ", "))") }
        print("  inbox: \(s.inboxProcessed) files ingested, \(s.inboxFailed) failed")
        if !s.drift.isEmpty {
            let worst = s.drift.sorted { $0.value > $1.value }.prefix(3).map { "\($0.key) \(format($0.value, 3))" }
            print("  drift (PSI over \(s.driftRows) distinct recent stones): " + worst.joined(separator: ", "))
            if let needs = s.driftNeedsLabels { print("  needs labels: \(needs)") }
        }
    }

    struct StatusJSON: Encodable {
        var production: Int?
        var scheduler: SchedulerStatus?
    }
}
