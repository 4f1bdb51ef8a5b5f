import Logging
import NIOCore
import Synchronization

/// What every connection of one gateway shares: configuration, the token authority, the
/// backends, metrics, the audit queue, connection counts, and each event loop's backend pools.
final class GatewayServices: Sendable {
    let configuration: GatewayConfiguration
    let authority: TokenAuthority
    let audit: AuditLog
    let metrics: GatewayMetrics
    let backends: BackendSet
    let logger: Logger
    /// The clock rate limits run on.
    let clock: GatewayClock
    let started = NIODeadline.now()
    private let counts = Mutex(ConnectionCounts())
    private let loopPools = Mutex<[ObjectIdentifier: NIOLoopBound<BackendPools>]>([:])

    init(configuration: GatewayConfiguration, authority: TokenAuthority, audit: AuditLog, metrics: GatewayMetrics,
         backends: BackendSet, clock: GatewayClock, logger: Logger) {
        self.clock = clock
        self.configuration = configuration
        self.authority = authority
        self.audit = audit
        self.metrics = metrics
        self.backends = backends
        self.logger = logger
    }

    /// What a new connection may do.
    enum Admission: Equatable {
        /// Counted against the caps; it may shake hands.
        case admitted
        /// Over a cap (the reason says which): not counted; it may ask `Health` during the
        /// refusal grace, and gets RESOURCE_EXHAUSTED for anything else or when the grace ends.
        case refused(String)
        /// Over a cap while too many refused connections are already waiting: refused at once.
        case refusedNow(String)
    }

    /// Admits a new connection from `address` unless a cap is reached: the gateway's total and
    /// handshake caps, and the same two per address (so one client cannot hold every handshake
    /// slot and lock partners out). A refused connection is not counted against the caps.
    func connectionOpened(from address: String) -> Admission {
        metrics.connectionOpened()
        let c = configuration
        return counts.withLock { counts in
            let mine = counts.byAddress[address] ?? PerAddress()
            let refusal: String? =
                if counts.total >= c.maxConnections {
                    "the gateway has its maximum of \(c.maxConnections) connections; retry later"
                } else if counts.unauthenticated >= c.maxUnauthenticatedConnections {
                    "too many connections are in their handshake (maximum \(c.maxUnauthenticatedConnections)); retry later"
                } else if mine.total >= c.maxConnectionsPerAddress {
                    "\(address) has its maximum of \(c.maxConnectionsPerAddress) connections; close some or retry later"
                } else if mine.unauthenticated >= c.maxUnauthenticatedConnectionsPerAddress {
                    "\(address) has \(c.maxUnauthenticatedConnectionsPerAddress) connections in their handshake already "
                        + "(the maximum per address); retry later"
                } else {
                    nil
                }
            if let refusal {
                guard counts.refused < c.maxConnections else { return .refusedNow(refusal) }
                counts.refused += 1
                return .refused(refusal)
            }
            counts.total += 1
            counts.unauthenticated += 1
            counts.byAddress[address] = PerAddress(total: mine.total + 1, unauthenticated: mine.unauthenticated + 1)
            return .admitted
        }
    }

    func connectionAuthenticated(from address: String) {
        metrics.authenticated()
        counts.withLock { counts in
            counts.unauthenticated -= 1
            counts.byAddress[address]?.unauthenticated -= 1
        }
    }

    /// A connection closed; `admission` is what `connectionOpened` said of it.
    func connectionClosed(from address: String, admission: Admission, authenticated: Bool) {
        metrics.connectionClosed(authenticated: authenticated)
        counts.withLock { counts in
            switch admission {
            case .admitted:
                counts.total -= 1
                if !authenticated { counts.unauthenticated -= 1 }
                var mine = counts.byAddress[address] ?? PerAddress()
                mine.total -= 1
                if !authenticated { mine.unauthenticated -= 1 }
                counts.byAddress[address] = mine.total > 0 ? mine : nil
            case .refused:
                counts.refused -= 1
            case .refusedNow:
                break
            }
        }
    }

    /// Connections open now (total, not yet authenticated), refused ones not included.
    var connectionCounts: (total: Int, unauthenticated: Int) { counts.withLock { ($0.total, $0.unauthenticated) } }

    /// Connections counted against the caps, in all and per client address.
    private struct ConnectionCounts {
        var total = 0
        var unauthenticated = 0
        /// Refused connections still open in their grace (bounded by the connection cap).
        var refused = 0
        var byAddress: [String: PerAddress] = [:]
    }

    private struct PerAddress {
        var total = 0
        var unauthenticated = 0
    }

    /// The backend pools of `eventLoop` (created on first use). Call on that loop.
    func pools(for eventLoop: any EventLoop) -> BackendPools {
        let key = ObjectIdentifier(eventLoop)
        if let existing = loopPools.withLock({ $0[key] }) { return existing.value }
        let pools = BackendPools(
            eventLoop: eventLoop, internalSecret: configuration.internalSecret,
            connectionsPerToken: configuration.backendConnectionsPerToken, logger: logger)
        let bound = NIOLoopBound(pools, eventLoop: eventLoop)
        loopPools.withLock { $0[key] = bound }
        return pools
    }
}
