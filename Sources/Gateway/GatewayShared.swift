import Logging
import NIOCore
import Synchronization

/// What every connection of one gateway shares: configuration, the token authority, the
/// backends, metrics, the audit queue, connection counts, and each event loop's backend pools.
final class GatewayShared: Sendable {
    let configuration: GatewayConfiguration
    let authority: TokenAuthority
    let audit: AuditLog
    let metrics: GatewayMetrics
    let backends: BackendSet
    let logger: Logger
    let started = NIODeadline.now()
    private let counts = Mutex<(total: Int, unauthenticated: Int)>((0, 0))
    private let loopPools = Mutex<[ObjectIdentifier: NIOLoopBound<BackendPools>]>([:])

    init(configuration: GatewayConfiguration, authority: TokenAuthority, audit: AuditLog, metrics: GatewayMetrics,
         backends: BackendSet, logger: Logger) {
        self.configuration = configuration
        self.authority = authority
        self.audit = audit
        self.metrics = metrics
        self.backends = backends
        self.logger = logger
    }

    /// Counts a new connection; returns why it is refused when a cap is reached.
    func connectionOpened() -> String? {
        metrics.connectionOpened()
        return counts.withLock { counts in
            counts.total += 1
            counts.unauthenticated += 1
            if counts.total > configuration.maxConnections {
                return "the gateway has its maximum of \(configuration.maxConnections) connections; retry later"
            }
            if counts.unauthenticated > configuration.maxUnauthenticatedConnections {
                return "too many connections are in their handshake (maximum "
                    + "\(configuration.maxUnauthenticatedConnections)); retry later"
            }
            return nil
        }
    }

    func connectionAuthenticated() {
        metrics.authenticated()
        counts.withLock { $0.unauthenticated -= 1 }
    }

    func connectionClosed(authenticated: Bool) {
        metrics.connectionClosed(authenticated: authenticated)
        counts.withLock { counts in
            counts.total -= 1
            if !authenticated { counts.unauthenticated -= 1 }
        }
    }

    /// Connections open now (total, not yet authenticated).
    var connectionCounts: (total: Int, unauthenticated: Int) { counts.withLock { $0 } }

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
