import LoupeMetrics
import LoupeProtocol
import NIOCore

/// Everything the model server can be told. Immutable once the server starts; every field
/// has a default that suits one machine.
public struct ModelServerConfiguration: Sendable {
    /// Address to listen on. Loopback by default: partners come in through the gateway.
    public var host: String
    /// Port to listen on; 0 picks a free one (see `ModelServer.port`).
    public var port: Int
    /// Frame size and deadline limits, before and after the handshake.
    public var frameLimits: FrameLimits
    /// Rows per BatchPredict call.
    public var maxBatchRows: Int
    /// Largest FindSimilar count.
    public var maxSimilar: Int
    /// Calls a connection may have in flight; beyond it the server stops reading from that
    /// connection until replies drain (TCP pushes back on the client).
    public var maxInFlightPerConnection: Int
    /// A connection with no frame for this long is closed.
    public var idleTimeout: TimeAmount
    /// The model served when a call names none.
    public var defaultModel: String
    /// How often the store's production alias is checked, so a promotion or rollback made
    /// by another process (the CLI) is served within this time.
    public var modelPollInterval: TimeAmount
    /// Threads for CPU-heavy and blocking calls (batches, store reads, retraining starts); 0 = every core.
    public var workerThreads: Int
    /// Batches up to this many rows are scored on the event loop (hopping threads costs more).
    public var inlineBatchRows: Int
    /// How long a graceful shutdown waits for calls in flight before closing connections.
    public var shutdownGracePeriod: TimeAmount
    /// Reported in `Welcome` and `Health`.
    public var serverVersion: String
    /// Port of the HTTP endpoint with `/metrics` (Prometheus text) and `/healthz`; nil turns
    /// it off, 0 picks a free one. It listens on `host`.
    public var metricsPort: Int?
    /// Rows that may wait for the shadow version; calls beyond it are not shadowed (serving first).
    public var shadowMaxPendingRows: Int = 200_000

    public init(
        host: String = "127.0.0.1", port: Int = 7071, frameLimits: FrameLimits = .standard,
        maxBatchRows: Int = 100_000, maxSimilar: Int = 100, maxInFlightPerConnection: Int = 64,
        idleTimeout: TimeAmount = .seconds(300), defaultModel: String = "diamonds",
        modelPollInterval: TimeAmount = .seconds(1), workerThreads: Int = 0, inlineBatchRows: Int = 256,
        shutdownGracePeriod: TimeAmount = .seconds(10), serverVersion: String = LoupeVersion.current,
        metricsPort: Int? = 9091
    ) {
        self.host = host
        self.port = port
        self.frameLimits = frameLimits
        self.maxBatchRows = maxBatchRows
        self.maxSimilar = maxSimilar
        self.maxInFlightPerConnection = maxInFlightPerConnection
        self.idleTimeout = idleTimeout
        self.defaultModel = defaultModel
        self.modelPollInterval = modelPollInterval
        self.workerThreads = workerThreads
        self.inlineBatchRows = inlineBatchRows
        self.shutdownGracePeriod = shutdownGracePeriod
        self.serverVersion = serverVersion
        self.metricsPort = metricsPort
    }
}

/// The version string servers and clients report.
public enum LoupeVersion {
    public static let current = "loupe \(LoupeBuild.version)"
}
