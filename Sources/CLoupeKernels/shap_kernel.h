// The TreeSHAP row kernels, included by shap.c once per path with SHAP_SUFFIX (name suffix),
// SHAP_TARGET (function attributes) and SHAP_SUBSET(m, leaf, failed, features, d) (the leaf's
// subset of passed features: bit k set when the row passes every test of its k-th feature).

#define SHAP_CAT2(a, b) a##b
#define SHAP_CAT(a, b) SHAP_CAT2(a, b)
#define SHAP_FN(name) SHAP_CAT(name, SHAP_SUFFIX)

// The table holds T(B) = v·Z(U∖B)·H(B), so with A the passed features:
//   φ_i −= T(A) for i ∉ A,   φ_i += (1 − z_i)/z_i · T(A∖{i}) for i ∈ A
// (T(A∖{i}) carries the z_i that the ratio turns into 1 − z_i): one table read per feature,
// no products over the path.
static inline SHAP_TARGET void SHAP_FN(leaf_update_)(const loupe_shap_forest *m, int32_t leaf, uint64_t failed,
                                                     double *phi) {
    const int d = m->leaf_depth[leaf];
    const int32_t off = m->leaf_offset[leaf];
    const int32_t *features = m->leaf_features + off;
    const double *ratio = m->leaf_ratio + off;
    const double *table = m->table + m->table_offset[leaf];
    const unsigned a = SHAP_SUBSET(m, leaf, failed, features, d);
    const double outside = table[a];
    // Branch-free: which features the row passes depends on the data.
    for (int k = 0; k < d; k++) {
        const double inside = ratio[k] * table[a ^ (1u << k)];
        phi[features[k]] += ((a >> k) & 1) ? inside : -outside;
    }
}

static inline SHAP_TARGET void SHAP_FN(tree_row_)(const loupe_shap_forest *m, int32_t t, const double *x, double *phi,
                                                  uint64_t *masks) {
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
        if (lc >= 0) masks[lc] = lm; else SHAP_FN(leaf_update_)(m, l0 + ~lc, lm, phi);
        if (rc >= 0) masks[rc] = rm; else SHAP_FN(leaf_update_)(m, l0 + ~rc, rm, phi);
    }
}

static SHAP_TARGET void SHAP_FN(add_rows_)(const loupe_shap_forest *m, const double *x, size_t n, size_t stride,
                                           double *phi, size_t phi_stride, uint64_t *masks) {
    // Tree-major: one tree's tables (tens of KB) stay in cache while every row of the block
    // visits them; row-major order would miss on every leaf of every tree for every row.
    for (int32_t t = 0; t < m->tree_count; t++) {
        if (m->skip_tree[t]) continue;
        for (size_t r = 0; r < n; r++) SHAP_FN(tree_row_)(m, t, x + r * stride, phi + r * phi_stride, masks);
    }
}

#undef SHAP_FN
#undef SHAP_CAT
#undef SHAP_CAT2
