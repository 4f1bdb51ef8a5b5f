import CLoupeKernels
import TreeModel

/// An ensemble compiled for fast scoring: the flat form of docs/INFERENCE.md (threshold codes,
/// then leaf bitvectors for trees of at most 256 leaves or a branch-free walk for larger ones),
/// built once from the IR and scored by C kernels (scalar, AVX2 or AVX-512, chosen at run time).
///
/// Every raw score is bit-identical to `Ensemble.rawScore` of the model it was compiled from,
/// on every kernel path and for any thread count. Scoring allocates nothing per row, and one
/// instance may score from many threads at once.
///
/// Models the flat form cannot hold (a feature compared both in double and in float32, a NaN
/// threshold, more than 256 features or 65,534 distinct thresholds on one feature) are scored
/// by the reference walk instead; `genericReason` says why.
public final class CompiledEnsemble: Sendable {
    /// The model this was compiled from.
    public let ensemble: Ensemble
    /// The settings it scores with.
    public let configuration: InferenceConfiguration
    /// The kernel family that scores rows.
    public let kernelPath: KernelPath
    /// The tree layout the kernels read (nil on the generic path).
    public let layout: TreeLayout?
    /// Why the model is scored by the reference walk, or nil when it runs on the flat form.
    public let genericReason: String?
    /// Threads a large batch is split over (the caller's included).
    public let threads: Int
    let storage: ForestStorage?
    /// Sum of the tree depths: the steps each row takes, to judge when threads pay off.
    let stepsPerRow: Int

    /// Compiles `ensemble`.
    ///
    /// Throws `InferenceError.invalidModel` for a structurally broken model (a child index out of
    /// range, a feature the model does not have, …) and `.unsupported` when
    /// `configuration.path` names a kernel this CPU cannot run or `configuration.layout` a
    /// layout the model does not fit.
    public init(_ ensemble: Ensemble, configuration: InferenceConfiguration = InferenceConfiguration()) throws(InferenceError) {
        try ModelCheck.validate(ensemble)
        guard (0...12).contains(configuration.completeTopLevels) else {
            throw InferenceError(.unsupported, "complete top levels must be in 0...12, got \(configuration.completeTopLevels)")
        }
        guard configuration.threads >= 0 else {
            throw InferenceError(.unsupported, "threads must be 0 (every core) or positive, got \(configuration.threads)")
        }
        let available = KernelPath.available()
        if let path = configuration.path, !available.contains(path) {
            throw InferenceError(
                .unsupported,
                "this CPU cannot run the \(path) kernels (available: \(available.map(\.rawValue).joined(separator: ", ")))")
        }
        self.ensemble = ensemble
        self.configuration = configuration
        self.kernelPath = configuration.path ?? KernelPath.best
        self.threads = configuration.threads == 0 ? RowSplitter.coreCount : configuration.threads
        switch FlatForest.lower(ensemble, completeTopLevels: configuration.completeTopLevels, layout: configuration.layout) {
        case .flat(let flat):
            if configuration.layout == .bitvector, flat.bitvector == nil {
                throw InferenceError(
                    .unsupported, "the bitvector layout does not fit this model: \(BitvectorForest.unsuitability(ensemble, codes: flat) ?? "")")
            }
            storage = ForestStorage(flat, treeBlockBytes: configuration.treeBlockBytes)
            layout = flat.bitvector == nil ? .walk : .bitvector
            genericReason = nil
            stepsPerRow = ensemble.trees.reduce(flat.featureCount) { $0 + FlatForest.depth(of: $1) }
        case .generic(let reason):
            storage = nil
            layout = nil
            genericReason = reason
            stepsPerRow = ensemble.trees.reduce(0) { $0 + FlatForest.depth(of: $1) }
        }
    }

    /// The kernel paths this CPU can run, slowest first.
    public static func availablePaths() -> [KernelPath] { KernelPath.available() }

    /// Features a row must have.
    public var featureCount: Int { ensemble.featureCount }

    /// The raw score of one feature vector (at least `featureCount` values).
    public func rawScore(_ features: UnsafeBufferPointer<Double>) -> Double {
        precondition(features.count >= featureCount, "feature vector too short")
        var result = 0.0
        withUnsafeMutablePointer(to: &result) { out in
            score(rowMajor: features.baseAddress, rowStride: featureCount, first: 0, rows: 1, into: out, threads: 1)
        }
        return result
    }

    /// The raw score of one feature vector.
    public func rawScore(_ features: [Double]) -> Double {
        features.withUnsafeBufferPointer { rawScore($0) }
    }

    /// Raw scores of `rows` rows stored one after another (`featureCount` values each) into
    /// `scores` (at least `rows` long).
    public func rawScores(rowMajor features: UnsafeBufferPointer<Double>, rows: Int, into scores: UnsafeMutableBufferPointer<Double>) {
        precondition(rows >= 0 && features.count >= rows * featureCount, "need rows × featureCount values")
        precondition(scores.count >= rows, "output shorter than the batch")
        guard rows > 0, let out = scores.baseAddress else { return }
        score(rowMajor: features.baseAddress, rowStride: featureCount, first: 0, rows: rows, into: out, threads: threads)
    }

    /// Raw scores of rows given as feature columns (`columns[f][row]`, equal lengths).
    public func rawScores(columns: [[Double]]) -> [Double] {
        precondition(columns.count >= featureCount, "need one column per feature")
        let rows = columns.first?.count ?? 0
        precondition(columns.allSatisfy { $0.count == rows }, "columns differ in length")
        guard rows > 0 else { return [] }
        return [Double](unsafeUninitializedCapacity: rows) { buffer, initialized in
            Self.withColumnPointers(columns, count: max(featureCount, 1)) { pointers in
                score(columns: pointers, rowStride: 1, first: 0, rows: rows, into: buffer.baseAddress!, threads: threads)
            }
            initialized = rows
        }
    }

    /// Raw scores of rows given as feature columns (`columns[f][row]`, each at least
    /// `scores.count` long) into `scores`.
    public func rawScores(columns: [UnsafeBufferPointer<Double>], into scores: UnsafeMutableBufferPointer<Double>) {
        precondition(columns.count >= featureCount, "need one column per feature")
        precondition(columns.allSatisfy { $0.count >= scores.count }, "a column is shorter than the batch")
        guard scores.count > 0, let out = scores.baseAddress else { return }
        withUnsafeTemporaryAllocation(of: UnsafePointer<Double>?.self, capacity: max(featureCount, 1)) { pointers in
            for f in 0..<featureCount { pointers[f] = columns[f].baseAddress }
            score(columns: UnsafePointer(pointers.baseAddress!), rowStride: 1, first: 0, rows: scores.count, into: out,
                  threads: threads)
        }
    }

    // MARK: - Scoring

    private func score(
        rowMajor base: UnsafePointer<Double>?, rowStride: Int, first: Int, rows: Int, into out: UnsafeMutablePointer<Double>,
        threads: Int
    ) {
        withUnsafeTemporaryAllocation(of: UnsafePointer<Double>?.self, capacity: max(featureCount, 1)) { pointers in
            for f in 0..<featureCount { pointers[f] = base.map { $0 + f } }
            score(columns: UnsafePointer(pointers.baseAddress!), rowStride: rowStride, first: first, rows: rows, into: out,
                  threads: threads)
        }
    }

    /// Scores rows [first, first + rows) whose feature f is columns[f][row * rowStride].
    private func score(
        columns: UnsafePointer<UnsafePointer<Double>?>, rowStride: Int, first: Int, rows: Int,
        into out: UnsafeMutablePointer<Double>, threads: Int
    ) {
        let parallel = threads > 1 && rows * max(stepsPerRow, 1) >= configuration.minimumParallelWork
        let splitter = RowSplitter(rows: rows, threads: parallel ? threads : 1)
        let batch = Batch(columns: columns, rowStride: rowStride, out: out)
        splitter.run { start, count in
            if let storage {
                withUnsafePointer(to: storage.forest) { forest in
                    loupe_infer(forest, kernelPath.kernelIndex, batch.columns, batch.rowStride, first + start, count, batch.out)
                }
            } else {
                genericScores(columns: batch.columns, rowStride: batch.rowStride, first: first + start, rows: count, into: batch.out)
            }
        }
    }

    /// The caller's buffers, shared with the helper threads for the length of one call.
    ///
    /// `@unchecked Sendable`: the threads read the inputs and write disjoint rows of `out`, and
    /// the call returns only when every thread is done.
    private struct Batch: @unchecked Sendable {
        let columns: UnsafePointer<UnsafePointer<Double>?>
        let rowStride: Int
        let out: UnsafeMutablePointer<Double>
    }

    /// The reference walk, for models the flat form cannot hold.
    private func genericScores(
        columns: UnsafePointer<UnsafePointer<Double>?>, rowStride: Int, first: Int, rows: Int,
        into out: UnsafeMutablePointer<Double>
    ) {
        let n = featureCount
        withUnsafeTemporaryAllocation(of: Double.self, capacity: max(n, 1)) { row in
            for r in first..<(first + rows) {
                for f in 0..<n { row[f] = columns[f]![r * rowStride] }
                out[r] = ensemble.rawScore(UnsafeBufferPointer(row))
            }
        }
    }

    /// Calls `body` with a pointer to each column's storage.
    static func withColumnPointers<R>(
        _ columns: [[Double]], count: Int, _ body: (UnsafePointer<UnsafePointer<Double>?>) -> R
    ) -> R {
        withUnsafeTemporaryAllocation(of: UnsafePointer<Double>?.self, capacity: count) { pointers in
            pointers.initialize(repeating: nil)
            func bind(_ f: Int) -> R {
                if f == min(count, columns.count) { return body(UnsafePointer(pointers.baseAddress!)) }
                return columns[f].withUnsafeBufferPointer { column in
                    pointers[f] = column.baseAddress
                    return bind(f + 1)
                }
            }
            return bind(0)
        }
    }
}
