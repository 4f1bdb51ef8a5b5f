import Foundation
import Logging
import NIOCore
import PostgresNIO
import PostgresSupport
import Synchronization

/// The guestbook in PostgreSQL, for several servers writing one log: the same table, indexes
/// and queries as `SQLiteGuestbook`, created on first use.
///
/// The location is a URL: `postgres://user:password@host:5432/database`, with
/// `?sslmode=disable|prefer|require` (default prefer) or `?host=/run/postgresql`.
public final class PostgresGuestbook: Guestbook {
    private let database: PostgresPool<RequestLogError>
    private let table: String
    private let shadowTable: String
    private let outcomeTable: String
    private let schema: [String]
    /// A call that takes longer fails (server side through `statement_timeout`, client side
    /// through a timer for a server that does not answer at all).
    public let operationTimeout: TimeAmount
    public var location: String { database.location }
    private let tableReady = Atomic<Bool>(false)

    /// `waitForDatabase` false (a server's log) starts even when the database does not answer
    /// yet: the table is then created on the first call that reaches it, and until then every
    /// call fails (the log spills its rows and replays them later). True (the readers) fails
    /// at once, after up to 30 s for the table.
    public init(url: String, tablePrefix: String = "loupe_", operationTimeout: TimeAmount = .seconds(2),
                waitForDatabase: Bool = true, logger: Logger = PostgresGuestbook.defaultLogger) async throws {
        database = try PostgresPool(
            url: url, logger: logger, invalid: { RequestLogError(.invalidArgument, $0) },
            failure: { RequestLogError(.unavailable, $0, cause: $1) })
        table = try GuestbookTables.name(prefix: tablePrefix)
        shadowTable = try GuestbookTables.shadow(prefix: tablePrefix)
        outcomeTable = try GuestbookTables.outcomes(prefix: tablePrefix)
        schema = try GuestbookTables.schema(prefix: tablePrefix, big: "BIGINT", real: "DOUBLE PRECISION")
        self.operationTimeout = operationTimeout
        do {
            try await createTable(timeout: waitForDatabase ? max(operationTimeout, .seconds(30)) : operationTimeout)
        } catch {
            guard !waitForDatabase else {
                database.cancel()
                throw error
            }
            logger.warning("the request log database does not answer yet; calls spill until it does",
                           metadata: ["database": "\(location)", "error": "\(error)"])
        }
    }

    /// Creates the table and its indexes if missing (every server may: one creates them, the
    /// others wait on an advisory lock).
    private func createTable(timeout: TimeAmount) async throws {
        let schema = schema
        try await transaction("create the request log table", timeout: timeout, ensuringTable: false) { connection, logger in
            try await connection.query("SELECT pg_advisory_xact_lock(7418520914)", logger: logger)
            for statement in schema {
                try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
            }
        }
        tableReady.store(true, ordering: .releasing)
    }

    /// Until the table is known to exist (a start without the database), every call first tries to create it.
    private func ensureTable() async throws {
        if !tableReady.load(ordering: .acquiring) { try await createTable(timeout: operationTimeout) }
    }

    public func insert(_ rows: [GuestbookRow]) async throws {
        try await insert(rows, into: table)
    }

    public func insertShadow(_ rows: [GuestbookRow]) async throws {
        try await insert(rows, into: shadowTable)
    }

    public func shadowRows(_ query: GuestbookQuery) async throws -> [GuestbookRow] {
        try await rows(query, from: shadowTable)
    }

    public func insertOutcomes(_ scores: [OutcomeScore]) async throws {
        guard !scores.isEmpty else { return }
        let table = outcomeTable
        try await transaction("record \(scores.count) outcome scores") { connection, logger in
            for chunkStart in stride(from: 0, to: scores.count, by: 1000) {
                var binds = PostgresBindings()
                var tuples: [String] = []
                for s in scores[chunkStart..<min(scores.count, chunkStart + 1000)] {
                    let first = binds.count
                    binds.append(s.outcomeID)
                    binds.append(s.modelName)
                    binds.append(Int64(s.modelVersion))
                    binds.append(Int64(s.served ? 1 : 0))
                    binds.append(s.matchedBy)
                    binds.append(s.atMilliseconds)
                    binds.append(s.soldAtMilliseconds)
                    binds.append(s.principal)
                    binds.append(s.requestID)
                    binds.append(s.soldPrice)
                    binds.append(s.price)
                    binds.append(s.low)
                    binds.append(s.high)
                    tuples.append("(" + (first + 1...binds.count).map { "$\($0)" }.joined(separator: ", ") + ")")
                }
                let sql = "INSERT INTO \(table) (\(OutcomeColumns.list)) VALUES \(tuples.joined(separator: ", ")) "
                    + "ON CONFLICT (outcome_id, model_version) DO NOTHING"
                try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
            }
        }
    }

    public func outcomeScores(model: String, since: Date?) async throws -> [OutcomeScore] {
        let sql = "SELECT \(OutcomeColumns.list) FROM \(outcomeTable) WHERE model_name = $1 AND at_ms >= $2 ORDER BY at_ms, outcome_id"
        return try await run("read outcomes") {
            var scores: [OutcomeScore] = []
            let rows = try await self.database.client.query(
                Self.query(sql, [.text(model), .int(since.map(millis) ?? Int64.min)]), logger: self.database.logger)
            for try await row in rows {
                let r = row.makeRandomAccess()
                scores.append(OutcomeScore(
                    outcomeID: try r[0].decode(String.self), modelName: try r[1].decode(String.self),
                    modelVersion: Int(try r[2].decode(Int64.self)), served: try r[3].decode(Int64.self) != 0,
                    matchedBy: try r[4].decode(String.self), atMilliseconds: try r[5].decode(Int64.self),
                    soldAtMilliseconds: try r[6].decode(Int64?.self), principal: try r[7].decode(String?.self),
                    requestID: try r[8].decode(Int64?.self), soldPrice: try r[9].decode(Double.self),
                    price: try r[10].decode(Double.self), low: try r[11].decode(Double?.self),
                    high: try r[12].decode(Double?.self)))
            }
            return scores
        }
    }

    private func insert(_ rows: [GuestbookRow], into table: String) async throws {
        guard !rows.isEmpty else { return }
        try await transaction("record \(rows.count) calls") { connection, logger in
            // PostgreSQL allows 65535 parameters per statement.
            let chunk = 1000
            for start in stride(from: 0, to: rows.count, by: chunk) {
                var binds = PostgresBindings(capacity: min(chunk, rows.count - start) * GuestbookColumns.names.count)
                var tuples: [String] = []
                for row in rows[start..<min(rows.count, start + chunk)] {
                    let first = binds.count
                    try Self.bind(row, into: &binds)
                    tuples.append("(" + (first + 1...binds.count).map { "$\($0)" }.joined(separator: ", ") + ")")
                }
                let sql = "INSERT INTO \(table) (\(GuestbookColumns.list)) VALUES \(tuples.joined(separator: ", ")) ON CONFLICT (id) DO NOTHING"
                try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
            }
        }
    }

    public func rows(_ query: GuestbookQuery) async throws -> [GuestbookRow] {
        try await rows(query, from: table)
    }

    private func rows(_ query: GuestbookQuery, from table: String) async throws -> [GuestbookRow] {
        let (clause, values) = query.whereClause { "$\($0)" }
        let sql = "SELECT \(GuestbookColumns.list) FROM \(table) \(clause) ORDER BY at_ms DESC, id DESC LIMIT \(max(0, query.limit))"
        return try await run("query the request log") {
            var out: [GuestbookRow] = []
            for try await row in try await self.database.client.query(Self.query(sql, values), logger: self.database.logger) {
                out.append(try Self.row(row))
            }
            return out
        }
    }

    public func stats(_ query: GuestbookQuery) async throws -> GuestbookStats {
        let (clause, values) = query.whereClause { "$\($0)" }
        let table = table
        return try await run("summarise the request log") {
            let client = self.database.client, logger = self.database.logger
            func groups(_ column: String) async throws -> [GuestbookStats.Group] {
                var out: [GuestbookStats.Group] = []
                for try await (key, calls, errors, rows) in try await client.query(
                    Self.query(GuestbookSQL.groups(table: table, column: column, clause: clause), values), logger: logger
                ).decode((String, Int64, Int64, Int64).self) {
                    out.append(.init(key: key, calls: Int(calls), errors: Int(errors), rows: Int(rows)))
                }
                return out
            }
            var calls = 0, errors = 0, rowsScored = 0
            for try await (c, e, r) in try await client.query(
                Self.query(GuestbookSQL.totals(table: table, clause: clause), values), logger: logger
            ).decode((Int64, Int64, Int64).self) {
                (calls, errors, rowsScored) = (Int(c), Int(e), Int(r))
            }
            func percentile(_ p: Double) async throws -> Int64? {
                guard calls > 0 else { return nil }
                let sql = GuestbookSQL.percentile(table: table, clause: clause, offset: GuestbookSQL.rank(p, of: calls))
                for try await value in try await client.query(Self.query(sql, values), logger: logger).decode(Int64.self) {
                    return value
                }
                return nil
            }
            return GuestbookStats(
                calls: calls, errors: errors, rowsScored: rowsScored, p50Microseconds: try await percentile(0.5),
                p90Microseconds: try await percentile(0.9), p99Microseconds: try await percentile(0.99),
                maxMicroseconds: try await percentile(1), byMethod: try await groups("method"),
                byPrincipal: try await groups("principal"))
        }
    }

    public func recentPredictInputs(since: Date, limit: Int) async throws -> [LoggedDiamond] {
        let sql = GuestbookSQL.recentInputs(table: table, since: "$1", limit: limit)
        return try await run("read recent inputs") {
            var out: [LoggedDiamond] = []
            for try await (carat, cut, color, clarity, depth, table, x, y, z) in try await self.database.client.query(
                Self.query(sql, [.int(millis(since))]), logger: self.database.logger
            ).decode((Double, String, String, String, Double, Double, Double, Double, Double).self) {
                out.append(LoggedDiamond(carat: carat, cut: cut, color: color, clarity: clarity, depth: depth,
                                         table: table, x: x, y: y, z: z))
            }
            return out
        }
    }

    public func deleteOlder(than date: Date) async throws -> Int {
        let table = table
        return try await transaction("remove old calls") { connection, logger in
            var removed = 0
            for try await _ in try await connection.query(
                PostgresQuery(unsafeSQL: "DELETE FROM \(table) WHERE at_ms < $1 RETURNING 1", binds: Self.binds([.int(millis(date))])),
                logger: logger)
            {
                removed += 1
            }
            return removed
        }
    }

    public func count() async throws -> Int {
        try await run("count the calls") {
            for try await n in try await self.database.client.query(
                PostgresQuery(unsafeSQL: "SELECT COUNT(*) FROM \(self.table)"), logger: self.database.logger
            ).decode(Int64.self) {
                return Int(n)
            }
            return 0
        }
    }

    public func close() async {
        await database.close()
    }

    /// Connection failures are retried by the pool every few seconds: warning level only.
    public static var defaultLogger: Logger {
        var logger = Logger(label: "loupe.requestlog.postgres")
        logger.logLevel = .warning
        return logger
    }

    // MARK: Helpers

    private static func query(_ sql: String, _ values: [QueryValue]) -> PostgresQuery {
        PostgresQuery(unsafeSQL: sql, binds: binds(values))
    }

    private static func binds(_ values: [QueryValue]) -> PostgresBindings {
        var binds = PostgresBindings()
        for value in values {
            switch value {
            case .int(let i): binds.append(i)
            case .text(let s): binds.append(s)
            case .real(let d): binds.append(d)
            }
        }
        return binds
    }

    private static func bind(_ r: GuestbookRow, into b: inout PostgresBindings) throws {
        let d = r.diamond
        b.append(r.id)
        b.append(r.atMilliseconds)
        b.append(r.requestID)
        b.append(r.principal)
        b.append(r.tokenID)
        b.append(r.method)
        b.append(r.modelName)
        b.append(r.modelVersion.map(Int64.init))
        b.append(Int64(r.rows))
        b.append(r.latencyMicroseconds)
        b.append(r.status)
        b.append(r.error)
        b.append(d?.carat)
        b.append(d?.cut)
        b.append(d?.color)
        b.append(d?.clarity)
        b.append(d?.depth)
        b.append(d?.table)
        b.append(d?.x)
        b.append(d?.y)
        b.append(d?.z)
        b.append(r.price)
        b.append(r.low)
        b.append(r.high)
        b.append(r.level)
    }

    private static func row(_ row: PostgresRow) throws -> GuestbookRow {
        let r = row.makeRandomAccess()
        var diamond: LoggedDiamond?
        if let carat = try r["carat"].decode(Double?.self) {
            diamond = LoggedDiamond(
                carat: carat, cut: try r["cut"].decode(String?.self) ?? "", color: try r["color"].decode(String?.self) ?? "",
                clarity: try r["clarity"].decode(String?.self) ?? "", depth: try r["depth"].decode(Double?.self) ?? .nan,
                table: try r["table_pct"].decode(Double?.self) ?? .nan, x: try r["x"].decode(Double?.self) ?? .nan,
                y: try r["y"].decode(Double?.self) ?? .nan, z: try r["z"].decode(Double?.self) ?? .nan)
        }
        return GuestbookRow(
            id: try r["id"].decode(String.self), atMilliseconds: try r["at_ms"].decode(Int64.self),
            requestID: try r["request_id"].decode(Int64.self), principal: try r["principal"].decode(String.self),
            tokenID: try r["token_id"].decode(String?.self), method: try r["method"].decode(String.self),
            modelName: try r["model_name"].decode(String?.self),
            modelVersion: try r["model_version"].decode(Int64?.self).map(Int.init),
            rows: Int(try r["rows"].decode(Int64.self)), latencyMicroseconds: try r["latency_us"].decode(Int64.self),
            status: try r["status"].decode(String.self), error: try r["error"].decode(String?.self), diamond: diamond,
            price: try r["price"].decode(Double?.self), low: try r["low"].decode(Double?.self),
            high: try r["high"].decode(Double?.self), level: try r["level"].decode(Double?.self))
    }

    private func run<T: Sendable>(_ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await ensureTable()
        return try await database.run(what, within: operationTimeout, body)
    }

    /// A transaction with the server's `statement_timeout` set to the timeout too.
    private func transaction<T: Sendable>(
        _ what: String, timeout: TimeAmount? = nil, ensuringTable: Bool = true,
        _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T
    ) async throws -> T {
        if ensuringTable { try await ensureTable() }
        return try await database.transaction(what, within: timeout ?? operationTimeout, statementTimeout: true, body)
    }
}
