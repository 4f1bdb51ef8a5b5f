import BundledData
import DataCleaning
import Foundation
import Testing
@testable import TreeExplain
import TreeModel
import TreeTraining

@Suite struct TreeExplainerTests {
    /// One split: the feature's contribution is the leaf value minus the tree's mean.
    @Test func oneSplitByHand() throws {
        let tree = Tree(
            splitFeature: [1], threshold: [0.5], leftChild: [~0], rightChild: [~1], decision: [.standard],
            splitGain: [1], internalCover: [10], leafValue: [2, -1], leafCover: [4, 6])
        let model = Ensemble(trees: [tree], baseScore: 0.25, featureNames: ["a", "b"], target: .logPrice)
        let explainer = try TreeExplainer(model)
        #expect(abs(explainer.baseValue - (0.25 + 0.8 - 0.6)) < 1e-15)
        let phi = explainer.contributions([0, 0])
        #expect(phi[0] == 0)
        #expect(abs(phi[1] - (2 - 0.2)) < 1e-15)
    }

    static func trained() throws -> (Ensemble, [[Double]]) {
        let table = try Cleaner.clean(csv: BundledData.diamondsCSV()).clean.rows(Array(0..<1500))
        let configuration = TrainingConfiguration(
            rounds: 25, learningRate: 0.2, numLeaves: 31, minDataInLeaf: 5, earlyStoppingRounds: 0,
            calibrationFraction: 0, seed: 3, threads: 1)
        let model = try Trainer(configuration: configuration).train(table).model
        var rows = (0..<200).map { r in (0..<9).map { table.columns[$0][r * 7] } }
        rows.append([Double](repeating: .nan, count: 9))
        rows.append([0, 0, 0, 0, 0, 0, 0, 0, 0])
        return (model, rows)
    }

    /// The tables give Algorithm 2's values, and the contributions add up to the raw score.
    @Test func tablesAgreeWithAlgorithm2OnALoupeModel() throws {
        let (model, rows) = try Self.trained()
        let explainer = try TreeExplainer(model)
        #expect(explainer.referenceTreeCount == 0)
        for row in rows {
            let phi = explainer.contributions(row)
            var reference = [Double](repeating: 0, count: 9)
            row.withUnsafeBufferPointer { x in
                reference.withUnsafeMutableBufferPointer { out in
                    for tree in model.trees { ReferenceTreeSHAP.add(tree, x, to: out) }
                }
            }
            for f in 0..<9 { #expect(abs(phi[f] - reference[f]) <= 1e-9, "feature \(f): \(phi[f]) vs \(reference[f])") }
            #expect(abs(phi.reduce(explainer.baseValue, +) - model.rawScore(row)) <= 1e-6)
        }
    }

    @Test func batchesOnTwoThreadsEqualSingleRows() throws {
        let (model, rows) = try Self.trained()
        let explainer = try TreeExplainer(model)
        let columns = (0..<9).map { f in rows.map { $0[f] } }
        for threads in [1, 2] {
            let batch = explainer.contributions(columns: columns, threads: threads)
            for (r, row) in rows.enumerated() {
                #expect(Array(batch[(r * 9)..<(r * 9 + 9)]) == explainer.contributions(row))
            }
        }
    }

    @Test func presentationMultipliesFromTheAveragePrice() throws {
        let explanation = PriceExplanation(baseValue: log(4000), contributions: [log(3), 0, log(0.5)], featureNames: ["carat", "cut", "color"], target: .logPrice)
        #expect(abs(explanation.basePrice - 4000) < 1e-9)
        #expect(explanation.steps.map(\.feature) == ["carat", "color", "cut"])
        #expect(abs(explanation.steps[0].factor - 3) < 1e-12)
        #expect(abs(explanation.steps[0].priceAfter - 12000) < 1e-6)
        #expect(abs(explanation.steps[1].priceAfter - 6000) < 1e-6)
        #expect(abs(explanation.price - 6000) < 1e-6)
    }
}
