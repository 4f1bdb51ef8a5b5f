import CLoupeKernels

/// The flat form in memory the C kernels read: allocated once at load, never written after
/// `init`, freed with the storage.
///
/// `@unchecked Sendable`: the memory is immutable once built, and the kernels only read it, so
/// any number of threads may score with one storage at once.
final class ForestStorage: @unchecked Sendable {
    /// Pointers into this storage's memory; valid while the storage lives.
    let forest: loupe_forest
    /// Bytes of the per-tree arrays (entries, offsets).
    let treeBytes: Int
    private var allocations: [UnsafeMutableRawPointer] = []

    init(_ flat: FlatForest, treeBlockBytes: Int) {
        var allocations: [UnsafeMutableRawPointer] = []
        func copy<T>(_ array: [T]) -> UnsafePointer<T> {
            // Never zero bytes, so every pointer is real; 64-byte alignment for the vector loads.
            let bytes = max(array.count * MemoryLayout<T>.stride, 64)
            let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            allocations.append(raw)
            let typed = raw.bindMemory(to: T.self, capacity: max(array.count, 1))
            array.withUnsafeBufferPointer { source in
                if let base = source.baseAddress { typed.initialize(from: base, count: source.count) }
            }
            return UnsafePointer(typed)
        }
        let entries = flat.word.count
        treeBytes = entries * (4 + 4 + 8) + flat.treeCount * 16
        let perTree = flat.treeCount == 0 ? 1 : max(1, treeBytes / flat.treeCount)
        forest = loupe_forest(
            n_features: Int32(flat.featureCount),
            code_bytes: Int32(flat.codeBytes),
            nan_code: flat.nanCode,
            any_missing_left: flat.anyMissingLeft ? 1 : 0,
            feature_kind: copy(flat.featureKind),
            threshold_offset: copy(flat.thresholdOffset),
            thresholds_double: copy(flat.thresholdsDouble),
            thresholds_float: copy(flat.thresholdsFloat),
            n_trees: Int32(flat.treeCount),
            entry_base: copy(flat.entryBase),
            top: copy(flat.top),
            depth: copy(flat.depth),
            word: copy(flat.word),
            child: copy(flat.child),
            value: copy(flat.value),
            base_score: flat.baseScore,
            tree_block: Int32(clamping: max(1, treeBlockBytes / perTree)),
            layout: Int32(flat.bitvector == nil ? LOUPE_LAYOUT_WALK : LOUPE_LAYOUT_BITVECTOR),
            feature_row_base: copy(flat.bitvector?.featureRowBase ?? []),
            table_rows: UInt32(flat.bitvector?.tableRows ?? 0),
            bv_words: Int32(flat.bitvector?.words ?? 1),
            mask_table: copy(flat.bitvector?.maskTable ?? []),
            leaf_values: copy(flat.bitvector?.leafValues ?? []),
            group_feature_offset: copy(flat.bitvector?.groupFeatureOffset ?? []),
            group_features: copy(flat.bitvector?.groupFeatures ?? []),
            sum_float32: flat.sumsInFloat32 ? 1 : 0)
        self.allocations = allocations
    }

    deinit {
        for raw in allocations { raw.deallocate() }
    }
}
