/// A store that holds each token's rate limits as one shared token bucket, so several gateways
/// together admit at most a token's rate (plus its burst). Gateways do not ask it per call: each
/// leases small slices of budget and spends them from memory (see docs/GATEWAY.md, "Several
/// gateways"). `PostgresTokenStore` is one; `SQLiteTokenStore` is not (one machine, one
/// gateway: its buckets stay in that gateway's memory).
///
/// Times are seconds. A nil `at` means the store's own clock, so gateways on machines whose
/// clocks differ still refill one bucket at one pace; tests pass their simulated time.
public protocol RateLeaseStore: Sendable {
    /// Takes up to `request.calls` calls and `request.rows` rows from the token's shared
    /// buckets (refilled first, at the token's rates up to its bursts; a bucket seen for the first
    /// time starts full) and returns what was granted: less than asked when a bucket ran short.
    /// A negative amount gives budget back (up to the burst). An unlimited bucket (rate 0)
    /// grants nothing and needs nothing.
    func leaseRate(_ request: RateLeaseRequest) async throws -> RateLease

    /// Records that `gateway` is alive and returns how many gateways are: those seen within
    /// `liveWithin` seconds, this one included. Rows of gateways gone for an hour are removed.
    func heartbeat(gateway: String, liveWithin: Double, at: Double?) async throws -> Int

    /// Forgets `gateway` (it is shutting down), so the others count one fewer at once.
    func removeHeartbeat(gateway: String) async throws
}

/// What a gateway asks of a token's shared buckets.
public struct RateLeaseRequest: Sendable, Hashable {
    /// The token's id.
    public var tokenID: String
    /// The token's limits as this gateway knows them (rates and bursts; the quota is not used).
    public var limits: RateLimits
    /// Calls wanted (negative: given back).
    public var calls: Double
    /// Rows wanted (negative: given back).
    public var rows: Double
    /// Now, in seconds; nil: the store's clock.
    public var at: Double?

    /// A request.
    public init(tokenID: String, limits: RateLimits, calls: Double, rows: Double, at: Double? = nil) {
        self.tokenID = tokenID
        self.limits = limits
        self.calls = calls
        self.rows = rows
        self.at = at
    }
}

/// What the shared buckets granted (negative: what they took back).
public struct RateLease: Sendable, Hashable {
    /// Calls granted.
    public var calls: Double
    /// Rows granted.
    public var rows: Double

    /// A grant.
    public init(calls: Double, rows: Double) {
        self.calls = calls
        self.rows = rows
    }
}
