import Logging
import LoupeProtocol
import NIOCore

/// One connection from the gateway to a model server, on one event loop: its handshake with
/// the internal secret (and `acting_for` the token it carries calls for), then calls from any
/// client connection of that token on the same loop. Each call gets a fresh request id on
/// this connection; the reply's id is mapped back to the client's.
///
/// When the connection fails or closes, the calls in flight on it that are safe to run twice
/// (`retriedMethods`) go once to another healthy backend; the others are answered UNAVAILABLE.
/// If calls were in flight or the handshake never finished, the backend is marked unhealthy
/// until a health check passes again.
final class BackendConnection: ChannelInboundHandler {
    typealias InboundIn = Frame
    typealias OutboundOut = ByteBuffer

    /// A call waiting for its reply.
    enum Pending {
        /// From a client connection: where the reply goes, the client's request header, how
        /// many backends were tried before this one, and (for a call that may be retried) the
        /// request as received, to send again.
        case forwarded(client: GatewayConnectionHandler, request: FrameHeader, attempt: Int, retry: Retry?)
        /// The gateway's own (health checks).
        case local(EventLoopPromise<Frame>)
    }

    /// What a retry needs: the request frame and when it arrived (its deadline runs from then).
    struct Retry {
        var frame: Frame
        var received: NIODeadline
    }

    /// Methods that read or record idempotently, so a call whose backend died before it
    /// answered may run again elsewhere: the partner sees the answer, not the failure. Retrain
    /// starts a job, so it is never sent twice.
    static let retriedMethods: Set<UInt16> = [
        Method.predict.rawValue, Method.batchPredict.rawValue, Method.findSimilar.rawValue, Method.listModels.rawValue,
        Method.getJob.rawValue, Method.reportOutcomes.rawValue,
    ]

    private enum State {
        case connecting(queued: [(Frame, Pending, NIODeadline)])
        case handshaking(ChannelHandlerContext, queued: [(Frame, Pending, NIODeadline)])
        case ready(ChannelHandlerContext)
        case closed
    }

    let backend: Backend
    /// Whom the calls are for (nil: the gateway itself, e.g. health checks).
    let actingFor: Loupe_V1_ActingFor?
    private let internalSecret: String
    private let logger: Logger
    private let onClose: (BackendConnection) -> Void
    private var state = State.connecting(queued: [])
    private var pending: [UInt32: Pending] = [:]
    private var nextID: UInt32 = 2
    /// The backend's `Welcome.limits.max_in_flight` (64 until known).
    private(set) var maxInFlight = 64

    init(
        backend: Backend, actingFor: Loupe_V1_ActingFor?, internalSecret: String, logger: Logger,
        onClose: @escaping (BackendConnection) -> Void
    ) {
        self.backend = backend
        self.actingFor = actingFor
        self.internalSecret = internalSecret
        self.logger = logger
        self.onClose = onClose
    }

    /// Calls waiting for replies.
    var inFlight: Int { pending.count }
    var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    // MARK: Calls

    /// Sends a request frame (its request id is replaced); the reply goes to `pending`.
    func send(_ frame: Frame, _ call: Pending, received: NIODeadline) {
        switch state {
        case .connecting(var queued):
            queued.append((frame, call, received))
            state = .connecting(queued: queued)
        case .handshaking(let context, var queued):
            queued.append((frame, call, received))
            state = .handshaking(context, queued: queued)
        case .ready(let context):
            write(context, frame, call, received: received)
            context.flush()
        case .closed:
            fail(call, Self.lost(backend))
        }
    }

    private func write(_ context: ChannelHandlerContext, _ frame: Frame, _ call: Pending, received: NIODeadline) {
        var id = nextID
        while id < 2 || pending[id] != nil { id &+= 1 }
        nextID = id &+ 1
        pending[id] = call
        backend.callStarted()
        var header = frame.header
        header.requestID = id
        if header.deadlineMilliseconds > 0 {
            // Pass on the time the client has left.
            let held = UInt32(clamping: (NIODeadline.now() - received).nanoseconds / 1_000_000)
            header.deadlineMilliseconds = max(1, header.deadlineMilliseconds &- min(held, header.deadlineMilliseconds))
        }
        var head = context.channel.allocator.buffer(capacity: FrameHeader.lengthFieldSize + FrameHeader.size)
        head.writeInteger(UInt32(frame.length), endianness: .big)
        head.writeFrameHeader(header)
        context.write(wrapOutboundOut(head), promise: nil)
        if frame.payload.readableBytes > 0 { context.write(wrapOutboundOut(frame.payload), promise: nil) }
    }

    /// Closes the connection (calls in flight get UNAVAILABLE).
    func closeChannel() {
        switch state {
        case .handshaking(let context, _), .ready(let context): context.close(promise: nil)
        case .connecting: close(reason: Self.lost(backend))
        case .closed: break
        }
    }

    // MARK: Channel events

    func channelActive(context: ChannelHandlerContext) {
        guard case .connecting(let queued) = state else { return }
        state = .handshaking(context, queued: queued)
        var hello = Loupe_V1_Hello()
        hello.protocolVersion = UInt32(FrameHeader.currentVersion)
        hello.token = internalSecret
        hello.clientName = "loupe-gateway"
        if let actingFor { hello.actingFor = actingFor }
        do {
            context.writeAndFlush(
                wrapOutboundOut(try ByteBuffer(frameWith: .request(.hello, requestID: 1), message: hello)), promise: nil)
        } catch {
            context.close(promise: nil)
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let header = frame.header
        if case .handshaking(_, let queued) = state {
            guard header.requestID == 1, header.method == .hello else { return }
            guard !header.flags.contains(.error), let welcome = try? frame.decode(Loupe_V1_Welcome.self) else {
                let error = (try? frame.decode(Loupe_V1_Status.self)).map(ProtocolError.init(status:))
                logger.error(
                    "the model server refused the gateway's handshake; check that both use the same internal secret",
                    metadata: ["backend": "\(backend.address)", "error": "\(error.map { "\($0)" } ?? "no welcome")"])
                context.close(promise: nil)
                return
            }
            if welcome.limits.maxInFlight > 0 { maxInFlight = Int(welcome.limits.maxInFlight) }
            state = .ready(context)
            for (frame, call, received) in queued { write(context, frame, call, received: received) }
            context.flush()
            return
        }
        if header.requestID == 0 {
            // A connection-level error: the server is closing this connection.
            let error = (try? frame.decode(Loupe_V1_Status.self)).map(ProtocolError.init(status:))
            logger.warning(
                "the model server reported a connection error", metadata: [
                    "backend": "\(backend.address)", "error": "\(error.map { "\($0)" } ?? "?")",
                ])
            return
        }
        guard let call = pending.removeValue(forKey: header.requestID) else { return }
        backend.callFinished()
        switch call {
        case .forwarded(let client, let request, _, _):
            client.backendReplied(frame, request: request)
        case .local(let promise):
            promise.succeed(frame)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        close(reason: Self.lost(backend))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.warning("model server connection failed", metadata: ["backend": "\(backend.address)", "error": "\(error)"])
        context.close(promise: nil)
    }

    /// The connection attempt itself failed.
    func connectFailed(_ error: any Error) {
        logger.warning("cannot connect to a model server", metadata: ["backend": "\(backend.address)", "error": "\(error)"])
        close(reason: ProtocolError(
            code: .unavailable, message: "the model server at \(backend.address) cannot be reached; retry",
            retryAfterMilliseconds: 100))
    }

    private func close(reason: ProtocolError) {
        let queued: [(Frame, Pending, NIODeadline)]
        let wasReady: Bool
        switch state {
        case .closed: return
        case .connecting(let q): queued = q; wasReady = false
        case .handshaking(_, let q): queued = q; wasReady = false
        case .ready: queued = []; wasReady = true
        }
        state = .closed
        let calls = pending
        pending = [:]
        if !calls.isEmpty || !wasReady, backend.connectionFailed() {
            logger.warning("model server marked unhealthy", metadata: ["backend": "\(backend.address)"])
        }
        // Sent calls may have run: an idempotent one goes once to another backend, the others
        // are answered UNAVAILABLE.
        for (_, call) in calls {
            backend.callFinished()
            if case .forwarded(let client, let request, let attempt, let retry?) = call, attempt == 0 {
                client.retry(retry.frame, request: request, received: retry.received, error: reason)
            } else {
                fail(call, reason)
            }
        }
        // Queued calls never left the gateway: another healthy backend may take them.
        for (frame, call, received) in queued {
            if case .forwarded(let client, let request, let attempt, _) = call {
                client.reroute(frame, request: request, received: received, attempt: attempt + 1, error: reason)
            } else {
                fail(call, reason)
            }
        }
        onClose(self)
    }

    private func fail(_ call: Pending, _ error: ProtocolError) {
        switch call {
        case .forwarded(let client, let request, _, _):
            client.backendFailed(request: request, error: error)
        case .local(let promise):
            promise.fail(error)
        }
    }

    static func lost(_ backend: Backend) -> ProtocolError {
        ProtocolError(
            code: .unavailable,
            message: "the model server at \(backend.address) went away during the call; it was not answered, retry",
            retryAfterMilliseconds: 100)
    }
}
