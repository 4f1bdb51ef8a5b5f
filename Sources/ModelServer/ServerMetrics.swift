import LoupeMetrics
import LoupeProtocol
import Prometheus
import Synchronization

/// The server's metrics, in a Prometheus registry of its own (so several servers in one process,
/// as in tests, do not share counters). The HTTP endpoint serves `exposition()`. Families are
/// made on the registry directly, each with its HELP text (swift-metrics' factory cannot give
/// one); docs/OPERATIONS.md lists them.
public final class ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let process: ProcessMetrics
    private let counters = Mutex<[String: Counter]>([:])
    private let timers = Mutex<[String: DurationHistogram]>([:])
    private let rows: Counter
    private let inFlight: Gauge
    private let connections: Gauge
    private let modelVersion: Gauge
    private let swaps: Counter
    private let loadFailures: Counter
    private let productionVersion: Gauge
    private let aliasMismatch: Gauge
    private let canaryVersion: Gauge
    private let canaryPercent: Gauge
    private let shadowVersion: Gauge
    private let shadowRows: Counter
    private let shadowDroppedRows: Counter
    private let shadowLogFailures: Counter
    private let shadowDifference: Gauge

    /// Calls take microseconds (Predict) to seconds (large batches, store reads).
    static let durationBuckets: [Duration] = [
        .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
        .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(10),
    ]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        process = ProcessMetrics.shared(in: registry)
        rows = registry.makeCounter(
            descriptor: .named("loupe_rows_scored_total", help: "Diamonds priced (Predict 1, BatchPredict its rows)."))
        inFlight = registry.makeGauge(descriptor: .named("loupe_calls_in_flight", help: "Calls being answered now."))
        connections = registry.makeGauge(descriptor: .named("loupe_connections", help: "Client connections open now."))
        modelVersion = registry.makeGauge(
            descriptor: .named("loupe_model_version", help: "Version of the model being served."))
        swaps = registry.makeCounter(
            descriptor: .named("loupe_model_swaps_total", help: "Times a model version was swapped in."))
        productionVersion = registry.makeGauge(
            descriptor: .named("loupe_model_production_version", help: "Version the production alias points to."))
        aliasMismatch = registry.makeGauge(
            descriptor: .named("loupe_model_alias_mismatch",
                help: "1 while the production alias names a version the server cannot load (it serves the one it has)."))
        canaryVersion = registry.makeGauge(
            descriptor: .named("loupe_model_canary_version", help: "Version answering the canary's share of partners (0: no canary)."))
        canaryPercent = registry.makeGauge(
            descriptor: .named("loupe_model_canary_percent", help: "Share of partners (percent) the canary answers."))
        shadowVersion = registry.makeGauge(
            descriptor: .named("loupe_model_shadow_version", help: "Version scoring live traffic in shadow (0: none)."))
        shadowRows = registry.makeCounter(
            descriptor: .named("loupe_shadow_rows_total", help: "Rows the shadow version scored beside production."))
        shadowDroppedRows = registry.makeCounter(
            descriptor: .named("loupe_shadow_dropped_rows_total",
                help: "Rows not shadowed because the shadow's backlog was full (serving comes first)."))
        shadowLogFailures = registry.makeCounter(
            descriptor: .named("loupe_shadow_log_failures_total", help: "Shadow answers that could not be written to the request log."))
        shadowDifference = registry.makeGauge(
            descriptor: .named("loupe_shadow_median_relative_difference",
                help: "Median |shadow price / production price - 1| over the rows of the last call shadowed."))
        loadFailures = registry.makeCounter(
            descriptor: .named("loupe_model_load_failures_total",
                help: "Times a model version could not be loaded from the store (missing, corrupt or undecodable)."))
    }

    /// A finished call: counted by method and status, timed by method.
    func call(_ method: String, status: StatusCode, nanoseconds: Int64) {
        let key = method + "|" + status.description
        // Cached: the registry checks names and labels on every make, too slow per call.
        let counter = counters.withLock { counters in
            if let c = counters[key] { return c }
            let c = registry.makeCounter(
                descriptor: .named("loupe_calls_total", help: "Calls answered, by method and status."),
                labels: [("method", method), ("status", status.description)])
            counters[key] = c
            return c
        }
        counter.increment()
        let timer = timers.withLock { timers in
            if let t = timers[method] { return t }
            let t = registry.makeDurationHistogram(
                descriptor: .named("loupe_call_duration_seconds", help: "Time from a call's request to its reply, by method."),
                labels: [("method", method)], buckets: Self.durationBuckets)
            timers[method] = t
            return t
        }
        timer.recordNanoseconds(nanoseconds)
    }

    func rowsScored(_ n: Int) { rows.increment(by: Int64(n)) }
    func callStarted() { inFlight.increment() }
    func callFinished() { inFlight.decrement() }
    func connectionOpened() { connections.increment() }
    func connectionClosed() { connections.decrement() }
    func modelSwapped(to version: Int) {
        modelVersion.set(Int64(version))
        swaps.increment()
    }
    func modelLoadFailed() { loadFailures.increment() }

    /// Where the production alias points, and whether the server serves that version.
    func production(alias version: Int, served: Bool) {
        productionVersion.set(Int64(version))
        aliasMismatch.set(Int64(served ? 0 : 1))
    }

    /// The canary and shadow being served (nil: none).
    func rollout(canary: Int?, percent: Int, shadow: Int?) {
        canaryVersion.set(Int64(canary ?? 0))
        canaryPercent.set(Int64(canary == nil ? 0 : percent))
        shadowVersion.set(Int64(shadow ?? 0))
    }

    func shadowScored(rows: Int, medianRelativeDifference: Double?) {
        shadowRows.increment(by: Int64(rows))
        if let medianRelativeDifference { shadowDifference.set(medianRelativeDifference) }
    }

    func shadowDropped(_ rows: Int) { shadowDroppedRows.increment(by: Int64(rows)) }
    func shadowLogFailed(_ rows: Int) { shadowLogFailures.increment(by: Int64(rows)) }

    /// The Prometheus text exposition of every metric (the process figures read now).
    public func exposition() -> String {
        process.update()
        return registry.emitToString()
    }
}
