/// The model file format, version 1 (all integers and floats little-endian):
///
///     magic "LOUPEGBT"  u16 version  u8 target  u8 flags (v1: 0; v2, v3: bit 0 = sums in float32)
///     u32 featureCount  featureCount × (u32 length, UTF-8 name)
///     f64 baseScore
///     u32 treeCount, per tree:
///         u32 internalCount  u32 leafCount
///         i32 splitFeature[internal]  f64 threshold[internal]
///         i32 leftChild[internal]  i32 rightChild[internal]  u8 decision[internal]
///         f64 splitGain[internal]  f64 internalCover[internal]
///         f64 leafValue[leaves]  f64 leafCover[leaves]
///         (v2, v3) u32 setCount, per set: u32 wordCount, u32 words[wordCount]
///     u32 calibrationCount  f64 scores[calibrationCount]   (0: no calibration; ascending)
///     (v3 only) the error scale of adaptive ranges (the scores are |residual| / scale):
///         u32 priceBinCount  f64 rawScoreEdges[priceBinCount − 1]  f64 priceFactors[priceBinCount]
///         u32 gradeCount, per grade: u32 feature  u32 codeCount  f64 factors[codeCount]
///     u32 metadataLength  UTF-8 metadata (JSON)
///     u64 FNV-1a hash of every byte before it
///
/// Version 2 (imported models: category sets, float32 sums) and version 3 (version 2 plus
/// adaptive ranges) are written only when a model needs them, so a model without them keeps
/// writing version 1 byte for byte. Versions 1 and 2 carry constant-width ranges: the scores
/// are plain absolute residuals, and such files keep loading and serving exactly as before.
///
/// Doubles are stored as their bit patterns, so a round trip is bit-exact. The reader checks
/// the hash and the tree structure before returning a model; it never yields a partial one.
extension Ensemble {
    static let magic: [UInt8] = Array("LOUPEGBT".utf8)
    /// The newest format version this build writes (and reads).
    public static let formatVersion: UInt16 = 3

    /// Whether the model needs format version 2 (category sets or float32 sums).
    var needsVersion2: Bool { sumsInFloat32 || trees.contains { !$0.categorySets.isEmpty } }

    /// The oldest format version that can hold this model.
    var minimumFormatVersion: UInt16 {
        if intervals?.errorScale != nil { return 3 }
        return needsVersion2 ? 2 : 1
    }

    /// Serialises the model.
    public func serialized() -> [UInt8] {
        let version = minimumFormatVersion
        let v2 = version >= 2
        var w = ByteWriter()
        w.bytes(Self.magic)
        w.u16(version)
        w.u8(target.rawValue)
        w.u8(sumsInFloat32 ? 1 : 0)
        w.u32(UInt32(featureNames.count))
        for name in featureNames { w.string(name) }
        w.f64(baseScore)
        w.u32(UInt32(trees.count))
        for tree in trees {
            w.u32(UInt32(tree.internalCount))
            w.u32(UInt32(tree.leafCount))
            for v in tree.splitFeature { w.u32(UInt32(bitPattern: v)) }
            for v in tree.threshold { w.f64(v) }
            for v in tree.leftChild { w.u32(UInt32(bitPattern: v)) }
            for v in tree.rightChild { w.u32(UInt32(bitPattern: v)) }
            for v in tree.decision { w.u8(v.rawValue) }
            for v in tree.splitGain { w.f64(v) }
            for v in tree.internalCover { w.f64(v) }
            for v in tree.leafValue { w.f64(v) }
            for v in tree.leafCover { w.f64(v) }
            if v2 {
                w.u32(UInt32(tree.categorySets.count))
                for set in tree.categorySets {
                    w.u32(UInt32(set.count))
                    for word in set { w.u32(word) }
                }
            }
        }
        let scores = intervals?.scores ?? []
        w.u32(UInt32(scores.count))
        for v in scores { w.f64(v) }
        if version >= 3, let scale = intervals?.errorScale {
            w.u32(UInt32(scale.priceFactors.count))
            for v in scale.rawScoreEdges { w.f64(v) }
            for v in scale.priceFactors { w.f64(v) }
            w.u32(UInt32(scale.gradeFactors.count))
            for grade in scale.gradeFactors {
                w.u32(UInt32(grade.feature))
                w.u32(UInt32(grade.factors.count))
                for v in grade.factors { w.f64(v) }
            }
        }
        w.string(metadata)
        w.u64(fnv1a(w.buffer[...]))
        return w.buffer
    }

    /// Reads a model written by `serialized()`, checking its hash and structure.
    public init(serialized bytes: [UInt8]) throws(ModelError) {
        guard bytes.count >= Self.magic.count, Array(bytes.prefix(Self.magic.count)) == Self.magic else {
            throw ModelError(.notAModel, "the data does not start with the Loupe model magic \"LOUPEGBT\"")
        }
        guard bytes.count >= Self.magic.count + 2 + 8 else { throw ModelError(.corrupt, "the file is truncated") }
        var r = ByteReader(bytes: bytes[...])
        r.offset = Self.magic.count
        let version = try r.u16()
        guard version >= 1, version <= Self.formatVersion else {
            throw ModelError(
                .unsupportedVersion, "format version \(version); this build reads versions 1 to \(Self.formatVersion)")
        }
        let stored = bytes.suffix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard fnv1a(bytes.dropLast(8)) == stored else {
            throw ModelError(.corrupt, "checksum mismatch: the file is truncated or damaged")
        }
        r.end = bytes.count - 8
        guard let target = TargetTransform(rawValue: try r.u8()) else { throw ModelError(.invalid, "unknown target transform") }
        let flags = try r.u8()
        guard flags & ~(version >= 2 ? 1 : 0) == 0 else { throw ModelError(.invalid, "unknown header flags \(flags)") }
        let featureCount = Int(try r.u32())
        guard featureCount > 0, featureCount <= 4096 else { throw ModelError(.invalid, "feature count \(featureCount)") }
        var names: [String] = []
        for _ in 0..<featureCount { names.append(try r.string()) }
        let baseScore = try r.f64()
        let treeCount = Int(try r.u32())
        var trees: [Tree] = []
        trees.reserveCapacity(min(treeCount, r.remaining / 24))
        for t in 0..<treeCount {
            let splits = Int(try r.u32())
            let leaves = Int(try r.u32())
            guard leaves == splits + 1, splits * 41 + leaves * 16 <= r.remaining else {
                throw ModelError(.invalid, "tree \(t): \(splits) splits and \(leaves) leaves do not fit the file")
            }
            let splitFeature = try r.i32s(splits)
            let threshold = try r.f64s(splits)
            let left = try r.i32s(splits)
            let right = try r.i32s(splits)
            var decision: [DecisionType] = []
            decision.reserveCapacity(splits)
            for n in 0..<splits {
                guard let d = DecisionType(rawValue: try r.u8()) else {
                    throw ModelError(.invalid, "tree \(t) node \(n): unknown decision type")
                }
                decision.append(d)
            }
            var tree = Tree(
                splitFeature: splitFeature, threshold: threshold, leftChild: left, rightChild: right,
                decision: decision, splitGain: try r.f64s(splits), internalCover: try r.f64s(splits),
                leafValue: try r.f64s(leaves), leafCover: try r.f64s(leaves))
            if version >= 2 {
                let sets = Int(try r.u32())
                guard sets <= r.remaining / 4 else { throw ModelError(.corrupt, "tree \(t): \(sets) category sets do not fit the file") }
                for _ in 0..<sets {
                    let words = Int(try r.u32())
                    guard words <= r.remaining / 4 else { throw ModelError(.corrupt, "tree \(t): a category set does not fit the file") }
                    var set: [UInt32] = []
                    for _ in 0..<words { set.append(try r.u32()) }
                    tree.categorySets.append(set)
                }
            }
            try tree.validate(featureCount: featureCount, index: t)
            trees.append(tree)
        }
        let calibrationCount = Int(try r.u32())
        let scores = try r.f64s(calibrationCount)
        let errorScale = version >= 3 ? try Self.readErrorScale(&r, featureCount: featureCount) : nil
        var intervals: ConformalIntervals?
        if calibrationCount > 0 {
            guard let calibrated = ConformalIntervals(scores: scores, errorScale: errorScale), calibrated.scores == scores else {
                throw ModelError(.invalid, "calibration scores are not finite, non-negative and sorted")
            }
            intervals = calibrated
        } else if errorScale != nil {
            throw ModelError(.invalid, "an error scale without calibration scores")
        }
        let metadata = try r.string()
        guard r.remaining == 0 else { throw ModelError(.invalid, "\(r.remaining) unexpected bytes after the model") }
        self.init(
            trees: trees, baseScore: baseScore, featureNames: names, target: target,
            intervals: intervals, metadata: metadata, sumsInFloat32: flags & 1 != 0)
    }
}

extension Ensemble {
    /// Reads version 3's error scale: nil when its price-bin count is 0.
    static func readErrorScale(_ r: inout ByteReader, featureCount: Int) throws(ModelError) -> ErrorScale? {
        let bins = Int(try r.u32())
        guard bins > 0 else { return nil }
        guard bins <= 4096 else { throw ModelError(.invalid, "error scale: \(bins) price bins") }
        let edges = try r.f64s(bins - 1)
        let priceFactors = try r.f64s(bins)
        let gradeCount = Int(try r.u32())
        guard gradeCount <= featureCount else { throw ModelError(.invalid, "error scale: \(gradeCount) grade tables") }
        var grades: [ErrorScale.GradeFactors] = []
        for _ in 0..<gradeCount {
            let feature = Int(try r.u32())
            let codes = Int(try r.u32())
            guard codes <= 256 else { throw ModelError(.invalid, "error scale: \(codes) codes in a grade table") }
            grades.append(ErrorScale.GradeFactors(feature: feature, factors: try r.f64s(codes)))
        }
        let scale = try ErrorScale(rawScoreEdges: edges, priceFactors: priceFactors, gradeFactors: grades)
        try scale.validate(featureCount: featureCount)
        return scale
    }
}

extension Tree {
    /// Checks that the arrays agree and describe one tree: features in range, children in
    /// range and below their parent (so walks end), every node and leaf reached exactly once.
    public func validate(featureCount: Int, index: Int = 0) throws(ModelError) {
        let n = internalCount
        guard threshold.count == n, leftChild.count == n, rightChild.count == n, decision.count == n,
            splitGain.count == n, internalCover.count == n, leafValue.count == n + 1, leafCover.count == n + 1
        else { throw ModelError(.invalid, "tree \(index): node arrays differ in length") }
        var seenNode = [Bool](repeating: false, count: n)
        var seenLeaf = [Bool](repeating: false, count: n + 1)
        if n > 0 { seenNode[0] = true }
        for node in 0..<n {
            let f = splitFeature[node]
            guard f >= 0, Int(f) < featureCount else {
                throw ModelError(.invalid, "tree \(index) node \(node): feature \(f) outside 0..<\(featureCount)")
            }
            guard !threshold[node].isNaN else { throw ModelError(.invalid, "tree \(index) node \(node): NaN threshold") }
            if decision[node].isCategorical {
                let set = threshold[node]
                guard set >= 0, set < Double(categorySets.count), set == set.rounded() else {
                    throw ModelError(.invalid, "tree \(index) node \(node): category set \(set) of \(categorySets.count)")
                }
            }
            for child in [leftChild[node], rightChild[node]] {
                if child < 0 {
                    let leaf = Int(~child)
                    guard leaf <= n, !seenLeaf[leaf] else {
                        throw ModelError(.invalid, "tree \(index) node \(node): bad or repeated leaf \(leaf)")
                    }
                    seenLeaf[leaf] = true
                } else {
                    guard Int(child) > node, Int(child) < n, !seenNode[Int(child)] else {
                        throw ModelError(.invalid, "tree \(index) node \(node): bad or repeated child \(child)")
                    }
                    seenNode[Int(child)] = true
                }
            }
        }
        guard seenNode.allSatisfy({ $0 }), n == 0 || seenLeaf.allSatisfy({ $0 }) else {
            throw ModelError(.invalid, "tree \(index): some nodes or leaves are unreachable")
        }
        guard leafValue.allSatisfy(\.isFinite) else { throw ModelError(.invalid, "tree \(index): non-finite leaf value") }
    }
}

/// FNV-1a, 64-bit: a cheap guard against accidental damage (the store adds SHA-256).
func fnv1a(_ bytes: ArraySlice<UInt8>) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes {
        hash ^= UInt64(b)
        hash = hash &* 0x0000_0100_0000_01B3
    }
    return hash
}

struct ByteWriter {
    var buffer: [UInt8] = []
    mutating func u8(_ v: UInt8) { buffer.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { buffer.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { buffer.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { buffer.append(contentsOf: $0) } }
    mutating func f64(_ v: Double) { u64(v.bitPattern) }
    mutating func bytes(_ v: [UInt8]) { buffer.append(contentsOf: v) }
    mutating func string(_ s: String) {
        let utf8 = Array(s.utf8)
        u32(UInt32(utf8.count))
        buffer.append(contentsOf: utf8)
    }
}

struct ByteReader {
    let bytes: ArraySlice<UInt8>
    var offset = 0
    var end: Int

    init(bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        end = bytes.count
    }

    var remaining: Int { end - offset }

    private mutating func take(_ n: Int) throws(ModelError) -> Int {
        guard n >= 0, n <= remaining else { throw ModelError(.corrupt, "the file ends early (at byte \(offset))") }
        defer { offset += n }
        return bytes.startIndex + offset
    }

    private mutating func uint(_ size: Int) throws(ModelError) -> UInt64 {
        let start = try take(size)
        var v: UInt64 = 0
        for i in 0..<size { v |= UInt64(bytes[start + i]) << (8 * UInt64(i)) }
        return v
    }

    mutating func u8() throws(ModelError) -> UInt8 { UInt8(try uint(1)) }
    mutating func u16() throws(ModelError) -> UInt16 { UInt16(try uint(2)) }
    mutating func u32() throws(ModelError) -> UInt32 { UInt32(try uint(4)) }
    mutating func f64() throws(ModelError) -> Double { Double(bitPattern: try uint(8)) }

    mutating func i32s(_ n: Int) throws(ModelError) -> [Int32] {
        guard n * 4 <= remaining else { throw ModelError(.corrupt, "the file ends early (at byte \(offset))") }
        var out = [Int32]()
        out.reserveCapacity(n)
        for _ in 0..<n { out.append(Int32(bitPattern: try u32())) }
        return out
    }

    mutating func f64s(_ n: Int) throws(ModelError) -> [Double] {
        guard n * 8 <= remaining else { throw ModelError(.corrupt, "the file ends early (at byte \(offset))") }
        var out = [Double]()
        out.reserveCapacity(n)
        for _ in 0..<n { out.append(try f64()) }
        return out
    }

    mutating func string() throws(ModelError) -> String {
        let n = Int(try u32())
        let start = try take(n)
        return String(decoding: bytes[start..<start + n], as: UTF8.self)
    }
}
