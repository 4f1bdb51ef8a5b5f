import LoupeProtocol
import NIOCore
import Synchronization

/// One model server behind the gateway: its address, whether it is healthy (new calls go only
/// to healthy ones) and how many calls it has in flight (new calls go to the one with the
/// fewest). Shared by every event loop; the connections to it live in each loop's
/// `BackendPools`.
final class Backend: Sendable {
    /// Position in the configuration (the pools' key).
    let index: Int
    /// Where it listens (`in-process:0` for the in-process one).
    let address: BackendAddress
    /// Set for a model server in this process: calls are handed to it, no connection.
    let local: (any InProcessBackend)?
    /// Set by health checks, cleared by them or by a connection that failed under calls.
    private let healthyFlag = Atomic<Bool>(false)
    private let inFlightCount = Atomic<Int>(0)
    /// Bumped whenever a connection fails: a probe that started before a failure must not
    /// mark the backend healthy again.
    private let failures = Atomic<Int>(0)
    private let metrics: GatewayMetrics

    init(index: Int, address: BackendAddress, local: (any InProcessBackend)? = nil, metrics: GatewayMetrics) {
        self.index = index
        self.address = address
        self.local = local
        self.metrics = metrics
        metrics.backend(address.description, healthy: false)
        metrics.backend(address.description, inFlight: 0)
    }

    var isHealthy: Bool { healthyFlag.load(ordering: .relaxed) }
    var inFlight: Int { inFlightCount.load(ordering: .relaxed) }

    /// Returns whether the state changed.
    @discardableResult
    func setHealthy(_ healthy: Bool) -> Bool {
        let was = healthyFlag.exchange(healthy, ordering: .relaxed)
        if was != healthy { metrics.backend(address.description, healthy: healthy) }
        return was != healthy
    }

    /// A connection to it failed: unhealthy until a probe started after this passes.
    /// Returns whether it was healthy.
    @discardableResult
    func connectionFailed() -> Bool {
        failures.add(1, ordering: .relaxed)
        return setHealthy(false)
    }

    /// The failure count, read when a probe starts.
    var failureEpoch: Int { failures.load(ordering: .relaxed) }

    /// A probe's verdict; a healthy one counts only if no connection failed since `epoch`.
    @discardableResult
    func probed(healthy: Bool, since epoch: Int) -> Bool {
        if healthy && failures.load(ordering: .relaxed) != epoch { return false }
        return setHealthy(healthy)
    }

    func callStarted() {
        let n = inFlightCount.add(1, ordering: .relaxed).newValue
        metrics.backend(address.description, inFlight: n)
    }

    func callFinished() {
        let n = inFlightCount.subtract(1, ordering: .relaxed).newValue
        metrics.backend(address.description, inFlight: n)
    }
}

/// The backends, and the routing rule: the healthy one with the fewest calls in flight
/// (ties broken by rotating the starting point).
final class BackendSet: Sendable {
    let all: [Backend]
    private let rotation = Atomic<Int>(0)

    init(_ addresses: [BackendAddress], local: (any InProcessBackend)?, metrics: GatewayMetrics) {
        var all: [Backend] = []
        if let local {
            all.append(Backend(index: 0, address: BackendAddress(host: "in-process", port: 0), local: local, metrics: metrics))
        }
        for address in addresses { all.append(Backend(index: all.count, address: address, metrics: metrics)) }
        self.all = all
    }

    var anyHealthy: Bool { all.contains { $0.isHealthy } }

    /// The backend for a new call, or nil when none is healthy.
    func pick() -> Backend? {
        let count = all.count
        guard count > 0 else { return nil }
        if count == 1 { return all[0].isHealthy ? all[0] : nil }
        let start = Int(UInt(bitPattern: rotation.add(1, ordering: .relaxed).oldValue) % UInt(count))
        var best: Backend?
        var bestLoad = Int.max
        for offset in 0..<count {
            let backend = all[(start + offset) % count]
            guard backend.isHealthy else { continue }
            let load = backend.inFlight
            if load < bestLoad {
                best = backend
                bestLoad = load
            }
        }
        return best
    }
}
