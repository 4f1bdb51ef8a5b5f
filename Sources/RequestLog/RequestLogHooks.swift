/// What tests watch and steer inside a running log. Production passes `RequestLogHooks()`,
/// whose hooks do nothing; a test keeps its own state (a counter, a flag) and hands the log
/// closures over it, so no test state lives in the log.
struct RequestLogHooks: Sendable {
    /// Called on the serving path each time a call wakes the idle appender (a futex call:
    /// while the appender keeps up, calls should not pay it once per group).
    var appenderWoken: @Sendable () -> Void = {}
    /// Asked by the appender thread (not the catch-up thread) right before each round: while
    /// it answers true the appender takes no calls (a starved appender, made certain). A closed
    /// log stops asking.
    var holdsAppender: @Sendable () -> Bool = { false }
}
