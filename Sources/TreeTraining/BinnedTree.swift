import TreeModel

/// A tree as the learner grows it: splits on bin indices, plus where each leaf's training rows
/// sit in the learner's partition. Lowered to a `Tree` with real-valued thresholds at the end.
struct BinnedTree {
    var feature: [Int32] = []
    var bin: [UInt8] = []
    var left: [Int32] = []
    var right: [Int32] = []
    var gain: [Double] = []
    var cover: [Double] = []
    var leafValue: [Double] = []
    var leafCover: [Double] = []
    /// For each leaf, its range in the learner's partitioned row array.
    var leafRows: [Range<Int>] = []

    mutating func addSplit(feature: Int, bin: UInt8, left: Int32, right: Int32, gain: Double, cover: Double) -> Int {
        self.feature.append(Int32(feature))
        self.bin.append(bin)
        self.left.append(left)
        self.right.append(right)
        self.gain.append(gain)
        self.cover.append(cover)
        return self.feature.count - 1
    }

    mutating func setChild(of node: Int, isLeft: Bool, to child: Int32) {
        if isLeft { left[node] = child } else { right[node] = child }
    }

    /// Adds each row's leaf value to `scores[row]`, for every row of `data` (or only those
    /// whose `skip` entry is false). Walks on plain pointers: a walk per row through the arrays
    /// retained and released them per row (13% of a tuning trial's time).
    func addLeafValues(of data: BinnedRows, to scores: UnsafeMutableBufferPointer<Double>, skip: [Bool]? = nil) {
        if feature.isEmpty {
            for r in 0..<data.rowCount where !(skip?[r] ?? false) { scores[r] += leafValue[0] }
            return
        }
        let features = data.featureCount
        let bins = data.binsPointer
        feature.withUnsafeBufferPointer { feature in
            bin.withUnsafeBufferPointer { bin in
                left.withUnsafeBufferPointer { left in
                    right.withUnsafeBufferPointer { right in
                        leafValue.withUnsafeBufferPointer { value in
                            func walk(_ r: Int) {
                                let row = bins + r * features
                                var node = 0
                                while true {
                                    let next = row[Int(feature[node])] <= bin[node] ? left[node] : right[node]
                                    if next < 0 {
                                        scores[r] += value[Int(~next)]
                                        return
                                    }
                                    node = Int(next)
                                }
                            }
                            if let skip {
                                skip.withUnsafeBufferPointer { skip in
                                    for r in 0..<data.rowCount where !skip[r] { walk(r) }
                                }
                            } else {
                                for r in 0..<data.rowCount { walk(r) }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The model tree: "bin ≤ b" becomes "value ≤ upper bound of bin b".
    func lowered(bins: [FeatureBins]) -> Tree {
        Tree(
            splitFeature: feature,
            threshold: zip(feature, bin).map { bins[Int($0)].upperBounds[Int($1)] },
            leftChild: left, rightChild: right,
            decision: Array(repeating: .standard, count: feature.count),
            splitGain: gain, internalCover: cover, leafValue: leafValue, leafCover: leafCover)
    }
}
