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
