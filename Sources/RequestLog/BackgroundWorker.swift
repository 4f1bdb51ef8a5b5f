import Dispatch
import Foundation
import Synchronization

/// A thread of its own, at a lower priority (nice, `SCHED_BATCH`), running submitted jobs one
/// at a time.
///
/// The request log's disk and SQLite work runs here rather than on a shared pool: a pool
/// thread's priority cannot be lowered for one job and raised again without privileges, and
/// at the same priority the log's bursts compete with the threads answering calls.
final class BackgroundWorker: Sendable {
    private struct State {
        var jobs: [@Sendable () -> Void] = []
        var stopped = false
    }

    /// What the thread holds (not the worker, so dropping the worker stops the thread).
    private final class Shared: Sendable {
        let state = Mutex(State())
        let wake = DispatchSemaphore(value: 0)
    }

    private let shared = Shared()

    init(name: String, nice: Int32) {
        let thread = Thread { [shared] in
            makeThisThreadBackground(named: name, nice: nice)
            while true {
                shared.wake.wait()
                let (jobs, stopped) = shared.state.withLock { s in
                    defer { s.jobs = [] }
                    return (s.jobs, s.stopped)
                }
                for job in jobs { job() }
                if stopped { return }
            }
        }
        thread.start()
    }

    deinit { stop() }

    /// Runs `body` on the worker thread and returns its result. After `stop`, runs it on the
    /// caller's thread (a late call must not hang).
    func perform<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let job: @Sendable () -> Void = { continuation.resume(with: Result { try body() }) }
            let queued = shared.state.withLock { s -> Bool in
                guard !s.stopped else { return false }
                s.jobs.append(job)
                return true
            }
            if queued { shared.wake.signal() } else { job() }
        }
    }

    /// Ends the thread once the jobs already submitted have run.
    func stop() {
        let first = shared.state.withLock { s -> Bool in
            defer { s.stopped = true }
            return !s.stopped
        }
        if first { shared.wake.signal() }
    }
}
