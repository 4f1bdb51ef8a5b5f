import Catalog
import Foundation
import Logging
import LoupeConnection
import LoupeProtocol
import ModelRuntime
import NIOCore
import NIOHTTP1
import NIOPosix
import RequestLog
import ServiceLifecycle
import Synchronization

/// The model server: binary-protocol calls on one port, metrics on another, the production
/// model hot-swapped when it changes. What runs beside it — retraining jobs, the scheduler,
/// report pages — is the process's to assemble (the `loupe` command does): the server takes
/// them as `RetrainJobs`, `ScoredInputs` and a report closure.
///
/// Use it as a `Service` in a `ServiceGroup` (`run()` serves until graceful shutdown), or drive
/// it directly with `start()` and `shutdown()` (tests, embedding).
///
/// Graceful shutdown stops accepting connections, lets every call in flight finish and be
/// answered (up to `shutdownGracePeriod`), closes the connections and stops the workers.
public final class ModelServer: Service, Sendable {
    public let configuration: ModelServerConfiguration
    public let catalog: Catalog
    public let registry: ModelRegistry
    public let metrics: ServerMetrics
    /// Where every call is recorded, when the log is on. The server starts it before listening
    /// and flushes it after the last call is answered.
    public let requestLog: RequestLog?
    /// Each version's calls, server errors and latencies since it took its role.
    public var liveStats: LiveCallStats { handlers.liveStats }
    let loader: ModelLoader
    let handlers: CallHandlers
    private let authenticator: any Authenticator
    private let logger: Logger
    let running = Mutex<Running?>(nil)
    private let connections = OpenConnections()

    struct Running: @unchecked Sendable {
        var channel: any Channel
        var metricsChannel: (any Channel)?
        var pool: NIOThreadPool
        var poller: Task<Void, Never>
    }

    private let reportPage: @Sendable (String) -> String?

    /// A server over `catalog`'s models. `jobs` answers Retrain and GetJob, `outcomes`
    /// ReportOutcomes (nil: UNIMPLEMENTED);
    /// `inputs` sees every diamond priced; `reportPage` renders `/report/VERSION` on the metrics
    /// port ("" = production; nil = not found); `requestLog` records every call.
    public init(
        configuration: ModelServerConfiguration = ModelServerConfiguration(), catalog: Catalog,
        authenticator: any Authenticator, metrics: ServerMetrics = ServerMetrics(), jobs: (any RetrainJobs)? = nil,
        inputs: ScoredInputs? = nil, reportPage: @escaping @Sendable (String) -> String? = { _ in nil },
        requestLog: RequestLog? = nil, outcomes: (any OutcomeReports)? = nil, logger: Logger = Logger(label: "loupe.server")
    ) {
        self.requestLog = requestLog
        self.configuration = configuration
        self.catalog = catalog
        self.authenticator = authenticator
        self.metrics = metrics
        self.logger = logger
        let registry = ModelRegistry()
        self.registry = registry
        let loader = ModelLoader(
            catalog: catalog, registry: registry, defaultModel: configuration.defaultModel, logger: logger, metrics: metrics)
        self.loader = loader
        self.reportPage = reportPage
        handlers = CallHandlers(
            configuration: configuration, loader: loader, jobs: jobs, metrics: metrics, inputs: inputs,
            requestLog: requestLog, outcomes: outcomes)
    }

    /// Swaps in the production version now if it changed, rather than at the next poll (a job
    /// that just promoted one calls this). Returns whether a new version is served.
    @discardableResult
    public func reloadProduction() -> Bool {
        guard (try? loader.refreshProduction()) == true, let model = registry.model else { return false }
        metrics.modelSwapped(to: model.version)
        return true
    }

    /// Waits until every call handed to the shadow so far is scored and logged.
    public func drainShadow() async { await handlers.shadow.drain() }

    /// The port the server listens on, once started.
    public var port: Int? { running.withLock { $0?.channel.localAddress?.port } }
    /// Client connections open now (a closed connection leaves this set at once).
    public var openConnections: Int { connections.count }

    /// The metrics endpoint's port, once started (nil when it is off).
    public var metricsPort: Int? { running.withLock { $0?.metricsChannel?.localAddress?.port } }

    /// Loads the production model (if there is one) and starts listening.
    public func start() async throws {
        try ListenError.checkRange(configuration.port, component: "the model server", host: configuration.host)
        if let metricsPort = configuration.metricsPort {
            try ListenError.checkRange(metricsPort, component: "the model server's metrics endpoint", host: configuration.host)
        }
        if try loader.refreshProduction(), let model = registry.model { metrics.modelSwapped(to: model.version) }
        try await requestLog?.start()
        if registry.model == nil {
            logger.warning("no model to serve yet: the server answers Health and Retrain, and Predict with UNAVAILABLE")
        }
        let pool = NIOThreadPool(numberOfThreads: configuration.workerThreads > 0
            ? configuration.workerThreads : ProcessInfo.processInfo.activeProcessorCount)
        pool.start()
        let group = MultiThreadedEventLoopGroup.singleton
        let handlers = handlers
        let authenticator = authenticator
        let logger = logger
        let configuration = configuration
        let bootstrap = ServerBootstrap(group: group)
            .protocolListenerOptions()
            .childChannelInitializer { [connections] channel in
                connections.track(channel)
                return channel.eventLoop.makeCompletedFuture {
                    let decoder = FrameDecoder(limits: configuration.frameLimits)
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(IdleStateHandler(readTimeout: configuration.idleTimeout))
                    try sync.addHandler(ByteToMessageHandler(decoder))
                    try sync.addHandler(FrameWriter())
                    try sync.addHandler(ConnectionHandler(
                        decoder: decoder, handlers: handlers, authenticator: authenticator, pool: pool,
                        logger: logger))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
        } catch {
            try? await pool.shutdownGracefully()
            throw ListenError(component: "the model server", host: configuration.host, port: configuration.port, cause: error)
        }
        var metricsChannel: (any Channel)?
        if let metricsPort = configuration.metricsPort {
            let metrics = metrics
            let reportPage = reportPage
            do {
                metricsChannel = try await ServerBootstrap(group: group)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelInitializer { channel in
                        channel.pipeline.configureHTTPServerPipeline().flatMapThrowing {
                            try channel.pipeline.syncOperations.addHandler(
                                StatusHTTPHandler(
                                    metrics: metrics.exposition,
                                    health: {
                                        let (ready, json) = Self.healthJSON(handlers.health())
                                        return .init(ready: ready, contentType: "application/json", body: json)
                                    },
                                    report: reportPage))
                        }
                    }
                    .bind(host: configuration.host, port: metricsPort).get()
            } catch {
                try? await channel.close()
                try? await pool.shutdownGracefully()
                throw ListenError(
                    component: "the model server's metrics endpoint", host: configuration.host, port: metricsPort,
                    cause: error)
            }
        }
        let poller = Task { [weak self] in
            var storeWasReachable = true
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(configuration.modelPollInterval.nanoseconds))
                guard let self, !Task.isCancelled else { return }
                // One cheap question first: when the store is down (an object store can take
                // seconds to fail), skip the production check and keep serving what is loaded.
                let reachable = self.loader.probeStore()
                if reachable != storeWasReachable {
                    if reachable {
                        self.logger.info("the artifact store is reachable again")
                    } else {
                        self.logger.error("the artifact store cannot be read; serving the loaded model until it can")
                    }
                    storeWasReachable = reachable
                }
                guard reachable else { continue }
                do {
                    if try self.loader.refreshProduction(), let model = self.registry.model {
                        self.metrics.modelSwapped(to: model.version)
                    }
                } catch {
                    self.logger.error("checking the production model failed", metadata: ["error": "\(error)"])
                }
            }
        }
        running.withLock { $0 = Running(channel: channel, metricsChannel: metricsChannel, pool: pool, poller: poller) }
        logger.info("listening", metadata: [
            "address": "\(channel.localAddress.map { "\($0)" } ?? "?")",
            "metrics": "\(metricsChannel?.localAddress.map { "\($0)" } ?? "off")",
        ])
    }

    /// Graceful shutdown: stop accepting, answer what is in flight, close, stop the workers.
    public func shutdown() async {
        guard let run = running.withLock({ current -> Running? in
            defer { current = nil }
            return current
        }) else { return }
        run.poller.cancel()
        try? await run.channel.close()
        try? await run.metricsChannel?.close()
        // Each connection closes itself once its calls are answered; after the grace period
        // the stragglers are closed for it.
        await connections.drain(grace: configuration.shutdownGracePeriod)
        try? await run.pool.shutdownGracefully()
        await handlers.shadow.drain()
        // Every call is answered: flush the log (commit or spill, seal the segment).
        await requestLog?.shutdown()
        logger.info("stopped")
    }

    /// `Service`: serves until the service group shuts down gracefully.
    public func run() async throws {
        try await start()
        try? await gracefulShutdown()
        await shutdown()
    }

    static func healthJSON(_ h: Loupe_V1_HealthResponse) -> (ready: Bool, json: String) {
        struct Body: Encodable {
            var live = true, ready: Bool, model_loaded: Bool, store_reachable: Bool, model: String
            var model_version: UInt32, server_version: String, uptime_ms: UInt64, message: String
        }
        let body = Body(
            ready: h.ready, model_loaded: h.modelLoaded, store_reachable: h.storeReachable, model: h.modelName,
            model_version: h.modelVersion, server_version: h.serverVersion, uptime_ms: h.uptimeMs, message: h.message)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json = (try? encoder.encode(body)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return (h.ready, json + "\n")
    }
}
