import ArgumentParser
import Foundation
import Logging
import LoupeProtocol
import ModelServer
import ServiceLifecycle

struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Run a model server alone, for the machines behind `loupe gateway`.",
        discussion: """
            The model server of `loupe serve` without the gateway: it accepts only the gateway and \
            local tools holding the internal secret (--internal-secret-file, $LOUPE_INTERNAL_SECRET, \
            else <store>/server.secret, created when missing). Several servers may share one store: \
            each records its calls in a payload archive of its own (<store>/capsule-<instance>), \
            all follow the store's aliases within a second, and only the one holding the store's \
            scheduler lease runs the scheduler, the inbox and the rollout guard (another takes over \
            when it dies). It trains nothing on an empty store: promote a model and it is served.
            """)

    @OptionGroup var storeOptions: StoreOptions

    @Option(help: "Address to listen on (backends speak plaintext: loopback or a private network only).")
    var host: String = "127.0.0.1"

    @Option(parsing: .unconditional, help: "Port of the binary protocol (0: any free port, then --instance is needed).")
    var port: Int = 7071

    @Option(parsing: .unconditional, help: "Port of the HTTP metrics endpoint (/metrics, /healthz); 0 turns it off.")
    var metricsPort: Int = 9091

    @Option(help: "This server's name among those on the store (its payload archive is <store>/capsule-<instance>; default: the port).")
    var instance: String?

    @Option(help: "File holding the internal secret (default: $LOUPE_INTERNAL_SECRET, else <store>/server.secret).")
    var internalSecretFile: String?

    @OptionGroup var limits: ServerLimitOptions

    @OptionGroup(title: "Retraining on its own")
    var schedulerOptions: SchedulerOptions

    @OptionGroup(title: "The request log")
    var requestLogOptions: ServeRequestLogOptions

    @OptionGroup(title: "Automatic rollback of a canary or a new production")
    var rolloutOptions: RolloutOptions

    @Flag(help: "Log every call at debug level.")
    var verbose = false

    func validate() throws {
        try validatePort(port, option: "--port")
        try validatePort(metricsPort, option: "--metrics-port")
        if port == 0, instance == nil {
            throw ValidationError("--port 0 needs --instance NAME (the payload archive of a server must keep its name across restarts)")
        }
        if let instance {
            guard !instance.isEmpty, instance.count <= 64,
                instance.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") })
            else {
                throw ValidationError("--instance must be 1 to 64 letters, digits, '-', '_' or '.', got \"\(instance)\"")
            }
        }
    }

    func run() async throws {
        bootstrapLogging(debug: verbose)
        let logger = Logger(label: "loupe")
        let catalog = try storeOptions.catalog()
        let metrics = ServerMetrics()
        let requestLog = try await requestLogOptions.open(
            store: storeOptions.path, artifacts: catalog.store, registry: metrics.registry, instance: instance ?? "\(port)")
        let secret = try ServerSecret.resolve(file: internalSecretFile, store: storeOptions.path, create: true)
        let process = try ServerProcess(
            catalog: catalog, storePath: storeOptions.path, host: host, port: port, metricsPort: metricsPort,
            internalSecret: secret, limits: limits, schedule: schedulerOptions, rollout: rolloutOptions,
            metrics: metrics, requestLog: requestLog, logger: logger)
        do {
            try await process.start()
        } catch {
            await process.shutdown()
            throw CLIError("\(error)")
        }
        let server = process.server
        print("""
            Loupe model server \(instance.map { "\"\($0)\" " } ?? "")serving \
            \(server.registry.model.map { "model \($0.name) v\($0.version)" } ?? "no model yet") on \
            \(host):\(server.port ?? port)\(server.metricsPort.map { ", metrics: http://\(host):\($0)/metrics" } ?? ""). \
            Put it behind `loupe gateway --backend \(host):\(server.port ?? port)`. Stop with Ctrl-C.
            """)
        fflush(nil)
        let group = ServiceGroup(configuration: .init(
            services: [StartedService(process.shutdown)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
