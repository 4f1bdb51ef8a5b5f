import CoreMetrics
import LoupeProtocol
import Prometheus
import Scheduling
import Synchronization

/// The server's metrics, through swift-metrics, backed by a Prometheus registry of its own
/// (so several servers in one process, as in tests, do not share counters). The HTTP
/// endpoint serves `registry.emitToString()`.
public final class ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    private let counters = Mutex<[String: CoreMetrics.Counter]>([:])
    private let timers = Mutex<[String: CoreMetrics.Timer]>([:])
    private let rows: CoreMetrics.Counter
    private let inFlight: CoreMetrics.Meter
    private let connections: CoreMetrics.Meter
    private let modelVersion: CoreMetrics.Gauge
    private let swaps: CoreMetrics.Counter

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        // Calls take microseconds (Predict) to seconds (large batches, store reads).
        factory.defaultDurationHistogramBuckets = [
            .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
            .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(10),
        ]
        self.factory = factory
        rows = CoreMetrics.Counter(label: "loupe_rows_scored_total", factory: factory)
        inFlight = CoreMetrics.Meter(label: "loupe_calls_in_flight", factory: factory)
        connections = CoreMetrics.Meter(label: "loupe_connections", factory: factory)
        modelVersion = CoreMetrics.Gauge(label: "loupe_model_version", factory: factory)
        swaps = CoreMetrics.Counter(label: "loupe_model_swaps_total", factory: factory)
    }

    /// A finished call: counted by method and status, timed by method.
    func call(_ method: String, status: StatusCode, nanoseconds: Int64) {
        let key = method + "|" + status.description
        let counter = counters.withLock { counters in
            if let c = counters[key] { return c }
            let c = CoreMetrics.Counter(
                label: "loupe_calls_total", dimensions: [("method", method), ("status", status.description)],
                factory: factory)
            counters[key] = c
            return c
        }
        counter.increment()
        let timer = timers.withLock { timers in
            if let t = timers[method] { return t }
            let t = CoreMetrics.Timer(label: "loupe_call_duration_seconds", dimensions: [("method", method)], factory: factory)
            timers[method] = t
            return t
        }
        timer.recordNanoseconds(nanoseconds)
    }

    func rowsScored(_ n: Int) { rows.increment(by: n) }
    func callStarted() { inFlight.increment() }
    func callFinished() { inFlight.decrement() }
    func connectionOpened() { connections.increment() }
    func connectionClosed() { connections.decrement() }
    func modelSwapped(to version: Int) {
        modelVersion.record(version)
        swaps.increment()
    }

    /// The scheduler's state as gauges: failures in a row, the next interval run, the last
    /// run's outcome (1 promoted, 0 kept, -1 failed), the drift index per feature.
    func scheduler(_ status: SchedulerStatus) {
        CoreMetrics.Gauge(label: "loupe_scheduler_consecutive_failures", factory: factory)
            .record(status.consecutiveFailures)
        if let next = status.nextIntervalRun {
            CoreMetrics.Gauge(label: "loupe_scheduler_next_run_timestamp_seconds", factory: factory)
                .record(next.timeIntervalSince1970)
        }
        if let last = status.lastRun, last.finished != nil {
            CoreMetrics.Gauge(label: "loupe_scheduler_last_run_outcome", factory: factory)
                .record(last.error != nil ? -1 : (last.promoted == true ? 1 : 0))
        }
        for (feature, psi) in status.drift {
            CoreMetrics.Gauge(label: "loupe_drift_psi", dimensions: [("feature", feature)], factory: factory).record(psi)
        }
    }

    /// The Prometheus text exposition of every metric.
    public func exposition() -> String { registry.emitToString() }
}
