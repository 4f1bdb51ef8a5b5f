import Foundation
import Logging
import LoupeProtocol
import NIOCore
import TokenStore

/// One partner connection through the gateway.
///
/// - Before the handshake: only `Hello` and `Health` (answered by the gateway itself); any
///   other call gets UNAUTHENTICATED and a close. Small frames only, and the whole handshake
///   must finish within `handshakeTimeout`. Nothing reaches a backend.
/// - The handshake: the token is checked (`TokenAuthority`); a refusal is answered and the
///   connection closed; an accepted token gets a `Welcome` from the gateway with its
///   principal, scopes and limits.
/// - Calls: checked against the token's scopes (PERMISSION_DENIED), its validity (a revoked
///   or expired token closes the connection), the token store's freshness (UNAVAILABLE) and
///   its buckets and quota (RESOURCE_EXHAUSTED with `retry_after_ms`), then forwarded with
///   the payload untouched to the healthy backend with the fewest calls in flight.
/// - Backpressure: with `maxInFlightPerConnection` calls out, the gateway stops reading.
/// - Caps: a connection over the gateway's or its address's connection caps may only ask
///   `Health` during `refusalGrace`; anything else, or the grace's end, gets RESOURCE_EXHAUSTED.
/// - A client that half-closes (FIN after its last request) gets the replies to its calls in
///   flight, then the connection closes. A call reusing the id of one in flight is a protocol
///   error: a connection-level INVALID_ARGUMENT, and a close once the others are answered.
final class GatewayConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = Frame
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private struct Session {
        let token: TokenState
        let principal: String
        let actingFor: Loupe_V1_ActingFor
    }

    private enum State {
        case awaitingHello
        case authenticating(queued: [(Frame, NIODeadline)])
        case ready(Session)
        /// Over a connection cap: only Health is answered until the refusal is sent.
        case refused(ProtocolError)
        case closing
    }

    private let shared: GatewayShared
    private let decoder: FrameDecoder
    /// Set once a draining connection has sent its last reply: input is read and dropped.
    private var outputClosed = false
    private var pools: BackendPools!
    private var context: ChannelHandlerContext!
    private var state = State.awaitingHello
    private var handshakeTimer: Scheduled<Void>?
    private var inFlight = 0
    private var readPending = false
    private var draining = false
    /// What the caps said when the connection opened (nil until then, and once released).
    private var admission: GatewayShared.Admission?
    private var wasAuthenticated = false
    /// Set when the client closed its side: answer what is in flight, then close.
    private var inputClosed = false
    /// Request ids of the calls forwarded and not yet answered.
    private var inFlightIDs = Set<UInt32>()
    private var remote = "?"

    init(shared: GatewayShared, decoder: FrameDecoder) {
        self.shared = shared
        self.decoder = decoder
    }

    private var configuration: GatewayConfiguration { shared.configuration }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        pools = shared.pools(for: context.eventLoop)
    }

    func channelActive(context: ChannelHandlerContext) {
        remote = context.remoteAddress?.ipAddress ?? "?"
        let admission = shared.connectionOpened(from: remote)
        self.admission = admission
        switch admission {
        case .admitted:
            break
        case .refused(let refusal), .refusedNow(let refusal):
            shared.audit.record("connection_cap", tokenID: nil, principal: nil, remote: remote, detail: refusal, quiet: true)
            let error = ProtocolError(code: .resourceExhausted, message: refusal, retryAfterMilliseconds: 1000)
            guard case .refused = admission else {
                fail(context, error)
                return
            }
            state = .refused(error)
            handshakeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: configuration.refusalGrace) {
                [weak self] in
                guard let self, let context = self.context else { return }
                self.fail(context, error)
            }
            context.fireChannelActive()
            return
        }
        let timeout = configuration.handshakeTimeout
        handshakeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
            guard let self, let context = self.context else { return }
            switch self.state {
            case .awaitingHello, .authenticating:
                self.shared.audit.record(
                    "handshake_timeout", tokenID: nil, principal: nil, remote: self.remote,
                    detail: "no completed handshake within \(timeout.nanoseconds / 1_000_000) ms")
                self.fail(context, ProtocolError(
                    code: .deadlineExceeded,
                    message: "the handshake did not complete within \(timeout.nanoseconds / 1_000_000) ms"))
            case .ready, .refused, .closing:
                break
            }
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        state = .closing
        if let admission {
            self.admission = nil
            shared.connectionClosed(from: remote, admission: admission, authenticated: wasAuthenticated)
        }
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            inputClosed = true
            closeIfInputDone(context)
            return
        }
        if event is GatewayDrainEvent {
            draining = true
            if inFlight == 0 { closeAfterWrites(context, draining: true) }
            return
        }
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read, inFlight == 0 {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if case .closing = state { return }
        let failure = (error as? ProtocolError)
            ?? ProtocolError(code: .unavailable, message: "connection error: \(error)")
        if failure.code == .cancelled {
            // The client closed part-way through a frame; nobody is left to tell, so it is
            // logged here, and the whole calls before it are still answered.
            shared.logger.info("a client closed part-way through a frame", metadata: [
                "status": "\(StatusCode.cancelled)", "remote": "\(remote)", "detail": "\(failure.message)",
            ])
            inputClosed = true
            closeIfInputDone(context)
            return
        }
        if !wasAuthenticated {
            let reason = failure.code == .resourceExhausted ? "oversize_frame"
                : failure.code == .deadlineExceeded ? "handshake_timeout" : "framing_error"
            shared.audit.record(reason, tokenID: nil, principal: nil, remote: remote, detail: failure.message, quiet: true)
        }
        fail(context, failure)
    }

    // MARK: Backpressure

    func read(context: ChannelHandlerContext) {
        if outputClosed {
            context.read()
        } else if inFlight >= configuration.maxInFlightPerConnection || draining {
            readPending = true
        } else {
            context.read()
        }
    }

    private func callFinished(_ request: FrameHeader) {
        inFlight -= 1
        inFlightIDs.remove(request.requestID)
        shared.metrics.callFinished()
        if inputClosed {
            closeIfInputDone(context)
        } else if draining && inFlight == 0 {
            closeAfterWrites(context, draining: true)
        } else if readPending && inFlight < configuration.maxInFlightPerConnection && !draining {
            readPending = false
            context.read()
        }
    }

    // MARK: Frames from the client

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if outputClosed { return }  // answered its last reply; dropped until the client closes
        let frame = unwrapInboundIn(data)
        guard frame.header.flags.subtracting(.compressed) == .request else {
            if !wasAuthenticated {
                shared.audit.record(
                    "before_handshake", tokenID: nil, principal: nil, remote: remote, detail: "a non-request frame")
            }
            fail(context, ProtocolError(
                code: .invalidArgument,
                message: "a client may only send request frames (flags 0x01), got \(frame.header.flags)"))
            return
        }
        switch state {
        case .closing:
            return
        case .refused(let error):
            if frame.header.method == .health, !frame.header.flags.contains(.compressed) {
                answerHealthLocally(context, frame.header)
            } else {
                fail(context, error, replyingTo: frame.header)
            }
        case .authenticating(var queued):
            guard queued.count < configuration.maxInFlightPerConnection else {
                fail(context, ProtocolError(code: .resourceExhausted, message: "too many calls sent before the Welcome"))
                return
            }
            queued.append((frame, .now()))
            state = .authenticating(queued: queued)
        case .awaitingHello:
            if frame.header.flags.contains(.compressed) {
                fail(context, Self.compressedFrame(frame.header), replyingTo: frame.header)
                return
            }
            switch frame.header.method {
            case .hello:
                handshake(context, frame)
            case .health:
                answerHealthLocally(context, frame.header)
            default:
                shared.audit.record(
                    "before_handshake", tokenID: nil, principal: nil, remote: remote,
                    detail: "method \(frame.header.methodID) before Hello")
                fail(context, ProtocolError(
                    code: .unauthenticated,
                    message: "the first call on a connection must be Hello (method 1) with a token; got method "
                        + "\(frame.header.methodID)"), replyingTo: frame.header)
            }
        case .ready(let session):
            call(context, frame, session: session, received: .now())
        }
    }

    private func answerHealthLocally(_ context: ChannelHandlerContext, _ header: FrameHeader) {
        var health = Loupe_V1_HealthResponse()
        health.live = true
        // A backend is healthy when its own Health said ready (a model loaded, its store
        // reachable), so the fields hold for the healthy backends and ready stays their "and".
        health.modelLoaded = shared.backends.anyHealthy
        health.storeReachable = shared.backends.anyHealthy
        health.ready = health.modelLoaded && health.storeReachable
        health.serverVersion = configuration.serverVersion
        health.uptimeMs = UInt64(max(0, (NIODeadline.now() - shared.started).nanoseconds / 1_000_000))
        if !health.ready { health.message = "no healthy model server behind the gateway" }
        if let bytes = try? ByteBuffer(frameWith: header.response(), message: health) {
            context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
        }
    }

    // MARK: Handshake

    private func handshake(_ context: ChannelHandlerContext, _ frame: Frame) {
        let hello: Loupe_V1_Hello
        do {
            hello = try frame.decode()
        } catch {
            shared.audit.record("malformed_hello", tokenID: nil, principal: nil, remote: remote, detail: error.message)
            fail(context, error, replyingTo: frame.header)
            return
        }
        guard hello.protocolVersion == UInt32(FrameHeader.currentVersion) else {
            shared.audit.record(
                "unsupported_version", tokenID: nil, principal: nil, remote: remote,
                detail: "protocol version \(hello.protocolVersion)")
            fail(context, ProtocolError(
                code: .unimplemented,
                message: "protocol version \(hello.protocolVersion) is not spoken here; this gateway speaks 1"),
                 replyingTo: frame.header)
            return
        }
        guard !hello.hasActingFor else {
            shared.audit.record(
                "acting_for_from_client", tokenID: nil, principal: nil, remote: remote,
                detail: "a partner Hello carried acting_for")
            fail(context, ProtocolError(code: .unauthenticated, message: "acting_for is not accepted from clients"),
                 replyingTo: frame.header)
            return
        }
        state = .authenticating(queued: [])
        let authority = shared.authority
        let token = hello.token
        if let verdict = authority.authenticateFromCache(token) {
            // A known token (or a malformed one): decided on the event loop, no task hop.
            handshakeFinished(frame.header, clientName: hello.clientName, verdict)
            return
        }
        let promise = context.eventLoop.makePromise(of: Result<TokenState, TokenAuthority.Refusal>.self)
        promise.completeWithTask { await authority.authenticate(token) }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let header = frame.header
        let clientName = hello.clientName
        promise.futureResult.whenSuccess { result in
            bound.value.handshakeFinished(header, clientName: clientName, result)
        }
    }

    private func handshakeFinished(
        _ header: FrameHeader, clientName: String, _ result: Result<TokenState, TokenAuthority.Refusal>
    ) {
        guard case .authenticating(let queued) = state else { return }
        switch result {
        case .failure(let refusal):
            shared.audit.record(
                refusal.reason, tokenID: refusal.tokenID, principal: refusal.principal, remote: remote,
                detail: "handshake refused (client \(clientName.prefix(80)))")
            fail(context, refusal.error, replyingTo: header)
        case .success(let token):
            handshakeTimer?.cancel()
            handshakeTimer = nil
            let record = token.record
            var actingFor = Loupe_V1_ActingFor()
            actingFor.principal = record.name
            actingFor.scopes = record.scopes
            actingFor.tokenID = record.id
            let session = Session(token: token, principal: record.name, actingFor: actingFor)
            decoder.handshakeCompleted()
            state = .ready(session)
            wasAuthenticated = true
            shared.connectionAuthenticated(from: remote)
            shared.logger.debug("handshake accepted", metadata: [
                "principal": "\(record.name)", "token_id": "\(record.id)", "remote": "\(remote)",
            ])
            do {
                context.writeAndFlush(
                    wrapOutboundOut(try ByteBuffer(frameWith: header.response(), message: welcome(record))), promise: nil)
            } catch {
                fail(context, error, replyingTo: header)
                return
            }
            for (frame, received) in queued { call(context, frame, session: session, received: received) }
            closeIfInputDone(context)
        }
    }

    private func welcome(_ record: TokenRecord) -> Loupe_V1_Welcome {
        var welcome = Loupe_V1_Welcome()
        welcome.principal = record.name
        welcome.scopes = record.scopes.sorted()
        welcome.serverVersion = configuration.serverVersion
        welcome.protocolVersion = UInt32(FrameHeader.currentVersion)
        var limits = Loupe_V1_Limits()
        limits.maxFrameSize = UInt32(clamping: configuration.maxFrameSize)
        limits.maxBatchRows = UInt32(clamping: configuration.maxBatchRows)
        limits.frameDeadlineMs = UInt32(clamping: configuration.frameDeadline.nanoseconds / 1_000_000)
        limits.maxInFlight = UInt32(clamping: configuration.maxInFlightPerConnection)
        limits.maxSimilar = 100
        let l = record.limits
        limits.rowsPerSecond = UInt32(clamping: Int64(l.rowsPerSecond.rounded(.up)))
        limits.callsPerSecond = UInt32(clamping: Int64(l.callsPerSecond.rounded(.up)))
        limits.callBurst = l.callsPerSecond > 0 ? UInt32(clamping: Int64(l.callBurst.rounded(.down))) : 0
        limits.rowBurst = l.rowsPerSecond > 0 ? UInt32(clamping: Int64(l.rowBurst.rounded(.down))) : 0
        limits.dailyRowQuota = UInt64(max(0, l.dailyRowQuota ?? 0))
        welcome.limits = limits
        return welcome
    }

    // MARK: Calls

    private func call(_ context: ChannelHandlerContext, _ frame: Frame, session: Session, received: NIODeadline) {
        let header = frame.header
        let method = header.method
        guard !inFlightIDs.contains(header.requestID) else {
            duplicateRequestID(context, header)
            return
        }
        if header.flags.contains(.compressed) {
            reply(context, Self.compressedFrame(header), to: header)
            return
        }
        if method == .hello {
            reply(context, ProtocolError(
                code: .failedPrecondition, message: "the handshake is already done on this connection"), to: header)
            return
        }
        if let method, !Scope.allows(session.token.scopes, method) {
            shared.audit.record(
                "permission_denied", tokenID: session.token.id, principal: session.principal, remote: remote,
                detail: "\(method) needs \(Scope.required(for: method)?.rawValue ?? "?")")
            reply(context, ProtocolError(
                code: .permissionDenied,
                message: "\(session.principal) may not call \(method): it needs the "
                    + "\(Scope.required(for: method)?.rawValue ?? "?") scope (this token has "
                    + session.token.scopes.map(\.rawValue).sorted().joined(separator: ", ") + ")"), to: header)
            return
        }
        guard shared.authority.isFresh else {
            shared.audit.record(
                "store_unavailable", tokenID: session.token.id, principal: session.principal, remote: remote,
                detail: "call refused: the token store is unreachable", quiet: true)
            reply(context, shared.authority.unavailableError, to: header)
            return
        }
        if method != .health {
            let rows = max(1, Int(header.rowCount))
            switch session.token.admit(rows: rows) {
            case .admitted:
                break
            case .refused(let error, let reason, let closes):
                shared.audit.record(
                    reason, tokenID: session.token.id, principal: session.principal, remote: remote,
                    detail: closes ? "call refused, connection closed" : "\(method.map { "\($0)" } ?? "method \(header.methodID)")",
                    quiet: !closes)
                if closes {
                    fail(context, error, replyingTo: header)
                } else {
                    reply(context, error, to: header)
                }
                return
            }
        }
        inFlight += 1
        inFlightIDs.insert(header.requestID)
        shared.metrics.callStarted()
        forward(frame, session: session, received: received, attempt: 0)
    }

    /// Sends an admitted call to the healthy backend with the fewest calls in flight.
    private func forward(_ frame: Frame, session: Session, received: NIODeadline, attempt: Int) {
        guard let backend = shared.backends.pick() else {
            shared.audit.record(
                "no_backend", tokenID: session.token.id, principal: session.principal, remote: remote,
                detail: "no healthy model server", quiet: true)
            backendFailed(request: frame.header, error: ProtocolError(
                code: .unavailable, message: "no healthy model server behind the gateway; retry shortly",
                retryAfterMilliseconds: UInt32(clamping: configuration.healthCheckInterval.nanoseconds / 1_000_000)),
                outcome: "no_backend")
            return
        }
        if let local = backend.local {
            // A model server in this process: handed over as a frame, no socket.
            backend.callStarted()
            let request = frame.header
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            local.answer(frame, actingFor: session.actingFor, on: context.eventLoop).whenComplete { result in
                backend.callFinished()
                switch result {
                case .success(let reply): bound.value.backendReplied(reply, request: request)
                case .failure(let error):
                    bound.value.backendFailed(request: request, error: ProtocolError(
                        code: .unavailable, message: "the in-process model server failed the call: \(error)",
                        retryAfterMilliseconds: 100))
                }
            }
            return
        }
        pools.connection(to: backend, for: session.actingFor)
            .send(frame, .forwarded(client: self, request: frame.header, attempt: attempt), received: received)
    }

    /// A call that never reached its backend (the connection to it failed first) goes to
    /// another healthy one, once per backend at most.
    func reroute(_ frame: Frame, request: FrameHeader, received: NIODeadline, attempt: Int, error: ProtocolError) {
        guard case .ready(let session) = state, context.channel.isActive,
            attempt < shared.backends.all.count
        else {
            backendFailed(request: request, error: error)
            return
        }
        forward(frame, session: session, received: received, attempt: attempt)
    }

    /// A backend answered a call of this connection.
    func backendReplied(_ frame: Frame, request: FrameHeader) {
        // Counted as finished once the reply is written: a close that waits for the calls in
        // flight (drain, half-close) must find it already queued.
        defer { callFinished(request) }
        let outcome = frame.header.flags.contains(.error) ? "error" : "ok"
        if case .ready(let session) = state {
            shared.metrics.call(principal: session.principal, method: methodName(request), outcome: outcome)
        }
        guard context.channel.isActive else { return }
        var header = frame.header
        header.requestID = request.requestID
        var head = context.channel.allocator.buffer(capacity: FrameHeader.lengthFieldSize + FrameHeader.size)
        head.writeInteger(UInt32(frame.length), endianness: .big)
        head.writeFrameHeader(header)
        if frame.payload.readableBytes > 0 {
            context.write(wrapOutboundOut(head), promise: nil)
            context.writeAndFlush(wrapOutboundOut(frame.payload), promise: nil)
        } else {
            context.writeAndFlush(wrapOutboundOut(head), promise: nil)
        }
    }

    /// A backend failed under a call of this connection (it died, or could not be reached).
    func backendFailed(request: FrameHeader, error: ProtocolError, outcome: String = "unavailable") {
        defer { callFinished(request) }
        if case .ready(let session) = state {
            shared.metrics.call(principal: session.principal, method: methodName(request), outcome: outcome)
        }
        guard context.channel.isActive else { return }
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(errorFrameFor: error, replyingTo: request)), promise: nil)
    }

    private func methodName(_ header: FrameHeader) -> String {
        header.method.map { "\($0)" } ?? "method \(header.methodID)"
    }

    // MARK: Errors

    /// Answers one call with an error; the connection stays open.
    private func reply(_ context: ChannelHandlerContext, _ error: ProtocolError, to header: FrameHeader) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(errorFrameFor: error, replyingTo: header)), promise: nil)
    }

    /// The answer to a frame with the COMPRESSED flag: version 1 defines no compression.
    static func compressedFrame(_ header: FrameHeader) -> ProtocolError {
        ProtocolError(
            code: .unimplemented,
            message: "frame \(header) sets COMPRESSED (0x08): protocol version 1 defines no compression; send it uncompressed")
    }

    /// A call reused the id of one still in flight: a connection-level error, no more reads,
    /// and a close once the calls in flight are answered.
    private func duplicateRequestID(_ context: ChannelHandlerContext, _ header: FrameHeader) {
        shared.logger.info("closing a connection that reused a request id in flight", metadata: [
            "call": "\(header)", "remote": "\(remote)",
        ])
        state = .closing
        draining = true
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(errorFrameFor: ProtocolError(
            code: .invalidArgument,
            message: "request id \(header.requestID) is already in flight on this connection; ids must be unique among "
                + "the calls in flight, so this call was not run and the connection closes once the others are answered"),
            replyingTo: nil)), promise: nil)
        if inFlight == 0 { closeAfterWrites(context, draining: true) }
    }

    /// Closes a connection whose client closed its side once nothing is left to answer (no
    /// call in flight, no handshake under way). The client sends nothing more, so a full close
    /// cannot reset replies it has not read.
    private func closeIfInputDone(_ context: ChannelHandlerContext) {
        guard inputClosed, inFlight == 0 else { return }
        if case .authenticating = state { return }
        state = .closing
        handshakeTimer?.cancel()
        closeAfterWrites(context)
    }

    /// Sends an error (for the call, or connection-level) and closes.
    private func fail(_ context: ChannelHandlerContext, _ error: ProtocolError, replyingTo header: FrameHeader? = nil) {
        if case .closing = state { return }
        state = .closing
        handshakeTimer?.cancel()
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(errorFrameFor: error, replyingTo: header)), promise: nil)
        closeAfterWrites(context)
    }

    /// Closes once everything written so far has gone out: NIO's close fails writes still
    /// queued, which would cut a large last reply short. Writes complete in order, so an empty
    /// write's completion means all before it are out.
    /// A draining connection only closes its output (a FIN after the last reply) and drops what
    /// still arrives until the client closes: a full close with the client's pipelined calls
    /// unread makes the kernel send a reset, which can destroy replies not yet read.
    private func closeAfterWrites(_ context: ChannelHandlerContext, draining: Bool = false) {
        let channel = context.channel
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(ByteBuffer()), promise: written)
        guard draining else {
            written.futureResult.whenComplete { _ in channel.close(promise: nil) }
            return
        }
        outputClosed = true
        context.read()
        written.futureResult.whenComplete { _ in
            channel.close(mode: .output).whenFailure { _ in channel.close(promise: nil) }
        }
    }
}

@available(*, unavailable)
extension GatewayConnectionHandler: Sendable {}

/// Sent down every client connection when the gateway drains: stop reading, close once answered.
struct GatewayDrainEvent: Sendable {}
