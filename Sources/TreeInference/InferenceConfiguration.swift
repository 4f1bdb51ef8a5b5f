/// How a `CompiledEnsemble` scores rows.
public struct InferenceConfiguration: Sendable, Equatable {
    /// The kernel family; nil picks the fastest one this CPU runs (`KernelPath.best`).
    public var path: KernelPath?
    /// The tree layout; nil picks `.bitvector` when every tree has at most 256 leaves (and its
    /// mask table stays under 128 MiB), else `.walk`.
    public var layout: TreeLayout?
    /// Threads for large batches (the caller's thread counts as one); 0 uses every core.
    /// Small batches always run on the caller's thread. Results never depend on it.
    public var threads: Int
    /// Walk layout: levels at the top of each tree stored as a complete binary tree and walked
    /// without child pointers (0...12). Deeper levels follow stored child pointers.
    public var completeTopLevels: Int
    /// Walk layout: bytes of flattened trees scored together over each group of rows (cache
    /// blocking). The bitvector layout always blocks trees by 64.
    public var treeBlockBytes: Int
    /// Work (rows × tree levels) below which a batch stays on the caller's thread: waking a
    /// helper thread costs more than it saves on small batches. The default is about 50 µs of
    /// work; 0 splits every batch of at least 128 rows.
    public var minimumParallelWork: Int

    public init(
        path: KernelPath? = nil, layout: TreeLayout? = nil, threads: Int = 0, completeTopLevels: Int = 6,
        treeBlockBytes: Int = 256 << 10, minimumParallelWork: Int = 400_000
    ) {
        self.path = path
        self.layout = layout
        self.threads = threads
        self.completeTopLevels = completeTopLevels
        self.treeBlockBytes = treeBlockBytes
        self.minimumParallelWork = minimumParallelWork
    }
}

/// How the flat form lays out the trees (docs/INFERENCE.md).
public enum TreeLayout: String, Sendable, CaseIterable {
    /// Leaf bitvectors (QuickScorer-style): per tree and feature one table lookup and an AND;
    /// the cost does not depend on the depth. Trees of at most 256 leaves.
    case bitvector
    /// A level-by-level walk over a complete top and child pairs below it; any tree shape.
    case walk
}
