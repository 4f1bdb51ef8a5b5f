import Foundation

/// How the request log's own threads (the appender, the SQLite writer) stay out of the way of
/// the threads answering calls.

/// Makes the calling thread background work (Linux: per thread): the `SCHED_BATCH` policy,
/// so its wake-ups never preempt a thread answering a call (a woken appender otherwise takes
/// the core at once with its sleeper's credit, and the call waits out its slice: that showed
/// in the serving p99), and `nice`, so it gets a small share of a core that serving wants.
/// Neither needs privileges; failures are ignored (the thread then runs as the process does).
/// Also names the thread (`top -H`, `perf`): a Linux thread otherwise inherits its creator's name.
func makeThisThreadBackground(named name: String, nice: Int32) {
    #if os(Linux)
    // pthread_setname_np is behind _GNU_SOURCE too; this is what it does. Linux keeps 15 characters.
    try? Data(name.prefix(15).utf8).write(to: URL(fileURLWithPath: "/proc/thread-self/comm"))
    guard nice > 0 else { return }
    var parameters = sched_param(sched_priority: 0)
    _ = sched_setscheduler(0, schedBatch, &parameters)
    // `who` 0 is the calling thread: Linux keeps nice values per thread.
    _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, nice)
    #endif
}

#if os(Linux)
/// `SCHED_BATCH` from <sched.h>: Glibc's Swift module leaves it out (it is behind _GNU_SOURCE).
let schedBatch: Int32 = 3
#endif

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
struct GivingWay {
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
