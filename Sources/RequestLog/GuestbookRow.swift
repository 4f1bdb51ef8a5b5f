import DiamondSchema
import Foundation
import LoupeProtocol

/// One guestbook row: a call in a few columns, enough to answer quick questions (who called
/// what, how fast, what went wrong, what a Predict was asked and answered). The full payloads
/// are in the payload archive.
public struct GuestbookRow: Sendable, Hashable, Codable {
    /// Unique across servers and restarts (`<run>-<sequence>`), so replays are idempotent.
    public var id: String
    /// When the call arrived, in milliseconds since 1970.
    public var atMilliseconds: Int64
    /// The client-chosen request id of the frame.
    public var requestID: Int64
    public var principal: String
    public var tokenID: String?
    public var method: String
    public var modelName: String?
    public var modelVersion: Int?
    /// Rows priced: 1 for Predict, the batch size for BatchPredict, else 0.
    public var rows: Int
    public var latencyMicroseconds: Int64
    /// The status name, e.g. `OK`, `INVALID_ARGUMENT`.
    public var status: String
    /// The error message sent, for a failed call.
    public var error: String?
    /// For Predict: the diamond asked about.
    public var diamond: LoggedDiamond?
    /// For Predict: the price and range given.
    public var price: Double?
    public var low: Double?
    public var high: Double?
    public var level: Double?

    public init(
        id: String, atMilliseconds: Int64, requestID: Int64, principal: String, tokenID: String? = nil, method: String,
        modelName: String? = nil, modelVersion: Int? = nil, rows: Int = 0, latencyMicroseconds: Int64, status: String,
        error: String? = nil, diamond: LoggedDiamond? = nil, price: Double? = nil, low: Double? = nil,
        high: Double? = nil, level: Double? = nil
    ) {
        self.id = id
        self.atMilliseconds = atMilliseconds
        self.requestID = requestID
        self.principal = principal
        self.tokenID = tokenID
        self.method = method
        self.modelName = modelName
        self.modelVersion = modelVersion
        self.rows = rows
        self.latencyMicroseconds = latencyMicroseconds
        self.status = status
        self.error = error
        self.diamond = diamond
        self.price = price
        self.low = low
        self.high = high
        self.level = level
    }

    public var at: Date { Date(timeIntervalSince1970: Double(atMilliseconds) / 1000) }
    public var isError: Bool { status != StatusCode.ok.description }
}

/// The diamond of a Predict as asked (grades as labels; "" when missing or unknown).
public struct LoggedDiamond: Sendable, Hashable, Codable {
    public var carat: Double
    public var cut: String
    public var color: String
    public var clarity: String
    public var depth: Double
    public var table: Double
    public var x: Double
    public var y: Double
    public var z: Double

    public init(carat: Double, cut: String, color: String, clarity: String, depth: Double, table: Double, x: Double,
                y: Double, z: Double) {
        self.carat = carat
        self.cut = cut
        self.color = color
        self.clarity = clarity
        self.depth = depth
        self.table = table
        self.x = x
        self.y = y
        self.z = z
    }

    /// The feature vector (grades as their ordinal codes), or nil when a grade is unknown.
    public var features: [Double]? {
        guard let cut = Cut(label: cut), let color = Color(label: color), let clarity = Clarity(label: clarity) else {
            return nil
        }
        return [carat, Double(cut.rawValue), Double(color.rawValue), Double(clarity.rawValue), depth, table, x, y, z]
    }
}

extension GuestbookRow {
    /// The row for a call: the fields every call has, plus its summary.
    init(id: String, call: CallRecord) {
        let s = call.summary
        self.init(
            id: id, atMilliseconds: Int64((call.at.timeIntervalSince1970 * 1000).rounded()),
            requestID: Int64(call.request?.header.requestID ?? call.response.header.requestID), principal: call.principal,
            tokenID: call.tokenID, method: call.method, modelName: s.modelName, modelVersion: s.modelVersion, rows: s.rows,
            latencyMicroseconds: call.latencyNanoseconds / 1000, status: call.status.description, error: s.error,
            diamond: s.diamond, price: s.price, low: s.low, high: s.high, level: s.level)
    }
}

extension LoggedDiamond {
    init(_ d: Loupe_V1_Diamond) {
        func label<G: Grade>(_ wire: Int, _: G.Type) -> String {
            wire >= 1 ? G(rawValue: UInt8(clamping: wire - 1))?.label ?? "" : ""
        }
        self.init(
            carat: d.carat, cut: label(d.cut.rawValue, Cut.self), color: label(d.color.rawValue, Color.self),
            clarity: label(d.clarity.rawValue, Clarity.self), depth: d.depth, table: d.table, x: d.x, y: d.y, z: d.z)
    }
}
