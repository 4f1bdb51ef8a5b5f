import DiamondSchema
import Foundation
import LiveAccuracy
import Logging
import LoupeClient
import LoupeProtocol
import ModelRuntime
import ModelServer
import RequestLog
import Synchronization
import Testing

/// Shadow, then canary, then automatic rollback of a deliberately worse version, while a client
/// keeps calling: no call fails, and every answer comes from a version it should.
@Suite(.serialized) struct RolloutTests {
    /// Calls Predict and BatchPredict until stopped; counts failures and the versions that answered.
    final class Load: Sendable {
        let failures = Atomic<Int>(0)
        let calls = Atomic<Int>(0)
        let versions = Mutex<[UInt32: Int]>([:])
        let stopped = Atomic<Bool>(false)

        func run(_ client: LoupeClient, stones: [Diamond]) async {
            var i = 0
            while !stopped.load(ordering: .relaxed) {
                do {
                    let version: UInt32
                    if i % 4 == 3 {
                        version = try await client.batchPredict(Loupe_V1_DiamondColumns(Array(stones.prefix(8)))).modelVersion
                    } else {
                        version = try await client.predict(stones[i % stones.count]).modelVersion
                    }
                    versions.withLock { $0[version, default: 0] += 1 }
                } catch {
                    failures.add(1, ordering: .relaxed)
                }
                calls.add(1, ordering: .relaxed)
                i += 1
            }
        }
    }

    @Test func shadowThenCanaryThenAutomaticRollbackWithNoFailedCall() async throws {
        let fixture = try await RolloutFixture.start()
        let outcomes = try unseenOutcomes(60)
        let stones = outcomes.map(\.diamond)
        let load = Load()
        let client = try await fixture.client()
        let running = Task { await load.run(client, stones: stones) }
        let registry = fixture.server.registry

        // Shadow: production answers, the shadow's answers land in the shadow table.
        try fixture.catalog.promote(name: "diamonds", version: fixture.worse, to: .shadow)
        try await fixture.eventually("the server runs the shadow") { registry.rollout.shadow?.version == fixture.worse }
        let probe = try await fixture.client()
        for stone in stones.prefix(5) {
            #expect(try await probe.predict(stone).modelVersion == UInt32(fixture.good))
        }
        await fixture.server.drainShadow()
        let shadowRows = try await fixture.guestbook.shadowRows(GuestbookQuery(limit: 10_000))
        #expect(!shadowRows.isEmpty && shadowRows.allSatisfy { $0.modelVersion == fixture.worse })
        let priced = Set(stones.prefix(5).map(\.carat))
        #expect(priced.isSubset(of: Set(shadowRows.compactMap { $0.diamond?.carat })))
        #expect(shadowRows.contains { $0.method == "BatchPredict" && $0.rows == 8 })
        // The shadow never answered a partner.
        #expect(load.versions.withLock { $0[UInt32(fixture.worse)] } == nil)

        // Canary for every partner: the worse version answers.
        try fixture.catalog.endRollout(name: "diamonds", alias: .shadow)
        try fixture.catalog.promote(name: "diamonds", version: fixture.worse, to: .canary, percent: 100)
        try await fixture.eventually("the canary answers") {
            try await probe.predict(stones[0]).modelVersion == UInt32(fixture.worse)
        }

        // Realised prices come back through the RPC, joined to the calls by diamond.
        try await fixture.requestLog.flush()
        var request = Loupe_V1_ReportOutcomesRequest()
        request.outcomes = outcomes.map { o in
            var outcome = Loupe_V1_Outcome()
            outcome.diamond = Loupe_V1_Diamond(o.diamond)
            outcome.soldPrice = o.soldPrice
            return outcome
        }
        let reported = try await probe.reportOutcomes(request)
        #expect(reported.accepted == 60 && reported.rejected.isEmpty)
        #expect(reported.matchedByDiamond > 0)

        // The guard compares the canary with production on those outcomes and rolls it back.
        var policy = RolloutPolicy()
        policy.minCalls = .max  // judge on accuracy alone: latency on a shared machine is noise
        policy.minOutcomes = 30
        let rollouts = RolloutGuard(
            catalog: fixture.catalog, liveStats: fixture.server.liveStats, guestbook: fixture.guestbook, policy: policy,
            registry: fixture.server.metrics.registry, logger: Logger(label: "test"),
            onRollback: { fixture.server.reloadProduction() })
        let verdicts = await rollouts.check()
        let verdict = try #require(verdicts.first { $0.alias == "canary" })
        #expect(verdict.rollbackReason?.contains("live MAPE") == true)
        let aliases = try fixture.catalog.store.aliases(name: "diamonds")
        #expect(aliases.canary == nil && aliases.production == fixture.good)
        #expect(aliases.history.last?.reason?.hasPrefix("automatic rollback: canary v\(fixture.worse)") == true)
        #expect(registry.rollout.canary == nil)
        #expect(try await probe.predict(stones[0]).modelVersion == UInt32(fixture.good))
        // Live accuracy per version, as the metrics and the listing show it.
        let live = rollouts.liveAccuracy
        #expect(try #require(live[fixture.worse]).mape > 2 * (try #require(live[fixture.good])).mape)
        let exposition = fixture.server.metrics.exposition()
        #expect(exposition.contains("loupe_rollout_rollbacks_total 1"))
        #expect(exposition.contains("loupe_live_mape_percent{version=\"\(fixture.worse)\"}"))
        #expect(exposition.contains("loupe_model_canary_version 0"))

        // Keep calling a little past the rollback, then stop: not one call failed.
        let after = load.calls.load(ordering: .relaxed)
        try await fixture.eventually("more calls after the rollback") { load.calls.load(ordering: .relaxed) > after + 20 }
        load.stopped.store(true, ordering: .relaxed)
        await running.value
        #expect(load.failures.load(ordering: .relaxed) == 0)
        #expect(load.versions.withLock { $0[UInt32(fixture.worse)] ?? 0 } > 0)
        await client.close()
        await probe.close()
        await fixture.stop()
    }

    @Test func aNewProductionThatDoesWorseIsRolledBack() async throws {
        let fixture = try await RolloutFixture.start()
        try fixture.catalog.promote(name: "diamonds", version: fixture.worse, reason: "looked fine offline")
        try await fixture.eventually("the new production serves") { fixture.server.registry.model?.version == fixture.worse }
        var policy = RolloutPolicy()
        policy.minCalls = .max
        policy.minOutcomes = 30
        let rollouts = RolloutGuard(
            catalog: fixture.catalog, liveStats: fixture.server.liveStats, guestbook: fixture.guestbook, policy: policy,
            logger: Logger(label: "test"), onRollback: { fixture.server.reloadProduction() })
        // Too little evidence: nothing happens.
        #expect(await rollouts.check().allSatisfy { $0.rollbackReason == nil })
        _ = try await OutcomeIngest(catalog: fixture.catalog, guestbook: fixture.guestbook).ingest(try unseenOutcomes(40))
        let verdict = try #require(await rollouts.check().first { $0.alias == "production" })
        #expect(verdict.baseline == fixture.good && verdict.rollbackReason != nil)
        #expect(try fixture.catalog.store.aliases(name: "diamonds").production == fixture.good)
        #expect(fixture.server.registry.model?.version == fixture.good)
        // A rollback is not itself watched: the next check leaves production alone.
        #expect(await rollouts.check().isEmpty)
        await fixture.stop()
    }

    @Test func theGuardJudgesErrorsLatencyAndAccuracyOnceTheEvidenceIsIn() throws {
        var policy = RolloutPolicy()
        policy.minCalls = 100
        policy.minOutcomes = 30
        func calls(_ n: Int, errors: Int = 0, p99: Int64 = 2_000) -> LiveCallStats.Snapshot {
            LiveCallStats.Snapshot(calls: n, serverErrors: errors, p50Microseconds: p99 / 2, p99Microseconds: p99)
        }
        func reasons(_ c: LiveCallStats.Snapshot, _ b: LiveCallStats.Snapshot,
                     _ accuracy: (a: VersionAccuracy, b: VersionAccuracy)? = nil) -> [String] {
            RolloutGuard.compare(candidate: c, baseline: b, accuracy: accuracy, baselineVersion: 1, policy: policy).reasons
        }
        #expect(reasons(calls(500), calls(500)).isEmpty)
        // Errors: two points more fails, half a point does not; too few calls is no verdict.
        #expect(reasons(calls(500, errors: 15), calls(500, errors: 5)).first?.contains("server errors") == true)
        #expect(reasons(calls(500, errors: 7), calls(500, errors: 5)).isEmpty)
        #expect(reasons(calls(50, errors: 40), calls(500)).isEmpty)
        // Latency: past twice production's p99 and the floor fails; within the floor does not.
        #expect(reasons(calls(500, p99: 20_000), calls(500, p99: 4_000)).first?.contains("p99") == true)
        #expect(reasons(calls(500, p99: 6_000), calls(500, p99: 2_000)).isEmpty)
        // Accuracy: 10% worse MAPE fails once 30 outcomes are in.
        func accuracy(_ mape: Double, _ n: Int, version: Int) -> VersionAccuracy {
            let scores = (0..<n).map { i in
                OutcomeScore(
                    outcomeID: "\(i)", modelName: "m", modelVersion: version, served: false, matchedBy: "none",
                    atMilliseconds: 0, soldAtMilliseconds: nil, principal: nil, requestID: nil, soldPrice: 100,
                    price: 100 + mape, low: nil, high: nil)
            }
            return VersionAccuracy(version: version, scores)!
        }
        #expect(reasons(calls(0), calls(0), (accuracy(12, 40, version: 2), accuracy(10, 40, version: 1)))
            .first?.contains("live MAPE") == true)
        #expect(reasons(calls(0), calls(0), (accuracy(10.5, 40, version: 2), accuracy(10, 40, version: 1))).isEmpty)
        #expect(reasons(calls(0), calls(0), (accuracy(50, 20, version: 2), accuracy(10, 20, version: 1))).isEmpty)
    }
}
