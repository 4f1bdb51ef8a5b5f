// Scalar kernel of the bitvector layout (see loupe_forest): per group of 8 trees and per feature,
// one cache line of masks per word (the 8 trees' masks for the row's code) ANDed in; the lowest
// set bit of each tree's AND names its leaf. No branches on the data, so the cost of a tree
// does not depend on its depth or on the row. Four rows at a time: a row's adds form one
// dependency chain (they must stay in tree order), so four rows keep four chains in flight.
#include "inference_internal.h"

static LOUPE_ALWAYS_INLINE void rows_n(const loupe_forest *F, const uint32_t *slots, size_t r0, const int R,
                                       const int W, int32_t block, double *acc) {
    const int nf = F->n_features;
    const uint64_t *table = F->mask_table + (size_t)block * F->table_rows * W * LOUPE_BV_BLOCK;
    const int32_t t0 = block * LOUPE_BV_BLOCK;
    const int32_t t1 = F->n_trees - t0 < LOUPE_BV_BLOCK ? F->n_trees : t0 + LOUPE_BV_BLOCK;
    double a[4];
    const uint32_t *row[4];
    for (int q = 0; q < R; q++) {
        a[q] = acc[r0 + q];
        row[q] = slots + (r0 + q) * (size_t)nf;
    }
    for (int32_t g = t0 / LOUPE_BV_GROUP; g * LOUPE_BV_GROUP < t1; g++) {
        const uint8_t *features = F->group_features + F->group_feature_offset[g];
        const uint32_t n_features = F->group_feature_offset[g + 1] - F->group_feature_offset[g];
        const uint64_t *group = table + (g * LOUPE_BV_GROUP - t0);
        const int count = t1 - g * LOUPE_BV_GROUP < LOUPE_BV_GROUP ? t1 - g * LOUPE_BV_GROUP : LOUPE_BV_GROUP;
        const double *leaves = F->leaf_values + (size_t)g * LOUPE_BV_GROUP * 64 * W;
        for (int q = 0; q < R; q++) {
            uint64_t v[4 * LOUPE_BV_GROUP];
            for (int k = 0; k < W * LOUPE_BV_GROUP; k++) v[k] = ~0ull;
            for (uint32_t i = 0; i < n_features; i++) {
                const uint64_t *line = group + row[q][features[i]];
                for (int w = 0; w < W; w++)
                    for (int k = 0; k < LOUPE_BV_GROUP; k++) v[8 * w + k] &= line[64 * w + k];
            }
            if (F->sum_float32)
                for (int k = 0; k < count; k++) a[q] = (double)(float)(a[q] + leaves[64 * W * k + loupe_first_leaf(v, k, W)]);
            else
                for (int k = 0; k < count; k++) a[q] += leaves[64 * W * k + loupe_first_leaf(v, k, W)];  // tree order
        }
    }
    for (int q = 0; q < R; q++) acc[r0 + q] = a[q];
}

LOUPE_BV_INSTANCES(scalar, rows_n, )

void loupe_bitvector_scalar(const loupe_forest *F, const uint32_t *slots, size_t rows, int32_t block, double *acc) {
    LOUPE_BV_DISPATCH(scalar, F, slots, rows, block, acc);
}
