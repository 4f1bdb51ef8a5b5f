import DataCleaning
import DiamondSchema
import Foundation
import Testing
import TreeModel
@testable import TreeTraining

@Suite struct OutOfFoldScoresTests {
    /// A configuration that memorises noise: small leaves, many of them, a large step.
    static let overfitting = TrainingConfiguration(
        rounds: 80, learningRate: 0.3, numLeaves: 31, maxDepth: 8, minDataInLeaf: 3, earlyStoppingRounds: 0,
        calibrationFraction: 0, seed: 3, threads: 1)

    /// Synthetic diamonds whose log-price noise is `fairNoise` times larger for cut Fair (1 in 8
    /// stones), as a model's error is larger for rare, irregular stones.
    static func table(rows: Int, seed: UInt64, fairNoise: Double) -> DiamondTable {
        var rng = SeededRandom(seed: seed)
        func uniform() -> Double { Double(rng.next() >> 11) / Double(1 << 53) }
        var table = DiamondTable()
        for row in 0..<rows {
            let carat = 0.2 + 2.5 * uniform()
            let cut = rng.below(8) == 0 ? Cut.fair : Cut(rawValue: UInt8(1 + rng.below(4)))!
            let x = 6.5 * carat.squareRoot()
            let diamond = Diamond(
                carat: carat, cut: cut, color: Color(rawValue: UInt8(rng.below(7)))!,
                clarity: Clarity(rawValue: UInt8(rng.below(8)))!, depth: 61 + uniform(), table: 55 + 4 * uniform(),
                x: x, y: x, z: 0.61 * x)
            let noise = 0.1 * (uniform() + uniform() + uniform() - 1.5) * (cut == .fair ? fairNoise : 1)
            table.append(diamond, price: exp(6 + 1.8 * log(carat * 3) + noise), sourceRow: row + 1)
        }
        return table
    }

    static func logTargets(_ table: DiamondTable) -> [Double] { table.price.map { log($0) } }

    /// Each row's score comes from a model that never saw it: on noisy rows an overfitting
    /// model's out-of-fold residuals are far larger than its training residuals (a model that
    /// had trained on the row would fit much of its noise, as the in-sample residuals show).
    @Test func scoresComeFromModelsThatDidNotTrainOnTheRow() throws {
        let data = Self.table(rows: 800, seed: 1, fairNoise: 1)
        let target = Self.logTargets(data)
        let rows = Array(0..<data.count)
        let outOfFold = try #require(OutOfFoldScores.rawScores(
            columns: data.columns, target: target, rows: rows, folds: 4, rounds: 80, configuration: Self.overfitting))
        #expect(outOfFold.count == rows.count && outOfFold.allSatisfy(\.isFinite))
        let inSample = GradientBooster.boost(
            columns: data.columns, target: target, trainRows: rows, validationRows: [], configuration: Self.overfitting,
            featureNames: Ensemble.diamondFeatureNames, progress: nil
        ).ensemble.rawScores(columns: data.columns)
        func meanAbsolute(_ raw: [Double]) -> Double { zip(raw, target).map { abs($1 - $0) }.reduce(0, +) / Double(raw.count) }
        #expect(meanAbsolute(outOfFold) > 1.5 * meanAbsolute(inSample))
        // The same seed draws the same folds and models.
        #expect(OutOfFoldScores.rawScores(
            columns: data.columns, target: target, rows: rows, folds: 4, rounds: 80, configuration: Self.overfitting)
            == outOfFold)
    }

    /// The scores of a subset of rows come back in that subset's order.
    @Test func scoresFollowTheRowsGiven() throws {
        let data = Self.table(rows: 300, seed: 2, fairNoise: 1)
        let target = Self.logTargets(data)
        let rows = Array(stride(from: 1, to: 300, by: 3))  // 100 rows
        let scores = try #require(OutOfFoldScores.rawScores(
            columns: data.columns, target: target, rows: rows, folds: 2, rounds: 20, configuration: Self.overfitting))
        #expect(scores.count == 100)
        let residuals = zip(rows, scores).map { abs(target[$0] - $1) }
        #expect(residuals.reduce(0, +) / 100 < 0.2)  // each score belongs to its row: errors ~0.05, not ~1
    }

    /// Folds whose models would have fewer than 2 × min_data_in_leaf rows give nothing.
    @Test func tooFewRowsForTheFoldsGiveNil() {
        let data = Self.table(rows: 40, seed: 3, fairNoise: 1)
        var config = Self.overfitting
        config.minDataInLeaf = 10
        let target = Self.logTargets(data)
        // 5 folds of 24 rows: 19 to train each fold model (< 20).
        #expect(OutOfFoldScores.rawScores(
            columns: data.columns, target: target, rows: Array(0..<24), folds: 5, rounds: 5, configuration: config) == nil)
        #expect(OutOfFoldScores.rawScores(
            columns: data.columns, target: target, rows: Array(0..<25), folds: 5, rounds: 5, configuration: config) != nil)
    }

    /// Why the folds: the trees fit rare stones' training rows, so training residuals
    /// under-rate how much larger a rare stone's error is; out-of-fold residuals do not. Here
    /// cut Fair's noise is 3× the others'; the scale fitted on training residuals sees much
    /// less than that, the one fitted out of fold sees nearly all of it.
    @Test func outOfFoldResidualsSeeRareStonesErrorThatTrainingResidualsHide() throws {
        let data = Self.table(rows: 1600, seed: 4, fairNoise: 3)
        let target = Self.logTargets(data)
        let rows = Array(0..<data.count)
        let inSample = GradientBooster.boost(
            columns: data.columns, target: target, trainRows: rows, validationRows: [], configuration: Self.overfitting,
            featureNames: Ensemble.diamondFeatureNames, progress: nil
        ).ensemble.rawScores(columns: data.columns)
        let outOfFold = try #require(OutOfFoldScores.rawScores(
            columns: data.columns, target: target, rows: rows, folds: 5, rounds: 80, configuration: Self.overfitting))
        func fairRatio(_ raw: [Double]) throws -> Double {
            let scale = try #require(RangeCalibration.fitErrorScale(.init(raw: raw, target: target, columns: data.columns)))
            let cut = try #require(scale.gradeFactors.first { $0.feature == Feature.cut.rawValue })
            return cut.factors[0] / (cut.factors[1...].reduce(0, +) / 4)
        }
        let trainingRatio = try fairRatio(inSample)
        let outOfFoldRatio = try fairRatio(outOfFold)
        #expect(outOfFoldRatio > 2.2, "out of fold: Fair's error \(outOfFoldRatio)× the others'")
        #expect(trainingRatio < outOfFoldRatio - 0.4, "training residuals: \(trainingRatio)×, out of fold \(outOfFoldRatio)×")
    }
}
