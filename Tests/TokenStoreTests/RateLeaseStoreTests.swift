import Foundation
import NIOCore
import Testing
import TokenStore

/// PostgreSQL's shared buckets and heartbeats, on explicit times (`at`): the statement's
/// arithmetic, and that gateways leasing at once never get the same budget twice.
@Suite(.serialized) struct RateLeaseStoreTests {
    static let limits = RateLimits(callsPerSecond: 50, callBurst: 10, rowsPerSecond: 1000, rowBurst: 2000)

    @Test func leasesRefillCapAndGiveBack() async throws {
        guard let url = try postgresTestURL() else { return }
        let store = try await PostgresTokenStore(url: url, operationTimeout: .seconds(30))
        let id = "lease-\(UUID().uuidString.prefix(8))"
        func lease(_ calls: Double, _ rows: Double, at: Double, limits: RateLimits = Self.limits) async throws -> RateLease {
            try await store.leaseRate(RateLeaseRequest(tokenID: id, limits: limits, calls: calls, rows: rows, at: at))
        }
        // New: both buckets full.
        #expect(try await lease(3, 500, at: 100) == RateLease(calls: 3, rows: 500))
        // Short: what is left.
        #expect(try await lease(10, 2000, at: 100) == RateLease(calls: 7, rows: 1500))
        // Refilled at the rates: 1/8 s is 6.25 calls and 125 rows (times exact in binary).
        #expect(try await lease(10, 1000, at: 100.125) == RateLease(calls: 6.25, rows: 125))
        // Given back, then leased again.
        #expect(try await lease(-4, 0, at: 100.125) == RateLease(calls: -4, rows: 0))
        #expect(try await lease(10, 0, at: 100.125) == RateLease(calls: 4, rows: 0))
        // Refilled up to the burst, not past it; giving back to a full bucket gives nothing.
        #expect(try await lease(-5, 0, at: 200) == RateLease(calls: 0, rows: 0))
        #expect(try await lease(20, 3000, at: 200) == RateLease(calls: 10, rows: 2000))
        // A clock behind refills nothing (and does not move the bucket's time back).
        #expect(try await lease(1, 1, at: 150) == RateLease(calls: 0, rows: 0))
        #expect(try await lease(1, 0, at: 200.03125) == RateLease(calls: 1, rows: 0))
        // An unlimited bucket grants nothing; when it becomes limited it starts full.
        let rowsFree = RateLimits(callsPerSecond: 50, callBurst: 10, rowsPerSecond: 0, rowBurst: 0)
        #expect(try await lease(0, 5, at: 300, limits: rowsFree) == RateLease(calls: 0, rows: 0))
        #expect(try await lease(0, 5, at: 300) == RateLease(calls: 0, rows: 5))
        // Without a time, the server's clock: a new bucket is full, and however long the machine
        // takes between two leases, the second gets what is left, refilled up to the burst at most.
        let fresh = RateLeaseRequest(tokenID: "\(id)-clock", limits: Self.limits, calls: 3, rows: 0)
        #expect(try await store.leaseRate(fresh).calls == 3)
        var more = fresh
        more.calls = 100
        let second = try await store.leaseRate(more).calls
        #expect(second >= 7 && second <= 10)
        await store.close()
    }

    @Test func concurrentLeasesNeverGrantTheSameBudgetTwice() async throws {
        guard let url = try postgresTestURL() else { return }
        let stores = [
            try await PostgresTokenStore(url: url, operationTimeout: .seconds(30)),
            try await PostgresTokenStore(url: url, operationTimeout: .seconds(30)),
        ]
        let id = "race-\(UUID().uuidString.prefix(8))"
        let limits = RateLimits(callsPerSecond: 1, callBurst: 100, rowsPerSecond: 0, rowBurst: 0)
        let granted = try await withThrowingTaskGroup(of: Double.self) { group in
            for i in 0..<40 {
                let store = stores[i % 2]
                group.addTask {
                    try await store.leaseRate(RateLeaseRequest(tokenID: id, limits: limits, calls: 3, rows: 0, at: 500)).calls
                }
            }
            return try await group.reduce(0, +)
        }
        // 40 × 3 asked of a bucket of 100 at one instant: exactly 100 granted.
        #expect(granted == 100)
        for store in stores { await store.close() }
    }

    @Test func heartbeatsCountTheLiveGateways() async throws {
        guard let url = try postgresTestURL() else { return }
        let store = try await PostgresTokenStore(url: url, operationTimeout: .seconds(30))
        // Times well ahead of the real clock, so gateways of other tests do not count.
        let t = Date().timeIntervalSince1970 + 1000
        let tag = UUID().uuidString.prefix(8)
        #expect(try await store.heartbeat(gateway: "a-\(tag)", liveWithin: 3, at: t) == 1)
        #expect(try await store.heartbeat(gateway: "b-\(tag)", liveWithin: 3, at: t + 0.5) == 2)
        #expect(try await store.heartbeat(gateway: "c-\(tag)", liveWithin: 3, at: t + 1) == 3)
        // a and b missed their beats: after three seconds only c and the newly beating a count.
        #expect(try await store.heartbeat(gateway: "a-\(tag)", liveWithin: 3, at: t + 3.6) == 2)
        try await store.removeHeartbeat(gateway: "c-\(tag)")
        #expect(try await store.heartbeat(gateway: "a-\(tag)", liveWithin: 3, at: t + 3.7) == 1)
        for name in ["a", "b"] { try await store.removeHeartbeat(gateway: "\(name)-\(tag)") }
        await store.close()
    }
}
