// AVX-512 TreeSHAP kernel for one tree and one row (see loupe_shap.h): the tree's node
// decisions 8 nodes per instruction group, then per leaf its subset of passed features by one
// vector test and every table read it needs by one gather; the row's contributions stay in
// two registers (features 0-7 and 8-15) for the whole tree. The adds per feature are the other
// kernels' adds in the same order (leaves in `leaf_order`), so the results are identical.
#include "shap_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512cd,avx2,bmi2,popcnt")))

static const double zero_threshold = (double)1e-35f;

/// Bit n set when the row goes left at internal node n of tree t (at most 64 nodes). Same rule
/// as goes_left in shap.c, for each node kind.
static T512 LOUPE_SHAP_INLINE uint64_t decisions(const loupe_shap_forest *m, int32_t t, __m512d x_lo, __m512d x_hi) {
    const int32_t n0 = m->node_start[t], count = m->node_start[t + 1] - n0;
    uint64_t dec = 0;
    for (int32_t g = 0; g < count; g += 8) {
        const __mmask8 live = count - g >= 8 ? 0xFF : (__mmask8)((1u << (count - g)) - 1);
        const int32_t i = n0 + g;
        const __m512i f = _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(live, m->node_feature + i));
        const __m512d v = _mm512_permutex2var_pd(x_lo, f, x_hi);
        const __m512d threshold = _mm512_maskz_loadu_pd(live, m->node_threshold + i);
        const __m128i kind = _mm_maskz_loadu_epi8(live, m->node_kind + i);
        const __m128i missing_left = _mm_maskz_loadu_epi8(live, m->node_missing_left + i);
        __mmask8 left = _mm512_cmp_pd_mask(v, threshold, _CMP_LE_OQ);
        __mmask8 missing = _mm512_cmp_pd_mask(v, v, _CMP_UNORD_Q);
        const __mmask8 float_lt = (__mmask8)_mm_cmpeq_epi8_mask(kind, _mm_set1_epi8(LOUPE_SHAP_FLOAT_LT));
        const __mmask8 zero_missing = (__mmask8)_mm_cmpeq_epi8_mask(kind, _mm_set1_epi8(LOUPE_SHAP_LE_ZERO_MISSING));
        if (float_lt) {
            // (float)x < (float)t, both rounded to nearest like C's casts.
            const __mmask8 lt = _mm256_cmp_ps_mask(_mm512_cvtpd_ps(v), _mm512_cvtpd_ps(threshold), _CMP_LT_OQ);
            left = (__mmask8)((left & ~float_lt) | (lt & float_lt));
        }
        if (zero_missing) {
            const __mmask8 small = _mm512_cmp_pd_mask(_mm512_abs_pd(v), _mm512_set1_pd(zero_threshold), _CMP_LE_OQ);
            missing = (__mmask8)(missing | (small & zero_missing));
        }
        const __mmask8 goes_left_when_missing = (__mmask8)_mm_test_epi8_mask(missing_left, missing_left);
        left = (__mmask8)((left & ~missing) | (missing & goes_left_when_missing));
        dec |= (uint64_t)(uint8_t)(left & live) << g;
    }
    return dec;
}

/// One leaf's contributions for R rows added to their phi (features 0-7 in lo[q], 8-15 in
/// hi[q]): with A the subset of its features row q passes, feature k gets ratio_k · T(A ∖ {k})
/// when k ∈ A, −T(A) when not (as leaf_update_ in shap_kernel.h). The leaf's data is read once
/// for the R rows, whose adds form R independent chains.
static T512 LOUPE_SHAP_INLINE void leaf_update(const loupe_shap_forest *m, int32_t leaf, const uint64_t *dec,
                                               __m512d *lo, __m512d *hi, const int R, const int wide) {
    const int d = m->leaf_depth[leaf];
    const int32_t off = m->leaf_offset[leaf];
    const double *table = m->table + m->table_offset[leaf];
    const unsigned features = (unsigned)m->leaf_mask[leaf];
    const uint64_t direction = m->leaf_direction[leaf];
    const unsigned live = (1u << d) - 1;
    const __mmask8 live0 = (__mmask8)live, live1 = (__mmask8)(live >> 8);
    const __m512i nodes0 = _mm512_maskz_loadu_epi64(live0, m->leaf_feature_nodes + off);
    const __m512d ratio0 = _mm512_maskz_loadu_pd(live0, m->leaf_ratio + off);
    const __m512i bits0 = _mm512_setr_epi64(1, 2, 4, 8, 16, 32, 64, 128);
    const __m512i from = _mm512_add_epi64(_mm512_set1_epi64(__builtin_popcount(features & 0xFF)),
                                          _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7));
    const int deep = d > 8;
    for (int q = 0; q < R; q++) {
        const __m512i deviations = _mm512_set1_epi64((long long)(dec[q] ^ direction));
        // Bit k of A: no node of the k-th feature on the path sent the row the other way.
        const __mmask8 a0 = _mm512_mask_testn_epi64_mask(live0, deviations, nodes0);
        __mmask8 a1 = 0;
        if (deep)
            a1 = _mm512_mask_testn_epi64_mask(live1, deviations,
                                              _mm512_maskz_loadu_epi64(live1, m->leaf_feature_nodes + off + 8));
        const unsigned a = (unsigned)a0 | (unsigned)a1 << 8;
        // Lane k reads T(A ∖ {k}): for k ∈ A that is the value it needs (times ratio_k); for
        // k ∉ A it is T(A), which it needs negated (times −1, exact). One gather for both.
        const __m512i subset = _mm512_set1_epi64(a);
        const __m512d minus_one = _mm512_set1_pd(-1.0);
        __m512d c0 = _mm512_i64gather_pd(_mm512_andnot_si512(bits0, subset), table, 8);
        c0 = _mm512_mul_pd(c0, _mm512_mask_blend_pd(a0, minus_one, ratio0));
        // The leaf's features are ascending, so expanding the k-th value to the k-th set bit of
        // its feature mask puts each where it belongs; other lanes get +0.0, which changes no
        // sum (a sum that starts at +0.0 is never −0.0).
        lo[q] = _mm512_add_pd(lo[q], _mm512_maskz_expand_pd((__mmask8)features, c0));
        if (!wide) continue;
        __m512d rest;
        if (deep) {
            const __m512i bits1 = _mm512_setr_epi64(256, 512, 1024, 2048, 4096, 8192, 16384, 32768);
            __m512d c1 = _mm512_i64gather_pd(_mm512_andnot_si512(bits1, subset), table, 8);
            c1 = _mm512_mul_pd(c1, _mm512_mask_blend_pd(a1, minus_one, _mm512_maskz_loadu_pd(live1, m->leaf_ratio + off + 8)));
            rest = _mm512_permutex2var_pd(c0, from, c1);
        } else {
            rest = _mm512_permutexvar_pd(from, c0);
        }
        hi[q] = _mm512_add_pd(hi[q], _mm512_maskz_expand_pd((__mmask8)(features >> 8), rest));
    }
}

/// Tree t for R rows from x (row q at x + q * stride, its contributions at phi + q * phi_stride).
static T512 LOUPE_SHAP_INLINE void tree_rows(const loupe_shap_forest *m, int32_t t, const double *x, size_t stride,
                                             double *phi, size_t phi_stride, const int R, const int wide) {
    const int nf = m->feature_count;
    const __mmask8 lo_live = nf >= 8 ? 0xFF : (__mmask8)((1u << nf) - 1);
    const __mmask8 hi_live = nf > 8 ? (__mmask8)((1u << (nf - 8)) - 1) : 0;
    __m512d lo[4], hi[4];
    uint64_t dec[4];
    for (int q = 0; q < R; q++) {
        const double *row = x + q * stride;
        dec[q] = decisions(m, t, _mm512_maskz_loadu_pd(lo_live, row), _mm512_maskz_loadu_pd(hi_live, row + 8));
        lo[q] = _mm512_maskz_loadu_pd(lo_live, phi + q * phi_stride);
        hi[q] = wide ? _mm512_maskz_loadu_pd(hi_live, phi + q * phi_stride + 8) : _mm512_setzero_pd();
    }
    const int32_t l1 = m->leaf_start[t + 1];
    for (int32_t i = m->leaf_start[t]; i < l1; i++) leaf_update(m, m->leaf_order[i], dec, lo, hi, R, wide);
    for (int q = 0; q < R; q++) {
        _mm512_mask_storeu_pd(phi + q * phi_stride, lo_live, lo[q]);
        if (wide) _mm512_mask_storeu_pd(phi + q * phi_stride + 8, hi_live, hi[q]);
    }
}

#define ROWS(NAME, WIDE)                                                                                     \
    static T512 __attribute__((noinline)) void NAME(const loupe_shap_forest *m, int32_t t, const double *x,     \
                                                    size_t n, size_t stride, double *phi, size_t phi_stride) {  \
        size_t r = 0;                                                                                        \
        for (; r + 4 <= n; r += 4) tree_rows(m, t, x + r * stride, stride, phi + r * phi_stride, phi_stride, 4, WIDE); \
        for (; r < n; r++) tree_rows(m, t, x + r * stride, stride, phi + r * phi_stride, phi_stride, 1, WIDE);   \
    }
ROWS(rows_narrow, 0)
ROWS(rows_wide, 1)
#undef ROWS

void loupe_shap_tree_rows_avx512(const loupe_shap_forest *m, int32_t t, const double *x, size_t n, size_t stride,
                                 double *phi, size_t phi_stride) {
    if (m->node_start[t + 1] == m->node_start[t]) return;  // a single leaf adds nothing
    (m->feature_count > 8 ? rows_wide : rows_narrow)(m, t, x, n, stride, phi, phi_stride);
}
#endif
