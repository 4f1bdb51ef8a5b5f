import Foundation

extension Appender {
    /// The catch-up thread (at the process's own priority): sleeps until a call finds the
    /// oldest waiting call older than `lag` — the appender, at its lower priority, left behind on
    /// a saturated machine — then runs the appender's rounds until the inbox is fresh again.
    func runCatchUp(after lag: Duration) {
        makeThisThreadBackground(named: "loupe-catchup", nice: 0)
        var yielder = PeriodicYield(enabled: false)
        while true {
            catchUpWake.wait()
            if inbox.isClosed { return }
            counters.add(.catchUps, 1)
            while true {
                let (_, closed) = state.withLock { round(&$0, yielder: &yielder) }
                if inbox.caughtUp(closed: closed, lag: lag) { break }
            }
        }
    }
}
