import CLoupeKernels

/// The tables in memory the explainer owns (allocated once, read-only after), as the C
/// kernel's `loupe_shap_forest`; the Swift path reads the same pointers.
final class ExplainStorage: @unchecked Sendable {
    // @unchecked: the buffers are written in init and only read afterwards, from any thread.
    let forest: loupe_shap_forest
    private var owned: [UnsafeMutableRawPointer] = []

    init(_ t: ExplainTables) {
        var owned: [UnsafeMutableRawPointer] = []
        func copy<T>(_ a: [T]) -> UnsafePointer<T> {
            let p = UnsafeMutablePointer<T>.allocate(capacity: max(a.count, 1))
            p.initialize(from: a, count: a.count)
            owned.append(UnsafeMutableRawPointer(p))
            return UnsafePointer(p)
        }
        forest = loupe_shap_forest(
            tree_count: Int32(t.leafStart.count), skip_tree: copy(t.referenceTree), node_start: copy(t.nodeStart),
            node_feature: copy(t.nodeFeature), node_left: copy(t.nodeLeft), node_right: copy(t.nodeRight),
            node_kind: copy(t.nodeKind), node_missing_left: copy(t.nodeMissingLeft), node_threshold: copy(t.nodeThreshold),
            leaf_start: copy(t.leafStart + [Int32(t.leafDepth.count)]), leaf_depth: copy(t.leafDepth), leaf_offset: copy(t.leafOffset),
            leaf_features: copy(t.leafFeatures), leaf_mask: copy(t.leafMask), leaf_ratio: copy(t.leafRatio),
            table_offset: copy(t.tableOffset), table: copy(t.table), vector_tree: copy(t.vectorTree),
            leaf_order: copy(t.leafOrder), leaf_direction: copy(t.leafDirection),
            leaf_feature_nodes: copy(t.leafFeatureNodes), feature_count: Int32(t.featureCount))
        self.owned = owned
    }

    deinit {
        for p in owned { p.deallocate() }
    }
}
