import Foundation
import GRDB

/// The default token store: one SQLite file (WAL mode), shared safely by the gateway and
/// `loupe token` commands in other processes. Tables: `loupe_tokens`, `loupe_token_generation`,
/// `loupe_token_usage`, `loupe_token_audit`.
public final class SQLiteTokenStore: TokenStore {
    private let pool: DatabasePool
    /// The database file.
    public let path: String

    /// Opens (creating if needed) the store at `path`; the file is made readable by its owner only.
    public init(path: String) throws {
        self.path = path
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        configuration.label = "loupe.tokens"
        do {
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
            if !FileManager.default.fileExists(atPath: path) {
                _ = FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
            }
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator.migrate(pool)
        } catch {
            throw TokenStoreError(.unavailable, "cannot open the token store \(path)", cause: error)
        }
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE loupe_tokens (
                  id TEXT PRIMARY KEY, name TEXT NOT NULL, secret_sha256 TEXT NOT NULL, scopes TEXT NOT NULL,
                  calls_per_second REAL NOT NULL, call_burst REAL NOT NULL,
                  rows_per_second REAL NOT NULL, row_burst REAL NOT NULL, daily_row_quota INTEGER,
                  created_ms INTEGER NOT NULL, expires_ms INTEGER, revoked_ms INTEGER,
                  rotated_to TEXT, rotated_from TEXT, note TEXT NOT NULL DEFAULT '');
                CREATE TABLE loupe_token_generation (id INTEGER PRIMARY KEY CHECK (id = 1), generation INTEGER NOT NULL);
                INSERT INTO loupe_token_generation VALUES (1, 0);
                CREATE TABLE loupe_token_usage (
                  token_id TEXT NOT NULL, day TEXT NOT NULL, rows INTEGER NOT NULL, PRIMARY KEY (token_id, day));
                CREATE TABLE loupe_token_audit (
                  seq INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL, event TEXT NOT NULL,
                  token_id TEXT, principal TEXT, remote TEXT, detail TEXT NOT NULL, count INTEGER NOT NULL);
                """)
        }
        return migrator
    }

    public func insert(_ record: TokenRecord) async throws {
        try await run("store the token") { db in
            try db.execute(sql: """
                INSERT INTO loupe_tokens (id, name, secret_sha256, scopes, calls_per_second, call_burst,
                  rows_per_second, row_burst, daily_row_quota, created_ms, expires_ms, revoked_ms, rotated_to,
                  rotated_from, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: Self.arguments(record))
            try Self.bump(db)
        }
    }

    public func record(id: String) async throws -> TokenRecord? {
        try await read("read the token") { db in
            try Row.fetchOne(db, sql: "SELECT * FROM loupe_tokens WHERE id = ?", arguments: [id]).map(Self.record)
        }
    }

    public func records() async throws -> [TokenRecord] {
        try await read("list the tokens") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM loupe_tokens ORDER BY created_ms, id").map(Self.record)
        }
    }

    public func revoke(id: String, at date: Date) async throws -> TokenRecord {
        let found = try await run("revoke the token") { db -> TokenRecord? in
            try db.execute(
                sql: "UPDATE loupe_tokens SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL",
                arguments: [millis(date), id])
            if db.changesCount > 0 { try Self.bump(db) }
            return try Row.fetchOne(db, sql: "SELECT * FROM loupe_tokens WHERE id = ?", arguments: [id]).map(Self.record)
        }
        guard let found else { throw TokenStoreError(.notFound, "no token with id \(id); see `loupe token list`") }
        return found
    }

    public func rotate(id: String, replacement: TokenRecord, oldExpiresAt: Date) async throws -> TokenRecord {
        let found = try await run("rotate the token") { db -> TokenRecord? in
            guard try Row.fetchOne(db, sql: "SELECT id FROM loupe_tokens WHERE id = ?", arguments: [id]) != nil else {
                return nil
            }
            try db.execute(sql: """
                INSERT INTO loupe_tokens (id, name, secret_sha256, scopes, calls_per_second, call_burst,
                  rows_per_second, row_burst, daily_row_quota, created_ms, expires_ms, revoked_ms, rotated_to,
                  rotated_from, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: Self.arguments(replacement))
            try db.execute(
                sql: """
                    UPDATE loupe_tokens SET rotated_to = ?,
                      expires_ms = CASE WHEN expires_ms IS NULL OR expires_ms > ? THEN ? ELSE expires_ms END
                    WHERE id = ?
                    """,
                arguments: [replacement.id, millis(oldExpiresAt), millis(oldExpiresAt), id])
            try Self.bump(db)
            return try Row.fetchOne(db, sql: "SELECT * FROM loupe_tokens WHERE id = ?", arguments: [id]).map(Self.record)
        }
        guard let found else { throw TokenStoreError(.notFound, "no token with id \(id); see `loupe token list`") }
        return found
    }

    public func generation() async throws -> Int64 {
        try await read("read the change counter") { db in
            try Int64.fetchOne(db, sql: "SELECT generation FROM loupe_token_generation WHERE id = 1") ?? 0
        }
    }

    public func addUsage(_ rows: [String: Int64], day: String) async throws -> [String: Int64] {
        try await run("count usage") { db in
            for (id, n) in rows where n != 0 {
                try db.execute(
                    sql: """
                        INSERT INTO loupe_token_usage (token_id, day, rows) VALUES (?, ?, ?)
                        ON CONFLICT (token_id, day) DO UPDATE SET rows = rows + excluded.rows
                        """,
                    arguments: [id, day, n])
            }
            var totals: [String: Int64] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT token_id, rows FROM loupe_token_usage WHERE day = ?", arguments: [day]) {
                totals[row["token_id"]] = row["rows"]
            }
            return totals
        }
    }

    public func appendAudit(_ events: [AuditEvent]) async throws {
        guard !events.isEmpty else { return }
        try await run("write the audit log") { db in
            for e in events {
                try db.execute(
                    sql: """
                        INSERT INTO loupe_token_audit (at_ms, event, token_id, principal, remote, detail, count)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [millis(e.at), e.event, e.tokenID, e.principal, e.remote, e.detail, e.count])
            }
        }
    }

    public func auditEvents(limit: Int) async throws -> [AuditEvent] {
        try await read("read the audit log") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM loupe_token_audit ORDER BY seq DESC LIMIT ?", arguments: [limit]).map {
                AuditEvent(
                    at: date($0["at_ms"]), event: $0["event"], tokenID: $0["token_id"], principal: $0["principal"],
                    remote: $0["remote"], detail: $0["detail"], count: $0["count"])
            }
        }
    }

    public func close() async {
        try? pool.close()
    }

    // MARK: Helpers

    private func run<T: Sendable>(_ what: String, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.write(body)
        } catch let error as TokenStoreError {
            throw error
        } catch {
            throw TokenStoreError(.unavailable, "could not \(what) in \(path)", cause: error)
        }
    }

    private func read<T: Sendable>(_ what: String, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.read(body)
        } catch {
            throw TokenStoreError(.unavailable, "could not \(what) in \(path)", cause: error)
        }
    }

    private static func bump(_ db: Database) throws {
        try db.execute(sql: "UPDATE loupe_token_generation SET generation = generation + 1 WHERE id = 1")
    }

    private static func arguments(_ r: TokenRecord) -> StatementArguments {
        [
            r.id, r.name, r.secretHash, r.scopes.joined(separator: ","), r.limits.callsPerSecond, r.limits.callBurst,
            r.limits.rowsPerSecond, r.limits.rowBurst, r.limits.dailyRowQuota, millis(r.createdAt),
            r.expiresAt.map(millis), r.revokedAt.map(millis), r.rotatedTo, r.rotatedFrom, r.note,
        ]
    }

    private static func record(_ row: Row) -> TokenRecord {
        let scopes: String = row["scopes"]
        let expires: Int64? = row["expires_ms"]
        let revoked: Int64? = row["revoked_ms"]
        return TokenRecord(
            id: row["id"], name: row["name"], secretHash: row["secret_sha256"],
            scopes: scopes.split(separator: ",").map(String.init),
            limits: RateLimits(
                callsPerSecond: row["calls_per_second"], callBurst: row["call_burst"],
                rowsPerSecond: row["rows_per_second"], rowBurst: row["row_burst"], dailyRowQuota: row["daily_row_quota"]),
            createdAt: date(row["created_ms"]), expiresAt: expires.map(date), revokedAt: revoked.map(date),
            rotatedTo: row["rotated_to"], rotatedFrom: row["rotated_from"], note: row["note"])
    }
}

func millis(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
func date(_ millis: Int64) -> Date { Date(timeIntervalSince1970: Double(millis) / 1000) }
