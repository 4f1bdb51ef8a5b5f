import ArgumentParser
import Catalog
import Foundation
import Logging
import LoupeProtocol
import ModelServer
import NIOCore
import Scheduling
import ServiceLifecycle
import LoupeClient
import TreeModel
import TreeTraining

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run Loupe: the model server on its store, ready to price diamonds.",
        discussion: """
            On an empty store it first cleans the bundled diamonds data, trains a model, \
            registers and promotes it. Then it serves the binary protocol on --port and \
            Prometheus metrics on --metrics-port, swaps in newly promoted models without \
            dropping a call, and shuts down gracefully on SIGINT/SIGTERM. Trusted callers \
            authenticate with the store's secret (<store>/server.secret).
            """)

    @OptionGroup var storeOptions: StoreOptions

    @Option(help: "Address to listen on.")
    var host: String = "127.0.0.1"

    @Option(help: "Port of the binary protocol (0: any free port).")
    var port: Int = 7070

    @Option(help: "Port of the HTTP metrics endpoint (/metrics, /healthz); 0 turns it off.")
    var metricsPort: Int = 9091

    @Option(help: "Rows per BatchPredict call.")
    var maxBatchRows: Int = ModelServerConfiguration().maxBatchRows

    @Option(help: "Calls in flight per connection before the server stops reading from it.")
    var maxInFlight: Int = ModelServerConfiguration().maxInFlightPerConnection

    @Option(help: "Largest frame after the handshake, in bytes.")
    var maxFrameSize: Int = FrameLimits.standard.maxFrameSize

    @Option(help: "Retrain on a timer: every this long (e.g. 24h, 30m); off by default.")
    var retrainEvery: String?

    @Option(help: "Retrain when recent inputs drift: the population stability index above which a feature counts as drifted (0: off).")
    var driftThreshold: Double = 0.2

    @Flag(help: "Do not watch <store>/inbox for new labelled CSV files.")
    var noInbox = false

    @Option(help: "Least time between two scheduled retrains (e.g. 10m).")
    var retrainGap: String = "10m"

    @OptionGroup(title: "Training the first model (on an empty store)")
    var training: TrainingOptions

    @Flag(help: "Log every call at debug level.")
    var verbose = false

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = verbose ? .debug : .info
            return handler
        }
        let logger = Logger(label: "loupe")
        let catalog = try storeOptions.catalog()
        try await prepareFirstModel(catalog, logger: logger)
        let secret = try ServerSecret.readOrCreate(store: storeOptions.path)

        var frameLimits = FrameLimits.standard
        frameLimits.maxFrameSize = maxFrameSize
        let configuration = ModelServerConfiguration(
            host: host, port: port, frameLimits: frameLimits, maxBatchRows: maxBatchRows,
            maxInFlightPerConnection: maxInFlight, metricsPort: metricsPort == 0 ? nil : metricsPort)
        var schedule = SchedulerConfiguration()
        schedule.interval = try retrainEvery.map { try parseDuration($0, option: "--retrain-every") }
        schedule.inbox = !noInbox
        schedule.driftThreshold = driftThreshold > 0 ? driftThreshold : nil
        schedule.minimumGap = try parseDuration(retrainGap, option: "--retrain-gap")
        let server = ModelServer(
            configuration: configuration, catalog: catalog,
            authenticator: StaticSecretAuthenticator(secret: secret), scheduler: schedule,
            inboxDirectory: storeOptions.path + "/inbox", logger: logger)
        let group = ServiceGroup(
            configuration: .init(services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        async let serving: Void = group.run()
        // Wait until it listens, then tell the newcomer how to use it.
        for _ in 0..<200 where server.port == nil { try await Task.sleep(for: .milliseconds(25)) }
        if let bound = server.port {
            let store = storeOptions.store.map { " --store \($0)" } ?? ""
            // A real call through the protocol, so a newcomer sees it work end to end.
            var demo = ""
            if server.registry.model != nil,
                let client = try? await LoupeClient.connect(.init(port: bound, token: secret, clientName: "loupe-serve-demo"))
            {
                let d = DemoCommand.example
                if let reply = try? await client.predict(d) {
                    let estimate = PriceEstimate(price: reply.price, low: reply.low, high: reply.high, level: reply.level)
                    demo = "Demo call through the server: a \(d.carat) carat \(d.cut) \(d.color) \(d.clarity) diamond → "
                        + describe(estimate) + "  [\(reply.modelName) v\(reply.modelVersion)]\n"
                }
                await client.close()
            }
            print(demo + """
                Loupe is serving \(server.registry.model.map { "model \($0.name) v\($0.version)" } ?? "no model yet") \
                on \(host):\(bound)\(server.metricsPort.map { " (metrics: http://\(host):\($0)/metrics)" } ?? "").
                Price a diamond through it:
                  loupe predict --server \(host):\(bound)\(store) --carat 1.01 --cut Ideal --color G --clarity VS1 \
                --depth 61.8 --table 56 --x 6.43 --y 6.47 --z 3.99
                Stop with Ctrl-C.
                """)
            fflush(nil)
        }
        try await serving
    }

    /// On an empty store: the bundled data, a model trained on it, registered and promoted.
    private func prepareFirstModel(_ catalog: Catalog, logger: Logger) async throws {
        let model = Catalog.defaultModel
        guard try catalog.store.latestModel(name: model) == nil else { return }
        logger.info("empty store: training the first model on the bundled data")
        let dataset = try oneLine("store \(storeOptions.path)") { try catalog.latestDataset() }
        let table = try catalog.table(of: dataset)
        let configuration = try training.configuration()
        let trained = try train(table, configuration: configuration, quiet: false)
        let manifest = try catalog.register(trained, name: model, dataset: dataset.reference, note: "loupe serve, first model")
        _ = try catalog.store.promote(name: model, version: manifest.version, reason: "first model")
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
