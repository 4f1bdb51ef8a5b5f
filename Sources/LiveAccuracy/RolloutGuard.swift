import ArtifactStore
import Catalog
import Foundation
import Logging
import ModelServer
import Prometheus
import RequestLog
import Synchronization

/// When a canary or a newly promoted version is rolled back without an operator: the margins by
/// which it may do worse than the version it is compared with, and how much evidence a
/// judgement needs. Every margin is checked only once its evidence is in.
public struct RolloutPolicy: Sendable, Hashable, Codable {
    /// Calls each version must have answered (in its role, in this server) before error rates
    /// and latencies are compared.
    public var minCalls = 200
    /// How much higher (absolute, 0.01 = one point) the candidate's server-error rate may be.
    public var maxErrorRateIncrease = 0.01
    /// How many times production's p99 latency the candidate's may be …
    public var maxLatencyRatio = 2.0
    /// … ignoring differences under this many microseconds (noise on a busy machine).
    public var latencyFloorMicroseconds: Int64 = 5_000
    /// Outcomes both versions were scored on before live accuracy is compared.
    public var minOutcomes = 30
    /// How much worse (relative, 0.10 = 10%) the candidate's live MAPE or RMSE may be.
    public var maxAccuracyLoss = 0.10
    /// How long after a promotion the new production is still watched (and can be rolled back
    /// to the version before it).
    public var watchAfterPromotion: TimeInterval = 24 * 3600
    /// Whether a failed judgement rolls back (false: verdicts are only logged and live accuracy
    /// still reaches the metrics).
    public var autoRollback = true

    public init() {}
}

/// One judgement of the guard.
public struct RolloutVerdict: Sendable, Hashable, Codable {
    /// `canary` or `production`.
    public var alias: String
    public var version: Int
    /// The version it was compared with (production for a canary, the previous production).
    public var baseline: Int
    /// Why it was rolled back; nil when it holds.
    public var rollbackReason: String?
    /// The figures compared, for the log.
    public var evidence: String
}

/// Watches the canary and a newly promoted production, and rolls either back when it does
/// worse than its baseline by more than the policy allows: on server errors or latency (this
/// server's calls) or on live accuracy (outcomes both versions were scored on). A rollback is an
/// alias move like an operator's, with the reason in the alias history and the log; servers
/// follow it at their next poll (this one at once, through `onRollback`).
public final class RolloutGuard: Sendable {
    let catalog: Catalog
    let model: String
    let liveStats: LiveCallStats
    let guestbook: (any Guestbook)?
    public let policy: RolloutPolicy
    let logger: Logger
    let onRollback: @Sendable () -> Void
    let onCheck: @Sendable ([Int: VersionAccuracy]) -> Void
    private let metrics: LiveAccuracyMetrics?
    private let task = Mutex<Task<Void, Never>?>(nil)
    private let latest = Mutex<[Int: VersionAccuracy]>([:])

    /// Each version's live accuracy as of the last check (last 30 days of outcomes).
    public var liveAccuracy: [Int: VersionAccuracy] { latest.withLock { $0 } }

    public init(
        catalog: Catalog, model: String = Catalog.defaultModel, liveStats: LiveCallStats, guestbook: (any Guestbook)?,
        policy: RolloutPolicy = RolloutPolicy(), registry: PrometheusCollectorRegistry? = nil, logger: Logger,
        onRollback: @escaping @Sendable () -> Void = {}, onCheck: @escaping @Sendable ([Int: VersionAccuracy]) -> Void = { _ in }
    ) {
        self.onCheck = onCheck
        self.catalog = catalog
        self.model = model
        self.liveStats = liveStats
        self.guestbook = guestbook
        self.policy = policy
        self.logger = logger
        self.onRollback = onRollback
        metrics = registry.map(LiveAccuracyMetrics.init)
    }

    /// Checks every `interval` until `stop`.
    public func start(every interval: Duration) {
        let loop = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                guard let self, !Task.isCancelled else { return }
                _ = await self.check()
            }
        }
        task.withLock { $0 = loop }
    }

    public func stop() {
        task.withLock { $0?.cancel() }
    }

    /// Judges the canary and a watched production now, rolling back what fails; returns the verdicts.
    @discardableResult
    public func check(now: Date = Date()) async -> [RolloutVerdict] {
        do {
            let aliases = try catalog.store.aliases(name: model)
            let scores = try await guestbook?.outcomeScores(model: model, since: now.addingTimeInterval(-30 * 86400)) ?? []
            let accuracy = LiveAccuracy.byVersion(scores)
            latest.withLock { $0 = accuracy }
            onCheck(accuracy)
            metrics?.update(accuracy)
            var verdicts: [RolloutVerdict] = []
            if let canary = aliases.canary, let production = aliases.production, canary != production {
                let started = aliases.history.last { $0.alias == .canary && $0.action == .promote }?.at ?? .distantPast
                var verdict = judge(canary, against: production, alias: .canary, since: started, scores: scores)
                if verdict.rollbackReason != nil {
                    verdict = act(verdict) {
                        try catalog.endRollout(name: model, alias: .canary, reason: "automatic rollback: \(verdict.rollbackReason!)")
                    }
                }
                verdicts.append(verdict)
            }
            let stack = aliases.rollbackStack(for: .production)
            if let last = aliases.history.last(where: { $0.alias == .production }), last.action == .promote,
                now.timeIntervalSince(last.at) <= policy.watchAfterPromotion, stack.count >= 2,
                let production = aliases.production
            {
                let previous = stack[stack.count - 2]
                var verdict = judge(production, against: previous, alias: .production, since: last.at, scores: scores)
                if verdict.rollbackReason != nil {
                    verdict = act(verdict) {
                        try catalog.rollback(name: model, reason: "automatic rollback: \(verdict.rollbackReason!)")
                    }
                }
                verdicts.append(verdict)
            }
            return verdicts
        } catch {
            logger.error("the rollout check failed", metadata: ["model": "\(model)", "error": "\(error)"])
            return []
        }
    }

    /// Compares `candidate` with `baseline` on this server's calls and on live accuracy.
    func judge(_ candidate: Int, against baseline: Int, alias: ModelAlias, since: Date, scores: [OutcomeScore])
        -> RolloutVerdict
    {
        let recent = scores.filter { Double($0.atMilliseconds) / 1000 >= since.timeIntervalSince1970 }
        let (reasons, evidence) = Self.compare(
            candidate: liveStats.snapshot(version: candidate), baseline: liveStats.snapshot(version: baseline),
            accuracy: LiveAccuracy.paired(recent, candidate, baseline), baselineVersion: baseline, policy: policy)
        return RolloutVerdict(
            alias: alias.rawValue, version: candidate, baseline: baseline,
            rollbackReason: reasons.isEmpty ? nil : "\(alias) v\(candidate): " + reasons.joined(separator: "; "),
            evidence: evidence.isEmpty ? "not enough evidence yet" : evidence.joined(separator: "; "))
    }

    /// The policy applied to two versions' figures: why the candidate fails (empty: it holds),
    /// and what was compared. A comparison is made only once its evidence is in.
    public static func compare(
        candidate c: LiveCallStats.Snapshot, baseline b: LiveCallStats.Snapshot,
        accuracy: (a: VersionAccuracy, b: VersionAccuracy)?, baselineVersion: Int, policy: RolloutPolicy
    ) -> (reasons: [String], evidence: [String]) {
        var evidence: [String] = []
        var reasons: [String] = []
        if c.calls >= policy.minCalls, b.calls >= policy.minCalls {
            evidence.append(String(format: "server errors %.2f%% vs %.2f%%, p99 %d µs vs %d µs over %d and %d calls",
                                   c.errorRate * 100, b.errorRate * 100, c.p99Microseconds, b.p99Microseconds, c.calls, b.calls))
            if c.errorRate - b.errorRate > policy.maxErrorRateIncrease {
                reasons.append(String(format: "server errors %.2f%% vs %.2f%% for v%d",
                                      c.errorRate * 100, b.errorRate * 100, baselineVersion))
            }
            let limit = max(Double(b.p99Microseconds) * policy.maxLatencyRatio,
                            Double(b.p99Microseconds + policy.latencyFloorMicroseconds))
            if Double(c.p99Microseconds) > limit {
                reasons.append("p99 latency \(c.p99Microseconds) µs vs \(b.p99Microseconds) µs for v\(baselineVersion)")
            }
        }
        if let (a, base) = accuracy, a.outcomes >= policy.minOutcomes {
            evidence.append(String(format: "live MAPE %.2f%% vs %.2f%%, RMSE $%.0f vs $%.0f on %d outcomes",
                                   a.mape, base.mape, a.rmse, base.rmse, a.outcomes))
            if a.mape > base.mape * (1 + policy.maxAccuracyLoss) {
                reasons.append(String(format: "live MAPE %.2f%% vs %.2f%% for v%d on %d outcomes",
                                      a.mape, base.mape, baselineVersion, a.outcomes))
            } else if a.rmse > base.rmse * (1 + policy.maxAccuracyLoss) {
                reasons.append(String(format: "live RMSE $%.0f vs $%.0f for v%d on %d outcomes",
                                      a.rmse, base.rmse, baselineVersion, a.outcomes))
            }
        }
        return (reasons, evidence)
    }

    private func act(_ verdict: RolloutVerdict, _ rollback: () throws -> Void) -> RolloutVerdict {
        guard policy.autoRollback else {
            logger.warning("would roll back (automatic rollback is off)", metadata: [
                "model": "\(model)", "alias": "\(verdict.alias)", "version": "\(verdict.version)",
                "reason": "\(verdict.rollbackReason ?? "")", "evidence": "\(verdict.evidence)",
            ])
            return verdict
        }
        do {
            try rollback()
            metrics?.rolledBack(alias: verdict.alias)
            logger.warning("automatic rollback", metadata: [
                "model": "\(model)", "alias": "\(verdict.alias)", "version": "\(verdict.version)",
                "baseline": "\(verdict.baseline)", "reason": "\(verdict.rollbackReason ?? "")", "evidence": "\(verdict.evidence)",
            ])
            onRollback()
        } catch {
            logger.error("automatic rollback failed", metadata: [
                "model": "\(model)", "alias": "\(verdict.alias)", "version": "\(verdict.version)", "error": "\(error)",
            ])
        }
        return verdict
    }
}

/// Live accuracy per version and automatic rollbacks, in the server's Prometheus registry.
final class LiveAccuracyMetrics: Sendable {
    private let registry: PrometheusCollectorRegistry
    private let rollbacks: Counter
    private let gauges = Mutex<[String: Gauge]>([:])

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        rollbacks = registry.makeCounter(
            descriptor: .named("loupe_rollout_rollbacks_total",
                help: "Canaries and new production versions rolled back automatically for doing worse than their baseline."))
    }

    func rolledBack(alias: String) { rollbacks.increment() }

    func update(_ accuracy: [Int: VersionAccuracy]) {
        for (version, a) in accuracy {
            set("loupe_live_outcomes", "Outcomes (realised prices) scored for the version over the last 30 days.",
                version, Double(a.outcomes))
            set("loupe_live_rmse_dollars", "The version's live RMSE against realised prices, in dollars.", version, a.rmse)
            set("loupe_live_mape_percent", "The version's live MAPE against realised prices, in percent.", version, a.mape)
            if let coverage = a.coverage {
                set("loupe_live_range_coverage", "Share of realised prices inside the version's range.", version, coverage)
            }
        }
    }

    private func set(_ name: String, _ help: String, _ version: Int, _ value: Double) {
        let key = "\(name)|\(version)"
        let gauge = gauges.withLock { gauges in
            if let g = gauges[key] { return g }
            let g = registry.makeGauge(descriptor: .named(name, help: help), labels: [("version", "\(version)")])
            gauges[key] = g
            return g
        }
        gauge.set(value)
    }
}
