import Foundation

/// Where guestbook rows live: SQLite (one server) or PostgreSQL (several), the same table,
/// indexes and queries on both.
///
/// Implementations must make `insert` idempotent on `GuestbookRow.id` (a replay after a
/// crash or a timeout may send rows that are already there) and all-or-nothing per call.
public protocol Guestbook: Sendable {
    /// Inserts rows in one transaction; rows whose id exists already are skipped.
    func insert(_ rows: [GuestbookRow]) async throws
    /// Rows matching `query`, newest first.
    func rows(_ query: GuestbookQuery) async throws -> [GuestbookRow]
    /// Counts, error rate, latency percentiles and rows scored over the rows matching `query`
    /// (its limit is ignored).
    func stats(_ query: GuestbookQuery) async throws -> GuestbookStats
    /// The diamonds of the newest successful Predict calls at or after `since`, newest first.
    func recentPredictInputs(since: Date, limit: Int) async throws -> [LoggedDiamond]
    /// Deletes rows older than `date`; returns how many.
    func deleteOlder(than date: Date) async throws -> Int
    /// Every row's count (tests and `loupe logs stats`).
    func count() async throws -> Int
    /// Where it is, without secrets (for messages).
    var location: String { get }
    func close() async
}

/// A filter over the guestbook.
public struct GuestbookQuery: Sendable, Hashable {
    /// Rows at or after this time.
    public var since: Date?
    /// Rows before this time.
    public var until: Date?
    public var principal: String?
    public var method: String?
    /// A status name (`OK`, `INVALID_ARGUMENT`, …) or `error` for every failed call.
    public var status: String?
    public var limit: Int

    public init(since: Date? = nil, until: Date? = nil, principal: String? = nil, method: String? = nil,
                status: String? = nil, limit: Int = 100) {
        self.since = since
        self.until = until
        self.principal = principal
        self.method = method
        self.status = status
        self.limit = limit
    }

    /// The `WHERE` clause with `?`-style placeholders numbered by `placeholder` (SQLite `?`,
    /// PostgreSQL `$n`), and its values in order: one query text for both engines.
    func whereClause(placeholder: (Int) -> String) -> (sql: String, values: [QueryValue]) {
        var terms: [String] = []
        var values: [QueryValue] = []
        func add(_ term: String, _ value: QueryValue) {
            values.append(value)
            terms.append(term.replacingOccurrences(of: "?", with: placeholder(values.count)))
        }
        if let since { add("at_ms >= ?", .int(millis(since))) }
        if let until { add("at_ms < ?", .int(millis(until))) }
        if let principal { add("principal = ?", .text(principal)) }
        if let method { add("method = ?", .text(method)) }
        if let status {
            if status.lowercased() == "error" { terms.append("status <> 'OK'") } else { add("status = ?", .text(status)) }
        }
        return (terms.isEmpty ? "" : "WHERE " + terms.joined(separator: " AND "), values)
    }
}

enum QueryValue: Sendable, Hashable {
    case int(Int64)
    case text(String)
}

/// What `loupe logs stats` shows.
public struct GuestbookStats: Sendable, Hashable, Codable {
    public struct Group: Sendable, Hashable, Codable {
        public var key: String
        public var calls: Int
        public var errors: Int
        public var rows: Int
    }

    public var calls: Int
    public var errors: Int
    /// Rows of successful Predict and BatchPredict calls.
    public var rowsScored: Int
    /// Latency percentiles in microseconds (nil with no calls).
    public var p50Microseconds: Int64?
    public var p90Microseconds: Int64?
    public var p99Microseconds: Int64?
    public var maxMicroseconds: Int64?
    public var byMethod: [Group]
    public var byPrincipal: [Group]

    public var errorRate: Double { calls == 0 ? 0 : Double(errors) / Double(calls) }
}

/// Method names the guestbook records (for validating filters).
public enum LoggedMethods {
    public static let all = ["Hello", "Health", "Predict", "BatchPredict", "FindSimilar", "ListModels", "Retrain", "GetJob", "unknown"]

    /// The method with this name (any case), or a clear error.
    public static func validate(_ name: String) throws -> String {
        if let match = all.first(where: { $0.lowercased() == name.lowercased() }) { return match }
        throw RequestLogError(.invalidArgument, "unknown method \"\(name)\"; expected one of \(all.joined(separator: ", "))")
    }
}

func millis(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }

/// The guestbook's columns, in the order both stores insert them.
enum GuestbookColumns {
    static let names = [
        "id", "at_ms", "request_id", "principal", "token_id", "method", "model_name", "model_version", "rows",
        "latency_us", "status", "error", "carat", "cut", "color", "clarity", "depth", "table_pct", "x", "y", "z",
        "price", "low", "high", "level",
    ]
    static let list = names.joined(separator: ", ")

    /// The table and its indexes; `big` is the 64-bit integer type, `real` the double type.
    static func schema(table: String, big: String, real: String) -> [String] {
        [
            """
            CREATE TABLE IF NOT EXISTS \(table) (
              id TEXT PRIMARY KEY, at_ms \(big) NOT NULL, request_id \(big) NOT NULL, principal TEXT NOT NULL,
              token_id TEXT, method TEXT NOT NULL, model_name TEXT, model_version \(big), rows \(big) NOT NULL,
              latency_us \(big) NOT NULL, status TEXT NOT NULL, error TEXT,
              carat \(real), cut TEXT, color TEXT, clarity TEXT, depth \(real), table_pct \(real),
              x \(real), y \(real), z \(real), price \(real), low \(real), high \(real), level \(real))
            """,
            "CREATE INDEX IF NOT EXISTS \(table)_at ON \(table) (at_ms)",
            "CREATE INDEX IF NOT EXISTS \(table)_principal ON \(table) (principal, at_ms)",
            "CREATE INDEX IF NOT EXISTS \(table)_method ON \(table) (method, at_ms)",
        ]
    }
}
