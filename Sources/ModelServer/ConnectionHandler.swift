import Logging
import LoupeConnection
import LoupeProtocol
import NIOCore
import NIOPosix
import RequestLog

/// One client connection of the model server. The connection's life (handshake, queueing,
/// backpressure, drain, half-close, reused ids) is `ConnectionStateMachine`'s; this handler
/// keeps the server's policy:
///
/// - the Hello is checked by the `Authenticator` (the gateway's internal secret, or a static
///   one), and Health before it is answered by the server itself;
/// - cheap calls are answered on the event loop, batches and blocking calls on the worker pool;
///   replies go out in completion order with the request's id, each handed to the request log
///   once written;
/// - framing errors (oversize length, deadline, garbage) get a connection-level error frame and
///   a close; a frame cut off by the client is logged as CANCELLED.
final class ConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = Frame
    typealias OutboundIn = Frame
    typealias OutboundOut = Frame

    private let decoder: FrameDecoder
    private let handlers: CallHandlers
    private let authenticator: any Authenticator
    private let pool: NIOThreadPool
    private let logger: Logger
    private var connection: ConnectionStateMachine<Principal>
    private var pendingClose = PendingClose()

    init(decoder: FrameDecoder, handlers: CallHandlers, authenticator: any Authenticator, pool: NIOThreadPool,
         logger: Logger) {
        self.decoder = decoder
        self.handlers = handlers
        self.authenticator = authenticator
        self.pool = pool
        self.logger = logger
        connection = ConnectionStateMachine(maxInFlight: handlers.configuration.maxInFlightPerConnection)
    }

    // MARK: Lifecycle

    func channelActive(context: ChannelHandlerContext) {
        handlers.metrics.connectionOpened()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        handlers.metrics.connectionClosed()
        connection.closed()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            if let close = connection.inputEnded() { pendingClose.close(close, context: context) }
            return
        }
        if event is DrainEvent {
            if let close = connection.drain() { pendingClose.close(close, context: context) }
            return
        }
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read, connection.isIdle {
            logger.debug("closing an idle connection")
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let failure = (error as? ProtocolError)
            ?? ProtocolError(code: .internalError, message: "connection error: \(error)", cause: nil)
        if failure.code == .cancelled {
            // The client closed part-way through a frame: nobody is left to tell, so it is
            // logged here; the whole calls before it are still answered.
            logger.info("a client closed part-way through a frame", metadata: [
                "status": "\(StatusCode.cancelled)", "detail": "\(failure.message)",
            ])
            if let close = connection.inputEnded() { pendingClose.close(close, context: context) }
            return
        }
        guard connection.failed() else { return }
        logger.info("closing a connection after a framing error", metadata: ["error": "\(failure)"])
        context.writeAndFlush(wrapOutboundOut(Frame(error: failure, replyingTo: nil)), promise: nil)
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if connection.shouldRead() { context.read() }
    }

    // MARK: Frames

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        act(on: connection.received(unwrapInboundIn(data)), context)
    }

    private func act(on action: ConnectionStateMachine<Principal>.FrameAction, _ context: ChannelHandlerContext) {
        switch action {
        case .drop, .queued:
            break
        case .fail(let error, let header, _):
            send(context, Frame(error: error, replyingTo: header), thenClose: .all)
        case .handshake(let frame):
            handshake(context, frame)
        case .health(let frame):
            answer(context, frame, principal: Principal(name: "anonymous", scopes: []))
        case .call(let frame, let principal, let received):
            answer(context, frame, principal: principal, received: received)
        case .reject(let error, let frame, let principal):
            reply(context, Frame(error: error, replyingTo: frame.header),
                  method: frame.header.method.map { "\($0)" } ?? "unknown", started: .now(), request: frame,
                  principal: principal)
        case .violation(let error, let closeNow):
            logger.info("closing a connection that broke the protocol", metadata: ["error": "\(error.message)"])
            send(context, Frame(error: error, replyingTo: nil), thenClose: closeNow ? .output : nil)
        }
    }

    private func handshake(_ context: ChannelHandlerContext, _ frame: Frame) {
        let hello: Loupe_V1_Hello
        do {
            hello = try frame.decode()
        } catch {
            connection.handshakeFailed()
            send(context, Frame(error: error, replyingTo: frame.header), thenClose: .all)
            return
        }
        guard hello.protocolVersion == UInt32(FrameHeader.currentVersion) else {
            connection.handshakeFailed()
            send(context, Frame(error: ProtocolError(
                code: .unimplemented,
                message: "protocol version \(hello.protocolVersion) is not spoken here; this server speaks 1"),
                replyingTo: frame.header), thenClose: .all)
            return
        }
        let authenticator = authenticator
        let promise = context.eventLoop.makePromise(of: Principal.self)
        promise.completeWithTask {
            try await authenticator.authenticate(hello: hello)
        }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        promise.futureResult.whenComplete { result in
            let (handler, context) = loopBound.value
            handler.handshakeFinished(context, frame.header, hello, result)
        }
    }

    private func handshakeFinished(
        _ context: ChannelHandlerContext, _ header: FrameHeader, _ hello: Loupe_V1_Hello,
        _ result: Result<Principal, any Error>
    ) {
        guard connection.isAuthenticating else { return }
        switch result {
        case .failure(let error):
            let failure = (error as? ProtocolError) ?? ProtocolError(code: .unauthenticated, message: "authentication failed")
            logger.info("refused a connection", metadata: ["client": "\(hello.clientName)", "reason": "\(failure.message)"])
            connection.handshakeFailed()
            send(context, Frame(error: failure, replyingTo: header), thenClose: .all)
        case .success(let principal):
            decoder.handshakeCompleted()
            let configuration = handlers.configuration
            let welcome = Loupe_V1_Welcome(
                principal: principal.name, scopes: principal.scopes.map(\.rawValue),
                serverVersion: configuration.serverVersion,
                limits: Loupe_V1_Limits(
                    maxFrameSize: decoder.limits.maxFrameSize, frameDeadline: decoder.limits.frameDeadline,
                    maxBatchRows: configuration.maxBatchRows, maxInFlight: connection.maxInFlight,
                    maxSimilar: configuration.maxSimilar))
            let (queued, close) = connection.handshakeSucceeded(principal)
            do {
                send(context, try Frame(header: header.response(), message: welcome))
            } catch {
                _ = connection.failed()
                send(context, Frame(error: error, replyingTo: header), thenClose: .all)
                return
            }
            for action in queued { act(on: action, context) }
            if let close { pendingClose.close(close, context: context) }
        }
    }

    // MARK: Calls

    /// Answers a call; its latency and deadline count from `received`, when the frame was read.
    private func answer(
        _ context: ChannelHandlerContext, _ frame: Frame, principal: Principal, received: NIODeadline = .now()
    ) {
        let header = frame.header
        let started = received
        guard let method = header.method else {
            reply(context, Frame(error: ProtocolError(
                code: .unimplemented, message: "method id \(header.methodID) is not known to this server"),
                replyingTo: header), method: "unknown", started: started, request: frame, principal: principal)
            return
        }
        guard Scope.allows(principal.scopes, method) else {
            reply(context, Frame(error: ProtocolError(
                code: .permissionDenied,
                message: "\(principal.name) may not call \(method) (scopes: "
                    + principal.scopes.map(\.rawValue).sorted().joined(separator: ", ") + ")"),
                replyingTo: header), method: "\(method)", started: started, request: frame, principal: principal)
            return
        }
        let call: ServerCall
        do {
            call = try ServerCall(method: method, frame: frame)
        } catch {
            reply(context, Frame(error: error, replyingTo: header), method: "\(method)", started: started, request: frame,
                  principal: principal)
            return
        }
        let handlers = handlers
        if call.runsInline(handlers: handlers) {
            let (answer, summary) = call.reply(to: header, principal: principal, handlers: handlers)
            reply(context, answer, method: "\(method)", started: started, deadline: header.deadlineMilliseconds,
                  request: frame, principal: principal, summary: summary)
            return
        }
        connection.callStarted(header)
        handlers.metrics.callStarted()
        let future = pool.runIfActive(eventLoop: context.eventLoop) {
            call.reply(to: header, principal: principal, handlers: handlers)
        }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        future.whenComplete { result in
            let (handler, context) = loopBound.value
            let (answer, summary) = (try? result.get()) ?? (Frame(
                error: ProtocolError(code: .unavailable, message: "the server is shutting down"), replyingTo: header),
                CallSummary())
            handler.reply(context, answer, method: "\(method)", started: started, deadline: header.deadlineMilliseconds,
                          request: frame, principal: principal, summary: summary)
            handler.callFinished(context, header)
        }
    }

    private func callFinished(_ context: ChannelHandlerContext, _ header: FrameHeader) {
        handlers.metrics.callFinished()
        switch connection.callFinished(header) {
        case .nothing: break
        case .read: context.read()
        case .close(let close): pendingClose.close(close, context: context)
        }
    }

    /// Sends a reply, unless the client's deadline passed while the call ran (then
    /// DEADLINE_EXCEEDED), counts it in the metrics, and then hands it to the request log.
    private func reply(
        _ context: ChannelHandlerContext, _ frame: Frame, method: String, started: NIODeadline, deadline: UInt32 = 0,
        request: Frame, principal: Principal, summary: CallSummary = CallSummary()
    ) {
        let call = handlers.finish(
            frame, method: method, started: started, deadline: deadline, request: request, principal: principal,
            summary: summary)
        if context.channel.isActive { send(context, call.frame) }
        handlers.record(call)
    }

    /// Writes `frame` and remembers the write, so a close waits for it; `thenClose` closes
    /// after it.
    private func send(_ context: ChannelHandlerContext, _ frame: Frame, thenClose close: ConnectionClose? = nil) {
        pendingClose.wrote(context.writeAndFlush(wrapOutboundOut(frame)))
        if let close { pendingClose.close(close, context: context) }
    }
}
