/// How large a model's error is expected to be for one stone, relative to other stones: the
/// normaliser of normalised split-conformal ranges.
///
/// The scale is a product of table lookups, so a range costs a few loads per row: one factor
/// per predicted-price bin (bins over the raw score) times one factor per code of each grade
/// feature (cut, color, clarity for a diamond model). A calibration row's conformity score is
/// |y − ŷ| / scale, and a range's half-width is the scores' conformal quantile × scale.
///
/// The factors must come from rows that are neither calibration rows nor rows the ranges will
/// be judged on; then the scale is a fixed function of the stone, the scores of calibration and
/// new rows stay exchangeable, and split conformal's guarantee holds unchanged.
public struct ErrorScale: Sendable, Equatable {
    /// A grade feature's factors, one per integer code.
    public struct GradeFactors: Sendable, Equatable {
        /// Index of the feature in the model's feature vector.
        public var feature: Int
        /// Factor of code c at index c; codes outside the table (or not integers) get 1.
        public var factors: [Double]

        public init(feature: Int, factors: [Double]) {
            self.feature = feature
            self.factors = factors
        }
    }

    /// Raw-score boundaries between predicted-price bins, strictly ascending; a raw score
    /// belongs to the bin after every edge it reaches.
    public private(set) var rawScoreEdges: [Double]
    /// The scale of each predicted-price bin (`rawScoreEdges.count + 1` values, > 0).
    public private(set) var priceFactors: [Double]
    /// Factors multiplied in per grade feature.
    public private(set) var gradeFactors: [GradeFactors]

    /// Checks the tables: edges finite and strictly ascending, one price factor per bin,
    /// every factor finite and positive, at most 256 codes per grade.
    public init(rawScoreEdges: [Double], priceFactors: [Double], gradeFactors: [GradeFactors]) throws(ModelError) {
        guard priceFactors.count == rawScoreEdges.count + 1 else {
            throw ModelError(.invalid, "error scale: \(priceFactors.count) price factors for \(rawScoreEdges.count) bin edges")
        }
        guard rawScoreEdges.allSatisfy(\.isFinite), zip(rawScoreEdges, rawScoreEdges.dropFirst()).allSatisfy({ $0 < $1 })
        else { throw ModelError(.invalid, "error scale: bin edges are not finite and strictly ascending") }
        let all = priceFactors + gradeFactors.flatMap(\.factors)
        guard all.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw ModelError(.invalid, "error scale: a factor is not a finite positive number")
        }
        guard gradeFactors.allSatisfy({ $0.feature >= 0 && $0.factors.count <= 256 }) else {
            throw ModelError(.invalid, "error scale: a grade table has a negative feature or more than 256 codes")
        }
        self.rawScoreEdges = rawScoreEdges
        self.priceFactors = priceFactors
        self.gradeFactors = gradeFactors
    }

    /// The predicted-price bin of a raw score (0 …< priceFactors.count; NaN goes to bin 0).
    @inlinable
    public func bin(raw: Double) -> Int {
        var bin = 0
        // A handful of edges: a linear scan beats a binary search's branches.
        for edge in rawScoreEdges where raw >= edge { bin += 1 }
        return bin
    }

    /// The scale of a row with raw score `raw`; `feature(f)` gives its value of feature f.
    @inlinable
    public func scale(raw: Double, feature: (Int) -> Double) -> Double {
        var scale = priceFactors[bin(raw: raw)]
        for grade in gradeFactors {
            let code = feature(grade.feature)
            if code >= 0, code < Double(grade.factors.count), code == code.rounded(.down) {
                scale *= grade.factors[Int(code)]
            }
        }
        return scale
    }

    /// Throws unless every grade feature is inside a `featureCount`-long feature vector.
    public func validate(featureCount: Int) throws(ModelError) {
        if let bad = gradeFactors.first(where: { $0.feature >= featureCount }) {
            throw ModelError(.invalid, "error scale: grade feature \(bad.feature) outside 0..<\(featureCount)")
        }
    }
}
