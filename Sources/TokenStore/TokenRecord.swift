import Foundation

/// How fast a token may call: two token buckets (calls, rows) and an optional daily quota.
/// A rate of 0 means no limit of that kind.
public struct RateLimits: Sendable, Hashable, Codable {
    /// Calls refilled per second (any method but Hello and Health).
    public var callsPerSecond: Double
    /// Calls that may be made at once before the rate applies (bucket size).
    public var callBurst: Double
    /// Rows refilled per second: a BatchPredict counts its rows, every other call 1.
    public var rowsPerSecond: Double
    /// Rows that may be spent at once; also the largest single call that can ever pass.
    public var rowBurst: Double
    /// Rows per UTC day across every connection (and, through the store, every gateway);
    /// nil = no quota.
    public var dailyRowQuota: Int64?

    /// Limits; the defaults suit one partner's pricing service.
    public init(
        callsPerSecond: Double = 100, callBurst: Double = 200, rowsPerSecond: Double = 1_000_000,
        rowBurst: Double = 2_000_000, dailyRowQuota: Int64? = nil
    ) {
        self.callsPerSecond = callsPerSecond
        self.callBurst = callBurst
        self.rowsPerSecond = rowsPerSecond
        self.rowBurst = rowBurst
        self.dailyRowQuota = dailyRowQuota
    }

    /// No limits at all (the admin token made by the first `loupe serve`).
    public static let unlimited = RateLimits(
        callsPerSecond: 0, callBurst: 0, rowsPerSecond: 0, rowBurst: 0, dailyRowQuota: nil)
}

/// One token as the store keeps it: who it belongs to, what it may do, how fast — and the
/// SHA-256 of its secret, never the secret.
public struct TokenRecord: Sendable, Hashable, Codable {
    /// The public id (the second part of the token).
    public var id: String
    /// The partner, e.g. "acme"; the principal of its connections.
    public var name: String
    /// SHA-256 of the secret, lowercase hex.
    public var secretHash: String
    /// Scope names: `predict`, `models:read`, `admin`.
    public var scopes: [String]
    /// Rate limits and quota.
    public var limits: RateLimits
    /// When it was created.
    public var createdAt: Date
    /// When it stops working (nil: never). Rotation sets it to the end of the grace period.
    public var expiresAt: Date?
    /// When it was revoked (nil: not revoked).
    public var revokedAt: Date?
    /// The id of the token that replaced it by rotation.
    public var rotatedTo: String?
    /// The id of the token it replaced by rotation.
    public var rotatedFrom: String?
    /// Free text from whoever created it.
    public var note: String

    /// A record; `secretHash` must be `AccessToken.secretHash`.
    public init(
        id: String, name: String, secretHash: String, scopes: [String], limits: RateLimits, createdAt: Date,
        expiresAt: Date? = nil, revokedAt: Date? = nil, rotatedTo: String? = nil, rotatedFrom: String? = nil,
        note: String = ""
    ) {
        self.id = id
        self.name = name
        self.secretHash = secretHash
        self.scopes = scopes
        self.limits = limits
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
        self.rotatedTo = rotatedTo
        self.rotatedFrom = rotatedFrom
        self.note = note
    }

    /// Whether the token works at `now`: not revoked, not expired.
    public func isValid(at now: Date) -> Bool { state(at: now) == .active }

    /// What a list shows.
    public enum State: String, Sendable, Hashable {
        case active, expired, revoked
    }

    /// `revoked` wins over `expired`.
    public func state(at now: Date) -> State {
        if revokedAt != nil { return .revoked }
        if let expiresAt, expiresAt <= now { return .expired }
        return .active
    }
}

/// A token just made: the raw value, to show once, and what was stored.
public struct IssuedToken: Sendable {
    /// The token to hand to the partner. Print it once; never log or store it.
    public let token: AccessToken
    /// The stored record.
    public let record: TokenRecord
}

/// What to create.
public struct TokenSpec: Sendable, Hashable {
    /// The partner.
    public var name: String
    /// Scope names.
    public var scopes: [String]
    /// Limits.
    public var limits: RateLimits
    /// Expiry (nil: never).
    public var expiresAt: Date?
    /// Free text.
    public var note: String

    /// A spec.
    public init(name: String, scopes: [String], limits: RateLimits = RateLimits(), expiresAt: Date? = nil, note: String = "") {
        self.name = name
        self.scopes = scopes
        self.limits = limits
        self.expiresAt = expiresAt
        self.note = note
    }
}

/// One refused or failed attempt, as the audit table keeps it. Never holds a secret: a
/// token appears by its public id only, and only when it parsed.
public struct AuditEvent: Sendable, Hashable, Codable {
    /// When (the first occurrence, for coalesced events).
    public var at: Date
    /// What happened, e.g. `unauthenticated.unknown_token`, `permission_denied`, `rate_limited.calls`.
    public var event: String
    /// The token's public id, when the presented string parsed as a token.
    public var tokenID: String?
    /// The token's name, when the token is known.
    public var principal: String?
    /// The peer's address.
    public var remote: String?
    /// More words: the method refused, the limit hit.
    public var detail: String
    /// How many times it happened in the batch (refusals are coalesced per flush).
    public var count: Int

    /// An event.
    public init(
        at: Date, event: String, tokenID: String? = nil, principal: String? = nil, remote: String? = nil,
        detail: String = "", count: Int = 1
    ) {
        self.at = at
        self.event = event
        self.tokenID = tokenID
        self.principal = principal
        self.remote = remote
        self.detail = detail
        self.count = count
    }
}

/// The `TokenStore` module's error: a code, a message a person can act on, the cause.
public struct TokenStoreError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        let name: String
        /// No token with that id.
        public static let notFound = Code(name: "not found")
        /// The request makes no sense (an empty name, an unknown scope, a revoked token to rotate).
        public static let invalidArgument = Code(name: "invalid argument")
        /// The database could not be reached or failed.
        public static let unavailable = Code(name: "unavailable")
        public var description: String { name }
    }

    /// The kind.
    public var code: Code
    /// What was wrong and what to do.
    public var message: String
    /// The underlying error.
    public var cause: (any Error & Sendable)?

    /// An error.
    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String {
        var text = message
        if let cause { text += " (\(String(describing: cause).split(separator: "\n").joined(separator: "; ")))" }
        return text
    }
}
