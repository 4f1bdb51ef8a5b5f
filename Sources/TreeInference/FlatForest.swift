import CLoupeKernels
import TreeModel

/// The flat inference form of an ensemble, as Swift arrays (docs/INFERENCE.md): per feature the
/// sorted distinct thresholds that turn values into small integer codes, and per tree an array
/// of entries (node word, child, value) whose top levels form a complete binary tree.
///
/// Built at model load from the IR, never persisted. `ForestStorage` copies it into memory the
/// C kernels read.
struct FlatForest: Sendable {
    /// Trees in the model (the walk arrays are empty when the bitvector layout is built).
    var treeCount: Int
    var featureCount: Int
    /// 1 when every code (and the NaN code) fits a byte, else 2.
    var codeBytes: Int
    var nanCode: UInt32
    var anyMissingLeft: Bool
    var featureKind: [UInt8]
    var thresholdOffset: [UInt32]
    var thresholdsDouble: [Double]
    var thresholdsFloat: [Float]
    var entryBase: [UInt32]
    var top: [Int32]
    var depth: [Int32]
    var word: [UInt32]
    var child: [UInt32]
    var value: [Double]
    var baseScore: Double
    /// The bitvector layout, when the model can use it and it was asked for.
    var bitvector: BitvectorForest?
    /// The running sum is rounded to float after every add (bitvector layout only).
    var sumsInFloat32 = false

    /// Distinct thresholds of feature `f` (its codes are 0...count).
    func thresholdCount(feature f: Int) -> Int { Int(thresholdOffset[f + 1] - thresholdOffset[f]) }

    /// The most features a node word can name.
    static let maxFeatures = 256
    /// The most distinct thresholds of one feature (codes 0...n and the NaN code fit 16 bits).
    static let maxThresholds = 0xFFFE

    /// What lowering gives: the flat form, or the reason the model needs the generic path.
    enum Lowering {
        case flat(FlatForest)
        case generic(reason: String)
    }

    /// Lowers a validated ensemble (see `ModelCheck`). With `layout` nil, the bitvector layout is
    /// built when the model suits it; `.walk` never builds it; `.bitvector` always tries.
    static func lower(_ ensemble: Ensemble, completeTopLevels: Int, layout: TreeLayout? = nil) -> Lowering {
        var ensemble = ensemble
        if ensemble.sumsInFloat32 {
            // The reference adds Float(leaf) to a Float sum; with float leaves and base, the
            // kernels' double add rounded to float after each tree gives the same bits.
            ensemble.baseScore = Double(Float(ensemble.baseScore))
            for t in ensemble.trees.indices { ensemble.trees[t].leafValue = ensemble.trees[t].leafValue.map { Double(Float($0)) } }
        }
        let featureCount = ensemble.featureCount
        guard featureCount <= maxFeatures else {
            return .generic(reason: "\(featureCount) features; the flat form names at most \(maxFeatures)")
        }
        // Imported node kinds the flat form has no code for take the reference walk.
        // One comparison kind per feature, and the thresholds it is tested against.
        var kind = [DecisionType.ComparisonKind?](repeating: nil, count: featureCount)
        var raw = [[Double]](repeating: [], count: featureCount)
        for (t, tree) in ensemble.trees.enumerated() {
            for n in 0..<tree.internalCount {
                let f = Int(tree.splitFeature[n])
                let comparison = tree.decision[n].comparison
                if tree.decision[n].isCategorical {
                    return .generic(reason: "tree \(t) node \(n) is a categorical split")
                }
                if tree.decision[n].zeroIsMissing {
                    return .generic(reason: "tree \(t) node \(n) treats zero as missing (LightGBM missing type Zero)")
                }
                if let k = kind[f], k != comparison {
                    return .generic(reason: "feature \(f) is compared both as double <= and as float32 < (tree \(t))")
                }
                kind[f] = comparison
                guard !tree.threshold[n].isNaN else { return .generic(reason: "tree \(t) node \(n) has a NaN threshold") }
                raw[f].append(tree.threshold[n])
            }
        }
        var featureKind = [UInt8](repeating: UInt8(LOUPE_FEATURE_UNUSED), count: featureCount)
        var thresholdOffset: [UInt32] = [0]
        var thresholdsDouble: [Double] = []
        var thresholdsFloat: [Float] = []
        var maxCount = 0
        for f in 0..<featureCount {
            var count = 0
            switch kind[f] {
            case nil:
                break
            case .lessOrEqual:
                featureKind[f] = UInt8(LOUPE_FEATURE_DOUBLE_LE)
                let sorted = distinctSorted(raw[f])
                count = sorted.count
                thresholdsDouble += sorted
                thresholdsFloat += [Float](repeating: 0, count: count)
            case .lessThanFloat32:
                featureKind[f] = UInt8(LOUPE_FEATURE_FLOAT_LT)
                let sorted = distinctSorted(raw[f].map { Float($0) })
                count = sorted.count
                thresholdsFloat += sorted
                thresholdsDouble += [Double](repeating: 0, count: count)
            case .categoryGoesLeft, .categoryGoesRight:
                preconditionFailure("categorical splits take the generic path")
            }
            guard count <= maxThresholds else {
                return .generic(reason: "feature \(f) has \(count) distinct thresholds; codes hold at most \(maxThresholds)")
            }
            maxCount = max(maxCount, count)
            thresholdOffset.append(UInt32(thresholdsDouble.count))
        }
        let codeBytes = maxCount <= 0xFE ? 1 : 2
        let nanCode: UInt32 = codeBytes == 1 ? 0xFF : 0xFFFF

        var forest = FlatForest(
            treeCount: ensemble.trees.count, featureCount: featureCount, codeBytes: codeBytes, nanCode: nanCode, anyMissingLeft: false,
            featureKind: featureKind, thresholdOffset: thresholdOffset, thresholdsDouble: thresholdsDouble,
            thresholdsFloat: thresholdsFloat, entryBase: [0], top: [], depth: [], word: [], child: [], value: [],
            baseScore: ensemble.baseScore)
        // One layout only: the kernels read either the bitvectors or the walk entries.
        if layout != .walk, BitvectorForest.unsuitability(ensemble, codes: forest) == nil {
            forest.bitvector = BitvectorForest(ensemble, codes: forest)
            forest.sumsInFloat32 = ensemble.sumsInFloat32
        } else if ensemble.sumsInFloat32 {
            return .generic(reason: "the model sums in float32 (XGBoost); only the bitvector kernels do, and it takes the walk layout")
        } else {
            for tree in ensemble.trees {
                forest.append(tree, completeTopLevels: completeTopLevels)
            }
        }
        return .flat(forest)
    }

    /// The code of a threshold: its index among the feature's sorted distinct thresholds.
    func thresholdCode(feature f: Int, threshold: Double, comparison: DecisionType.ComparisonKind) -> UInt32 {
        let lo = Int(thresholdOffset[f]), hi = Int(thresholdOffset[f + 1])
        switch comparison {
        case .lessOrEqual:
            return UInt32(Self.lowerBound(thresholdsDouble[lo..<hi], threshold) - lo)
        case .lessThanFloat32:
            return UInt32(Self.lowerBound(thresholdsFloat[lo..<hi], Float(threshold)) - lo)
        case .categoryGoesLeft, .categoryGoesRight:
            preconditionFailure("categorical splits take the generic path")
        }
    }

    /// Entries of one tree: the complete top, then children in adjacent pairs, breadth first.
    private mutating func append(_ tree: Tree, completeTopLevels: Int) {
        let depth = Self.depth(of: tree)
        let top = min(depth, completeTopLevels)
        // A test that always goes left (NaN too): the code is never above the NaN code.
        let alwaysLeft = nanCode
        let completeCount = (1 << (top + 1)) - 1
        var word = [UInt32](repeating: alwaysLeft, count: completeCount)
        var child = (0..<completeCount).map { UInt32($0) }
        var value = [Double](repeating: 0, count: completeCount)
        var pending: [(entry: Int, node: Int)] = []

        func nodeWord(_ n: Int) -> UInt32 {
            let decision = tree.decision[n]
            let f = Int(tree.splitFeature[n])
            let code = thresholdCode(feature: f, threshold: tree.threshold[n], comparison: decision.comparison)
            if decision.missingGoesLeft { anyMissingLeft = true }
            return code | UInt32(f) << UInt32(LOUPE_WORD_FEATURE_SHIFT)
                | (decision.missingGoesLeft ? UInt32(LOUPE_WORD_MISSING_LEFT) : 0)
        }
        func setLeaf(_ entry: Int, _ leaf: Int) {
            word[entry] = alwaysLeft
            child[entry] = UInt32(entry)
            value[entry] = tree.leafValue[leaf]
        }
        func place(_ ref: Int32, entry: Int, level: Int) {
            if level == top {
                if ref < 0 {
                    setLeaf(entry, Int(~ref))
                } else {
                    word[entry] = nodeWord(Int(ref))
                    pending.append((entry, Int(ref)))
                }
                return
            }
            child[entry] = UInt32(2 * entry + 1)
            if ref < 0 {
                // A leaf above the bottom of the complete top: always-left tests down to a copy
                // of it (the right-hand copies are never reached).
                word[entry] = alwaysLeft
                place(ref, entry: 2 * entry + 1, level: level + 1)
                place(ref, entry: 2 * entry + 2, level: level + 1)
            } else {
                let n = Int(ref)
                word[entry] = nodeWord(n)
                place(tree.leftChild[n], entry: 2 * entry + 1, level: level + 1)
                place(tree.rightChild[n], entry: 2 * entry + 2, level: level + 1)
            }
        }
        place(tree.internalCount == 0 ? ~0 : 0, entry: 0, level: 0)
        var next = 0
        while next < pending.count {
            let (entry, n) = pending[next]
            next += 1
            let pair = word.count
            child[entry] = UInt32(pair)
            for (i, ref) in [tree.leftChild[n], tree.rightChild[n]].enumerated() {
                word.append(alwaysLeft)
                child.append(UInt32(pair + i))
                value.append(0)
                if ref < 0 {
                    setLeaf(pair + i, Int(~ref))
                } else {
                    word[pair + i] = nodeWord(Int(ref))
                    pending.append((pair + i, Int(ref)))
                }
            }
        }
        self.word += word
        self.child += child
        self.value += value
        entryBase.append(UInt32(self.word.count))
        self.top.append(Int32(top))
        self.depth.append(Int32(depth))
    }

    /// Tests on the longest root-to-leaf path (0 for a single leaf).
    static func depth(of tree: Tree) -> Int {
        guard tree.internalCount > 0 else { return 0 }
        // Children have larger indices than their parents, so one forward pass sets every depth.
        var level = [Int](repeating: 0, count: tree.internalCount)
        var deepest = 1
        for n in 0..<tree.internalCount {
            for c in [tree.leftChild[n], tree.rightChild[n]] {
                if c >= 0 {
                    level[Int(c)] = level[n] + 1
                    deepest = max(deepest, level[n] + 2)
                }
            }
        }
        return deepest
    }

    static func distinctSorted<T: BinaryFloatingPoint>(_ values: [T]) -> [T] {
        var result: [T] = []
        for v in values.sorted() where result.last != v { result.append(v) }
        return result
    }

    static func lowerBound<T: Comparable>(_ values: ArraySlice<T>, _ x: T) -> Int {
        var lo = values.startIndex, hi = values.endIndex
        while lo < hi {
            let mid = (lo + hi) / 2
            if values[mid] < x { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}
