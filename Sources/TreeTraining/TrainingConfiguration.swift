import TreeModel

/// Parameters of one training run. The names and defaults follow LightGBM's where the meaning
/// is the same, so settings carry over (num_leaves, max_depth, min_data_in_leaf, …).
public struct TrainingConfiguration: Sendable, Equatable, Codable {
    /// Maximum number of boosting rounds (trees).
    public var rounds: Int
    /// Shrinkage applied to every leaf value.
    public var learningRate: Double
    /// Maximum leaves per tree (leaf-wise growth stops there).
    public var numLeaves: Int
    /// Maximum depth of a tree; 0 means no limit.
    public var maxDepth: Int
    /// Minimum number of training rows in a leaf.
    public var minDataInLeaf: Int
    /// Minimum sum of hessians in a leaf (with L2 every row has hessian 1).
    public var minSumHessianInLeaf: Double
    /// L2 regularisation on leaf values.
    public var lambdaL2: Double
    /// Minimum loss reduction for a split.
    public var minGainToSplit: Double
    /// Fraction of features each tree may split on (sampled per tree).
    public var featureFraction: Double
    /// Fraction of rows each tree trains on (sampled without replacement); 1 uses all rows.
    public var baggingFraction: Double
    /// Resample the bagged rows every this many rounds.
    public var baggingFrequency: Int
    /// Maximum bins per feature (at most 255).
    public var maxBin: Int
    /// Stop when the validation loss has not improved for this many rounds; 0 turns early
    /// stopping off (and no validation split is held out).
    public var earlyStoppingRounds: Int
    /// Fraction of the data held out for early stopping (when it is on).
    public var validationFraction: Double
    /// Fraction of the data held out to calibrate price ranges; 0 trains an uncalibrated model.
    public var calibrationFraction: Double
    /// Folds of out-of-fold models whose residuals fit the price ranges' error scale (each
    /// trained like the final model on the other folds of its training rows; K folds cost
    /// about K − 1 more fits, so 3 about doubles a run's time). 0 fits the scale on the validation rows instead (or, without
    /// them, on the training residuals), as models before it did.
    public var rangeFolds: Int
    /// The scale the trees fit: log(price) (the default) or the price itself.
    public var target: TargetTransform
    /// Seed of every random choice (splits of the data, feature and row sampling).
    public var seed: UInt64
    /// Worker threads; 0 uses every core. Results are identical for a given seed and thread count.
    public var threads: Int

    public init(
        rounds: Int = 1000, learningRate: Double = 0.05, numLeaves: Int = 63, maxDepth: Int = 8,
        minDataInLeaf: Int = 20, minSumHessianInLeaf: Double = 1e-3, lambdaL2: Double = 0,
        minGainToSplit: Double = 0, featureFraction: Double = 1, baggingFraction: Double = 1,
        baggingFrequency: Int = 1, maxBin: Int = 255, earlyStoppingRounds: Int = 50,
        validationFraction: Double = 0.1, calibrationFraction: Double = 0.05, rangeFolds: Int = 3,
        target: TargetTransform = .logPrice, seed: UInt64 = 42, threads: Int = 0
    ) {
        self.rounds = rounds
        self.learningRate = learningRate
        self.numLeaves = numLeaves
        self.maxDepth = maxDepth
        self.minDataInLeaf = minDataInLeaf
        self.minSumHessianInLeaf = minSumHessianInLeaf
        self.lambdaL2 = lambdaL2
        self.minGainToSplit = minGainToSplit
        self.featureFraction = featureFraction
        self.baggingFraction = baggingFraction
        self.baggingFrequency = baggingFrequency
        self.maxBin = maxBin
        self.earlyStoppingRounds = earlyStoppingRounds
        self.validationFraction = validationFraction
        self.calibrationFraction = calibrationFraction
        self.rangeFolds = rangeFolds
        self.target = target
        self.seed = seed
        self.threads = threads
    }

    /// Checks every parameter, naming the first one out of range.
    public func validate() throws(TrainingError) {
        func require(_ ok: Bool, _ message: String) throws(TrainingError) {
            if !ok { throw TrainingError(.invalidConfiguration, message) }
        }
        try require(rounds >= 1, "rounds must be at least 1, got \(rounds)")
        try require(learningRate > 0 && learningRate <= 1, "learning rate must be in (0, 1], got \(learningRate)")
        try require(numLeaves >= 2 && numLeaves <= 4096, "num_leaves must be in 2...4096, got \(numLeaves)")
        try require(maxDepth >= 0, "max_depth must be 0 (no limit) or positive, got \(maxDepth)")
        try require(minDataInLeaf >= 1, "min_data_in_leaf must be at least 1, got \(minDataInLeaf)")
        try require(minSumHessianInLeaf >= 0, "min_sum_hessian_in_leaf must be >= 0, got \(minSumHessianInLeaf)")
        try require(lambdaL2 >= 0, "lambda_l2 must be >= 0, got \(lambdaL2)")
        try require(minGainToSplit >= 0, "min_gain_to_split must be >= 0, got \(minGainToSplit)")
        try require(featureFraction > 0 && featureFraction <= 1, "feature_fraction must be in (0, 1], got \(featureFraction)")
        try require(baggingFraction > 0 && baggingFraction <= 1, "bagging_fraction must be in (0, 1], got \(baggingFraction)")
        try require(baggingFrequency >= 1, "bagging_freq must be at least 1, got \(baggingFrequency)")
        try require(maxBin >= 2 && maxBin <= 255, "max_bin must be in 2...255, got \(maxBin)")
        try require(earlyStoppingRounds >= 0, "early stopping rounds must be >= 0, got \(earlyStoppingRounds)")
        try require(validationFraction > 0 && validationFraction < 0.5, "validation fraction must be in (0, 0.5), got \(validationFraction)")
        try require(calibrationFraction >= 0 && calibrationFraction < 0.5, "calibration fraction must be in [0, 0.5), got \(calibrationFraction)")
        try require(rangeFolds == 0 || (rangeFolds >= 2 && rangeFolds <= 20), "range folds must be 0 or in 2...20, got \(rangeFolds)")
        try require(threads >= 0 && threads <= 256, "threads must be in 0...256, got \(threads)")
    }
}

extension TrainingConfiguration {
    /// Decodes every field; `rangeFolds`, added later, takes today's default when absent, so
    /// configurations stored by older builds still decode (a retrain reuses them).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            rounds: try c.decode(Int.self, forKey: .rounds), learningRate: try c.decode(Double.self, forKey: .learningRate),
            numLeaves: try c.decode(Int.self, forKey: .numLeaves), maxDepth: try c.decode(Int.self, forKey: .maxDepth),
            minDataInLeaf: try c.decode(Int.self, forKey: .minDataInLeaf),
            minSumHessianInLeaf: try c.decode(Double.self, forKey: .minSumHessianInLeaf),
            lambdaL2: try c.decode(Double.self, forKey: .lambdaL2), minGainToSplit: try c.decode(Double.self, forKey: .minGainToSplit),
            featureFraction: try c.decode(Double.self, forKey: .featureFraction),
            baggingFraction: try c.decode(Double.self, forKey: .baggingFraction),
            baggingFrequency: try c.decode(Int.self, forKey: .baggingFrequency), maxBin: try c.decode(Int.self, forKey: .maxBin),
            earlyStoppingRounds: try c.decode(Int.self, forKey: .earlyStoppingRounds),
            validationFraction: try c.decode(Double.self, forKey: .validationFraction),
            calibrationFraction: try c.decode(Double.self, forKey: .calibrationFraction),
            rangeFolds: try c.decodeIfPresent(Int.self, forKey: .rangeFolds) ?? TrainingConfiguration().rangeFolds,
            target: try c.decode(TargetTransform.self, forKey: .target), seed: try c.decode(UInt64.self, forKey: .seed),
            threads: try c.decode(Int.self, forKey: .threads))
    }
}
