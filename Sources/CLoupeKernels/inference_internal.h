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

#if defined(__x86_64__)
/// The bitvector layout's slots of the first m & ~7 rows (what quantize_slots in inference.c
/// computes, bit for bit); returns how many rows it did.
size_t loupe_quantize_slots_avx512(const loupe_forest *forest, const double *const *columns, size_t row_stride,
                                   size_t first, size_t m, uint32_t *slots);
#endif

#define LOUPE_ALWAYS_INLINE inline __attribute__((always_inline))

/// Bitvector layout: the leaf of tree k of a group, from its AND `v` (word w of tree k at
/// v[8 w + k]): the lowest set bit of the lowest nonzero word.
static LOUPE_ALWAYS_INLINE unsigned loupe_first_leaf(const uint64_t *v, int k, const int words) {
    if (words == 1) return (unsigned)__builtin_ctzll(v[k]);
    unsigned leaf = 0;
    for (int w = words - 1; w >= 0; w--) {
        const uint64_t word = v[8 * w + k];
        leaf = word ? 64u * (unsigned)w + (unsigned)__builtin_ctzll(word) : leaf;
    }
    return leaf;
}

/// Bitvector kernels for R rows from r0 and masks of W words, as one instance per (R, W): the
/// kernel bodies take R and W as constants, `LOUPE_BV_INSTANCES(prefix, body, attributes)`
/// declares prefix_r4_w1 … prefix_r1_w4 and `LOUPE_BV_DISPATCH` runs them over all rows.
#define LOUPE_BV_INSTANCE(NAME, BODY, ATTR, R, W)                                                          \
    static ATTR __attribute__((noinline)) void NAME(const loupe_forest *F, const uint32_t *slots, size_t r0, \
                                                    int32_t block, double *acc) {                          \
        BODY(F, slots, r0, R, W, block, acc);                                                             \
    }
#define LOUPE_BV_INSTANCES(P, BODY, ATTR)                                                                  \
    LOUPE_BV_INSTANCE(P##_r4_w1, BODY, ATTR, 4, 1)                                                         \
    LOUPE_BV_INSTANCE(P##_r4_w2, BODY, ATTR, 4, 2)                                                         \
    LOUPE_BV_INSTANCE(P##_r4_w4, BODY, ATTR, 4, 4)                                                         \
    LOUPE_BV_INSTANCE(P##_r1_w1, BODY, ATTR, 1, 1)                                                         \
    LOUPE_BV_INSTANCE(P##_r1_w2, BODY, ATTR, 1, 2)                                                         \
    LOUPE_BV_INSTANCE(P##_r1_w4, BODY, ATTR, 1, 4)
#define LOUPE_BV_DISPATCH(P, F, slots, rows, block, acc)                                                   \
    do {                                                                                                   \
        const int w_ = (F)->bv_words;                                                                      \
        size_t r_ = 0;                                                                                     \
        for (; r_ + 4 <= (rows); r_ += 4)                                                                  \
            (w_ == 1 ? P##_r4_w1 : w_ == 2 ? P##_r4_w2 : P##_r4_w4)(F, slots, r_, block, acc);               \
        for (; r_ < (rows); r_++) (w_ == 1 ? P##_r1_w1 : w_ == 2 ? P##_r1_w2 : P##_r1_w4)(F, slots, r_, block, acc); \
    } while (0)

#endif
