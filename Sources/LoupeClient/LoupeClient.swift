import DiamondSchema
import LoupeProtocol
import NIOCore
import NIOPosix
import NIOSSL
import SwiftProtobuf
import Synchronization

/// An async Swift client for the Loupe protocol: one connection, many calls in flight
/// (pipelined; replies are matched by request id, in whatever order they come).
///
///     let client = try await LoupeClient.connect(.init(host: "127.0.0.1", port: 7070, token: secret))
///     let price = try await client.predict(diamond)
///     try await client.close()
///
/// Every method throws `ProtocolError`: the server's status for a failed call, `.unavailable`
/// when the connection drops, `.deadlineExceeded` when `callTimeout` passes.
public final class LoupeClient: Sendable {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        public var token: String
        public var clientName: String
        /// Giving up on connecting after this long.
        public var connectTimeout: TimeAmount
        /// Failing a call that has no reply after this long (nil: wait for ever). Also sent as
        /// the frame's deadline so the server can give up too.
        public var callTimeout: TimeAmount?
        /// The largest reply accepted.
        public var maxReplySize: Int
        /// TLS to the gateway (nil: plaintext, for loopback).
        public var tls: TLSConfiguration?
        /// The name the server's certificate must carry (default: `host`).
        public var tlsServerName: String?

        public init(
            host: String = "127.0.0.1", port: Int = 7070, token: String, clientName: String = "loupe-swift",
            connectTimeout: TimeAmount = .seconds(5), callTimeout: TimeAmount? = .seconds(60),
            maxReplySize: Int = 64 << 20, tls: TLSConfiguration? = nil, tlsServerName: String? = nil
        ) {
            self.tls = tls
            self.tlsServerName = tlsServerName
            self.host = host
            self.port = port
            self.token = token
            self.clientName = clientName
            self.connectTimeout = connectTimeout
            self.callTimeout = callTimeout
            self.maxReplySize = maxReplySize
        }
    }

    public let configuration: Configuration
    /// The server's answer to the handshake: principal, scopes, limits.
    public let welcome: Loupe_V1_Welcome
    private let channel: any Channel
    private let handler: NIOLoopBound<ClientHandler>
    private let nextID = Atomic<UInt32>(2)

    private init(configuration: Configuration, welcome: Loupe_V1_Welcome, channel: any Channel,
                 handler: NIOLoopBound<ClientHandler>) {
        self.configuration = configuration
        self.welcome = welcome
        self.channel = channel
        self.handler = handler
    }

    /// Connects and performs the handshake.
    public static func connect(
        _ configuration: Configuration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws(ProtocolError) -> LoupeClient {
        let limits = FrameLimits(
            maxFrameSizeBeforeHandshake: 1 << 20, maxFrameSize: configuration.maxReplySize,
            frameDeadlineBeforeHandshake: .seconds(30), frameDeadline: .seconds(300))
        let channel: any Channel
        let handler: NIOLoopBound<ClientHandler>
        do {
            let sslContext = try configuration.tls.map { try NIOSSLContext(configuration: $0) }
            let serverName = configuration.tlsServerName ?? configuration.host
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(configuration.connectTimeout)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let sslContext {
                            let isAddress = serverName.contains(":") || serverName.allSatisfy { $0.isNumber || $0 == "." }
                            try channel.pipeline.syncOperations.addHandler(
                                NIOSSLClientHandler(context: sslContext, serverHostname: isAddress ? nil : serverName))
                        }
                        let decoder = FrameDecoder(limits: limits)
                        decoder.handshakeCompleted()
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(decoder))
                        try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(FrameEncoder()))
                        try channel.pipeline.syncOperations.addHandler(ClientHandler())
                    }
                }
                .connect(host: configuration.host, port: configuration.port).get()
            do {
                handler = try await channel.eventLoop.submit {
                    NIOLoopBound(try channel.pipeline.syncOperations.handler(type: ClientHandler.self), eventLoop: channel.eventLoop)
                }.get()
            } catch {
                throw ProtocolError(code: .unavailable, message: "the server closed the connection as soon as it opened")
            }
        } catch let error as ProtocolError {
            throw ProtocolError(code: error.code, message: "\(configuration.host):\(configuration.port): \(error.message)")
        } catch {
            throw ProtocolError(
                code: .unavailable, message: "cannot connect to \(configuration.host):\(configuration.port): \(error)")
        }
        var hello = Loupe_V1_Hello()
        hello.protocolVersion = UInt32(FrameHeader.currentVersion)
        hello.token = configuration.token
        hello.clientName = configuration.clientName
        do {
            let reply = try await Self.send(
                channel: channel, handler: handler, header: .request(.hello, requestID: 1), message: hello,
                timeout: configuration.connectTimeout)
            let welcome: Loupe_V1_Welcome = try reply.decode()
            return LoupeClient(configuration: configuration, welcome: welcome, channel: channel, handler: handler)
        } catch {
            try? await channel.close()
            throw error
        }
    }

    /// Closes the connection; calls in flight fail with `.unavailable`.
    public func close() async {
        try? await channel.close()
    }

    /// Calls `method` with `request` and decodes the reply as `Response`.
    public func call<Response: SwiftProtobuf.Message>(
        _ method: Method, _ request: some SwiftProtobuf.Message, rowCount: UInt32 = 0, as: Response.Type = Response.self
    ) async throws(ProtocolError) -> Response {
        let id = nextID.add(1, ordering: .relaxed).oldValue
        let deadline = configuration.callTimeout.map { UInt32(clamping: $0.nanoseconds / 1_000_000) } ?? 0
        let header = FrameHeader.request(method, requestID: id, rowCount: rowCount, deadlineMilliseconds: deadline)
        let reply = try await Self.send(
            channel: channel, handler: handler, header: header, message: request, timeout: configuration.callTimeout)
        return try reply.decode()
    }

    private static func send(
        channel: any Channel, handler: NIOLoopBound<ClientHandler>, header: FrameHeader,
        message: some SwiftProtobuf.Message, timeout: TimeAmount?
    ) async throws(ProtocolError) -> Frame {
        // BatchPredict's columns go through the specialised encoder (SwiftProtobuf's generic
        // enum encoding costs more than the server's scoring).
        let frame: Frame
        if let request = message as? Loupe_V1_BatchPredictRequest {
            frame = try Frame(header: header, batchPredict: request)
        } else {
            frame = try Frame(header: header, message: message)
        }
        let promise = channel.eventLoop.makePromise(of: Frame.self)
        channel.eventLoop.execute {
            handler.value.send(frame, promise: promise, timeout: timeout, channel: channel)
        }
        do {
            return try await promise.futureResult.get()
        } catch let error as ProtocolError {
            throw error
        } catch {
            throw ProtocolError(code: .unavailable, message: "the call failed: \(error)")
        }
    }

    // MARK: Calls

    public func health() async throws(ProtocolError) -> Loupe_V1_HealthResponse {
        try await call(.health, Loupe_V1_HealthRequest())
    }

    /// Prices one diamond at `level` coverage (0: the server's default).
    public func predict(_ diamond: Diamond, level: Double = 0, model: Loupe_V1_ModelSelector? = nil)
        async throws(ProtocolError) -> Loupe_V1_PredictResponse
    {
        var request = Loupe_V1_PredictRequest()
        request.diamond = Loupe_V1_Diamond(diamond)
        request.level = level
        if let model { request.model = model }
        return try await call(.predict, request)
    }

    /// Prices many diamonds in one call; invalid rows come back in `rowErrors` (NaN prices).
    public func batchPredict(_ rows: Loupe_V1_DiamondColumns, level: Double = 0)
        async throws(ProtocolError) -> Loupe_V1_BatchPredictResponse
    {
        guard let count = rows.rowCount else {
            throw ProtocolError(code: .invalidArgument, message: "the feature columns differ in length")
        }
        var request = Loupe_V1_BatchPredictRequest()
        request.rows = rows
        request.level = level
        return try await call(.batchPredict, request, rowCount: UInt32(count))
    }

    public func listModels(name: String = "") async throws(ProtocolError) -> Loupe_V1_ListModelsResponse {
        var request = Loupe_V1_ListModelsRequest()
        request.name = name
        return try await call(.listModels, request)
    }

    /// Feeds back the prices stones this caller priced later sold for.
    public func reportOutcomes(_ request: Loupe_V1_ReportOutcomesRequest) async throws(ProtocolError)
        -> Loupe_V1_ReportOutcomesResponse
    {
        try await call(.reportOutcomes, request)
    }

    public func retrain(_ request: Loupe_V1_RetrainRequest) async throws(ProtocolError) -> Loupe_V1_RetrainResponse {
        let rows = request.hasRows ? UInt32(request.rows.prices.count) : 0
        return try await call(.retrain, request, rowCount: rows)
    }

    public func job(_ id: String) async throws(ProtocolError) -> Loupe_V1_Job {
        var request = Loupe_V1_GetJobRequest()
        request.jobID = id
        let response: Loupe_V1_GetJobResponse = try await call(.getJob, request)
        return response.job
    }

    public func findSimilar(_ request: Loupe_V1_FindSimilarRequest) async throws(ProtocolError)
        -> Loupe_V1_FindSimilarResponse
    {
        try await call(.findSimilar, request)
    }
}

/// Matches replies to calls by request id. Lives on the channel's event loop.
final class ClientHandler: ChannelInboundHandler {
    typealias InboundIn = Frame
    typealias OutboundOut = Frame

    private var pending: [UInt32: (promise: EventLoopPromise<Frame>, timer: Scheduled<Void>?)] = [:]
    private var closedError: ProtocolError?

    func send(_ frame: Frame, promise: EventLoopPromise<Frame>, timeout: TimeAmount?, channel: any Channel) {
        if let closedError {
            promise.fail(closedError)
            return
        }
        let id = frame.header.requestID
        var timer: Scheduled<Void>?
        if let timeout {
            let loopBound = NIOLoopBound(self, eventLoop: channel.eventLoop)
            timer = channel.eventLoop.scheduleTask(in: timeout) {
                guard let entry = loopBound.value.pending.removeValue(forKey: id) else { return }
                entry.promise.fail(ProtocolError(
                    code: .deadlineExceeded, message: "no reply within \(timeout.nanoseconds / 1_000_000) ms"))
            }
        }
        pending[id] = (promise, timer)
        let bound = NIOLoopBound(self, eventLoop: channel.eventLoop)
        channel.writeAndFlush(frame).whenFailure { error in
            guard let entry = bound.value.pending.removeValue(forKey: id) else { return }
            entry.timer?.cancel()
            entry.promise.fail(ProtocolError(code: .unavailable, message: "sending the call failed: \(error)"))
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if frame.header.requestID == 0 && frame.header.flags.contains(.error) {
            // A connection-level error: the server is about to close.
            let error = (try? frame.decode(Loupe_V1_Status.self)).map(ProtocolError.init(status:))
                ?? ProtocolError(code: .unknown, message: "the server reported a connection error")
            failAll(error)
            return
        }
        guard let entry = pending.removeValue(forKey: frame.header.requestID) else { return }
        entry.timer?.cancel()
        entry.promise.succeed(frame)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(closedError ?? ProtocolError(code: .unavailable, message: "the connection closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll((error as? ProtocolError) ?? ProtocolError(code: .unavailable, message: "connection error: \(error)"))
        context.close(promise: nil)
    }

    private func failAll(_ error: ProtocolError) {
        closedError = closedError ?? error
        let entries = pending
        pending = [:]
        for (_, entry) in entries {
            entry.timer?.cancel()
            entry.promise.fail(error)
        }
    }
}
