import Dispatch
import Foundation
import Synchronization
import TreeModel

/// Out-of-fold raw scores: every row scored by a model that did not train on it.
///
/// The price ranges' error scale needs residuals that look like the served model's errors on
/// new stones. The final model's own training residuals under-rate rare stones' error (the trees
/// fit those rows), and the early-stopping validation rows are few (4,300 on the bundled data,
/// 30–40 per rare grade). K fold models, each trained like the final model on the other K − 1
/// folds of its training rows, give an honest residual for every training row instead
/// (docs/TRAINING.md, "Price ranges").
enum OutOfFoldScores {
    /// Raw scores of `rows` (indices into `columns` and `target`), in the order of `rows`: row
    /// i's score comes from the model trained on the folds that do not hold it, for `rounds`
    /// rounds with `configuration`'s parameters (no early stopping, so no row's label picks a
    /// round). Folds are drawn with the configuration's seed. Nil when a fold model would have
    /// fewer than 2 × min_data_in_leaf rows.
    static func rawScores(
        columns: [[Double]], target: [Double], rows: [Int], folds: Int, rounds: Int,
        configuration: TrainingConfiguration
    ) -> [Double]? {
        precondition(folds >= 2 && rounds >= 1)
        let foldTrainRows = rows.count - (rows.count + folds - 1) / folds
        guard foldTrainRows >= 2 * configuration.minDataInLeaf else { return nil }
        var random = SeededRandom(seed: configuration.seed ^ 0xF01D_5C0E)
        var foldOf = [Int](repeating: 0, count: rows.count)
        for (i, position) in random.permutation(rows.count).enumerated() { foldOf[position] = i % folds }

        var c = configuration
        c.rounds = rounds
        c.earlyStoppingRounds = 0
        // The fold models train at once, each on its share of the threads (at least one): a
        // tree's inner loops hand out microsecond tasks, so one trainer gains far less from a
        // second thread than a second trainer does. Each fold model's result depends only on
        // its rows and its thread count, so the scores stay deterministic.
        let threads = configuration.threads > 0 ? configuration.threads : System.coreCount
        c.threads = max(1, threads / folds)
        let foldConfiguration = c
        let foldOfRow = foldOf
        let held = (0..<folds).map { fold in rows.indices.filter { foldOfRow[$0] == fold } }
        let foldScores = FoldScores(count: folds)
        @Sendable func scoreFold(_ fold: Int) {
            let train = rows.indices.filter { foldOfRow[$0] != fold }.map { rows[$0] }
            let model = GradientBooster.boost(
                columns: columns, target: target, trainRows: train, validationRows: [], configuration: foldConfiguration,
                featureNames: Ensemble.diamondFeatureNames, progress: nil
            ).ensemble
            foldScores.set(fold, model.rawScores(columns: columns.map { column in held[fold].map { column[rows[$0]] } }))
        }
        if threads == 1 {
            for fold in 0..<folds { scoreFold(fold) }
        } else {
            // Threads of their own rather than Dispatch's pool, which runs only one per core:
            // three folds on two cores share them instead of the third waiting alone.
            let done = DispatchSemaphore(value: 0)
            for fold in 0..<folds {
                Thread {
                    scoreFold(fold)
                    done.signal()
                }.start()
            }
            for _ in 0..<folds { done.wait() }
        }
        var scores = [Double](repeating: .nan, count: rows.count)
        for fold in 0..<folds {
            for (i, position) in held[fold].enumerated() { scores[position] = foldScores.scores(fold)[i] }
        }
        return scores
    }
}

/// Each fold model's raw scores of its held-out rows, written by the thread that trained it.
private final class FoldScores: Sendable {
    private let byFold: Mutex<[[Double]]>
    init(count: Int) { byFold = Mutex(Array(repeating: [], count: count)) }
    func set(_ fold: Int, _ scores: [Double]) { byFold.withLock { $0[fold] = scores } }
    func scores(_ fold: Int) -> [Double] { byFold.withLock { $0[fold] } }
}
