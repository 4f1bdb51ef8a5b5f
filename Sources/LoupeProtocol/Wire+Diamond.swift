import DiamondSchema

// Diamonds between the wire (`loupe.v1` enums: 0 = not given, then worst…best from 1) and
// the schema (ordinal codes from 0). A grade that is missing or unknown maps to NaN in
// feature columns, which validation reports for that row.

extension Loupe_V1_Diamond {
    /// The wire form of a diamond.
    public init(_ d: Diamond) {
        self.init()
        carat = d.carat
        cut = Loupe_V1_Cut(rawValue: Int(d.cut.rawValue) + 1) ?? .unspecified
        color = Loupe_V1_Color(rawValue: Int(d.color.rawValue) + 1) ?? .unspecified
        clarity = Loupe_V1_Clarity(rawValue: Int(d.clarity.rawValue) + 1) ?? .unspecified
        depth = d.depth
        table = d.table
        x = d.x
        y = d.y
        z = d.z
    }

    /// The schema's diamond, or the name of the first grade that is missing or unknown.
    public func diamond() -> Result<Diamond, GradeError> {
        guard let cut = Cut(wire: cut.rawValue) else { return .failure(GradeError(field: "cut", levels: Cut.levelList)) }
        guard let color = Color(wire: color.rawValue) else {
            return .failure(GradeError(field: "color", levels: Color.levelList))
        }
        guard let clarity = Clarity(wire: clarity.rawValue) else {
            return .failure(GradeError(field: "clarity", levels: Clarity.levelList))
        }
        return .success(Diamond(
            carat: carat, cut: cut, color: color, clarity: clarity, depth: depth, table: table, x: x, y: y, z: z))
    }
}

/// A grade that is missing (0) or not a known level.
public struct GradeError: Error, Sendable, Equatable {
    public var field: String
    public var levels: String
    public var message: String { "\(field) is missing or unknown (expected one of \(levels))" }
}

extension Loupe_V1_DiamondColumns {
    /// Columns holding `diamonds`, in order.
    public init(_ diamonds: [Diamond]) {
        self.init()
        carat = diamonds.map(\.carat)
        cut = diamonds.map { Loupe_V1_Cut(rawValue: Int($0.cut.rawValue) + 1) ?? .unspecified }
        color = diamonds.map { Loupe_V1_Color(rawValue: Int($0.color.rawValue) + 1) ?? .unspecified }
        clarity = diamonds.map { Loupe_V1_Clarity(rawValue: Int($0.clarity.rawValue) + 1) ?? .unspecified }
        depth = diamonds.map(\.depth)
        table = diamonds.map(\.table)
        x = diamonds.map(\.x)
        y = diamonds.map(\.y)
        z = diamonds.map(\.z)
    }

    /// Columns from feature columns (`columns[f][row]` in `Feature` order, grades as codes).
    public init(featureColumns columns: [[Double]]) {
        self.init()
        carat = columns[Feature.carat.rawValue]
        cut = columns[Feature.cut.rawValue].map { Loupe_V1_Cut(rawValue: Int($0) + 1) ?? .unspecified }
        color = columns[Feature.color.rawValue].map { Loupe_V1_Color(rawValue: Int($0) + 1) ?? .unspecified }
        clarity = columns[Feature.clarity.rawValue].map { Loupe_V1_Clarity(rawValue: Int($0) + 1) ?? .unspecified }
        depth = columns[Feature.depth.rawValue]
        table = columns[Feature.table.rawValue]
        x = columns[Feature.x.rawValue]
        y = columns[Feature.y.rawValue]
        z = columns[Feature.z.rawValue]
    }

    /// The number of rows, or nil when the columns differ in length.
    public var rowCount: Int? {
        let counts = [carat.count, cut.count, color.count, clarity.count, depth.count, table.count, x.count, y.count,
                      z.count]
        return counts.allSatisfy { $0 == counts[0] } ? counts[0] : nil
    }

    /// Feature columns in `Feature` order; missing or unknown grades become NaN.
    public func featureColumns() -> [[Double]] {
        func codes(_ values: [Int], levels: Int) -> [Double] {
            values.map { $0 >= 1 && $0 <= levels ? Double($0 - 1) : .nan }
        }
        return [
            carat,
            codes(cut.map(\.rawValue), levels: Cut.allCases.count),
            codes(color.map(\.rawValue), levels: Color.allCases.count),
            codes(clarity.map(\.rawValue), levels: Clarity.allCases.count),
            depth, table, x, y, z,
        ]
    }
}

extension Grade {
    /// The level for a wire value (1 = worst), or nil for 0 or an unknown value.
    init?(wire value: Int) {
        guard value >= 1, value <= 255, let level = Self(rawValue: UInt8(value - 1)) else { return nil }
        self = level
    }
}
