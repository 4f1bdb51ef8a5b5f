/// An input record that did not pass the rules: where it was, why it failed, and its fields
/// exactly as read, so nothing is lost.
public struct QuarantinedRow: Sendable, Hashable {
    /// One broken rule and what exactly was wrong.
    public struct Failure: Sendable, Hashable {
        /// The rule that failed.
        public var rule: CleaningRule
        /// What was wrong, naming the row (and the column where there is one).
        public var message: String

        /// A failure of `rule`.
        public init(rule: CleaningRule, message: String) {
            self.rule = rule
            self.message = message
        }
    }

    /// The 1-based data row number: data records counted from the first one after the
    /// header; blank lines are not counted, a record spanning several lines counts once.
    public var row: Int
    /// The 1-based physical line of the file on which the record starts (header and blank
    /// lines counted), for finding it in an editor.
    public var line: Int
    /// Every failure, in rule order. A rule can appear more than once (e.g. two columns that
    /// do not parse).
    public var failures: [Failure]
    /// The record's fields as read (quotes removed, `""` unescaped), in file column order.
    /// A malformed record may have fewer or more fields than the header.
    public var fields: [String]

    /// A quarantined row from its parts.
    public init(row: Int, line: Int, failures: [Failure], fields: [String]) {
        self.row = row
        self.line = line
        self.failures = failures
        self.fields = fields
    }

    /// The rules that failed, each once, in rule order.
    public var rules: [CleaningRule] {
        var seen: [CleaningRule] = []
        for failure in failures where !seen.contains(failure.rule) { seen.append(failure.rule) }
        return seen
    }

    /// The failure messages.
    public var reasons: [String] { failures.map(\.message) }
}
