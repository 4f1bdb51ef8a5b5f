import Foundation

/// Where tokens live: `SQLiteTokenStore` for one gateway (the default, a file beside the
/// artifact store) or `PostgresTokenStore` for several gateways sharing tokens, quotas and the
/// audit table.
///
/// How to implement one:
/// - Keep only `TokenRecord`s (the secret's SHA-256, never the secret).
/// - Bump a single change counter (`generation()`) in the same transaction as every change to
///   a token, so gateways can poll one cheap value and reload only when it moved. That is
///   how a revocation reaches every running gateway within a second.
/// - `addUsage` adds rows to per-token, per-UTC-day counters atomically and returns the day's
///   totals, so several gateways share one daily quota.
/// - Throw `TokenStoreError` (`.unavailable` for a database that cannot be reached: the
///   gateway then fails closed).
public protocol TokenStore: Sendable {
    /// Stores a new token.
    func insert(_ record: TokenRecord) async throws
    /// The token with this id, or nil.
    func record(id: String) async throws -> TokenRecord?
    /// Every token, revoked and expired ones included, oldest first.
    func records() async throws -> [TokenRecord]
    /// Marks the token revoked at `date` (again: no change). Throws `.notFound`.
    func revoke(id: String, at date: Date) async throws -> TokenRecord
    /// In one transaction: stores `replacement`, sets the old token's `rotatedTo` and moves its
    /// expiry to `oldExpiresAt` (never later than it was). Throws `.notFound`.
    func rotate(id: String, replacement: TokenRecord, oldExpiresAt: Date) async throws -> TokenRecord
    /// A counter that every change above increases.
    func generation() async throws -> Int64
    /// Adds `rows` per token id to the counters of `day` (`YYYY-MM-DD`, UTC) and returns the
    /// day's totals of every token that has one.
    func addUsage(_ rows: [String: Int64], day: String) async throws -> [String: Int64]
    /// Appends refused or failed attempts to the audit table.
    func appendAudit(_ events: [AuditEvent]) async throws
    /// The newest `limit` audit events, newest first.
    func auditEvents(limit: Int) async throws -> [AuditEvent]
    /// Releases connections.
    func close() async
}

extension TokenStore {
    /// Creates a token: a fresh id and secret, the record stored with the secret's hash. The
    /// returned `IssuedToken.token` is the only copy of the secret.
    public func create(_ spec: TokenSpec, now: Date = Date()) async throws -> IssuedToken {
        let scopes = try Self.checked(spec)
        // Stores keep milliseconds: round here so the returned record equals the stored one.
        let now = date(millis(now))
        let token = AccessToken.generate()
        let record = TokenRecord(
            id: token.id, name: spec.name, secretHash: token.secretHash, scopes: scopes, limits: spec.limits,
            createdAt: now, expiresAt: spec.expiresAt.map { date(millis($0)) }, note: spec.note)
        try await insert(record)
        return IssuedToken(token: token, record: record)
    }

    /// Replaces a token by a new one with the same name, scopes and limits; the old one keeps
    /// working for `grace` (so partners can switch without a gap), then expires.
    public func rotate(id: String, grace: TimeInterval, now: Date = Date()) async throws -> IssuedToken {
        let now = date(millis(now))
        guard let old = try await record(id: id) else {
            throw TokenStoreError(.notFound, "no token with id \(id); see `loupe token list`")
        }
        guard old.isValid(at: now) else {
            throw TokenStoreError(.invalidArgument, "token \(id) is \(old.state(at: now).rawValue); create a new one instead")
        }
        let token = AccessToken.generate()
        let replacement = TokenRecord(
            id: token.id, name: old.name, secretHash: token.secretHash, scopes: old.scopes, limits: old.limits,
            createdAt: now, expiresAt: old.expiresAt, rotatedFrom: old.id, note: old.note)
        var oldExpiry = now.addingTimeInterval(max(0, grace))
        if let current = old.expiresAt, current < oldExpiry { oldExpiry = current }
        _ = try await rotate(id: id, replacement: replacement, oldExpiresAt: oldExpiry)
        return IssuedToken(token: token, record: replacement)
    }

    static func checked(_ spec: TokenSpec) throws -> [String] {
        guard !spec.name.trimmingCharacters(in: .whitespaces).isEmpty, spec.name.count <= 200 else {
            throw TokenStoreError(.invalidArgument, "a token needs a name (the partner), at most 200 characters")
        }
        let known = ["predict", "models:read", "admin"]
        let unknown = spec.scopes.filter { !known.contains($0) }
        guard unknown.isEmpty, !spec.scopes.isEmpty else {
            throw TokenStoreError(
                .invalidArgument,
                "scopes must be some of \(known.joined(separator: ", "))"
                    + (unknown.isEmpty ? " (none given)" : "; unknown: \(unknown.joined(separator: ", "))"))
        }
        let l = spec.limits
        guard [l.callsPerSecond, l.callBurst, l.rowsPerSecond, l.rowBurst].allSatisfy({ $0 >= 0 && $0.isFinite }),
            (l.dailyRowQuota ?? 0) >= 0
        else { throw TokenStoreError(.invalidArgument, "rates, bursts and quotas must be >= 0") }
        return Array(Set(spec.scopes)).sorted()
    }
}

/// The UTC day of `date` as `YYYY-MM-DD`, the key of the usage counters.
public func utcDay(_ date: Date) -> String {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC")!
    let c = calendar.dateComponents([.year, .month, .day], from: date)
    return String(format: "%04d-%02d-%02d", c.year ?? 0, c.month ?? 0, c.day ?? 0)
}

/// Milliseconds from `date` to the next UTC midnight (when daily quotas start again).
public func millisecondsToNextUTCDay(from date: Date) -> Int64 {
    let seconds = date.timeIntervalSince1970
    let next = (seconds / 86_400).rounded(.down) * 86_400 + 86_400
    return Int64(((next - seconds) * 1000).rounded(.up))
}

/// Opens the store a location names: `postgres://user:password@host:port/database` (or
/// `postgresql://…`) for PostgreSQL, anything else is a SQLite file path.
public func openTokenStore(_ location: String) async throws -> any TokenStore {
    if location.hasPrefix("postgres://") || location.hasPrefix("postgresql://") {
        return try await PostgresTokenStore(url: location)
    }
    return try SQLiteTokenStore(path: location)
}
