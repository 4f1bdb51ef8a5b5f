#ifndef LOUPE_CLOUPEKERNELS_H
#define LOUPE_CLOUPEKERNELS_H
// Hot loops of the trainer, in C so the compiler vectorises and unrolls them without
// Swift's bounds checks and exclusivity checks. Each has a plain meaning stated here; the
// Swift tests compare them with straightforward Swift loops.
#include <stddef.h>
#include <stdint.h>

#include "loupe_inference.h"
#include "loupe_shap.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Adds rows to a gradient histogram.
///
/// `bins` is row-major: row r's bin for feature f is bins[r * stride + f] (f < n_features).
/// `hist` holds pairs (sum of gradients, row count) as doubles; feature f's bin b is the pair at
/// hist[2 * (offsets[f] + b)]. For each i < n, row = rows ? rows[i] : first_row + i, the pair
/// of each feature's bin gets (gradients[row], 1) added. Sums run in row order, so the result
/// is deterministic.
void loupe_hist_accumulate(const uint8_t *bins, size_t stride, const uint32_t *offsets, int n_features,
                           const int32_t *rows, int32_t first_row, size_t n,
                           const double *gradients, double *hist);

/// Stable partition of rows[0..<n] by column[row] <= threshold_bin: rows that go left keep
/// their order at the front, the others follow in order. `scratch` holds n values. Returns
/// the number of rows that go left.
size_t loupe_partition_rows(int32_t *rows, size_t n, const uint8_t *column, uint8_t threshold_bin,
                            int32_t *scratch);

/// dst[i] -= src[i] for i < n (histogram subtraction: larger child = parent - smaller child).
void loupe_subtract(double *dst, const double *src, size_t n);

/// dst[i] += src[i] for i < n (merging per-thread histograms).
void loupe_add(double *dst, const double *src, size_t n);

/// Names the calling thread for `top -H`, `perf` and debuggers (at most 15 characters kept).
void loupe_name_this_thread(const char *name);

/// A spin-wait hint to the CPU (x86 `pause`): cheaper spinning, and kinder to a sibling
/// hyper-thread.
static inline void loupe_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#ifdef __cplusplus
}
#endif
#endif
