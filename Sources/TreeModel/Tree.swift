/// One regression tree as parallel arrays (the treelite layout): internal nodes `0..<internalCount`,
/// leaves `0..<leafCount`.
///
/// A child reference `c` is an internal node when `c >= 0` and the leaf `~c` when `c < 0`.
/// Every internal child has a larger index than its parent, so a walk always terminates; the
/// decoder checks this (and that every node and leaf is reached exactly once).
/// A tree with no internal nodes is a single leaf.
public struct Tree: Sendable, Equatable {
    /// Feature index tested at each internal node.
    public var splitFeature: [Int32]
    /// Threshold of each internal node's test.
    public var threshold: [Double]
    /// Child taken when the test is true (the value is below the threshold).
    public var leftChild: [Int32]
    /// Child taken when the test is false.
    public var rightChild: [Int32]
    /// How each internal node compares and where a missing value goes.
    public var decision: [DecisionType]
    /// Loss reduction of each split (for feature importance).
    public var splitGain: [Double]
    /// Training weight (sum of hessians) reaching each internal node; TreeSHAP needs it.
    public var internalCover: [Double]
    /// Output of each leaf (already scaled by the learning rate).
    public var leafValue: [Double]
    /// Training weight reaching each leaf.
    public var leafCover: [Double]
    /// Category sets of the categorical nodes (imported models): bit `c % 32` of word `c / 32` is
    /// set when category `c` is in the set; a categorical node's `threshold` is its set's index.
    public var categorySets: [[UInt32]]

    /// A tree that is a single leaf.
    public init(constant value: Double, cover: Double = 0) {
        self.init(
            splitFeature: [], threshold: [], leftChild: [], rightChild: [], decision: [],
            splitGain: [], internalCover: [], leafValue: [value], leafCover: [cover])
    }

    public init(
        splitFeature: [Int32], threshold: [Double], leftChild: [Int32], rightChild: [Int32],
        decision: [DecisionType], splitGain: [Double], internalCover: [Double],
        leafValue: [Double], leafCover: [Double], categorySets: [[UInt32]] = []
    ) {
        self.splitFeature = splitFeature
        self.threshold = threshold
        self.leftChild = leftChild
        self.rightChild = rightChild
        self.decision = decision
        self.splitGain = splitGain
        self.internalCover = internalCover
        self.leafValue = leafValue
        self.leafCover = leafCover
        self.categorySets = categorySets
    }

    /// Number of internal (split) nodes.
    public var internalCount: Int { splitFeature.count }
    /// Number of leaves.
    public var leafCount: Int { leafValue.count }

    /// The leaf a feature vector falls into: the reference walk every fast path must agree with.
    @inlinable
    public func leafIndex(_ features: UnsafeBufferPointer<Double>) -> Int {
        if splitFeature.isEmpty { return 0 }
        var node = 0
        while true {
            let value = features[Int(splitFeature[node])]
            let next = goesLeft(node: node, value) ? leftChild[node] : rightChild[node]
            if next < 0 { return Int(~next) }
            node = Int(next)
        }
    }

    /// Adds this tree's value for each of `rows` row-major feature vectors (`stride` values
    /// apart) to `scores`: the walk of `leafIndex`, with the arrays' storage taken once for all
    /// rows. `predict` per row retained and released every array on each call, which made
    /// scoring a trial's validation rows half of a tuning run's time.
    @inlinable
    public func addValues(rowMajor block: UnsafePointer<Double>, stride: Int, rows: Int, to scores: UnsafeMutablePointer<Double>) {
        if splitFeature.isEmpty || !categorySets.isEmpty {
            for r in 0..<rows { scores[r] += predict(UnsafeBufferPointer(start: block + r * stride, count: stride)) }
            return
        }
        splitFeature.withUnsafeBufferPointer { feature in
            threshold.withUnsafeBufferPointer { threshold in
                decision.withUnsafeBufferPointer { decision in
                    leftChild.withUnsafeBufferPointer { left in
                        rightChild.withUnsafeBufferPointer { right in
                            leafValue.withUnsafeBufferPointer { value in
                                for r in 0..<rows {
                                    let row = block + r * stride
                                    var node = 0
                                    while true {
                                        let goLeft = decision[node].goesLeft(row[Int(feature[node])], threshold: threshold[node])
                                        let next = goLeft ? left[node] : right[node]
                                        if next < 0 {
                                            scores[r] += value[Int(~next)]
                                            break
                                        }
                                        node = Int(next)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Whether `value` takes internal node `node`'s left branch (numeric or categorical).
    @inlinable
    public func goesLeft(node: Int, _ value: Double) -> Bool {
        let d = decision[node]
        if !d.isCategorical { return d.goesLeft(value, threshold: threshold[node]) }
        return d.categoryGoesLeft(value, set: categorySets[Int(threshold[node])])
    }

    /// The leaf value a feature vector falls into.
    @inlinable
    public func predict(_ features: UnsafeBufferPointer<Double>) -> Double {
        leafValue[leafIndex(features)]
    }
}

/// How an internal node tests its feature, packed in one byte.
///
/// Bit 0: a missing value (NaN) goes left. Bits 1–2: the comparison (`ComparisonKind`).
/// Bit 3 (with `lessOrEqual` only): values within ±1e-35 count as missing too (LightGBM's
/// missing type Zero). Other bits are reserved and must be zero.
public struct DecisionType: Sendable, Equatable, Hashable {
    /// The packed byte as serialised.
    public let rawValue: UInt8

    /// Comparison used by a node.
    public enum ComparisonKind: UInt8, Sendable {
        /// `value <= threshold` in double precision (Loupe's own trees and LightGBM).
        case lessOrEqual = 0
        /// `Float(value) < Float(threshold)` (XGBoost, which works in float32).
        case lessThanFloat32 = 1
        /// LightGBM's categorical split: left when the value's category (truncated toward zero)
        /// is in the node's set; NaN, negative and out-of-`Int32` values go right.
        case categoryGoesLeft = 2
        /// XGBoost's categorical split, in float32: right when the category is in the node's set;
        /// negative values and values from 2^24 up go left; NaN follows the missing bit.
        case categoryGoesRight = 3
    }

    /// LightGBM's `kZeroThreshold` (1e-35f widened to double): |x| within it is "zero".
    public static let zeroThreshold = Double(Float(1e-35))

    public init?(rawValue: UInt8) {
        guard rawValue & ~0b1111 == 0, ComparisonKind(rawValue: (rawValue >> 1) & 0b11) != nil else { return nil }
        guard rawValue & 0b1000 == 0 || (rawValue >> 1) & 0b11 == 0 else { return nil }
        self.rawValue = rawValue
    }

    public init(comparison: ComparisonKind, missingGoesLeft: Bool, zeroIsMissing: Bool = false) {
        precondition(!zeroIsMissing || comparison == .lessOrEqual, "zero-as-missing applies to <= splits only")
        rawValue = comparison.rawValue << 1 | (missingGoesLeft ? 1 : 0) | (zeroIsMissing ? 0b1000 : 0)
    }

    /// The decision of Loupe's own trainer: `<=`, missing values to the right.
    public static let standard = DecisionType(comparison: .lessOrEqual, missingGoesLeft: false)

    public var missingGoesLeft: Bool { rawValue & 1 != 0 }
    public var comparison: ComparisonKind { ComparisonKind(rawValue: (rawValue >> 1) & 0b11)! }
    /// Whether values within ±`zeroThreshold` go where missing values go.
    public var zeroIsMissing: Bool { rawValue & 0b1000 != 0 }
    /// Whether the node tests a category set rather than a threshold.
    @inlinable
    public var isCategorical: Bool { rawValue & 0b100 != 0 }

    /// Whether `value` takes the left branch of a threshold node.
    @inlinable
    public func goesLeft(_ value: Double, threshold: Double) -> Bool {
        if value.isNaN { return rawValue & 1 != 0 }
        if rawValue >> 1 == 0 { return value <= threshold }
        if rawValue >> 1 == 1 { return Float(value) < Float(threshold) }
        // Zero counts as missing (LightGBM missing type Zero).
        if value >= -Self.zeroThreshold && value <= Self.zeroThreshold { return rawValue & 1 != 0 }
        return value <= threshold
    }

    /// Whether `value` takes the left branch of a categorical node with category bitset `set`.
    @inlinable
    public func categoryGoesLeft(_ value: Double, set: [UInt32]) -> Bool {
        func contains(_ c: Int) -> Bool {
            let word = c >> 5
            return word < set.count && (set[word] >> UInt32(c & 31)) & 1 != 0
        }
        if comparison == .categoryGoesLeft {
            // C's (int)x: NaN and out-of-range give INT_MIN on x86, so they go right with the negatives.
            guard !value.isNaN, value > -1, value < 2_147_483_648 else { return false }
            return contains(Int(value.rounded(.towardZero)))
        }
        if value.isNaN { return rawValue & 1 != 0 }
        let f = Float(value)
        guard f >= 0, f < 16_777_216 else { return true }
        return !contains(Int(f.rounded(.towardZero)))
    }
}
