import Foundation
import LoupeProtocol
import NIOCore
import Synchronization
import TokenStore

/// One token as the gateway holds it: its record (kept current by the refresher), its rate
/// limits and its share of the daily quota. Every connection of the token shares this object,
/// so the limits hold across connections; one lock per call.
///
/// The rate limits are two token buckets in memory (one gateway: a SQLite token store), or,
/// with `leasing`, budget leased from the token's shared buckets in the store
/// (`SharedRateLimit`), so several gateways together keep to the token's rate.
final class TokenState: Sendable {
    /// The token's public id.
    let id: String
    /// Runs the leases of shared rate limits; nil: the buckets are this gateway's alone.
    private let leasing: RateLeasing?

    /// A call waiting for a lease, and how to resume it.
    struct Waiter {
        var rows: Int64
        var resume: @Sendable (Admission) -> Void
    }

    private struct Inner {
        var record: TokenRecord
        var scopes: Set<Scope>
        /// This gateway's buckets (without `leasing`).
        var calls: TokenBucket
        var rows: TokenBucket
        /// The shared limits (with `leasing`).
        var shared: SharedRateLimit<Waiter>?
        /// Days since 1970 (UTC) the quota counters are for.
        var day: Int64
        /// The day's total in the store (every gateway's flushed usage) at the last flush.
        var storedTotal: Int64 = 0
        /// Rows on their way to the store.
        var flushing: Int64 = 0
        /// Rows admitted since the last flush.
        var pending: Int64 = 0
        /// The token left the store.
        var removed = false
    }

    private let inner: Mutex<Inner>

    init(
        record: TokenRecord, leasing: RateLeasing? = nil, now: Double = TokenState.monotonicSeconds(),
        wall: Date = Date()
    ) {
        id = record.id
        self.leasing = leasing
        inner = Mutex(Inner(
            record: record, scopes: Scope.parse(record.scopes),
            calls: TokenBucket(rate: record.limits.callsPerSecond, burst: record.limits.callBurst, now: now),
            rows: TokenBucket(rate: record.limits.rowsPerSecond, burst: record.limits.rowBurst, now: now),
            shared: leasing.map { SharedRateLimit(limits: record.limits, sliceSeconds: $0.sliceSeconds) },
            day: Self.dayNumber(wall)))
    }

    /// The current record.
    var record: TokenRecord { inner.withLock { $0.record } }
    /// The current scopes.
    var scopes: Set<Scope> { inner.withLock { $0.scopes } }

    /// A new version of the record from the store (revocation, expiry, limits).
    func update(_ record: TokenRecord, now: Double = TokenState.monotonicSeconds()) {
        inner.withLock { inner in
            inner.record = record
            inner.scopes = Scope.parse(record.scopes)
            inner.calls.update(rate: record.limits.callsPerSecond, burst: record.limits.callBurst, now: now)
            inner.rows.update(rate: record.limits.rowsPerSecond, burst: record.limits.rowBurst, now: now)
            if let leasing {
                inner.shared?.update(limits: record.limits, sliceSeconds: leasing.sliceSeconds, now: now)
            }
        }
    }

    /// The token was deleted from the store.
    func markRemoved() { inner.withLock { $0.removed = true } }

    /// The answer to one call.
    enum Admission {
        case admitted
        /// Waiting for budget leased from the store (shared limits): the call's `whenLeased`
        /// gets the answer, from whichever thread the lease came back on.
        case waiting
        /// Refused: the error to send, the metric/audit reason, and whether to close the
        /// connection (the token stopped being valid).
        case refused(ProtocolError, reason: String, closes: Bool)
    }

    /// Whether the token is still valid (not revoked, expired or deleted); nil when it is,
    /// else the error.
    func validity(at wall: Date = Date()) -> (ProtocolError, String)? {
        inner.withLock { Self.validity($0, wall) }
    }

    private static func validity(_ inner: Inner, _ wall: Date) -> (ProtocolError, String)? {
        if inner.removed {
            return (ProtocolError(code: .unauthenticated, message: "the token no longer exists"), "unknown_token")
        }
        switch inner.record.state(at: wall) {
        case .active: return nil
        case .revoked: return (ProtocolError(code: .unauthenticated, message: "the token was revoked"), "revoked")
        case .expired: return (ProtocolError(code: .unauthenticated, message: "the token has expired"), "expired")
        }
    }

    /// Admits a call of `rows` rows (1 for calls without rows) if the token is valid, under its
    /// daily quota and its rate limits have room; takes from them when it does. With shared
    /// limits a call may have to wait for a lease: then it gets `.waiting`, and `whenLeased`
    /// gets the answer later.
    func admit(
        rows: Int, now: Double = TokenState.monotonicSeconds(), wall: Date = Date(),
        whenLeased: @escaping @Sendable (Admission) -> Void = { _ in }
    ) -> Admission {
        let conditions = leasing?.conditions(now: now)
        let (admission, lease) = inner.withLock { inner -> (Admission, (LeaseAsk, RateLimits)?) in
            if let (error, reason) = Self.validity(inner, wall) {
                return (.refused(error, reason: reason, closes: true), nil)
            }
            let n = Int64(rows)
            if let refusal = Self.quotaRefusal(&inner, rows: n, wall: wall) { return (refusal, nil) }
            if let conditions, inner.shared != nil {
                return Self.admitShared(&inner, rows: n, conditions, Waiter(rows: n, resume: whenLeased))
            }
            return (Self.admitLocal(&inner, rows: n, now: now), nil)
        }
        if let (ask, limits) = lease { leasing?.lease(ask, limits: limits, for: self) }
        return admission
    }

    private static func quotaRefusal(_ inner: inout Inner, rows n: Int64, wall: Date) -> Admission? {
        guard let quota = inner.record.limits.dailyRowQuota else { return nil }
        let today = Self.dayNumber(wall)
        if today != inner.day {
            inner.day = today
            inner.storedTotal = 0
            inner.pending = 0
            inner.flushing = 0
        }
        let used = inner.storedTotal + inner.flushing + inner.pending
        guard used + n > quota else { return nil }
        let retry = millisecondsToNextUTCDay(from: wall)
        return .refused(
            ProtocolError(
                code: .resourceExhausted,
                message: "daily quota of \(quota) rows used up (\(used) used today, this call needs \(n)); "
                    + "it starts again at 00:00 UTC",
                retryAfterMilliseconds: UInt32(clamping: retry)),
            reason: "quota_exhausted", closes: false)
    }

    /// The refusal of a call of `n` rows that can never pass (more rows than the burst).
    private static func oversize(_ n: Int64, rowBurst: Double) -> Admission {
        .refused(
            ProtocolError(
                code: .resourceExhausted,
                message: "a call of \(n) rows exceeds this token's row burst of \(Int(rowBurst)); split it into smaller calls"),
            reason: "rate_limited_rows", closes: false)
    }

    /// The refusal of a call that must wait `seconds` for either bucket.
    private static func rateRefusal(_ limits: RateLimits, seconds: Double, byCalls: Bool) -> Admission {
        .refused(
            ProtocolError(
                code: .resourceExhausted,
                message: byCalls
                    ? "rate limit: \(format(limits.callsPerSecond)) calls/s (burst \(format(limits.callBurst))); slow down"
                    : "rate limit: \(format(limits.rowsPerSecond)) rows/s (burst \(format(limits.rowBurst))); slow down",
                retryAfterMilliseconds: UInt32(clamping: Int64((max(0.001, seconds) * 1000).rounded(.up)))),
            reason: byCalls ? "rate_limited_calls" : "rate_limited_rows", closes: false)
    }

    /// This gateway's own buckets.
    private static func admitLocal(_ inner: inout Inner, rows n: Int64, now: Double) -> Admission {
        inner.calls.refill(now: now)
        inner.rows.refill(now: now)
        guard let rowWait = inner.rows.wait(for: Double(n)) else { return oversize(n, rowBurst: inner.rows.burst) }
        let callWait = inner.calls.wait(for: 1) ?? 0
        if callWait > 0 || rowWait > 0 {
            return rateRefusal(inner.record.limits, seconds: max(callWait, rowWait), byCalls: callWait >= rowWait)
        }
        inner.calls.take(1)
        inner.rows.take(Double(n))
        inner.pending += n
        return .admitted
    }

    /// Budget leased from the shared buckets; returns the lease to start, if any.
    private static func admitShared(
        _ inner: inout Inner, rows n: Int64, _ conditions: LeaseConditions, _ waiter: Waiter
    ) -> (Admission, (LeaseAsk, RateLimits)?) {
        let rowBurst = inner.shared!.rows.burst
        if !inner.shared!.rows.isUnlimited, Double(n) > rowBurst { return (oversize(n, rowBurst: rowBurst), nil) }
        let (decision, ask) = inner.shared!.admit(rows: Double(n), ticket: waiter, conditions)
        let lease = ask.map { ($0, inner.shared!.limits) }
        switch decision {
        case .admitted:
            inner.pending += n
            return (.admitted, lease)
        case .waiting:
            return (.waiting, lease)
        case .refused(let wait, let byCalls):
            return (rateRefusal(inner.record.limits, seconds: wait, byCalls: byCalls), lease)
        }
    }

    /// A lease this token asked for came back (or failed): the calls waiting for it are
    /// answered, and the next lease starts if one is due.
    func leaseFinished(_ result: Result<RateLease, any Error>, now: Double) {
        guard let leasing else { return }
        let conditions = leasing.conditions(now: now)
        let wall = Date()
        let (answers, next) = inner.withLock { inner -> ([(Waiter, Admission)], (LeaseAsk, RateLimits)?) in
            guard inner.shared != nil else { return ([], nil) }
            let resolved: [(Waiter, SharedRateLimit<Waiter>.Decision)]
            var next: (LeaseAsk, RateLimits)?
            switch result {
            case .success(let grant):
                let (decided, ask) = inner.shared!.leased(grant, conditions)
                resolved = decided
                next = ask.map { ($0, inner.shared!.limits) }
            case .failure:
                resolved = inner.shared!.leaseFailed(conditions)
            }
            let answers = resolved.map { waiter, decision -> (Waiter, Admission) in
                switch decision {
                case .admitted, .waiting:
                    // Revoked or expired while it waited: refused like any later call.
                    if let (error, reason) = Self.validity(inner, wall) {
                        return (waiter, .refused(error, reason: reason, closes: true))
                    }
                    inner.pending += waiter.rows
                    return (waiter, .admitted)
                case .refused(let wait, let byCalls):
                    return (waiter, Self.rateRefusal(inner.record.limits, seconds: wait, byCalls: byCalls))
                }
            }
            return (answers, next)
        }
        if let (ask, limits) = next { leasing.lease(ask, limits: limits, for: self) }
        for (waiter, admission) in answers { waiter.resume(admission) }
    }

    /// Empties the budget leased and not spent, to give back at shutdown: what to give (negative
    /// amounts) and the limits, or nil when there is nothing.
    func releaseLeases() -> (LeaseAsk, RateLimits)? {
        inner.withLock { inner in
            guard let given = inner.shared?.release() else { return nil }
            return (given, inner.shared!.limits)
        }
    }

    /// Moves the rows admitted since the last flush to "flushing" and returns them.
    func beginFlush() -> Int64 {
        inner.withLock { inner in
            inner.flushing += inner.pending
            inner.pending = 0
            return inner.flushing
        }
    }

    /// The flush was stored; `total` is the day's total in the store (nil: none yet).
    func commitFlush(total: Int64?, day: Int64) {
        inner.withLock { inner in
            guard inner.day == day else {
                inner.flushing = 0
                return
            }
            inner.flushing = 0
            if let total { inner.storedTotal = total }
        }
    }

    /// The flush failed: the rows go back to pending.
    func abortFlush() {
        inner.withLock { inner in
            inner.pending += inner.flushing
            inner.flushing = 0
        }
    }

    /// Whether the token has a daily quota (its counters are refreshed every tick).
    var hasQuota: Bool { inner.withLock { $0.record.limits.dailyRowQuota != nil } }

    static func dayNumber(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 / 86_400).rounded(.down)) }

    /// Seconds on a monotonic clock.
    static func monotonicSeconds() -> Double { Double(NIODeadline.now().uptimeNanoseconds) / 1e9 }
}

private func format(_ value: Double) -> String {
    value == value.rounded() ? String(Int64(value)) : String(value)
}
