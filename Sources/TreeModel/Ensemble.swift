import DiamondSchema

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A trained gradient-boosted ensemble: the model IR that is stored, served and imported.
///
/// The raw score of a feature vector is `baseScore` plus the leaf values of every tree, summed
/// in tree order in double precision. `target` says how a raw score becomes a price, and
/// `intervals` (when present) turns it into a calibrated range.
public struct Ensemble: Sendable, Equatable {
    /// The trees, summed in this order.
    public var trees: [Tree]
    /// Added to the sum of the trees (the mean target for L2).
    public var baseScore: Double
    /// Names of the input features, in the order of a feature vector.
    public var featureNames: [String]
    /// How a raw score maps to a price.
    public var target: TargetTransform
    /// Split-conformal calibration for price ranges, if the model was calibrated.
    public var intervals: ConformalIntervals?
    /// Free-form JSON describing how the model was made (parameters, metrics); not interpreted.
    public var metadata: String
    /// Sum in float32 (XGBoost's predictor does: base, then each tree's leaf, each add rounded to
    /// float) instead of double. Loupe's own and LightGBM's models sum in double.
    public var sumsInFloat32: Bool

    public init(
        trees: [Tree], baseScore: Double, featureNames: [String], target: TargetTransform,
        intervals: ConformalIntervals? = nil, metadata: String = "", sumsInFloat32: Bool = false
    ) {
        self.trees = trees
        self.baseScore = baseScore
        self.featureNames = featureNames
        self.target = target
        self.intervals = intervals
        self.metadata = metadata
        self.sumsInFloat32 = sumsInFloat32
    }

    /// Feature names of a diamond model, in `Feature` order.
    public static let diamondFeatureNames = Feature.allCases.map(\.name)

    /// Number of features a feature vector must have.
    public var featureCount: Int { featureNames.count }

    /// The raw score (on the target's scale) of one feature vector: the reference predictor.
    public func rawScore(_ features: UnsafeBufferPointer<Double>) -> Double {
        precondition(features.count >= featureCount, "feature vector too short")
        if sumsInFloat32 { return rawScoreFloat32(features) }
        var sum = baseScore
        trees.withUnsafeBufferPointer { trees in
            for t in trees.indices { sum += trees[t].predict(features) }
        }
        return sum
    }

    private func rawScoreFloat32(_ features: UnsafeBufferPointer<Double>) -> Double {
        var sum = Float(baseScore)
        trees.withUnsafeBufferPointer { trees in
            for t in trees.indices { sum += Float(trees[t].predict(features)) }
        }
        return Double(sum)
    }

    /// The raw score of one feature vector.
    public func rawScore(_ features: [Double]) -> Double {
        features.withUnsafeBufferPointer { rawScore($0) }
    }

    /// Raw scores of many rows given as feature columns (`columns[f][row]`).
    ///
    /// Walks tree by tree over all rows, so each tree stays in cache; every row's sum runs in
    /// the same order as `rawScore`, so the results are bit-identical to it.
    public func rawScores(columns: [[Double]]) -> [Double] {
        precondition(columns.count >= featureCount, "need one column per feature")
        let rows = columns.first?.count ?? 0
        precondition(columns.allSatisfy { $0.count == rows }, "columns differ in length")
        if sumsInFloat32 {
            var row = [Double](repeating: 0, count: featureCount)
            return (0..<rows).map { r in
                for f in 0..<featureCount { row[f] = columns[f][r] }
                return rawScore(row)
            }
        }
        var scores = [Double](repeating: baseScore, count: rows)
        let blockSize = 1024
        var block = [Double](repeating: 0, count: blockSize * featureCount)
        var start = 0
        while start < rows {
            let end = min(rows, start + blockSize)
            // Transpose a block of rows into row-major feature vectors.
            for r in start..<end {
                for f in 0..<featureCount { block[(r - start) * featureCount + f] = columns[f][r] }
            }
            block.withUnsafeBufferPointer { block in
                scores.withUnsafeMutableBufferPointer { scores in
                    for tree in trees {
                        tree.addValues(rowMajor: block.baseAddress!, stride: featureCount, rows: end - start,
                                       to: scores.baseAddress! + start)
                    }
                }
            }
            start = end
        }
        return scores
    }

    /// Price and calibrated range for a diamond at `level` coverage (e.g. 0.9).
    public func estimate(_ diamond: Diamond, level: Double = ConformalIntervals.defaultLevel) -> PriceEstimate {
        let features = diamond.features
        return estimate(raw: rawScore(features), features: features, level: level)
    }

    /// Price and range for a row with raw score `raw` and feature vector `features`, at `level`
    /// coverage. The features matter only to a model whose ranges adapt to the stone.
    public func estimate(raw: Double, features: [Double], level: Double = ConformalIntervals.defaultLevel) -> PriceEstimate {
        precondition(intervals?.errorScale == nil || features.count >= featureCount, "feature vector too short")
        let quantile = intervals?.scoreQuantile(level: level)
        return estimate(raw: raw, quantile: quantile, level: level) { features[$0] }
    }

    /// Prices and ranges of many rows: their raw scores and their feature columns
    /// (`columns[f][row]`). The level's quantile is looked up once; per row a range costs a
    /// few table lookups.
    public func estimates(raw: [Double], columns: [[Double]], level: Double = ConformalIntervals.defaultLevel) -> [PriceEstimate] {
        precondition(intervals?.errorScale == nil || columns.count >= featureCount, "need one column per feature")
        let quantile = intervals?.scoreQuantile(level: level)
        var out: [PriceEstimate] = []
        out.reserveCapacity(raw.count)
        for row in raw.indices {
            out.append(estimate(raw: raw[row], quantile: quantile, level: level) { columns[$0][row] })
        }
        return out
    }

    @inline(__always)
    private func estimate(raw: Double, quantile: Double?, level: Double, feature: (Int) -> Double) -> PriceEstimate {
        let price = target.price(fromRaw: raw)
        guard let intervals, let quantile else {
            return PriceEstimate(price: price, low: price, high: price, level: nil)
        }
        let q = intervals.halfWidth(quantile: quantile, raw: raw, feature: feature)
        return PriceEstimate(
            price: price, low: target.price(fromRaw: raw - q), high: target.price(fromRaw: raw + q), level: level)
    }
}

/// A price with its range.
public struct PriceEstimate: Sendable, Equatable {
    /// Point estimate in dollars.
    public var price: Double
    /// Lower end of the range in dollars.
    public var low: Double
    /// Upper end of the range in dollars.
    public var high: Double
    /// The coverage level of the range, or nil when the model carries no calibration (low = high = price).
    public var level: Double?

    public init(price: Double, low: Double, high: Double, level: Double?) {
        self.price = price
        self.low = low
        self.high = high
        self.level = level
    }
}

/// The scale the model was trained on.
public enum TargetTransform: UInt8, Sendable, Equatable, CaseIterable {
    /// Trained on log(price): prices are multiplicative, and ranges are too.
    case logPrice = 0
    /// Trained on the price in dollars.
    case price = 1

    /// The training target for a price.
    @inlinable
    public func raw(fromPrice price: Double) -> Double {
        switch self {
        case .logPrice: log(price)
        case .price: price
        }
    }

    /// The price for a raw score (never negative).
    @inlinable
    public func price(fromRaw raw: Double) -> Double {
        switch self {
        case .logPrice: exp(raw)
        case .price: max(raw, 0)
        }
    }

    /// Name used in configuration and reports.
    public var name: String {
        switch self {
        case .logPrice: "log-price"
        case .price: "price"
        }
    }
}

extension TargetTransform: Codable {
    /// Parses "log-price" or "price".
    public init?(name: String) {
        guard let match = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = match
    }

    public init(from decoder: any Decoder) throws {
        let name = try decoder.singleValueContainer().decode(String.self)
        guard let value = TargetTransform(name: name) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "unknown target \"\(name)\""))
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(name)
    }
}
