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
        var scores = [Double](repeating: .nan, count: rows.count)
        for fold in 0..<folds {
            let held = rows.indices.filter { foldOf[$0] == fold }
            let train = rows.indices.filter { foldOf[$0] != fold }.map { rows[$0] }
            let model = GradientBooster.boost(
                columns: columns, target: target, trainRows: train, validationRows: [], configuration: c,
                featureNames: Ensemble.diamondFeatureNames, progress: nil
            ).ensemble
            let raw = model.rawScores(columns: columns.map { column in held.map { column[rows[$0]] } })
            for (i, position) in held.enumerated() { scores[position] = raw[i] }
        }
        return scores
    }
}
