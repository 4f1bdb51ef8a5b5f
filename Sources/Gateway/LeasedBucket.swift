/// One of a token's two buckets (calls or rows) as a gateway holds it when rate limits are
/// shared: the budget leased from the token's shared bucket in the store and not spent yet.
///
/// A lease tops the held budget up to one `slice` (plus whatever calls are waiting need), so a
/// gateway never holds more than a slice beyond the calls it admits at once. That is the whole
/// error of the scheme: N gateways together admit at most `burst + rate × t + N × slice` over
/// any interval `t`, however the traffic moves between them.
///
/// Times are seconds on the gateway's clock, passed in, so the arithmetic is tested on its own.
struct LeasedBucket: Sendable, Hashable {
    /// Units per second (0: unlimited, nothing is leased).
    private(set) var rate: Double
    /// The shared bucket's size (at least 1 when limited, as `TokenBucket`'s).
    private(set) var burst: Double
    /// The budget a lease tops up to: `sliceSeconds` of the rate, at most half the burst (so
    /// one idle gateway never sits on the burst), at least 1 unit.
    private(set) var slice: Double
    /// Leased and not spent yet.
    private(set) var held: Double = 0
    /// The shared bucket had less than the last lease asked for: until then another lease
    /// would find it as empty, so calls that do not fit are refused at once (no round trip).
    private(set) var shortUntil: Double = -.infinity
    private var sliceSeconds: Double

    init(rate: Double, burst: Double, sliceSeconds: Double) {
        self.rate = max(0, rate)
        self.burst = rate > 0 ? max(1, burst) : 0
        self.sliceSeconds = sliceSeconds
        slice = Self.slice(rate: self.rate, burst: self.burst, sliceSeconds: sliceSeconds)
    }

    static func slice(rate: Double, burst: Double, sliceSeconds: Double) -> Double {
        rate > 0 ? max(1, min(rate * sliceSeconds, burst / 2)) : 0
    }

    var isUnlimited: Bool { rate <= 0 }

    /// Whether `n` units can be taken now.
    func covers(_ n: Double) -> Bool {
        // A hair of slack, so float rounding never turns away a call that was paid for.
        isUnlimited || held >= n - 1e-9
    }

    mutating func take(_ n: Double) {
        guard !isUnlimited else { return }
        held = max(0, held - n)
    }

    /// Below a quarter slice: time to top up, before a call has to wait for it.
    var isLow: Bool { !isUnlimited && held < slice / 4 }

    func isShort(at now: Double) -> Bool { !isUnlimited && now < shortUntil }

    /// What to ask the store for so that `need` can be taken and a slice is left over.
    func want(need: Double) -> Double {
        isUnlimited ? 0 : max(0, need + slice - held)
    }

    /// A lease came back: `granted` of the `asked`. Less than asked means the shared bucket is
    /// empty; it will have the shortfall in `shortfall / rate`, but no more than a slice's time
    /// is waited before asking again (other gateways take from the same bucket).
    mutating func received(_ granted: Double, asked: Double, now: Double) {
        guard !isUnlimited else { return }
        held += max(0, granted)
        if granted < asked - 1e-9 {
            shortUntil = now + min(sliceSeconds, (asked - granted) / rate)
        } else {
            shortUntil = -.infinity
        }
    }

    /// Seconds until `n` units could be had, as advice for a refused call (0: now).
    func wait(for n: Double, now: Double) -> Double {
        if covers(n) { return 0 }
        return max(shortUntil - now, (n - held) / rate, 0)
    }

    /// New limits from the store: the held budget is kept up to the new slice.
    mutating func update(rate newRate: Double, burst newBurst: Double, sliceSeconds newSliceSeconds: Double) {
        rate = max(0, newRate)
        burst = rate > 0 ? max(1, newBurst) : 0
        sliceSeconds = newSliceSeconds
        slice = Self.slice(rate: rate, burst: burst, sliceSeconds: sliceSeconds)
        held = isUnlimited ? 0 : min(held, slice)
        if isUnlimited { shortUntil = -.infinity }
    }

    /// Empties the held budget and returns it (given back to the store at shutdown).
    mutating func release() -> Double {
        defer { held = 0 }
        return held
    }
}
