// TreeSHAP from per-leaf subset tables: one pass over a tree's nodes records, per node, the
// features whose test the row has failed on the way there (a 64-bit mask); each leaf then adds
// its part to every feature on its path with one table read each. See loupe_shap.h; the
// kernels are in shap_kernel.h, compiled once per path.
#include "loupe_inference.h"
#include "shap_internal.h"

static const double zero_threshold = (double)1e-35f;

static inline int goes_left(uint8_t kind, uint8_t missing_left, double threshold, double v) {
    if (v != v) return missing_left;
    if (kind == LOUPE_SHAP_DOUBLE_LE) return v <= threshold;
    if (kind == LOUPE_SHAP_FLOAT_LT) return (float)v < (float)threshold;
    if (v >= -zero_threshold && v <= zero_threshold) return missing_left;
    return v <= threshold;
}

// Portable: gather the pass bits feature by feature.
static inline unsigned subset_portable(uint64_t failed, const int32_t *features, int d) {
    unsigned a = 0;
    for (int k = 0; k < d; k++) a |= (unsigned)(((~failed) >> features[k]) & 1) << k;
    return a;
}

#define SHAP_SUFFIX portable
#define SHAP_TARGET
#define SHAP_SUBSET(m, leaf, failed, features, d) subset_portable(failed, features, d)
#include "shap_kernel.h"
#undef SHAP_SUFFIX
#undef SHAP_TARGET
#undef SHAP_SUBSET

#if defined(__x86_64__)
#include <immintrin.h>
// BMI2: the leaf's features are in ascending order, so pext of the pass bits under the leaf's
// feature mask is the subset in one instruction.
#define SHAP_SUFFIX bmi2
#define SHAP_TARGET __attribute__((target("bmi2")))
#define SHAP_SUBSET(m, leaf, failed, features, d) ((unsigned)_pext_u64(~(failed), (m)->leaf_mask[leaf]))
#include "shap_kernel.h"
#undef SHAP_SUFFIX
#undef SHAP_TARGET
#undef SHAP_SUBSET
#endif

int loupe_shap_best_path(void) {
#if defined(__x86_64__)
    const int paths = loupe_infer_available_paths();
    if (paths & (1 << LOUPE_PATH_AVX512)) return LOUPE_SHAP_PATH_AVX512;
    // Every CPU with the AVX2 path (AVX2 + BMI2, OS support checked) has pext.
    if (paths & (1 << LOUPE_PATH_AVX2)) return LOUPE_SHAP_PATH_BMI2;
#endif
    return LOUPE_SHAP_PATH_PORTABLE;
}

#if defined(__x86_64__)
/// AVX-512: tree by tree, the vector kernel for the trees it takes, the BMI2 one for the others.
static __attribute__((target("bmi2"))) void add_rows_avx512(const loupe_shap_forest *m, const double *x, size_t n,
                                                              size_t stride, double *phi, size_t phi_stride,
                                                              uint64_t *masks) {
    for (int32_t t = 0; t < m->tree_count; t++) {
        if (m->skip_tree[t]) continue;
        if (m->vector_tree && m->vector_tree[t]) {
            loupe_shap_tree_rows_avx512(m, t, x, n, stride, phi, phi_stride);
        } else {
            for (size_t r = 0; r < n; r++) tree_row_bmi2(m, t, x + r * stride, phi + r * phi_stride, masks);
        }
    }
}
#endif

/// A path this CPU cannot run is taken as the portable one.
static int usable(int path) {
#if defined(__x86_64__)
    const int paths = loupe_infer_available_paths();
    if (path == LOUPE_SHAP_PATH_AVX512 && (paths & (1 << LOUPE_PATH_AVX512))) return path;
    if (path == LOUPE_SHAP_PATH_BMI2 && (paths & (1 << LOUPE_PATH_AVX2))) return path;
#endif
    (void)path;
    return LOUPE_SHAP_PATH_PORTABLE;
}

void loupe_shap_add_row(const loupe_shap_forest *m, int path, const double *x, double *phi, uint64_t *masks) {
    loupe_shap_add_rows(m, path, x, 1, 0, phi, 0, masks);
}

void loupe_shap_add_rows(const loupe_shap_forest *m, int path, const double *x, size_t n, size_t stride, double *phi,
                         size_t phi_stride, uint64_t *masks) {
    path = usable(path);
#if defined(__x86_64__)
    if (path == LOUPE_SHAP_PATH_AVX512) { add_rows_avx512(m, x, n, stride, phi, phi_stride, masks); return; }
    if (path == LOUPE_SHAP_PATH_BMI2) { add_rows_bmi2(m, x, n, stride, phi, phi_stride, masks); return; }
#endif
    add_rows_portable(m, x, n, stride, phi, phi_stride, masks);
}
