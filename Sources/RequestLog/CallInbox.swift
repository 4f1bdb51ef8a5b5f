import LoupeUtilities
import Dispatch
import Synchronization

/// The hand-off between the serving path and the appender: finished calls wait here, bounded
/// in payload bytes, until the appender (or its catch-up thread) takes them all at once.
///
/// Waking the appender is a futex call on the serving path, so calls signal only the first time
/// after it went idle: `signalled` stays set while it works, and the appender clears it
/// (`goingIdle`) and looks once more (`isIdle`) before it sleeps.
final class CallInbox: Sendable {
    private struct State {
        var calls: [CallRecord] = []
        var bytes = 0
        var closed = false
        /// When the oldest call in `calls` was handed over (kept only with a lag bound).
        var oldest = ContinuousClock.now
        /// The catch-up thread was called and has not caught up yet.
        var catchingUp = false
    }

    /// Second in the lock order (`RequestLog`): taken inside `Appender.state`, and nothing is
    /// taken while it is held.
    private let state = Mutex(State())
    /// Wakes the idle appender thread.
    private let wake = DispatchSemaphore(value: 0)
    /// Set while the appender is busy or already signalled: calls then do not signal.
    private let signalled = Atomic<Bool>(false)
    private let limitBytes: Int
    /// The lag past which the catch-up thread is called (nil: no catch-up thread).
    private let catchUpAfter: Duration?
    private let hooks: RequestLogHooks

    init(configuration: RequestLogConfiguration, hooks: RequestLogHooks) {
        limitBytes = configuration.queueLimitBytes
        catchUpAfter = configuration.catchUpAfter
        self.hooks = hooks
    }

    /// Adds a call unless the inbox is closed or over its byte bound. `lagging`: the oldest
    /// waiting call is older than the lag bound, and the catch-up thread should be called.
    func add(_ call: CallRecord) -> (accepted: Bool, lagging: Bool) {
        state.withLock { [catchUpAfter, limitBytes] inbox -> (Bool, Bool) in
            guard !inbox.closed, inbox.bytes + call.payloadBytes <= limitBytes else { return (false, false) }
            inbox.calls.append(call)
            inbox.bytes += call.payloadBytes
            guard let catchUpAfter else { return (true, false) }
            // A clock read per call (~20 ns): how long the oldest waiting call has waited.
            let now = ContinuousClock.now
            if inbox.calls.count == 1 {
                inbox.oldest = now
                return (true, false)
            }
            guard !inbox.catchingUp, now - inbox.oldest > catchUpAfter else { return (true, false) }
            inbox.catchingUp = true
            return (true, true)
        }
    }

    /// Wakes the appender if it went idle since it was last woken.
    func wakeAppender() {
        // Sequentially consistent, against the appender's store-then-look when it goes idle.
        if !signalled.exchange(true, ordering: .sequentiallyConsistent) {
            hooks.appenderWoken()
            wake.signal()
        }
    }

    /// Every waiting call, and whether the inbox is closed.
    func takeAll() -> (calls: [CallRecord], closed: Bool) {
        state.withLock { inbox in
            defer {
                inbox.calls = []
                inbox.bytes = 0
            }
            return (inbox.calls, inbox.closed)
        }
    }

    /// Takes no more calls (those waiting are still taken).
    func close() { state.withLock { $0.closed = true } }

    var isClosed: Bool { state.withLock { $0.closed } }

    /// Nothing waits and the inbox is open: the appender may sleep.
    var isIdle: Bool { state.withLock { $0.calls.isEmpty && !$0.closed } }

    /// The appender is going idle: calls signal from now on.
    func goingIdle() { signalled.store(false, ordering: .sequentiallyConsistent) }

    /// Sleeps until a call wakes the appender or `timeout` passes; true when woken.
    func waitForCall(upTo timeout: Duration) -> Bool {
        wake.wait(timeout: .now() + max(0, timeout.seconds)) == .success
    }

    /// Whether the catch-up thread is done: the log is `closed`, or nothing waits, or the
    /// oldest waiting call is younger than half the lag bound. When done, the next lagging call
    /// calls it again.
    func caughtUp(closed: Bool, lag: Duration) -> Bool {
        state.withLock { inbox in
            let caughtUp = closed || inbox.calls.isEmpty || ContinuousClock.now - inbox.oldest < lag / 2
            if caughtUp { inbox.catchingUp = false }
            return caughtUp
        }
    }
}
