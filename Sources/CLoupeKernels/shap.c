// TreeSHAP from per-leaf subset tables: one pass over a tree's nodes records, per node, the
// features whose test the row has failed on the way there (a 64-bit mask); each leaf then adds
// its part to every feature on its path with one table read each. See loupe_shap.h; the
// kernels are in shap_kernel.h, compiled once per path.
#include "loupe_shap.h"
#include "loupe_inference.h"

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
    // Every CPU with the AVX2 path (AVX2 + BMI2, OS support checked) has pext.
    if (loupe_infer_available_paths() & (1 << LOUPE_PATH_AVX2)) return LOUPE_SHAP_PATH_BMI2;
#endif
    return LOUPE_SHAP_PATH_PORTABLE;
}

void loupe_shap_add_row(const loupe_shap_forest *m, int path, const double *x, double *phi, uint64_t *masks) {
#if defined(__x86_64__)
    if (path == LOUPE_SHAP_PATH_BMI2) { add_row_bmi2(m, x, phi, masks); return; }
#endif
    (void)path;
    add_row_portable(m, x, phi, masks);
}

void loupe_shap_add_rows(const loupe_shap_forest *m, int path, const double *x, size_t n, size_t stride, double *phi,
                         size_t phi_stride, uint64_t *masks) {
#if defined(__x86_64__)
    if (path == LOUPE_SHAP_PATH_BMI2) { add_rows_bmi2(m, x, n, stride, phi, phi_stride, masks); return; }
#endif
    (void)path;
    add_rows_portable(m, x, n, stride, phi, phi_stride, masks);
}
