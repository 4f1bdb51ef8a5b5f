import DiamondSchema

/// What cleaning did: row counts, and per rule how many rows it judged and failed, with the
/// first few failing rows. `rowsIn == cleanRows + quarantinedRows` always holds.
///
/// It encodes to JSON with stable snake_case keys (see `json()`), so it can be stored beside
/// a dataset and read back.
public struct CleaningReport: Sendable, Hashable, Codable {
    /// One failing row, as listed in a rule's samples.
    public struct Sample: Sendable, Hashable, Codable {
        /// The 1-based data row number.
        public var row: Int
        /// What was wrong (several messages are joined with "; ").
        public var message: String

        /// A sample row.
        public init(row: Int, message: String) {
            self.row = row
            self.message = message
        }
    }

    /// The outcome of one rule.
    public struct RuleOutcome: Sendable, Hashable, Codable {
        /// The rule.
        public var rule: CleaningRule
        /// Whether the rule ran (only `duplicate` can be switched off).
        public var enabled: Bool
        /// Rows the rule judged.
        public var checked: Int
        /// Rows that failed it.
        public var failed: Int
        /// The first failing rows, in row order, at most `sampleLimit` of them.
        public var samples: [Sample]

        /// An outcome with its counts and samples.
        public init(rule: CleaningRule, enabled: Bool, checked: Int, failed: Int, samples: [Sample]) {
            self.rule = rule
            self.enabled = enabled
            self.checked = checked
            self.failed = failed
            self.samples = samples
        }

        /// Rows that passed: `checked - failed`.
        public var passed: Int { checked - failed }

        enum CodingKeys: String, CodingKey {
            case rule = "id", summary, enabled, checked, failed, samples
        }

        /// Decodes an outcome (the written `summary` is ignored; it comes from the rule).
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            rule = try c.decode(CleaningRule.self, forKey: .rule)
            enabled = try c.decode(Bool.self, forKey: .enabled)
            checked = try c.decode(Int.self, forKey: .checked)
            failed = try c.decode(Int.self, forKey: .failed)
            samples = try c.decode([Sample].self, forKey: .samples)
        }

        /// Encodes the outcome, with the rule's summary beside its id for readers.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(rule, forKey: .rule)
            try c.encode(rule.summary, forKey: .summary)
            try c.encode(enabled, forKey: .enabled)
            try c.encode(checked, forKey: .checked)
            try c.encode(failed, forKey: .failed)
            try c.encode(samples, forKey: .samples)
        }
    }

    /// The settings the rules ran with, for the record.
    public struct Settings: Sendable, Hashable, Codable {
        /// Lower bound of `ValidationRanges.carat`.
        public var caratMin: Double
        /// Upper bound of `ValidationRanges.carat`.
        public var caratMax: Double
        /// Lower bound of `ValidationRanges.depth`.
        public var depthMin: Double
        /// Upper bound of `ValidationRanges.depth`.
        public var depthMax: Double
        /// Lower bound of `ValidationRanges.table`.
        public var tableMin: Double
        /// Upper bound of `ValidationRanges.table`.
        public var tableMax: Double
        /// Lower bound of `ValidationRanges.dimension`.
        public var dimensionMin: Double
        /// Upper bound of `ValidationRanges.dimension`.
        public var dimensionMax: Double
        /// `ValidationRanges.depthTolerance`.
        public var depthTolerance: Double
        /// `CleaningConfiguration.dropDuplicates`.
        public var dropDuplicates: Bool
        /// `CleaningConfiguration.sampleLimit` (negative values as 0).
        public var sampleLimit: Int

        /// The settings of a configuration.
        public init(_ configuration: CleaningConfiguration) {
            let r = configuration.ranges
            caratMin = r.carat.lowerBound
            caratMax = r.carat.upperBound
            depthMin = r.depth.lowerBound
            depthMax = r.depth.upperBound
            tableMin = r.table.lowerBound
            tableMax = r.table.upperBound
            dimensionMin = r.dimension.lowerBound
            dimensionMax = r.dimension.upperBound
            depthTolerance = r.depthTolerance
            dropDuplicates = configuration.dropDuplicates
            sampleLimit = max(0, configuration.sampleLimit)
        }

        enum CodingKeys: String, CodingKey {
            case caratMin = "carat_min", caratMax = "carat_max"
            case depthMin = "depth_min", depthMax = "depth_max"
            case tableMin = "table_min", tableMax = "table_max"
            case dimensionMin = "dimension_min", dimensionMax = "dimension_max"
            case depthTolerance = "depth_tolerance"
            case dropDuplicates = "drop_duplicates"
            case sampleLimit = "sample_limit"
        }
    }

    /// Data records read (blank lines not counted).
    public var rowsIn: Int
    /// Records that passed every rule.
    public var cleanRows: Int
    /// Records that failed at least one rule.
    public var quarantinedRows: Int
    /// Blank lines (empty or only spaces and tabs) skipped outside quoted fields.
    public var emptyLinesSkipped: Int
    /// The header's column names as read, in file order.
    public var columns: [String]
    /// Header columns that are not required and were ignored, in file order.
    public var extraColumns: [String]
    /// One outcome per rule, in `CleaningRule.all` order.
    public var rules: [RuleOutcome]
    /// The settings the rules ran with.
    public var settings: Settings

    /// A report from its parts.
    public init(
        rowsIn: Int, cleanRows: Int, quarantinedRows: Int, emptyLinesSkipped: Int,
        columns: [String], extraColumns: [String], rules: [RuleOutcome], settings: Settings
    ) {
        self.rowsIn = rowsIn
        self.cleanRows = cleanRows
        self.quarantinedRows = quarantinedRows
        self.emptyLinesSkipped = emptyLinesSkipped
        self.columns = columns
        self.extraColumns = extraColumns
        self.rules = rules
        self.settings = settings
    }

    /// The outcome of `rule`.
    public subscript(rule: CleaningRule) -> RuleOutcome? {
        rules.first { $0.rule == rule }
    }

    enum CodingKeys: String, CodingKey {
        case rowsIn = "rows_in"
        case cleanRows = "clean_rows"
        case quarantinedRows = "quarantined_rows"
        case emptyLinesSkipped = "empty_lines_skipped"
        case columns
        case extraColumns = "extra_columns"
        case rules
        case settings
    }
}
