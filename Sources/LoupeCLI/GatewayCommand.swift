import ArgumentParser
import Foundation
import Gateway
import Logging
import NIOCore
import ServiceLifecycle
import TokenStore

/// The gateway's options, shared by `loupe gateway` and `loupe serve`.
struct GatewayOptions: ParsableArguments {
    @Option(help: "PEM certificate (chain) for TLS on the public port.")
    var tlsCert: String?

    @Option(help: "PEM private key for --tls-cert.")
    var tlsKey: String?

    @Option(help: "PEM CA certificates: require client certificates signed by them.")
    var tlsClientCa: String?

    @Flag(help: "Allow plaintext on a non-loopback address (tokens would cross the network in clear).")
    var allowPlaintext = false

    @Option(parsing: .unconditional, help: "Connections open at once.")
    var maxConnections: Int = 4096

    @Option(parsing: .unconditional, help: "Connections still in their handshake at once.")
    var maxUnauthenticated: Int = 256

    @Option(parsing: .unconditional, help: "Connections open at once from one client address.")
    var maxConnectionsPerAddress: Int = 1024

    @Option(parsing: .unconditional, help: "Connections still in their handshake at once from one client address.")
    var maxUnauthenticatedPerAddress: Int = 32

    @Option(parsing: .unconditional, help: "Milliseconds a connection has to finish its handshake (TLS included).")
    var handshakeTimeoutMs: Int = 5000

    @Option(parsing: .unconditional, help: "Milliseconds between health checks of each backend.")
    var healthCheckMs: Int = 1000

    @Option(
        parsing: .unconditional,
        help: """
            With a PostgreSQL --tokens store, gateways share each token's rate limits: each leases \
            budget in slices of this many milliseconds of the token's rate (0: every gateway limits \
            on its own, N gateways allow N × the rate).
            """)
    var rateLeaseMs: Int = 100

    @Option(
        parsing: .unconditional,
        help: "Milliseconds between heartbeats into a PostgreSQL --tokens store (the live-gateway count).")
    var heartbeatMs: Int = 1000

    func tls() throws -> GatewayTLSConfiguration? {
        switch (tlsCert, tlsKey) {
        case (nil, nil):
            guard tlsClientCa == nil else { throw CLIError("--tls-client-ca needs --tls-cert and --tls-key") }
            return nil
        case (let cert?, let key?):
            return GatewayTLSConfiguration(certificatePath: cert, privateKeyPath: key, clientCAPath: tlsClientCa)
        default:
            throw CLIError("give both --tls-cert and --tls-key")
        }
    }

    func apply(to configuration: inout GatewayConfiguration) throws {
        configuration.tls = try tls()
        configuration.allowPlaintext = allowPlaintext
        configuration.maxConnections = maxConnections
        configuration.maxUnauthenticatedConnections = maxUnauthenticated
        configuration.maxConnectionsPerAddress = maxConnectionsPerAddress
        configuration.maxUnauthenticatedConnectionsPerAddress = maxUnauthenticatedPerAddress
        configuration.handshakeTimeout = .milliseconds(Int64(handshakeTimeoutMs))
        configuration.healthCheckInterval = .milliseconds(Int64(healthCheckMs))
        configuration.rateLeaseSlice = .milliseconds(Int64(rateLeaseMs))
        configuration.gatewayHeartbeatInterval = .milliseconds(Int64(heartbeatMs))
    }

    func validate() throws {
        for (value, option) in [
            (maxConnections, "--max-connections"), (maxUnauthenticated, "--max-unauthenticated"),
            (maxConnectionsPerAddress, "--max-connections-per-address"),
            (maxUnauthenticatedPerAddress, "--max-unauthenticated-per-address"),
            (handshakeTimeoutMs, "--handshake-timeout-ms"), (healthCheckMs, "--health-check-ms"),
            (heartbeatMs, "--heartbeat-ms"),
        ] where value < 1 {
            throw ValidationError("\(option) must be at least 1, got \(value)")
        }
        guard rateLeaseMs >= 0 else { throw ValidationError("--rate-lease-ms must be 0 or more, got \(rateLeaseMs)") }
    }
}

struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Run the gateway apart, in front of one or several model servers.",
        discussion: """
            Partners connect to --host:--port with a token (`loupe token create`); the gateway checks \
            it, its scopes, rate limits and quota, and forwards each call to the healthy --backend \
            with the fewest calls in flight. The backends must accept the internal secret \
            (their <store>/server.secret; --internal-secret-file or $LOUPE_INTERNAL_SECRET). \
            Several gateways share tokens, quotas, rate limits and the audit table through a \
            PostgreSQL --tokens.
            """)

    @Option(name: .customLong("backend"), help: "A model server, HOST:PORT (repeat for several).")
    var backends: [String]

    @Option(help: "Address of the public port (any non-loopback address needs TLS).")
    var host: String = "127.0.0.1"

    @Option(parsing: .unconditional, help: "The public port (0: any free port).")
    var port: Int = 7070

    @Option(parsing: .unconditional, help: "Port of /metrics and /healthz (0: off).")
    var metricsPort: Int = 9092

    @Option(help: "File holding the backends' internal secret (default: $LOUPE_INTERNAL_SECRET, else <store>/server.secret).")
    var internalSecretFile: String?

    @OptionGroup var gatewayOptions: GatewayOptions
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var tokenOptions: TokenStoreOptions

    @Flag(help: "Log at debug level.")
    var verbose = false

    func validate() throws {
        try validatePort(port, option: "--port")
        try validatePort(metricsPort, option: "--metrics-port")
        guard !backends.isEmpty else { throw ValidationError("give at least one --backend HOST:PORT") }
        for backend in backends where BackendAddress(parsing: backend) == nil {
            throw ValidationError("--backend must be HOST:PORT, got \"\(backend)\"")
        }
    }

    func run() async throws {
        bootstrapLogging(debug: verbose)
        let logger = Logger(label: "loupe.gateway")
        let secret = try internalSecret()
        let tokens = try await tokenOptions.open(store: storeOptions.path)
        var configuration = GatewayConfiguration(
            host: host, port: port, backends: backends.compactMap(BackendAddress.init(parsing:)), internalSecret: secret,
            metricsPort: metricsPort == 0 ? nil : metricsPort)
        try gatewayOptions.apply(to: &configuration)
        let gateway = Gateway(configuration: configuration, tokens: tokens, logger: logger)
        let group = ServiceGroup(
            configuration: .init(services: [gateway], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch let error as GatewayError {
            throw CLIError("\(error)")
        }
        await tokens.close()
    }

    private func internalSecret() throws -> String {
        try ServerSecret.resolve(file: internalSecretFile, store: storeOptions.path, create: false)
    }
}
