/// A token bucket: at most `burst` tokens, refilled continuously at `rate` per second. A call
/// costing `n` passes when `n` tokens are there and takes them. Over any interval `t`, the
/// bucket lets through at most `burst + rate × t`.
///
/// A rate of 0 means no limit. Time is passed in (seconds on a monotonic clock), so the
/// arithmetic is tested on its own.
struct TokenBucket: Sendable, Hashable {
    /// Tokens per second (0: unlimited).
    private(set) var rate: Double
    /// The most tokens the bucket holds.
    private(set) var burst: Double
    /// Tokens now (as of `last`).
    private(set) var tokens: Double
    private var last: Double

    /// A full bucket.
    init(rate: Double, burst: Double, now: Double) {
        self.rate = max(0, rate)
        self.burst = rate > 0 ? max(1, burst) : 0
        self.tokens = self.burst
        self.last = now
    }

    var isUnlimited: Bool { rate <= 0 }

    /// Adds what accrued since the last call.
    mutating func refill(now: Double) {
        guard !isUnlimited else { return }
        if now > last {
            tokens = min(burst, tokens + (now - last) * rate)
            last = now
        }
    }

    /// Seconds until `n` tokens are there (0: now); nil when `n` exceeds the burst, so no wait
    /// helps. Call `refill` first.
    func wait(for n: Double) -> Double? {
        // A hair of slack, so float rounding in the refill never turns away a call that is due.
        if isUnlimited || tokens >= n - 1e-9 { return 0 }
        if n > burst { return nil }
        return (n - tokens) / rate
    }

    /// Takes `n` tokens (after `wait(for:)` returned 0).
    mutating func take(_ n: Double) {
        guard !isUnlimited else { return }
        tokens -= n
    }

    /// New limits from the store; the tokens held are kept, up to the new burst.
    mutating func update(rate newRate: Double, burst newBurst: Double, now: Double) {
        refill(now: now)
        let wasUnlimited = isUnlimited
        rate = max(0, newRate)
        burst = rate > 0 ? max(1, newBurst) : 0
        tokens = wasUnlimited ? burst : min(tokens, burst)
        last = now
    }
}
