import DiamondSchema

/// One run of the rules over the data records: fills the clean rows, the quarantine and
/// the per-rule counters. Clean rows allocate nothing beyond their slots in the row buffer;
/// messages and raw fields are only built for rows that fail.
struct CleaningPass: ~Copyable {
    // Rule counters are indexed by position in `CleaningRule.all`, looked up once from the
    // rules themselves: reordering or adding a rule cannot misfile a count.
    static let parse = slot(.parse), pricePositive = slot(.pricePositive), caratPositive = slot(.caratPositive)
    static let dimensionsPositive = slot(.dimensionsPositive), caratRange = slot(.caratRange)
    static let depthRange = slot(.depthRange), tableRange = slot(.tableRange), dimensionRange = slot(.dimensionRange)
    static let depthConsistent = slot(.depthConsistent), duplicate = slot(.duplicate)

    private static func slot(_ rule: CleaningRule) -> Int {
        guard let index = CleaningRule.all.firstIndex(of: rule) else { preconditionFailure("\(rule) is not in CleaningRule.all") }
        return index
    }

    // Slots of the required values, as in `HeaderLayout.requiredNames`.
    private static let carat = 0, cut = 1, color = 2, clarity = 3, depth = 4, table = 5
    private static let x = 6, y = 7, z = 8, price = 9
    /// Number of required values per row.
    private static let width = Feature.count + 1

    private static let cuts = GradeMatcher<Cut>()
    private static let colors = GradeMatcher<Color>()
    private static let clarities = GradeMatcher<Clarity>()

    private let configuration: CleaningConfiguration
    private let layout: HeaderLayout
    private let sampleLimit: Int

    /// Clean rows, row-major: the ten required values of each (features, then price).
    private var cleanValues: [Double] = []
    private var sourceRows: [Int] = []
    private var quarantine: [QuarantinedRow] = []

    private var checked = [Int](repeating: 0, count: CleaningRule.all.count)
    private var failed = [Int](repeating: 0, count: CleaningRule.all.count)
    private var samples = [[CleaningReport.Sample]](repeating: [], count: CleaningRule.all.count)

    private var seen = Set<RowKey>()
    private var row = 0
    /// The current row's required values (owned; freed in `deinit`).
    private let values: UnsafeMutablePointer<Double>
    private var failures: [(rule: Int, message: String)] = []

    init(configuration: CleaningConfiguration, layout: HeaderLayout, expectedRows: Int) {
        self.configuration = configuration
        self.layout = layout
        sampleLimit = max(0, configuration.sampleLimit)
        values = .allocate(capacity: Self.width)
        values.initialize(repeating: 0, count: Self.width)
        cleanValues.reserveCapacity(expectedRows * Self.width)
        sourceRows.reserveCapacity(expectedRows)
        if configuration.dropDuplicates { seen.reserveCapacity(expectedRows) }
    }

    deinit {
        values.deallocate()
    }

    /// Judges the scanner's current record.
    mutating func process(_ scanner: CSVScanner) {
        row += 1
        checked[Self.parse] += 1
        if parse(scanner) {
            applyValueRules()
            if failures.isEmpty && configuration.dropDuplicates { applyDuplicateRule() }
        }
        if failures.isEmpty {
            cleanValues.append(contentsOf: UnsafeBufferPointer(start: values, count: Self.width))
            sourceRows.append(row)
        } else {
            quarantineRow(scanner)
        }
    }

    /// The clean table, the quarantine and the report.
    func finish(emptyLinesSkipped: Int) -> CleaningResult {
        let outcomes = CleaningRule.all.indices.map { i in
            CleaningReport.RuleOutcome(
                rule: CleaningRule.all[i],
                enabled: i != Self.duplicate || configuration.dropDuplicates,
                checked: checked[i], failed: failed[i], samples: samples[i])
        }
                let count = sourceRows.count
        let columns = (0..<Feature.count).map { slot in
            [Double](unsafeUninitializedCapacity: count) { buffer, initialized in
                for i in 0..<count { buffer[i] = cleanValues[i * Self.width + slot] }
                initialized = count
            }
        }
        let prices = (0..<count).map { cleanValues[$0 * Self.width + Self.price] }
        let report = CleaningReport(
            rowsIn: row, cleanRows: count, quarantinedRows: quarantine.count,
            emptyLinesSkipped: emptyLinesSkipped, columns: layout.columns,
            extraColumns: layout.extraColumns, rules: outcomes,
            settings: CleaningReport.Settings(configuration))
        return CleaningResult(
            clean: DiamondTable(columns: columns, price: prices, sourceRow: sourceRows),
            quarantine: quarantine, report: report)
    }

    // MARK: - Rules

    /// The `parse` rule: record shape, numbers and grades. Fills `values`; false on failure.
    private mutating func parse(_ scanner: CSVScanner) -> Bool {
        if let problem = scanner.problem {
            switch problem {
            case .unterminatedQuote(let field):
                fail(Self.parse, "row \(row), \(columnName(field)): the opening quote is never closed")
            case .textAfterClosingQuote(let field):
                fail(Self.parse, "row \(row), \(columnName(field)): text after the closing quote in "
                    + Self.display(scanner.string(field)))
            }
            return false
        }
        let expected = layout.columns.count
        if scanner.fields.count != expected {
            let n = scanner.fields.count
            let hint = n < expected ? " (truncated record?)" : ""
            fail(Self.parse, "row \(row): \(n) field\(n == 1 ? "" : "s"), expected \(expected)\(hint)")
            return false
        }
        var ok = true
        for slot in 0..<Self.width {
            let field = layout.fieldIndex[slot]
            if field < 0 {  // an optional price column that is absent
                values[slot] = .nan
                continue
            }
            let value: Double? = scanner.withField(field) { text in
                switch slot {
                case Self.cut: Self.cuts.code(text).map(Double.init)
                case Self.color: Self.colors.code(text).map(Double.init)
                case Self.clarity: Self.clarities.code(text).map(Double.init)
                default: DecimalParser.parse(text)
                }
            }
            if let value {
                values[slot] = value
            } else {
                ok = false
                fail(Self.parse, parseMessage(slot: slot, text: scanner.string(field)))
            }
        }
        return ok
    }

    private func parseMessage(slot: Int, text: String) -> String {
        let name = HeaderLayout.requiredNames[slot]
        let prefix = "row \(row), column \"\(name)\": \(Self.display(text))"
        switch slot {
        case Self.cut: return prefix + " is not a cut level (expected one of \(Cut.levelList))"
        case Self.color: return prefix + " is not a color level (expected one of \(Color.levelList))"
        case Self.clarity: return prefix + " is not a clarity level (expected one of \(Clarity.levelList))"
        default: return prefix + " is not a number"
        }
    }

    /// The positivity, range and consistency rules on a parsed row.
    private mutating func applyValueRules() {
        let ranges = configuration.ranges
        let carat = values[Self.carat], depth = values[Self.depth], table = values[Self.table]
        let x = values[Self.x], y = values[Self.y], z = values[Self.z], price = values[Self.price]

        if layout.fieldIndex[Self.price] >= 0 {
            checked[Self.pricePositive] += 1
            if !(price > 0) { fail(Self.pricePositive, "row \(row): price must be > 0, got \(Self.format(price))") }
        }

        checked[Self.caratPositive] += 1
        let caratPositive = carat > 0
        if !caratPositive { fail(Self.caratPositive, "row \(row): carat must be > 0, got \(Self.format(carat))") }

        checked[Self.dimensionsPositive] += 1
        let dimensionsPositive = x > 0 && y > 0 && z > 0
        if !dimensionsPositive {
            for slot in Self.x...Self.z where !(values[slot] > 0) {
                fail(Self.dimensionsPositive,
                     "row \(row): \(HeaderLayout.requiredNames[slot]) must be > 0, got \(Self.format(values[slot]))")
            }
        }

        if caratPositive {
            checked[Self.caratRange] += 1
            if !ranges.carat.contains(carat) {
                fail(Self.caratRange, "row \(row): carat must be in \(Self.format(ranges.carat)), got \(Self.format(carat))")
            }
        }
        checked[Self.depthRange] += 1
        if !ranges.depth.contains(depth) {
            fail(Self.depthRange, "row \(row): depth must be in \(Self.format(ranges.depth)), got \(Self.format(depth))")
        }
        checked[Self.tableRange] += 1
        if !ranges.table.contains(table) {
            fail(Self.tableRange, "row \(row): table must be in \(Self.format(ranges.table)), got \(Self.format(table))")
        }
        guard dimensionsPositive else { return }

        checked[Self.dimensionRange] += 1
        for slot in Self.x...Self.z where !ranges.dimension.contains(values[slot]) {
            fail(Self.dimensionRange, "row \(row): \(HeaderLayout.requiredNames[slot]) must be in "
                + "\(Self.format(ranges.dimension)) mm, got \(Self.format(values[slot]))")
        }

        checked[Self.depthConsistent] += 1
        let implied = 100 * 2 * z / (x + y)
        let gap = abs(depth - implied)
        if !(gap <= ranges.depthTolerance) {
            fail(Self.depthConsistent, "row \(row): depth \(Self.format(depth)) is \(Self.format(Self.rounded(gap))) "
                + "from 100*2z/(x+y) = \(Self.format(Self.rounded(implied))) "
                + "(tolerance \(Self.format(ranges.depthTolerance)))")
        }
    }

    /// The `duplicate` rule on a row that passed everything else.
    private mutating func applyDuplicateRule() {
        checked[Self.duplicate] += 1
        let (inserted, first) = seen.insert(RowKey(UnsafeBufferPointer(start: values, count: Self.width), row: row))
        if !inserted { fail(Self.duplicate, "row \(row): duplicate of row \(first.row)") }
    }

    // MARK: - Failures

    private mutating func fail(_ rule: Int, _ message: String) {
        failures.append((rule, message))
    }

    private mutating func quarantineRow(_ scanner: CSVScanner) {
        var rowFailures: [QuarantinedRow.Failure] = []
        rowFailures.reserveCapacity(failures.count)
        var rule = -1
        for (i, failure) in failures.enumerated() where failure.rule != rule {
            // Failures arrive grouped by rule: count the row once per rule.
            rule = failure.rule
            failed[rule] += 1
            if samples[rule].count < sampleLimit {
                let message = failures[i...].prefix { $0.rule == rule }.map(\.message).joined(separator: "; ")
                samples[rule].append(CleaningReport.Sample(row: row, message: message))
            }
        }
        for failure in failures {
            rowFailures.append(QuarantinedRow.Failure(rule: CleaningRule.all[failure.rule], message: failure.message))
        }
        quarantine.append(QuarantinedRow(row: row, line: scanner.recordLine, failures: rowFailures, fields: scanner.strings()))
        failures.removeAll(keepingCapacity: true)
    }

    private func columnName(_ field: Int) -> String {
        field < layout.columns.count ? "column \"\(layout.columns[field])\"" : "field \(field + 1)"
    }

    // MARK: - Formatting

    /// A number as Swift prints it (shortest round-trip), without a trailing ".0".
    static func format(_ value: Double) -> String {
        let text = value.description
        return text.hasSuffix(".0") ? String(text.dropLast(2)) : text
    }

    private static func format(_ range: ClosedRange<Double>) -> String {
        format(range.lowerBound) + "..." + format(range.upperBound)
    }

    private static func rounded(_ value: Double) -> Double {
        (value * 100).rounded() / 100
    }

    /// A raw value quoted for a message: control characters escaped, long text cut short.
    static func display(_ text: String) -> String {
        var out = "\""
        var count = 0
        for scalar in text.unicodeScalars {
            if count == 40 {
                out += "…"
                break
            }
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\u{" + String(scalar.value, radix: 16) + "}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
            count += 1
        }
        return out + "\""
    }
}

/// The ten required values of a clean row, for finding exact duplicates. Equality and
/// hashing ignore `row`, the row where the values were first seen.
private struct RowKey: Hashable {
    var a0, a1, a2, a3, a4, a5, a6, a7, a8, a9: UInt64
    let row: Int

    init(_ v: UnsafeBufferPointer<Double>, row: Int) {
        // +0 and -0 are the same value.
        func bits(_ d: Double) -> UInt64 { d == 0 ? 0 : d.bitPattern }
        a0 = bits(v[0]); a1 = bits(v[1]); a2 = bits(v[2]); a3 = bits(v[3]); a4 = bits(v[4])
        a5 = bits(v[5]); a6 = bits(v[6]); a7 = bits(v[7]); a8 = bits(v[8]); a9 = bits(v[9])
        self.row = row
    }

    static func == (l: RowKey, r: RowKey) -> Bool {
        l.a0 == r.a0 && l.a1 == r.a1 && l.a2 == r.a2 && l.a3 == r.a3 && l.a4 == r.a4
            && l.a5 == r.a5 && l.a6 == r.a6 && l.a7 == r.a7 && l.a8 == r.a8 && l.a9 == r.a9
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(a0); hasher.combine(a1); hasher.combine(a2); hasher.combine(a3); hasher.combine(a4)
        hasher.combine(a5); hasher.combine(a6); hasher.combine(a7); hasher.combine(a8); hasher.combine(a9)
    }
}

/// A pass owns scratch memory and lives inside one `Cleaner.clean` call.
@available(*, unavailable)
extension CleaningPass: Sendable {}
