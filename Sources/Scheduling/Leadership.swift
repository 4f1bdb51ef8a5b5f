import ArtifactStore
import Foundation
import Logging
import Prometheus
import Synchronization

/// Runs the duties only one server of a store may run — the scheduler, the inbox, the rollout
/// guard — in whichever server holds the store's lease: every `duration / 3` it renews (or
/// tries to take) the lease, starting the duties when it gains it and stopping them when it
/// loses it. When the holder dies, another server takes over within the lease's duration plus
/// one renewal period.
public final class Leadership: Sendable {
    let lease: StoreLease
    let logger: Logger
    private let lead: @Sendable () -> Void
    private let yield: @Sendable () -> Void
    private let leading = Atomic<Bool>(false)
    private let loop = Mutex<Task<Void, Never>?>(nil)
    private let gauge: Gauge?

    /// `lead` starts the duties, `yield` stops them.
    public init(
        lease: StoreLease, registry: PrometheusCollectorRegistry? = nil, logger: Logger,
        lead: @escaping @Sendable () -> Void, yield: @escaping @Sendable () -> Void
    ) {
        self.lease = lease
        self.logger = logger
        self.lead = lead
        self.yield = yield
        gauge = registry?.makeGauge(descriptor: .named(
            "loupe_scheduler_leader",
            help: "1 while this server holds the store's lease and runs the scheduler, the inbox and the rollout guard."))
    }

    /// Whether this server runs the duties now.
    public var isLeading: Bool { leading.load(ordering: .relaxed) }

    /// One round: renew or take the lease, and start or stop the duties to match.
    public func check(now: Date = Date()) {
        let holds: Bool
        do {
            holds = try lease.renew(now: now)
        } catch {
            // The store cannot be reached: keep the duties only while our lease can still be
            // valid, i.e. stop them (another server may take over once it expires).
            logger.error("cannot renew the scheduler lease", metadata: ["error": "\(error)"])
            holds = false
        }
        let was = leading.exchange(holds, ordering: .relaxed)
        gauge?.set(Int64(holds ? 1 : 0))
        if holds, !was {
            logger.info("this server now runs the scheduler, the inbox and the rollout guard", metadata: [
                "holder": "\(lease.holder)",
            ])
            lead()
        } else if !holds, was {
            logger.warning("this server no longer holds the scheduler lease; its duties stopped", metadata: [
                "holder": "\(lease.holder)",
            ])
            yield()
        }
    }

    /// Checks every `duration / 3` until `stop`.
    public func start() {
        let period = Duration.milliseconds(Int64(lease.duration * 1000 / 3))
        let task = Task { [weak self] in
            while !Task.isCancelled {
                self?.check()
                try? await Task.sleep(for: period)
            }
        }
        loop.withLock { $0 = task }
    }

    /// Stops checking, stops the duties and gives the lease up.
    public func stop() {
        loop.withLock {
            $0?.cancel()
            $0 = nil
        }
        if leading.exchange(false, ordering: .relaxed) {
            yield()
            try? lease.release()
        }
        gauge?.set(Int64(0))
    }
}
