import Foundation
import Logging
import LoupeConnection
import LoupeProtocol
import NIOCore
import TokenStore

/// One partner connection through the gateway. The connection's life (handshake, queueing,
/// backpressure, drain, half-close, reused ids, the refused state) is `ConnectionStateMachine`'s;
/// this handler keeps the gateway's policy:
///
/// - Caps: a connection over the gateway's or its address's connection caps is refused; it may
///   only ask `Health` during `refusalGrace`, then gets RESOURCE_EXHAUSTED.
/// - Before the handshake: Health is answered by the gateway itself; small frames only, and the
///   whole handshake must finish within `handshakeTimeout`. Nothing reaches a backend.
/// - The handshake: the token is checked (`TokenAuthority`); a refusal is answered and the
///   connection closed; an accepted token gets a `Welcome` from the gateway with its principal,
///   scopes and limits.
/// - Calls: checked against the token's scopes (PERMISSION_DENIED), its validity (a revoked or
///   expired token closes the connection), the token store's freshness (UNAVAILABLE) and its
///   buckets and quota (RESOURCE_EXHAUSTED with `retry_after_ms`), then forwarded with the
///   payload untouched to the healthy backend with the fewest calls in flight.
/// - Every refusal is audited (`AuditLog`) by reason, never with a secret.
final class GatewayConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = Frame
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Session: Sendable {
        let token: TokenState
        let principal: String
        let actingFor: Loupe_V1_ActingFor
    }

    private let services: GatewayServices
    private let decoder: FrameDecoder
    private var connection: ConnectionStateMachine<Session>
    private var pendingClose = PendingClose()
    /// The partner once the handshake succeeded (for metrics and rerouting after it stops
    /// taking calls).
    private var session: Session?
    private var pools: BackendPools!
    private var context: ChannelHandlerContext!
    private var handshakeTimer: Scheduled<Void>?
    /// What the caps said when the connection opened (nil until then, and once released).
    private var admission: GatewayServices.Admission?
    private var remote = "?"

    init(services: GatewayServices, decoder: FrameDecoder) {
        self.services = services
        self.decoder = decoder
        connection = ConnectionStateMachine(maxInFlight: services.configuration.maxInFlightPerConnection)
    }

    private var configuration: GatewayConfiguration { services.configuration }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        pools = services.pools(for: context.eventLoop)
    }

    func channelActive(context: ChannelHandlerContext) {
        remote = context.remoteAddress?.ipAddress ?? "?"
        let admission = services.connectionOpened(from: remote)
        self.admission = admission
        switch admission {
        case .admitted:
            let timeout = configuration.handshakeTimeout
            handshakeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
                guard let self, let context = self.context, self.session == nil else { return }
                self.services.audit.record(
                    "handshake_timeout", tokenID: nil, principal: nil, remote: self.remote,
                    detail: "no completed handshake within \(timeout.nanoseconds / 1_000_000) ms")
                self.fail(context, ProtocolError(
                    code: .deadlineExceeded,
                    message: "the handshake did not complete within \(timeout.nanoseconds / 1_000_000) ms"))
            }
        case .refused(let refusal), .refusedNow(let refusal):
            services.audit.record("connection_cap", tokenID: nil, principal: nil, remote: remote, detail: refusal, quiet: true)
            let error = ProtocolError(code: .resourceExhausted, message: refusal, retryAfterMilliseconds: 1000)
            guard case .refused = admission else {
                fail(context, error)
                return
            }
            connection.refuse(error)
            handshakeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: configuration.refusalGrace) {
                [weak self] in
                guard let self, let context = self.context else { return }
                self.fail(context, error)
            }
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        connection.closed()
        if let admission {
            self.admission = nil
            services.connectionClosed(from: remote, admission: admission, authenticated: session != nil)
        }
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            if let close = connection.inputEnded() { closeAfterWrites(close) }
            return
        }
        if event is DrainEvent {
            if let close = connection.drain() { closeAfterWrites(close) }
            return
        }
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read, connection.isIdle {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let failure = (error as? ProtocolError)
            ?? ProtocolError(code: .unavailable, message: "connection error: \(error)")
        if failure.code == .cancelled {
            // The client closed part-way through a frame; nobody is left to tell, so it is
            // logged here, and the whole calls before it are still answered.
            services.logger.info("a client closed part-way through a frame", metadata: [
                "status": "\(StatusCode.cancelled)", "remote": "\(remote)", "detail": "\(failure.message)",
            ])
            if let close = connection.inputEnded() { closeAfterWrites(close) }
            return
        }
        if session == nil {
            let reason = failure.code == .resourceExhausted ? "oversize_frame"
                : failure.code == .deadlineExceeded ? "handshake_timeout" : "framing_error"
            services.audit.record(reason, tokenID: nil, principal: nil, remote: remote, detail: failure.message, quiet: true)
        }
        fail(context, failure)
    }

    func read(context: ChannelHandlerContext) {
        if connection.shouldRead() { context.read() }
    }

    // MARK: Frames from the client

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        act(on: connection.received(unwrapInboundIn(data)), context)
    }

    private func act(on action: ConnectionStateMachine<Session>.FrameAction, _ context: ChannelHandlerContext) {
        switch action {
        case .drop, .queued:
            break
        case .fail(let error, let header, let reason):
            switch reason {
            case .notARequest:
                if session == nil {
                    services.audit.record(
                        "before_handshake", tokenID: nil, principal: nil, remote: remote, detail: "a non-request frame")
                }
            case .beforeHandshake:
                services.audit.record(
                    "before_handshake", tokenID: nil, principal: nil, remote: remote,
                    detail: "method \(header?.methodID ?? 0) before Hello")
            case .compressedBeforeHandshake, .tooManyQueued, .overCapacity:
                break
            }
            sendFailure(context, error, replyingTo: header)
        case .handshake(let frame):
            handshake(context, frame)
        case .health(let frame):
            answerHealthLocally(context, frame.header)
        case .call(let frame, let session, let received):
            call(context, frame, session: session, received: received)
        case .reject(let error, let frame, _):
            reply(context, error, to: frame.header)
        case .violation(let error, let closeNow):
            services.logger.info("closing a connection that broke the protocol", metadata: [
                "error": "\(error.message)", "remote": "\(remote)",
            ])
            send(context, ByteBuffer(errorFrameFor: error, replyingTo: nil))
            if closeNow { closeAfterWrites(.output) }
        }
    }

    private func answerHealthLocally(_ context: ChannelHandlerContext, _ header: FrameHeader) {
        var health = Loupe_V1_HealthResponse()
        health.live = true
        // A backend is healthy when its own Health said ready (a model loaded, its store
        // reachable), so the fields hold for the healthy backends and ready stays their "and".
        health.modelLoaded = services.backends.anyHealthy
        health.storeReachable = services.backends.anyHealthy
        health.ready = health.modelLoaded && health.storeReachable
        health.serverVersion = configuration.serverVersion
        health.uptimeMs = UInt64(max(0, (NIODeadline.now() - services.started).nanoseconds / 1_000_000))
        if !health.ready { health.message = "no healthy model server behind the gateway" }
        if let bytes = try? ByteBuffer(frameWith: header.response(), message: health) { send(context, bytes) }
    }

    // MARK: Handshake

    private func handshake(_ context: ChannelHandlerContext, _ frame: Frame) {
        let hello: Loupe_V1_Hello
        do {
            hello = try frame.decode()
        } catch {
            services.audit.record("malformed_hello", tokenID: nil, principal: nil, remote: remote, detail: error.message)
            connection.handshakeFailed()
            sendFailure(context, error, replyingTo: frame.header)
            return
        }
        guard hello.protocolVersion == UInt32(FrameHeader.currentVersion) else {
            services.audit.record(
                "unsupported_version", tokenID: nil, principal: nil, remote: remote,
                detail: "protocol version \(hello.protocolVersion)")
            connection.handshakeFailed()
            sendFailure(context, ProtocolError(
                code: .unimplemented,
                message: "protocol version \(hello.protocolVersion) is not spoken here; this gateway speaks 1"),
                 replyingTo: frame.header)
            return
        }
        guard !hello.hasActingFor else {
            services.audit.record(
                "acting_for_from_client", tokenID: nil, principal: nil, remote: remote,
                detail: "a partner Hello carried acting_for")
            connection.handshakeFailed()
            sendFailure(context, ProtocolError(code: .unauthenticated, message: "acting_for is not accepted from clients"),
                 replyingTo: frame.header)
            return
        }
        let authority = services.authority
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
        guard connection.isAuthenticating else { return }
        switch result {
        case .failure(let refusal):
            services.audit.record(
                refusal.reason, tokenID: refusal.tokenID, principal: refusal.principal, remote: remote,
                detail: "handshake refused (client \(clientName.prefix(80))))")
            connection.handshakeFailed()
            sendFailure(context, refusal.error, replyingTo: header)
        case .success(let token):
            handshakeTimer?.cancel()
            handshakeTimer = nil
            let record = token.record
            var actingFor = Loupe_V1_ActingFor()
            actingFor.principal = record.name
            actingFor.scopes = record.scopes
            actingFor.tokenID = record.id
            let session = Session(token: token, principal: record.name, actingFor: actingFor)
            self.session = session
            decoder.handshakeCompleted()
            services.connectionAuthenticated(from: remote)
            services.logger.debug("handshake accepted", metadata: [
                "principal": "\(record.name)", "token_id": "\(record.id)", "remote": "\(remote)",
            ])
            let (queued, close) = connection.handshakeSucceeded(session)
            do {
                send(context, try ByteBuffer(frameWith: header.response(), message: welcome(record)))
            } catch {
                fail(context, error, replyingTo: header)
                return
            }
            for action in queued { act(on: action, context) }
            if let close { closeAfterWrites(close) }
        }
    }

    private func welcome(_ record: TokenRecord) -> Loupe_V1_Welcome {
        var limits = Loupe_V1_Limits(
            maxFrameSize: configuration.maxFrameSize, frameDeadline: configuration.frameDeadline,
            maxBatchRows: configuration.maxBatchRows, maxInFlight: configuration.maxInFlightPerConnection, maxSimilar: 100)
        let l = record.limits
        limits.rowsPerSecond = UInt32(clamping: Int64(l.rowsPerSecond.rounded(.up)))
        limits.callsPerSecond = UInt32(clamping: Int64(l.callsPerSecond.rounded(.up)))
        limits.callBurst = l.callsPerSecond > 0 ? UInt32(clamping: Int64(l.callBurst.rounded(.down))) : 0
        limits.rowBurst = l.rowsPerSecond > 0 ? UInt32(clamping: Int64(l.rowBurst.rounded(.down))) : 0
        limits.dailyRowQuota = UInt64(max(0, l.dailyRowQuota ?? 0))
        return Loupe_V1_Welcome(
            principal: record.name, scopes: record.scopes, serverVersion: configuration.serverVersion, limits: limits)
    }

    // MARK: Calls

    private func call(_ context: ChannelHandlerContext, _ frame: Frame, session: Session, received: NIODeadline) {
        let header = frame.header
        let method = header.method
        if method == .hello {
            reply(context, ProtocolError(
                code: .failedPrecondition, message: "the handshake is already done on this connection"), to: header)
            return
        }
        if let method, !Scope.allows(session.token.scopes, method) {
            services.audit.record(
                "permission_denied", tokenID: session.token.id, principal: session.principal, remote: remote,
                detail: "\(method) needs \(Scope.required(for: method)?.rawValue ?? "?")")
            reply(context, ProtocolError(
                code: .permissionDenied,
                message: "\(session.principal) may not call \(method): it needs the "
                    + "\(Scope.required(for: method)?.rawValue ?? "?") scope (this token has "
                    + session.token.scopes.map(\.rawValue).sorted().joined(separator: ", ") + ")"), to: header)
            return
        }
        guard services.authority.isFresh else {
            services.audit.record(
                "store_unavailable", tokenID: session.token.id, principal: session.principal, remote: remote,
                detail: "call refused: the token store is unreachable", quiet: true)
            reply(context, services.authority.unavailableError, to: header)
            return
        }
        if method != .health {
            let rows = max(1, Int(header.rowCount))
            let now = services.clock.now()
            let admission: TokenState.Admission
            if services.authority.sharesRateLimits {
                // The call may wait for budget leased from the store; its answer comes back here,
                // on this connection's event loop.
                let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
                let eventLoop = context.eventLoop
                admission = session.token.admit(rows: rows, now: now) { decided in
                    eventLoop.execute {
                        bound.value.leaseDecided(decided, frame, session: session, received: received)
                    }
                }
            } else {
                admission = session.token.admit(rows: rows, now: now)
            }
            switch admission {
            case .admitted:
                break
            case .waiting:
                // In flight from now on (backpressure, drain and reused ids count it); answered
                // when the lease is.
                services.metrics.rateLeaseWait()
                connection.callStarted(header)
                services.metrics.callStarted()
                return
            case .refused(let error, let reason, let closes):
                refuse(context, header, session: session, error, reason: reason, closes: closes)
                return
            }
        }
        connection.callStarted(header)
        services.metrics.callStarted()
        forward(frame, session: session, received: received, attempt: 0)
    }

    /// A call refused by its token's validity, quota or rate limits: audited, answered, and the
    /// connection closed when the token stopped being valid.
    private func refuse(
        _ context: ChannelHandlerContext, _ header: FrameHeader, session: Session, _ error: ProtocolError,
        reason: String, closes: Bool
    ) {
        services.audit.record(
            reason, tokenID: session.token.id, principal: session.principal, remote: remote,
            detail: closes ? "call refused, connection closed" : methodName(header), quiet: !closes)
        if closes {
            fail(context, error, replyingTo: header)
        } else {
            reply(context, error, to: header)
        }
    }

    /// A call that waited for a lease (already marked started) was decided.
    private func leaseDecided(
        _ admission: TokenState.Admission, _ frame: Frame, session: Session, received: NIODeadline
    ) {
        guard context.channel.isActive else {
            callFinished(frame.header)
            return
        }
        switch admission {
        case .admitted:
            forward(frame, session: session, received: received, attempt: 0)
        case .refused(let error, let reason, let closes):
            refuse(context, frame.header, session: session, error, reason: reason, closes: closes)
            callFinished(frame.header)
        case .waiting:
            // Not expected (a lease answers every call it kept waiting), but never leave a call
            // unanswered.
            reply(context, ProtocolError(
                code: .unavailable, message: "the rate limit could not be checked; retry", retryAfterMilliseconds: 100),
                to: frame.header)
            callFinished(frame.header)
        }
    }

    /// Sends an admitted call to the healthy backend with the fewest calls in flight.
    private func forward(_ frame: Frame, session: Session, received: NIODeadline, attempt: Int) {
        guard let backend = services.backends.pick() else {
            services.audit.record(
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
        let retry = BackendConnection.retriedMethods.contains(frame.header.methodID)
            ? BackendConnection.Retry(frame: frame, received: received) : nil
        pools.connection(to: backend, for: session.actingFor)
            .send(frame, .forwarded(client: self, request: frame.header, attempt: attempt, retry: retry), received: received)
    }

    /// An idempotent call whose backend went away before answering runs once more, on another
    /// healthy backend (the dead one is marked unhealthy first); without one it fails as before.
    func retry(_ frame: Frame, request: FrameHeader, received: NIODeadline, error: ProtocolError) {
        guard let session, context.channel.isActive, services.backends.all.count > 1 else {
            backendFailed(request: request, error: error)
            return
        }
        services.metrics.retried(method: methodName(request))
        forward(frame, session: session, received: received, attempt: max(1, services.backends.all.count))
    }

    /// A call that never reached its backend (the connection to it failed first) goes to
    /// another healthy one, once per backend at most.
    func reroute(_ frame: Frame, request: FrameHeader, received: NIODeadline, attempt: Int, error: ProtocolError) {
        guard let session, context.channel.isActive, attempt < services.backends.all.count else {
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
        if let session {
            services.metrics.call(principal: session.principal, method: methodName(request), outcome: outcome)
        }
        guard context.channel.isActive else { return }
        var header = frame.header
        header.requestID = request.requestID
        var head = context.channel.allocator.buffer(capacity: FrameHeader.lengthFieldSize + FrameHeader.size)
        head.writeInteger(UInt32(frame.length), endianness: .big)
        head.writeFrameHeader(header)
        if frame.payload.readableBytes > 0 {
            // The payload slice as received: NIO writes both with one writev, no copy.
            context.write(wrapOutboundOut(head), promise: nil)
            send(context, frame.payload)
        } else {
            send(context, head)
        }
    }

    /// A backend failed under a call of this connection (it died, or could not be reached).
    func backendFailed(request: FrameHeader, error: ProtocolError, outcome: String = "unavailable") {
        defer { callFinished(request) }
        if let session {
            services.metrics.call(principal: session.principal, method: methodName(request), outcome: outcome)
        }
        guard context.channel.isActive else { return }
        send(context, ByteBuffer(errorFrameFor: error, replyingTo: request))
    }

    private func callFinished(_ request: FrameHeader) {
        services.metrics.callFinished()
        switch connection.callFinished(request) {
        case .nothing: break
        case .read: context.read()
        case .close(let close): closeAfterWrites(close)
        }
    }

    private func methodName(_ header: FrameHeader) -> String {
        header.method.map { "\($0)" } ?? "method \(header.methodID)"
    }

    // MARK: Writing and closing

    /// Writes and flushes `bytes`, remembering the write so a close waits for it.
    private func send(_ context: ChannelHandlerContext, _ bytes: ByteBuffer) {
        pendingClose.wrote(context.writeAndFlush(wrapOutboundOut(bytes)))
    }

    /// Answers one call with an error; the connection stays open.
    private func reply(_ context: ChannelHandlerContext, _ error: ProtocolError, to header: FrameHeader) {
        send(context, ByteBuffer(errorFrameFor: error, replyingTo: header))
    }

    /// The connection fails now (a timeout, a refusal, a framing error): the error (for the
    /// call, or connection-level), then a close.
    private func fail(_ context: ChannelHandlerContext, _ error: ProtocolError, replyingTo header: FrameHeader? = nil) {
        guard connection.failed() else { return }
        sendFailure(context, error, replyingTo: header)
    }

    /// Sends the error that ends the connection and closes after it.
    private func sendFailure(_ context: ChannelHandlerContext, _ error: ProtocolError, replyingTo header: FrameHeader?) {
        handshakeTimer?.cancel()
        send(context, ByteBuffer(errorFrameFor: error, replyingTo: header))
        closeAfterWrites(.all)
    }

    private func closeAfterWrites(_ close: ConnectionClose) {
        handshakeTimer?.cancel()
        pendingClose.close(close, context: context)
    }
}

@available(*, unavailable)
extension GatewayConnectionHandler: Sendable {}
