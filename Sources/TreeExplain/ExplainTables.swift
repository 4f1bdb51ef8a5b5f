import CLoupeKernels
import TreeModel

/// The per-leaf tables of `TreeExplainer`, flat over all trees (leaves numbered tree by tree).
struct ExplainTables: Sendable {
    /// First global leaf of each tree.
    var leafStart: [Int32] = []
    /// Distinct features on each leaf's path (ascending), where its entries start in
    /// `leafFeatures`, and their bits.
    var leafDepth: [UInt8] = []
    var leafOffset: [Int32] = []
    var leafFeatures: [Int32] = []
    var leafMask: [UInt64] = []
    /// (1 − z_j) / z_j per entry (z_j: the feature's merged cover fraction on the path).
    var leafRatio: [Double] = []
    /// Where each leaf's 2^d values v·Z(U∖B)·H(B) start in `table`.
    var tableOffset: [Int64] = []
    var table: [Double] = []
    /// Each tree's cover-weighted mean leaf value.
    var expectedValues: [Double] = []
    /// Trees left to Algorithm 2.
    var referenceTrees: Set<Int> = []
    var referenceTree: [UInt8] = []
    var maxInternal = 0
    /// Internal nodes, flat (children local to their tree), for the C kernel.
    var nodeStart: [Int32] = [0]
    var nodeFeature: [Int32] = []
    var nodeLeft: [Int32] = []
    var nodeRight: [Int32] = []
    var nodeKind: [UInt8] = []
    var nodeMissingLeft: [UInt8] = []
    var nodeThreshold: [Double] = []
    /// Whether every table tree has only kinds the C kernel compares (no categorical splits).
    var kernelCompatible = true
    /// For the AVX-512 kernel (see `loupe_shap_forest`): which trees it takes, each tree's
    /// leaves in update order, each leaf's path directions, and per leaf feature entry the
    /// path's nodes that test it.
    var vectorTree: [UInt8] = []
    var leafOrder: [Int32] = []
    var leafDirection: [UInt64] = []
    var leafFeatureNodes: [UInt64] = []
    /// Features per row.
    var featureCount = 0

    /// Most internal nodes of a tree the AVX-512 kernel takes (its decisions are one word).
    static let maxVectorNodes = 64
    /// Most features of a model the AVX-512 kernel takes (a row in two registers).
    static let maxVectorFeatures = 16

    init(_ ensemble: Ensemble, maxFeatures: Int) {
        // weights[d][s] = s!(d−1−s)!/d! (and 0 for s = d: H(U) is never read)
        let weights: [[Double]] = (0...maxFeatures).map { d in
            (0...d).map { s in
                if d > 0 && s == d { return 0 }
                var w = 1.0 / Double(max(d, 1))
                // 1 / (d · C(d−1, s))
                var c = 1.0
                for i in 0..<s { c = c * Double(d - 1 - i) / Double(i + 1) }
                w /= c
                return w
            }
        }
        featureCount = ensemble.featureCount
        for (t, tree) in ensemble.trees.enumerated() {
            leafStart.append(Int32(leafDepth.count))
            maxInternal = max(maxInternal, tree.internalCount)
            let paths = Self.paths(tree)
            var expected = 0.0
            for (leaf, path) in paths.enumerated() {
                var product = 1.0
                for (_, z) in path { product *= z }
                expected += tree.leafValue[leaf] * product
            }
            expectedValues.append(expected)
            // Algorithm 2 takes trees whose tables would be too large, and trees with a path
            // through a child of (nearly) no cover: the tables divide by z.
            let tooWide = paths.contains { path in path.count > maxFeatures || path.contains { $0.z < Self.smallestZ } }
            referenceTree.append(tooWide ? 1 : 0)
            if tooWide { referenceTrees.insert(t) }
            for n in 0..<tree.internalCount {
                let d = tree.decision[n]
                if d.isCategorical && !tooWide { kernelCompatible = false }
                nodeFeature.append(tree.splitFeature[n])
                nodeLeft.append(tree.leftChild[n])
                nodeRight.append(tree.rightChild[n])
                nodeKind.append(UInt8(
                    d.zeroIsMissing ? LOUPE_SHAP_LE_ZERO_MISSING
                        : d.comparison == .lessThanFloat32 ? LOUPE_SHAP_FLOAT_LT : LOUPE_SHAP_DOUBLE_LE))
                nodeMissingLeft.append(d.missingGoesLeft ? 1 : 0)
                nodeThreshold.append(tree.threshold[n])
            }
            nodeStart.append(Int32(nodeFeature.count))
            let vector = !tooWide && tree.internalCount <= Self.maxVectorNodes
                && ensemble.featureCount <= Self.maxVectorFeatures && !tree.decision.contains { $0.isCategorical }
            vectorTree.append(vector ? 1 : 0)
            let nodes = vector ? Self.pathNodes(tree) : []
            let firstLeaf = Int32(leafDepth.count)
            for n in 0..<tree.internalCount {
                for child in [tree.leftChild[n], tree.rightChild[n]] where child < 0 { leafOrder.append(firstLeaf + ~child) }
            }
            if tree.internalCount == 0 { leafOrder.append(firstLeaf) }
            for (leaf, unsorted) in paths.enumerated() {
                leafDepth.append(UInt8(tooWide ? 0 : unsorted.count))
                leafDirection.append(vector ? nodes[leaf].direction : 0)
                leafOffset.append(Int32(leafFeatures.count))
                tableOffset.append(Int64(table.count))
                var mask: UInt64 = 0
                defer { leafMask.append(mask) }
                if tooWide { continue }
                // Ascending, so bit k of a subset is the k-th set bit of the mask (pext).
                let path = unsorted.sorted { $0.feature < $1.feature }
                for (f, z) in path {
                    leafFeatures.append(Int32(f))
                    leafRatio.append((1 - z) / z)
                    leafFeatureNodes.append(vector ? nodes[leaf].nodes[f, default: 0] : 0)
                    mask |= UInt64(1) << UInt64(f)
                }
                table += Self.subsetTable(z: path.map(\.z), value: tree.leafValue[leaf], weights: weights[path.count])
            }
        }
    }

    /// Per leaf, its path's distinct features with their merged cover fractions (in first-test order).
    static func paths(_ tree: Tree) -> [[(feature: Int, z: Double)]] {
        var out = [[(feature: Int, z: Double)]](repeating: [], count: tree.leafCount)
        guard tree.internalCount > 0 else { return out }
        func cover(_ c: Int32) -> Double { c < 0 ? tree.leafCover[Int(~c)] : tree.internalCover[Int(c)] }
        var stack: [(node: Int32, path: [(feature: Int, z: Double)])] = [(0, [])]
        while let (node, path) = stack.popLast() {
            if node < 0 { out[Int(~node)] = path; continue }
            let n = Int(node), f = Int(tree.splitFeature[n]), total = tree.internalCover[n]
            for child in [tree.leftChild[n], tree.rightChild[n]] {
                let fraction = total > 0 ? cover(child) / total : 0
                var next = path
                if let k = next.firstIndex(where: { $0.feature == f }) { next[k].z *= fraction } else { next.append((f, fraction)) }
                stack.append((child, next))
            }
        }
        return out
    }

    /// Per leaf of a tree of at most 64 internal nodes: the nodes on its path where it goes
    /// left (bit n: internal node n), and per feature the path's nodes that test it.
    static func pathNodes(_ tree: Tree) -> [(direction: UInt64, nodes: [Int: UInt64])] {
        var out = [(direction: UInt64, nodes: [Int: UInt64])](repeating: (0, [:]), count: tree.leafCount)
        guard tree.internalCount > 0 else { return out }
        var stack: [(node: Int32, direction: UInt64, nodes: [Int: UInt64])] = [(0, 0, [:])]
        while let (node, direction, nodes) = stack.popLast() {
            if node < 0 { out[Int(~node)] = (direction, nodes); continue }
            let n = Int(node), bit = UInt64(1) << UInt64(n)
            var through = nodes
            through[Int(tree.splitFeature[n]), default: 0] |= bit
            stack.append((tree.leftChild[n], direction | bit, through))
            stack.append((tree.rightChild[n], direction, through))
        }
        return out
    }

    /// Cover fractions below this send the tree to Algorithm 2 ((1 − z)/z must stay finite).
    static let smallestZ = 1e-150

    /// v·Z(U∖B)·H(B) for every subset B of a path's d features (bit k of B = the path's k-th
    /// feature). H(B) = Σ_m W(|B|−m) · e_m(z_B), with e_m the elementary symmetric polynomials
    /// of z over B; Z(U∖B) is the product of the z outside B.
    static func subsetTable(z: [Double], value: Double, weights: [Double]) -> [Double] {
        let d = z.count
        if d == 0 { return [value] }
        let size = 1 << d
        var e = [Double](repeating: 0, count: size * (d + 1))  // e[B][m]
        e[0] = 1
        var out = [Double](repeating: 0, count: size)
        out[0] = value * weights[0]
        for b in 1..<size {
            let k = b.trailingZeroBitCount
            let rest = b & (b - 1)
            let count = b.nonzeroBitCount
            // e(B) = e(B∖{k}) · (1 + z_k·t)
            for m in 0...count {
                let keep = m < count ? e[rest * (d + 1) + m] : 0
                let add = m > 0 ? e[rest * (d + 1) + m - 1] * z[k] : 0
                e[b * (d + 1) + m] = keep + add
            }
            var h = 0.0
            for m in 0...count { h += weights[count - m] * e[b * (d + 1) + m] }
            out[b] = value * h
        }
        // × Z(U∖B): outside[B] = outside[B ∪ {k}] · z_k for the lowest k not in B.
        var outside = [Double](repeating: 1, count: size)
        for b in stride(from: size - 2, through: 0, by: -1) {
            let k = (~b).trailingZeroBitCount
            outside[b] = outside[b | (1 << k)] * z[k]
        }
        for b in 0..<size { out[b] *= outside[b] }
        return out
    }
}
