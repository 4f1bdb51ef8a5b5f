import CLoupeKernels

/// Grows one tree leaf-wise on binned rows (LightGBM's serial tree learner, in outline).
///
/// The learner owns its scratch memory, allocated once per training run: the row index
/// partition, one histogram per leaf, and one per extra thread. For a split it partitions the
/// leaf's rows in place, builds the histogram of the smaller child and gets the larger one by
/// subtracting it from the parent's.
///
/// Not thread-safe: one training run uses one learner from one thread (it fans out internally).
final class TreeLearner {
    let data: BinnedRows
    let binCounts: [Int]
    let numLeaves: Int
    let maxDepth: Int
    let minDataInLeaf: Double
    let minSumHessian: Double
    let lambdaL2: Double
    let minGainToSplit: Double
    let pool: SpinPool
    /// Leaves with fewer rows than this are partitioned and histogrammed on one thread.
    let parallelRowThreshold = 2048
    /// Most chunks a leaf's rows are cut into: two per thread, so a thread that is late to
    /// the work (its core busy elsewhere) leaves less behind. Each chunk has its own
    /// histogram, summed in chunk order, so results do not depend on which thread ran what.
    let maxChunks: Int

    private let histLength: Int  // doubles per histogram
    private let rows: UnsafeMutablePointer<Int32>
    private let scratch: UnsafeMutablePointer<Int32>
    private let histograms: UnsafeMutablePointer<Double>
    private let threadHistograms: UnsafeMutablePointer<Double>
    private let threadCounts: UnsafeMutablePointer<Int>

    // Per-leaf state of the tree being grown.
    private var leafBegin: [Int]
    private var leafCount: [Int]
    private var leafSumGradient: [Double]
    private var leafDepth: [Int]
    private var leafParent: [(node: Int, isLeft: Bool)?]
    private var candidate: [SplitCandidate?]

    init(data: BinnedRows, binCounts: [Int], configuration c: TrainingConfiguration, pool: SpinPool) {
        self.data = data
        self.binCounts = binCounts
        numLeaves = c.numLeaves
        maxDepth = c.maxDepth
        minDataInLeaf = Double(c.minDataInLeaf)
        minSumHessian = c.minSumHessianInLeaf
        lambdaL2 = c.lambdaL2
        minGainToSplit = c.minGainToSplit
        self.pool = pool
        histLength = 2 * data.totalBins
        rows = .allocate(capacity: max(1, data.rowCount))
        scratch = .allocate(capacity: max(1, data.rowCount))
        histograms = .allocate(capacity: numLeaves * histLength)
        maxChunks = pool.threads == 1 ? 1 : 2 * pool.threads
        threadHistograms = .allocate(capacity: max(1, maxChunks - 1) * histLength)
        threadCounts = .allocate(capacity: maxChunks)
        leafBegin = Array(repeating: 0, count: numLeaves)
        leafCount = Array(repeating: 0, count: numLeaves)
        leafSumGradient = Array(repeating: 0, count: numLeaves)
        leafDepth = Array(repeating: 0, count: numLeaves)
        leafParent = Array(repeating: nil, count: numLeaves)
        candidate = Array(repeating: nil, count: numLeaves)
    }

    deinit {
        rows.deallocate()
        scratch.deallocate()
        histograms.deallocate()
        threadHistograms.deallocate()
        threadCounts.deallocate()
    }

    /// Grows a tree on `sampleRows` (row indices into the binned data, ascending) with
    /// gradients indexed by row (hessians are 1: L2 loss). Leaf values are −G/(n+λ)·shrinkage.
    func grow(
        sampleRows: UnsafeBufferPointer<Int32>, gradients: UnsafePointer<Double>, featureAllowed: [Bool],
        shrinkage: Double
    ) -> BinnedTree {
        let n = sampleRows.count
        rows.update(from: sampleRows.baseAddress!, count: n)
        var tree = BinnedTree()
        var leaves = 1
        leafBegin[0] = 0
        leafCount[0] = n
        leafDepth[0] = 0
        leafParent[0] = nil
        var sum = 0.0
        for i in 0..<n { sum += gradients[Int(rows[i])] }
        leafSumGradient[0] = sum
        buildHistogram(slot: 0, begin: 0, count: n, gradients: gradients)
        candidate[0] = findBestSplit(leaf: 0, featureAllowed: featureAllowed)

        while leaves < numLeaves {
            var best = -1
            var bestGain = -Double.infinity
            for leaf in 0..<leaves {
                if let c = candidate[leaf], c.gain > bestGain {
                    bestGain = c.gain
                    best = leaf
                }
            }
            guard best >= 0, let split = candidate[best] else { break }
            let left = best
            let right = leaves
            leaves += 1

            let begin = leafBegin[left]
            let count = leafCount[left]
            let leftCount = partition(
                begin: begin, count: count, column: data.columnBins + split.feature * data.rowCount, bin: split.bin)
            precondition(leftCount == Int(split.leftCount), "partition disagrees with the histogram")

            let node = tree.addSplit(
                feature: split.feature, bin: split.bin, left: ~Int32(left), right: ~Int32(right),
                gain: split.gain, cover: Double(count))
            if let parent = leafParent[left] { tree.setChild(of: parent.node, isLeft: parent.isLeft, to: Int32(node)) }
            leafParent[left] = (node, true)
            leafParent[right] = (node, false)
            leafBegin[right] = begin + Int(leftCount)
            leafCount[left] = Int(leftCount)
            leafCount[right] = count - Int(leftCount)
            leafSumGradient[left] = split.leftGradient
            leafSumGradient[right] = split.rightGradient
            leafDepth[left] += 1
            leafDepth[right] = leafDepth[left]

            // Build the smaller child's histogram; the larger is parent − smaller.
            let parentHist = histograms + left * histLength
            let rightHist = histograms + right * histLength
            if leafCount[right] <= leafCount[left] {
                buildHistogram(slot: right, begin: leafBegin[right], count: leafCount[right], gradients: gradients)
                loupe_subtract(parentHist, rightHist, histLength)
            } else {
                rightHist.update(from: parentHist, count: histLength)
                buildHistogram(slot: left, begin: leafBegin[left], count: leafCount[left], gradients: gradients)
                loupe_subtract(rightHist, parentHist, histLength)
            }
            candidate[left] = findBestSplit(leaf: left, featureAllowed: featureAllowed)
            candidate[right] = findBestSplit(leaf: right, featureAllowed: featureAllowed)
        }

        for leaf in 0..<leaves {
            let count = Double(leafCount[leaf])
            tree.leafValue.append(-leafSumGradient[leaf] / (count + lambdaL2) * shrinkage)
            tree.leafCover.append(count)
            tree.leafRows.append(leafBegin[leaf]..<(leafBegin[leaf] + leafCount[leaf]))
        }
        return tree
    }

    /// The rows of the last grown tree, grouped by leaf (ranges are in `BinnedTree.leafRows`).
    var partitionedRows: UnsafePointer<Int32> { UnsafePointer(rows) }

    private func chunks(for count: Int) -> Int {
        count >= parallelRowThreshold ? min(maxChunks, count / (parallelRowThreshold / 2)) : 1
    }

    /// Stable partition of the leaf's rows by `column[row] <= bin`; returns the left count.
    /// In parallel, each chunk is partitioned in place ([L0 R0][L1 R1]…), then the
    /// right parts move out through the scratch buffer to give L0 L1 … R0 R1 ….
    private func partition(begin: Int, count: Int, column: UnsafePointer<UInt8>, bin: UInt8) -> Int {
        let chunks = chunks(for: count)
        if chunks <= 1 { return loupe_partition_rows(rows + begin, count, column, bin, scratch + begin) }
        let chunk = (count + chunks - 1) / chunks
        let shared = SharedPointers(
            rows: rows + begin, scratch: scratch + begin, counts: threadCounts, column: column)
        pool.run(tasks: chunks) { w in
            let start = w * chunk
            let length = max(0, min(count, start + chunk) - start)
            shared.counts[w] = loupe_partition_rows(shared.rows + start, length, shared.column, bin, shared.scratch + start)
        }
        var left = 0
        var right = 0
        for w in 0..<chunks {
            let start = w * chunk
            let length = max(0, min(count, start + chunk) - start)
            let l = threadCounts[w]
            (scratch + begin + right).update(from: rows + begin + start + l, count: length - l)
            right += length - l
            (rows + begin + left).update(from: rows + begin + start, count: l)
            left += l
        }
        (rows + begin + left).update(from: scratch + begin, count: right)
        return left
    }

    private func buildHistogram(slot: Int, begin: Int, count: Int, gradients: UnsafePointer<Double>) {
        let target = histograms + slot * histLength
        let chunks = chunks(for: count)
        if chunks <= 1 {
            target.initialize(repeating: 0, count: histLength)
            loupe_hist_accumulate(
                data.binsPointer, data.featureCount, data.offsetsPointer, Int32(data.featureCount),
                rows + begin, 0, count, gradients, target)
            return
        }
        let shared = SharedPointers(
            rows: rows + begin, target: target, extra: threadHistograms, gradients: gradients,
            bins: data.binsPointer, offsets: data.offsetsPointer)
        let histLength = histLength
        let featureCount = data.featureCount
        let chunk = (count + chunks - 1) / chunks
        pool.run(tasks: chunks) { w in
            let start = w * chunk
            let end = min(count, start + chunk)
            let out: UnsafeMutablePointer<Double> = w == 0 ? shared.target : shared.extra + (w - 1) * histLength
            out.initialize(repeating: 0, count: histLength)
            if end > start {
                loupe_hist_accumulate(
                    shared.bins, featureCount, shared.offsets, Int32(featureCount),
                    shared.rows + start, 0, end - start, shared.gradients, out)
            }
        }
        for w in 1..<chunks { loupe_add(target, threadHistograms + (w - 1) * histLength, histLength) }
    }

    private func findBestSplit(leaf: Int, featureAllowed: [Bool]) -> SplitCandidate? {
        if maxDepth > 0 && leafDepth[leaf] >= maxDepth { return nil }
        let total = Double(leafCount[leaf])
        if total < 2 * minDataInLeaf { return nil }
        let sumG = leafSumGradient[leaf]
        let parentScore = sumG * sumG / (total + lambdaL2)
        let hist = histograms + leaf * histLength
        var best: SplitCandidate?
        var bestGain = minGainToSplit
        let minLeaf = max(minDataInLeaf, minSumHessian)
        for f in 0..<data.featureCount where featureAllowed[f] {
            let h = hist + 2 * Int(data.offsets[f])
            var gl = 0.0
            var cl = 0.0
            for b in 0..<(binCounts[f] - 1) {
                gl += h[2 * b]
                cl += h[2 * b + 1]
                if cl < minLeaf { continue }
                let cr = total - cl
                if cr < minLeaf { break }
                let gr = sumG - gl
                let gain = gl * gl / (cl + lambdaL2) + gr * gr / (cr + lambdaL2) - parentScore
                if gain > bestGain {
                    bestGain = gain
                    best = SplitCandidate(
                        feature: f, bin: UInt8(b), gain: gain, leftGradient: gl, rightGradient: gr, leftCount: cl)
                }
            }
        }
        return best
    }
}

/// The best split found for a leaf.
struct SplitCandidate {
    var feature: Int
    /// Rows with bin ≤ this go left.
    var bin: UInt8
    var gain: Double
    var leftGradient: Double
    var rightGradient: Double
    var leftCount: Double
}

/// Pointers handed to worker threads. Each worker writes only its own histogram and reads the
/// rest, and the fan-out joins before anything else touches them.
private struct SharedPointers: @unchecked Sendable {
    var rows: UnsafeMutablePointer<Int32>
    var target: UnsafeMutablePointer<Double>! = nil
    var extra: UnsafeMutablePointer<Double>! = nil
    var gradients: UnsafePointer<Double>! = nil
    var bins: UnsafePointer<UInt8>! = nil
    var offsets: UnsafePointer<UInt32>! = nil
    var scratch: UnsafeMutablePointer<Int32>! = nil
    var counts: UnsafeMutablePointer<Int>! = nil
    var column: UnsafePointer<UInt8>! = nil
}
