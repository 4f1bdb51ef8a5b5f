import LoupeUtilities
import Testing
@testable import TreeInference
import TreeModel

/// Raw scores bit-identical to `Ensemble.rawScore` on every kernel path this machine runs, for
/// batch sizes 1, 7, 16, 17 and 1000, with 1 and 2 threads (`InferenceFixtures.expectExact`).
@Suite struct ExactnessTests {
    @Test(arguments: [(rounds: 20, leaves: 7, maxDepth: 3), (rounds: 60, leaves: 31, maxDepth: 0), (rounds: 200, leaves: 15, maxDepth: 5)])
    func loupeTrainedModels(shape: (rounds: Int, leaves: Int, maxDepth: Int)) throws {
        let (model, data) = try InferenceFixtures.trained(
            rounds: shape.rounds, leaves: shape.leaves, maxDepth: shape.maxDepth, rows: 1500, seed: UInt64(shape.rounds))
        let compiled = try CompiledEnsemble(model)
        #expect(compiled.genericReason == nil)
        #expect(compiled.layout == .bitvector)
        var rows = (0..<300).map { r in data.columns.map { $0[r] } }
        rows += InferenceFixtures.probingRows(for: model, count: 700, seed: 1)
        try InferenceFixtures.expectExact(model, rows: rows)
    }

    @Test func handMadeTree() throws {
        // x0 <= 1.5 ? (x1 <= 0 ? a : c) : b, missing to the right, then to the left.
        for missingLeft in [false, true] {
            let decision = DecisionType(comparison: .lessOrEqual, missingGoesLeft: missingLeft)
            let tree = Tree(
                splitFeature: [0, 1], threshold: [1.5, 0], leftChild: [1, ~0], rightChild: [~1, ~2],
                decision: [decision, decision], splitGain: [1, 1], internalCover: [1, 1],
                leafValue: [-1, 5, 2], leafCover: [1, 1, 1])
            let model = Ensemble(trees: [tree, tree], baseScore: 0.25, featureNames: ["a", "b"], target: .price)
            let rows: [[Double]] = [
                [1.5, 0], [1.5, -0.0], [1.5, Double(0).nextUp], [Double(1.5).nextUp, 0], [Double(1.5).nextDown, 1], [.nan, 0], [0, .nan],
                [.infinity, -.infinity], [-.infinity, .infinity], [.nan, .nan],
            ]
            try InferenceFixtures.expectExact(model, rows: rows)
            let compiled = try CompiledEnsemble(model)
            #expect(compiled.rawScore([1.5, 0]) == 0.25 - 2)
            #expect(compiled.rawScore([1.5, 1e-300]) == 0.25 + 4)
            #expect(compiled.rawScore([1.6, 0]) == 0.25 + 10)
            #expect(compiled.rawScore([.nan, 0]) == (missingLeft ? 0.25 - 2 : 0.25 + 10))
        }
    }

    @Test(arguments: [UInt64(1), 2, 3])
    func randomEnsemblesWithSharedThresholds(seed: UInt64) throws {
        let model = InferenceFixtures.randomEnsemble(trees: 40, leaves: 1...40, seed: seed)
        #expect(try CompiledEnsemble(model).genericReason == nil)
        try InferenceFixtures.expectExact(model, rows: InferenceFixtures.probingRows(for: model, seed: seed))
    }

    @Test func randomEnsemblesWithRandomThresholds() throws {
        // A fresh threshold at every node: many distinct thresholds per feature.
        var rng = SplitMix64(state: 9)
        let trees = (0..<30).map { _ in
            InferenceFixtures.randomTree(
                leaves: Int.random(in: 1...64, using: &rng), features: 5, comparisons: .lessOrEqual,
                threshold: { _, rng in Double.random(in: -1e3...1e3, using: &rng) }, using: &rng)
        }
        let model = Ensemble(trees: trees, baseScore: 1, featureNames: (0..<5).map { "f\($0)" }, target: .price)
        try InferenceFixtures.expectExact(model, rows: InferenceFixtures.probingRows(for: model, seed: 4))
    }

    @Test func float32Comparisons() throws {
        // Thresholds that are not floats: Float(t) rounds them, and the kernels must compare as
        // XGBoost does, Float(x) < Float(t).
        var model = InferenceFixtures.randomEnsemble(trees: 30, leaves: 2...30, comparisons: .float32, seed: 5)
        for t in model.trees.indices {
            model.trees[t].threshold = model.trees[t].threshold.map { $0 + 1e-9 * $0.magnitude + 1e-12 }
        }
        #expect(try CompiledEnsemble(model).genericReason == nil)
        try InferenceFixtures.expectExact(model, rows: InferenceFixtures.probingRows(for: model, seed: 5))
    }

    /// XGBoost's float32 sum: the bitvector kernels round after every tree; the walk layout
    /// leaves such a model to the generic path. Leaf values of very different magnitudes (so
    /// float rounding shows) that are not floats (the lowering rounds them as the reference does).
    @Test(arguments: [UInt64(7), 8])
    func float32Sums(seed: UInt64) throws {
        var model = InferenceFixtures.randomEnsemble(trees: 70, leaves: 2...64, comparisons: .float32, seed: seed)
        model.sumsInFloat32 = true
        model.baseScore = 8.62558
        #expect(try CompiledEnsemble(model).layout == .bitvector)
        #expect(try CompiledEnsemble(model, configuration: InferenceConfiguration(layout: .walk)).genericReason != nil)
        try InferenceFixtures.expectExact(model, rows: InferenceFixtures.probingRows(for: model, seed: seed))
    }

    @Test func oneComparisonKindPerFeatureMixedAcrossFeatures() throws {
        let model = InferenceFixtures.randomEnsemble(trees: 30, leaves: 2...30, comparisons: .perFeature, seed: 6)
        #expect(try CompiledEnsemble(model).genericReason == nil)
        try InferenceFixtures.expectExact(model, rows: InferenceFixtures.probingRows(for: model, seed: 6))
    }

    @Test(arguments: [(leaves: 60...100, words: 2), (leaves: 120...256, words: 4)])
    func treesOfUpTo256LeavesUseWiderBitvectors(shape: (leaves: ClosedRange<Int>, words: Int)) throws {
        let model = InferenceFixtures.randomEnsemble(trees: 12, leaves: shape.leaves, seed: UInt64(shape.words))
        let compiled = try CompiledEnsemble(model)
        #expect(compiled.layout == .bitvector)
        #expect(compiled.storage?.forest.bv_words == Int32(shape.words))
        try InferenceFixtures.expectExact(model, rows: InferenceFixtures.probingRows(for: model, count: 300, seed: 13))
    }

    @Test func treesOfMoreThan256LeavesUseTheWalkLayout() throws {
        let model = InferenceFixtures.randomEnsemble(trees: 4, leaves: 250...300, seed: 13)
        let compiled = try CompiledEnsemble(model)
        #expect(compiled.layout == .walk)
        #expect(throws: InferenceError.self) { try CompiledEnsemble(model, configuration: .init(layout: .bitvector)) }
        try InferenceFixtures.expectExact(model, rows: InferenceFixtures.probingRows(for: model, count: 300, seed: 13))
    }

    @Test func featureWithBothComparisonKindsUsesTheGenericPath() throws {
        let model = InferenceFixtures.randomEnsemble(trees: 20, leaves: 2...20, comparisons: .mixed, seed: 7)
        let reason = try #require(try CompiledEnsemble(model).genericReason)
        #expect(reason.contains("compared both"))
        try InferenceFixtures.expectExact(model, rows: InferenceFixtures.probingRows(for: model, count: 200, seed: 7))
    }

    @Test func moreThanAByteOfThresholdsUsesTwoByteCodes() throws {
        // 600 distinct thresholds on feature 0: codes no longer fit a byte.
        var rng = SplitMix64(state: 8)
        let trees = (0..<20).map { _ in
            InferenceFixtures.randomTree(
                leaves: 32, features: 2, comparisons: .lessOrEqual,
                threshold: { _, rng in Double(Int.random(in: 0..<600, using: &rng)) / 7 }, using: &rng)
        }
        let model = Ensemble(trees: trees, baseScore: 0, featureNames: ["a", "b"], target: .price)
        try InferenceFixtures.expectExact(model, rows: InferenceFixtures.probingRows(for: model, count: 3000, seed: 8))
    }

    @Test func singleLeafTreesAndEmptyEnsembles() throws {
        let leaves = Ensemble(
            trees: [Tree(constant: 1e-9), Tree(constant: 3), Tree(constant: -1e9)], baseScore: 0.1,
            featureNames: ["a"], target: .price)
        try InferenceFixtures.expectExact(leaves, rows: [[0], [.nan], [.infinity]])
        let empty = Ensemble(trees: [], baseScore: 4.5, featureNames: ["a", "b"], target: .price)
        try InferenceFixtures.expectExact(empty, rows: [[0, 1], [.nan, 2]])
        #expect(try CompiledEnsemble(empty).rawScore([1, 2]) == 4.5)
        let noFeatures = Ensemble(trees: [Tree(constant: 2)], baseScore: 1, featureNames: [], target: .price)
        try InferenceFixtures.expectExact(noFeatures, rows: [[]])
        // Single leaves among deep trees.
        var mixed = InferenceFixtures.randomEnsemble(trees: 10, leaves: 1...3, seed: 10)
        mixed.trees.insert(Tree(constant: 0.5), at: 3)
        try InferenceFixtures.expectExact(mixed, rows: InferenceFixtures.probingRows(for: mixed, count: 100, seed: 10))
    }

    @Test func deepChainsBelowTheCompleteTop() throws {
        // A chain 40 levels deep (leaf-wise growth can make these): most of it below the top.
        var tree = Tree(constant: 0)
        tree.leafValue = []
        tree.leafCover = []
        let depth = 40
        for n in 0..<depth {
            tree.splitFeature.append(Int32(n % 3))
            tree.threshold.append(Double(depth - n))
            tree.decision.append(DecisionType(comparison: .lessOrEqual, missingGoesLeft: n % 2 == 0))
            tree.leftChild.append(n + 1 < depth ? Int32(n + 1) : ~Int32(n + 1))
            tree.rightChild.append(~Int32(n))
            tree.splitGain.append(1)
            tree.internalCover.append(1)
        }
        tree.leafValue = (0...depth).map { Double($0) * 0.37 }
        tree.leafCover = [Double](repeating: 1, count: depth + 1)
        let model = Ensemble(trees: [tree, tree], baseScore: 0, featureNames: ["a", "b", "c"], target: .price)
        for top in [0, 1, 6, 12] {
            let configurations = InferenceFixtures.configurations.map {
                var c = $0
                c.completeTopLevels = top
                return c
            }
            try InferenceFixtures.expectExact(
                model, rows: InferenceFixtures.probingRows(for: model, count: 200, seed: 11), configurations: configurations)
        }
    }

    @Test func treeBlocksDoNotChangeTheOrderOfTheAdds() throws {
        let model = InferenceFixtures.randomEnsemble(trees: 50, leaves: 1...20, seed: 12)
        let configurations = InferenceFixtures.configurations.flatMap { c in
            [1, 5_000, 1 << 30].map {
                var c = c
                c.treeBlockBytes = $0
                return c
            }
        }
        try InferenceFixtures.expectExact(
            model, rows: InferenceFixtures.probingRows(for: model, count: 300, seed: 12), configurations: configurations,
            batchSizes: [17, 1000])
    }
}
