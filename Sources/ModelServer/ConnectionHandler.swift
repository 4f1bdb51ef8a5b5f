import Logging
import LoupeProtocol
import NIOCore
import NIOPosix
import RequestLog

/// One client connection: the handshake, then calls answered as they complete.
///
/// - Before `Hello` is accepted only `Health` is answered; anything else gets
///   `UNAUTHENTICATED` and the connection closes. Frames that arrive while the token is being
///   checked wait in a short queue.
/// - Cheap calls run on the event loop; batches and blocking calls on the worker pool. Replies
///   go out in completion order with the request's id.
/// - Backpressure: with `maxInFlightPerConnection` calls outstanding the handler stops
///   asking the channel to read, so the client's sends back up in TCP until replies drain.
/// - Framing errors (oversize length, deadline, garbage) get a connection-level error frame
///   and a close. Draining (graceful shutdown) stops reading and closes once in-flight calls
///   are answered; so does a client that closes its sending side (a half-close, as `nc -N`
///   does after its last request): its calls in flight are answered first.
/// - A request id may be reused once its call is answered; a call sent with the id of one
///   still in flight is a protocol error (replies could no longer be told apart): the
///   connection gets a connection-level `INVALID_ARGUMENT` and closes once the calls in flight
///   are answered.
final class ConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = Frame
    typealias OutboundIn = Frame
    typealias OutboundOut = Frame

    private enum State {
        case awaitingHello
        case authenticating(queued: [Frame])
        case ready(Principal)
        case closing
    }

    private let decoder: FrameDecoder
    private let handlers: CallHandlers
    private let authenticator: any Authenticator
    private let pool: NIOThreadPool
    private let logger: Logger
    private var state = State.awaitingHello
    private var inFlight = 0
    private var readPending = false
    private var draining = false
    /// The last reply written; a draining connection closes once it has left (NIO's close
    /// fails writes still queued, which would cut a large last reply short).
    private var lastWrite: EventLoopFuture<Void>?
    /// Set once a draining connection has sent its last reply: input is read and dropped.
    private var outputClosed = false
    /// Set when the client closed its side (or cut a frame short): answer what is in flight, then close.
    private var inputClosed = false
    /// Request ids of the calls running on the worker pool (the others are answered at once).
    private var inFlightIDs = Set<UInt32>()

    init(decoder: FrameDecoder, handlers: CallHandlers, authenticator: any Authenticator, pool: NIOThreadPool,
         logger: Logger) {
        self.decoder = decoder
        self.handlers = handlers
        self.authenticator = authenticator
        self.pool = pool
        self.logger = logger
    }

    private var maxInFlight: Int { handlers.configuration.maxInFlightPerConnection }

    // MARK: Lifecycle

    func channelActive(context: ChannelHandlerContext) {
        handlers.metrics.connectionOpened()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        handlers.metrics.connectionClosed()
        state = .closing
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            inputClosed = true
            closeIfInputDone(context)
            return
        }
        if event is DrainEvent {
            draining = true
            if inFlight == 0 { closeAfterWrites(context) }
            return
        }
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read, inFlight == 0 {
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
            inputClosed = true
            closeIfInputDone(context)
            return
        }
        guard case .closing = state else {
            logger.info("closing a connection after a framing error", metadata: ["error": "\(failure)"])
            context.writeAndFlush(wrapOutboundOut(Frame(error: failure, replyingTo: nil)), promise: nil)
            state = .closing
            context.close(promise: nil)
            return
        }
    }

    // MARK: Backpressure

    func read(context: ChannelHandlerContext) {
        if outputClosed {
            context.read()
        } else if inFlight >= maxInFlight || draining {
            readPending = true
        } else {
            context.read()
        }
    }

    private func callFinished(context: ChannelHandlerContext, requestID: UInt32) {
        inFlight -= 1
        inFlightIDs.remove(requestID)
        handlers.metrics.callFinished()
        if inputClosed {
            closeIfInputDone(context)
        } else if draining && inFlight == 0 {
            closeAfterWrites(context)
        } else if readPending && inFlight < maxInFlight && !draining {
            readPending = false
            context.read()
        }
    }

    // MARK: Frames

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if outputClosed { return }  // answered its last reply; dropped until the client closes
        let frame = unwrapInboundIn(data)
        guard frame.header.flags.subtracting(.compressed) == .request else {
            fail(context, ProtocolError(
                code: .invalidArgument,
                message: "a client may only send request frames (flags 0x01), got \(frame.header.flags)"))
            return
        }
        switch state {
        case .closing:
            return
        case .authenticating(var queued):
            guard queued.count < maxInFlight else {
                fail(context, ProtocolError(code: .resourceExhausted, message: "too many calls sent before the Welcome"))
                return
            }
            queued.append(frame)
            state = .authenticating(queued: queued)
        case .awaitingHello:
            if frame.header.flags.contains(.compressed) {
                fail(context, Self.compressedFrame(frame.header), replyingTo: frame.header)
                return
            }
            switch frame.header.method {
            case .hello: handshake(context, frame)
            case .health: answer(context, frame, principal: Principal(name: "anonymous", scopes: []))
            default:
                fail(context, ProtocolError(
                    code: .unauthenticated,
                    message: "the first call on a connection must be Hello (method 1) with a token; got method "
                        + "\(frame.header.methodID)"), replyingTo: frame.header)
            }
        case .ready(let principal):
            answer(context, frame, principal: principal)
        }
    }

    private func handshake(_ context: ChannelHandlerContext, _ frame: Frame) {
        let hello: Loupe_V1_Hello
        do {
            hello = try frame.decode()
        } catch {
            fail(context, error, replyingTo: frame.header)
            return
        }
        guard hello.protocolVersion == UInt32(FrameHeader.currentVersion) else {
            fail(context, ProtocolError(
                code: .unimplemented,
                message: "protocol version \(hello.protocolVersion) is not spoken here; this server speaks 1"),
                 replyingTo: frame.header)
            return
        }
        state = .authenticating(queued: [])
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
        guard case .authenticating(let queued) = state else { return }
        switch result {
        case .failure(let error):
            let failure = (error as? ProtocolError) ?? ProtocolError(code: .unauthenticated, message: "authentication failed")
            logger.info("refused a connection", metadata: ["client": "\(hello.clientName)", "reason": "\(failure.message)"])
            fail(context, failure, replyingTo: header)
        case .success(let principal):
            decoder.handshakeCompleted()
            state = .ready(principal)
            var welcome = Loupe_V1_Welcome()
            welcome.principal = principal.name
            welcome.scopes = principal.scopes.map(\.rawValue).sorted()
            welcome.serverVersion = handlers.configuration.serverVersion
            welcome.protocolVersion = UInt32(FrameHeader.currentVersion)
            var limits = Loupe_V1_Limits()
            limits.maxFrameSize = UInt32(decoder.limits.maxFrameSize)
            limits.maxBatchRows = UInt32(handlers.configuration.maxBatchRows)
            limits.frameDeadlineMs = UInt32(decoder.limits.frameDeadline.nanoseconds / 1_000_000)
            limits.maxSimilar = UInt32(handlers.configuration.maxSimilar)
            limits.maxInFlight = UInt32(maxInFlight)
            welcome.limits = limits
            do {
                context.writeAndFlush(wrapOutboundOut(try Frame(header: header.response(), message: welcome)), promise: nil)
            } catch {
                fail(context, error, replyingTo: header)
                return
            }
            for frame in queued { answer(context, frame, principal: principal) }
            closeIfInputDone(context)
        }
    }

    private func answer(_ context: ChannelHandlerContext, _ frame: Frame, principal: Principal) {
        let header = frame.header
        let started = NIODeadline.now()
        guard !inFlightIDs.contains(header.requestID) else {
            duplicateRequestID(context, header)
            return
        }
        if header.flags.contains(.compressed) {
            reply(context, Frame(error: Self.compressedFrame(header), replyingTo: header),
                  method: header.method.map { "\($0)" } ?? "unknown", started: started, request: frame,
                  principal: principal)
            return
        }
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
        inFlight += 1
        inFlightIDs.insert(header.requestID)
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
            handler.callFinished(context: context, requestID: header.requestID)
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
        if context.channel.isActive {
            let written = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(call.frame), promise: written)
            lastWrite = written.futureResult
        }
        handlers.record(call)
    }

    /// Closes once every reply written so far has gone out.
    /// Closing with the client's pipelined calls still unread would make the kernel send a
    /// reset, which can destroy replies the client has not read yet; so only the output is
    /// closed (a FIN after the last reply), what arrives is read and dropped, and the
    /// connection closes when the client closes its side (or at the shutdown's grace period).
    private func closeAfterWrites(_ context: ChannelHandlerContext) {
        let channel = context.channel
        let halfClose: @Sendable () -> Void = {
            channel.close(mode: .output).whenFailure { _ in channel.close(promise: nil) }
        }
        outputClosed = true
        context.read()
        guard let lastWrite else { return halfClose() }
        lastWrite.whenComplete { _ in halfClose() }
    }

    /// Closes a connection whose client closed its side, once nothing is left to answer: no
    /// call in flight, no handshake under way (its queued calls are answered when it ends).
    /// The client sends nothing more, so a full close cannot reset replies it has not read.
    private func closeIfInputDone(_ context: ChannelHandlerContext) {
        guard inputClosed, inFlight == 0 else { return }
        if case .authenticating = state { return }
        state = .closing
        let channel = context.channel
        guard let lastWrite else { return channel.close(promise: nil) }
        lastWrite.whenComplete { _ in channel.close(promise: nil) }
    }

    /// A call reused the id of one still in flight: a connection-level error, no more reads,
    /// and a close once the calls in flight are answered.
    private func duplicateRequestID(_ context: ChannelHandlerContext, _ header: FrameHeader) {
        logger.info("closing a connection that reused a request id in flight", metadata: ["call": "\(header)"])
        let failure = ProtocolError(
            code: .invalidArgument,
            message: "request id \(header.requestID) is already in flight on this connection; ids must be unique among "
                + "the calls in flight, so this call was not run and the connection closes once the others are answered")
        state = .closing
        draining = true
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(Frame(error: failure, replyingTo: nil)), promise: written)
        lastWrite = written.futureResult
        if inFlight == 0 { closeAfterWrites(context) }
    }

    /// The answer to a frame with the COMPRESSED flag: version 1 defines no compression.
    static func compressedFrame(_ header: FrameHeader) -> ProtocolError {
        ProtocolError(
            code: .unimplemented,
            message: "frame \(header) sets COMPRESSED (0x08): protocol version 1 defines no compression; send it uncompressed")
    }

    private func fail(_ context: ChannelHandlerContext, _ error: ProtocolError, replyingTo header: FrameHeader? = nil) {
        if case .closing = state { return }
        state = .closing
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(Frame(error: error, replyingTo: header)), promise: written)
        let channel = context.channel
        written.futureResult.whenComplete { _ in channel.close(promise: nil) }
    }
}

/// Sent down every connection when the server drains: stop reading, close once answered.
struct DrainEvent: Sendable {}
