// Scoring driver: CPU detection, value -> code quantisation, row blocks, and the scalar
// reference kernel. The SIMD kernels live in inference_avx2.c and inference_avx512.c.
#include <math.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>

#include "inference_internal.h"

// ---------------------------------------------------------------------------------------------
// CPU detection (own cpuid + xgetbv: no runtime-library support needed, and the OS must save
// the wide registers, not just the CPU have them).

#if defined(__x86_64__)
#include <cpuid.h>

static uint64_t read_xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static int detect_paths(void) {
    int paths = 1 << LOUPE_PATH_SCALAR;
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return paths;
    const int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    if (!osxsave || !avx) return paths;
    const uint64_t xcr0 = read_xcr0();
    const int ymm_saved = (xcr0 & 0x6) == 0x6;
    const int zmm_saved = (xcr0 & 0xE6) == 0xE6;
    if (__get_cpuid_max(0, NULL) < 7) return paths;
    __cpuid_count(7, 0, a, b, c, d);
    const int avx2 = (b >> 5) & 1, bmi2 = (b >> 8) & 1;
    const int avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512cd = (b >> 28) & 1;
    const int avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
    if (ymm_saved && avx2 && bmi2) paths |= 1 << LOUPE_PATH_AVX2;
    if (zmm_saved && ymm_saved && avx2 && avx512f && avx512dq && avx512cd && avx512bw && avx512vl) paths |= 1 << LOUPE_PATH_AVX512;
    return paths;
}
#else
static int detect_paths(void) { return 1 << LOUPE_PATH_SCALAR; }
#endif

static _Atomic int cached_paths = -1;
static _Atomic uint64_t path_calls[LOUPE_PATH_COUNT];

int loupe_infer_available_paths(void) {
    int paths = atomic_load_explicit(&cached_paths, memory_order_relaxed);
    if (paths < 0) {
        paths = detect_paths();
        atomic_store_explicit(&cached_paths, paths, memory_order_relaxed);
    }
    return paths;
}

int loupe_infer_best_path(void) {
    const int paths = loupe_infer_available_paths();
    if (paths & (1 << LOUPE_PATH_AVX512)) return LOUPE_PATH_AVX512;
    if (paths & (1 << LOUPE_PATH_AVX2)) return LOUPE_PATH_AVX2;
    return LOUPE_PATH_SCALAR;
}

uint64_t loupe_infer_path_calls(int path) {
    if (path < 0 || path >= LOUPE_PATH_COUNT) return 0;
    return atomic_load_explicit(&path_calls[path], memory_order_relaxed);
}

// ---------------------------------------------------------------------------------------------
// Codes. Branch-free searches over the sorted distinct thresholds of a feature.

/// All ones when `c`, else zero, opaque to the compiler: written as a select, the step below
/// becomes a cmov that clang's cmov-to-branch pass turns back into a branch (it is on the
/// loop's critical path), and a branch on a row's value mispredicts about every other step
/// (measured: a fifth of the CPU time of a 1M-row batch went to these searches).
static LOUPE_ALWAYS_INLINE size_t all_ones_if(int c) {
    size_t m = -(size_t)(c != 0);
    __asm__("" : "+r"(m));
    return m;
}

/// #{ i < n : t[i] < x } (x not NaN).
static LOUPE_ALWAYS_INLINE uint32_t count_less(const double *t, uint32_t n, double x) {
    if (n == 0) return 0;
    size_t lo = 0;
    while (n > 1) {
        const uint32_t half = n / 2;
        lo += half & all_ones_if(t[lo + half] < x);
        n -= half;
    }
    return (uint32_t)lo + (t[lo] < x);
}

/// #{ i < n : t[i] <= x } (x not NaN).
static LOUPE_ALWAYS_INLINE uint32_t count_less_equal(const float *t, uint32_t n, float x) {
    if (n == 0) return 0;
    size_t lo = 0;
    while (n > 1) {
        const uint32_t half = n / 2;
        lo += half & all_ones_if(t[lo + half] <= x);
        n -= half;
    }
    return (uint32_t)lo + (t[lo] <= x);
}

static LOUPE_ALWAYS_INLINE uint32_t code_of(const loupe_forest *F, int f, double x) {
    if (x != x) return F->nan_code;
    const uint32_t lo = F->threshold_offset[f], n = F->threshold_offset[f + 1] - lo;
    switch (F->feature_kind[f]) {
    case LOUPE_FEATURE_DOUBLE_LE: return count_less(F->thresholds_double + lo, n, x);
    case LOUPE_FEATURE_FLOAT_LT: return count_less_equal(F->thresholds_float + lo, n, (float)x);
    default: return 0;
    }
}

uint32_t loupe_infer_code(const loupe_forest *forest, int feature, double x) {
    return code_of(forest, feature, x);
}

/// Codes of rows [first, first + m) into the block buffer; returns nonzero if any value was NaN.
static int quantize(const loupe_forest *F, const double *const *columns, size_t row_stride, size_t first, size_t m,
                    uint8_t *codes) {
    const int nf = F->n_features;
    int any_nan = 0;
    for (int f = 0; f < nf; f++) {
        const double *col = columns[f] + first * row_stride;
        const uint32_t lo = F->threshold_offset[f], n = F->threshold_offset[f + 1] - lo;
        const int kind = F->feature_kind[f];
        const double *td = F->thresholds_double + lo;
        const float *tf = F->thresholds_float + lo;
        for (size_t r = 0; r < m; r++) {
            const double x = col[r * row_stride];
            uint32_t code;
            if (x != x) {
                code = F->nan_code;
                any_nan = 1;
            } else if (kind == LOUPE_FEATURE_DOUBLE_LE) {
                code = count_less(td, n, x);
            } else if (kind == LOUPE_FEATURE_FLOAT_LT) {
                code = count_less_equal(tf, n, (float)x);
            } else {
                code = 0;
            }
            if (F->code_bytes == 1) codes[r * nf + f] = (uint8_t)code;
            else ((uint16_t *)codes)[r * nf + f] = (uint16_t)code;
        }
    }
    return any_nan;
}

/// Mask-table slots of rows [first, first + m) for the bitvector layout: for row r and feature f,
/// (feature_row_base[f] + code) * bv_words * 64, with code n_f + 1 for NaN.
static void quantize_slots(const loupe_forest *F, const double *const *columns, size_t row_stride, size_t first,
                           size_t m, uint32_t *slots) {
    const int nf = F->n_features;
    for (int f = 0; f < nf; f++) {
        const double *col = columns[f] + first * row_stride;
        const uint32_t lo = F->threshold_offset[f], n = F->threshold_offset[f + 1] - lo;
        const int kind = F->feature_kind[f];
        const double *td = F->thresholds_double + lo;
        const float *tf = F->thresholds_float + lo;
        const uint32_t base = F->feature_row_base[f], words = (uint32_t)F->bv_words;
        for (size_t r = 0; r < m; r++) {
            const double x = col[r * row_stride];
            uint32_t code;
            if (x != x) code = n + 1;
            else if (kind == LOUPE_FEATURE_DOUBLE_LE) code = count_less(td, n, x);
            else if (kind == LOUPE_FEATURE_FLOAT_LT) code = count_less_equal(tf, n, (float)x);
            else code = 0;
            slots[r * nf + f] = (base + code) * words * LOUPE_BV_BLOCK;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Scalar kernel: the reference for the SIMD ones. Eight rows walk each tree together (eight
// independent dependency chains for the out-of-order core), then single rows.

static LOUPE_ALWAYS_INLINE void
scalar_rows(const loupe_forest *F, const uint8_t *codes, uint32_t stride, size_t r0, const int R, const int cw,
            const int nan_aware, int32_t t0, int32_t t1, double *acc) {
    double a[8];
    for (int q = 0; q < R; q++) a[q] = acc[r0 + q];
    const uint32_t nan_code = F->nan_code;
    for (int32_t t = t0; t < t1; t++) {
        const uint32_t base = F->entry_base[t];
        const uint32_t *W = F->word + base, *C = F->child + base;
        const double *V = F->value + base;
        const int top = F->top[t], depth = F->depth[t];
        uint32_t e[8] = {0};
        for (int s = 0; s < depth; s++) {
            // Below the top, stop once every row is at a leaf (the only entries there whose word
            // is the always-left word; they loop on themselves).
            uint32_t busy = s < top;
            for (int q = 0; q < R; q++) busy |= W[e[q]] != nan_code;
            if (!busy) break;
            for (int q = 0; q < R; q++) {
                const uint32_t w = W[e[q]];
                const size_t i = (r0 + q) * stride + ((w >> LOUPE_WORD_FEATURE_SHIFT) & 0xFF);
                const uint32_t c = cw == 1 ? codes[i] : ((const uint16_t *)codes)[i];
                uint32_t right = c > (w & LOUPE_WORD_THRESHOLD_MASK);
                if (nan_aware) right &= !(c == nan_code && (w & LOUPE_WORD_MISSING_LEFT));
                e[q] = (s < top ? 2 * e[q] + 1 : C[e[q]]) + right;
            }
        }
        for (int q = 0; q < R; q++) a[q] += V[e[q]];
    }
    for (int q = 0; q < R; q++) acc[r0 + q] = a[q];
}

#define SCALAR_INSTANCE(NAME, R, CW, NAN)                                                                     \
    static __attribute__((noinline)) void NAME(const loupe_forest *F, const uint8_t *codes, uint32_t stride,   \
                                               size_t r0, int32_t t0, int32_t t1, double *acc) {              \
        scalar_rows(F, codes, stride, r0, R, CW, NAN, t0, t1, acc);                                            \
    }
SCALAR_INSTANCE(rows8_u8, 8, 1, 0)
SCALAR_INSTANCE(rows8_u8_nan, 8, 1, 1)
SCALAR_INSTANCE(rows8_u16, 8, 2, 0)
SCALAR_INSTANCE(rows8_u16_nan, 8, 2, 1)
SCALAR_INSTANCE(rows1_u8, 1, 1, 0)
SCALAR_INSTANCE(rows1_u8_nan, 1, 1, 1)
SCALAR_INSTANCE(rows1_u16, 1, 2, 0)
SCALAR_INSTANCE(rows1_u16_nan, 1, 2, 1)
#undef SCALAR_INSTANCE

void loupe_trees_scalar(const loupe_forest *F, const uint8_t *codes, uint32_t stride, size_t rows, int nan_aware,
                        int32_t t0, int32_t t1, double *acc) {
    const int u8 = F->code_bytes == 1;
    size_t r0 = 0;
    for (; r0 + 8 <= rows; r0 += 8) {
        if (u8) (nan_aware ? rows8_u8_nan : rows8_u8)(F, codes, stride, r0, t0, t1, acc);
        else (nan_aware ? rows8_u16_nan : rows8_u16)(F, codes, stride, r0, t0, t1, acc);
    }
    for (; r0 < rows; r0++) {
        if (u8) (nan_aware ? rows1_u8_nan : rows1_u8)(F, codes, stride, r0, t0, t1, acc);
        else (nan_aware ? rows1_u16_nan : rows1_u16)(F, codes, stride, r0, t0, t1, acc);
    }
}

// ---------------------------------------------------------------------------------------------
// Driver.

/// Bytes of codes per block of rows (walk layout): the block's codes and accumulators stay in L1/L2.
#define BLOCK_CODE_BYTES 32768
#define MAX_BLOCK_ROWS 1024

/// Rows per block of the bitvector layout: every block of rows reads the whole mask table once
/// (18.5 MB for 1000 trees on the diamond features), so big batches take big blocks.
#define BV_STACK_ROWS 512
#define BV_MAX_BLOCK_ROWS 4096

/// Sorts the m rows of `slots` by their code of feature `key` into `sorted`, `order[i]` the
/// original row of sorted row i (counting sort; rows with the same code keep their order).
static void sort_rows(const loupe_forest *F, const uint32_t *slots, size_t m, int key, uint32_t *sorted,
                      uint32_t *order) {
    const size_t nf = (size_t)F->n_features;
    const uint32_t scale = (uint32_t)F->bv_words * LOUPE_BV_BLOCK, base = F->feature_row_base[key];
    const uint32_t codes = F->threshold_offset[key + 1] - F->threshold_offset[key] + 2;
    uint32_t count[4098];
    memset(count, 0, codes * sizeof(uint32_t));
    for (size_t r = 0; r < m; r++) count[slots[r * nf + key] / scale - base]++;
    uint32_t sum = 0;
    for (uint32_t c = 0; c < codes; c++) {
        const uint32_t k = count[c];
        count[c] = sum;
        sum += k;
    }
    for (size_t r = 0; r < m; r++) {
        const uint32_t i = count[slots[r * nf + key] / scale - base]++;
        order[i] = (uint32_t)r;
        memcpy(sorted + i * nf, slots + r * nf, nf * sizeof(uint32_t));
    }
}

static __attribute__((noinline)) void infer_bitvector(const loupe_forest *F, int path, const double *const *columns,
                                                      size_t row_stride, size_t first_row, size_t n, double *out) {
    loupe_bitvector_kernel kernel = loupe_bitvector_scalar;
#if defined(__x86_64__)
    if (path == LOUPE_PATH_AVX2) kernel = loupe_bitvector_avx2;
    if (path == LOUPE_PATH_AVX512) kernel = loupe_bitvector_avx512;
#endif
    const size_t nf = F->n_features > 0 ? (size_t)F->n_features : 1;
    // Small calls (a single row, a request's batch) use the stack; big ones one heap buffer per
    // call, whose cost is nothing next to scoring 512+ rows.
    _Alignas(64) uint32_t stack_slots[BV_STACK_ROWS * 16];
    _Alignas(64) double stack_acc[BV_STACK_ROWS];
    size_t block_rows = BV_STACK_ROWS * 16 / nf;
    uint32_t *slots = stack_slots, *sorted = NULL, *order = NULL;
    double *acc = stack_acc;
    void *heap = NULL;
    if (n > block_rows && n > BV_STACK_ROWS) {
        block_rows = n < BV_MAX_BLOCK_ROWS ? n : BV_MAX_BLOCK_ROWS;
        heap = malloc(block_rows * (2 * nf * sizeof(uint32_t) + sizeof(double) + sizeof(uint32_t)));
        if (heap) {
            acc = heap;
            slots = (uint32_t *)(acc + block_rows);
            sorted = slots + block_rows * nf;
            order = sorted + block_rows * nf;
        } else {
            block_rows = BV_STACK_ROWS * 16 / nf;
        }
    }
    if (block_rows > BV_STACK_ROWS && !heap) block_rows = BV_STACK_ROWS;
    if (block_rows < 1) block_rows = 1;
    // Big blocks are scored in the order of their rows' codes of the feature with the most codes
    // (the widest table strips): consecutive rows then read the same strips of it (and, in
    // correlated data like the diamonds' sizes, of others) from L1. Measured ~8% more rows per
    // CPU second on the 1000-tree diamond model. A row's score does not depend on the order.
    int key = -1;
    uint32_t widest = 0;
    for (int f = 0; f < F->n_features; f++) {
        const uint32_t c = F->threshold_offset[f + 1] - F->threshold_offset[f] + 2;
        if (c > widest && c <= 4098) { widest = c; key = f; }
    }
    const int sort = heap && key >= 0;
    const int32_t blocks = (F->n_trees + LOUPE_BV_BLOCK - 1) / LOUPE_BV_BLOCK;
    const size_t end = first_row + n;
    for (size_t first = first_row; first < end; first += block_rows) {
        const size_t m = end - first < block_rows ? end - first : block_rows;
        if (F->n_features > 0) {
            size_t done = 0;
#if defined(__x86_64__)
            if (path == LOUPE_PATH_AVX512) done = loupe_quantize_slots_avx512(F, columns, row_stride, first, m, slots);
#endif
            quantize_slots(F, columns, row_stride, first + done, m - done, slots + done * nf);
        }
        if (sort) sort_rows(F, slots, m, key, sorted, order);
        for (size_t r = 0; r < m; r++) acc[r] = F->base_score;
        for (int32_t b = 0; b < blocks; b++) kernel(F, sort ? sorted : slots, m, b, acc);
        if (sort) {
            for (size_t i = 0; i < m; i++) out[first + order[i]] = acc[i];
        } else {
            memcpy(out + first, acc, m * sizeof(double));
        }
    }
    free(heap);
}

void loupe_infer(const loupe_forest *F, int path, const double *const *columns, size_t row_stride, size_t first_row,
                 size_t n, double *out) {
    const int available = loupe_infer_available_paths();
    if (path < 0 || path >= LOUPE_PATH_COUNT || !(available & (1 << path))) path = LOUPE_PATH_SCALAR;
    atomic_fetch_add_explicit(&path_calls[path], 1, memory_order_relaxed);
    if (F->layout == LOUPE_LAYOUT_BITVECTOR) {
        infer_bitvector(F, path, columns, row_stride, first_row, n, out);
        return;
    }
    loupe_tree_kernel kernel = loupe_trees_scalar;
#if defined(__x86_64__)
    if (path == LOUPE_PATH_AVX2) kernel = loupe_trees_avx2;
    if (path == LOUPE_PATH_AVX512) kernel = loupe_trees_avx512;
#endif
    const size_t row_bytes = (size_t)(F->n_features > 0 ? F->n_features : 1) * (size_t)F->code_bytes;
    size_t block_rows = BLOCK_CODE_BYTES / row_bytes;
    if (block_rows > MAX_BLOCK_ROWS) block_rows = MAX_BLOCK_ROWS;
    block_rows = block_rows >= 64 ? block_rows & ~(size_t)63 : 16;
    // 16 rows of at most 256 two-byte codes fit too; 64 bytes of slack for the 4-byte gathers.
    _Alignas(64) uint8_t codes[BLOCK_CODE_BYTES + 64];
    _Alignas(64) double acc[MAX_BLOCK_ROWS];
    const int32_t tree_block = F->tree_block > 0 ? F->tree_block : 1;

    const size_t end = first_row + n;
    for (size_t first = first_row; first < end; first += block_rows) {
        const size_t m = end - first < block_rows ? end - first : block_rows;
        // The vector kernels work on whole groups of 16 rows (padding rows have all codes 0);
        // fewer rows than that take the scalar walk: a vector group for one row costs the
        // gathers of sixteen (measured: one row 30 us scalar, over 200 us in vectors).
        const int few = m < 16;
        const loupe_tree_kernel block_kernel = few ? loupe_trees_scalar : kernel;
        const size_t padded = path == LOUPE_PATH_SCALAR || few ? m : (m + 15) & ~(size_t)15;
        const int any_nan = F->n_features > 0 ? quantize(F, columns, row_stride, first, m, codes) : 0;
        memset(codes + m * row_bytes, 0, (padded - m) * row_bytes + 64);
        for (size_t r = 0; r < padded; r++) acc[r] = F->base_score;
        const int nan_aware = any_nan && F->any_missing_left;
        for (int32_t t0 = 0; t0 < F->n_trees; t0 += tree_block) {
            const int32_t t1 = F->n_trees - t0 < tree_block ? F->n_trees : t0 + tree_block;
            block_kernel(F, codes, (uint32_t)(F->n_features > 0 ? F->n_features : 1), padded, nan_aware, t0, t1, acc);
        }
        memcpy(out + first, acc, m * sizeof(double));
    }
}
