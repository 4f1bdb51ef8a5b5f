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
/// < 0 the leaf ~c), leaves from leaf_start[t]. Per global leaf: leaf_depth distinct features
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
} loupe_shap_forest;

/// Kernel paths: the portable one, and one finding a leaf's subset with BMI2's pext (on
/// x86-64 CPUs with AVX2, which all have BMI2). Both give identical results.
enum {
    LOUPE_SHAP_PATH_PORTABLE = 0,
    LOUPE_SHAP_PATH_BMI2 = 1,
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
