import CLoupeKernels
import Testing
import TreeModel
@testable import TreeInference

/// The flat form: codes that keep every comparison, and the checks done at load.
@Suite struct LoweringTests {
    /// code(x) <= k exactly when x <= t_k (double features) or Float(x) < Float(t_k) (float32
    /// features), for values on, next to, between and beyond the thresholds.
    @Test(arguments: [DecisionType.ComparisonKind.lessOrEqual, .lessThanFloat32])
    func codesKeepEveryComparison(kind: DecisionType.ComparisonKind) throws {
        let comparisons: InferenceFixtures.Comparisons = kind == .lessOrEqual ? .lessOrEqual : .float32
        let model = InferenceFixtures.randomEnsemble(trees: 20, leaves: 2...20, features: 3, comparisons: comparisons, seed: 3)
        guard case .flat(let flat) = FlatForest.lower(model, completeTopLevels: 4) else {
            Issue.record("not lowered")
            return
        }
        let storage = ForestStorage(flat, treeBlockBytes: 1 << 20)
        let rows = InferenceFixtures.probingRows(for: model, count: 100, seed: 3)
        var forest = storage.forest
        for tree in model.trees {
            for n in 0..<tree.internalCount {
                let f = Int(tree.splitFeature[n])
                let k = flat.thresholdCode(feature: f, threshold: tree.threshold[n], comparison: kind)
                for row in rows {
                    let x = row[f]
                    let code = loupe_infer_code(&forest, Int32(f), x)
                    if x.isNaN {
                        #expect(code == flat.nanCode)
                    } else {
                        let left = tree.decision[n].goesLeft(x, threshold: tree.threshold[n])
                        #expect((code <= k) == left, "feature \(f) value \(x) threshold \(tree.threshold[n])")
                    }
                }
            }
        }
    }

    @Test func trainedModelsUseByteCodes() throws {
        let (model, _) = try InferenceFixtures.trained(rounds: 20, leaves: 15, maxDepth: 0, rows: 800, seed: 1)
        guard case .flat(let flat) = FlatForest.lower(model, completeTopLevels: 6) else {
            Issue.record("not lowered")
            return
        }
        #expect(flat.codeBytes == 1)
        #expect(flat.nanCode == 0xFF)
        #expect(!flat.anyMissingLeft)
    }

    @Test func theTopLevelsAreCompleteAndLeavesLoopOnThemselves() {
        let tree = Tree(
            splitFeature: [0, 1], threshold: [1.5, 0], leftChild: [1, ~0], rightChild: [~1, ~2],
            decision: [.standard, .standard], splitGain: [1, 1], internalCover: [1, 1],
            leafValue: [-1, 5, 2], leafCover: [1, 1, 1])
        let model = Ensemble(trees: [tree], baseScore: 0, featureNames: ["a", "b"], target: .price)
        guard case .flat(let flat) = FlatForest.lower(model, completeTopLevels: 1, layout: .walk) else {
            Issue.record("not lowered")
            return
        }
        // Depth 2, one complete level: root (0), its children (1: node 1, 2: leaf 1), then
        // node 1's children as a pair (3: leaf 0, 4: leaf 2).
        #expect(flat.depth == [2])
        #expect(flat.top == [1])
        #expect(flat.word.count == 5)
        #expect(flat.child[1] == 3)
        #expect(flat.child[2] == 2 && flat.child[3] == 3 && flat.child[4] == 4)
        #expect(flat.value[2] == 5 && flat.value[3] == -1 && flat.value[4] == 2)
    }

    @Test func brokenModelsAreRejected() {
        var tree = Tree(
            splitFeature: [0, 1], threshold: [1.5, 0], leftChild: [1, ~0], rightChild: [~1, ~2],
            decision: [.standard, .standard], splitGain: [1, 1], internalCover: [1, 1],
            leafValue: [-1, 5, 2], leafCover: [1, 1, 1])
        func compile(_ tree: Tree, features: Int = 2) throws {
            _ = try CompiledEnsemble(Ensemble(trees: [tree], baseScore: 0, featureNames: (0..<features).map { "f\($0)" }, target: .price))
        }
        #expect(throws: Never.self) { try compile(tree) }
        #expect(throws: InferenceError.self) { try compile(tree, features: 1) }
        var cycle = tree
        cycle.leftChild[1] = 0
        #expect(throws: InferenceError.self) { try compile(cycle) }
        var twice = tree
        twice.rightChild[1] = ~0
        #expect(throws: InferenceError.self) { try compile(twice) }
        tree.leafValue.append(1)
        #expect(throws: InferenceError.self) { try compile(tree) }
    }

    @Test func nanThresholdsUseTheGenericPath() throws {
        var model = InferenceFixtures.randomEnsemble(trees: 5, leaves: 3...6, seed: 4)
        model.trees[2].threshold[0] = .nan
        let compiled = try CompiledEnsemble(model)
        #expect(compiled.genericReason?.contains("NaN threshold") == true)
        try InferenceFixtures.expectExact(model, rows: InferenceFixtures.probingRows(for: model, count: 50, seed: 4))
    }
}
