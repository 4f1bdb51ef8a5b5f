#ifndef LOUPE_INFERENCE_H
#define LOUPE_INFERENCE_H
// Batched tree-ensemble scoring over the flat form that TreeInference builds at model load
// (docs/INFERENCE.md). One scalar path and, on x86-64, AVX2 and AVX-512 paths chosen at run
// time; every path computes the same integer walk and adds the same leaf values in the same
// order, so their results are bit-identical.
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Kernel paths (also bits of loupe_infer_available_paths()).
enum {
    LOUPE_PATH_SCALAR = 0,
    LOUPE_PATH_AVX2 = 1,
    LOUPE_PATH_AVX512 = 2,
    LOUPE_PATH_COUNT = 3,
};

/// How a feature's values become codes.
enum {
    /// No node tests the feature: its code is always 0.
    LOUPE_FEATURE_UNUSED = 0,
    /// code(x) = #{ thresholds t : t < x } over the sorted distinct double thresholds, so
    /// x <= t_k exactly when code(x) <= k.
    LOUPE_FEATURE_DOUBLE_LE = 1,
    /// code(x) = #{ thresholds t : t <= (float)x } over the sorted distinct float thresholds, so
    /// (float)x < t_k exactly when code(x) <= k.
    LOUPE_FEATURE_FLOAT_LT = 2,
};

/// How the trees are laid out (`loupe_forest.layout`).
enum {
    /// Entries walked level by level (any tree shape).
    LOUPE_LAYOUT_WALK = 0,
    /// Leaf bitvectors (trees of at most 256 leaves): no walk, no branches.
    LOUPE_LAYOUT_BITVECTOR = 1,
};

/// Trees per block of the bitvector layout (its mask table has one 64-wide strip per row and word).
#define LOUPE_BV_BLOCK 64
/// Trees per group of the bitvector layout (the vector kernels take a group at once).
#define LOUPE_BV_GROUP 8

/// Bits of a node word: threshold code (bits 0-15), feature (bits 16-23), missing goes left (bit 24).
#define LOUPE_WORD_THRESHOLD_MASK 0xFFFFu
#define LOUPE_WORD_FEATURE_SHIFT 16
#define LOUPE_WORD_MISSING_LEFT (1u << 24)

/// The flat inference form of an ensemble. Owned by the caller; read-only while scoring, so one
/// forest may be scored from many threads at once.
///
/// Codes: a value of feature f gets a code in 0 ... n (n = its distinct thresholds), NaN gets
/// `nan_code` (0xFF when every code fits a byte, else 0xFFFF; `code_bytes` says which).
///
/// Trees: tree t owns entries [entry_base[t], entry_base[t + 1]) of `word`, `child`, `value`,
/// indexed from its own base. A walk starts at entry 0 and takes at most depth[t] steps:
/// right = code(feature) > threshold, except that a NaN goes left when the word's
/// missing-left bit is set; the next entry is 2e + 1 + right for the first top[t] steps (the
/// top levels are stored as a complete binary tree) and child[e] + right after that (children
/// are stored in adjacent pairs). Leaves, and the padding under leaves that end above the
/// complete top, are entries whose test always goes left and whose child is themselves, so
/// the walk may run past them (below the top, the kernels stop once every row of a group is at
/// a leaf). The row's leaf value is value[e] of the entry it ends on.
typedef struct loupe_forest {
    int32_t n_features;
    /// 1 or 2: the width of a code in the scratch code rows.
    int32_t code_bytes;
    uint32_t nan_code;
    /// Nonzero when some node sends NaN left (the kernels then check for NaN codes in blocks
    /// that have any).
    int32_t any_missing_left;
    /// Per feature: LOUPE_FEATURE_*.
    const uint8_t *feature_kind;
    /// Per feature f: its thresholds are [threshold_offset[f], threshold_offset[f + 1]) of
    /// thresholds_double (kind DOUBLE_LE) or thresholds_float (kind FLOAT_LT), sorted, distinct.
    const uint32_t *threshold_offset;
    const double *thresholds_double;
    const float *thresholds_float;

    int32_t n_trees;
    /// n_trees + 1 offsets into word / child / value.
    const uint32_t *entry_base;
    /// Complete levels at the top of each tree.
    const int32_t *top;
    /// Steps of each tree's walk (its depth; 0 for a single leaf).
    const int32_t *depth;
    const uint32_t *word;
    const uint32_t *child;
    const double *value;
    double base_score;

    /// Trees scored together over a group of rows (cache blocking); at least 1.
    int32_t tree_block;

    /// LOUPE_LAYOUT_*: which of the two tree layouts below the kernels use.
    int32_t layout;

    // Bitvector layout (QuickScorer-style, over codes). Leaves of each tree are numbered left to
    // right; a node's mask (`bv_words` 64-bit words: trees of up to 64, 128 or 256 leaves)
    // clears the leaves of its left subtree; the leaf a row reaches is the lowest bit left in
    // the AND of the masks of every node whose test the row fails (goes right). A row fails
    // the nodes of feature f whose threshold code is below the row's code, so for each tree the
    // AND over feature f's nodes depends only on the code: it is precomputed for every code (and
    // for NaN, which fails the nodes that send it right).
    //
    // Table rows: feature f's code c (0 ... n_f) has row feature_row_base[f] + c, a NaN row
    // feature_row_base[f] + n_f + 1; `table_rows` rows in all. Block b (trees 64b ... 64b + 63)
    // has word w of tree t's mask at mask_table[((b * table_rows + row) * bv_words + w) * 64 + t % 64]
    // (all ones for a feature the tree does not test), so a group of 8 trees reads one cache
    // line per feature and word.
    const uint32_t *feature_row_base;
    uint32_t table_rows;
    /// 1, 2 or 4.
    int32_t bv_words;
    const uint64_t *mask_table;
    /// Tree t's leaf values, left to right, at leaf_values[64 * bv_words * t ...].
    const double *leaf_values;
    /// Per group of 8 trees (n_groups + 1): offsets into group_features, the features any tree
    /// of the group tests.
    const uint32_t *group_feature_offset;
    const uint8_t *group_features;
    /// Nonzero: round the running sum to float after every add (XGBoost's float32 sum; the
    /// leaf values and base score are floats then, and a double add rounded to float equals
    /// the float add). Only the bitvector kernels honour it; such models never get the walk.
    int32_t sum_float32;
} loupe_forest;

/// Bitmask of the paths this CPU (and OS) can run: bit LOUPE_PATH_SCALAR always, bit
/// LOUPE_PATH_AVX2 with AVX2, bit LOUPE_PATH_AVX512 with AVX-512 F/CD/BW/VL/DQ and the OS saving
/// the ZMM state. Without x86-64 only the scalar bit.
int loupe_infer_available_paths(void);

/// The fastest available path.
int loupe_infer_best_path(void);

/// Raw scores of rows [first_row, first_row + n): out[r] = base_score + the leaf values of every
/// tree in tree order (double adds), for the row whose feature f is columns[f][r * row_stride].
/// A path this CPU cannot run is treated as scalar. No allocation; about 40 KiB of stack.
/// Safe to call from many threads at once on one forest.
void loupe_infer(const loupe_forest *forest, int path, const double *const *columns, size_t row_stride,
                 size_t first_row, size_t n, double *out);

/// Number of loupe_infer calls that ran on `path` (process-wide, for tests that check dispatch).
uint64_t loupe_infer_path_calls(int path);

/// The code of value x of feature f (what the kernels compare); exposed for tests.
uint32_t loupe_infer_code(const loupe_forest *forest, int feature, double x);

#ifdef __cplusplus
}
#endif
#endif
