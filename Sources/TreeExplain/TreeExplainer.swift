import CLoupeKernels
import HelperThreads
import TreeModel

/// Exact path-dependent TreeSHAP (Lundberg et al., Algorithm 2) for every feature of a row,
/// computed from tables built once per model (the idea of Fast TreeSHAP v2, Yang 2021).
///
/// For a leaf with value v whose path tests the distinct features U (d of them; repeated tests
/// of one feature merge: z_j = product of the path's cover fractions for j), a row contributes
/// through A ⊆ U, the features whose every test on the path the row passes:
///
///     φ_i += v·(1 − z_i)·Z(U∖A)·H(A∖{i})    for i ∈ A
///     φ_i −= v·Z(U∖A)·H(A)                  for i ∈ U∖A
///
/// where Z(S) = Π_{j∈S} z_j and H(B) = Σ_{S⊆B} |S|!(d−1−|S|)!/d! · Π_{j∈B∖S} z_j. (With o_j = 1
/// on A and 0 elsewhere, this is Algorithm 2's sum over the leaf's paths; the i ∉ A case needs
/// no division by z_i.) The lowering stores T(B) = v·Z(U∖B)·H(B) for every B ⊆ U per leaf (2^d
/// values) and (1 − z_i)/z_i per feature, so that φ_i −= T(A) for i ∉ A and φ_i += (1 − z_i)/z_i
/// · T(A∖{i}) for i ∈ A: explaining a row is one pass over a tree's nodes (which way the row
/// goes at each) and, per leaf, its subset A (one pext with BMI2) and d multiply-adds: O(L·d)
/// per tree instead of O(L·D²). Trees with a path of more than `maxTableFeatures` distinct
/// features, or through a child of (nearly) zero cover, use Algorithm 2 itself.
///
/// Node covers are the IR's `internalCover` / `leafCover` (training counts or hessian sums).
/// The base value is `baseScore` plus each tree's cover-weighted mean leaf value, so the base
/// value plus the contributions equals the raw score (up to rounding).
public final class TreeExplainer: Sendable {
    /// Distinct features on one path up to which a tree uses the tables (2^d values per leaf).
    public static let maxTableFeatures = 12

    /// Features per row.
    public let featureCount: Int
    /// The expected raw score over the training data: what the contributions start from.
    public let baseValue: Double
    /// Trees explained by Algorithm 2 because a path holds more than `maxTableFeatures` features.
    public let referenceTreeCount: Int
    /// Bytes of the per-leaf tables.
    public let tableBytes: Int

    let ensemble: Ensemble
    let storage: ExplainStorage
    /// Whether the C kernel explains the table trees (no categorical splits among them).
    let usesKernel: Bool
    /// The C kernel's path (`LOUPE_SHAP_PATH_*`): the fastest this CPU runs unless a test says.
    let kernelPath: Int32
    let maxInternal: Int

    /// Builds the tables for `ensemble`. Needs at most 64 features (the path masks are 64-bit).
    public convenience init(_ ensemble: Ensemble) throws(ExplainError) {
        try self.init(ensemble, kernelPath: loupe_shap_best_path())
    }

    /// With a given kernel path (tests compare them; the BMI2 one only where the CPU has it).
    init(_ ensemble: Ensemble, kernelPath: Int32) throws(ExplainError) {
        guard ensemble.featureCount <= 64 else {
            throw ExplainError("explanations need at most 64 features; the model has \(ensemble.featureCount)")
        }
        self.ensemble = ensemble
        featureCount = ensemble.featureCount
        let tables = ExplainTables(ensemble, maxFeatures: Self.maxTableFeatures)
        storage = ExplainStorage(tables)
        usesKernel = tables.kernelCompatible
        self.kernelPath = kernelPath
        maxInternal = tables.maxInternal
        tableBytes = tables.table.count * 8 + tables.leafRatio.count * 20 + tables.leafMask.count * 20
            + tables.nodeFeature.count * 22
        baseValue = tables.expectedValues.reduce(ensemble.baseScore, +)
        referenceTreeCount = tables.referenceTrees.count
    }

    /// Contributions of one row, one per feature (`phi` is overwritten).
    public func contributions(_ x: UnsafeBufferPointer<Double>, into phi: UnsafeMutableBufferPointer<Double>) {
        precondition(x.count >= featureCount && phi.count >= featureCount, "need one value per feature")
        for f in 0..<featureCount { phi[f] = 0 }
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: max(maxInternal, 1)) { masks in
            withUnsafePointer(to: storage.forest) { p in
                if usesKernel { loupe_shap_add_row(p, kernelPath, x.baseAddress!, phi.baseAddress!, masks.baseAddress!) }
                for t in 0..<ensemble.trees.count {
                    if p.pointee.skip_tree[t] != 0 {
                        ReferenceTreeSHAP.add(ensemble.trees[t], x, to: phi)
                    } else if !usesKernel {
                        Self.add(tree: t, ensemble.trees[t], x, phi, masks.baseAddress!, p.pointee)
                    }
                }
            }
        }
    }

    /// Contributions of one row.
    public func contributions(_ x: [Double]) -> [Double] {
        var phi = [Double](repeating: 0, count: featureCount)
        x.withUnsafeBufferPointer { x in phi.withUnsafeMutableBufferPointer { contributions(x, into: $0) } }
        return phi
    }

    /// Contributions of many rows given as feature columns (`columns[f][row]`), row-major
    /// (rows × featureCount), over `threads` threads (0: every core).
    public func contributions(columns: [[Double]], threads: Int = 0) -> [Double] {
        let rows = columns.first?.count ?? 0
        let n = featureCount
        var out = [Double](repeating: 0, count: rows * n)
        let threads = threads == 0 ? HelperPool.coreCount : threads
        // Chunks of up to 256 rows (a tree's tables are reused by every row of a chunk), at
        // least two per thread so the threads finish together.
        let chunk = max(8, min(256, (rows + 2 * threads - 1) / (2 * max(threads, 1))))
        let chunks = (rows + chunk - 1) / chunk
        out.withUnsafeMutableBufferPointer { out in
            let base = UnsafeSendablePointer(out.baseAddress)
            let work: @Sendable (Int) -> Void = { c in
                let first = c * chunk, count = min(rows, (c + 1) * chunk) - first
                // The chunk's rows, row-major, then all its rows through each tree in turn.
                var x = [Double](repeating: 0, count: count * n)
                for f in 0..<n {
                    columns[f].withUnsafeBufferPointer { column in
                        for r in 0..<count { x[r * n + f] = column[first + r] }
                    }
                }
                x.withUnsafeBufferPointer { x in
                    self.contributions(rows: x, count: count, into: base.pointer! + first * n)
                }
            }
            HelperPool.shared.run(tasks: chunks, helpers: threads - 1, work)
        }
        return out
    }

    /// Contributions of `count` row-major rows into `phi` (count × featureCount, overwritten):
    /// the C kernel takes them tree by tree; the Swift path and the reference trees row by row.
    func contributions(rows x: UnsafeBufferPointer<Double>, count: Int, into phi: UnsafeMutablePointer<Double>) {
        let n = featureCount
        phi.update(repeating: 0, count: count * n)
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: max(maxInternal, 1)) { masks in
            withUnsafePointer(to: storage.forest) { p in
                if usesKernel {
                    loupe_shap_add_rows(p, kernelPath, x.baseAddress!, count, n, phi, n, masks.baseAddress!)
                }
                for r in 0..<count {
                    let row = UnsafeBufferPointer(rebasing: x[(r * n)..<((r + 1) * n)])
                    let out = UnsafeMutableBufferPointer(start: phi + r * n, count: n)
                    for t in 0..<ensemble.trees.count {
                        if p.pointee.skip_tree[t] != 0 {
                            ReferenceTreeSHAP.add(ensemble.trees[t], row, to: out)
                        } else if !usesKernel {
                            Self.add(tree: t, ensemble.trees[t], row, out, masks.baseAddress!, p.pointee)
                        }
                    }
                }
            }
        }
    }

    /// One tree through the tables: masks of failed features per node, then each leaf's update.
    @inline(__always)
    static func add(
        tree t: Int, _ tree: Tree, _ x: UnsafeBufferPointer<Double>, _ phi: UnsafeMutableBufferPointer<Double>,
        _ masks: UnsafeMutablePointer<UInt64>, _ p: loupe_shap_forest
    ) {
        let internalCount = tree.internalCount
        let firstLeaf = Int(p.leaf_start[t])
        if internalCount == 0 { return }
        masks[0] = 0
        @inline(__always) func visit(_ child: Int32, _ mask: UInt64) {
            if child >= 0 { masks[Int(child)] = mask; return }
            let leaf = firstLeaf + Int(~child)
            let d = Int(p.leaf_depth[leaf])
            let off = Int(p.leaf_offset[leaf])
            var a = 0
            for k in 0..<d where mask & (UInt64(1) << UInt64(p.leaf_features[off + k])) == 0 { a |= 1 << k }
            let table = p.table + Int(p.table_offset[leaf])
            let outside = table[a]
            for k in 0..<d {
                let f = Int(p.leaf_features[off + k])
                if a & (1 << k) != 0 {
                    phi[f] += p.leaf_ratio[off + k] * table[a ^ (1 << k)]
                } else {
                    phi[f] -= outside
                }
            }
        }
        tree.splitFeature.withUnsafeBufferPointer { feature in
            tree.leftChild.withUnsafeBufferPointer { left in
                tree.rightChild.withUnsafeBufferPointer { right in
                    for n in 0..<internalCount {
                        let f = Int(feature[n])
                        let goesLeft = tree.goesLeft(node: n, x[f])
                        let m = masks[n]
                        let bit = UInt64(1) << UInt64(f)
                        let lm = goesLeft ? m : m | bit
                        let rm = goesLeft ? m | bit : m
                        visit(left[n], lm)
                        visit(right[n], rm)
                    }
                }
            }
        }
    }
}

/// What can go wrong building an explainer.
public struct ExplainError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "explain: \(message)" }
}
