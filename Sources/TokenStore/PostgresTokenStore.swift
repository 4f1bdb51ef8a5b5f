import Foundation
import Logging
import NIOCore
import PostgresNIO
import PostgresSupport

/// Tokens in PostgreSQL, for several gateways: they share the tokens (a revocation made
/// anywhere reaches every gateway at its next poll of the change counter), the daily quota
/// counters, the audit table and the rate limits (`RateLeaseStore`: one shared token bucket per
/// token, leased in slices, and a heartbeat per gateway). Same token tables as
/// `SQLiteTokenStore`, plus `loupe_rate_buckets` and `loupe_gateway_heartbeats`, created on
/// first use.
///
/// The location is a URL: `postgres://user:password@host:5432/database`, with
/// `?sslmode=disable|prefer|require` (default prefer) or `?host=/run/postgresql` for a Unix
/// socket directory.
public final class PostgresTokenStore: TokenStore {
    let database: PostgresPool<TokenStoreError>
    /// The database, without the password, for messages.
    public var location: String { database.location }

    /// Connects (a small pool) and creates the tables if they are missing.
    /// A single call that takes longer fails with `.unavailable` (the pool keeps retrying a
    /// server that is down; callers should not wait for it).
    public let operationTimeout: TimeAmount

    public init(
        url: String, operationTimeout: TimeAmount = .seconds(5), logger: Logger = PostgresTokenStore.defaultLogger
    ) async throws {
        database = try PostgresPool(
            url: url, logger: logger, invalid: { TokenStoreError(.invalidArgument, $0) },
            failure: { TokenStoreError(.unavailable, $0, cause: $1) })
        self.operationTimeout = operationTimeout
        do {
            try await migrate()
        } catch {
            database.cancel()
            throw error
        }
    }

    private func migrate() async throws {
        try await transaction("create the token tables") { connection, logger in
            // Several gateways may start at once: one creates the tables, the others wait.
            try await connection.query("SELECT pg_advisory_xact_lock(7418520913)", logger: logger)
            try await connection.query("""
                CREATE TABLE IF NOT EXISTS loupe_tokens (
                  id TEXT PRIMARY KEY, name TEXT NOT NULL, secret_sha256 TEXT NOT NULL, scopes TEXT NOT NULL,
                  calls_per_second DOUBLE PRECISION NOT NULL, call_burst DOUBLE PRECISION NOT NULL,
                  rows_per_second DOUBLE PRECISION NOT NULL, row_burst DOUBLE PRECISION NOT NULL,
                  daily_row_quota BIGINT, created_ms BIGINT NOT NULL, expires_ms BIGINT, revoked_ms BIGINT,
                  rotated_to TEXT, rotated_from TEXT, note TEXT NOT NULL DEFAULT '')
                """, logger: logger)
            try await connection.query("""
                CREATE TABLE IF NOT EXISTS loupe_token_generation (
                  id INTEGER PRIMARY KEY CHECK (id = 1), generation BIGINT NOT NULL)
                """, logger: logger)
            try await connection.query(
                "INSERT INTO loupe_token_generation VALUES (1, 0) ON CONFLICT (id) DO NOTHING", logger: logger)
            try await connection.query("""
                CREATE TABLE IF NOT EXISTS loupe_token_usage (
                  token_id TEXT NOT NULL, day TEXT NOT NULL, rows BIGINT NOT NULL, PRIMARY KEY (token_id, day))
                """, logger: logger)
            try await connection.query("""
                CREATE TABLE IF NOT EXISTS loupe_token_audit (
                  seq BIGSERIAL PRIMARY KEY, at_ms BIGINT NOT NULL, event TEXT NOT NULL, token_id TEXT,
                  principal TEXT, remote TEXT, detail TEXT NOT NULL, count INTEGER NOT NULL)
                """, logger: logger)
            // Shared rate limits: the level of each token's two buckets (NULL: unlimited, or not
            // seen yet: full) as of `at_s`, and the last grant (RETURNING reads it back).
            try await connection.query("""
                CREATE TABLE IF NOT EXISTS loupe_rate_buckets (
                  token_id TEXT PRIMARY KEY, calls DOUBLE PRECISION, rows DOUBLE PRECISION,
                  at_s DOUBLE PRECISION NOT NULL, granted_calls DOUBLE PRECISION NOT NULL,
                  granted_rows DOUBLE PRECISION NOT NULL)
                """, logger: logger)
            try await connection.query("""
                CREATE TABLE IF NOT EXISTS loupe_gateway_heartbeats (
                  gateway_id TEXT PRIMARY KEY, seen_s DOUBLE PRECISION NOT NULL)
                """, logger: logger)
        }
    }

    public func insert(_ record: TokenRecord) async throws {
        try await transaction("store the token") { connection, logger in
            try await connection.query(Self.insertQuery(record), logger: logger)
            try await connection.query(Self.bump, logger: logger)
        }
    }

    public func record(id: String) async throws -> TokenRecord? {
        try await run("read the token") {
            try await Self.records(self.database.client.query("SELECT \(unescaped: Self.columns) FROM loupe_tokens WHERE id = \(id)")).first
        }
    }

    public func records() async throws -> [TokenRecord] {
        try await run("list the tokens") {
            try await Self.records(self.database.client.query("SELECT \(unescaped: Self.columns) FROM loupe_tokens ORDER BY created_ms, id"))
        }
    }

    public func revoke(id: String, at date: Date) async throws -> TokenRecord {
        let found = try await transaction("revoke the token") { connection, logger -> TokenRecord? in
            let changed = try await connection.query(
                "UPDATE loupe_tokens SET revoked_ms = \(millis(date)) WHERE id = \(id) AND revoked_ms IS NULL RETURNING id",
                logger: logger
            ).collect()
            if !changed.isEmpty { try await connection.query(Self.bump, logger: logger) }
            return try await Self.records(connection.query(
                "SELECT \(unescaped: Self.columns) FROM loupe_tokens WHERE id = \(id)", logger: logger)).first
        }
        guard let found else { throw TokenStoreError(.notFound, "no token with id \(id); see `loupe token list`") }
        return found
    }

    public func rotate(id: String, replacement: TokenRecord, oldExpiresAt: Date) async throws -> TokenRecord {
        let found = try await transaction("rotate the token") { connection, logger -> TokenRecord? in
            let old = try await connection.query(
                "SELECT id FROM loupe_tokens WHERE id = \(id) FOR UPDATE", logger: logger).collect()
            guard !old.isEmpty else { return nil }
            try await connection.query(Self.insertQuery(replacement), logger: logger)
            let expiry = millis(oldExpiresAt)
            try await connection.query("""
                UPDATE loupe_tokens SET rotated_to = \(replacement.id),
                  expires_ms = CASE WHEN expires_ms IS NULL OR expires_ms > \(expiry) THEN \(expiry) ELSE expires_ms END
                WHERE id = \(id)
                """, logger: logger)
            try await connection.query(Self.bump, logger: logger)
            return try await Self.records(connection.query(
                "SELECT \(unescaped: Self.columns) FROM loupe_tokens WHERE id = \(id)", logger: logger)).first
        }
        guard let found else { throw TokenStoreError(.notFound, "no token with id \(id); see `loupe token list`") }
        return found
    }

    public func generation() async throws -> Int64 {
        try await run("read the change counter") {
            for try await value in try await self.database.client.query(
                "SELECT generation FROM loupe_token_generation WHERE id = 1"
            ).decode(Int64.self) {
                return value
            }
            return 0
        }
    }

    public func addUsage(_ rows: [String: Int64], day: String) async throws -> [String: Int64] {
        try await transaction("count usage") { connection, logger in
            for (id, n) in rows.sorted(by: { $0.key < $1.key }) where n != 0 {
                try await connection.query("""
                    INSERT INTO loupe_token_usage (token_id, day, rows) VALUES (\(id), \(day), \(n))
                    ON CONFLICT (token_id, day) DO UPDATE SET rows = loupe_token_usage.rows + excluded.rows
                    """, logger: logger)
            }
            var totals: [String: Int64] = [:]
            for try await (id, n) in try await connection.query(
                "SELECT token_id, rows FROM loupe_token_usage WHERE day = \(day)", logger: logger
            ).decode((String, Int64).self) {
                totals[id] = n
            }
            return totals
        }
    }

    public func appendAudit(_ events: [AuditEvent]) async throws {
        guard !events.isEmpty else { return }
        try await transaction("write the audit log") { connection, logger in
            for e in events {
                try await connection.query("""
                    INSERT INTO loupe_token_audit (at_ms, event, token_id, principal, remote, detail, count)
                    VALUES (\(millis(e.at)), \(e.event), \(e.tokenID), \(e.principal), \(e.remote), \(e.detail), \(Int32(clamping: e.count)))
                    """, logger: logger)
            }
        }
    }

    public func auditEvents(limit: Int) async throws -> [AuditEvent] {
        try await run("read the audit log") {
            var events: [AuditEvent] = []
            for try await (at, event, tokenID, principal, remote, detail, count) in try await self.database.client.query(
                """
                SELECT at_ms, event, token_id, principal, remote, detail, count FROM loupe_token_audit
                ORDER BY seq DESC LIMIT \(Int64(limit))
                """
            ).decode((Int64, String, String?, String?, String?, String, Int32).self) {
                events.append(AuditEvent(
                    at: date(at), event: event, tokenID: tokenID, principal: principal, remote: remote, detail: detail,
                    count: Int(count)))
            }
            return events
        }
    }

    public func close() async {
        await database.close()
    }

    // MARK: Helpers

    private static let columns = """
        id, name, secret_sha256, scopes, calls_per_second, call_burst, rows_per_second, row_burst, daily_row_quota,
        created_ms, expires_ms, revoked_ms, rotated_to, rotated_from, note
        """

    private static let bump: PostgresQuery = "UPDATE loupe_token_generation SET generation = generation + 1 WHERE id = 1"

    private static func insertQuery(_ r: TokenRecord) -> PostgresQuery {
        let scopes = r.scopes.joined(separator: ",")
        return """
            INSERT INTO loupe_tokens (\(unescaped: columns)) VALUES (\(r.id), \(r.name), \(r.secretHash), \(scopes),
              \(r.limits.callsPerSecond), \(r.limits.callBurst), \(r.limits.rowsPerSecond), \(r.limits.rowBurst),
              \(r.limits.dailyRowQuota), \(millis(r.createdAt)), \(r.expiresAt.map(millis)), \(r.revokedAt.map(millis)),
              \(r.rotatedTo), \(r.rotatedFrom), \(r.note))
            """
    }

    private static func records(_ rows: PostgresRowSequence) async throws -> [TokenRecord] {
        var out: [TokenRecord] = []
        for try await row in rows {
            let (id, name, hash, scopes, cps, cb, rps, rb, quota, created, expires, revoked, rotatedTo, rotatedFrom, note) =
                try row.decode(
                    (String, String, String, String, Double, Double, Double, Double, Int64?, Int64, Int64?, Int64?, String?,
                     String?, String).self)
            out.append(TokenRecord(
                id: id, name: name, secretHash: hash, scopes: scopes.split(separator: ",").map(String.init),
                limits: RateLimits(callsPerSecond: cps, callBurst: cb, rowsPerSecond: rps, rowBurst: rb, dailyRowQuota: quota),
                createdAt: date(created), expiresAt: expires.map(date), revokedAt: revoked.map(date),
                rotatedTo: rotatedTo, rotatedFrom: rotatedFrom, note: note))
        }
        return out
    }

    /// Connection failures are retried by the pool every few seconds: log them at warning, not
    /// info, so a down database does not flood the log.
    public static var defaultLogger: Logger {
        var logger = Logger(label: "loupe.tokens.postgres")
        logger.logLevel = .warning
        return logger
    }

    func run<T: Sendable>(_ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await database.run(what, within: operationTimeout, body)
    }

    private func transaction<T: Sendable>(
        _ what: String, _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T
    ) async throws -> T {
        try await database.transaction(what, within: operationTimeout, body)
    }
}
