// AVX2 tree kernel: the scalar kernel's walk with 8 rows per vector (one row per 32-bit lane)
// and four vectors in flight. Compiled for AVX2 through a target attribute, so the package
// needs no global flags; loupe_infer only calls it when the CPU has AVX2.
#include "inference_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define T256 __attribute__((target("avx2,bmi2")))

/// One level of the walk for one vector of rows: e <- next + right. Codes and thresholds are
/// below 2^16, so the signed compare is the unsigned one.
static T256 LOUPE_ALWAYS_INLINE __m256i step(__m256i w, __m256i next, __m256i rowoff, const uint8_t *codes,
                                              const int cw, const int nan_aware, __m256i nanv) {
    const __m256i f = _mm256_and_si256(_mm256_srli_epi32(w, LOUPE_WORD_FEATURE_SHIFT), _mm256_set1_epi32(0xFF));
    const __m256i index = _mm256_add_epi32(rowoff, f);
    __m256i c = cw == 1 ? _mm256_i32gather_epi32((const int *)codes, index, 1)
                        : _mm256_i32gather_epi32((const int *)codes, index, 2);
    c = _mm256_and_si256(c, _mm256_set1_epi32(cw == 1 ? 0xFF : 0xFFFF));
    const __m256i thr = _mm256_and_si256(w, _mm256_set1_epi32(LOUPE_WORD_THRESHOLD_MASK));
    __m256i right = _mm256_cmpgt_epi32(c, thr); // -1 where the row goes right
    if (nan_aware) {
        const __m256i dl = _mm256_set1_epi32(LOUPE_WORD_MISSING_LEFT);
        const __m256i left_nan =
            _mm256_and_si256(_mm256_cmpeq_epi32(c, nanv), _mm256_cmpeq_epi32(_mm256_and_si256(w, dl), dl));
        right = _mm256_andnot_si256(left_nan, right);
    }
    return _mm256_sub_epi32(next, right);
}

static T256 LOUPE_ALWAYS_INLINE void walk(const loupe_forest *F, const uint8_t *codes, uint32_t stride, size_t r0,
                                          const int G, const int cw, const int nan_aware, int32_t t0, int32_t t1,
                                          double *acc) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i one = _mm256_set1_epi32(1);
    const __m256i nanv = _mm256_set1_epi32((int)F->nan_code);
    __m256i rowoff[4];
    __m256d lo[4], hi[4];
    for (int q = 0; q < G; q++) {
        rowoff[q] = _mm256_mullo_epi32(_mm256_add_epi32(_mm256_set1_epi32((int)(r0 + 8 * q)), lane),
                                       _mm256_set1_epi32((int)stride));
        lo[q] = _mm256_loadu_pd(acc + r0 + 8 * q);
        hi[q] = _mm256_loadu_pd(acc + r0 + 8 * q + 4);
    }
    for (int32_t t = t0; t < t1; t++) {
        const uint32_t base = F->entry_base[t];
        const int *W = (const int *)(F->word + base), *C = (const int *)(F->child + base);
        const double *V = F->value + base;
        const int top = F->top[t], depth = F->depth[t];
        __m256i e[4];
        for (int q = 0; q < G; q++) e[q] = _mm256_setzero_si256();
        int s = 0;
        if (top > 0) {
            const __m256i w = _mm256_set1_epi32(W[0]);
            for (int q = 0; q < G; q++) e[q] = step(w, one, rowoff[q], codes, cw, nan_aware, nanv);
            s = 1;
        }
        for (; s < top; s++) {
            for (int q = 0; q < G; q++) {
                const __m256i w = _mm256_i32gather_epi32(W, e[q], 4);
                const __m256i next = _mm256_add_epi32(_mm256_add_epi32(e[q], e[q]), one);
                e[q] = step(w, next, rowoff[q], codes, cw, nan_aware, nanv);
            }
        }
        // Below the top, stop once every row is at a leaf (leaves are the only entries there
        // whose word is the always-left word, and they loop on themselves).
        const __m256i leaf_word = _mm256_set1_epi32((int)F->nan_code);
        for (; s < depth; s++) {
            __m256i w[4];
            __m256i at_leaf = _mm256_set1_epi32(-1);
            for (int q = 0; q < G; q++) {
                w[q] = _mm256_i32gather_epi32(W, e[q], 4);
                at_leaf = _mm256_and_si256(at_leaf, _mm256_cmpeq_epi32(w[q], leaf_word));
            }
            if (_mm256_movemask_epi8(at_leaf) == -1) break;
            for (int q = 0; q < G; q++) {
                const __m256i next = _mm256_i32gather_epi32(C, e[q], 4);
                e[q] = step(w[q], next, rowoff[q], codes, cw, nan_aware, nanv);
            }
        }
        for (int q = 0; q < G; q++) {
            lo[q] = _mm256_add_pd(lo[q], _mm256_i32gather_pd(V, _mm256_castsi256_si128(e[q]), 8));
            hi[q] = _mm256_add_pd(hi[q], _mm256_i32gather_pd(V, _mm256_extracti128_si256(e[q], 1), 8));
        }
    }
    for (int q = 0; q < G; q++) {
        _mm256_storeu_pd(acc + r0 + 8 * q, lo[q]);
        _mm256_storeu_pd(acc + r0 + 8 * q + 4, hi[q]);
    }
}

#define INSTANCE(NAME, G, CW, NAN)                                                                              \
    static T256 __attribute__((noinline)) void NAME(const loupe_forest *F, const uint8_t *codes, uint32_t stride, \
                                                    size_t r0, int32_t t0, int32_t t1, double *acc) {           \
        walk(F, codes, stride, r0, G, CW, NAN, t0, t1, acc);                                                     \
    }
INSTANCE(walk4_u8, 4, 1, 0)
INSTANCE(walk4_u8_nan, 4, 1, 1)
INSTANCE(walk4_u16, 4, 2, 0)
INSTANCE(walk4_u16_nan, 4, 2, 1)
INSTANCE(walk1_u8, 1, 1, 0)
INSTANCE(walk1_u8_nan, 1, 1, 1)
INSTANCE(walk1_u16, 1, 2, 0)
INSTANCE(walk1_u16_nan, 1, 2, 1)
#undef INSTANCE

T256 void loupe_trees_avx2(const loupe_forest *F, const uint8_t *codes, uint32_t stride, size_t rows, int nan_aware,
                           int32_t t0, int32_t t1, double *acc) {
    const int u8 = F->code_bytes == 1;
    size_t r0 = 0;
    for (; r0 + 32 <= rows; r0 += 32) {
        if (u8) (nan_aware ? walk4_u8_nan : walk4_u8)(F, codes, stride, r0, t0, t1, acc);
        else (nan_aware ? walk4_u16_nan : walk4_u16)(F, codes, stride, r0, t0, t1, acc);
    }
    for (; r0 < rows; r0 += 8) {
        if (u8) (nan_aware ? walk1_u8_nan : walk1_u8)(F, codes, stride, r0, t0, t1, acc);
        else (nan_aware ? walk1_u16_nan : walk1_u16)(F, codes, stride, r0, t0, t1, acc);
    }
}
// Bitvector layout: a group's 8 masks per feature and word are two aligned vectors. Four rows at a time, so four
// chains of in-order adds are in flight.
static T256 LOUPE_ALWAYS_INLINE void bv_rows(const loupe_forest *F, const uint32_t *slots, size_t r0, const int R,
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
            __m256i lo[4], hi[4];
            for (int w = 0; w < W; w++) lo[w] = hi[w] = _mm256_set1_epi64x(-1);
            for (uint32_t i = 0; i < n_features; i++) {
                const uint64_t *line = group + row[q][features[i]];
                for (int w = 0; w < W; w++) {
                    lo[w] = _mm256_and_si256(lo[w], _mm256_load_si256((const __m256i *)(line + 64 * w)));
                    hi[w] = _mm256_and_si256(hi[w], _mm256_load_si256((const __m256i *)(line + 64 * w + 4)));
                }
            }
            _Alignas(32) uint64_t lanes[4 * 8];
            for (int w = 0; w < W; w++) {
                _mm256_store_si256((__m256i *)(lanes + 8 * w), lo[w]);
                _mm256_store_si256((__m256i *)(lanes + 8 * w + 4), hi[w]);
            }
            if (F->sum_float32)
                for (int k = 0; k < count; k++) a[q] = (double)(float)(a[q] + leaves[64 * W * k + loupe_first_leaf(lanes, k, W)]);
            else
                for (int k = 0; k < count; k++) a[q] += leaves[64 * W * k + loupe_first_leaf(lanes, k, W)];  // tree order
        }
    }
    for (int q = 0; q < R; q++) acc[r0 + q] = a[q];
}

LOUPE_BV_INSTANCES(bv256, bv_rows, T256)

T256 void loupe_bitvector_avx2(const loupe_forest *F, const uint32_t *slots, size_t rows, int32_t block, double *acc) {
    LOUPE_BV_DISPATCH(bv256, F, slots, rows, block, acc);
}
#endif
