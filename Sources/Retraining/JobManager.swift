import Dispatch
import Foundation
import Synchronization

/// Runs retraining jobs one at a time, off the caller's thread, and keeps their status for
/// `GetJob`. Jobs are numbered `job-1`, `job-2`, … per process.
public final class JobManager: Sendable {
    private let pipeline: RetrainPipeline
    private let jobs = Mutex<[String: JobStatus]>([:])
    private let counter = Atomic<Int>(0)
    // One job at a time: training uses every core it is given.
    private let queue = DispatchQueue(label: "loupe.retrain", qos: .utility)
    /// Finished jobs kept for `status`; older ones are forgotten.
    private let keepFinished = 100

    public init(pipeline: RetrainPipeline) {
        self.pipeline = pipeline
    }

    /// Queues a job and returns its id at once.
    public func start(_ request: RetrainRequest) -> String {
        let id = "job-\(counter.add(1, ordering: .relaxed).newValue)"
        let now = Date()
        jobs.withLock {
            $0[id] = JobStatus(id: id, stage: .queued, percent: 0, etaSeconds: nil, message: "queued", started: now)
            pruneFinished(&$0)
        }
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
            } catch {
                update(id) {
                    $0.stage = .failed
                    $0.error = "\(error)"
                    $0.message = "failed: \(error)"
                    $0.finished = Date()
                }
            }
        }
        return id
    }

    /// A job's status, or nil for an unknown id.
    public func status(_ id: String) -> JobStatus? {
        jobs.withLock { $0[id] }
    }

    /// Every known job, newest first.
    public func all() -> [JobStatus] {
        jobs.withLock { Array($0.values) }.sorted { $0.started > $1.started || ($0.started == $1.started && $0.id > $1.id) }
    }

    /// Waits (polling) until the job finishes; for the CLI and tests.
    public func wait(_ id: String, pollInterval: Duration = .milliseconds(50)) async -> JobStatus? {
        while true {
            guard let status = status(id) else { return nil }
            if status.isFinished { return status }
            try? await Task.sleep(for: pollInterval)
        }
    }

    private func update(_ id: String, _ change: (inout JobStatus) -> Void) {
        jobs.withLock { jobs in
            if var status = jobs[id] {
                change(&status)
                jobs[id] = status
            }
        }
    }

    private func pruneFinished(_ jobs: inout [String: JobStatus]) {
        let finished = jobs.values.filter(\.isFinished).sorted { ($0.finished ?? $0.started) < ($1.finished ?? $1.started) }
        if finished.count > keepFinished {
            for status in finished.prefix(finished.count - keepFinished) { jobs[status.id] = nil }
        }
    }
}
