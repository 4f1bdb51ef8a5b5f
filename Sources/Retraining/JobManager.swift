import Catalog
import Dispatch
import Foundation
import Logging
import LoupeUtilities
import Synchronization

/// Runs retraining jobs one at a time, off the caller's thread, and keeps their status.
///
/// Jobs are durable: each is recorded in the store (`records/jobs/<id>.json`) when it is queued,
/// at every stage it enters and when it ends, so `GetJob` and `loupe jobs list|show` find it
/// after a restart, from any process on the store. A job whose process stopped while it ran is
/// marked failed (interrupted) by the next `JobManager` on the same host (a job of a process on
/// another host is left alone: from here it cannot be told alive or gone). Ids are unique
/// across processes and restarts (`job-<UTC time>-<random>`). Every stage transition and the
/// outcome are logged as structured lines.
public final class JobManager: Sendable {
    private let pipeline: RetrainPipeline
    private let logger: Logger
    private let jobs = Mutex<[String: JobStatus]>([:])
    // One job at a time: training uses every core it is given.
    private let queue = DispatchQueue(label: "loupe.retrain", qos: .utility)
    /// Finished jobs kept in memory; older ones are read back from the store.
    private let keepFinished = 100
    /// The store's record kind for jobs.
    public static let recordKind = "jobs"

    public init(pipeline: RetrainPipeline, logger: Logger = Logger(label: "loupe.jobs")) {
        self.pipeline = pipeline
        self.logger = logger
        markInterrupted()
    }

    private var catalog: Catalog { pipeline.catalog }

    /// Queues a job and returns its id at once.
    public func start(_ request: RetrainRequest) -> String {
        let id = Self.newID()
        let queued = JobStatus(
            id: id, model: request.model, requestedBy: request.requestedBy, owner: Self.owner, stage: .queued,
            percent: 0, etaSeconds: nil, message: "queued", started: Date())
        jobs.withLock {
            $0[id] = queued
            pruneFinished(&$0)
        }
        persist(queued)
        logger.info("retrain job queued", metadata: [
            "job": "\(id)", "model": "\(request.model)", "requested_by": "\(request.requestedBy)",
            "new_rows": "\(request.newRowsCSV != nil)", "tuning": "\(request.tuning != nil)",
        ])
        let pipeline = pipeline
        queue.async { [self] in
            do {
                let outcome = try pipeline.run(request) { stage, percent, eta, message in
                    self.update(id) {
                        $0.stage = stage
                        $0.percent = percent
                        $0.etaSeconds = eta
                        $0.message = message
                    }
                }
                update(id) {
                    $0.stage = .done
                    $0.percent = 100
                    $0.etaSeconds = 0
                    $0.message = outcome.reason
                    $0.outcome = outcome
                    $0.finished = Date()
                }
                logger.notice("retrain job finished", metadata: [
                    "job": "\(id)", "promoted": "\(outcome.promoted)",
                    "challenger": "\(outcome.challengerVersion.map(String.init) ?? "-")",
                    "champion": "\(outcome.championVersion.map(String.init) ?? "-")",
                    "rejected_by": "\(outcome.rejectedBy ?? "-")", "decision": "\(outcome.reason)",
                ])
            } catch {
                update(id) {
                    $0.stage = .failed
                    $0.error = "\(error)"
                    $0.message = "failed: \(error)"
                    $0.finished = Date()
                }
                logger.error("retrain job failed", metadata: ["job": "\(id)", "error": "\(error)"])
            }
        }
        return id
    }

    /// A job's status, or nil for an unknown id (this process's jobs, else the store's).
    public func status(_ id: String) -> JobStatus? {
        if let known = jobs.withLock({ $0[id] }) { return known }
        return Self.read(id, in: catalog)
    }

    /// Every job on the store and in this process, newest first.
    public func all() -> [JobStatus] {
        let here = jobs.withLock { $0 }
        var byID = Dictionary(uniqueKeysWithValues: Self.all(in: catalog).map { ($0.id, $0) })
        for (id, status) in here { byID[id] = status }
        return byID.values.sorted { $0.started > $1.started || ($0.started == $1.started && $0.id > $1.id) }
    }

    /// Waits (polling) until the job finishes; for the CLI and tests.
    public func wait(_ id: String, pollInterval: Duration = .milliseconds(50)) async -> JobStatus? {
        while true {
            guard let status = status(id) else { return nil }
            if status.isFinished { return status }
            try? await Task.sleep(for: pollInterval)
        }
    }

    // MARK: The store

    /// Every job recorded on `catalog`'s store, newest first (for `loupe jobs list`).
    public static func all(in catalog: Catalog) -> [JobStatus] {
        let ids = (try? catalog.store.recordIDs(kind: recordKind)) ?? []
        return ids.compactMap { read($0, in: catalog) }
            .sorted { $0.started > $1.started || ($0.started == $1.started && $0.id > $1.id) }
    }

    /// A job recorded on `catalog`'s store.
    public static func read(_ id: String, in catalog: Catalog) -> JobStatus? {
        guard let bytes = try? catalog.store.record(kind: recordKind, id: id) else { return nil }
        return try? decoder.decode(JobStatus.self, from: Data(bytes))
    }

    private func persist(_ status: JobStatus) {
        do {
            try catalog.store.putRecord(kind: Self.recordKind, id: status.id, json: Array(try Self.encoder.encode(status)))
        } catch {
            logger.warning("could not record a retrain job in the store", metadata: [
                "job": "\(status.id)", "error": "\(error)",
            ])
        }
    }

    /// Jobs the store says are still running whose process on this host is gone: failed.
    private func markInterrupted() {
        for var status in Self.all(in: catalog) where !status.isFinished && Self.ownerIsGone(status.owner) {
            let stage = status.stage
            status.stage = .failed
            status.finished = Date()
            status.error = "interrupted: the process running it stopped while it was \(stage.rawValue)"
            status.message = "failed: " + (status.error ?? "")
            persist(status)
            logger.warning("retrain job interrupted", metadata: ["job": "\(status.id)"])
        }
    }

    private func update(_ id: String, _ change: (inout JobStatus) -> Void) {
        let (changed, entered) = jobs.withLock { jobs -> (JobStatus?, Bool) in
            guard var status = jobs[id] else { return (nil, false) }
            let before = status.stage
            change(&status)
            jobs[id] = status
            return (status, status.stage != before)
        }
        // Recorded when it enters a stage (progress within a stage stays in memory).
        guard let changed, entered else { return }
        persist(changed)
        if !changed.isFinished {
            logger.info("retrain job stage", metadata: [
                "job": "\(id)", "stage": "\(changed.stage.rawValue)", "percent": "\(Int(changed.percent))",
                "message": "\(changed.message)",
            ])
        }
    }

    private func pruneFinished(_ jobs: inout [String: JobStatus]) {
        let finished = jobs.values.filter(\.isFinished).sorted { ($0.finished ?? $0.started) < ($1.finished ?? $1.started) }
        if finished.count > keepFinished {
            for status in finished.prefix(finished.count - keepFinished) { jobs[status.id] = nil }
        }
    }

    /// This process, as jobs record their owner: `host:pid`.
    static var owner: String { ProcessOwner.current }

    /// Whether the process that recorded a job is known to be gone (`ProcessOwner.isGone`).
    static func ownerIsGone(_ owner: String?) -> Bool { ProcessOwner.isGone(owner) }

    /// `job-20261207t171500-k3f9x2`: sortable by time, unique across processes.
    static func newID() -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd't'HHmmss"
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyz")
        let suffix = String((0..<6).map { _ in alphabet[Int.random(in: 0..<alphabet.count)] })
        return "job-\(formatter.string(from: Date()))-\(suffix)"
    }

    private static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }

    private static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return decoder
    }
}
