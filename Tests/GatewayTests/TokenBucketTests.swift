import Foundation
import Testing
@testable import Gateway
@testable import TokenStore

@Suite struct TokenBucketTests {
    @Test func aBucketLetsThroughBurstPlusRateTimesTime() {
        var bucket = TokenBucket(rate: 10, burst: 5, now: 0)
        var accepted = 0
        // Offered 1000 calls a second for 60 seconds, in 1 ms steps.
        for step in 0...60_000 {
            let now = Double(step) / 1000
            bucket.refill(now: now)
            if bucket.wait(for: 1) == 0 {
                bucket.take(1)
                accepted += 1
            }
        }
        #expect(accepted == 5 + 10 * 60)
    }

    @Test func waitsSayHowLongAndOversizeNeverPasses() {
        var bucket = TokenBucket(rate: 100, burst: 200, now: 0)
        bucket.take(200)
        #expect(bucket.wait(for: 50) == 0.5)
        bucket.refill(now: 0.25)
        #expect(bucket.wait(for: 25) == 0)
        #expect(bucket.wait(for: 201) == nil)
        let unlimited = TokenBucket(rate: 0, burst: 0, now: 0)
        #expect(unlimited.wait(for: 1e12) == 0)
    }

    @Test func newLimitsKeepWhatWasSpent() {
        var bucket = TokenBucket(rate: 10, burst: 10, now: 0)
        bucket.take(8)
        bucket.update(rate: 10, burst: 5, now: 0)
        #expect(bucket.tokens == 2)
        bucket.update(rate: 0, burst: 0, now: 0)
        #expect(bucket.wait(for: 1000) == 0)
        bucket.update(rate: 1, burst: 3, now: 0)
        #expect(bucket.tokens == 3)
    }

    @Test func tokenStateChecksQuotaAndBothBuckets() {
        let record = TokenRecord(
            id: "id", name: "acme", secretHash: "", scopes: ["predict"],
            limits: RateLimits(callsPerSecond: 1, callBurst: 3, rowsPerSecond: 10, rowBurst: 10, dailyRowQuota: 12),
            createdAt: Date())
        let wall = Date(timeIntervalSince1970: 86_400 * 20_000 + 100)
        let state = TokenState(record: record, now: 0, wall: wall)
        // More rows than the burst: refused for good, no retry advice.
        guard case .refused(let big, _, false) = state.admit(rows: 11, now: 0, wall: wall) else { Issue.record("big"); return }
        #expect(big.retryAfterMilliseconds == 0 && big.message.contains("split"))
        guard case .admitted = state.admit(rows: 4, now: 0, wall: wall) else { Issue.record("first"); return }
        guard case .admitted = state.admit(rows: 4, now: 0, wall: wall) else { Issue.record("second"); return }
        // Rows bucket: 2 left, 4 wanted.
        guard case .refused(let rows, let reason, false) = state.admit(rows: 4, now: 0, wall: wall) else {
            Issue.record("rows"); return
        }
        #expect(reason == "rate_limited_rows" && rows.code == .resourceExhausted && rows.retryAfterMilliseconds == 200)
        // Calls bucket: 1 left of 3.
        guard case .admitted = state.admit(rows: 1, now: 0.5, wall: wall) else { Issue.record("third"); return }
        guard case .refused(let calls, "rate_limited_calls", false) = state.admit(rows: 1, now: 0.5, wall: wall) else {
            Issue.record("calls"); return
        }
        #expect(calls.retryAfterMilliseconds > 0 && calls.retryAfterMilliseconds <= 1000)
        // Quota: 9 of 12 used; 4 more would pass the buckets but not the quota.
        guard case .refused(let quota, "quota_exhausted", false) = state.admit(rows: 4, now: 100, wall: wall) else {
            Issue.record("quota"); return
        }
        #expect(quota.retryAfterMilliseconds == UInt32(millisecondsToNextUTCDay(from: wall)))
        // The next day it starts again.
        guard case .admitted = state.admit(rows: 4, now: 200, wall: wall.addingTimeInterval(86_400)) else {
            Issue.record("next day"); return
        }
    }

    @Test func revokedAndExpiredTokensCloseTheConnection() {
        var record = TokenRecord(
            id: "id", name: "acme", secretHash: "", scopes: ["predict"], limits: .unlimited, createdAt: Date())
        let state = TokenState(record: record)
        guard case .admitted = state.admit(rows: 1) else { Issue.record("admit"); return }
        record.expiresAt = Date().addingTimeInterval(-1)
        state.update(record)
        guard case .refused(let expired, "expired", true) = state.admit(rows: 1) else { Issue.record("expired"); return }
        #expect(expired.code == .unauthenticated)
        record.revokedAt = Date()
        state.update(record)
        guard case .refused(_, "revoked", true) = state.admit(rows: 1) else { Issue.record("revoked"); return }
    }
}
