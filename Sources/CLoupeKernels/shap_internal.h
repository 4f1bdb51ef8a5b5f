#ifndef LOUPE_SHAP_INTERNAL_H
#define LOUPE_SHAP_INTERNAL_H
// Shared by the TreeSHAP kernels (not part of the module's interface).
#include "loupe_shap.h"

#define LOUPE_SHAP_INLINE inline __attribute__((always_inline))

#if defined(__x86_64__)
/// Adds tree t's contributions of rows r < n (row r at x + r * stride, its contributions at
/// phi + r * phi_stride). Only for trees with vector_tree[t] set; needs AVX-512.
void loupe_shap_tree_rows_avx512(const loupe_shap_forest *m, int32_t t, const double *x, size_t n, size_t stride,
                                 double *phi, size_t phi_stride);
#endif

#endif
