import BundledData
import CLoupeKernels
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

    /// Every kernel path this CPU runs gives the same bits, and the Swift path (the one
    /// categorical models take) agrees with them.
    @Test func kernelPathsAgree() throws {
        let (model, rows) = try Self.trained()
        let portable = try TreeExplainer(model, kernelPath: Int32(LOUPE_SHAP_PATH_PORTABLE))
        let best = try TreeExplainer(model)
        #expect(best.kernelPath == loupe_shap_best_path())
        #if arch(x86_64)
        // Every x86-64 machine this runs on (CI included) has AVX2 and BMI2.
        #expect(loupe_shap_best_path() == Int32(LOUPE_SHAP_PATH_BMI2))
        #endif
        let columns = (0..<9).map { f in rows.map { $0[f] } }
        #expect(best.contributions(columns: columns, threads: 1) == portable.contributions(columns: columns, threads: 1))
        for row in rows {
            let phi = portable.contributions(row)
            #expect(best.contributions(row) == phi)
            // The Swift loop over the same tables.
            var swift = [Double](repeating: 0, count: 9)
            row.withUnsafeBufferPointer { x in
                swift.withUnsafeMutableBufferPointer { out in
                    withUnsafeTemporaryAllocation(of: UInt64.self, capacity: max(portable.maxInternal, 1)) { masks in
                        for (t, tree) in model.trees.enumerated() {
                            TreeExplainer.add(tree: t, tree, x, out, masks.baseAddress!, portable.storage.forest)
                        }
                    }
                }
            }
            #expect(swift == phi)
        }
    }

    /// Z(U∖B)·H(B) by its definition, for a 3-feature path.
    @Test func subsetTableHoldsTheOutsideProduct() {
        let z = [0.5, 0.25, 0.8]
        let weights = [1.0 / 3, 1.0 / 6, 1.0 / 3, 0]  // s!(2−s)!/3!
        let table = ExplainTables.subsetTable(z: z, value: 2, weights: weights)
        for b in 0..<8 {
            let inside = (0..<3).filter { b & (1 << $0) != 0 }
            var h = 0.0
            for s in 0..<8 where s & ~b == 0 {
                var term = weights[s.nonzeroBitCount]
                for j in inside where s & (1 << j) == 0 { term *= z[j] }
                h += term
            }
            let outside = (0..<3).filter { b & (1 << $0) == 0 }.reduce(1.0) { $0 * z[$1] }
            #expect(abs(table[b] - 2 * outside * h) <= 1e-15, "subset \(b)")
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
