// TreeSHAP from per-leaf subset tables: one pass over a tree's nodes records, per node, the
// features whose test the row has failed on the way there (a 64-bit mask); each leaf then adds
// its part to every feature on its path with one table read. See loupe_shap.h.
#include "loupe_shap.h"

static const double zero_threshold = (double)1e-35f;

static inline int goes_left(uint8_t kind, uint8_t missing_left, double threshold, double v) {
    if (v != v) return missing_left;
    if (kind == LOUPE_SHAP_DOUBLE_LE) return v <= threshold;
    if (kind == LOUPE_SHAP_FLOAT_LT) return (float)v < (float)threshold;
    if (v >= -zero_threshold && v <= zero_threshold) return missing_left;
    return v <= threshold;
}

static inline void leaf_update(const loupe_shap_forest *m, int32_t leaf, uint64_t failed, double *phi) {
    const int d = m->leaf_depth[leaf];
    const int32_t *features = m->leaf_features + m->leaf_offset[leaf];
    const double *z = m->leaf_z + m->leaf_offset[leaf];
    const double *one_minus_z = m->leaf_one_minus_z + m->leaf_offset[leaf];
    const double *table = m->table + m->table_offset[leaf];
    // Branch-free: which features the row passes depends on the data, so branches on it
    // would be mispredicted about half the time.
    unsigned a = 0;
    double zc = 1.0;
    for (int k = 0; k < d; k++) {
        const unsigned pass = !((failed >> features[k]) & 1);
        a |= pass << k;
        zc *= pass ? 1.0 : z[k];
    }
    const double outside = zc * table[a];
    for (int k = 0; k < d; k++) {
        const double inside = one_minus_z[k] * zc * table[a ^ (1u << k)];
        phi[features[k]] += ((a >> k) & 1) ? inside : -outside;
    }
}

static inline void tree_row(const loupe_shap_forest *m, int32_t t, const double *x, double *phi, uint64_t *masks) {
    const int32_t n0 = m->node_start[t], count = m->node_start[t + 1] - n0;
    const int32_t l0 = m->leaf_start[t];
    masks[0] = 0;
    for (int32_t n = 0; n < count; n++) {
        const int32_t g = n0 + n;
        const int32_t f = m->node_feature[g];
        const int left = goes_left(m->node_kind[g], m->node_missing_left[g], m->node_threshold[g], x[f]);
        const uint64_t mask = masks[n], bit = UINT64_C(1) << f;
        const uint64_t lm = left ? mask : (mask | bit), rm = left ? (mask | bit) : mask;
        const int32_t lc = m->node_left[g], rc = m->node_right[g];
        if (lc >= 0) masks[lc] = lm; else leaf_update(m, l0 + ~lc, lm, phi);
        if (rc >= 0) masks[rc] = rm; else leaf_update(m, l0 + ~rc, rm, phi);
    }
}

void loupe_shap_add_row(const loupe_shap_forest *m, const double *x, double *phi, uint64_t *masks) {
    for (int32_t t = 0; t < m->tree_count; t++)
        if (!m->skip_tree[t]) tree_row(m, t, x, phi, masks);
}

void loupe_shap_add_rows(const loupe_shap_forest *m, const double *x, size_t n, size_t stride, double *phi,
                         size_t phi_stride, uint64_t *masks) {
    // Tree-major: one tree's tables (tens of KB) stay in cache while every row of the block
    // visits them; row-major order would miss on every leaf of every tree for every row.
    for (int32_t t = 0; t < m->tree_count; t++) {
        if (m->skip_tree[t]) continue;
        for (size_t r = 0; r < n; r++) tree_row(m, t, x + r * stride, phi + r * phi_stride, masks);
    }
}
