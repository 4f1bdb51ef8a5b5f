import Logging
import LoupeConnection
import LoupeProtocol
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization
import TokenStore

/// The museum entrance: partners connect here (TLS optional), prove their token in the
/// handshake, and their calls are forwarded — payloads untouched — to healthy model servers,
/// within their scopes, rate limits and quota. Nothing unauthenticated reaches a model server.
///
/// Use it as a `Service` (`run()` serves until graceful shutdown) or drive it with `start()`
/// and `shutdown()`. See docs/GATEWAY.md.
public final class Gateway: Service, Sendable {
    /// The configuration it was made with.
    public let configuration: GatewayConfiguration
    /// Its metrics.
    public let metrics: GatewayMetrics
    /// The token store it checks.
    public let tokens: any TokenStore
    let services: GatewayServices
    private let checkers: [HealthChecker]
    private let logger: Logger
    private let running = Mutex<Running?>(nil)
    private let connections = OpenConnections()

    private struct Running: @unchecked Sendable {
        var channel: any Channel
        var metricsChannel: (any Channel)?
        var tasks: [Task<Void, Never>]
    }

    /// A gateway over `tokens`, forwarding to `inProcess` (a model server in this process, if
    /// any) and `configuration.backends`.
    ///
    /// Rate limits are shared with the other gateways on the same store when the store offers
    /// it (`RateLeaseStore`: PostgreSQL) and `configuration.rateLeaseSlice` is not zero;
    /// otherwise each gateway limits on its own. `clock` is what the limits run on (tests pass a
    /// simulated one).
    public init(
        configuration: GatewayConfiguration, tokens: any TokenStore, inProcess: (any InProcessBackend)? = nil,
        metrics: GatewayMetrics = GatewayMetrics(), clock: GatewayClock = .system,
        logger: Logger = Logger(label: "loupe.gateway")
    ) {
        self.configuration = configuration
        self.metrics = metrics
        self.tokens = tokens
        self.logger = logger
        let audit = AuditLog(logger: logger, metrics: metrics)
        var leasing: RateLeasing?
        if let shared = tokens as? any RateLeaseStore, configuration.rateLeaseSlice > .zero {
            leasing = RateLeasing(store: shared, configuration: configuration, clock: clock, metrics: metrics, logger: logger)
        } else {
            metrics.rateLimits(shared: false)
        }
        let authority = TokenAuthority(
            store: tokens, configuration: configuration, logger: logger, audit: audit, clock: clock, leasing: leasing)
        let backends = BackendSet(configuration.backends, local: inProcess, metrics: metrics)
        services = GatewayServices(
            configuration: configuration, authority: authority, audit: audit, metrics: metrics, backends: backends,
            clock: clock, logger: logger)
        let group = MultiThreadedEventLoopGroup.singleton
        checkers = backends.all.map {
            HealthChecker(
                backend: $0, eventLoop: group.next(), internalSecret: configuration.internalSecret,
                interval: configuration.healthCheckInterval, timeout: configuration.healthCheckTimeout, logger: logger)
        }
    }

    /// The public port, once started.
    public var port: Int? { running.withLock { $0?.channel.localAddress?.port } }
    /// The metrics port, once started (nil when off).
    public var metricsPort: Int? { running.withLock { $0?.metricsChannel?.localAddress?.port } }
    /// Connections open now.
    public var connectionCount: Int { services.connectionCounts.total }
    /// Whether each backend is healthy now, in configuration order.
    public var backendHealth: [Bool] { services.backends.all.map(\.isHealthy) }

    /// Loads the tokens, probes the backends once, and starts listening.
    public func start() async throws {
        guard !services.backends.all.isEmpty else { throw GatewayError("the gateway needs at least one backend") }
        guard !configuration.internalSecret.isEmpty || configuration.backends.isEmpty else {
            throw GatewayError("the gateway needs the backends' internal secret")
        }
        guard configuration.tls != nil || configuration.allowPlaintext || configuration.isLoopback else {
            throw GatewayError(
                "refusing plaintext on \(configuration.host): tokens would cross the network in clear; give a TLS "
                    + "certificate and key, or allow plaintext explicitly")
        }
        // A port past 65535 would be truncated to 16 bits by the socket layer (70000 → 4464).
        let ports: [(Int?, String)] = [
            (configuration.port, "the gateway"), (configuration.metricsPort, "the gateway's metrics endpoint"),
        ]
        for case let (port?, component) in ports where !(0...65535).contains(port) {
            throw GatewayError("\(component): port \(port) is out of range (1-65535, or 0 for any free port)")
        }
        let sslContext = try configuration.tls.map(Self.sslContext)
        if await !services.authority.refresh() {
            logger.error("the token store did not answer at start; partners get UNAVAILABLE until it does")
        }
        // Counted among the live gateways before the first call (the share to fall back to).
        await services.authority.leasing?.heartbeat()
        for checker in checkers { await checker.check() }

        let services = services
        let configuration = configuration
        let limits = FrameLimits(
            maxFrameSizeBeforeHandshake: configuration.maxFrameSizeBeforeHandshake,
            maxFrameSize: configuration.maxFrameSize, frameDeadlineBeforeHandshake: configuration.handshakeTimeout,
            frameDeadline: configuration.frameDeadline)
        let channel: any Channel
        do {
            channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .protocolListenerOptions()
                .childChannelInitializer { [connections] channel in
                    connections.track(channel)
                    return channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        if let sslContext { try sync.addHandler(NIOSSLServerHandler(context: sslContext)) }
                        let decoder = FrameDecoder(limits: limits)
                        try sync.addHandler(IdleStateHandler(readTimeout: configuration.idleTimeout))
                        try sync.addHandler(ByteToMessageHandler(decoder))
                        try sync.addHandler(GatewayConnectionHandler(services: services, decoder: decoder))
                    }
                }
                .bind(host: configuration.host, port: configuration.port).get()
        } catch {
            throw GatewayError("the gateway cannot listen on \(configuration.host):\(configuration.port)", cause: error)
        }
        var metricsChannel: (any Channel)?
        if let metricsPort = configuration.metricsPort {
            let metrics = metrics
            do {
                metricsChannel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelInitializer { channel in
                        channel.pipeline.configureHTTPServerPipeline().flatMapThrowing {
                            try channel.pipeline.syncOperations.addHandler(StatusHTTPHandler(
                                metrics: metrics.exposition,
                                health: {
                                    let ready = services.backends.anyHealthy && services.authority.isFresh
                                    return .init(
                                        ready: ready, contentType: "text/plain", body: ready ? "ready\n" : "not ready\n")
                                }))
                        }
                    }
                    .bind(host: configuration.host, port: metricsPort).get()
            } catch {
                try? await channel.close()
                throw GatewayError(
                    "the gateway's metrics endpoint cannot listen on \(configuration.host):\(metricsPort)", cause: error)
            }
        }
        let authority = services.authority
        var tasks = [Task { await authority.run() }]
        if let leasing = authority.leasing { tasks.append(Task { await leasing.run() }) }
        for checker in checkers { tasks.append(Task { await checker.run() }) }
        running.withLock { $0 = Running(channel: channel, metricsChannel: metricsChannel, tasks: tasks) }
        logger.info("gateway listening", metadata: [
            "address": "\(channel.localAddress.map { "\($0)" } ?? "?")", "tls": "\(configuration.tls != nil)",
            "backends": "\(services.backends.all.map(\.address.description).joined(separator: ","))",
        ])
    }

    /// Graceful shutdown: stop accepting, let calls in flight be answered (up to the grace
    /// period), close, flush usage counters and the audit queue to the store, and give unspent
    /// rate budget back to it.
    public func shutdown() async {
        guard let run = running.withLock({ current -> Running? in
            defer { current = nil }
            return current
        }) else { return }
        try? await run.channel.close()
        try? await run.metricsChannel?.close()
        await connections.drain(grace: configuration.shutdownGracePeriod)
        for task in run.tasks { task.cancel() }
        for task in run.tasks { await task.value }
        await services.authority.refresh()
        await services.authority.leasing?.leave(services.authority.allStates)
        logger.info("gateway stopped")
    }

    /// `Service`: serves until the service group shuts down gracefully.
    public func run() async throws {
        try await start()
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Reads the token store now (as the refresher does every `tokenRefreshInterval`).
    @discardableResult
    public func refreshTokens() async -> Bool { await services.authority.refresh() }

    /// Records this gateway as alive in a store that shares rate limits and counts the live
    /// gateways, now (as it does every `gatewayHeartbeatInterval`); nothing without one.
    public func heartbeatRateLimits() async { await services.authority.leasing?.heartbeat() }

    /// Probes every backend now (as the health checks do every `healthCheckInterval`).
    public func checkBackends() async {
        for checker in checkers { await checker.check() }
    }

    static func sslContext(_ tls: GatewayTLSConfiguration) throws -> NIOSSLContext {
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(tls.certificatePath)
            let key = try NIOSSLPrivateKey(file: tls.privateKeyPath, format: .pem)
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
            configuration.minimumTLSVersion = .tlsv12
            if let ca = tls.clientCAPath {
                configuration.trustRoots = .file(ca)
                configuration.certificateVerification = .noHostnameVerification
            }
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw GatewayError(
                "cannot load the TLS certificate \(tls.certificatePath) and key \(tls.privateKeyPath)", cause: error)
        }
    }
}
