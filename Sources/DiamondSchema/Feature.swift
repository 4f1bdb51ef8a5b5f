/// The model's input features, in the fixed order of every feature vector and column set.
public enum Feature: Int, CaseIterable, Sendable, Hashable, CustomStringConvertible {
    case carat, cut, color, clarity, depth, table, x, y, z

    /// Number of features in a diamond's feature vector.
    public static let count = 9

    /// The column name in data files (lower case, as in the diamonds CSV).
    public var name: String {
        switch self {
        case .carat: "carat"
        case .cut: "cut"
        case .color: "color"
        case .clarity: "clarity"
        case .depth: "depth"
        case .table: "table"
        case .x: "x"
        case .y: "y"
        case .z: "z"
        }
    }

    /// Whether the feature is an ordered grade (stored as its ordinal code).
    public var isGrade: Bool { self == .cut || self == .color || self == .clarity }

    public var description: String { name }

    /// Finds a feature by column name, ignoring case.
    public init?(name: some StringProtocol) {
        let wanted = name.trimmingSpaces().lowercased()
        guard let match = Feature.allCases.first(where: { $0.name == wanted }) else { return nil }
        self = match
    }
}

/// The label column of the diamonds data.
public enum Target {
    /// Column name of the price, in US dollars.
    public static let priceColumn = "price"
}
