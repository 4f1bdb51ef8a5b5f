#ifndef LOUPE_INFERENCE_INTERNAL_H
#define LOUPE_INFERENCE_INTERNAL_H
// Shared by the inference kernels (not part of the module's interface).
#include "loupe_inference.h"

/// Adds the leaf values of trees [t0, t1) to acc[r] for the rows r < rows of a block whose codes
/// are row-major (row r's code of feature f at index r * stride + f, `code_bytes` wide). `rows`
/// is a multiple of 16; the code buffer has at least 4 readable bytes past its last code.
/// `nan_aware` says the block has NaN codes and the forest sends some NaN left.
typedef void (*loupe_tree_kernel)(const loupe_forest *forest, const uint8_t *codes, uint32_t stride, size_t rows,
                                  int nan_aware, int32_t t0, int32_t t1, double *acc);

void loupe_trees_scalar(const loupe_forest *forest, const uint8_t *codes, uint32_t stride, size_t rows,
                        int nan_aware, int32_t t0, int32_t t1, double *acc);
#if defined(__x86_64__)
void loupe_trees_avx2(const loupe_forest *forest, const uint8_t *codes, uint32_t stride, size_t rows,
                      int nan_aware, int32_t t0, int32_t t1, double *acc);
void loupe_trees_avx512(const loupe_forest *forest, const uint8_t *codes, uint32_t stride, size_t rows,
                        int nan_aware, int32_t t0, int32_t t1, double *acc);
#endif

/// Bitvector layout: adds the leaf values of the trees of block `block` (in tree order) to
/// acc[r] for rows r < rows, whose rank rows (times 64) are slots[r * n_features + f].
typedef void (*loupe_bitvector_kernel)(const loupe_forest *forest, const uint32_t *slots, size_t rows,
                                       int32_t block, double *acc);

void loupe_bitvector_scalar(const loupe_forest *forest, const uint32_t *slots, size_t rows, int32_t block,
                            double *acc);
#if defined(__x86_64__)
void loupe_bitvector_avx2(const loupe_forest *forest, const uint32_t *slots, size_t rows, int32_t block,
                          double *acc);
void loupe_bitvector_avx512(const loupe_forest *forest, const uint32_t *slots, size_t rows, int32_t block,
                            double *acc);
#endif

#define LOUPE_ALWAYS_INLINE inline __attribute__((always_inline))

#endif
