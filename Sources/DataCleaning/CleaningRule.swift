/// A cleaning rule, named by a stable id that reports, quarantine files and tools refer to.
///
/// The rules run in the order of `CleaningRule.all`. A row that fails `parse` is judged by
/// nothing else. A range rule only judges values that passed the matching positivity rule
/// (so a zero `x` fails `dimensions_positive`, not also `dimension_range`), and `duplicate`
/// only judges rows that passed every other rule.
public struct CleaningRule: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The stable id, e.g. `price_positive`.
    public let id: String

    private init(_ id: String) { self.id = id }

    /// The record is well-formed CSV with one field per header column, every number parses
    /// as a finite decimal and every grade is a known level.
    public static let parse = CleaningRule("parse")
    /// `price > 0`.
    public static let pricePositive = CleaningRule("price_positive")
    /// `carat > 0`.
    public static let caratPositive = CleaningRule("carat_positive")
    /// `x > 0`, `y > 0` and `z > 0`.
    public static let dimensionsPositive = CleaningRule("dimensions_positive")
    /// carat within `ValidationRanges.carat` (judged when carat > 0).
    public static let caratRange = CleaningRule("carat_range")
    /// depth within `ValidationRanges.depth`.
    public static let depthRange = CleaningRule("depth_range")
    /// table within `ValidationRanges.table`.
    public static let tableRange = CleaningRule("table_range")
    /// x, y and z within `ValidationRanges.dimension` (judged when all three are > 0).
    public static let dimensionRange = CleaningRule("dimension_range")
    /// `|depth − 100·2z/(x+y)| ≤ ValidationRanges.depthTolerance` (judged when x, y, z > 0).
    public static let depthConsistent = CleaningRule("depth_consistent")
    /// Not identical, in all ten required values, to an earlier clean row.
    public static let duplicate = CleaningRule("duplicate")

    /// Every rule, in the order they run and are reported.
    public static let all: [CleaningRule] = [
        .parse, .pricePositive, .caratPositive, .dimensionsPositive, .caratRange,
        .depthRange, .tableRange, .dimensionRange, .depthConsistent, .duplicate,
    ]

    /// The rule with this id, if there is one.
    public init?(id: String) {
        guard let rule = Self.all.first(where: { $0.id == id }) else { return nil }
        self = rule
    }

    /// One line saying what the rule requires.
    public var summary: String {
        switch id {
        case "parse": "well-formed record; numbers parse; grades are known levels"
        case "price_positive": "price > 0"
        case "carat_positive": "carat > 0"
        case "dimensions_positive": "x, y, z > 0"
        case "carat_range": "carat within the configured range"
        case "depth_range": "depth within the configured range"
        case "table_range": "table within the configured range"
        case "dimension_range": "x, y, z within the configured range"
        case "depth_consistent": "|depth - 100*2z/(x+y)| within the tolerance"
        case "duplicate": "not identical to an earlier clean row"
        default: id
        }
    }

    /// The id.
    public var description: String { id }

    /// Decodes a rule from its id (an unknown id is kept as is).
    public init(from decoder: any Decoder) throws {
        let id = try decoder.singleValueContainer().decode(String.self)
        self.init(id)
    }

    /// Encodes the rule as its id.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(id)
    }
}
