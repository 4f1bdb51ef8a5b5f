import ArgumentParser
import Catalog
import Foundation
import Logging
import LoupeProtocol
import Gateway
import ModelServer
import Reports
import RetrainService
import NIOCore
import Scheduling
import ServiceLifecycle
import Synchronization
import LiveAccuracy
import LoupeClient
import TokenStore
import TreeModel
import TreeTraining

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run Loupe: the gateway in front of a model server on its store, ready to price diamonds.",
        discussion: """
            On an empty store it first cleans the bundled diamonds data, trains a model, \
            registers and promotes it. Then the gateway serves partners on --port (tokens from \
            --tokens, default <store>/tokens.sqlite; the first run creates an admin token and \
            prints it once) and forwards their calls to the model server on loopback \
            --server-port, which only accepts the gateway and local tools holding the store's \
            secret (<store>/server.secret). Prometheus metrics of both are on --metrics-port. \
            Newly promoted models are swapped in without dropping a call; SIGINT/SIGTERM shut \
            down gracefully.
            """)

    @OptionGroup var storeOptions: StoreOptions

    @Option(help: "Address of the gateway's public port (any non-loopback address needs TLS).")
    var host: String = "127.0.0.1"

    @Option(parsing: .unconditional, help: "Port of the gateway, where partners connect (0: any free port).")
    var port: Int = 7070

    @Option(parsing: .unconditional, help: "Port of the model server on 127.0.0.1, for the gateway and local tools (0: any free port).")
    var serverPort: Int = 7071

    @Option(parsing: .unconditional, help: "Port of the HTTP metrics endpoint (/metrics, /healthz); 0 turns it off.")
    var metricsPort: Int = 9091

    @OptionGroup var limits: ServerLimitOptions

    @OptionGroup(title: "Retraining on its own")
    var schedulerOptions: SchedulerOptions

    @OptionGroup var tokenOptions: TokenStoreOptions

    @OptionGroup(title: "The request log")
    var requestLogOptions: ServeRequestLogOptions

    @OptionGroup(title: "The gateway")
    var gatewayOptions: GatewayOptions

    @OptionGroup(title: "Automatic rollback of a canary or a new production")
    var rolloutOptions: RolloutOptions

    @OptionGroup(title: "Training the first model (on an empty store)")
    var training: TrainingOptions

    @Flag(help: "Send the gateway's calls to the model server over loopback TCP (as a separate gateway would) instead of handing them over in process.")
    var gatewayViaLoopback = false

    @Flag(help: "Log every call at debug level.")
    var verbose = false

    func validate() throws {
        try validatePort(port, option: "--port")
        try validatePort(serverPort, option: "--server-port")
        try validatePort(metricsPort, option: "--metrics-port")
    }

    func run() async throws {
        bootstrapLogging(debug: verbose)
        let logger = Logger(label: "loupe")
        let catalog = try storeOptions.catalog()
        // Every call is recorded (guestbook + payload archive) unless --no-request-log; the log's
        // counters go into the server's metrics registry. Opened first: a bad --log-db fails fast.
        let metrics = ServerMetrics()
        let requestLog = try await requestLogOptions.open(
            store: storeOptions.path, artifacts: catalog.store, registry: metrics.registry)
        try await prepareFirstModel(catalog, logger: logger)
        let secret = try ServerSecret.readOrCreate(store: storeOptions.path)
        let tokens = try await tokenOptions.open(store: storeOptions.path)
        // The first run makes an admin token; it is printed once, below.
        var admin: IssuedToken?
        if try await tokens.records().isEmpty {
            admin = try await tokens.create(TokenSpec(
                name: "admin", scopes: ["admin"], limits: .unlimited, note: "created by the first loupe serve"))
        }

        let process = try ServerProcess(
            catalog: catalog, storePath: storeOptions.path, host: "127.0.0.1", port: serverPort,
            metricsPort: metricsPort, internalSecret: secret, limits: limits, schedule: schedulerOptions,
            rollout: rolloutOptions, metrics: metrics, requestLog: requestLog, logger: logger)
        let server = process.server
        // The server must listen before the gateway probes it.
        try await process.start()
        guard let boundServer = server.port else { throw CLIError("the model server did not start") }
        // In one process the gateway hands calls to the server directly (no socket); with
        // --gateway-via-loopback it connects to the server's port as `loupe gateway` would.
        var gatewayConfiguration = GatewayConfiguration(
            host: host, port: port,
            backends: gatewayViaLoopback ? [BackendAddress(host: "127.0.0.1", port: boundServer)] : [],
            internalSecret: secret, maxFrameSize: limits.maxFrameSize, maxInFlightPerConnection: limits.maxInFlight,
            maxBatchRows: limits.maxBatchRows)
        try gatewayOptions.apply(to: &gatewayConfiguration)
        let gateway = Gateway(
            configuration: gatewayConfiguration, tokens: tokens,
            inProcess: gatewayViaLoopback ? nil : InProcessModelServer(server: server),
            metrics: GatewayMetrics(registry: server.metrics.registry), logger: Logger(label: "loupe.gateway"))
        do {
            try await gateway.start()
        } catch {
            await process.shutdown()
            throw CLIError("\(error)")
        }
        let group = ServiceGroup(configuration: .init(
            services: [StartedService(process.shutdown), StartedService(gateway.shutdown)],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        async let serving: Void = group.run()
        if let bound = gateway.port {
            let demo = await demoCall(gateway: gateway, port: bound, tokens: tokens, admin: admin)
            var banner = demo
            if let admin {
                banner += """
                    Admin token, created now and shown only this once (only its hash is kept; save it):
                      \(admin.token.rawValue)

                    """
            }
            let store = storeOptions.store.map { " --store \($0)" } ?? ""
            banner += """
                Loupe is serving \(server.registry.model.map { "model \($0.name) v\($0.version)" } ?? "no model yet") \
                on \(host):\(bound) (the gateway; partners need a token) and the model server on \
                127.0.0.1:\(boundServer) (the gateway and local tools only)\
                \(server.metricsPort.map { ", metrics: http://127.0.0.1:\($0)/metrics" } ?? "").
                Price a diamond through the gateway (LOUPE_TOKEN: the admin token, or one from `loupe token create`):
                  LOUPE_TOKEN=loupe_… loupe predict --server \(host):\(bound)\(store) --carat 1.01 --cut Ideal --color G \
                --clarity VS1 --depth 61.8 --table 56 --x 6.43 --y 6.47 --z 3.99
                Give partners their own tokens: loupe token create --name PARTNER\(store)
                Stop with Ctrl-C.
                """
            print(banner)
            fflush(nil)
        }
        try await serving
        await tokens.close()
    }

    /// A real call through the gateway, so a newcomer sees it work end to end: with the admin
    /// token on the first run, else with a short-lived demo token revoked right after.
    private func demoCall(gateway: Gateway, port: Int, tokens: any TokenStore, admin: IssuedToken?) async -> String {
        for _ in 0..<100 where !gateway.backendHealth.allSatisfy({ $0 }) {
            try? await Task.sleep(for: .milliseconds(50))
        }
        var token = admin
        if token == nil {
            token = try? await tokens.create(TokenSpec(
                name: "loupe-serve-demo", scopes: ["predict"], limits: RateLimits(callsPerSecond: 5, callBurst: 5),
                expiresAt: Date().addingTimeInterval(60), note: "the demo call of loupe serve; revoked after it"))
            await gateway.refreshTokens()
        }
        guard let token else { return "" }
        defer {
            if admin == nil { Task { _ = try? await tokens.revoke(id: token.record.id, at: Date()) } }
        }
        guard let client = try? await LoupeClient.connect(
            .init(port: port, token: token.token.rawValue, clientName: "loupe-serve-demo"))
        else { return "" }
        defer { Task { await client.close() } }
        let d = DemoCommand.example
        guard let reply = try? await client.predict(d) else { return "" }
        let estimate = PriceEstimate(price: reply.price, low: reply.low, high: reply.high, level: reply.level)
        return "Demo call through the gateway: a \(d.carat) carat \(d.cut) \(d.color) \(d.clarity) diamond → "
            + describe(estimate) + "  [\(reply.modelName) v\(reply.modelVersion)]\n"
    }

    /// On an empty store: the bundled data, a model trained on it, registered and promoted.
    private func prepareFirstModel(_ catalog: Catalog, logger: Logger) async throws {
        let model = Catalog.defaultModel
        guard try catalog.store.latestModel(name: model) == nil else { return }
        logger.info("empty store: training the first model on the bundled data")
        let dataset = try oneLine("store \(storeOptions.location)") { try catalog.latestDataset() }
        let table = try catalog.table(of: dataset)
        let configuration = try training.configuration()
        let trained = try train(table, configuration: configuration, quiet: false)
        let manifest = try catalog.register(trained, name: model, dataset: dataset.reference, note: "loupe serve, first model")
        _ = try catalog.promote(name: model, version: manifest.version, reason: "first model")
        logger.info("promoted the first model", metadata: [
            "version": "\(manifest.version)", "holdout_rmse": "\(manifest.metrics["rmse"].map { format($0, 1) } ?? "-")",
        ])
    }
}

/// "90s", "10m", "24h", "2d" as a duration.
func parseDuration(_ text: String, option: String) throws -> Duration {
    let t = text.trimmingCharacters(in: .whitespaces).lowercased()
    if let unit = t.last, "smhd".contains(unit), let amount = Double(t.dropLast()), amount >= 0 {
        let seconds = amount * (unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : 86400)
        return .milliseconds(Int64(seconds * 1000))
    }
    throw CLIError("\(option) must be a duration like 90s, 10m, 24h or 2d, got \"\(text)\"")
}

/// A service already started outside the group: the group only stops it, on graceful shutdown.
struct StartedService: Service {
    let stop: @Sendable () async -> Void

    init(_ stop: @escaping @Sendable () async -> Void) {
        self.stop = stop
    }

    func run() async throws {
        try? await gracefulShutdown()
        await stop()
    }
}

/// The model server of `loupe serve` as the gateway's in-process backend.
struct InProcessModelServer: InProcessBackend {
    let server: ModelServer

    func isReady() -> Bool { server.isReady }

    func answer(_ frame: Frame, actingFor: Loupe_V1_ActingFor, on eventLoop: any EventLoop) -> EventLoopFuture<Frame> {
        server.answerInProcess(
            frame,
            principal: Principal(
                name: actingFor.principal, scopes: Scope.parse(actingFor.scopes),
                tokenID: actingFor.tokenID.isEmpty ? nil : actingFor.tokenID),
            on: eventLoop)
    }
}

/// How `loupe serve` watches a canary and a new production (docs/OPERATIONS.md).
struct RolloutOptions: ParsableArguments {
    @Option(help: "How often the canary and a newly promoted production are judged, and live accuracy refreshed (e.g. 30s).")
    var rolloutCheckEvery: String = "30s"

    @Flag(help: "Never roll back by itself: verdicts are only logged.")
    var noAutoRollback = false

    @Option(parsing: .unconditional, help: "Calls each version must have answered before error rates and latencies are compared.")
    var rollbackMinCalls: Int = RolloutPolicy().minCalls

    @Option(parsing: .unconditional, help: "Outcomes both versions were scored on before live accuracy is compared.")
    var rollbackMinOutcomes: Int = RolloutPolicy().minOutcomes

    @Option(parsing: .unconditional, help: "How much worse (relative: 0.1 = 10%) a candidate's live MAPE or RMSE may be.")
    var rollbackAccuracyMargin: Double = RolloutPolicy().maxAccuracyLoss

    @Option(parsing: .unconditional, help: "How much higher (absolute: 0.01 = one point) a candidate's server-error rate may be.")
    var rollbackErrorMargin: Double = RolloutPolicy().maxErrorRateIncrease

    @Option(parsing: .unconditional, help: "How many times production's p99 latency a candidate's may be.")
    var rollbackLatencyRatio: Double = RolloutPolicy().maxLatencyRatio

    @Option(help: "How long a newly promoted production is watched (e.g. 24h).")
    var rollbackWatch: String = "24h"

    func validate() throws {
        guard rollbackMinCalls >= 1, rollbackMinOutcomes >= 1 else {
            throw ValidationError("--rollback-min-calls and --rollback-min-outcomes must be at least 1")
        }
        guard rollbackAccuracyMargin >= 0, rollbackErrorMargin >= 0, rollbackLatencyRatio >= 1 else {
            throw ValidationError("the rollback margins must be >= 0 and --rollback-latency-ratio >= 1")
        }
        _ = try parseDuration(rollbackWatch, option: "--rollback-watch")
        _ = try interval()
    }

    var policy: RolloutPolicy {
        var policy = RolloutPolicy()
        policy.minCalls = rollbackMinCalls
        policy.minOutcomes = rollbackMinOutcomes
        policy.maxAccuracyLoss = rollbackAccuracyMargin
        policy.maxErrorRateIncrease = rollbackErrorMargin
        policy.maxLatencyRatio = rollbackLatencyRatio
        policy.autoRollback = !noAutoRollback
        policy.watchAfterPromotion = (try? parseDuration(rollbackWatch, option: "--rollback-watch"))
            .map { Double($0.components.seconds) } ?? policy.watchAfterPromotion
        return policy
    }

    func interval() throws -> Duration {
        let every = try parseDuration(rolloutCheckEvery, option: "--rollout-check-every")
        guard every > .zero else { throw ValidationError("--rollout-check-every must be more than 0") }
        return every
    }
}
