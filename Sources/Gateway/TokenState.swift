import Foundation
import LoupeProtocol
import NIOCore
import Synchronization
import TokenStore

/// One token as the gateway holds it: its record (kept current by the refresher), its two
/// token buckets and its share of the daily quota. Every connection of the token shares this
/// object, so the limits hold across connections; one lock per call.
final class TokenState: Sendable {
    /// The token's public id.
    let id: String

    private struct Inner {
        var record: TokenRecord
        var scopes: Set<Scope>
        var calls: TokenBucket
        var rows: TokenBucket
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

    init(record: TokenRecord, now: Double = TokenState.monotonicSeconds(), wall: Date = Date()) {
        id = record.id
        inner = Mutex(Inner(
            record: record, scopes: Scope.parse(record.scopes),
            calls: TokenBucket(rate: record.limits.callsPerSecond, burst: record.limits.callBurst, now: now),
            rows: TokenBucket(rate: record.limits.rowsPerSecond, burst: record.limits.rowBurst, now: now),
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
        }
    }

    /// The token was deleted from the store.
    func markRemoved() { inner.withLock { $0.removed = true } }

    /// The answer to one call.
    enum Admission {
        case admitted
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
    /// daily quota and both buckets have room; takes from them when it does.
    func admit(rows: Int, now: Double = TokenState.monotonicSeconds(), wall: Date = Date()) -> Admission {
        inner.withLock { inner in
            if let (error, reason) = Self.validity(inner, wall) {
                return .refused(error, reason: reason, closes: true)
            }
            let n = Int64(rows)
            if let quota = inner.record.limits.dailyRowQuota {
                let today = Self.dayNumber(wall)
                if today != inner.day {
                    inner.day = today
                    inner.storedTotal = 0
                    inner.pending = 0
                    inner.flushing = 0
                }
                let used = inner.storedTotal + inner.flushing + inner.pending
                if used + n > quota {
                    let retry = millisecondsToNextUTCDay(from: wall)
                    return .refused(
                        ProtocolError(
                            code: .resourceExhausted,
                            message: "daily quota of \(quota) rows used up (\(used) used today, this call needs \(n)); "
                                + "it starts again at 00:00 UTC",
                            retryAfterMilliseconds: UInt32(clamping: retry)),
                        reason: "quota_exhausted", closes: false)
                }
            }
            inner.calls.refill(now: now)
            inner.rows.refill(now: now)
            guard let rowWait = inner.rows.wait(for: Double(n)) else {
                return .refused(
                    ProtocolError(
                        code: .resourceExhausted,
                        message: "a call of \(n) rows exceeds this token's row burst of \(Int(inner.rows.burst)); "
                            + "split it into smaller calls"),
                    reason: "rate_limited_rows", closes: false)
            }
            let callWait = inner.calls.wait(for: 1) ?? 0
            if callWait > 0 || rowWait > 0 {
                let byCalls = callWait >= rowWait
                let limits = inner.record.limits
                return .refused(
                    ProtocolError(
                        code: .resourceExhausted,
                        message: byCalls
                            ? "rate limit: \(format(limits.callsPerSecond)) calls/s (burst \(format(limits.callBurst))); slow down"
                            : "rate limit: \(format(limits.rowsPerSecond)) rows/s (burst \(format(limits.rowBurst))); slow down",
                        retryAfterMilliseconds: UInt32(clamping: Int64((max(callWait, rowWait) * 1000).rounded(.up)))),
                    reason: byCalls ? "rate_limited_calls" : "rate_limited_rows", closes: false)
            }
            inner.calls.take(1)
            inner.rows.take(Double(n))
            inner.pending += n
            return .admitted
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
