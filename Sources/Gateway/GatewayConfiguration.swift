import NIOCore

/// A model server the gateway forwards to.
public struct BackendAddress: Sendable, Hashable, CustomStringConvertible {
    /// Host name or address (loopback or a private network: backends speak plaintext).
    public var host: String
    /// Port.
    public var port: Int

    /// An address.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`.
    public init?(parsing text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), port > 0,
            port < 65536, colon != text.startIndex
        else { return nil }
        self.init(host: String(text[..<colon]), port: port)
    }

    /// `HOST:PORT`.
    public var description: String { "\(host):\(port)" }
}

/// TLS on the gateway's public port (swift-nio-ssl): a certificate chain and key from PEM
/// files, and optionally a CA whose client certificates are required.
public struct GatewayTLSConfiguration: Sendable, Hashable {
    /// PEM file with the server certificate (then any intermediates).
    public var certificatePath: String
    /// PEM file with the private key.
    public var privateKeyPath: String
    /// PEM file of CA certificates; when set, clients must present a certificate it signed.
    public var clientCAPath: String?

    /// A TLS setup.
    public init(certificatePath: String, privateKeyPath: String, clientCAPath: String? = nil) {
        self.certificatePath = certificatePath
        self.privateKeyPath = privateKeyPath
        self.clientCAPath = clientCAPath
    }
}

/// Everything the gateway can be told. Immutable once it starts.
public struct GatewayConfiguration: Sendable {
    /// Address of the public port. Loopback by default; any other address needs `tls` (or
    /// `allowPlaintext`).
    public var host: String
    /// The public port; 0 picks a free one (`Gateway.port`).
    public var port: Int
    /// TLS termination; nil = plaintext.
    public var tls: GatewayTLSConfiguration?
    /// Allow plaintext on a non-loopback address (tokens would cross the network in clear).
    public var allowPlaintext: Bool
    /// The model servers calls go to.
    public var backends: [BackendAddress]
    /// The secret the backends accept from the gateway only (their `server.secret`).
    public var internalSecret: String
    /// Largest frame before the handshake: room for a Hello, little more. Default 4 KiB.
    public var maxFrameSizeBeforeHandshake: Int
    /// Largest frame after the handshake (as the model server's default, 8 MiB).
    public var maxFrameSize: Int
    /// The whole handshake (TLS included) must be done this long after the connection opens.
    public var handshakeTimeout: TimeAmount
    /// A frame must arrive whole within this of its first byte, after the handshake.
    public var frameDeadline: TimeAmount
    /// Connections open at once; more are refused.
    public var maxConnections: Int
    /// Connections that have not finished their handshake; more are refused.
    public var maxUnauthenticatedConnections: Int
    /// Connections open at once from one client address; more from it are refused.
    public var maxConnectionsPerAddress: Int
    /// Connections from one client address that have not finished their handshake; more from it
    /// are refused. Keeps one client from taking every handshake slot.
    public var maxUnauthenticatedConnectionsPerAddress: Int
    /// How long a connection refused by a cap may still ask `Health` (so a health probe is
    /// answered even when the gateway is full) before it gets RESOURCE_EXHAUSTED and closes.
    public var refusalGrace: TimeAmount
    /// Calls a connection may have in flight before the gateway stops reading from it.
    public var maxInFlightPerConnection: Int
    /// Reported in `Welcome.limits.max_batch_rows` (the model servers enforce theirs).
    public var maxBatchRows: Int
    /// Connections without a frame and without calls in flight are closed after this.
    public var idleTimeout: TimeAmount
    /// Connections to one backend per token per event loop (calls of all the token's client
    /// connections share them).
    public var backendConnectionsPerToken: Int
    /// How often each backend is probed (Health over an authenticated connection).
    public var healthCheckInterval: TimeAmount
    /// A probe with no answer within this marks the backend unhealthy.
    public var healthCheckTimeout: TimeAmount
    /// How often the token store's change counter is polled (revocations apply within this
    /// plus one query), usage counters and the audit queue flushed.
    public var tokenRefreshInterval: TimeAmount
    /// With no answer from the token store for this long, the gateway fails closed.
    public var tokenStaleAfter: TimeAmount
    /// A single token store call that takes longer counts as a failure.
    public var storeTimeout: TimeAmount
    /// With a token store that shares rate limits (PostgreSQL), each lease tops a token's
    /// budget on this gateway up to this much of its rate (at most half its burst, at least one
    /// call or row). Smaller: closer to the exact limit across gateways (N gateways admit at
    /// most `burst + rate × t + N × slice`), more leases. Zero: every gateway limits on its own
    /// (N gateways allow N × the rate), as with a SQLite store.
    public var rateLeaseSlice: TimeAmount
    /// How often the gateway records itself as alive in a store that shares rate limits; a
    /// gateway missing for three intervals is no longer counted. The count sets the share of a
    /// token's limits each gateway falls back to while the store cannot be reached.
    public var gatewayHeartbeatInterval: TimeAmount
    /// How long a graceful shutdown waits for calls in flight.
    public var shutdownGracePeriod: TimeAmount
    /// Reported in `Welcome.server_version` and the gateway's own Health answers.
    public var serverVersion: String
    /// Port of the HTTP `/metrics` and `/healthz` endpoint (nil: off, 0: any free port).
    public var metricsPort: Int?

    /// A configuration; every argument has a default that suits one machine.
    public init(
        host: String = "127.0.0.1", port: Int = 7070, tls: GatewayTLSConfiguration? = nil, allowPlaintext: Bool = false,
        backends: [BackendAddress] = [], internalSecret: String, maxFrameSizeBeforeHandshake: Int = 4096,
        maxFrameSize: Int = 8 * 1024 * 1024, handshakeTimeout: TimeAmount = .seconds(5),
        frameDeadline: TimeAmount = .seconds(30), maxConnections: Int = 4096, maxUnauthenticatedConnections: Int = 256,
        maxConnectionsPerAddress: Int = 1024, maxUnauthenticatedConnectionsPerAddress: Int = 32,
        refusalGrace: TimeAmount = .seconds(1),
        maxInFlightPerConnection: Int = 64, maxBatchRows: Int = 100_000, idleTimeout: TimeAmount = .seconds(300),
        backendConnectionsPerToken: Int = 4, healthCheckInterval: TimeAmount = .seconds(1),
        healthCheckTimeout: TimeAmount = .seconds(1), tokenRefreshInterval: TimeAmount = .milliseconds(250),
        tokenStaleAfter: TimeAmount = .seconds(5), storeTimeout: TimeAmount = .seconds(2),
        rateLeaseSlice: TimeAmount = .milliseconds(100), gatewayHeartbeatInterval: TimeAmount = .seconds(1),
        shutdownGracePeriod: TimeAmount = .seconds(10), serverVersion: String = "loupe-gateway 0.4.0",
        metricsPort: Int? = nil
    ) {
        self.host = host
        self.port = port
        self.tls = tls
        self.allowPlaintext = allowPlaintext
        self.backends = backends
        self.internalSecret = internalSecret
        self.maxFrameSizeBeforeHandshake = maxFrameSizeBeforeHandshake
        self.maxFrameSize = maxFrameSize
        self.handshakeTimeout = handshakeTimeout
        self.frameDeadline = frameDeadline
        self.maxConnections = maxConnections
        self.maxUnauthenticatedConnections = maxUnauthenticatedConnections
        self.maxConnectionsPerAddress = maxConnectionsPerAddress
        self.maxUnauthenticatedConnectionsPerAddress = maxUnauthenticatedConnectionsPerAddress
        self.refusalGrace = refusalGrace
        self.maxInFlightPerConnection = maxInFlightPerConnection
        self.maxBatchRows = maxBatchRows
        self.idleTimeout = idleTimeout
        self.backendConnectionsPerToken = backendConnectionsPerToken
        self.healthCheckInterval = healthCheckInterval
        self.healthCheckTimeout = healthCheckTimeout
        self.tokenRefreshInterval = tokenRefreshInterval
        self.tokenStaleAfter = tokenStaleAfter
        self.storeTimeout = storeTimeout
        self.rateLeaseSlice = rateLeaseSlice
        self.gatewayHeartbeatInterval = gatewayHeartbeatInterval
        self.shutdownGracePeriod = shutdownGracePeriod
        self.serverVersion = serverVersion
        self.metricsPort = metricsPort
    }

    /// Whether `host` is a loopback address.
    var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

/// The gateway's one error type for setup failures (bad configuration, unreadable TLS files).
public struct GatewayError: Error, Sendable, CustomStringConvertible {
    /// What was wrong and what to do.
    public var message: String
    /// The underlying error.
    public var cause: (any Error & Sendable)?

    /// An error.
    public init(_ message: String, cause: (any Error & Sendable)? = nil) {
        self.message = message
        self.cause = cause
    }

    public var description: String { cause.map { "\(message): \($0)" } ?? message }
}
