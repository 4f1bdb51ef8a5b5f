import AsyncTimeout
import Foundation
import Logging
import NIOCore
import Synchronization
import TokenStore

/// The gateway's side of shared rate limits (a PostgreSQL token store): it runs the leases its
/// tokens ask for (`SharedRateLimit` decides when and how much), and heartbeats into the store
/// every `gatewayHeartbeatInterval` to count the live gateways — the share each token falls
/// back to while the store cannot be reached.
///
/// Costs the store one heartbeat per interval per gateway, plus leases: about one per
/// `slice × 3/4` of a busy token's traffic, none for idle or unlimited tokens.
final class RateLeasing: Sendable {
    let store: any RateLeaseStore
    /// This gateway's row in the heartbeat table: host, process and a random part, so a
    /// restarted gateway is a new one and the dead one's row just ages out.
    let gatewayID: String
    let clock: GatewayClock
    /// A lease tops a token's budget up to this many seconds of its rate (see `LeasedBucket`).
    let sliceSeconds: Double
    private let heartbeatInterval: TimeAmount
    private let timeout: TimeAmount
    private let metrics: GatewayMetrics
    private let logger: Logger
    private let live = Atomic<Int>(1)
    private let reachable = Atomic<Bool>(true)

    init(
        store: any RateLeaseStore, configuration: GatewayConfiguration, clock: GatewayClock, metrics: GatewayMetrics,
        logger: Logger
    ) {
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.logger = logger
        sliceSeconds = Double(configuration.rateLeaseSlice.nanoseconds) / 1e9
        heartbeatInterval = configuration.gatewayHeartbeatInterval
        timeout = configuration.storeTimeout
        gatewayID = "\(ProcessInfo.processInfo.hostName)/\(getpid())/\(UUID().uuidString.prefix(8))"
        metrics.rateLimits(shared: true)
        metrics.rateLimits(liveGateways: 1)
    }

    /// Gateways that heartbeated within three intervals, this one included (1 until the first
    /// heartbeat).
    var liveGateways: Int { live.load(ordering: .relaxed) }

    /// The share of a token's rate and burst this gateway allows itself while the store cannot
    /// be reached.
    var fallbackShare: Double { 1 / Double(max(1, liveGateways)) }

    /// Whether the last lease or heartbeat was answered.
    var storeReachable: Bool { reachable.load(ordering: .relaxed) }

    func conditions(now: Double) -> LeaseConditions {
        LeaseConditions(
            now: now, storeReachable: storeReachable, share: fallbackShare,
            retryInterval: Double(heartbeatInterval.nanoseconds) / 1e9)
    }

    /// Runs a lease for `state` in the background and hands the result back to it.
    func lease(_ ask: LeaseAsk, limits: RateLimits, for state: TokenState) {
        let request = RateLeaseRequest(
            tokenID: state.id, limits: limits, calls: ask.calls, rows: ask.rows, at: clock.drivesStore ? clock.now() : nil)
        Task {
            do {
                let store = self.store
                let lease = try await withTimeout(timeout) { try await store.leaseRate(request) }
                storeAnswered(true)
                let short = lease.calls < ask.calls - 1e-9 || lease.rows < ask.rows - 1e-9
                metrics.rateLease(result: short ? "short" : "full")
                state.leaseFinished(.success(lease), now: clock.now())
            } catch {
                storeAnswered(false, error: error)
                metrics.rateLease(result: "failed")
                state.leaseFinished(.failure(error), now: clock.now())
            }
        }
    }

    /// Heartbeats until cancelled.
    func run() async {
        while !Task.isCancelled {
            try? await Task.sleep(nanoseconds: UInt64(heartbeatInterval.nanoseconds))
            if Task.isCancelled { break }
            await heartbeat()
        }
    }

    /// Records this gateway as alive and counts the live ones.
    func heartbeat() async {
        let store = store
        let gatewayID = gatewayID
        // Three intervals: a gateway is counted until it has missed two heartbeats in a row.
        let window = 3 * Double(heartbeatInterval.nanoseconds) / 1e9
        do {
            let count = try await withTimeout(timeout) {
                try await store.heartbeat(gateway: gatewayID, liveWithin: window, at: nil)
            }
            let before = live.exchange(max(1, count), ordering: .relaxed)
            if before != count {
                logger.info("live gateways sharing rate limits", metadata: ["count": "\(count)", "was": "\(before)"])
            }
            metrics.rateLimits(liveGateways: max(1, count))
            storeAnswered(true)
        } catch {
            storeAnswered(false, error: error)
        }
    }

    /// At shutdown: gives the budget the tokens still hold back to the store (so the other
    /// gateways can use it) and removes this gateway's heartbeat (so they count one fewer at
    /// once). Best effort: what is not given back is lost for the other gateways until the
    /// shared buckets refill, at most one slice per token.
    func leave(_ states: [TokenState]) async {
        let store = store
        for state in states {
            guard let (ask, limits) = state.releaseLeases() else { continue }
            let request = RateLeaseRequest(
                tokenID: state.id, limits: limits, calls: ask.calls, rows: ask.rows,
                at: clock.drivesStore ? clock.now() : nil)
            _ = try? await withTimeout(timeout) { try await store.leaseRate(request) }
        }
        let gatewayID = gatewayID
        _ = try? await withTimeout(timeout) { try await store.removeHeartbeat(gateway: gatewayID) }
    }

    private func storeAnswered(_ answered: Bool, error: (any Error)? = nil) {
        let was = reachable.exchange(answered, ordering: .relaxed)
        guard was != answered else { return }
        metrics.rateLimits(fallback: !answered)
        if answered {
            logger.notice("the token store answers rate leases again; shared rate limits resume")
        } else {
            let share = "1/\(liveGateways)"
            logger.error(
                "cannot lease rate budget from the token store; each token falls back to \(share) of its limits until it answers",
                metadata: ["error": "\(error.map { "\($0)" } ?? "?")"])
        }
    }
}
