import LoupeUtilities
import TreeModel

/// Small hand-built trees and random ensembles for the model tests.
enum TreeFixtures {
    /// x0 <= 1.5 ? (x1 <= 0 ? leaf0 : leaf2) : leaf1
    static func twoLevel(decision: DecisionType = .standard) -> Tree {
        Tree(
            splitFeature: [0, 1], threshold: [1.5, 0], leftChild: [1, ~0], rightChild: [~1, ~2],
            decision: [decision, decision], splitGain: [3, 1], internalCover: [10, 6],
            leafValue: [-1, 5, 2], leafCover: [3, 4, 3])
    }

    /// A random valid tree over `features` features with `leaves` leaves.
    static func random(leaves: Int, features: Int, using rng: inout some RandomNumberGenerator) -> Tree {
        var tree = Tree(constant: Double.random(in: -1...1, using: &rng), cover: 100)
        tree.leafValue = []
        tree.leafCover = []
        // Grow by splitting a random leaf each step, like the trainer does.
        var leafParent: [(node: Int, left: Bool)?] = [nil]
        for newLeaf in 1..<leaves {
            let leaf = Int.random(in: 0..<newLeaf, using: &rng)
            let node = tree.splitFeature.count
            tree.splitFeature.append(Int32.random(in: 0..<Int32(features), using: &rng))
            tree.threshold.append(Double.random(in: -5...5, using: &rng))
            tree.leftChild.append(~Int32(leaf))
            tree.rightChild.append(~Int32(newLeaf))
            tree.decision.append(DecisionType(comparison: .lessOrEqual, missingGoesLeft: Bool.random(using: &rng)))
            tree.splitGain.append(Double.random(in: 0...10, using: &rng))
            tree.internalCover.append(Double(Int.random(in: 2...1000, using: &rng)))
            if let parent = leafParent[leaf] {
                if parent.left { tree.leftChild[parent.node] = Int32(node) } else { tree.rightChild[parent.node] = Int32(node) }
            }
            leafParent[leaf] = (node, true)
            leafParent.append((node, false))
        }
        for _ in 0..<leaves {
            tree.leafValue.append(Double.random(in: -1...1, using: &rng))
            tree.leafCover.append(Double(Int.random(in: 1...500, using: &rng)))
        }
        return tree
    }

    static func randomEnsemble(trees: Int, seed: UInt64, calibrated: Bool = true) -> Ensemble {
        var rng = SplitMix64(state: seed)
        let model = (0..<trees).map { _ in random(leaves: Int.random(in: 1...20, using: &rng), features: 9, using: &rng) }
        return Ensemble(
            trees: model, baseScore: 7.5, featureNames: Ensemble.diamondFeatureNames, target: .logPrice,
            intervals: calibrated ? ConformalIntervals(residuals: (0..<50).map { _ in Double.random(in: 0...0.5, using: &rng) }) : nil,
            metadata: "{\"note\":\"fixture\"}")
    }

    /// An error scale like a diamond model's: five price bins and factors for cut, color, clarity.
    static func errorScale() -> ErrorScale {
        try! ErrorScale(
            rawScoreEdges: [6.5, 7.2, 7.9, 8.6], priceFactors: [0.04, 0.05, 0.06, 0.07, 0.08],
            gradeFactors: [
                .init(feature: 1, factors: [1.6, 1.1, 0.95, 1, 0.98]),
                .init(feature: 2, factors: [1, 1, 1.05, 0.95, 1, 1, 1.02]),
                .init(feature: 3, factors: [1.8, 1.2, 1, 0.9, 0.92, 0.95, 0.95, 0.8]),
            ])
    }

    /// `randomEnsemble` with adaptive ranges (format version 3).
    static func adaptiveEnsemble(trees: Int, seed: UInt64) -> Ensemble {
        var model = randomEnsemble(trees: trees, seed: seed)
        var rng = SplitMix64(state: seed ^ 0xADA9)
        model.intervals = ConformalIntervals(
            scores: (0..<50).map { _ in Double.random(in: 0...3, using: &rng) }, errorScale: errorScale())
        return model
    }
}
