import DiamondSchema
import Foundation
import LoupeUtilities
import Testing
@testable import TreeModel

@Suite struct EnsembleTests {
    @Test func rawScoreIsBasePlusTreesInOrder() {
        let tree = TreeFixtures.twoLevel()
        let model = Ensemble(trees: [tree, tree], baseScore: 0.5, featureNames: ["a", "b"], target: .price)
        #expect(model.rawScore([0, 0]) == 0.5 + -1 + -1)
        #expect(model.rawScore([2, 0]) == 0.5 + 5 + 5)
    }

    @Test func batchScoresAreBitIdenticalToTheReference() {
        var model = TreeFixtures.randomEnsemble(trees: 60, seed: 3)
        // A categorical tree (an imported model's) and a float32 one among them: the batch
        // path walks numeric trees its own way and must agree on every kind.
        var categorical = TreeFixtures.twoLevel(decision: DecisionType(comparison: .categoryGoesLeft, missingGoesLeft: false))
        categorical.splitFeature = [1, 2]
        categorical.threshold = [0, 1.5]
        categorical.decision[1] = .standard
        categorical.categorySets = [[0b1010]]
        model.trees.insert(categorical, at: 7)
        model.trees.insert(TreeFixtures.twoLevel(decision: DecisionType(comparison: .lessThanFloat32, missingGoesLeft: true)), at: 20)
        var rng = SplitMix64(state: 9)
        let rows = 2500
        // Small integers (categories), reals, and a few missing values.
        let columns = (0..<9).map { f in
            (0..<rows).map { r -> Double in
                if r % 97 == f { return .nan }
                return f == 1 ? Double(Int.random(in: 0...4, using: &rng)) : Double.random(in: -6...6, using: &rng)
            }
        }
        let batch = model.rawScores(columns: columns)
        for r in 0..<rows {
            let single = model.rawScore(columns.map { $0[r] })
            #expect(batch[r].bitPattern == single.bitPattern)
        }
    }

    @Test func logTargetGivesMultiplicativeRanges() throws {
        let intervals = try #require(ConformalIntervals(residuals: (1...99).map { Double($0) / 100 }))
        let model = Ensemble(
            trees: [Tree(constant: 0)], baseScore: 8, featureNames: ["a"], target: .logPrice, intervals: intervals)
        let e = model.estimate(raw: 8, features: [0], level: 0.9)
        // rank ⌈100 · 0.9⌉ = 90 → residual 0.90
        #expect(abs(e.price - exp(8)) < 1e-9)
        #expect(abs(e.low - exp(8 - 0.9)) < 1e-9)
        #expect(abs(e.high - exp(8 + 0.9)) < 1e-9)
        #expect(e.level == 0.9)
    }

    @Test func conformalRankAndTooSmallCalibration() throws {
        let nine = try #require(ConformalIntervals(residuals: [9, 1, 2, 3, 4, 5, 6, 7, 8]))
        #expect(nine.scoreQuantile(level: 0.9) == 9)  // ⌈10 · 0.9⌉ = 9th smallest
        #expect(nine.scoreQuantile(level: 0.5) == 5)
        let five = try #require(ConformalIntervals(residuals: [1, 2, 3, 4, 5]))
        #expect(five.scoreQuantile(level: 0.9) == nil)  // ⌈6 · 0.9⌉ = 6 > 5
        #expect(five.scoreQuantile(level: 1) == nil)
        #expect(five.scoreQuantile(level: 0) == nil)
        #expect(ConformalIntervals(residuals: []) == nil)
        #expect(ConformalIntervals(residuals: [1, .nan]) == nil)
        #expect(ConformalIntervals(residuals: [-1]) == nil)
    }

    @Test func uncalibratedModelGivesAPointRange() {
        let model = Ensemble(trees: [], baseScore: 100, featureNames: ["a"], target: .price)
        #expect(model.estimate(raw: 100, features: [0]) == PriceEstimate(price: 100, low: 100, high: 100, level: nil))
        #expect(model.estimate(raw: -5, features: [0]).price == 0)  // a price is never negative
    }

    @Test func diamondFeaturesFollowTheSchemaOrder() {
        let d = Diamond(carat: 1.01, cut: .ideal, color: .g, clarity: .vs1, depth: 61.8, table: 56, x: 6.43, y: 6.47, z: 3.99)
        #expect(d.features == [1.01, 4, 3, 4, 61.8, 56, 6.43, 6.47, 3.99])
        #expect(Ensemble.diamondFeatureNames == ["carat", "cut", "color", "clarity", "depth", "table", "x", "y", "z"])
    }
}
