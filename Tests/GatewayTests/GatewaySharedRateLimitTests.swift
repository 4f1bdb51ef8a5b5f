import Foundation
import Gateway
import LoupeClient
import LoupeProtocol
import LoupeTestKit
import Testing
import TokenStore

/// Where the gateways' shared buckets live in a test.
enum SharedStoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// `SharedLimitsStore`: runs everywhere.
    case inMemory
    /// `PostgresTokenStore` (skipped without `LOUPE_TEST_POSTGRES_URL`, except under CI).
    case postgres
    var testDescription: String { rawValue }
}

/// Several `Gateway`s in one process on one token store, each with its own client, driven on a
/// simulated clock: the counts depend on the configured rate, burst and slice only, never on
/// how fast the machine makes the calls.
@Suite(.serialized) struct GatewaySharedRateLimitTests {
    /// Three gateways, one token at 50 calls/s (burst 10), each gateway offered one call every
    /// 20 ms of simulated time (150/s in all) for 10 simulated seconds: together they admit at
    /// most burst + rate × t + 3 slices (one slice = 5 calls), and at least 90% of rate × t.
    @Test(arguments: SharedStoreKind.allCases) func threeGatewaysTogetherKeepToOneTokensRate(kind: SharedStoreKind) async throws {
        let clock = ManualClock()
        guard let gateways = try await startGateways(3, kind: kind, clock: clock) else { return }
        defer { Task { for g in gateways { await g.stop() } } }
        let rate = 50.0, burst = 10.0, step = 0.02, steps = 500
        let token = try await gateways[0].token(
            "shared-\(UUID().uuidString.prefix(6))",
            limits: RateLimits(callsPerSecond: rate, callBurst: burst, rowsPerSecond: 0, rowBurst: 0))
        var clients: [LoupeClient] = []
        for g in gateways { clients.append(try await g.client(token)) }
        var perGateway = [0, 0, 0]
        var refused = 0
        for _ in 0..<steps {
            let outcomes = await withTaskGroup(of: (Int, Bool).self) { group in
                for (index, client) in clients.enumerated() {
                    group.addTask {
                        do {
                            _ = try await client.quickPredict()
                            return (index, true)
                        } catch {
                            #expect(code(error) == .resourceExhausted, "\(error)")
                            return (index, false)
                        }
                    }
                }
                return await group.reduce(into: [(Int, Bool)]()) { $0.append($1) }
            }
            for (index, ok) in outcomes {
                if ok { perGateway[index] += 1 } else { refused += 1 }
            }
            clock.advance(by: step)
        }
        let admitted = perGateway.reduce(0, +)
        let elapsed = Double(steps - 1) * step
        let slice = 5.0
        print("three gateways, 50 calls/s burst 10, \(elapsed) simulated s: admitted \(admitted) \(perGateway), refused \(refused)")
        #expect(Double(admitted) <= burst + rate * elapsed + 3 * slice)
        #expect(Double(admitted) >= 0.9 * rate * elapsed)
        #expect(admitted + refused == 3 * steps)
        // Every gateway got some: the budget goes where the calls are.
        #expect(perGateway.allSatisfy { $0 > 0 })
        for g in gateways { await g.gateway.heartbeatRateLimits() }
        for g in gateways {
            let text = g.gateway.metrics.exposition()
            // Every gateway counts the three (more with PostgreSQL if another test's gateways
            // are alive at the same time).
            let live = text.split(separator: "\n").first { $0.hasPrefix("loupe_gateway_live_gateways ") }
            #expect((live?.split(separator: " ").last.flatMap { Double($0) } ?? 0) >= 3)
            #expect(text.contains("loupe_gateway_rate_limits_shared 1"))
            #expect(text.contains("loupe_gateway_rate_leases_total{result="))
        }
        for client in clients { await client.close() }
    }

    /// The store stops answering leases: each gateway falls back to its share of the token's
    /// limits (1 / live gateways = 1/2 here) and tries again every heartbeat interval; when the
    /// store is back, the shared buckets apply again.
    @Test func whenTheStoreStopsAnsweringEachGatewayKeepsToItsShare() async throws {
        let clock = ManualClock()
        let shared = SharedLimitsStore.Shared(path: TestFiles.unique("loupe-shared", suffix: ".sqlite").path)
        guard let gateways = try await startGateways(2, kind: .inMemory, clock: clock, shared: shared) else { return }
        defer { Task { for g in gateways { await g.stop() } } }
        for g in gateways { await g.gateway.heartbeatRateLimits() }
        let token = try await gateways[0].token(
            "fallback-\(UUID().uuidString.prefix(6))",
            limits: RateLimits(callsPerSecond: 20, callBurst: 10, rowsPerSecond: 0, rowBurst: 0))
        let client = try await gateways[0].client(token)
        shared.failing = true
        // A burst of half of 10, then half of 20/s: 10 more over the next simulated second.
        var admitted = 0
        for _ in 0..<20 where (try? await client.quickPredict()) != nil { admitted += 1 }
        #expect(admitted == 5)
        for _ in 0..<100 {
            clock.advance(by: 0.01)
            if (try? await client.quickPredict()) != nil { admitted += 1 }
        }
        #expect(admitted >= 5 + 9 && admitted <= 5 + 11)
        let text = gateways[0].gateway.metrics.exposition()
        #expect(text.contains("loupe_gateway_rate_fallback 1"))
        #expect(text.contains("loupe_gateway_live_gateways 2"))
        #expect(text.contains("loupe_gateway_rate_share 0.5"))
        // Back: the next retry (every heartbeat interval) leases again.
        shared.failing = false
        clock.advance(by: 1)
        #expect(await gateways[0].eventually(30) {
            _ = try? await client.quickPredict()
            return gateways[0].gateway.metrics.exposition().contains("loupe_gateway_rate_fallback 0")
        })
        await client.close()
    }

    /// With a SQLite store nothing changes: one gateway, its own buckets.
    @Test func aSQLiteStoreKeepsTheLimitsInTheGateway() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Task { await fixture.stop() } }
        #expect(fixture.gateway.metrics.exposition().contains("loupe_gateway_rate_limits_shared 0"))
    }

    /// `count` gateways on one store of `kind` (nil when PostgreSQL is not available).
    private func startGateways(
        _ count: Int, kind: SharedStoreKind, clock: ManualClock, shared: SharedLimitsStore.Shared? = nil
    ) async throws -> [GatewayFixture]? {
        var url: String?
        if kind == .postgres {
            guard let found = try postgresURL() else { return nil }
            url = found
        }
        let shared = shared ?? SharedLimitsStore.Shared(path: TestFiles.unique("loupe-shared", suffix: ".sqlite").path)
        var gateways: [GatewayFixture] = []
        for _ in 0..<count {
            let store: any TokenStore =
                if let url { try await PostgresTokenStore(url: url, operationTimeout: .seconds(30)) } else {
                    try SharedLimitsStore(shared, clock: clock)
                }
            gateways.append(try await GatewayFixture.start(tokens: store, clock: clock.gatewayClock) {
                $0.gatewayHeartbeatInterval = .seconds(1)
            })
        }
        return gateways
    }
}
