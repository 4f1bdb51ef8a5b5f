import DiamondSchema

/// How the cleaner judges rows. Immutable once made; the defaults suit the diamonds data.
public struct CleaningConfiguration: Sendable, Equatable {
    /// The plausible ranges for carat, depth, table and the dimensions, and the tolerance
    /// of the depth-consistency rule.
    public var ranges: ValidationRanges
    /// Whether a row identical to an earlier clean row (in all ten required values) is
    /// quarantined by the `duplicate` rule. When false the rule is not run.
    public var dropDuplicates: Bool
    /// How many failing rows each rule lists in the report (the quarantine always has all).
    /// Negative values count as 0.
    public var sampleLimit: Int
    /// Whether the `price` column is required. Data to be priced (not trained on) has no
    /// price: with false, a missing price column is allowed, the `price_positive` rule runs
    /// only when the column is there, and the clean table's prices are NaN without it.
    public var requirePrice: Bool

    /// A configuration; every argument has the default the project uses.
    public init(
        ranges: ValidationRanges = .standard, dropDuplicates: Bool = true, sampleLimit: Int = 5,
        requirePrice: Bool = true
    ) {
        self.ranges = ranges
        self.dropDuplicates = dropDuplicates
        self.sampleLimit = max(0, sampleLimit)
        self.requirePrice = requirePrice
    }

    /// The defaults.
    public static let standard = CleaningConfiguration()

    /// For diamonds to be priced: no price needed, duplicates kept (each row gets its answer).
    public static let pricing = CleaningConfiguration(dropDuplicates: false, requirePrice: false)
}
