// AVX-512 tree kernel: the scalar kernel's walk with 16 rows per vector (one row per 32-bit
// lane) and four vectors in flight. Compiled for AVX-512 through a target attribute, so the
// package needs no global flags; loupe_infer only calls it when the CPU has AVX-512.
#include "inference_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512cd,avx2,bmi2")))

static T512 LOUPE_ALWAYS_INLINE __m512i gather_codes(__m512i index, const uint8_t *codes, const int cw) {
    return cw == 1 ? _mm512_i32gather_epi32(index, (const void *)codes, 1)
                   : _mm512_i32gather_epi32(index, (const void *)codes, 2);
}

/// One level of the walk for one vector of rows: e <- next + right.
static T512 LOUPE_ALWAYS_INLINE __m512i step(__m512i w, __m512i next, __m512i rowoff, const uint8_t *codes,
                                              const int cw, const int nan_aware, __m512i nanv) {
    const __m512i one = _mm512_set1_epi32(1);
    const __m512i f = _mm512_and_si512(_mm512_srli_epi32(w, LOUPE_WORD_FEATURE_SHIFT), _mm512_set1_epi32(0xFF));
    __m512i c = gather_codes(_mm512_add_epi32(rowoff, f), codes, cw);
    c = _mm512_and_si512(c, _mm512_set1_epi32(cw == 1 ? 0xFF : 0xFFFF));
    const __m512i thr = _mm512_and_si512(w, _mm512_set1_epi32(LOUPE_WORD_THRESHOLD_MASK));
    __mmask16 right = _mm512_cmpgt_epu32_mask(c, thr);
    if (nan_aware) {
        const __mmask16 left_nan =
            _mm512_mask_cmpeq_epi32_mask(_mm512_test_epi32_mask(w, _mm512_set1_epi32(LOUPE_WORD_MISSING_LEFT)), c, nanv);
        right = _kandn_mask16(left_nan, right);
    }
    return _mm512_mask_add_epi32(next, right, next, one);
}

static T512 LOUPE_ALWAYS_INLINE void walk(const loupe_forest *F, const uint8_t *codes, uint32_t stride, size_t r0,
                                          const int G, const int cw, const int nan_aware, int32_t t0, int32_t t1,
                                          double *acc) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i one = _mm512_set1_epi32(1);
    const __m512i nanv = _mm512_set1_epi32((int)F->nan_code);
    __m512i rowoff[4];
    __m512d lo[4], hi[4];
    for (int q = 0; q < G; q++) {
        rowoff[q] = _mm512_mullo_epi32(_mm512_add_epi32(_mm512_set1_epi32((int)(r0 + 16 * q)), lane),
                                       _mm512_set1_epi32((int)stride));
        lo[q] = _mm512_loadu_pd(acc + r0 + 16 * q);
        hi[q] = _mm512_loadu_pd(acc + r0 + 16 * q + 8);
    }
    for (int32_t t = t0; t < t1; t++) {
        const uint32_t base = F->entry_base[t];
        const int *W = (const int *)(F->word + base), *C = (const int *)(F->child + base);
        const double *V = F->value + base;
        const int top = F->top[t], depth = F->depth[t];
        __m512i e[4];
        for (int q = 0; q < G; q++) e[q] = _mm512_setzero_si512();
        int s = 0;
        if (top > 0) {
            // Level 0: every row is at the root.
            const __m512i w = _mm512_set1_epi32(W[0]);
            for (int q = 0; q < G; q++) e[q] = step(w, one, rowoff[q], codes, cw, nan_aware, nanv);
            s = 1;
        }
        for (; s < top; s++) {
            for (int q = 0; q < G; q++) {
                const __m512i w = _mm512_i32gather_epi32(e[q], W, 4);
                const __m512i next = _mm512_add_epi32(_mm512_add_epi32(e[q], e[q]), one);
                e[q] = step(w, next, rowoff[q], codes, cw, nan_aware, nanv);
            }
        }
        // Below the top, stop once every row is at a leaf (leaves are the only entries there
        // whose word is the always-left word, and they loop on themselves).
        const __m512i leaf_word = _mm512_set1_epi32((int)F->nan_code);
        for (; s < depth; s++) {
            __m512i w[4];
            __mmask16 busy = 0;
            for (int q = 0; q < G; q++) {
                w[q] = _mm512_i32gather_epi32(e[q], W, 4);
                busy |= _mm512_cmpneq_epi32_mask(w[q], leaf_word);
            }
            if (!busy) break;
            for (int q = 0; q < G; q++) {
                const __m512i next = _mm512_i32gather_epi32(e[q], C, 4);
                e[q] = step(w[q], next, rowoff[q], codes, cw, nan_aware, nanv);
            }
        }
        for (int q = 0; q < G; q++) {
            lo[q] = _mm512_add_pd(lo[q], _mm512_i32gather_pd(_mm512_castsi512_si256(e[q]), V, 8));
            hi[q] = _mm512_add_pd(hi[q], _mm512_i32gather_pd(_mm512_extracti32x8_epi32(e[q], 1), V, 8));
        }
    }
    for (int q = 0; q < G; q++) {
        _mm512_storeu_pd(acc + r0 + 16 * q, lo[q]);
        _mm512_storeu_pd(acc + r0 + 16 * q + 8, hi[q]);
    }
}

#define INSTANCE(NAME, G, CW, NAN)                                                                              \
    static T512 __attribute__((noinline)) void NAME(const loupe_forest *F, const uint8_t *codes, uint32_t stride, \
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

T512 void loupe_trees_avx512(const loupe_forest *F, const uint8_t *codes, uint32_t stride, size_t rows, int nan_aware,
                             int32_t t0, int32_t t1, double *acc) {
    const int u8 = F->code_bytes == 1;
    size_t r0 = 0;
    for (; r0 + 64 <= rows; r0 += 64) {
        if (u8) (nan_aware ? walk4_u8_nan : walk4_u8)(F, codes, stride, r0, t0, t1, acc);
        else (nan_aware ? walk4_u16_nan : walk4_u16)(F, codes, stride, r0, t0, t1, acc);
    }
    for (; r0 < rows; r0 += 16) {
        if (u8) (nan_aware ? walk1_u8_nan : walk1_u8)(F, codes, stride, r0, t0, t1, acc);
        else (nan_aware ? walk1_u16_nan : walk1_u16)(F, codes, stride, r0, t0, t1, acc);
    }
}
// Bitvector layout: a group's 8 masks per feature and word are one aligned vector. Four rows at a time, so four
// chains of in-order adds are in flight.
static T512 LOUPE_ALWAYS_INLINE void bv_rows(const loupe_forest *F, const uint32_t *slots, size_t r0, const int R,
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
            __m512i v[4];
            for (int w = 0; w < W; w++) v[w] = _mm512_set1_epi64(-1);
            for (uint32_t i = 0; i < n_features; i++) {
                const uint64_t *line = group + row[q][features[i]];
                for (int w = 0; w < W; w++) v[w] = _mm512_and_si512(v[w], _mm512_load_si512(line + 64 * w));
            }
            // Lowest set bits and leaf values in scalar code (measured faster than vplzcntq and a gather).
            _Alignas(64) uint64_t lanes[4 * 8];
            for (int w = 0; w < W; w++) _mm512_store_si512(lanes + 8 * w, v[w]);
            if (F->sum_float32)
                for (int k = 0; k < count; k++) a[q] = (double)(float)(a[q] + leaves[64 * W * k + loupe_first_leaf(lanes, k, W)]);
            else
                for (int k = 0; k < count; k++) a[q] += leaves[64 * W * k + loupe_first_leaf(lanes, k, W)];  // tree order
        }
    }
    for (int q = 0; q < R; q++) acc[r0 + q] = a[q];
}

LOUPE_BV_INSTANCES(bv512, bv_rows, T512)

T512 void loupe_bitvector_avx512(const loupe_forest *F, const uint32_t *slots, size_t rows, int32_t block, double *acc) {
    LOUPE_BV_DISPATCH(bv512, F, slots, rows, block, acc);
}
#endif
