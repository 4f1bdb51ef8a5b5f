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
// Bitvector layout, in two phases per 16 rows (then 8, then 1) and block of 64 trees. Phase 1,
// per row: the AND over the block's features of the row's table strip (per feature one 512-byte
// strip per mask word: 8 vectors for 64 one-word trees, so a feature costs one slot load and 8
// ANDs for the whole block), each tree's lowest set bit by lzcnt, and its leaf value by one
// gather per 8 trees, into a buffer. Phase 2: the rows' sums, each tree's value added in tree
// order, 8 rows per vector; with 16 rows two such chains of dependent adds are in flight.
#define BV_MAX_ROWS 16

/// The block's features: those any of its groups tests (ANDing an untested feature's all-ones
/// masks would change nothing, but cost loads).
static T512 int block_features(const loupe_forest *F, int32_t block, uint8_t *out) {
    uint64_t seen[4] = {0, 0, 0, 0};
    const int32_t g0 = block * (LOUPE_BV_BLOCK / LOUPE_BV_GROUP);
    const int32_t groups = (F->n_trees + LOUPE_BV_GROUP - 1) / LOUPE_BV_GROUP;
    const int32_t g1 = g0 + LOUPE_BV_BLOCK / LOUPE_BV_GROUP < groups ? g0 + LOUPE_BV_BLOCK / LOUPE_BV_GROUP : groups;
    for (uint32_t i = F->group_feature_offset[g0]; i < F->group_feature_offset[g1]; i++) {
        const uint8_t f = F->group_features[i];
        seen[f >> 6] |= UINT64_C(1) << (f & 63);
    }
    int n = 0;
    for (int f = 0; f < F->n_features; f++)
        if (seen[f >> 6] >> (f & 63) & 1) out[n++] = (uint8_t)f;
    return n;
}

/// Phase 1 for one row: vals[k] = the leaf value of tree t0 + k for k < count (64 slots).
static T512 LOUPE_ALWAYS_INLINE void bv_row_values(const uint64_t *table, const uint32_t *row, const uint8_t *features,
                                                int n_features, const double *leaves, int count, const int W,
                                                double *vals) {
    const int chunk = 8 / W;  // groups of 8 trees per pass: 8 / W groups × W words = 8 vectors
    const __m512i lane = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    for (int c = 0; c < 8 && 8 * c < count; c += chunk) {
        // The first feature's strip starts the ANDs, then two strips per three-way AND (one
        // vpternlogq for two loads: the loads are the floor, this halves the ALU work).
        __m512i v[8];
        int i = 0;
        if (n_features > 0) {
            const uint64_t *strip = table + row[features[0]] + 8 * c;
            for (int g = 0; g < chunk; g++)
                for (int w = 0; w < W; w++) v[g * W + w] = _mm512_load_si512(strip + 64 * w + 8 * g);
            i = 1;
        } else {
            for (int k = 0; k < 8; k++) v[k] = _mm512_set1_epi64(-1);
        }
        for (; i + 1 < n_features; i += 2) {
            const uint64_t *a = table + row[features[i]] + 8 * c, *b = table + row[features[i + 1]] + 8 * c;
            for (int g = 0; g < chunk; g++)
                for (int w = 0; w < W; w++)
                    v[g * W + w] = _mm512_ternarylogic_epi64(v[g * W + w], _mm512_load_si512(a + 64 * w + 8 * g),
                                                             _mm512_load_si512(b + 64 * w + 8 * g), 0x80);
        }
        if (i < n_features) {
            const uint64_t *strip = table + row[features[i]] + 8 * c;
            for (int g = 0; g < chunk; g++)
                for (int w = 0; w < W; w++)
                    v[g * W + w] = _mm512_and_si512(v[g * W + w], _mm512_load_si512(strip + 64 * w + 8 * g));
        }
        for (int g = 0; g < chunk; g++) {
            // The lowest set bit of the lowest nonzero word (as loupe_first_leaf): x & -x keeps
            // the lowest bit, 63 - lzcnt gives its index.
            __m512i leaf = _mm512_setzero_si512();
            for (int w = W - 1; w >= 0; w--) {
                const __m512i x = v[g * W + w];
                const __m512i low = _mm512_and_si512(x, _mm512_sub_epi64(_mm512_setzero_si512(), x));
                const __m512i bit = _mm512_sub_epi64(_mm512_set1_epi64(64 * w + 63), _mm512_lzcnt_epi64(low));
                leaf = W == 1 ? bit : _mm512_mask_mov_epi64(leaf, _mm512_test_epi64_mask(x, x), bit);
            }
            const int first = 8 * (c + g);
            if (first >= count) break;
            const __m512i tree = _mm512_add_epi64(_mm512_set1_epi64(first), lane);
            const __m512i index = _mm512_add_epi64(leaf, _mm512_slli_epi64(tree, W == 1 ? 6 : W == 2 ? 7 : 8));
            // Trees past the last one (a partial block) read nothing.
            const __mmask8 live = count - first >= 8 ? 0xFF : (__mmask8)((1u << (count - first)) - 1);
            _mm512_store_pd(vals + first, _mm512_mask_i64gather_pd(_mm512_setzero_pd(), live, index, leaves, 8));
        }
    }
}

/// The 8 × 8 block of doubles at m (rows 64 apart) transposed: col[k][q] = m[64 q + k].
static T512 LOUPE_ALWAYS_INLINE void transpose8(const double *m, __m512d *col) {
    __m512d r[8], t[8], u[8];
    for (int q = 0; q < 8; q++) r[q] = _mm512_load_pd(m + 64 * q);
    for (int q = 0; q < 8; q += 2) {
        t[q] = _mm512_unpacklo_pd(r[q], r[q + 1]);
        t[q + 1] = _mm512_unpackhi_pd(r[q], r[q + 1]);
    }
    for (int h = 0; h < 8; h += 4) {
        u[h] = _mm512_shuffle_f64x2(t[h], t[h + 2], 0x88);
        u[h + 1] = _mm512_shuffle_f64x2(t[h + 1], t[h + 3], 0x88);
        u[h + 2] = _mm512_shuffle_f64x2(t[h], t[h + 2], 0xDD);
        u[h + 3] = _mm512_shuffle_f64x2(t[h + 1], t[h + 3], 0xDD);
    }
    for (int k = 0; k < 4; k++) {
        col[k] = _mm512_shuffle_f64x2(u[k], u[k + 4], 0x88);
        col[k + 4] = _mm512_shuffle_f64x2(u[k], u[k + 4], 0xDD);
    }
}

static T512 LOUPE_ALWAYS_INLINE void bv_rows(const loupe_forest *F, const uint32_t *slots, size_t r0, const int R,
                                             const int W, int32_t block, const uint8_t *features, int n_features,
                                             double *acc) {
    const int nf = F->n_features;
    const uint64_t *table = F->mask_table + (size_t)block * F->table_rows * W * LOUPE_BV_BLOCK;
    const int32_t t0 = block * LOUPE_BV_BLOCK;
    const int count = F->n_trees - t0 < LOUPE_BV_BLOCK ? F->n_trees - t0 : LOUPE_BV_BLOCK;
    const double *leaves = F->leaf_values + (size_t)t0 * 64 * W;
    _Alignas(64) double vals[BV_MAX_ROWS * LOUPE_BV_BLOCK];
    for (int q = 0; q < R; q++)
        bv_row_values(table, slots + (r0 + q) * (size_t)nf, features, n_features, leaves, count, W, vals + 64 * q);
    if (R >= 8) {
        // Phase 2 with the rows in the lanes of vectors, 8 rows each: each group's 8 × 8 values
        // of a vector's rows are transposed so that tree k's values for those rows are one
        // vector, added in tree order. The R / 8 vectors' chains of dependent adds are
        // interleaved, so several are in flight.
        __m512d sum[R / 8];
        for (int h = 0; h < R / 8; h++) sum[h] = _mm512_loadu_pd(acc + r0 + 8 * h);
        for (int first = 0; first < count; first += 8) {
            __m512d col[R / 8][8];
            for (int h = 0; h < R / 8; h++) transpose8(vals + 64 * 8 * h + first, col[h]);
            const int n = count - first < 8 ? count - first : 8;
            if (F->sum_float32) {
                for (int k = 0; k < n; k++)
                    for (int h = 0; h < R / 8; h++)
                        sum[h] = _mm512_cvtps_pd(_mm512_cvtpd_ps(_mm512_add_pd(sum[h], col[h][k])));
            } else {
                for (int k = 0; k < n; k++)  // tree order
                    for (int h = 0; h < R / 8; h++) sum[h] = _mm512_add_pd(sum[h], col[h][k]);
            }
        }
        for (int h = 0; h < R / 8; h++) _mm512_storeu_pd(acc + r0 + 8 * h, sum[h]);
        return;
    }
    double a = acc[r0];
    if (F->sum_float32) {
        for (int k = 0; k < count; k++) a = (double)(float)(a + vals[k]);
    } else {
        for (int k = 0; k < count; k++) a += vals[k];  // tree order
    }
    acc[r0] = a;
}

#define BV_INSTANCE(NAME, R, W)                                                                                   \
    static T512 __attribute__((noinline)) void NAME(const loupe_forest *F, const uint32_t *slots, size_t r0,       \
                                                    int32_t block, const uint8_t *features, int n_features,       \
                                                    double *acc) {                                                \
        bv_rows(F, slots, r0, R, W, block, features, n_features, acc);                                            \
    }
BV_INSTANCE(bv512_r16_w1, 16, 1)
BV_INSTANCE(bv512_r16_w2, 16, 2)
BV_INSTANCE(bv512_r16_w4, 16, 4)
BV_INSTANCE(bv512_r8_w1, 8, 1)
BV_INSTANCE(bv512_r8_w2, 8, 2)
BV_INSTANCE(bv512_r8_w4, 8, 4)
BV_INSTANCE(bv512_r1_w1, 1, 1)
BV_INSTANCE(bv512_r1_w2, 1, 2)
BV_INSTANCE(bv512_r1_w4, 1, 4)
#undef BV_INSTANCE

T512 void loupe_bitvector_avx512(const loupe_forest *F, const uint32_t *slots, size_t rows, int32_t block, double *acc) {
    uint8_t features[256];
    const int n_features = block_features(F, block, features);
    const int w = F->bv_words;
    size_t r = 0;
    for (; r + 16 <= rows; r += 16)
        (w == 1 ? bv512_r16_w1 : w == 2 ? bv512_r16_w2 : bv512_r16_w4)(F, slots, r, block, features, n_features, acc);
    for (; r + 8 <= rows; r += 8)
        (w == 1 ? bv512_r8_w1 : w == 2 ? bv512_r8_w2 : bv512_r8_w4)(F, slots, r, block, features, n_features, acc);
    for (; r < rows; r++)
        (w == 1 ? bv512_r1_w1 : w == 2 ? bv512_r1_w2 : bv512_r1_w4)(F, slots, r, block, features, n_features, acc);
}
// Mask-table slots (see quantize_slots in inference.c) of 8 rows per vector: the same
// branch-free search, step for step, with the 8 rows' threshold loads as one gather. A feature's
// threshold count is the same for every row, so the steps are too. Measured: the scalar searches
// took about a tenth of a 1M-row batch's CPU time.
T512 size_t loupe_quantize_slots_avx512(const loupe_forest *F, const double *const *columns, size_t row_stride,
                                        size_t first, size_t m, uint32_t *slots) {
    const int nf = F->n_features;
    const size_t rows = m & ~(size_t)7;
    const __m512i lane = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    const __m512i row_index = _mm512_mullo_epi64(lane, _mm512_set1_epi64((long long)row_stride));
    const __m512i slot_index = _mm512_mullo_epi64(lane, _mm512_set1_epi64(nf));
    const uint32_t scale = (uint32_t)F->bv_words * LOUPE_BV_BLOCK;
    for (int f = 0; f < nf; f++) {
        const double *col = columns[f] + first * row_stride;
        const uint32_t lo = F->threshold_offset[f], n = F->threshold_offset[f + 1] - lo;
        const int kind = F->feature_kind[f];
        const double *td = F->thresholds_double + lo;
        const float *tf = F->thresholds_float + lo;
        const __m512i base = _mm512_set1_epi64(F->feature_row_base[f]);
        for (size_t r = 0; r < rows; r += 8) {
            const __m512d x = row_stride == 1 ? _mm512_loadu_pd(col + r)
                                              : _mm512_i64gather_pd(row_index, col + r * row_stride, 8);
            __m512i code = _mm512_setzero_si512();
            if (n > 0 && kind == LOUPE_FEATURE_DOUBLE_LE) {
                uint32_t k = n;
                while (k > 1) {
                    const uint32_t half = k / 2;
                    const __m512d t = _mm512_i64gather_pd(_mm512_add_epi64(code, _mm512_set1_epi64(half)), td, 8);
                    code = _mm512_mask_add_epi64(code, _mm512_cmp_pd_mask(t, x, _CMP_LT_OQ), code,
                                                 _mm512_set1_epi64(half));
                    k -= half;
                }
                const __mmask8 last = _mm512_cmp_pd_mask(_mm512_i64gather_pd(code, td, 8), x, _CMP_LT_OQ);
                code = _mm512_mask_add_epi64(code, last, code, _mm512_set1_epi64(1));
            } else if (n > 0 && kind == LOUPE_FEATURE_FLOAT_LT) {
                const __m256 xf = _mm512_cvtpd_ps(x);
                uint32_t k = n;
                while (k > 1) {
                    const uint32_t half = k / 2;
                    const __m256 t = _mm512_i64gather_ps(_mm512_add_epi64(code, _mm512_set1_epi64(half)), tf, 4);
                    code = _mm512_mask_add_epi64(code, _mm256_cmp_ps_mask(t, xf, _CMP_LE_OQ), code,
                                                 _mm512_set1_epi64(half));
                    k -= half;
                }
                const __mmask8 last = _mm256_cmp_ps_mask(_mm512_i64gather_ps(code, tf, 4), xf, _CMP_LE_OQ);
                code = _mm512_mask_add_epi64(code, last, code, _mm512_set1_epi64(1));
            }
            // NaN (unordered with itself) gets code n + 1.
            code = _mm512_mask_mov_epi64(code, _mm512_cmp_pd_mask(x, x, _CMP_UNORD_Q), _mm512_set1_epi64(n + 1));
            const __m512i slot = _mm512_mullo_epi64(_mm512_add_epi64(base, code), _mm512_set1_epi64(scale));
            _mm512_i64scatter_epi32(slots + r * nf + f, slot_index, _mm512_cvtepi64_epi32(slot), 4);
        }
    }
    return rows;
}
#endif
