import DataCleaning
import DiamondSchema
import TreeModel

/// Point-accuracy metrics in dollars.
public struct RegressionMetrics: Sendable, Equatable, Codable {
    /// Rows measured.
    public var rows: Int
    /// Root mean squared error, dollars.
    public var rmse: Double
    /// Mean absolute error, dollars.
    public var mae: Double
    /// Mean absolute percentage error, percent.
    public var mape: Double
    /// Coefficient of determination.
    public var r2: Double

    /// Metrics of `predicted` against `actual` (same length, actual > 0 for MAPE).
    public init(actual: [Double], predicted: [Double]) {
        precondition(actual.count == predicted.count)
        rows = actual.count
        guard rows > 0 else {
            rmse = .nan; mae = .nan; mape = .nan; r2 = .nan
            return
        }
        var se = 0.0, ae = 0.0, ape = 0.0, mean = 0.0
        for a in actual { mean += a }
        mean /= Double(rows)
        var ss = 0.0
        for i in 0..<rows {
            let e = predicted[i] - actual[i]
            se += e * e
            ae += abs(e)
            ape += abs(e) / actual[i]
            ss += (actual[i] - mean) * (actual[i] - mean)
        }
        rmse = (se / Double(rows)).squareRoot()
        mae = ae / Double(rows)
        mape = 100 * ape / Double(rows)
        r2 = ss > 0 ? 1 - se / ss : .nan
    }
}

/// How good the price ranges are.
public struct RangeMetrics: Sendable, Equatable, Codable {
    /// The nominal coverage level of the ranges.
    public var level: Double
    /// Fraction of rows whose actual price lies in [low, high].
    public var coverage: Double
    /// Median of (high − low) / price.
    public var medianRelativeWidth: Double

    public init(level: Double, actual: [Double], estimates: [PriceEstimate]) {
        self.level = level
        var inside = 0
        var widths: [Double] = []
        widths.reserveCapacity(actual.count)
        for (a, e) in zip(actual, estimates) {
            if a >= e.low && a <= e.high { inside += 1 }
            widths.append((e.high - e.low) / e.price)
        }
        coverage = actual.isEmpty ? .nan : Double(inside) / Double(actual.count)
        widths.sort()
        medianRelativeWidth = widths.isEmpty ? .nan : widths[widths.count / 2]
    }

    /// How far `coverage` on `rows` stones is from the nominal level, in binomial standard
    /// deviations: ranges that covered every stone with probability exactly `level` would show
    /// |z| > 2 on about one group in twenty by chance alone, so a larger |z| is the method's.
    public func zScore(rows: Int) -> Double {
        guard rows > 0, level > 0, level < 1 else { return .nan }
        return (coverage - level) / (level * (1 - level) / Double(rows)).squareRoot()
    }
}

/// Metrics for the rows whose actual price falls in one decile of the evaluated prices.
public struct DecileMetrics: Sendable, Equatable, Codable {
    /// 1 (cheapest tenth) … 10.
    public var decile: Int
    /// Lowest and highest actual price in the decile.
    public var minPrice: Double
    public var maxPrice: Double
    public var metrics: RegressionMetrics
    public var ranges: RangeMetrics?
}

/// Metrics for the rows of one level of one grade (e.g. cut Fair).
public struct GradeGroupMetrics: Sendable, Equatable, Codable {
    /// The grade: "cut", "color" or "clarity".
    public var grade: String
    /// The level's label, e.g. "Fair".
    public var level: String
    public var metrics: RegressionMetrics
    public var ranges: RangeMetrics?
}

/// A model measured on labelled rows.
public struct EvaluationReport: Sendable, Equatable, Codable {
    public var metrics: RegressionMetrics
    /// Range quality, when the model is calibrated.
    public var ranges: RangeMetrics?
    public var deciles: [DecileMetrics]
    /// The same per level of cut, color and clarity (levels with rows only); nil when the rows'
    /// grades were not given (and in reports stored before grades were measured).
    public var grades: [GradeGroupMetrics]?

    /// Scores `table` with `model` (the reference predictor) and measures it.
    public init(model: Ensemble, table: DiamondTable, level: Double = ConformalIntervals.defaultLevel) {
        self.init(model: model, rawScores: model.rawScores(columns: table.columns), table: table, level: level)
    }

    /// Measures `model`'s raw scores of `table`'s rows.
    public init(model: Ensemble, rawScores: [Double], table: DiamondTable, level: Double = ConformalIntervals.defaultLevel) {
        let estimates = model.estimates(raw: rawScores, columns: table.columns, level: level)
        self.init(
            actual: table.price, estimates: estimates, level: level, calibrated: model.intervals != nil,
            columns: table.columns)
    }

    /// Measures estimates against actual prices; with the rows' feature `columns` (grades as
    /// ordinal codes, `Feature` order), per grade level too.
    public init(actual: [Double], estimates: [PriceEstimate], level: Double, calibrated: Bool, columns: [[Double]]? = nil) {
        metrics = RegressionMetrics(actual: actual, predicted: estimates.map(\.price))
        ranges = calibrated ? RangeMetrics(level: level, actual: actual, estimates: estimates) : nil
        grades = columns.map { Self.gradeGroups(actual: actual, estimates: estimates, level: level, calibrated: calibrated, columns: $0) }
        let order = actual.indices.sorted { actual[$0] < actual[$1] }
        deciles = []
        guard order.count >= 10 else { return }
        for d in 0..<10 {
            let part = order[(d * order.count / 10)..<((d + 1) * order.count / 10)]
            let a = part.map { actual[$0] }
            let e = part.map { estimates[$0] }
            deciles.append(DecileMetrics(
                decile: d + 1, minPrice: a.first!, maxPrice: a.last!,
                metrics: RegressionMetrics(actual: a, predicted: e.map(\.price)),
                ranges: calibrated ? RangeMetrics(level: level, actual: a, estimates: e) : nil))
        }
    }

    static func gradeGroups(
        actual: [Double], estimates: [PriceEstimate], level: Double, calibrated: Bool, columns: [[Double]]
    ) -> [GradeGroupMetrics] {
        func groups<G: Grade>(_ feature: Feature, _: G.Type) -> [GradeGroupMetrics] {
            guard feature.rawValue < columns.count else { return [] }
            let codes = columns[feature.rawValue]
            return G.allCases.compactMap { grade in
                let rows = codes.indices.filter { codes[$0] == Double(grade.rawValue) }
                guard !rows.isEmpty else { return nil }
                let a = rows.map { actual[$0] }
                let e = rows.map { estimates[$0] }
                return GradeGroupMetrics(
                    grade: feature.name, level: grade.label, metrics: RegressionMetrics(actual: a, predicted: e.map(\.price)),
                    ranges: calibrated ? RangeMetrics(level: level, actual: a, estimates: e) : nil)
            }
        }
        return groups(.cut, Cut.self) + groups(.color, Color.self) + groups(.clarity, Clarity.self)
    }

    /// A readable table: overall metrics, then one line per price decile and per grade level.
    public func table() -> String {
        var lines: [String] = []
        lines.append("rows \(metrics.rows)   RMSE $\(fmt(metrics.rmse, 1))   MAE $\(fmt(metrics.mae, 1))   "
            + "MAPE \(fmt(metrics.mape, 2))%   R² \(fmt(metrics.r2, 4))")
        if let ranges {
            lines.append("\(fmt(ranges.level * 100, 0))% ranges: coverage \(fmt(ranges.coverage * 100, 1))%   "
                + "median width \(fmt(ranges.medianRelativeWidth * 100, 1))% of price")
        }
        if !deciles.isEmpty {
            lines.append("")
            lines.append(pad("decile", 7) + pad("prices", 18) + pad("RMSE", 10) + pad("MAE", 10) + pad("MAPE", 8)
                + (ranges != nil ? pad("cover", 8) + pad("z", 6) + pad("width", 8) : ""))
            for d in deciles {
                var line = pad("\(d.decile)", 7) + pad("$\(fmt(d.minPrice, 0))–\(fmt(d.maxPrice, 0))", 18)
                line += pad(fmt(d.metrics.rmse, 1), 10) + pad(fmt(d.metrics.mae, 1), 10) + pad(fmt(d.metrics.mape, 2) + "%", 8)
                if let r = d.ranges {
                    line += pad(fmt(r.coverage * 100, 1) + "%", 8) + pad(fmt(r.zScore(rows: d.metrics.rows), 1), 6)
                        + pad(fmt(r.medianRelativeWidth * 100, 1) + "%", 8)
                }
                lines.append(line)
            }
        }
        if let grades, !grades.isEmpty {
            lines.append("")
            lines.append(pad("grade", 9) + pad("level", 11) + pad("rows", 7) + pad("RMSE", 10) + pad("MAE", 10)
                + pad("MAPE", 8) + (ranges != nil ? pad("cover", 8) + pad("z", 6) + pad("width", 8) : ""))
            for g in grades {
                var line = pad(g.grade, 9) + pad(g.level, 11) + pad("\(g.metrics.rows)", 7)
                line += pad(fmt(g.metrics.rmse, 1), 10) + pad(fmt(g.metrics.mae, 1), 10) + pad(fmt(g.metrics.mape, 2) + "%", 8)
                if let r = g.ranges {
                    line += pad(fmt(r.coverage * 100, 1) + "%", 8) + pad(fmt(r.zScore(rows: g.metrics.rows), 1), 6)
                        + pad(fmt(r.medianRelativeWidth * 100, 1) + "%", 8)
                }
                lines.append(line)
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// Fixed-point formatting without Foundation.
func fmt(_ value: Double, _ decimals: Int) -> String {
    guard value.isFinite else { return "\(value)" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let scaled = (abs(value) * scale).rounded()
    let whole = Int(scaled / scale)
    var text = (value < 0 && scaled > 0 ? "-" : "") + "\(whole)"
    if decimals > 0 {
        let frac = Int(scaled - Double(whole) * scale)
        let digits = String(frac)
        text += "." + String(repeating: "0", count: decimals - digits.count) + digits
    }
    return text
}

func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
}
