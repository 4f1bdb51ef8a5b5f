/// The outcome of cleaning: every input record is in exactly one of `clean` and `quarantine`.
public struct CleaningResult: Sendable, Equatable {
    /// The rows that passed every rule, in input order, each with its `sourceRow`.
    public var clean: DiamondTable
    /// The rows that failed a rule, in input order, with reasons and raw fields.
    public var quarantine: [QuarantinedRow]
    /// Counts per rule and sample failures.
    public var report: CleaningReport

    /// A result from its parts.
    public init(clean: DiamondTable, quarantine: [QuarantinedRow], report: CleaningReport) {
        self.clean = clean
        self.quarantine = quarantine
        self.report = report
    }
}
