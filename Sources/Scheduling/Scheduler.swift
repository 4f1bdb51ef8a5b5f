import ArtifactStore
import Catalog
import DataCleaning
import DiamondSchema
import Foundation
import Logging
import LoupeUtilities
import Retraining
import Synchronization

/// The alarm clock that keeps the model sharp: retrains on an interval, when labelled data
/// is dropped into the inbox, or when recent inputs drift away from the training data.
///
/// - Never two retrains at once (it waits for its own job, and the job runner queues others).
/// - A minimum gap between scheduled runs; a failed run is retried with exponential backoff.
/// - Its status (last run and result, next run, drift per feature, inbox counts) is saved in
///   the store as `records/scheduler/status.json` after every change, for `loupe status`,
///   and handed to `onStatus` (the server's metrics).
///
/// `tick(now:)` does one round of checks; `start()` calls it every `checkEvery`. Tests call
/// `tick` directly with the times they want.
public final class Scheduler: Sendable {
    public let configuration: SchedulerConfiguration
    public let window: DriftWindow
    /// Where drift reads recent inputs: `window` unless another source was given.
    public let inputs: any DriftInputSource
    private let catalog: Catalog
    private let jobs: JobManager
    private let inbox: InboxSource?
    private let logger: Logger
    private let onStatus: @Sendable (SchedulerStatus) -> Void
    private let state: Mutex<State>
    private let loop = Mutex<Task<Void, Never>?>(nil)
    private let trainingCache = Mutex<(DatasetReference, [[Double]])?>(nil)

    struct State {
        var status: SchedulerStatus
        var pending: [String] = []
        var lastStart: Date?
        var created: Date
    }

    /// - Parameter inboxDirectory: the folder watched for CSV files (`<store>/inbox`); nil turns the trigger off.
    ///   A store shared by several machines (S3) has an inbox of its own, which is watched instead.
    public init(
        configuration: SchedulerConfiguration, catalog: Catalog, jobs: JobManager, inboxDirectory: String?,
        window: DriftWindow = DriftWindow(), inputs: (any DriftInputSource)? = nil, now: Date = Date(), logger: Logger = Logger(label: "loupe.scheduler"),
        onStatus: @escaping @Sendable (SchedulerStatus) -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.catalog = catalog
        self.jobs = jobs
        if !configuration.inbox || inboxDirectory == nil {
            inbox = nil
        } else if let shared = catalog.store.backend as? any SharedInbox {
            inbox = .shared(shared)
        } else {
            inbox = inboxDirectory.map { .folder($0) }
        }
        self.window = window
        self.inputs = inputs ?? window
        self.logger = logger
        self.onStatus = onStatus
        var triggers: [String] = []
        if let interval = configuration.interval { triggers.append("interval \(interval)") }
        if let inbox { triggers.append("inbox \(inbox.location)") }
        if let threshold = configuration.driftThreshold { triggers.append("drift > \(threshold)") }
        var status = SchedulerStatus(triggers: triggers, updated: now)
        status.nextIntervalRun = configuration.interval.map { now.addingTimeInterval($0.seconds) }
        state = Mutex(State(status: status, created: now))
        if case .folder(let inboxDirectory) = inbox {
            for sub in ["", "/processed", "/failed"] {
                try? FileManager.default.createDirectory(atPath: inboxDirectory + sub, withIntermediateDirectories: true)
            }
        }
    }

    /// The current status.
    public var status: SchedulerStatus { state.withLock { $0.status } }

    /// Checks the triggers every `checkEvery` until `stop()`.
    public func start() {
        let every = configuration.checkEvery
        let task = Task { [weak self] in
            while !Task.isCancelled {
                self?.tick(now: Date())
                try? await Task.sleep(for: every)
            }
        }
        loop.withLock { $0 = task }
    }

    public func stop() {
        loop.withLock {
            $0?.cancel()
            $0 = nil
        }
    }

    /// One round: follow the running job, take inbox files, judge drift and the interval,
    /// and start a retrain when a trigger fired and the gates allow it.
    public func tick(now: Date) {
        followRunningJob(now: now)
        if state.withLock({ $0.status.running != nil }) {
            publish(now)
            return
        }
        takeInbox(now: now)
        judgeDrift()
        let reason: String? = state.withLock { s in
            if let interval = configuration.interval {
                let due = (s.lastStart ?? s.created).addingTimeInterval(interval.seconds)
                s.status.nextIntervalRun = due
                if now >= due, !s.pending.contains("interval") { s.pending.append("interval") }
            }
            guard !s.pending.isEmpty else { return nil }
            if let retry = s.status.nextRetry, now < retry { return nil }
            if let last = s.lastStart, now.timeIntervalSince(last) < configuration.minimumGap.seconds {
                s.status.waitingForGapUntil = last.addingTimeInterval(configuration.minimumGap.seconds)
                return nil
            }
            s.status.waitingForGapUntil = nil
            return s.pending.joined(separator: ", ")
        }
        if let reason { startRun(reason, now: now) }
        publish(now)
    }

    private func startRun(_ reason: String, now: Date) {
        var request = configuration.request
        request.requestedBy = "scheduler (\(reason))"
        let id = jobs.start(request)
        logger.info("retraining", metadata: ["trigger": "\(reason)", "job": "\(id)"])
        inputs.clear()
        state.withLock { s in
            s.pending = []
            s.lastStart = now
            s.status.running = id
            s.status.lastRun = SchedulerStatus.Run(trigger: reason, job: id, started: now)
            s.status.nextIntervalRun = configuration.interval.map { now.addingTimeInterval($0.seconds) }
        }
    }

    private func followRunningJob(now: Date) {
        guard let id = state.withLock({ $0.status.running }), let job = jobs.status(id), job.isFinished else { return }
        state.withLock { s in
            s.status.running = nil
            s.status.lastRun?.finished = job.finished ?? now
            if let outcome = job.outcome {
                s.status.lastRun?.promoted = outcome.promoted
                s.status.lastRun?.result = outcome.reason
                s.status.lastRun?.modelVersion = outcome.challengerVersion
                s.status.consecutiveFailures = 0
                s.status.nextRetry = nil
            } else {
                s.status.lastRun?.error = job.error ?? "failed"
                s.status.consecutiveFailures += 1
                let backoff = min(
                    configuration.maximumBackoff.seconds,
                    configuration.initialBackoff.seconds * pow(2, Double(s.status.consecutiveFailures - 1)))
                s.status.nextRetry = now.addingTimeInterval(backoff)
                // The trigger still stands: try again after the backoff.
                if let trigger = s.status.lastRun?.trigger { s.pending = [trigger] }
            }
        }
        if let error = job.error { logger.error("scheduled retrain failed", metadata: ["job": "\(id)", "error": "\(error)"]) }
    }

    // MARK: Inbox

    private func takeInbox(now: Date) {
        guard let inbox else { return }
        let names: [String]
        do {
            names = try inbox.ready(now: now, settle: configuration.inboxSettle)
        } catch {
            logger.warning("cannot list the inbox; trying again at the next check",
                           metadata: ["inbox": "\(inbox.location)", "error": "\(error)"])
            return
        }
        for name in names {
            let stamp = Self.stamp(now)
            do {
                let bytes = try inbox.read(name)
                let result = try catalog.ingest(
                    csv: bytes, dataset: configuration.request.dataset, source: "inbox/\(name)", append: true)
                try inbox.processed(name, as: "\(stamp)-\(name)")
                logger.info("ingested an inbox file", metadata: [
                    "file": "\(name)", "dataset_version": "\(result.manifest.version)",
                    "clean": "\(result.cleaning.report.cleanRows)", "quarantined": "\(result.cleaning.report.quarantinedRows)",
                ])
                state.withLock { s in
                    s.status.inboxProcessed += 1
                    if !s.pending.contains("inbox") { s.pending.append("inbox") }
                }
            } catch let error as StoreError where error.code == .io || error.code == .conflict {
                // The store, not the file: it stays in the inbox for the next check. (Ingesting
                // again after a failed move only repeats rows, which an append leaves out.)
                logger.warning("an inbox file waits: the store cannot be written",
                               metadata: ["file": "\(name)", "error": "\(error)"])
                return
            } catch {
                inbox.failed(name, as: "\(stamp)-\(name)", reason: "\(error)\n")
                logger.error("an inbox file could not be ingested", metadata: ["file": "\(name)", "error": "\(error)"])
                state.withLock { $0.status.inboxFailed += 1 }
            }
        }
    }

    // MARK: Drift

    private func judgeDrift() {
        guard let threshold = configuration.driftThreshold, inputs.count >= configuration.driftMinimumRows,
            let training = trainingColumns()
        else { return }
        // Each distinct stone counts once: one partner pricing the same diamond a thousand times
        // is not a change in what the market brings.
        let recent = Self.distinctRows(inputs.snapshot())
        guard recent.first?.count ?? 0 >= configuration.driftMinimumRows else {
            state.withLock { $0.status.driftRows = recent.first?.count ?? 0 }
            return
        }
        let labelled = hasNewLabels()
        var psi: [String: Double] = [:]
        for feature in Feature.allCases {
            let f = feature.rawValue
            if feature.isGrade {
                let levels = feature == .cut ? 5 : feature == .color ? 7 : 8
                func counts(_ values: [Double]) -> [Int] {
                    var c = [Int](repeating: 0, count: levels)
                    for v in values where v >= 0 && Int(v) < levels { c[Int(v)] += 1 }
                    return c
                }
                psi[feature.name] = PopulationStability.psi(expectedCounts: counts(training[f]), actualCounts: counts(recent[f]))
            } else {
                psi[feature.name] = PopulationStability.psi(expected: training[f], actual: recent[f])
            }
        }
        let alert = state.withLock { s -> String? in
            s.status.drift = psi
            s.status.driftRows = recent[0].count
            guard let worst = psi.max(by: { $0.value < $1.value }), worst.value > threshold else {
                s.status.driftNeedsLabels = nil
                return nil
            }
            let trigger = "drift (\(worst.key) PSI \(String(format: "%.2f", worst.value)))"
            // Without new labels a retrain refits the same rows and cannot follow the drift: say
            // what is needed instead of running one.
            guard labelled else {
                let first = s.status.driftNeedsLabels == nil
                s.status.driftNeedsLabels = "\(trigger) but no labelled rows since production's dataset: "
                    + "add sold prices (loupe ingest --append, or the inbox) to retrain on"
                return first ? s.status.driftNeedsLabels : nil
            }
            s.status.driftNeedsLabels = nil
            if !s.pending.contains(where: { $0.hasPrefix("drift") }) { s.pending.append(trigger) }
            return nil
        }
        if let alert { logger.warning("drift needs labels", metadata: ["detail": "\(alert)"]) }
    }

    /// Whether the dataset has rows production did not train on (labels a retrain can learn from).
    private func hasNewLabels() -> Bool {
        guard let production = try? catalog.manifest(for: ModelSpec(name: configuration.request.model)),
            let latest = try? catalog.store.latestDataset(name: configuration.request.dataset)
        else { return false }
        return production.dataset.name != latest.name || production.dataset.version < latest.version
    }

    /// The columns with repeated rows (all nine features equal) kept once.
    static func distinctRows(_ columns: [[Double]]) -> [[Double]] {
        guard let rows = columns.first?.count else { return columns }
        var seen = Set<[Double]>()
        var keep: [Int] = []
        seen.reserveCapacity(rows)
        for r in 0..<rows where seen.insert(columns.map { $0[r] }).inserted { keep.append(r) }
        return columns.map { column in keep.map { column[$0] } }
    }

    /// The production model's training data, cached per dataset version.
    private func trainingColumns() -> [[Double]]? {
        guard let manifest = try? catalog.manifest(for: ModelSpec(name: configuration.request.model)) else { return nil }
        if let cached = trainingCache.withLock({ $0 }), cached.0 == manifest.dataset { return cached.1 }
        guard let dataset = try? catalog.store.dataset(name: manifest.dataset.name, version: manifest.dataset.version),
            let table = try? catalog.table(of: dataset)
        else { return nil }
        trainingCache.withLock { $0 = (manifest.dataset, table.columns) }
        return table.columns
    }

    // MARK: Status

    private func publish(_ now: Date) {
        let status = state.withLock { s -> SchedulerStatus in
            s.status.pendingTriggers = s.pending
            s.status.updated = now
            return s.status
        }
        onStatus(status)
        try? catalog.save(status)
    }

    static func stamp(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd-HHmmss"
        return f.string(from: date)
    }
}
