import DataCleaning
import DiamondSchema
import Foundation
import RequestLog

/// A realised price: a stone a partner priced through Loupe, and what it later sold for. The
/// diamond is always given; the request id (with the partner) ties it to the exact call.
public struct Outcome: Sendable, Hashable {
    public var diamond: Diamond
    public var soldPrice: Double
    /// When it sold (nil: unknown, taken as the time it is reported).
    public var soldAt: Date?
    /// The partner that priced it (required with `requestID`).
    public var principal: String?
    /// The request id of the call that priced it, on the partner's connection.
    public var requestID: Int64?
    /// The partner's own id for the outcome (nil: a digest of the fields is used).
    public var id: String?

    public init(diamond: Diamond, soldPrice: Double, soldAt: Date? = nil, principal: String? = nil, requestID: Int64? = nil,
                id: String? = nil) {
        self.diamond = diamond
        self.soldPrice = soldPrice
        self.soldAt = soldAt
        self.principal = principal
        self.requestID = requestID
        self.id = id
    }

    /// The diamond as the request log records it.
    var logged: LoggedDiamond {
        let d = diamond
        return LoggedDiamond(carat: d.carat, cut: d.cut.label, color: d.color.label, clarity: d.clarity.label, depth: d.depth,
                             table: d.table, x: d.x, y: d.y, z: d.z)
    }
}

/// An outcome that was not taken, and why.
public struct OutcomeRejection: Sendable, Hashable, Codable {
    /// The line of the file (or the 0-based index in a call).
    public var line: Int
    public var reason: String

    public init(line: Int, reason: String) {
        self.line = line
        self.reason = reason
    }
}

/// Reads outcomes from CSV: the nine diamond columns (`carat,cut,color,clarity,depth,table,x,y,z`),
/// the sold price (`sold_price`, or `price`), and optionally `sold_at` (ISO 8601 or Unix
/// seconds), `principal`, `request_id` and `outcome_id`, in any order.
public enum OutcomeFile {
    public static func parse(_ bytes: [UInt8]) throws -> (outcomes: [Outcome], rejected: [OutcomeRejection]) {
        let records = CSVText.records(bytes)
        guard let header = records.first else { throw OutcomeError("the outcomes file is empty") }
        let names = header.fields.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        func column(_ candidates: String...) -> Int? { candidates.lazy.compactMap { names.firstIndex(of: $0) }.first }
        let required = ["carat", "cut", "color", "clarity", "depth", "table", "x", "y", "z"]
        var index: [String: Int] = [:]
        for name in required {
            guard let i = column(name) else {
                throw OutcomeError("the outcomes file has no \"\(name)\" column (it needs \(required.joined(separator: ", ")) and sold_price)")
            }
            index[name] = i
        }
        guard let priceColumn = column("sold_price", "price") else {
            throw OutcomeError("the outcomes file has no \"sold_price\" (or \"price\") column")
        }
        let soldAtColumn = column("sold_at"), principalColumn = column("principal"), requestColumn = column("request_id")
        let idColumn = column("outcome_id")
        var outcomes: [Outcome] = []
        var rejected: [OutcomeRejection] = []
        for record in records.dropFirst() {
            if let problem = record.problem {
                rejected.append(OutcomeRejection(line: record.line, reason: problem))
                continue
            }
            func field(_ i: Int?) -> String? {
                guard let i, i < record.fields.count else { return nil }
                let text = record.fields[i].trimmingCharacters(in: .whitespaces)
                return text.isEmpty ? nil : text
            }
            do {
                func number(_ name: String) throws -> Double {
                    guard let text = field(index[name]), let value = Double(text), value.isFinite else {
                        throw OutcomeError("\(name) must be a number, got \"\(field(index[name]) ?? "")\"")
                    }
                    return value
                }
                func grade<G: Grade>(_ name: String, _: G.Type) throws -> G {
                    guard let text = field(index[name]), let grade = G(label: text) else {
                        throw OutcomeError("\(name) \"\(field(index[name]) ?? "")\" is not one of \(G.levelList)")
                    }
                    return grade
                }
                let diamond = Diamond(
                    carat: try number("carat"), cut: try grade("cut", Cut.self), color: try grade("color", Color.self),
                    clarity: try grade("clarity", Clarity.self), depth: try number("depth"), table: try number("table"),
                    x: try number("x"), y: try number("y"), z: try number("z"))
                guard let priceText = field(priceColumn), let price = Double(priceText), price.isFinite, price > 0 else {
                    throw OutcomeError("sold_price must be a positive number, got \"\(field(priceColumn) ?? "")\"")
                }
                var soldAt: Date?
                if let text = field(soldAtColumn) {
                    guard let date = parseDate(text) else {
                        throw OutcomeError("sold_at \"\(text)\" is neither ISO 8601 (2026-12-07T10:00:00Z) nor Unix seconds")
                    }
                    soldAt = date
                }
                var requestID: Int64?
                if let text = field(requestColumn) {
                    guard let id = Int64(text), id >= 0, id <= Int64(UInt32.max) else {
                        throw OutcomeError("request_id must be a whole number from 0 to \(UInt32.max), got \"\(text)\"")
                    }
                    requestID = id
                }
                let principal = field(principalColumn)
                if requestID != nil, principal == nil {
                    throw OutcomeError("a request_id needs the principal (the partner) whose call it was")
                }
                outcomes.append(Outcome(
                    diamond: diamond, soldPrice: price, soldAt: soldAt, principal: principal, requestID: requestID,
                    id: field(idColumn)))
            } catch let error as OutcomeError {
                rejected.append(OutcomeRejection(line: record.line, reason: error.message))
            }
        }
        return (outcomes, rejected)
    }

    static func parseDate(_ text: String) -> Date? {
        if let seconds = Double(text), seconds.isFinite { return Date(timeIntervalSince1970: seconds) }
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }
}

/// Why outcomes could not be taken.
public struct OutcomeError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
