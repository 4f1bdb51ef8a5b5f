import LoupeProtocol
import NIOCore
import NIOPosix
import RequestLog

extension ModelServer {
    /// Answers one request frame inside this process, for a gateway in the same process
    /// (`loupe serve`): the same path as a connection's call — the principal's scopes, decoding,
    /// on the event loop or the worker pool, the header's deadline, metrics — without a socket.
    /// The gateway has already authenticated `principal`. The reply (a response or an error
    /// frame with the request's id) completes on `eventLoop`.
    public func answerInProcess(_ frame: Frame, principal: Principal, on eventLoop: any EventLoop)
        -> EventLoopFuture<Frame>
    {
        let header = frame.header
        let started = NIODeadline.now()
        let handlers = handlers
        guard let method = header.method else {
            return eventLoop.makeSucceededFuture(handlers.finished(
                Frame(error: ProtocolError(code: .unimplemented, message: "method id \(header.methodID) is not known to this server"),
                      replyingTo: header), method: "unknown", started: started, request: frame, principal: principal))
        }
        guard Scope.allows(principal.scopes, method) else {
            return eventLoop.makeSucceededFuture(handlers.finished(
                Frame(error: ProtocolError(
                    code: .permissionDenied,
                    message: "\(principal.name) may not call \(method) (scopes: "
                        + principal.scopes.map(\.rawValue).sorted().joined(separator: ", ") + ")"),
                      replyingTo: header), method: "\(method)", started: started, request: frame, principal: principal))
        }
        let call: ServerCall
        do {
            call = try ServerCall(method: method, frame: frame)
        } catch {
            return eventLoop.makeSucceededFuture(
                handlers.finished(Frame(error: error, replyingTo: header), method: "\(method)", started: started,
                                  request: frame, principal: principal))
        }
        if call.runsInline(handlers: handlers) {
            let (answer, summary) = call.reply(to: header, principal: principal, handlers: handlers)
            return eventLoop.makeSucceededFuture(handlers.finished(
                answer, method: "\(method)", started: started, deadline: header.deadlineMilliseconds, request: frame,
                principal: principal, summary: summary))
        }
        guard let pool = running.withLock({ $0?.pool }) else {
            return eventLoop.makeSucceededFuture(Frame(
                error: ProtocolError(code: .unavailable, message: "the model server is not running", retryAfterMilliseconds: 100),
                replyingTo: header))
        }
        handlers.metrics.callStarted()
        return pool.runIfActive(eventLoop: eventLoop) {
            call.reply(to: header, principal: principal, handlers: handlers)
        }.recover { _ in
            (Frame(error: ProtocolError(code: .unavailable, message: "the server is shutting down"), replyingTo: header),
             CallSummary())
        }.map { answer, summary in
            handlers.metrics.callFinished()
            return handlers.finished(
                answer, method: "\(method)", started: started, deadline: header.deadlineMilliseconds, request: frame,
                principal: principal, summary: summary)
        }
    }

    /// Whether the server can price now (a model loaded, the store readable), as Health says.
    public var isReady: Bool { handlers.health().ready }
}
