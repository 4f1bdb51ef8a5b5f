import LoupeUtilities
import TreeModel

/// Progress of a training run, reported after every round.
public struct TrainingProgress: Sendable {
    /// Rounds completed so far.
    public var round: Int
    /// The most rounds the run will train.
    public var totalRounds: Int
    /// Root mean squared error on the training rows, on the target's scale.
    public var trainLoss: Double
    /// The same on the early-stopping validation rows, if there are any.
    public var validationLoss: Double?
    /// The round with the best validation loss so far.
    public var bestRound: Int
    /// Seconds since training started.
    public var elapsedSeconds: Double
    /// Estimated seconds left if every remaining round is trained.
    public var etaSeconds: Double
}

/// What boosting produced: the trees and the curve that led to them.
struct BoostingResult {
    var ensemble: Ensemble
    var featureBins: [FeatureBins]
    var trainLossCurve: [Double]
    var validationLossCurve: [Double]
    var bestRound: Int
    var roundsTrained: Int
    var seconds: Double
}

/// Gradient boosting with L2 loss on rows of feature columns: the training loop around the tree learner.
enum GradientBooster {
    /// Trains on `trainRows` of `columns` / `target` (target already on the model's raw scale),
    /// stopping early on `validationRows` when configured.
    static func boost(
        columns: [[Double]], target: [Double], trainRows: [Int], validationRows: [Int],
        configuration c: TrainingConfiguration, featureNames: [String],
        progress: ((TrainingProgress) -> Void)?, shouldStop: ((TrainingProgress) -> Bool)? = nil
    ) -> BoostingResult {
        let clock = ContinuousClock()
        let start = clock.now
        let threads = c.threads > 0 ? c.threads : System.coreCount
        let featureCount = columns.count
        let featureBins = columns.map { column in
            FeatureBins(fitting: trainRows.map { column[$0] }, maxBin: c.maxBin)
        }
        let train = BinnedRows(columns: columns, rows: trainRows, featureBins: featureBins)
        let valid = BinnedRows(columns: columns, rows: validationRows, featureBins: featureBins)
        let n = trainRows.count
        let y = trainRows.map { target[$0] }
        let yValid = validationRows.map { target[$0] }
        let base = y.reduce(0, +) / Double(n)

        var score = [Double](repeating: base, count: n)
        var validScore = [Double](repeating: base, count: yValid.count)
        var gradients = [Double](repeating: 0, count: n)
        let pool = SpinPool(threads: threads)
        defer { pool.shutdown() }
        let learner = TreeLearner(
            data: train, binCounts: featureBins.map(\.count), configuration: c, pool: pool)
        var random = SeededRandom(seed: c.seed)
        let allRows = (0..<Int32(n)).map { $0 }
        var sample = allRows
        var inBag = [Bool](repeating: true, count: n)
        let bagging = c.baggingFraction < 1
        let bagSize = max(1, Int((Double(n) * c.baggingFraction).rounded()))
        let featuresPerTree = max(1, Int((Double(featureCount) * c.featureFraction).rounded()))

        var trees: [BinnedTree] = []
        var trainCurve: [Double] = []
        var validCurve: [Double] = []
        var bestRound = 0
        var bestLoss = Double.infinity

        // L2 gradients (score − y) for the next tree, and in the same pass the RMSE of the
        // current scores: one sweep over the rows per round instead of two.
        func refreshGradients() -> Double {
            var sum = 0.0
            score.withUnsafeBufferPointer { s in
                y.withUnsafeBufferPointer { y in
                    gradients.withUnsafeMutableBufferPointer { g in
                        for i in 0..<n {
                            let d = s[i] - y[i]
                            g[i] = d
                            sum += d * d
                        }
                    }
                }
            }
            return (sum / Double(max(n, 1))).squareRoot()
        }
        _ = refreshGradients()

        for round in 0..<c.rounds {
            if bagging && round % c.baggingFrequency == 0 {
                sample = random.sample(bagSize, of: n).map { Int32($0) }
                inBag = [Bool](repeating: false, count: n)
                for r in sample { inBag[Int(r)] = true }
            }
            var allowed = [Bool](repeating: true, count: featureCount)
            if featuresPerTree < featureCount {
                allowed = [Bool](repeating: false, count: featureCount)
                for f in random.sample(featuresPerTree, of: featureCount) { allowed[f] = true }
            }
            let tree = sample.withUnsafeBufferPointer { rows in
                gradients.withUnsafeBufferPointer { g in
                    learner.grow(sampleRows: rows, gradients: g.baseAddress!, featureAllowed: allowed, shrinkage: c.learningRate)
                }
            }
            // In-bag rows: add each leaf's value over its partition range; others: walk the tree.
            let partition = learner.partitionedRows
            score.withUnsafeMutableBufferPointer { s in
                for (leaf, range) in tree.leafRows.enumerated() {
                    let v = tree.leafValue[leaf]
                    for i in range { s[Int(partition[i])] += v }
                }
                if bagging { tree.addLeafValues(of: train, to: s, skip: inBag) }
            }
            validScore.withUnsafeMutableBufferPointer { tree.addLeafValues(of: valid, to: $0) }
            trees.append(tree)

            let trainLoss = refreshGradients()
            trainCurve.append(trainLoss)
            var validLoss: Double?
            if !yValid.isEmpty {
                let loss = rootMeanSquare(validScore, yValid)
                validCurve.append(loss)
                validLoss = loss
                if loss < bestLoss {
                    bestLoss = loss
                    bestRound = round + 1
                }
            } else {
                bestRound = round + 1
            }
            if progress != nil || shouldStop != nil {
                let elapsed = (clock.now - start).seconds
                let done = Double(round + 1)
                let report = TrainingProgress(
                    round: round + 1, totalRounds: c.rounds, trainLoss: trainLoss, validationLoss: validLoss,
                    bestRound: bestRound, elapsedSeconds: elapsed,
                    etaSeconds: elapsed / done * Double(c.rounds - round - 1))
                progress?(report)
                if let shouldStop, shouldStop(report) { break }
            }
            if c.earlyStoppingRounds > 0 && !yValid.isEmpty && round + 1 - bestRound >= c.earlyStoppingRounds { break }
        }
        let roundsTrained = trees.count
        let kept = trees.prefix(bestRound)
        let ensemble = Ensemble(
            trees: kept.map { $0.lowered(bins: featureBins) }, baseScore: base,
            featureNames: featureNames, target: c.target)
        return BoostingResult(
            ensemble: ensemble, featureBins: featureBins, trainLossCurve: trainCurve, validationLossCurve: validCurve,
            bestRound: bestRound, roundsTrained: roundsTrained, seconds: (clock.now - start).seconds)
    }

    static func rootMeanSquare(_ a: [Double], _ b: [Double]) -> Double {
        var sum = 0.0
        for i in 0..<a.count {
            let d = a[i] - b[i]
            sum += d * d
        }
        return (sum / Double(max(a.count, 1))).squareRoot()
    }
}
