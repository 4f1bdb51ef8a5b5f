import DiamondSchema
import TreeModel

/// Calibrates a model's price ranges: normalised split conformal, so a range is as wide as the
/// model's error for that kind of stone (docs/TRAINING.md, "Price ranges").
///
/// Two disjoint sets of rows are used. The *scale rows* fit the error scale, a product of
/// factors per predicted-price bin, cut, color and clarity; the *calibration rows*, which the
/// model never trained on, give the conformity scores |y − ŷ| / scale. Because the scale does
/// not depend on the calibration rows, the ranges keep split conformal's guarantee whichever
/// rows fitted it: the trainer fits it on out-of-fold residuals of its training rows
/// (`OutOfFoldScores`), honest held-out residuals fit it best; training residuals (which the
/// trees partly learned) are the fallback. With too few scale rows the calibration is the
/// constant-width one of format versions 1–2.
public enum RangeCalibration {
    /// Rows scored by the model: raw scores, training targets (same scale) and feature columns.
    public struct ScoredRows: Sendable {
        public var raw: [Double]
        public var target: [Double]
        /// Feature columns, `columns[f][row]`.
        public var columns: [[Double]]

        public init(raw: [Double], target: [Double], columns: [[Double]]) {
            precondition(raw.count == target.count && columns.allSatisfy { $0.count == raw.count })
            self.raw = raw
            self.target = target
            self.columns = columns
        }

        public var count: Int { raw.count }

        /// The rows at `indices`.
        public func rows(_ indices: [Int]) -> ScoredRows {
            ScoredRows(
                raw: indices.map { raw[$0] }, target: indices.map { target[$0] },
                columns: columns.map { column in indices.map { column[$0] } })
        }

        /// Appends `other`'s rows (with as many feature columns).
        public mutating func append(_ other: ScoredRows) {
            precondition(other.columns.count == columns.count)
            raw += other.raw
            target += other.target
            for f in columns.indices { columns[f] += other.columns[f] }
        }

        var absoluteResiduals: [Double] { raw.indices.map { abs(target[$0] - raw[$0]) } }
    }

    /// Equal-count predicted-price bins of the scale. Three to five fitted coverage best on the
    /// bundled data; eight fitted the scale rows' noise.
    public static let priceBins = 5
    /// Each grade factor is shrunk toward 1 as if this many rows of error 1 × the other
    /// factors' fit were added to its group, so a grade with a handful of scale rows stays
    /// near 1. Chosen on held-out rows of the bundled data's training part (never its test
    /// split): 0–10 fitted coverage best, stronger shrinkage pulled I1 and Fair to the middle.
    /// Price bins are equal-count, large by construction, and not shrunk.
    public static let gradePseudoRows = 10.0
    /// Below this many scale rows the scale would mostly be noise; constant width is used instead.
    public static let minimumScaleRows = 200
    /// At most this many scale rows are scored (evenly spaced): plenty for 25 factors, and
    /// scoring every training row of a big dataset would add seconds to training.
    public static let maximumScaleRows = 20_000
    /// Sweeps of backfitting (each factor table refitted given the others); the fit settles in a few.
    static let sweeps = 10

    /// Calibrates with scale rows and separate calibration rows. Nil when there are no usable
    /// calibration rows.
    public static func calibrate(scaleRows: ScoredRows, calibration: ScoredRows) -> ConformalIntervals? {
        let residuals = calibration.absoluteResiduals
        guard scaleRows.count >= minimumScaleRows, let scale = fitErrorScale(scaleRows) else {
            return ConformalIntervals(residuals: residuals.filter(\.isFinite))
        }
        let scores = calibration.raw.indices.map { row in
            residuals[row] / scale.scale(raw: calibration.raw[row]) { calibration.columns[$0][row] }
        }
        return ConformalIntervals(scores: scores.filter(\.isFinite), errorScale: scale)
    }

    /// At most `maximumScaleRows` of `rows`, evenly spaced (all of them when there are fewer).
    public static func scaleRowSample(_ rows: [Int]) -> [Int] {
        guard rows.count > maximumScaleRows else { return rows }
        return (0..<maximumScaleRows).map { rows[$0 * rows.count / maximumScaleRows] }
    }

    /// The grade features of a diamond model and their number of codes.
    static let grades: [(feature: Int, codes: Int)] = [
        (Feature.cut.rawValue, Cut.allCases.count), (Feature.color.rawValue, Color.allCases.count),
        (Feature.clarity.rawValue, Clarity.allCases.count),
    ]

    /// Fits the multiplicative error scale to the rows' absolute residuals by backfitting:
    /// each table's factor for a group is the group's mean of |r| / (the other tables' product),
    /// grade factors shrunk toward 1 by `gradePseudoRows`. Mean absolute error, not a quantile, because it is far
    /// less noisy on small groups and measured as good at equalising coverage.
    /// Nil when the residuals are all zero or not finite.
    static func fitErrorScale(_ rows: ScoredRows) -> ErrorScale? {
        let n = rows.count
        let absolute = rows.absoluteResiduals
        guard n > 0, absolute.allSatisfy(\.isFinite) else { return nil }
        let base = absolute.reduce(0, +) / Double(n)
        guard base > 0 else { return nil }

        // The partitions: predicted-price bins, then each grade present in the feature vectors.
        let edges = priceBinEdges(rows.raw)
        var groupOf: [[Int]] = [rows.raw.map { raw in edges.reduce(0) { raw >= $1 ? $0 + 1 : $0 } }]
        var groupCounts = [edges.count + 1]
        let grades = Self.grades.filter { $0.feature < rows.columns.count }
        for grade in grades {
            groupOf.append(rows.columns[grade.feature].map { v in
                v >= 0 && v < Double(grade.codes) && v == v.rounded(.down) ? Int(v) : -1  // -1: factor 1
            })
            groupCounts.append(grade.codes)
        }
        var factors = groupCounts.map { [Double](repeating: 1, count: $0) }
        var others = [Double](repeating: 0, count: n)
        for _ in 0..<sweeps {
            for p in factors.indices {
                for row in 0..<n {
                    var product = base
                    for q in factors.indices where q != p {
                        let g = groupOf[q][row]
                        if g >= 0 { product *= factors[q][g] }
                    }
                    others[row] = product
                }
                var sums = [Double](repeating: 0, count: groupCounts[p])
                var counts = [Double](repeating: 0, count: groupCounts[p])
                for row in 0..<n {
                    let g = groupOf[p][row]
                    guard g >= 0 else { continue }
                    sums[g] += absolute[row] / others[row]
                    counts[g] += 1
                }
                let pseudoRows = p == 0 ? 0 : gradePseudoRows
                for g in sums.indices where counts[g] + pseudoRows > 0 {
                    factors[p][g] = (sums[g] + pseudoRows) / (counts[g] + pseudoRows)
                }
            }
        }
        return try? ErrorScale(
            rawScoreEdges: edges, priceFactors: factors[0].map { $0 * base },
            gradeFactors: grades.indices.map { ErrorScale.GradeFactors(feature: grades[$0].feature, factors: factors[$0 + 1]) })
    }

    /// Edges of `priceBins` equal-count bins of the raw scores (fewer when values repeat).
    static func priceBinEdges(_ raw: [Double]) -> [Double] {
        let sorted = raw.filter(\.isFinite).sorted()
        guard !sorted.isEmpty else { return [] }
        var edges: [Double] = []
        for b in 1..<priceBins {
            let edge = sorted[b * sorted.count / priceBins]
            if edge > (edges.last ?? sorted[0]) { edges.append(edge) }
        }
        return edges
    }
}
