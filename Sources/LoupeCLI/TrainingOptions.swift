import ArgumentParser
import TreeModel
import TreeTraining

/// The trainer's parameters as command-line options; defaults are `TrainingConfiguration`'s.
struct TrainingOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Maximum boosting rounds.")
    var rounds: Int = TrainingConfiguration().rounds
    @Option(parsing: .unconditional, help: "Shrinkage of each tree.")
    var learningRate: Double = TrainingConfiguration().learningRate
    @Option(parsing: .unconditional, help: "Maximum leaves per tree.")
    var numLeaves: Int = TrainingConfiguration().numLeaves
    @Option(parsing: .unconditional, help: "Maximum tree depth (0: no limit).")
    var maxDepth: Int = TrainingConfiguration().maxDepth
    @Option(parsing: .unconditional, help: "Minimum training rows per leaf.")
    var minDataInLeaf: Int = TrainingConfiguration().minDataInLeaf
    @Option(parsing: .unconditional, help: "Minimum sum of hessians per leaf (rows, for L2 loss).")
    var minSumHessianInLeaf: Double = TrainingConfiguration().minSumHessianInLeaf
    @Option(parsing: .unconditional, help: "L2 regularisation of leaf values.")
    var lambdaL2: Double = TrainingConfiguration().lambdaL2
    @Option(parsing: .unconditional, help: "Minimum loss reduction to split.")
    var minGainToSplit: Double = TrainingConfiguration().minGainToSplit
    @Option(parsing: .unconditional, help: "Fraction of features sampled per tree.")
    var featureFraction: Double = TrainingConfiguration().featureFraction
    @Option(parsing: .unconditional, help: "Fraction of rows sampled per tree (1: all).")
    var baggingFraction: Double = TrainingConfiguration().baggingFraction
    @Option(parsing: .unconditional, help: "Resample rows every this many rounds.")
    var baggingFreq: Int = TrainingConfiguration().baggingFrequency
    @Option(parsing: .unconditional, help: "Maximum bins per feature (2...255).")
    var maxBin: Int = TrainingConfiguration().maxBin
    @Option(parsing: .unconditional, help: "Stop after this many rounds without validation improvement (0: off, no validation split).")
    var earlyStopping: Int = TrainingConfiguration().earlyStoppingRounds
    @Option(parsing: .unconditional, help: "Fraction held out for early stopping.")
    var validationFraction: Double = TrainingConfiguration().validationFraction
    @Option(parsing: .unconditional, help: "Fraction held out to calibrate price ranges (0: no ranges).")
    var calibrationFraction: Double = TrainingConfiguration().calibrationFraction
    @Option(parsing: .unconditional, help: "Folds of out-of-fold models that fit the ranges' error scale (0: fit it on the validation rows).")
    var rangeFolds: Int = TrainingConfiguration().rangeFolds
    @Option(help: "What the trees fit: log-price or price.")
    var target: String = TrainingConfiguration().target.name
    @Option(parsing: .unconditional, help: "Seed of every random choice.")
    var seed: UInt64 = TrainingConfiguration().seed
    @Option(parsing: .unconditional, help: "Worker threads (0: every core).")
    var threads: Int = TrainingConfiguration().threads

    func configuration() throws -> TrainingConfiguration {
        guard let target = TargetTransform(name: target) else {
            throw CLIError("--target must be log-price or price, got \"\(target)\"")
        }
        let c = TrainingConfiguration(
            rounds: rounds, learningRate: learningRate, numLeaves: numLeaves, maxDepth: maxDepth,
            minDataInLeaf: minDataInLeaf, minSumHessianInLeaf: minSumHessianInLeaf, lambdaL2: lambdaL2, minGainToSplit: minGainToSplit,
            featureFraction: featureFraction, baggingFraction: baggingFraction, baggingFrequency: baggingFreq,
            maxBin: maxBin, earlyStoppingRounds: earlyStopping, validationFraction: validationFraction,
            calibrationFraction: calibrationFraction, rangeFolds: rangeFolds, target: target, seed: seed, threads: threads)
        try oneLine { try c.validate() }
        return c
    }
}
