import Foundation

/// A background thread's long stretch of work (a group of calls compressed, a batch of rows
/// inserted) gives the core away every `quantum`.
///
/// Why: a thread answering a call that wakes on a core where a log thread runs waits until
/// the kernel preempts it, and neither nice nor `SCHED_BATCH` makes that immediate (EEVDF
/// lets the running thread finish its slice, ~3 ms; measured: 4–5 ms scheduling delays of the
/// event loop behind the SQLite writer with `perf sched`). `SCHED_IDLE` would be preempted at
/// once (measured p99 at 2,000 calls/s: 1.2 ms against 2.7 ms with `SCHED_BATCH`, 1.0 ms with
/// the log off), but an unprivileged thread cannot leave it again, and a log that only runs on
/// idle cores falls behind without bound on a saturated server. Yielding bounds the wait at a
/// quantum and keeps the log's fair share.
struct PeriodicYield {
    static let quantum: Duration = .microseconds(100)
    private let enabled: Bool
    private var since = ContinuousClock.now
    /// How often it gave way.
    private(set) var yields = 0

    /// `enabled` false (a thread at normal priority) makes `checkpoint` do nothing.
    init(enabled: Bool) {
        self.enabled = enabled
    }

    /// Yields the core when the stretch since the last yield reached the quantum.
    mutating func checkpoint() {
        guard enabled else { return }
        let now = ContinuousClock.now
        guard now - since >= Self.quantum else { return }
        sched_yield()
        yields += 1
        since = .now
    }
}
