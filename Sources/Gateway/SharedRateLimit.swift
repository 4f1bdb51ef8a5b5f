import TokenStore

/// Units asked of (positive) or given back to (negative) a token's shared buckets.
struct LeaseAsk: Sendable, Hashable {
    var calls: Double
    var rows: Double
}

/// What the gateway knows besides one token, for `SharedRateLimit`: the time, whether its last
/// call to the store worked, and its fallback share.
struct LeaseConditions: Sendable {
    var now: Double
    var storeReachable = true
    /// The share of a token's limits to fall back to (1 / live gateways).
    var share = 1.0
    /// How often to try a lease while falling back.
    var retryInterval = 1.0
}

/// A token's rate limits on one gateway when several gateways share them through the store:
/// the calls and rows budgets leased from the token's shared buckets (`LeasedBucket`), the calls
/// waiting for a lease, and the fallback used while the store cannot be reached.
///
/// - A call that the held budget covers is admitted at once, in memory. When the budget runs
///   low a lease is asked for in the background, so a steady caller rarely waits.
/// - A call it does not cover waits for a lease (one in flight at a time; the waiting calls are
///   served in arrival order when it comes back), unless the store said a moment ago that the
///   shared bucket was empty: then it is refused at once, with the time to wait.
/// - When a lease fails (the store is down), the token falls back to local buckets of
///   `share` of its rate and burst (`share` = 1 / the live gateways last counted), and tries a
///   lease again every `retryInterval`. The gateway stops trusting its token cache after
///   `tokenStaleAfter` anyway and then refuses every call (fail closed).
///
/// Pure arithmetic: the caller passes the time and the state of the store
/// (`LeaseConditions`), runs the leases it is handed (`LeaseAsk`) and reports how they went.
/// `Ticket` is what the caller needs to resume a waiting call.
struct SharedRateLimit<Ticket> {
    private(set) var calls: LeasedBucket
    private(set) var rows: LeasedBucket
    /// Calls waiting for the lease in flight, in arrival order (never without one in flight).
    private(set) var waiting: [(rows: Double, ticket: Ticket)] = []
    /// The lease in flight, if any.
    private(set) var leasing: LeaseAsk?
    /// Set while the store cannot be reached.
    private(set) var fallback: Fallback?
    private var sliceSeconds: Double

    /// Local buckets of a share of the token's limits, while the store is unreachable.
    struct Fallback {
        var calls: TokenBucket
        var rows: TokenBucket
        var share: Double
        /// When a lease is tried again.
        var retryAt: Double
    }

    enum Decision: Equatable {
        case admitted
        /// Queued until the lease in flight comes back (`leased` or `leaseFailed` resolve it).
        case waiting
        /// Refused; `wait` seconds is when to try again (for `retry_after_ms`).
        case refused(wait: Double, byCalls: Bool)
    }

    init(limits: RateLimits, sliceSeconds: Double) {
        self.sliceSeconds = sliceSeconds
        calls = LeasedBucket(rate: limits.callsPerSecond, burst: limits.callBurst, sliceSeconds: sliceSeconds)
        rows = LeasedBucket(rate: limits.rowsPerSecond, burst: limits.rowBurst, sliceSeconds: sliceSeconds)
    }

    var isUnlimited: Bool { calls.isUnlimited && rows.isUnlimited }

    /// The limits as the shared buckets use them (bursts of at least 1, as locally).
    var limits: RateLimits {
        RateLimits(callsPerSecond: calls.rate, callBurst: calls.burst, rowsPerSecond: rows.rate, rowBurst: rows.burst)
    }

    /// A call of `n` rows arrives. Returns the decision and, when a lease should start, what to
    /// ask for (it is then in flight until `leased` or `leaseFailed`).
    mutating func admit(rows n: Double, ticket: Ticket, _ c: LeaseConditions) -> (Decision, LeaseAsk?) {
        if isUnlimited { return (.admitted, nil) }
        if fallback == nil, !c.storeReachable, leasing == nil, !covers(n) {
            // Another lease or heartbeat just failed: fall back now rather than wait for this
            // lease to time out too.
            enterFallback(c)
        }
        if fallback != nil { return admitFromFallback(n, c) }
        if waiting.isEmpty, covers(n) {
            take(n)
            return (.admitted, topUp(c))
        }
        if leasing == nil, let refusal = shortRefusal(n, c.now) { return (refusal, nil) }
        waiting.append((n, ticket))
        guard leasing == nil else { return (.waiting, nil) }
        return (.waiting, startLease(askForWaiting()))
    }

    /// The lease in flight came back with `grant`: waiting calls that now fit are admitted in
    /// order; if the shared bucket ran short, the rest are refused with the time to wait.
    /// Returns them, and the next lease to start, if any.
    mutating func leased(_ grant: RateLease, _ c: LeaseConditions) -> (resolved: [(Ticket, Decision)], next: LeaseAsk?) {
        let asked = leasing ?? LeaseAsk(calls: 0, rows: 0)
        leasing = nil
        fallback = nil
        calls.received(grant.calls, asked: asked.calls, now: c.now)
        rows.received(grant.rows, asked: asked.rows, now: c.now)
        var resolved: [(Ticket, Decision)] = []
        while let first = waiting.first, covers(first.rows) {
            take(first.rows)
            resolved.append((first.ticket, .admitted))
            waiting.removeFirst()
        }
        if let first = waiting.first {
            if let refusal = shortRefusal(first.rows, c.now) {
                for w in waiting { resolved.append((w.ticket, shortRefusal(w.rows, c.now) ?? refusal)) }
                waiting.removeAll()
            } else {
                // Calls that arrived after the lease was asked for: ask again for them.
                return (resolved, startLease(askForWaiting()))
            }
        }
        return (resolved, topUp(c))
    }

    /// The lease in flight failed (the store did not answer in time, or refused): fall back to
    /// a share of the limits locally and decide the waiting calls with it.
    mutating func leaseFailed(_ c: LeaseConditions) -> [(Ticket, Decision)] {
        leasing = nil
        if fallback == nil {
            enterFallback(c)
        } else {
            fallback?.retryAt = c.now + c.retryInterval
        }
        let queued = waiting
        waiting.removeAll()
        return queued.map { w in (w.ticket, admitFromFallback(w.rows, c).0) }
    }

    /// New limits from the store.
    mutating func update(limits: RateLimits, sliceSeconds newSliceSeconds: Double, now: Double) {
        sliceSeconds = newSliceSeconds
        calls.update(rate: limits.callsPerSecond, burst: limits.callBurst, sliceSeconds: sliceSeconds)
        rows.update(rate: limits.rowsPerSecond, burst: limits.rowBurst, sliceSeconds: sliceSeconds)
        if let f = fallback { fallback = makeFallback(share: f.share, retryAt: f.retryAt, keeping: f, now: now) }
    }

    /// Empties the held budget and returns it as a (negative) ask, to give back at shutdown; nil
    /// when there is nothing to give.
    mutating func release() -> LeaseAsk? {
        let given = LeaseAsk(calls: -calls.release(), rows: -rows.release())
        return given.calls < 0 || given.rows < 0 ? given : nil
    }

    // MARK: Helpers

    private func covers(_ n: Double) -> Bool { calls.covers(1) && rows.covers(n) }

    private mutating func take(_ n: Double) {
        calls.take(1)
        rows.take(n)
    }

    /// A refusal when a bucket that cannot cover the call was found empty a moment ago.
    private func shortRefusal(_ n: Double, _ now: Double) -> Decision? {
        let callsShort = !calls.covers(1) && calls.isShort(at: now)
        let rowsShort = !rows.covers(n) && rows.isShort(at: now)
        guard callsShort || rowsShort else { return nil }
        let callWait = calls.wait(for: 1, now: now)
        let rowWait = rows.wait(for: n, now: now)
        return .refused(wait: max(callWait, rowWait), byCalls: callWait >= rowWait)
    }

    private func askForWaiting() -> LeaseAsk {
        let need = waiting.reduce(0) { $0 + $1.rows }
        return LeaseAsk(calls: calls.want(need: Double(waiting.count)), rows: rows.want(need: need))
    }

    /// A background lease when a bucket runs low (not while the shared bucket is known empty).
    private mutating func topUp(_ c: LeaseConditions) -> LeaseAsk? {
        guard leasing == nil, fallback == nil else { return nil }
        let due = (calls.isLow && !calls.isShort(at: c.now)) || (rows.isLow && !rows.isShort(at: c.now))
        guard due else { return nil }
        return startLease(LeaseAsk(calls: calls.want(need: 0), rows: rows.want(need: 0)))
    }

    private mutating func startLease(_ ask: LeaseAsk) -> LeaseAsk {
        leasing = ask
        return ask
    }

    private mutating func enterFallback(_ c: LeaseConditions) {
        fallback = makeFallback(share: c.share, retryAt: c.now + c.retryInterval, keeping: nil, now: c.now)
    }

    /// Local buckets of `share` of the limits: full when new, or keeping what `old` held.
    private func makeFallback(share: Double, retryAt: Double, keeping old: Fallback?, now: Double) -> Fallback {
        let share = min(1, max(0, share))
        if var old {
            old.calls.update(rate: calls.rate * share, burst: calls.burst * share, now: now)
            old.rows.update(rate: rows.rate * share, burst: rows.burst * share, now: now)
            old.share = share
            old.retryAt = retryAt
            return old
        }
        return Fallback(
            calls: TokenBucket(rate: calls.rate * share, burst: calls.burst * share, now: now),
            rows: TokenBucket(rate: rows.rate * share, burst: rows.burst * share, now: now),
            share: share, retryAt: retryAt)
    }

    /// Admits from the fallback buckets; tries a lease again when one is due.
    private mutating func admitFromFallback(_ n: Double, _ c: LeaseConditions) -> (Decision, LeaseAsk?) {
        guard var f = fallback else { return (.refused(wait: c.retryInterval, byCalls: true), nil) }
        if abs(f.share - c.share) > 1e-9 {
            f = makeFallback(share: c.share, retryAt: f.retryAt, keeping: f, now: c.now)
        }
        f.calls.refill(now: c.now)
        f.rows.refill(now: c.now)
        var ask: LeaseAsk?
        if leasing == nil, c.now >= f.retryAt {
            f.retryAt = c.now + c.retryInterval
            ask = LeaseAsk(calls: calls.want(need: 0), rows: rows.want(need: 0))
            leasing = ask
        }
        let callWait = f.calls.wait(for: 1) ?? c.retryInterval
        // A call larger than the share of the row burst waits for the store to come back.
        let rowWait = f.rows.wait(for: n) ?? c.retryInterval
        let decision: Decision
        if callWait > 0 || rowWait > 0 {
            decision = .refused(wait: max(callWait, rowWait), byCalls: callWait >= rowWait)
        } else {
            f.calls.take(1)
            f.rows.take(n)
            decision = .admitted
        }
        fallback = f
        return (decision, ask)
    }
}
