#include "CLoupeKernels.h"

// One body, instantiated with a compile-time feature count for the common small counts so
// the per-row feature loop is fully unrolled (9 for diamonds); a generic loop otherwise.
static inline __attribute__((always_inline)) void
accumulate_n(const uint8_t *restrict bins, size_t stride, const uint32_t *restrict offsets, const int nf,
             const int32_t *restrict rows, int32_t first_row, size_t n, const double *restrict gradients,
             double *restrict hist) {
    uint32_t off[64];
    for (int f = 0; f < nf; f++) off[f] = 2 * offsets[f];
    for (size_t i = 0; i < n; i++) {
        const size_t row = rows ? (size_t)rows[i] : (size_t)first_row + i;
        const double g = gradients[row];
        const uint8_t *restrict b = bins + row * stride;
        for (int f = 0; f < nf; f++) {
            double *restrict h = hist + off[f] + 2 * (uint32_t)b[f];
            h[0] += g;
            h[1] += 1.0;
        }
    }
}

void loupe_hist_accumulate(const uint8_t *bins, size_t stride, const uint32_t *offsets, int n_features,
                           const int32_t *rows, int32_t first_row, size_t n,
                           const double *gradients, double *hist) {
    switch (n_features) {
#define CASE(N) case N: accumulate_n(bins, stride, offsets, N, rows, first_row, n, gradients, hist); return;
    CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8) CASE(9) CASE(10) CASE(11) CASE(12)
#undef CASE
    default:
        for (int start = 0; start < n_features; start += 64) {
            int count = n_features - start < 64 ? n_features - start : 64;
            accumulate_n(bins + start, stride, offsets + start, count, rows, first_row, n, gradients, hist);
        }
    }
}

size_t loupe_partition_rows(int32_t *rows, size_t n, const uint8_t *column, uint8_t threshold_bin,
                            int32_t *scratch) {
    size_t left = 0, right = 0;
    for (size_t i = 0; i < n; i++) {
        const int32_t row = rows[i];
        const int goes_left = column[row] <= threshold_bin;
        // Branch-free: write to both places, advance one.
        rows[left] = row;
        scratch[right] = row;
        left += (size_t)goes_left;
        right += (size_t)!goes_left;
    }
    for (size_t i = 0; i < right; i++) rows[left + i] = scratch[i];
    return left;
}

void loupe_subtract(double *dst, const double *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] -= src[i];
}

void loupe_add(double *dst, const double *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
}
