import TreeTraining

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The parameters a tuner may set, each with a range. Proposals live in the unit cube
/// [0, 1]^d; a dimension maps its coordinate to a value (linearly, on a log scale, rounded
/// to an integer, or onto a list of choices).
public struct SearchSpace: Sendable, Codable, Equatable {
    /// A trainer parameter the tuner can set.
    public enum Parameter: String, Sendable, Codable, CaseIterable {
        case learningRate, numLeaves, maxDepth, minDataInLeaf, featureFraction, baggingFraction
        case lambdaL2, minGainToSplit, maxBin
    }

    /// How a unit coordinate becomes a value.
    public enum Range: Sendable, Codable, Equatable {
        /// A real number, uniform on [low, high] or on a log scale.
        case real(low: Double, high: Double, log: Bool)
        /// An integer in low...high, uniform or on a log scale.
        case integer(low: Int, high: Int, log: Bool)
        /// One of the listed values, equally likely a priori.
        case choice([Double])
    }

    public struct Dimension: Sendable, Codable, Equatable {
        public var parameter: Parameter
        public var range: Range

        public init(_ parameter: Parameter, _ range: Range) {
            self.parameter = parameter
            self.range = range
        }

        /// The value at unit coordinate `u` (clamped to [0, 1]).
        public func value(at u: Double) -> Double {
            let u = min(max(u, 0), 1)
            switch range {
            case .real(let low, let high, let isLog):
                return isLog ? exp(log(low) + u * (log(high) - log(low))) : low + u * (high - low)
            case .integer(let low, let high, let isLog):
                let lo = Double(low) - 0.5
                let hi = Double(high) + 0.5
                let v = isLog ? exp(log(max(lo, 0.5)) + u * (log(hi) - log(max(lo, 0.5)))) : lo + u * (hi - lo)
                return Double(min(max(Int(v.rounded()), low), high))
            case .choice(let values):
                return values[min(values.count - 1, Int(u * Double(values.count)))]
            }
        }
    }

    public var dimensions: [Dimension]

    public init(dimensions: [Dimension]) {
        self.dimensions = dimensions
    }

    /// Ranges that suit the diamonds data (tens of thousands of rows, nine features).
    public static let diamonds = SearchSpace(dimensions: [
        Dimension(.learningRate, .real(low: 0.02, high: 0.3, log: true)),
        Dimension(.numLeaves, .integer(low: 15, high: 255, log: true)),
        Dimension(.maxDepth, .choice([0, 6, 8, 10, 12])),
        Dimension(.minDataInLeaf, .integer(low: 3, high: 100, log: true)),
        Dimension(.featureFraction, .real(low: 0.5, high: 1, log: false)),
        Dimension(.baggingFraction, .real(low: 0.5, high: 1, log: false)),
        Dimension(.lambdaL2, .real(low: 1e-3, high: 10, log: true)),
        Dimension(.minGainToSplit, .real(low: 1e-8, high: 1e-2, log: true)),
        Dimension(.maxBin, .choice([63, 127, 255])),
    ])

    /// The parameter values at a unit point.
    public func values(at unit: [Double]) -> [Parameter: Double] {
        var values: [Parameter: Double] = [:]
        for (d, dimension) in dimensions.enumerated() { values[dimension.parameter] = dimension.value(at: unit[d]) }
        return values
    }

    /// `base` with the parameters at a unit point.
    public func configuration(at unit: [Double], base: TrainingConfiguration) -> TrainingConfiguration {
        var c = base
        for (parameter, v) in values(at: unit) {
            switch parameter {
            case .learningRate: c.learningRate = v
            case .numLeaves: c.numLeaves = Int(v)
            case .maxDepth: c.maxDepth = Int(v)
            case .minDataInLeaf: c.minDataInLeaf = Int(v)
            case .featureFraction: c.featureFraction = v
            case .baggingFraction: c.baggingFraction = v
            case .lambdaL2: c.lambdaL2 = v
            case .minGainToSplit: c.minGainToSplit = v
            case .maxBin: c.maxBin = Int(v)
            }
        }
        return c
    }
}
