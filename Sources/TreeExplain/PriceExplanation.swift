import TreeModel

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Contributions put in terms a person reads: start from the average price and apply each
/// feature's effect in turn, largest first.
///
/// On a log-price model a contribution c is a factor e^c on the price ("carat ×3.1"), and the
/// factors multiply: exp(base) · Π e^(c_i) is the predicted price. The dollars of each step are
/// the change it makes to the running price, so they depend on the order (largest effect
/// first here); the factors do not. On a price model contributions are dollars already and
/// the factor is the step's ratio.
public struct PriceExplanation: Sendable, Equatable {
    /// One feature's step from the running price.
    public struct Step: Sendable, Equatable {
        public var feature: String
        /// On the raw scale (log price or dollars).
        public var contribution: Double
        /// The price after this step divided by the price before it.
        public var factor: Double
        /// Dollars this step adds (negative: takes away).
        public var dollars: Double
        /// The running price after this step.
        public var priceAfter: Double
    }

    /// The price of the average diamond (the base value turned into dollars).
    public var basePrice: Double
    /// The steps, largest effect first.
    public var steps: [Step]
    /// The price after every step: the prediction.
    public var price: Double { steps.last?.priceAfter ?? basePrice }

    public init(baseValue: Double, contributions: [Double], featureNames: [String], target: TargetTransform) {
        let order = contributions.indices.sorted { abs(contributions[$0]) > abs(contributions[$1]) || (abs(contributions[$0]) == abs(contributions[$1]) && $0 < $1) }
        basePrice = target == .logPrice ? exp(baseValue) : baseValue
        var raw = baseValue
        var price = basePrice
        steps = []
        for i in order {
            raw += contributions[i]
            let after = target == .logPrice ? exp(raw) : raw
            steps.append(Step(
                feature: featureNames[i], contribution: contributions[i],
                factor: target == .logPrice ? exp(contributions[i]) : (price != 0 ? after / price : .nan),
                dollars: after - price, priceAfter: after))
            price = after
        }
    }
}
