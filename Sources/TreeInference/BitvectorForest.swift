import CLoupeKernels
import TreeModel

/// The bitvector layout of a forest (QuickScorer-style, over threshold codes): see
/// `loupe_forest` in loupe_inference.h. Trees of at most 256 leaves.
///
/// Per tree, leaves are numbered left to right and each node has a mask (64 bits per word,
/// 1, 2 or 4 words) that clears the leaves of its left subtree. A row fails (goes right at) a
/// node exactly when its code is above the node's threshold code, so the nodes of one feature
/// that a row fails depend only on its code: the AND of their masks is precomputed for every
/// code of every feature. A row's leaf is then the lowest set bit of one AND per feature: no
/// walk, no branch, whatever the depth. The table is laid out so that 8 consecutive trees'
/// masks (one word of each) for one code share a cache line.
struct BitvectorForest: Sendable {
    var featureRowBase: [UInt32]
    var tableRows: Int
    /// 64-bit words per mask: 1, 2 or 4 (up to 64, 128 or 256 leaves).
    var words: Int
    var maskTable: [UInt64]
    var leafValues: [Double]
    var groupFeatureOffset: [UInt32]
    var groupFeatures: [UInt8]

    static let block = Int(LOUPE_BV_BLOCK)
    static let group = Int(LOUPE_BV_GROUP)
    /// The most leaves a tree may have.
    static let maxLeaves = 256
    /// The largest mask table built (bytes); beyond it the walk layout is used.
    static let maxTableBytes = 128 << 20

    /// Words per mask for trees of at most `leaves` leaves.
    static func words(leaves: Int) -> Int { leaves <= 64 ? 1 : leaves <= 128 ? 2 : 4 }

    /// Why `ensemble` cannot use this layout, or nil when it can.
    static func unsuitability(_ ensemble: Ensemble, codes: FlatForest) -> String? {
        if let t = ensemble.trees.firstIndex(where: { $0.leafCount > maxLeaves }) {
            return "tree \(t) has \(ensemble.trees[t].leafCount) leaves; leaf bitvectors hold \(maxLeaves)"
        }
        let words = words(leaves: ensemble.trees.map(\.leafCount).max() ?? 1)
        let blocks = (ensemble.trees.count + block - 1) / block
        let bytes = blocks * tableRows(codes) * block * 8 * words
        if bytes > maxTableBytes {
            return "the mask table would take \(bytes >> 20) MiB (more than \(maxTableBytes >> 20))"
        }
        return nil
    }

    static func tableRows(_ codes: FlatForest) -> Int {
        (0..<codes.featureCount).reduce(0) { $0 + codes.thresholdCount(feature: $1) + 2 }
    }

    /// Builds the layout; `unsuitability` must be nil.
    init(_ ensemble: Ensemble, codes: FlatForest) {
        let nf = codes.featureCount
        var rowBase: [UInt32] = []
        var rows = 0
        for f in 0..<nf {
            rowBase.append(UInt32(rows))
            rows += codes.thresholdCount(feature: f) + 2
        }
        featureRowBase = rowBase
        tableRows = rows
        words = Self.words(leaves: ensemble.trees.map(\.leafCount).max() ?? 1)
        let treeCount = ensemble.trees.count
        let blocks = (treeCount + Self.block - 1) / Self.block
        maskTable = [UInt64](repeating: ~0, count: blocks * rows * words * Self.block)
        leafValues = []
        groupFeatureOffset = [0]
        groupFeatures = []
        for t in 0..<treeCount {
            append(ensemble.trees[t], slot: t % Self.block, block: t / Self.block, codes: codes)
        }
        let groups = (treeCount + Self.group - 1) / Self.group
        for g in 0..<groups {
            var used = Set<Int>()
            for t in (g * Self.group)..<min(treeCount, (g + 1) * Self.group) {
                used.formUnion(ensemble.trees[t].splitFeature.map { Int($0) })
            }
            groupFeatures += used.sorted().map { UInt8($0) }
            groupFeatureOffset.append(UInt32(groupFeatures.count))
        }
    }

    private mutating func append(_ tree: Tree, slot: Int, block b: Int, codes: FlatForest) {
        let words = self.words
        // Leaves left to right; each node's left subtree is a run of them, cleared in its mask
        // (words per node, consecutive).
        var position = [Int](repeating: 0, count: tree.leafCount)
        var nodeMask = [UInt64](repeating: ~0, count: tree.internalCount * words)
        var next = 0
        func visit(_ ref: Int32) {
            if ref < 0 {
                position[Int(~ref)] = next
                next += 1
                return
            }
            let n = Int(ref)
            let first = next
            visit(tree.leftChild[n])
            for leaf in first..<next { nodeMask[n * words + leaf / 64] &= ~(UInt64(1) << UInt64(leaf % 64)) }
            visit(tree.rightChild[n])
        }
        visit(tree.internalCount == 0 ? ~0 : 0)
        // 64 × words slots per tree, so a tree's values sit at a fixed stride without an offset table.
        var values = [Double](repeating: 0, count: 64 * words)
        for leaf in 0..<tree.leafCount { values[position[leaf]] = tree.leafValue[leaf] }
        leafValues += values

        // Per feature: for each code, the AND of the masks of the nodes whose threshold code is
        // below it; for NaN, of the nodes that send missing values right.
        var nodesOf = [Int: [(code: UInt32, node: Int)]]()
        for n in 0..<tree.internalCount {
            let f = Int(tree.splitFeature[n])
            let code = codes.thresholdCode(feature: f, threshold: tree.threshold[n], comparison: tree.decision[n].comparison)
            nodesOf[f, default: []].append((code, n))
        }
        // Word w of the mask for table row r: ((b × rows + r) × words + w) × 64 + slot.
        func store(_ mask: [UInt64], row: Int) {
            for w in 0..<words { maskTable[((b * tableRows + row) * words + w) * Self.block + slot] = mask[w] }
        }
        for (f, nodes) in nodesOf {
            let sorted = nodes.sorted { $0.code < $1.code }
            let row0 = Int(featureRowBase[f])
            let thresholds = codes.thresholdCount(feature: f)
            var mask = [UInt64](repeating: ~0, count: words)
            var next = 0
            for c in 0...thresholds {
                while next < sorted.count && sorted[next].code < UInt32(c) {
                    for w in 0..<words { mask[w] &= nodeMask[sorted[next].node * words + w] }
                    next += 1
                }
                store(mask, row: row0 + c)
            }
            var nan = [UInt64](repeating: ~0, count: words)
            for (_, n) in nodes where !tree.decision[n].missingGoesLeft {
                for w in 0..<words { nan[w] &= nodeMask[n * words + w] }
            }
            store(nan, row: row0 + thresholds + 1)
        }
    }
}
