import CoreMetrics
import Prometheus
import Synchronization

/// The gateway's metrics (swift-metrics over a Prometheus registry, which `loupe serve` shares
/// with its model server so one `/metrics` shows both):
///
/// - `loupe_gateway_calls_total{principal,method,outcome}`: calls answered (outcome `ok`,
///   `error` for a backend's error reply, `unavailable` when a backend failed under it);
/// - `loupe_gateway_rejections_total{reason,principal}`: refused handshakes and calls, by
///   reason (`malformed_token`, `bad_checksum`, `unknown_token`, `bad_secret`, `expired`,
///   `revoked`, `permission_denied`, `rate_limited_calls`, `rate_limited_rows`,
///   `quota_exhausted`, `store_unavailable`, `no_backend`, `before_handshake`,
///   `oversize_frame`, `handshake_timeout`, `connection_cap`, …); principal `-` when unknown;
/// - `loupe_gateway_backend_healthy{backend}` (1/0), `loupe_gateway_backend_in_flight{backend}`;
/// - `loupe_gateway_calls_in_flight`, `loupe_gateway_connections`,
///   `loupe_gateway_unauthenticated_connections`.
public final class GatewayMetrics: Sendable {
    /// The registry the metrics live in.
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    private let counters = Mutex<[String: CoreMetrics.Counter]>([:])
    private let gauges = Mutex<[String: CoreMetrics.Gauge]>([:])
    private let inFlight: CoreMetrics.Meter
    private let connections: CoreMetrics.Meter
    private let unauthenticated: CoreMetrics.Meter

    /// Metrics in `registry` (a new one by default).
    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        factory = PrometheusMetricsFactory(registry: registry)
        inFlight = CoreMetrics.Meter(label: "loupe_gateway_calls_in_flight", factory: factory)
        connections = CoreMetrics.Meter(label: "loupe_gateway_connections", factory: factory)
        unauthenticated = CoreMetrics.Meter(label: "loupe_gateway_unauthenticated_connections", factory: factory)
    }

    func call(principal: String, method: String, outcome: String) {
        counter("loupe_gateway_calls_total", [("principal", principal), ("method", method), ("outcome", outcome)])
            .increment()
    }

    func rejected(_ reason: String, principal: String?, count: Int = 1) {
        counter("loupe_gateway_rejections_total", [("reason", reason), ("principal", principal ?? "-")])
            .increment(by: count)
    }

    func backend(_ name: String, healthy: Bool) {
        gauge("loupe_gateway_backend_healthy", name).record(healthy ? 1 : 0)
    }

    func backend(_ name: String, inFlight: Int) {
        gauge("loupe_gateway_backend_in_flight", name).record(inFlight)
    }

    func callStarted() { inFlight.increment() }
    func callFinished() { inFlight.decrement() }
    func connectionOpened() {
        connections.increment()
        unauthenticated.increment()
    }
    func authenticated() { unauthenticated.decrement() }
    func connectionClosed(authenticated wasAuthenticated: Bool) {
        connections.decrement()
        if !wasAuthenticated { unauthenticated.decrement() }
    }

    /// The Prometheus text exposition.
    public func exposition() -> String { registry.emitToString() }

    private func counter(_ label: String, _ dimensions: [(String, String)]) -> CoreMetrics.Counter {
        let key = label + dimensions.map { "|\($0.1)" }.joined()
        return counters.withLock { counters in
            if let c = counters[key] { return c }
            let c = CoreMetrics.Counter(label: label, dimensions: dimensions, factory: factory)
            counters[key] = c
            return c
        }
    }

    private func gauge(_ label: String, _ backend: String) -> CoreMetrics.Gauge {
        let key = label + "|" + backend
        return gauges.withLock { gauges in
            if let g = gauges[key] { return g }
            let g = CoreMetrics.Gauge(label: label, dimensions: [("backend", backend)], factory: factory)
            gauges[key] = g
            return g
        }
    }
}
