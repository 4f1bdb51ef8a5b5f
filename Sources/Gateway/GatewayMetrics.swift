import LoupeMetrics
import Prometheus
import Synchronization

/// The gateway's metrics, made with their HELP text on a Prometheus registry (which `loupe serve` shares
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
///   `loupe_gateway_unauthenticated_connections`;
/// - shared rate limits: `loupe_gateway_rate_limits_shared` (1 with a PostgreSQL token store, 0
///   when each gateway limits alone), `loupe_gateway_live_gateways`, `loupe_gateway_rate_share`
///   (the share of a token's limits this gateway falls back to while the store cannot be
///   reached: 1 / live gateways), `loupe_gateway_rate_fallback` (1 while it does),
///   `loupe_gateway_rate_leases_total{result}` (`full`, `short`: the shared bucket had less,
///   `failed`) and `loupe_gateway_rate_lease_waits_total` (calls that waited for a lease);
/// - the process families and `loupe_build_info` (`ProcessMetrics`).
///
/// Families are made on the registry directly, each with its HELP text.
public final class GatewayMetrics: Sendable {
    /// The registry the metrics live in.
    public let registry: PrometheusCollectorRegistry
    private let process: ProcessMetrics
    private let counters = Mutex<[String: Counter]>([:])
    private let gauges = Mutex<[String: Gauge]>([:])
    private let inFlight: Gauge
    private let connections: Gauge
    private let unauthenticated: Gauge
    private let sharedLimits: Gauge
    private let liveGateways: Gauge
    private let rateShare: Gauge
    private let rateFallback: Gauge
    private let leaseWaits: Counter

    static let help = [
        "loupe_gateway_calls_total": "Calls answered through the gateway, by principal, method and outcome.",
        "loupe_gateway_rejections_total": "Handshakes and calls the gateway refused, by reason and principal.",
        "loupe_gateway_backend_healthy": "Whether the backend answered its last health check ready (1) or not (0).",
        "loupe_gateway_backend_in_flight": "Calls forwarded to the backend and not answered yet.",
        "loupe_gateway_retries_total": "Idempotent calls sent again to another backend because theirs went away before answering.",
        "loupe_gateway_rate_leases_total":
            "Leases of rate budget from the token store's shared buckets, by result (full, short: the bucket had less, failed).",
    ]

    /// Metrics in `registry` (a new one by default).
    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        process = ProcessMetrics.shared(in: registry)
        inFlight = registry.makeGauge(
            descriptor: .named("loupe_gateway_calls_in_flight", help: "Calls forwarded and not answered yet."))
        connections = registry.makeGauge(
            descriptor: .named("loupe_gateway_connections", help: "Partner connections open now."))
        unauthenticated = registry.makeGauge(
            descriptor: .named("loupe_gateway_unauthenticated_connections",
                help: "Connections open now that have not finished their handshake."))
        sharedLimits = registry.makeGauge(
            descriptor: .named("loupe_gateway_rate_limits_shared",
                help: "1 when rate limits are shared with the other gateways through the token store, 0 when this gateway limits alone."))
        liveGateways = registry.makeGauge(
            descriptor: .named("loupe_gateway_live_gateways",
                help: "Gateways that heartbeated into the token store recently, this one included."))
        rateShare = registry.makeGauge(
            descriptor: .named("loupe_gateway_rate_share",
                help: "The share of each token's rate and burst this gateway allows itself while the token store cannot be reached."))
        rateFallback = registry.makeGauge(
            descriptor: .named("loupe_gateway_rate_fallback",
                help: "1 while the token store does not answer rate leases and tokens run on this gateway's share of their limits."))
        leaseWaits = registry.makeCounter(
            descriptor: .named("loupe_gateway_rate_lease_waits_total",
                help: "Calls that waited for a lease of rate budget because this gateway held too little."))
        rateShare.set(1.0)
    }

    func rateLimits(shared: Bool) { sharedLimits.set(Int64(shared ? 1 : 0)) }

    func rateLimits(liveGateways count: Int) {
        liveGateways.set(Int64(count))
        rateShare.set(1 / Double(max(1, count)))
    }

    func rateLimits(fallback: Bool) { rateFallback.set(Int64(fallback ? 1 : 0)) }

    func rateLease(result: String) {
        counter("loupe_gateway_rate_leases_total", [("result", result)]).increment()
    }

    func rateLeaseWait() { leaseWaits.increment() }

    func call(principal: String, method: String, outcome: String) {
        counter("loupe_gateway_calls_total", [("principal", principal), ("method", method), ("outcome", outcome)])
            .increment()
    }

    func retried(method: String) {
        counter("loupe_gateway_retries_total", [("method", method)]).increment()
    }

    func rejected(_ reason: String, principal: String?, count: Int = 1) {
        counter("loupe_gateway_rejections_total", [("reason", reason), ("principal", principal ?? "-")])
            .increment(by: Int64(count))
    }

    func backend(_ name: String, healthy: Bool) {
        gauge("loupe_gateway_backend_healthy", name).set(Int64(healthy ? 1 : 0))
    }

    func backend(_ name: String, inFlight: Int) {
        gauge("loupe_gateway_backend_in_flight", name).set(Int64(inFlight))
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

    /// The Prometheus text exposition (the process figures read now).
    public func exposition() -> String {
        process.update()
        return registry.emitToString()
    }

    private func counter(_ label: String, _ dimensions: [(String, String)]) -> Counter {
        let key = label + dimensions.map { "|\($0.1)" }.joined()
        return counters.withLock { counters in
            if let c = counters[key] { return c }
            let c = registry.makeCounter(descriptor: .named(label, help: Self.help[label] ?? ""), labels: dimensions)
            counters[key] = c
            return c
        }
    }

    private func gauge(_ label: String, _ backend: String) -> Gauge {
        let key = label + "|" + backend
        return gauges.withLock { gauges in
            if let g = gauges[key] { return g }
            let g = registry.makeGauge(
                descriptor: .named(label, help: Self.help[label] ?? ""), labels: [("backend", backend)])
            gauges[key] = g
            return g
        }
    }
}
