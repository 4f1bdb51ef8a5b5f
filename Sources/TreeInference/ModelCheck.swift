import TreeModel

/// The structural checks lowering relies on (the model decoder makes the same ones; an
/// ensemble built in code has not been through it).
enum ModelCheck {
    static func validate(_ ensemble: Ensemble) throws(InferenceError) {
        for (t, tree) in ensemble.trees.enumerated() {
            try validate(tree, index: t, featureCount: ensemble.featureCount)
        }
    }

    static func validate(_ tree: Tree, index t: Int, featureCount: Int) throws(InferenceError) {
        func fail(_ message: String) -> InferenceError { InferenceError(.invalidModel, "tree \(t): \(message)") }
        let n = tree.internalCount
        guard [tree.threshold.count, tree.leftChild.count, tree.rightChild.count, tree.decision.count].allSatisfy({ $0 == n })
        else { throw fail("node arrays differ in length") }
        guard tree.leafCount == n + 1 else { throw fail("\(n) internal nodes need \(n + 1) leaves, found \(tree.leafCount)") }
        var nodeSeen = [Bool](repeating: false, count: n)
        var leafSeen = [Bool](repeating: false, count: n + 1)
        if n > 0 { nodeSeen[0] = true }
        for node in 0..<n {
            let f = tree.splitFeature[node]
            guard f >= 0, Int(f) < featureCount else {
                throw fail("node \(node) tests feature \(f); the model has \(featureCount)")
            }
            for c in [tree.leftChild[node], tree.rightChild[node]] {
                if c >= 0 {
                    guard Int(c) > node, Int(c) < n, !nodeSeen[Int(c)] else {
                        throw fail("node \(node) has child \(c); internal children come after their parent, once each")
                    }
                    nodeSeen[Int(c)] = true
                } else {
                    let leaf = Int(~c)
                    guard leaf < n + 1, !leafSeen[leaf] else { throw fail("node \(node) has leaf \(leaf) out of range or twice") }
                    leafSeen[leaf] = true
                }
            }
        }
        // Every internal node (each reached once, from an earlier one) is reachable from the root.
        guard nodeSeen.allSatisfy({ $0 }), n == 0 || leafSeen.allSatisfy({ $0 }) else {
            throw fail("some nodes or leaves are never reached")
        }
    }
}
