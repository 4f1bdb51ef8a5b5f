import Foundation
import GRDB
import GRDBSQLite

/// The default guestbook: one SQLite file in WAL mode (readers such as `loupe logs query` in
/// another process never block the server's writer).
public final class SQLiteGuestbook: Guestbook {
    private let pool: DatabasePool
    /// Writes run here, at `backgroundNice`, with GRDB's synchronous API (the block then runs
    /// on the calling thread).
    private let writer: BackgroundWorker
    private let table: String
    private let shadowTable: String
    private let outcomeTable: String
    /// Whether inserts give way to serving threads (`PeriodicYield`): the writer runs as background work.
    private let givesWay: Bool
    public let location: String

    /// Opens (creating if needed) the guestbook at `path`. A write that waits for a lock held
    /// elsewhere longer than `busyTimeout` fails (the writer then retries, then spills).
    public init(path: String, tablePrefix: String = "loupe_", busyTimeout: TimeInterval = 1, backgroundNice: Int32 = 10) throws {
        location = path
        givesWay = backgroundNice > 0
        writer = BackgroundWorker(name: "loupe-sqlite", nice: backgroundNice)
        table = try GuestbookTables.name(prefix: tablePrefix)
        shadowTable = try GuestbookTables.shadow(prefix: tablePrefix)
        outcomeTable = try GuestbookTables.outcomes(prefix: tablePrefix)
        let schema = try GuestbookTables.schema(prefix: tablePrefix, big: "INTEGER", real: "REAL")
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout)
        configuration.label = "loupe.requestlog"
        do {
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
            pool = try DatabasePool(path: path, configuration: configuration)
            try pool.write { db in
                for statement in schema {
                    try db.execute(sql: statement)
                }
            }
        } catch {
            throw RequestLogError(.unavailable, "cannot open the request log database \(path)", cause: error)
        }
    }

    public func insert(_ rows: [GuestbookRow]) async throws {
        try await insert(rows, into: table)
    }

    public func insertShadow(_ rows: [GuestbookRow]) async throws {
        try await insert(rows, into: shadowTable)
    }

    private func insert(_ rows: [GuestbookRow], into table: String) async throws {
        guard !rows.isEmpty else { return }
        let sql = "INSERT OR IGNORE INTO \(table) (\(GuestbookColumns.list)) VALUES ("
            + Array(repeating: "?", count: GuestbookColumns.names.count).joined(separator: ", ") + ")"
        let givesWay = givesWay
        try await run("record \(rows.count) calls") { db in
            let statement = try db.cachedStatement(sql: sql).sqliteStatement
            defer {
                sqlite3_reset(statement)
                sqlite3_clear_bindings(statement)
            }
            var yielder = PeriodicYield(enabled: givesWay)
            for row in rows {
                yielder.checkpoint()
                sqlite3_reset(statement)
                Self.bind(row, to: statement)
                let code = sqlite3_step(statement)
                guard code == SQLITE_DONE else {
                    throw DatabaseError(
                        resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)),
                        sql: sql)
                }
            }
        }
    }

    public func rows(_ query: GuestbookQuery) async throws -> [GuestbookRow] {
        try await rows(query, from: table)
    }

    public func shadowRows(_ query: GuestbookQuery) async throws -> [GuestbookRow] {
        try await rows(query, from: shadowTable)
    }

    public func insertOutcomes(_ scores: [OutcomeScore]) async throws {
        guard !scores.isEmpty else { return }
        let sql = "INSERT OR IGNORE INTO \(outcomeTable) (\(OutcomeColumns.list)) VALUES ("
            + Array(repeating: "?", count: OutcomeColumns.names.count).joined(separator: ", ") + ")"
        try await run("record \(scores.count) outcome scores") { db in
            let statement = try db.cachedStatement(sql: sql)
            for s in scores {
                try statement.execute(arguments: [
                    s.outcomeID, s.modelName, s.modelVersion, s.served ? 1 : 0, s.matchedBy, s.atMilliseconds,
                    s.soldAtMilliseconds, s.principal, s.requestID, s.soldPrice, s.price, s.low, s.high,
                ])
            }
        }
    }

    public func outcomeScores(model: String, since: Date?) async throws -> [OutcomeScore] {
        let sql = "SELECT \(OutcomeColumns.list) FROM \(outcomeTable) WHERE model_name = ? AND at_ms >= ? ORDER BY at_ms, outcome_id"
        return try await read("read outcomes") { db in
            try Row.fetchAll(db, sql: sql, arguments: [model, since.map(millis) ?? Int64.min]).map { r in
                OutcomeScore(
                    outcomeID: r[0], modelName: r[1], modelVersion: r[2], served: (r[3] as Int64) != 0, matchedBy: r[4],
                    atMilliseconds: r[5], soldAtMilliseconds: r[6], principal: r[7], requestID: r[8], soldPrice: r[9],
                    price: r[10], low: r[11], high: r[12])
            }
        }
    }

    private func rows(_ query: GuestbookQuery, from table: String) async throws -> [GuestbookRow] {
        let (clause, values) = query.whereClause { _ in "?" }
        let sql = "SELECT \(GuestbookColumns.list) FROM \(table) \(clause) ORDER BY at_ms DESC, id DESC LIMIT \(max(0, query.limit))"
        return try await read("query the request log") { db in
            try Row.fetchAll(db, sql: sql, arguments: Self.arguments(values)).map(Self.row)
        }
    }

    public func stats(_ query: GuestbookQuery) async throws -> GuestbookStats {
        let (clause, values) = query.whereClause { _ in "?" }
        let table = table
        return try await read("summarise the request log") { db in
            let arguments = Self.arguments(values)
            func groups(_ column: String) throws -> [GuestbookStats.Group] {
                try Row.fetchAll(db, sql: GuestbookSQL.groups(table: table, column: column, clause: clause), arguments: arguments)
                    .map { GuestbookStats.Group(key: $0[0], calls: $0[1], errors: $0[2], rows: $0[3]) }
            }
            let totals = try Row.fetchOne(db, sql: GuestbookSQL.totals(table: table, clause: clause), arguments: arguments)
            let calls: Int = totals?[0] ?? 0
            func percentile(_ p: Double) throws -> Int64? {
                guard calls > 0 else { return nil }
                return try Int64.fetchOne(
                    db, sql: GuestbookSQL.percentile(table: table, clause: clause, offset: GuestbookSQL.rank(p, of: calls)),
                    arguments: arguments)
            }
            return GuestbookStats(
                calls: calls, errors: totals?[1] ?? 0, rowsScored: totals?[2] ?? 0, p50Microseconds: try percentile(0.5),
                p90Microseconds: try percentile(0.9), p99Microseconds: try percentile(0.99),
                maxMicroseconds: try percentile(1), byMethod: try groups("method"), byPrincipal: try groups("principal"))
        }
    }

    public func recentPredictInputs(since: Date, limit: Int) async throws -> [LoggedDiamond] {
        let sql = GuestbookSQL.recentInputs(table: table, since: "?", limit: limit)
        return try await read("read recent inputs") { db in
            try Row.fetchAll(db, sql: sql, arguments: [millis(since)]).map {
                LoggedDiamond(carat: $0[0], cut: $0[1], color: $0[2], clarity: $0[3], depth: $0[4], table: $0[5],
                              x: $0[6], y: $0[7], z: $0[8])
            }
        }
    }

    public func deleteOlder(than date: Date) async throws -> Int {
        let table = table
        return try await run("remove old calls") { db in
            try db.execute(sql: "DELETE FROM \(table) WHERE at_ms < ?", arguments: [millis(date)])
            return db.changesCount
        }
    }

    public func count() async throws -> Int {
        let table = table
        return try await read("count the calls") { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table)") ?? 0 }
    }

    public func close() async {
        _ = try? await writer.perform { [pool] in try pool.close() }
        writer.stop()
    }

    // MARK: Helpers

    private func run<T: Sendable>(_ what: String, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await writer.perform { [pool] in try pool.write(body) }
        } catch {
            throw RequestLogError(.unavailable, "could not \(what) in \(location)", cause: error)
        }
    }

    private func read<T: Sendable>(_ what: String, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.read(body)
        } catch {
            throw RequestLogError(.unavailable, "could not \(what) in \(location)", cause: error)
        }
    }

    private static func arguments(_ values: [QueryValue]) -> StatementArguments {
        StatementArguments(values.map { value -> (any DatabaseValueConvertible)? in
            switch value {
            case .int(let i): i
            case .text(let s): s
            case .real(let d): d
            }
        })
    }

    /// SQLite copies bound text (the Swift string's buffer only lives for the call).
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    /// Binds a row's values, in `GuestbookColumns.names` order, straight into the prepared
    /// insert. GRDB's argument arrays box every value (an existential per column): 7% of the
    /// server's profile samples at 17k recorded calls a second.
    private static func bind(_ r: GuestbookRow, to statement: OpaquePointer) {
        var index: Int32 = 0
        func text(_ value: String?) {
            index += 1
            guard var value else { return _ = sqlite3_bind_null(statement, index) }
            // The UTF-8 in place, with its length: passing the String itself makes a C string copy
            // (an allocation per text column per row).
            value.withUTF8 { utf8 in
                guard let base = utf8.baseAddress else {
                    // No address (an empty string) would bind NULL.
                    return _ = sqlite3_bind_text(statement, index, "", 0, transient)
                }
                _ = sqlite3_bind_text(
                    statement, index, UnsafeRawPointer(base).assumingMemoryBound(to: CChar.self), Int32(utf8.count), transient)
            }
        }
        func integer(_ value: Int64?) {
            index += 1
            if let value { sqlite3_bind_int64(statement, index, value) } else { sqlite3_bind_null(statement, index) }
        }
        func real(_ value: Double?) {
            index += 1
            if let value { sqlite3_bind_double(statement, index, value) } else { sqlite3_bind_null(statement, index) }
        }
        let d = r.diamond
        text(r.id); integer(r.atMilliseconds); integer(r.requestID); text(r.principal); text(r.tokenID); text(r.method)
        text(r.modelName); integer(r.modelVersion.map(Int64.init)); integer(Int64(r.rows)); integer(r.latencyMicroseconds)
        text(r.status); text(r.error)
        real(d?.carat); text(d?.cut); text(d?.color); text(d?.clarity); real(d?.depth); real(d?.table)
        real(d?.x); real(d?.y); real(d?.z)
        real(r.price); real(r.low); real(r.high); real(r.level)
        assert(Int(index) == GuestbookColumns.names.count, "bind every column")
    }

    private static func row(_ row: Row) -> GuestbookRow {
        var diamond: LoggedDiamond?
        if let carat: Double = row["carat"] {
            diamond = LoggedDiamond(
                carat: carat, cut: row["cut"] ?? "", color: row["color"] ?? "", clarity: row["clarity"] ?? "",
                depth: row["depth"] ?? .nan, table: row["table_pct"] ?? .nan, x: row["x"] ?? .nan, y: row["y"] ?? .nan,
                z: row["z"] ?? .nan)
        }
        return GuestbookRow(
            id: row["id"], atMilliseconds: row["at_ms"], requestID: row["request_id"], principal: row["principal"],
            tokenID: row["token_id"], method: row["method"], modelName: row["model_name"], modelVersion: row["model_version"],
            rows: row["rows"], latencyMicroseconds: row["latency_us"], status: row["status"], error: row["error"],
            diamond: diamond, price: row["price"], low: row["low"], high: row["high"], level: row["level"])
    }
}

/// The query texts both stores share (placeholders differ, so those come in as arguments).
enum GuestbookSQL {
    static func totals(table: String, clause: String) -> String {
        """
        SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN status <> 'OK' THEN 1 ELSE 0 END), 0) AS BIGINT),
          CAST(COALESCE(SUM(CASE WHEN status = 'OK' THEN rows ELSE 0 END), 0) AS BIGINT) FROM \(table) \(clause)
        """
    }

    static func groups(table: String, column: String, clause: String) -> String {
        """
        SELECT \(column), COUNT(*), CAST(SUM(CASE WHEN status <> 'OK' THEN 1 ELSE 0 END) AS BIGINT),
          CAST(SUM(CASE WHEN status = 'OK' THEN rows ELSE 0 END) AS BIGINT) FROM \(table) \(clause) GROUP BY \(column) ORDER BY COUNT(*) DESC, \(column)
        """
    }

    static func percentile(table: String, clause: String, offset: Int) -> String {
        "SELECT latency_us FROM \(table) \(clause) ORDER BY latency_us LIMIT 1 OFFSET \(offset)"
    }

    /// The 0-based rank of percentile `p` among `n` values (nearest rank).
    static func rank(_ p: Double, of n: Int) -> Int {
        max(0, min(n - 1, Int((p * Double(n)).rounded(.up)) - 1))
    }

    static func recentInputs(table: String, since: String, limit: Int) -> String {
        """
        SELECT carat, cut, color, clarity, depth, table_pct, x, y, z FROM \(table)
        WHERE method = 'Predict' AND status = 'OK' AND carat IS NOT NULL AND at_ms >= \(since)
        ORDER BY at_ms DESC LIMIT \(max(0, limit))
        """
    }
}

/// Table names from a prefix, checked (they are spliced into SQL).
enum GuestbookTables {
    static func name(prefix: String) throws -> String {
        guard prefix.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }),
            prefix.utf8.first.map({ $0 >= 97 && $0 <= 122 }) ?? false, prefix.count <= 40
        else {
            throw RequestLogError(
                .invalidArgument, "table prefix \"\(prefix)\" must be lower-case letters, digits and '_', starting with a letter")
        }
        return prefix + "requests"
    }

    /// Shadow answers: the calls' shape, never sent.
    static func shadow(prefix: String) throws -> String { try name(prefix: prefix) + "_shadow" }
    /// Realised prices joined to versions' answers.
    static func outcomes(prefix: String) throws -> String {
        _ = try name(prefix: prefix)
        return prefix + "outcomes"
    }

    /// Every table's schema.
    static func schema(prefix: String, big: String, real: String) throws -> [String] {
        GuestbookColumns.schema(table: try name(prefix: prefix), big: big, real: real)
            + GuestbookColumns.schema(table: try shadow(prefix: prefix), big: big, real: real)
            + OutcomeColumns.schema(table: try outcomes(prefix: prefix), big: big, real: real)
    }
}
