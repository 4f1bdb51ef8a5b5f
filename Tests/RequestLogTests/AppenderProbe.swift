@testable import RequestLog
import Synchronization

/// Watches and steers a log's appender through `RequestLogHooks`: counts the calls that woke it,
/// and holds it (a starved appender, made certain). The state lives here, not in the log.
final class AppenderProbe: Sendable {
    private let held = Atomic<Bool>(false)
    private let wakeUpCount = Atomic<Int>(0)

    /// How many times calls woke the appender so far.
    var wakeUps: Int { wakeUpCount.load(ordering: .relaxed) }

    /// While true, the appender thread takes no calls (the catch-up thread still may).
    func hold(_ on: Bool) { held.store(on, ordering: .relaxed) }

    /// The hooks to give the log.
    var hooks: RequestLogHooks {
        RequestLogHooks(
            appenderWoken: { [self] in wakeUpCount.add(1, ordering: .relaxed) },
            holdsAppender: { [self] in held.load(ordering: .relaxed) })
    }
}
