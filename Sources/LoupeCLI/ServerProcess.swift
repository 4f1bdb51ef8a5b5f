import ArgumentParser
import ArtifactStore
import Catalog
import Foundation
import LiveAccuracy
import Logging
import LoupeProtocol
import ModelServer
import Reports
import RequestLog
import RetrainService
import Scheduling
import Synchronization

/// Log lines to standard error, at debug level with `--verbose`: what every long-running
/// command (serve, server, gateway) logs through.
func bootstrapLogging(debug: Bool) {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = debug ? .debug : .info
        return handler
    }
}

/// The model server's limits, for `loupe serve` and `loupe server`.
struct ServerLimitOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Rows per BatchPredict call.")
    var maxBatchRows: Int = ModelServerConfiguration().maxBatchRows

    @Option(parsing: .unconditional, help: "Calls in flight per connection before the server stops reading from it.")
    var maxInFlight: Int = ModelServerConfiguration().maxInFlightPerConnection

    @Option(parsing: .unconditional, help: "Largest frame after the handshake, in bytes.")
    var maxFrameSize: Int = FrameLimits.standard.maxFrameSize

    func validate() throws {
        for (value, option) in [
            (maxBatchRows, "--max-batch-rows"), (maxInFlight, "--max-in-flight"), (maxFrameSize, "--max-frame-size"),
        ] where value < 1 {
            throw ValidationError("\(option) must be at least 1, got \(value)")
        }
    }

    var frameLimits: FrameLimits {
        var limits = FrameLimits.standard
        limits.maxFrameSize = maxFrameSize
        return limits
    }
}

/// When `loupe serve` and `loupe server` retrain on their own (docs/OPERATIONS.md).
struct SchedulerOptions: ParsableArguments {
    @Option(help: "Retrain on a timer: every this long (e.g. 24h, 30m); off by default.")
    var retrainEvery: String?

    @Option(parsing: .unconditional, help: "Retrain when recent inputs drift: the population stability index above which a feature counts as drifted (0: off).")
    var driftThreshold: Double = 0.2

    @Flag(help: "Do not watch <store>/inbox for new labelled CSV files.")
    var noInbox = false

    @Option(help: "Least time between two scheduled retrains (e.g. 10m).")
    var retrainGap: String = "10m"

    @Option(help: "How long the store's scheduler lease lasts: of the servers on one store only its holder runs the scheduler, the inbox and the rollout guard, and another takes over this long after it dies (e.g. 15s).")
    var schedulerLease: String = "15s"

    func validate() throws {
        guard driftThreshold >= 0 else { throw ValidationError("--drift-threshold must be >= 0 (0: off), got \(driftThreshold)") }
        _ = try configuration()
        guard try lease() >= 1 else { throw ValidationError("--scheduler-lease must be at least 1s") }
    }

    func configuration() throws -> SchedulerConfiguration {
        var schedule = SchedulerConfiguration()
        schedule.interval = try retrainEvery.map { try parseDuration($0, option: "--retrain-every") }
        schedule.inbox = !noInbox
        schedule.driftThreshold = driftThreshold > 0 ? driftThreshold : nil
        schedule.minimumGap = try parseDuration(retrainGap, option: "--retrain-gap")
        return schedule
    }

    /// The lease's duration in seconds.
    func lease() throws -> TimeInterval {
        let duration = try parseDuration(schedulerLease, option: "--scheduler-lease")
        return Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

/// A model server as `loupe serve` and `loupe server` run it: Retrain and GetJob on a job
/// runner whose promotions are swapped in at once, ReportOutcomes on the request log's
/// database, report pages with live accuracy, and — in whichever server of the store holds its
/// lease — the retraining scheduler, the inbox and the rollout guard.
final class ServerProcess: Sendable {
    let server: ModelServer
    let scheduler: Scheduler
    let rolloutGuard: RolloutGuard
    let leadership: Leadership

    init(
        catalog: Catalog, storePath: String, configuration: ModelServerConfiguration, authenticator: any Authenticator,
        metrics: ServerMetrics, requestLog: RequestLog?, schedule: SchedulerConfiguration, leaseSeconds: TimeInterval,
        rollout: RolloutOptions, logger: Logger
    ) throws {
        let model = configuration.defaultModel
        // Drift sees every diamond priced: with the request log on, Predict calls from the
        // guestbook (they outlive a restart) and BatchPredict rows from an in-memory window (the
        // guestbook keeps no batch rows); with it off, both from the window.
        let retrain = RetrainService(catalog: catalog, defaultModel: model, logger: logger)
        let window = DriftWindow()
        scheduler = Scheduler(
            configuration: schedule, catalog: catalog, jobs: retrain.jobs, inboxDirectory: storePath + "/inbox",
            window: window, inputs: requestLog.map { CombinedDriftInputs([GuestbookDriftInputs(log: $0), window]) },
            logger: logger, onStatus: SchedulerMetrics(registry: metrics.registry).update)
        let reports = ModelReportPage(catalog: catalog)
        // Live accuracy for the report pages, as of the rollout guard's last check.
        let live = LiveFiguresBox()
        let logged = requestLog != nil
        let scored = ScoredInputs(
            diamond: { diamond in if !logged { window.add(diamond) } }, columns: { window.add(columns: $0) })
        let server = ModelServer(
            configuration: configuration, catalog: catalog, authenticator: authenticator, metrics: metrics, jobs: retrain,
            inputs: scored,
            reportPage: { version in reports.page(model: model, version: version) { live.figures[$0] } },
            requestLog: requestLog,
            outcomes: requestLog.map { OutcomeService(catalog: catalog, guestbook: $0.guestbook, defaultModel: model) },
            logger: logger)
        self.server = server
        retrain.whenPromoted { manifest in
            server.reloadProduction()
            _ = try? reports.page(for: manifest)
        }
        // Judges the canary and a newly promoted production against their baselines and rolls
        // back what does worse (the rollback is swapped in at once here; other servers follow
        // at their alias poll).
        let rolloutGuard = RolloutGuard(
            catalog: catalog, model: model, liveStats: server.liveStats, guestbook: requestLog?.guestbook,
            policy: rollout.policy, registry: metrics.registry, logger: logger,
            onRollback: { server.reloadProduction() },
            onCheck: { accuracy in
                live.figures = accuracy.mapValues {
                    LiveFigures(outcomes: $0.outcomes, served: $0.served, rmse: $0.rmse, mape: $0.mape, coverage: $0.coverage)
                }
            })
        self.rolloutGuard = rolloutGuard
        let every = try rollout.interval()
        let scheduler = scheduler
        leadership = Leadership(
            lease: StoreLease(store: catalog.store, name: "scheduler", duration: leaseSeconds), registry: metrics.registry,
            logger: logger,
            lead: {
                scheduler.start()
                rolloutGuard.start(every: every)
            },
            yield: {
                scheduler.stop()
                rolloutGuard.stop()
            })
    }

    /// The model server of `loupe serve` (loopback, behind its gateway) and `loupe server` (behind
    /// `loupe gateway`), from their shared options; only the gateway and local tools holding
    /// `internalSecret` are let in.
    convenience init(
        catalog: Catalog, storePath: String, host: String, port: Int, metricsPort: Int, internalSecret: String,
        limits: ServerLimitOptions, schedule: SchedulerOptions, rollout: RolloutOptions, metrics: ServerMetrics,
        requestLog: RequestLog?, logger: Logger
    ) throws {
        let configuration = ModelServerConfiguration(
            host: host, port: port, frameLimits: limits.frameLimits, maxBatchRows: limits.maxBatchRows,
            maxInFlightPerConnection: limits.maxInFlight, metricsPort: metricsPort == 0 ? nil : metricsPort)
        try self.init(
            catalog: catalog, storePath: storePath, configuration: configuration,
            authenticator: GatewayTrustingAuthenticator(internalSecret: internalSecret), metrics: metrics,
            requestLog: requestLog, schedule: try schedule.configuration(), leaseSeconds: try schedule.lease(),
            rollout: rollout, logger: logger)
    }

    /// Listens, then takes part in the store's lease.
    func start() async throws {
        try await server.start()
        leadership.start()
    }

    /// Gives up the lease (stopping the scheduler and guard), then shuts the server down gracefully.
    func shutdown() async {
        leadership.stop()
        await server.shutdown()
    }
}

/// The live figures the report pages show, updated by the rollout guard.
final class LiveFiguresBox: Sendable {
    private let state = Mutex<[Int: LiveFigures]>([:])
    var figures: [Int: LiveFigures] {
        get { state.withLock { $0 } }
        set { state.withLock { $0 = newValue } }
    }
}
