#ifndef LOUPE_SHAP_H
#define LOUPE_SHAP_H
// TreeSHAP from per-leaf subset tables (Sources/TreeExplain/TreeExplainer.swift has the math).
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// How a node compares (the IR's threshold kinds; categorical models take the Swift path).
enum {
    LOUPE_SHAP_DOUBLE_LE = 0,       ///< x <= t in double; NaN follows the missing bit
    LOUPE_SHAP_FLOAT_LT = 1,        ///< (float)x < (float)t; NaN follows the missing bit
    LOUPE_SHAP_LE_ZERO_MISSING = 2, ///< x <= t, but NaN and |x| <= (double)1e-35f follow the missing bit
};

/// A forest's explanation tables, flat over all trees. Per tree t: internal nodes
/// node_start[t] ..< node_start[t + 1] (children local to the tree: >= 0 an internal node,
/// < 0 the leaf ~c), leaves leaf_start[t] ..< leaf_start[t + 1]. Per global leaf: leaf_depth distinct features
/// at leaf_features[leaf_offset ...] in ascending order (leaf_mask has their bits), with
/// (1 - z) / z each, and 2^depth table values v·Z(U∖B)·H(B) at table[table_offset[leaf] ...]
/// (bit k of a subset B = the leaf's k-th feature).
typedef struct {
    int32_t tree_count;
    const uint8_t *skip_tree;  ///< nonzero: the caller explains this tree another way
    const int32_t *node_start;
    const int32_t *node_feature;
    const int32_t *node_left;
    const int32_t *node_right;
    const uint8_t *node_kind;
    const uint8_t *node_missing_left;
    const double *node_threshold;
    const int32_t *leaf_start;
    const uint8_t *leaf_depth;
    const int32_t *leaf_offset;
    const int32_t *leaf_features;
    const uint64_t *leaf_mask;
    const double *leaf_ratio;
    const int64_t *table_offset;
    const double *table;

    // For the AVX-512 path (NULL when no tree takes it): trees of at most 64 internal nodes in
    // a forest of at most 16 features, whose row's node decisions fit one 64-bit word.
    /// Per tree: nonzero when the AVX-512 kernel explains it.
    const uint8_t *vector_tree;
    /// Per tree, leaves from leaf_start[t], in the order the other kernels update them (node
    /// by node, left child before right), so every path adds the same values in the same order.
    const int32_t *leaf_order;
    /// Per leaf: bit n set when its path goes left at the tree's internal node n.
    const uint64_t *leaf_direction;
    /// Per leaf feature entry (indexed like leaf_features): the internal nodes on the leaf's
    /// path that test that feature. A row passes every test of the feature on the path exactly
    /// when it goes the path's way at all of them: (decisions ^ direction) & nodes == 0.
    const uint64_t *leaf_feature_nodes;
    /// Features per row (the AVX-512 kernel keeps a row and its contributions in registers).
    int32_t feature_count;
} loupe_shap_forest;

/// Kernel paths: the portable one, one finding a leaf's subset with BMI2's pext (on x86-64
/// CPUs with AVX2, which all have BMI2), and one with AVX-512 (a tree's node decisions 8 at a
/// time, each leaf's subset from a vector test and its table reads as one gather; trees
/// without `vector_tree` take the BMI2 kernel). All give identical results.
enum {
    LOUPE_SHAP_PATH_PORTABLE = 0,
    LOUPE_SHAP_PATH_BMI2 = 1,
    LOUPE_SHAP_PATH_AVX512 = 2,
};

/// The fastest path this CPU runs.
int loupe_shap_best_path(void);

/// Adds the contributions of row x (one value per feature, at most 64 features) to phi.
/// `masks` holds one value per internal node of the largest tree.
void loupe_shap_add_row(const loupe_shap_forest *forest, int path, const double *x, double *phi, uint64_t *masks);

/// The same for n rows (row r at x + r * stride, its contributions added at phi + r * phi_stride),
/// tree by tree so each tree's tables are read from cache by all the rows. Each row's adds
/// happen in the same order as in loupe_shap_add_row, so the results are identical.
void loupe_shap_add_rows(const loupe_shap_forest *forest, int path, const double *x, size_t n, size_t stride,
                         double *phi, size_t phi_stride, uint64_t *masks);

#ifdef __cplusplus
}
#endif
#endif
