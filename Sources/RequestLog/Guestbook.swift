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
    /// Records shadow answers: rows of the same shape in a table of their own (they were never
    /// sent, so they count toward no statistic, drift or export of the calls).
    func insertShadow(_ rows: [GuestbookRow]) async throws
    /// Shadow answers matching `query`, newest first.
    func shadowRows(_ query: GuestbookQuery) async throws -> [GuestbookRow]
    /// Records realised prices joined to what each version said (idempotent on outcome and version).
    func insertOutcomes(_ scores: [OutcomeScore]) async throws
    /// Every outcome score of `model` whose outcome was ingested at or after `since`.
    func outcomeScores(model: String, since: Date?) async throws -> [OutcomeScore]
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
    /// The client's request id of the call.
    public var requestID: Int64?
    /// A Predict's diamond, every field equal.
    public var diamond: LoggedDiamond?
    public var limit: Int

    public init(since: Date? = nil, until: Date? = nil, principal: String? = nil, method: String? = nil,
                status: String? = nil, requestID: Int64? = nil, diamond: LoggedDiamond? = nil, limit: Int = 100) {
        self.since = since
        self.until = until
        self.principal = principal
        self.method = method
        self.status = status
        self.requestID = requestID
        self.diamond = diamond
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
        if let requestID { add("request_id = ?", .int(requestID)) }
        if let d = diamond {
            for (column, value) in [("carat", d.carat), ("depth", d.depth), ("table_pct", d.table), ("x", d.x), ("y", d.y),
                                    ("z", d.z)] {
                add("\(column) = ?", .real(value))
            }
            add("cut = ?", .text(d.cut))
            add("color = ?", .text(d.color))
            add("clarity = ?", .text(d.clarity))
        }
        if let status {
            if status.lowercased() == "error" { terms.append("status <> 'OK'") } else { add("status = ?", .text(status)) }
        }
        return (terms.isEmpty ? "" : "WHERE " + terms.joined(separator: " AND "), values)
    }
}

enum QueryValue: Sendable, Hashable {
    case int(Int64)
    case text(String)
    case real(Double)
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
    public static let all = ["Hello", "Health", "Predict", "BatchPredict", "FindSimilar", "ListModels", "Retrain", "GetJob", "ReportOutcomes", "unknown"]

    /// The method with this name (any case), or a clear error.
    public static func validate(_ name: String) throws -> String {
        if let match = all.first(where: { $0.lowercased() == name.lowercased() }) { return match }
        throw RequestLogError(.invalidArgument, "unknown method \"\(name)\"; expected one of \(all.joined(separator: ", "))")
    }
}

func millis(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }

/// A realised price (an outcome: a sale) and what one model version said of that diamond.
/// One outcome gives a score for the version that answered the partner (`served`) and for every
/// other version live when it was ingested (production, canary, shadow), so versions can be
/// compared on the same stones.
public struct OutcomeScore: Sendable, Hashable, Codable {
    /// The outcome's id: the partner's, or a digest of its fields (so ingesting twice is harmless).
    public var outcomeID: String
    public var modelName: String
    public var modelVersion: Int
    /// Whether this version gave the partner its answer (false: scored for comparison).
    public var served: Bool
    /// How the outcome was joined to a logged call: `request` (principal and request id),
    /// `diamond` (the same diamond's newest logged Predict), or `none`.
    public var matchedBy: String
    /// When it was ingested (ms since 1970).
    public var atMilliseconds: Int64
    /// When the stone sold, if given (ms since 1970).
    public var soldAtMilliseconds: Int64?
    public var principal: String?
    public var requestID: Int64?
    public var soldPrice: Double
    public var price: Double
    public var low: Double?
    public var high: Double?

    public init(
        outcomeID: String, modelName: String, modelVersion: Int, served: Bool, matchedBy: String, atMilliseconds: Int64,
        soldAtMilliseconds: Int64?, principal: String?, requestID: Int64?, soldPrice: Double, price: Double, low: Double?,
        high: Double?
    ) {
        self.outcomeID = outcomeID
        self.modelName = modelName
        self.modelVersion = modelVersion
        self.served = served
        self.matchedBy = matchedBy
        self.atMilliseconds = atMilliseconds
        self.soldAtMilliseconds = soldAtMilliseconds
        self.principal = principal
        self.requestID = requestID
        self.soldPrice = soldPrice
        self.price = price
        self.low = low
        self.high = high
    }
}

/// The outcome table's columns, in insert order.
enum OutcomeColumns {
    static let names = [
        "outcome_id", "model_name", "model_version", "served", "matched_by", "at_ms", "sold_at_ms", "principal",
        "request_id", "sold_price", "price", "low", "high",
    ]
    static let list = names.joined(separator: ", ")

    static func schema(table: String, big: String, real: String) -> [String] {
        [
            """
            CREATE TABLE IF NOT EXISTS \(table) (
              outcome_id TEXT NOT NULL, model_name TEXT NOT NULL, model_version \(big) NOT NULL, served \(big) NOT NULL,
              matched_by TEXT NOT NULL, at_ms \(big) NOT NULL, sold_at_ms \(big), principal TEXT, request_id \(big),
              sold_price \(real) NOT NULL, price \(real) NOT NULL, low \(real), high \(real),
              PRIMARY KEY (outcome_id, model_version))
            """,
            "CREATE INDEX IF NOT EXISTS \(table)_model ON \(table) (model_name, model_version, at_ms)",
        ]
    }
}

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
