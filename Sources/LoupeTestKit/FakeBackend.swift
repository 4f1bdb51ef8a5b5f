import LoupeProtocol
import NIOCore
import NIOPosix
import Synchronization

/// A stand-in model server for gateway tests: it speaks the protocol just enough (Hello with
/// one secret, Health, and canned replies to every call) and counts what reaches it, so a
/// test can prove that nothing unauthenticated got through. It can hold replies (calls stay
/// in flight), be stopped (a backend dying mid-call) and be restarted on the same port.
public final class FakeBackend: Sendable {
    /// What reached the backend.
    public struct Stats: Sendable {
        /// Connections accepted.
        public var connections = 0
        /// Hellos with the right secret.
        public var acceptedHellos = 0
        /// Hellos with another token.
        public var refusedHellos = 0
        /// `acting_for` principals of accepted Hellos, in order.
        public var actingFor: [String] = []
        /// Health frames.
        public var healthFrames = 0
        /// Call frames (anything but Hello and Health) by method id.
        public var calls: [UInt16: Int] = [:]
        /// Call frames by the principal of their connection.
        public var callsByPrincipal: [String: Int] = [:]
        /// Frames other than Hello and Health on connections that had not shaken hands.
        public var unauthenticatedFrames = 0
        /// The deadline field of the last call.
        public var lastDeadline: UInt32 = 0
        /// Every call frame, summed.
        public var totalCalls: Int { calls.values.reduce(0, +) }
    }

    /// The secret Hellos must carry.
    public let secret: String
    private let state = Mutex<(stats: Stats, channels: [ObjectIdentifier: any Channel])>((Stats(), [:]))
    private let server = Mutex<(any Channel)?>(nil)
    private let holding = Atomic<Bool>(false)
    private let notReady = Atomic<Bool>(false)
    private let held = Mutex<[(any Channel, ByteBuffer)]>([])

    /// A backend accepting `secret`; call `start`.
    public init(secret: String) {
        self.secret = secret
    }

    /// Listens on 127.0.0.1:`port` (0: any free port); returns the port.
    @discardableResult
    public func start(port: Int = 0) async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in
                let id = ObjectIdentifier(channel)
                self.state.withLock {
                    $0.stats.connections += 1
                    $0.channels[id] = channel
                }
                channel.closeFuture.whenComplete { _ in self.state.withLock { _ = $0.channels.removeValue(forKey: id) } }
                return channel.eventLoop.makeCompletedFuture {
                    let decoder = FrameDecoder(limits: FrameLimits(maxFrameSizeBeforeHandshake: 1 << 26, maxFrameSize: 1 << 26))
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(decoder))
                    try channel.pipeline.syncOperations.addHandler(FakeBackendHandler(backend: self))
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        server.withLock { $0 = channel }
        return channel.localAddress!.port!
    }

    /// The port it listens on.
    public var port: Int? { server.withLock { $0?.localAddress?.port } }

    /// Stops listening and drops every connection at once (calls in flight are never answered).
    public func stop() async {
        let listener = server.withLock { current -> (any Channel)? in
            defer { current = nil }
            return current
        }
        try? await listener?.close()
        let open = state.withLock { Array($0.channels.values) }
        for channel in open { try? await channel.close() }
        held.withLock { $0 = [] }
    }

    /// A snapshot of the counters.
    public var stats: Stats { state.withLock { $0.stats } }

    /// While true, calls are received and counted but not answered.
    public func hold(_ on: Bool) {
        holding.store(on, ordering: .relaxed)
        if !on {
            let frames = held.withLock { frames -> [(any Channel, ByteBuffer)] in
                defer { frames = [] }
                return frames
            }
            for (channel, bytes) in frames { channel.writeAndFlush(bytes, promise: nil) }
        }
    }

    /// Calls received and not answered yet.
    public var heldCount: Int { held.withLock { $0.count } }

    /// Health answers `ready: false` while set.
    public func setReady(_ ready: Bool) { notReady.store(!ready, ordering: .relaxed) }

    fileprivate func record(_ body: (inout Stats) -> Void) { state.withLock { body(&$0.stats) } }
    fileprivate var isHolding: Bool { holding.load(ordering: .relaxed) }
    fileprivate var isReady: Bool { !notReady.load(ordering: .relaxed) }
    fileprivate func keep(_ channel: any Channel, _ bytes: ByteBuffer) { held.withLock { $0.append((channel, bytes)) } }
}

private final class FakeBackendHandler: ChannelInboundHandler {
    typealias InboundIn = Frame
    typealias OutboundOut = ByteBuffer

    private let backend: FakeBackend
    private var principal: String?

    init(backend: FakeBackend) {
        self.backend = backend
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let header = frame.header
        switch header.method {
        case .hello:
            let hello = try? frame.decode(Loupe_V1_Hello.self)
            guard let hello, hello.token == backend.secret else {
                backend.record { $0.refusedHellos += 1 }
                let error = ProtocolError(code: .unauthenticated, message: "the token is not valid for this server")
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(errorFrameFor: error, replyingTo: header)), promise: nil)
                context.close(promise: nil)
                return
            }
            let name = hello.hasActingFor ? hello.actingFor.principal : "trusted"
            principal = name
            backend.record {
                $0.acceptedHellos += 1
                if hello.hasActingFor { $0.actingFor.append(name) }
            }
            var welcome = Loupe_V1_Welcome()
            welcome.principal = name
            welcome.protocolVersion = 1
            welcome.limits.maxInFlight = 64
            send(context, try? ByteBuffer(frameWith: header.response(), message: welcome))
        case .health:
            backend.record { $0.healthFrames += 1 }
            var health = Loupe_V1_HealthResponse()
            health.live = true
            health.ready = backend.isReady
            health.modelLoaded = backend.isReady
            health.storeReachable = true
            send(context, try? ByteBuffer(frameWith: header.response(), message: health))
        default:
            guard let principal else {
                backend.record { $0.unauthenticatedFrames += 1 }
                context.close(promise: nil)
                return
            }
            backend.record {
                $0.calls[header.methodID, default: 0] += 1
                $0.callsByPrincipal[principal, default: 0] += 1
                $0.lastDeadline = header.deadlineMilliseconds
            }
            let reply: ByteBuffer?
            switch header.method {
            case .predict:
                var response = Loupe_V1_PredictResponse()
                response.price = 1000
                response.low = 900
                response.high = 1100
                response.level = 0.9
                response.modelName = principal
                response.modelVersion = 1
                reply = try? ByteBuffer(frameWith: header.response(), message: response)
            case .batchPredict:
                var response = Loupe_V1_BatchPredictResponse()
                response.prices = Array(repeating: 1000, count: Int(header.rowCount))
                response.modelName = principal
                reply = try? ByteBuffer(frameWith: header.response(rowCount: header.rowCount), message: response)
            default:
                var empty = ByteBuffer()
                empty.writeFrame(Frame(header: header.response(), payload: ByteBuffer()))
                reply = empty
            }
            guard let reply else { return }
            if backend.isHolding {
                backend.keep(context.channel, reply)
            } else {
                send(context, reply)
            }
        }
    }

    private func send(_ context: ChannelHandlerContext, _ bytes: ByteBuffer?) {
        guard let bytes else { return }
        context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
    }
}
