/* Load-time preparation of conv/linear weights for the kernels: hybrid-sparse
 * weights repacked from the file's block layout into runs of kept columns
 * (or filled runs), or expanded to dense weights, whichever form the cost
 * table picks for a float32 layer (src/hybrid_form.h); and the int8 ops'
 * int32 bias and float multipliers. Everything lives in one allocation owned
 * by the op. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "expand.h"
#include "head.h"
#include "hybrid_form.h"
#include "kernels/common.h"
#include "kernels/ukernels.h"
#include "memlimit.h"
#include "model.h"
#include "names.h"
#include "status.h"

/* Conv view of a weight matrix; a linear layer is a 1x1 conv on a 1x1 image. */
typedef struct geometry {
    uint64_t tap_width;   /* columns per kernel tap: Cin/groups (conv), K (linear) */
    uint64_t group_rows;  /* output channels per group */
} geometry;

typedef struct counts {
    uint64_t runs, segments, entries;
    uint64_t weights; /* packed weights, int8 padding included */
} counts;

/* Entries a run's packed weights take: int8 runs pad to a multiple of four
 * (kernels/common.h, crisp_qs8_weight_index). */
static uint64_t padded_entries(uint64_t entries, int is_i8) {
    return is_i8 ? (entries + 3) / 4 * 4 : entries;
}

/* Appends column `col` to the current run's entries, opening a segment
 * where its kernel tap changes. With `out` NULL it only counts. */
static void add_column(const geometry *g, uint64_t col, uint64_t *tap, crisp_sparse_weights *out,
                       counts *n) {
    const uint64_t col_tap = col / g->tap_width;
    if (col_tap != *tap) {
        if (out != NULL) {
            ((uint32_t *)out->segment_tap)[n->segments] = (uint32_t)col_tap;
            ((uint32_t *)out->segment_entry)[n->segments] = (uint32_t)n->entries;
        }
        *tap = col_tap;
        n->segments++;
    }
    if (out != NULL) ((uint32_t *)out->entry_column)[n->entries] = (uint32_t)col;
    n->entries++;
}

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* Walks the kept columns of one run (rows t0 .. t0+rows-1 of block-row br,
 * V-run j) in increasing column order. With `out` NULL it only counts. */
static void walk_run(const crisp_hybrid *h, const geometry *g, uint64_t br, uint64_t t0,
                     uint64_t rows, uint64_t value_base, uint64_t index_base, int is_i8,
                     crisp_sparse_weights *out, counts *n) {
    const uint64_t height = min_u64(h->block_rows, h->rows - br * h->block_rows);
    const uint64_t runs_here = (height + h->v - 1) / h->v, j = t0 / h->v;
    const uint32_t b0 = crisp_rd_u32(h->block_row_ptr + 4 * br);
    const uint32_t b1 = crisp_rd_u32(h->block_row_ptr + 4 * (br + 1));
    const uint64_t first_entry = n->entries;
    uint64_t tap = UINT64_MAX;
    for (uint32_t b = b0; b < b1; b++) {
        const uint64_t c0 = (uint64_t)crisp_rd_u32(h->block_col + 4 * (uint64_t)b) * h->block_cols;
        const uint64_t width = min_u64(h->block_cols, h->cols - c0);
        const int full = h->n == h->m;
        const uint64_t groups = full ? 1 : width / h->m, per_group = full ? width : h->n;
        for (uint64_t gi = 0; gi < groups; gi++) {
            for (uint64_t k = 0; k < per_group; k++) {
                const uint64_t at = (j * groups + gi) * per_group + k;
                const uint64_t col =
                    full ? c0 + k
                         : c0 + gi * h->m +
                               crisp_hybrid_index(h->indices, index_base + at, h->index_bits);
                if (out != NULL) {
                    const uint64_t e = n->entries - first_entry;
                    const size_t w0 = out->run_weight[n->runs];
                    for (uint64_t r = 0; r < rows; r++) {
                        const uint64_t v = value_base + (t0 + r) * (groups * per_group) +
                                           gi * per_group + k;
                        if (is_i8)
                            ((int8_t *)out->weight_qs8)[w0 + crisp_qs8_weight_index(
                                                                 (size_t)e, (size_t)r,
                                                                 (size_t)rows)] =
                                ((const int8_t *)h->values)[v];
                        else
                            ((float *)out->weight_f32)[w0 + (size_t)(e * rows + r)] =
                                ((const float *)h->values)[v];
                    }
                }
                add_column(g, col, &tap, out, n);
            }
        }
        value_base += height * groups * per_group;
        if (!full) index_base += runs_here * groups * per_group;
    }
}

/* A filled run: rows t0 .. t0+rows-1 of block-row br share every column of
 * each kept block, in increasing order, with zero weights where a row's N:M
 * selection left a column out. Per-row N:M then runs like the row-shared
 * variant: one activation load (float) or one interleave of four B rows
 * (int8) feeds every row of the run, at the price of the zeros
 * (src/hybrid_form.h weighs both). int8 weights go in the int8 run layout;
 * the caller zeroed them. */
static void walk_filled_run(const crisp_hybrid *h, const geometry *g, uint64_t br, uint64_t t0,
                            uint64_t rows, uint64_t value_base, uint64_t index_base, int is_i8,
                            crisp_sparse_weights *out, counts *n) {
    const uint64_t height = min_u64(h->block_rows, h->rows - br * h->block_rows);
    const uint64_t runs_here = (height + h->v - 1) / h->v;
    const uint32_t b0 = crisp_rd_u32(h->block_row_ptr + 4 * br);
    const uint32_t b1 = crisp_rd_u32(h->block_row_ptr + 4 * (br + 1));
    const uint64_t first_entry = n->entries;
    uint64_t tap = UINT64_MAX;
    for (uint32_t b = b0; b < b1; b++) {
        const uint64_t c0 = (uint64_t)crisp_rd_u32(h->block_col + 4 * (uint64_t)b) * h->block_cols;
        const uint64_t width = min_u64(h->block_cols, h->cols - c0);
        const uint64_t groups = width / h->m, per_group = h->n;
        const uint64_t block_entry = n->entries - first_entry;
        for (uint64_t k = 0; k < width; k++) add_column(g, c0 + k, &tap, out, n);
        if (out != NULL) {
            const size_t w0 = out->run_weight[n->runs];
            float *w = is_i8 ? NULL : (float *)out->weight_f32 + w0 + block_entry * rows;
            if (!is_i8) memset(w, 0, (size_t)(width * rows) * sizeof *w);
            for (uint64_t r = 0; r < rows; r++) {
                const uint64_t t = t0 + r, j = t / h->v;
                for (uint64_t gi = 0; gi < groups; gi++)
                    for (uint64_t k = 0; k < per_group; k++) {
                        const uint64_t at = index_base + (j * groups + gi) * per_group + k;
                        const uint64_t pos = gi * h->m + crisp_hybrid_index(h->indices, at,
                                                                            h->index_bits);
                        const uint64_t v = value_base + t * groups * per_group + gi * per_group + k;
                        if (is_i8)
                            ((int8_t *)out->weight_qs8)[w0 + crisp_qs8_weight_index(
                                                                 (size_t)(block_entry + pos),
                                                                 (size_t)r, (size_t)rows)] =
                                ((const int8_t *)h->values)[v];
                        else
                            w[pos * rows + r] = ((const float *)h->values)[v];
                    }
            }
        }
        value_base += height * groups * per_group;
        index_base += runs_here * groups * per_group;
    }
}

/* All runs in row order; a V-run is split where a conv group ends. A filled
 * layer's runs span the block-row (split where a conv group ends too). */
static void walk(const crisp_hybrid *h, const geometry *g, int is_i8, int filled,
                 crisp_sparse_weights *out, counts *n) {
    uint64_t value_base = 0, index_base = 0;
    size_t weight = 0;
    for (uint64_t br = 0; br < h->nbr; br++) {
        const uint64_t row0 = br * h->block_rows;
        const uint64_t height = min_u64(h->block_rows, h->rows - row0);
        const int empty = crisp_rd_u32(h->block_row_ptr + 4 * br) ==
                          crisp_rd_u32(h->block_row_ptr + 4 * (br + 1));
        for (uint64_t t0 = 0; t0 < height;) {
            const uint64_t run_end = filled ? height : min_u64(height, (t0 / h->v + 1) * h->v);
            const uint64_t group_end = ((row0 + t0) / g->group_rows + 1) * g->group_rows - row0;
            /* Rows without kept columns read no input: one run for the block-row,
             * so the packed size stays bounded by the file's. */
            const uint64_t t1 = empty ? height : min_u64(run_end, group_end);
            const uint64_t entries_before = n->entries;
            if (out != NULL) {
                ((uint32_t *)out->run_row)[n->runs] = (uint32_t)(row0 + t0);
                ((uint32_t *)out->run_segment)[n->runs] = (uint32_t)n->segments;
                ((size_t *)out->run_weight)[n->runs] = weight;
            }
            if (filled)
                walk_filled_run(h, g, br, t0, t1 - t0, value_base, index_base, is_i8, out, n);
            else
                walk_run(h, g, br, t0, t1 - t0, value_base, index_base, is_i8, out, n);
            const uint64_t packed = padded_entries(n->entries - entries_before, is_i8);
            weight += (size_t)(packed * (t1 - t0));
            n->weights += packed * (t1 - t0);
            n->runs++;
            t0 = t1;
        }
        crisp_hybrid_skip_block_row(h, br, &value_base, &index_base);
    }
    if (out != NULL) {
        ((uint32_t *)out->run_row)[n->runs] = h->rows;
        ((uint32_t *)out->run_segment)[n->runs] = (uint32_t)n->segments;
        ((uint32_t *)out->segment_entry)[n->segments] = (uint32_t)n->entries;
    }
}

static size_t round8(size_t n) { return (n + 7) / 8 * 8; }

/*
 * Packed hybrid layout (one allocation, in this order; R rows, E entries):
 *   1. run_weight   size_t[runs]        first weight of each run
 *   2. weight       f32 or i8 [weights] per run, per kept column (entry), the
 *                                       run's rows adjacent: w[e * rows + r];
 *                                       int8: entries in groups of four, each
 *                                       row's four adjacent (w[(e & ~3) * rows +
 *                                       r * 4 + (e & 3)], the last group padded
 *                                       with zeros), so one 32-bit load feeds
 *                                       a 4-way dot-product instruction
 *   3. run_row      u32[runs + 1]       run r = rows run_row[r] .. run_row[r+1]-1
 *   4. run_segment  u32[runs + 1]       run r = segments run_segment[r] .. [r+1]-1
 *   5. segment_tap  u32[segments]       ky * kw + kx of the segment's columns
 *   6. segment_entry u32[segments + 1]  segment s = entries segment_entry[s] .. [s+1]-1
 *   7. entry_column u32[E]              the column: (ky * kw + kx) * Cin/groups + ci, or
 *                                       the feature (the row of an im2col tile, conv_fast.c)
 * then, for int8 ops: int32 bias[Cout], f32 multiplier[Cout], int32
 * weight_sum[Cout] (the sum of each output channel's stored q_w: the
 * microkernels fold the input zero point into the bias with it).
 * A run is at most V rows of one block-row and one conv group: its rows
 * share the kept columns, so the kernel reads each input row once per run.
 * Filled runs (walk_filled_run) are a block-row's rows of one conv group
 * over every column of its kept blocks, zeros where a row kept none.
 * A block-row that keeps no block is one run with no entries (bias only).
 */
/* A float32 hybrid layer run dense (src/hybrid_form.h) from the file: the
 * drivers expand the rows each kernel call needs from the file's encoding
 * (src/expand.h). Kept here: where each block-row starts in the value and
 * index streams, 16 bytes per block-row. */
static crisp_status expand(crisp_model *m, crisp_op *op, const crisp_tensor *t,
                           const char *what) {
    const crisp_hybrid *h = &t->hybrid;
    const size_t bytes = 2 * (size_t)h->nbr * sizeof(uint64_t);
    const crisp_status charged = crisp_limits_charge(m, bytes, what);
    if (charged != CRISP_OK) return charged;
    m->packed_bytes += bytes;
    uint64_t *starts = malloc(bytes ? bytes : 1);
    if (starts == NULL)
        return crisp_error(CRISP_ERR_NOMEM, "GRPH: out of memory for %zu bytes of block-row starts",
                           bytes);
    crisp_expand_starts(h, starts, starts + h->nbr);
    op->packed.memory = starts;
    op->packed.expand_values = starts;
    op->packed.expand_indices = starts + h->nbr;
    if (h->cols > m->reference_scratch_floats) m->reference_scratch_floats = h->cols;
    return CRISP_OK;
}

/* A float32 hybrid conv run dense from a copy (crisp_fit_packed_forms): its
 * rows expanded once here into R x K floats, what a DENSE_F32 tensor holds,
 * which the dense kernels then read as they read one; its file pages are
 * given back after (src/model.c). Bitwise the floats expand() gives the
 * kernels panel by panel. Where the memory limit or malloc has no room for
 * the copy the layer is expanded from the file instead: slower, the same
 * results, the load goes on. */
static crisp_status copy_dense(crisp_model *m, crisp_op *op, const crisp_tensor *t,
                               const char *what) {
    const crisp_hybrid *h = &t->hybrid;
    const uint64_t bytes64 = (uint64_t)h->rows * h->cols * sizeof(float);
    const uint64_t starts_bytes = 2 * (uint64_t)h->nbr * sizeof(uint64_t);
    if (bytes64 > SIZE_MAX || !crisp_limits_room(m, bytes64 + starts_bytes))
        return expand(m, op, t, what);
    const size_t bytes = (size_t)bytes64;
    uint64_t *starts = malloc(starts_bytes ? (size_t)starts_bytes : 1);
    float *dense = malloc(bytes);
    if (starts == NULL || dense == NULL) {
        free(starts), free(dense);
        return expand(m, op, t, what);
    }
    crisp_expand_starts(h, starts, starts + h->nbr);
    crisp_expand_rows(h, starts, starts + h->nbr, crisp_f32_kernels_best()->expand24, 0, h->rows,
                      dense);
    free(starts);
    const crisp_status charged = crisp_limits_charge(m, bytes, what);
    if (charged != CRISP_OK) {
        free(dense);
        return charged;
    }
    m->packed_bytes += bytes;
    op->packed.memory = dense;
    op->packed.dense_f32 = dense;
    return CRISP_OK;
}

/* Offsets of the packed layout's parts (numbered above) and the total. */
static size_t layout(const counts *n, int hybrid, int is_i8, uint64_t cout, int want_q,
                     size_t at[10]) {
    const size_t bytes[10] = {
        hybrid ? (size_t)n->runs * sizeof(size_t) : 0, (size_t)n->weights * (is_i8 ? 1 : 4),
        hybrid ? 4 * ((size_t)n->runs + 1) : 0,         hybrid ? 4 * ((size_t)n->runs + 1) : 0,
        4 * (size_t)n->segments,                        hybrid ? 4 * ((size_t)n->segments + 1) : 0,
        4 * (size_t)n->entries,                         want_q ? 4 * (size_t)cout : 0,
        want_q ? 4 * (size_t)cout : 0,                 want_q ? 4 * (size_t)cout : 0};
    size_t total = 0;
    for (int i = 0; i < 10; i++) {
        at[i] = total;
        total += round8(bytes[i]);
    }
    return total;
}

static crisp_status too_large(const counts *n) {
    if (n->entries > UINT32_MAX || n->segments >= UINT32_MAX)
        return crisp_error(CRISP_ERR_UNSUPPORTED,
                           "GRPH: a hybrid layer with %llu kept columns is too large for this "
                           "runtime", (unsigned long long)n->entries);
    return CRISP_OK;
}

static void describe(char *what, size_t size, uint32_t index, const crisp_op *op) {
    snprintf(what, size, "the packed weights of op %u (%s)", (unsigned)index,
             crisp_op_kind_name(op->kind));
}

/* Allocates the layout of counts `n` (the file's runs, or filled runs) and
 * fills it; int8 ops also get room for their bias and multipliers. */
static crisp_status build(crisp_model *m, uint32_t index, crisp_op *op, const crisp_tensor *t,
                          const geometry *g, int is_i8, uint64_t cout, int want_q, counts n,
                          int filled) {
    const int hybrid = crisp_encoding_is_hybrid(t->encoding);
    size_t at[10];
    const size_t total = layout(&n, hybrid, is_i8, cout, want_q, at);
    if (total == 0) return CRISP_OK;
    char what[96];
    describe(what, sizeof what, index, op);
    const crisp_status charged = crisp_limits_charge(m, total, what);
    if (charged != CRISP_OK) return charged;
    m->packed_bytes += total;
    uint8_t *mem = malloc(total);
    if (mem == NULL)
        return crisp_error(CRISP_ERR_NOMEM, "GRPH: out of memory for %zu bytes of packed weights",
                           total);
    op->packed.memory = mem;
    if (hybrid) {
        crisp_sparse_weights *sw = &op->packed.sparse;
        *sw = (crisp_sparse_weights){
            .run_count = (size_t)n.runs,
            .run_weight = (const size_t *)(void *)(mem + at[0]),
            .weight_f32 = is_i8 ? NULL : (const float *)(void *)(mem + at[1]),
            .weight_qs8 = is_i8 ? (const int8_t *)(mem + at[1]) : NULL,
            .run_row = (const uint32_t *)(void *)(mem + at[2]),
            .run_segment = (const uint32_t *)(void *)(mem + at[3]),
            .segment_tap = (const uint32_t *)(void *)(mem + at[4]),
            .segment_entry = (const uint32_t *)(void *)(mem + at[5]),
            .entry_column = (const uint32_t *)(void *)(mem + at[6])};
        op->packed.filled_weights = filled ? n.weights : 0;
        if (is_i8) memset(mem + at[1], 0, (size_t)n.weights); /* the groups' padding */
        counts fill = {0, 0, 0, 0};
        walk(&t->hybrid, g, is_i8, filled, sw, &fill);
    }
    if (want_q) {
        op->packed.bias_q = (int32_t *)(void *)(mem + at[7]);
        op->packed.multiplier = (float *)(void *)(mem + at[8]);
        op->packed.weight_sum = (int32_t *)(void *)(mem + at[9]);
    }
    return CRISP_OK;
}

/* Everything but a deferred layer: dense tensors' int8 bias/multipliers, and
 * hybrid runs (int8 convs: or filled runs, by the int8 table). */
static crisp_status pack(crisp_model *m, uint32_t index, crisp_op *op, const crisp_tensor *t,
                         const geometry *g, int is_i8, uint64_t cout, int want_q) {
    const int hybrid = crisp_encoding_is_hybrid(t->encoding);
    const crisp_hybrid *h = &t->hybrid;
    counts n = {0, 0, 0, 0};
    if (hybrid) walk(h, g, is_i8, 0, NULL, &n);
    crisp_status s = too_large(&n);
    if (s != CRISP_OK) return s;
    if (hybrid && is_i8 && op->kind == CRISP_OP_CONV2D && op->k.qconv.conv.groups == 1 &&
        h->n < h->m && h->v < h->block_rows) {
        /* int8: runs or filled runs (hybrid_form.h, its int8 table). */
        counts nf = {0, 0, 0, 0};
        walk(h, g, 1, 1, NULL, &nf);
        if (too_large(&nf) == CRISP_OK) {
            size_t at[10];
            const size_t total = layout(&n, 1, 1, cout, want_q, at);
            const size_t total_f = layout(&nf, 1, 1, cout, want_q, at);
            const crisp_hybrid_cost cost = {crisp_qs8_kernels_best()->isa, 1, 0, h->v, n.weights,
                                            total, nf.weights, total_f, n.runs, nf.runs, 0, 0, 0};
            if (crisp_hybrid_choose(m->hybrid_form, &cost) == CRISP_HYBRID_FILLED)
                return build(m, index, op, t, g, is_i8, cout, want_q, nf, 1);
        }
    }
    return build(m, index, op, t, g, is_i8, cout, want_q, n, 0);
}

/* A float32 hybrid layer with a dense form: its form by the cost table, and
 * its layout counted, so crisp_fit_packed_forms sees every layer's bytes and
 * times before anything is packed. Faults in the file's encoding are found
 * here, in file order. */
static crisp_status plan_deferred(crisp_model *m, crisp_op *op, const crisp_tensor *t,
                                  const geometry *g, uint64_t cout) {
    const crisp_hybrid *h = &t->hybrid;
    counts n = {0, 0, 0, 0};
    walk(h, g, 0, 0, NULL, &n);
    crisp_status s = too_large(&n);
    if (s != CRISP_OK) return s;
    size_t at[10];
    const size_t total = layout(&n, 1, 0, cout, 0, at);
    /* Filled runs only change per-row N:M inside blocks of several rows. */
    counts nf = {0, 0, 0, 0};
    size_t total_f = 0;
    if (h->n < h->m && h->v < h->block_rows && op->kind == CRISP_OP_CONV2D) {
        walk(h, g, 0, 1, NULL, &nf);
        if (too_large(&nf) == CRISP_OK) total_f = layout(&nf, 1, 0, cout, 0, at);
    }
    const crisp_hybrid_cost cost = {crisp_f32_kernels_best()->isa,
                                    0,
                                    op->kind == CRISP_OP_LINEAR,
                                    h->v,
                                    n.weights,
                                    total,
                                    total_f != 0 ? nf.weights : 0,
                                    total_f,
                                    n.runs,
                                    total_f != 0 ? nf.runs : 0,
                                    (uint64_t)h->rows * h->cols,
                                    2 * h->nbr * sizeof(uint64_t),
                                    op->kind == CRISP_OP_LINEAR && h->n == 2 && h->m == 4};
    const uint32_t choice = crisp_hybrid_choose(m->hybrid_form, &cost);
    const int from_file = choice == CRISP_HYBRID_DENSE || choice == CRISP_HYBRID_IN_FILE;
    const counts chosen = choice == CRISP_HYBRID_FILLED ? nf : n;
    const double pixels = op->kind == CRISP_OP_CONV2D
                              ? (double)op->k.conv.output_height * (double)op->k.conv.output_width
                              : 1.0;
    const double time = crisp_hybrid_time(&cost, choice);
    const double dense_time = crisp_hybrid_time(&cost, CRISP_HYBRID_DENSE);
    /* A stride-1 conv that is not a plain 1 x 1 may read a band of input rows
     * at load's last stage (src/conv_fast.c, "Bands"): a u32 offset per kept
     * column, charged as packed weights. Counted here as if it will. */
    const crisp_conv2d_params *cp = &op->k.conv;
    const int band = op->kind == CRISP_OP_CONV2D && cp->stride_height == 1 &&
                     cp->stride_width == 1 &&
                     !(cp->kernel_height == 1 && cp->kernel_width == 1 && cp->padding_top == 0 &&
                       cp->padding_left == 0);
    op->plan = (crisp_pack_plan){
        .deferred = 1,
        .choice = choice,
        .runs = chosen.runs,
        .segments = chosen.segments,
        .entries = chosen.entries,
        .weights = chosen.weights,
        .bytes = from_file                       ? cost.dense_bytes
                 : choice == CRISP_HYBRID_FILLED ? total_f
                                                 : total,
        .band_bytes = band && !from_file ? 4 * chosen.entries : 0,
        .dense_bytes = cost.dense_bytes,
        .time = time >= 0.0 ? time * pixels : -1.0,
        .dense_time = dense_time >= 0.0 ? dense_time * pixels : -1.0,
        .cost = cost};
    return CRISP_OK;
}

/* Sum of |q_w| (sums) and of q_w (signed) over each output channel's stored
 * weights. */
static void weight_sums(const crisp_op *op, const crisp_tensor *t, uint64_t cout, uint64_t *sums,
                        int64_t *signed_sums) {
    memset(sums, 0, (size_t)cout * sizeof *sums);
    memset(signed_sums, 0, (size_t)cout * sizeof *signed_sums);
    if (t->encoding == CRISP_ENCODING_DENSE_I8) {
        const uint64_t k = t->elements / cout;
        for (uint64_t c = 0; c < cout; c++)
            for (uint64_t i = 0; i < k; i++) {
                sums[c] += (uint64_t)abs(t->q[c * k + i]);
                signed_sums[c] += t->q[c * k + i];
            }
        return;
    }
    const crisp_sparse_weights *s = &op->packed.sparse;
    for (size_t r = 0; r < s->run_count; r++) {
        const size_t rows = s->run_row[r + 1] - s->run_row[r];
        const size_t entries = s->segment_entry[s->run_segment[r + 1]] -
                               s->segment_entry[s->run_segment[r]];
        /* Padding weights are zero: walking the padded groups adds nothing. */
        for (size_t i = 0; i < (size_t)padded_entries(entries, 1) * rows; i++) {
            const int8_t w = s->weight_qs8[s->run_weight[r] + i];
            sums[s->run_row[r] + (i / 4) % rows] += (uint64_t)abs(w);
            signed_sums[s->run_row[r] + (i / 4) % rows] += w;
        }
    }
}

/* int32 bias = round half to even of bias / (s_x s_w[c]) in double; the
 * multiplier is (float)(s_x s_w[c] / s_y). Refuses a channel whose int32
 * accumulator could overflow: 255 * sum |q_w| + |bias| > INT32_MAX. */
static crisp_status derive_int8(crisp_model *m, uint32_t index, crisp_op *op,
                                const crisp_tensor *t, uint64_t cout) {
    const crisp_value *x = &m->values[op->inputs[0]], *y = &m->values[op->output];
    const float *scales = t->encoding == CRISP_ENCODING_DENSE_I8 ? t->scales : t->hybrid.scales;
    const float *bias = op->bias != CRISP_NO_ID ? m->tensors[op->bias].data : NULL;
    uint64_t *sums = malloc((size_t)cout * sizeof *sums);
    int64_t *signed_sums = malloc((size_t)cout * sizeof *signed_sums);
    if (sums == NULL || signed_sums == NULL) {
        free(sums), free(signed_sums);
        return crisp_error(CRISP_ERR_NOMEM, "GRPH: out of memory for %llu channel sums",
                           (unsigned long long)cout);
    }
    weight_sums(op, t, cout, sums, signed_sums);
    crisp_status s = CRISP_OK;
    int fits = 1;
    for (uint64_t c = 0; c < cout && s == CRISP_OK; c++) {
        const double sxw = (double)x->scale * (double)scales[c];
        const double bq = bias != NULL ? nearbyint((double)bias[c] / sxw) : 0.0;
        const float mult = (float)(sxw / (double)y->scale);
        const double room = (double)INT32_MAX - 255.0 * (double)sums[c];
        if (!(fabs(bq) <= room))
            s = crisp_error(CRISP_ERR_FORMAT,
                            "GRPH: op %u (%s): output channel %llu: the int32 accumulator could "
                            "overflow (255 x sum |q_w| = %llu, int32 bias = %g)",
                            (unsigned)index, crisp_op_kind_name(op->kind),
                            (unsigned long long)c, (unsigned long long)(255 * sums[c]), bq);
        else if (!(mult > 0.0f) || !isfinite(mult))
            s = crisp_error(CRISP_ERR_FORMAT,
                            "GRPH: op %u (%s): output channel %llu: requantisation multiplier "
                            "s_x * s_w / s_y = %g is not a finite positive float",
                            (unsigned)index, crisp_op_kind_name(op->kind),
                            (unsigned long long)c, sxw / (double)y->scale);
        op->packed.bias_q[c] = s == CRISP_OK ? (int32_t)bq : 0;
        op->packed.multiplier[c] = mult;
        /* |sum q_w| <= sum |q_w| < INT32_MAX / 255 once the check above passed. */
        op->packed.weight_sum[c] = s == CRISP_OK ? (int32_t)signed_sums[c] : 0;
        fits = fits && s == CRISP_OK &&
               crisp_qs8_channel_fits_int32(op->packed.bias_q[c], sums[c], mult);
    }
    free(sums), free(signed_sums);
    crisp_qs8_requant *q = op->kind == CRISP_OP_CONV2D ? &op->k.qconv.q : &op->k.qlinear.q;
    q->bias = op->packed.bias_q;
    q->multiplier = op->packed.multiplier;
    q->weight_sum = op->packed.weight_sum;
    q->fits_int32 = fits;
    return s;
}

/*
 * Dense int8 conv with groups 1, for the optimised kernels (src/conv_fast_qs8.c):
 *   1. panels   i8 [ceil(R / 4) panels]  panel p = rows 4p .. min(4p + 4, R) - 1, in the
 *                                        int8 run layout (crisp_qs8_weight_index over K
 *                                        columns and the panel's rows), K padded to 4
 *   2. columns  u32[K]                   0, 1, ..., K - 1 (every panel keeps them all)
 * The file's weights stay where they are for the reference kernels.
 */
static crisp_status pack_panels(crisp_model *m, uint32_t index, crisp_op *op,
                                const crisp_tensor *t, uint64_t cout) {
    const size_t rows = (size_t)cout, k = (size_t)(t->elements / cout), k4 = (k + 3) / 4 * 4;
    const size_t panel_bytes = round8(rows * k4), total = panel_bytes + 4 * k;
    char what[96];
    snprintf(what, sizeof what, "the int8 weight panels of op %u (%s)", (unsigned)index,
             crisp_op_kind_name(op->kind));
    const crisp_status charged = crisp_limits_charge(m, total, what);
    if (charged != CRISP_OK) return charged;
    m->packed_bytes += total;
    uint8_t *mem = calloc(1, total);
    if (mem == NULL)
        return crisp_error(CRISP_ERR_NOMEM, "GRPH: out of memory for %zu bytes of packed weights",
                           total);
    op->packed.panel_memory = mem;
    int8_t *panels = (int8_t *)mem;
    uint32_t *columns = (uint32_t *)(void *)(mem + panel_bytes);
    for (size_t r0 = 0; r0 < rows; r0 += 4) {
        const size_t pr = rows - r0 < 4 ? rows - r0 : 4;
        for (size_t r = 0; r < pr; r++)
            for (size_t e = 0; e < k; e++)
                panels[r0 * k4 + crisp_qs8_weight_index(e, r, pr)] = t->q[(r0 + r) * k + e];
    }
    for (size_t e = 0; e < k; e++) columns[e] = (uint32_t)e;
    op->packed.panel_qs8 = panels;
    op->packed.panel_column = columns;
    return CRISP_OK;
}

/*
 * An int8 hybrid linear whose runs hold at least as many bytes as its dense
 * weights (each kept entry costs its int8 weight per row plus a u32 column:
 * 2:4 with every block kept is R x K / 2 weights and R x K / 2 columns at
 * V = 1, so 2.5x the dense bytes, and exactly the dense bytes at V = 4) runs
 * dense, as the file's dense int8 linears do (qs8_gemv): at batch 1 every
 * weight and column is read once per inference, so the byte count is the
 * cost, and a dense row streams without the runs' gather (MobileNetV2's
 * 2:4 classifier at V = 1: 0.19 ms on qs8_spmv, 0.06 ms dense;
 * runtime/README.md). The dense copy replaces the runs, reference kernels
 * included (src/dispatch.c), so memory shrinks or stays. Layout (one
 * allocation): int8 W[R][K] (row-major, zeros where nothing is kept), then
 * int32 bias[R], f32 multiplier[R], int32 weight_sum[R] moved from the runs.
 * CRISP_HYBRID_FORM=sparse (or filled) keeps the runs, =dense always
 * expands (src/hybrid_form.h). Where the memory limit has no room for both
 * during the copy, the layer keeps its runs.
 */
static crisp_status densify_linear(crisp_model *m, uint32_t index, crisp_op *op,
                                   uint64_t cout, uint64_t k) {
    const crisp_sparse_weights *s = &op->packed.sparse;
    counts n = {s->run_count, s->run_segment[s->run_count], 0, 0};
    for (size_t r = 0; r < s->run_count; r++) {
        const uint64_t e = s->segment_entry[s->run_segment[r + 1]] -
                           s->segment_entry[s->run_segment[r]];
        n.entries += e;
        n.weights += padded_entries(e, 1) * (s->run_row[r + 1] - s->run_row[r]);
    }
    const uint64_t dense = cout * k;
    if (m->hybrid_form == CRISP_HYBRID_FORM_SPARSE || m->hybrid_form == CRISP_HYBRID_FORM_FILLED)
        return CRISP_OK;
    if (m->hybrid_form == CRISP_HYBRID_FORM_AUTO && dense > n.weights + 4 * n.entries)
        return CRISP_OK;
    size_t at[10];
    const size_t old_total = layout(&n, 1, 1, cout, 1, at);
    const size_t wbytes = round8((size_t)dense), total = wbytes + 3 * round8(4 * (size_t)cout);
    /* Both exist while the copy is made: where the memory limit has no room
     * for that, the layer keeps its runs rather than failing the load. */
    if (!crisp_limits_room(m, total)) return CRISP_OK;
    char what[96];
    snprintf(what, sizeof what, "the dense int8 weights of op %u (%s)", (unsigned)index,
             crisp_op_kind_name(op->kind));
    const crisp_status charged = crisp_limits_charge(m, total, what);
    if (charged != CRISP_OK) return charged;
    uint8_t *mem = calloc(1, total);
    if (mem == NULL)
        return crisp_error(CRISP_ERR_NOMEM, "GRPH: out of memory for %zu bytes of packed weights",
                           total);
    int8_t *w = (int8_t *)mem;
    for (size_t r = 0; r < s->run_count; r++) {
        const size_t row0 = s->run_row[r], rows = s->run_row[r + 1] - row0;
        const size_t e0 = s->segment_entry[s->run_segment[r]];
        const size_t e1 = s->segment_entry[s->run_segment[r + 1]];
        const int8_t *rw = s->weight_qs8 + s->run_weight[r];
        for (size_t v = 0; v < rows; v++)
            for (size_t e = e0; e < e1; e++)
                w[(row0 + v) * (size_t)k + s->entry_column[e]] =
                    rw[crisp_qs8_weight_index(e - e0, v, rows)];
    }
    int32_t *bias = (int32_t *)(void *)(mem + wbytes);
    float *mult = (float *)(void *)(mem + wbytes + round8(4 * (size_t)cout));
    int32_t *wsum = (int32_t *)(void *)(mem + wbytes + 2 * round8(4 * (size_t)cout));
    memcpy(bias, op->packed.bias_q, 4 * (size_t)cout);
    memcpy(mult, op->packed.multiplier, 4 * (size_t)cout);
    memcpy(wsum, op->packed.weight_sum, 4 * (size_t)cout);
    free(op->packed.memory);
    memset(&op->packed.sparse, 0, sizeof op->packed.sparse);
    op->packed.memory = mem;
    op->packed.dense_qs8 = w;
    op->packed.bias_q = bias, op->packed.multiplier = mult, op->packed.weight_sum = wsum;
    crisp_qs8_requant *q = &op->k.qlinear.q;
    q->bias = bias, q->multiplier = mult, q->weight_sum = wsum;
    /* The runs are gone: count the dense copy instead. */
    m->packed_bytes = m->packed_bytes - old_total + total;
    m->resident_bytes -= old_total;
    return CRISP_OK;
}

/* The conv view of an op's weights. */
static geometry geometry_of(const crisp_op *op, const crisp_tensor *t) {
    const uint64_t cout = t->dims[0];
    geometry g = {t->elements / cout, cout};
    if (op->kind == CRISP_OP_CONV2D) {
        const crisp_conv2d_params *p =
            op->dtype == CRISP_DTYPE_I8 ? &op->k.qconv.conv : &op->k.conv;
        g.tap_width = p->input_channels / p->groups;
        g.group_rows = p->output_channels / p->groups;
    }
    return g;
}

crisp_status crisp_pack_op(crisp_model *m, uint32_t index) {
    crisp_op *op = &m->ops[index];
    if (op->kind != CRISP_OP_CONV2D && op->kind != CRISP_OP_LINEAR) return CRISP_OK;
    const crisp_tensor *t = &m->tensors[op->weight];
    const int is_i8 = op->dtype == CRISP_DTYPE_I8;
    const uint64_t cout = t->dims[0];
    const geometry g = geometry_of(op, t);
    /* The dense kernels take float32 convs with groups = 1 and linear layers:
     * such a hybrid layer has a dense form, and is packed later. */
    const int dense_kernel = !is_i8 && (op->kind == CRISP_OP_LINEAR || op->k.conv.groups == 1);
    if (dense_kernel && t->encoding == CRISP_ENCODING_HYBRID_F32)
        return plan_deferred(m, op, t, &g, cout);
    crisp_status s = pack(m, index, op, t, &g, is_i8, cout, is_i8);
    if (s == CRISP_OK && is_i8) s = derive_int8(m, index, op, t, cout);
    if (s == CRISP_OK && is_i8 && op->kind == CRISP_OP_LINEAR &&
        t->encoding == CRISP_ENCODING_HYBRID_I8)
        s = densify_linear(m, index, op, cout, t->elements / cout);
    if (s == CRISP_OK && op->kind == CRISP_OP_CONV2D && op->k.qconv.conv.groups == 1 &&
        t->encoding == CRISP_ENCODING_DENSE_I8)
        s = pack_panels(m, index, op, t, cout);
    return s;
}

/* Memory a session needs beside the weights and the arena, kept out of the
 * weights' budget: kernel scratch (about 1.3 MiB per thread for ResNet-50),
 * code, stacks and heap (about 2 MiB measured), with room to spare. */
#define SESSION_RESERVE ((uint64_t)6 << 20)
#define RSS_SLACK ((uint64_t)16 << 20) /* the promise: file + 2 x arena + 16 MiB */

/* Resident bytes beyond the file's: what packing allocates (band offsets
 * included, as an upper bound) as `packed`, the file pages it gives back (a
 * repacked or copied tensor's; a layer expanded from the file keeps its) as
 * `released`. Counted as for a mapped file whatever the load (a buffer's copy
 * gives nothing back), so the forms, and the results, do not depend on how
 * the model was loaded. Returns the layers packed as runs or filled runs. */
static size_t count_forms(const crisp_model *m, uint64_t *packed, uint64_t *released) {
    size_t runs = 0;
    *packed = m->packed_bytes, *released = 0;
    for (uint32_t i = 0; i < m->op_count; i++) {
        const crisp_op *op = &m->ops[i];
        if (op->kind != CRISP_OP_CONV2D && op->kind != CRISP_OP_LINEAR) continue;
        const crisp_tensor *t = &m->tensors[op->weight];
        if (op->plan.deferred) {
            *packed += op->plan.bytes + op->plan.band_bytes;
            if ((op->plan.choice == CRISP_HYBRID_DENSE && !op->plan.copy) ||
                op->plan.choice == CRISP_HYBRID_IN_FILE)
                continue;
            *released += t->raw_size;
            runs += op->plan.choice != CRISP_HYBRID_DENSE;
        } else if (crisp_encoding_is_hybrid(t->encoding)) {
            *released += t->raw_size;
        }
    }
    return runs;
}

/* Over the budget or the memory limit: layers packed as runs run dense from
 * the file instead, the least slowdown per byte freed first (src/
 * hybrid_form.h). A byte freed counts the file pages the layer then keeps
 * against the budget (resident memory), not against the limit (which counts
 * allocations only: src/memlimit.c). */
static void demote(crisp_model *m, size_t candidates, uint64_t excess, int count_file) {
    crisp_hybrid_demotion *items = calloc(candidates, sizeof *items);
    if (items == NULL) return; /* the cost table's choices stand */
    size_t n = 0;
    for (uint32_t i = 0; i < m->op_count; i++) {
        const crisp_pack_plan *p = &m->ops[i].plan;
        if (!p->deferred || p->choice == CRISP_HYBRID_DENSE || p->choice == CRISP_HYBRID_IN_FILE)
            continue;
        const uint64_t raw = m->tensors[m->ops[i].weight].raw_size;
        const uint64_t kept = (count_file ? raw : 0) + p->dense_bytes;
        const uint64_t held = p->bytes + p->band_bytes;
        if (p->time < 0.0 || p->dense_time < 0.0 || held <= kept) continue;
        items[n++] = (crisp_hybrid_demotion){held - kept, p->dense_time - p->time, i, 0};
    }
    crisp_hybrid_fit(items, n, excess);
    for (size_t j = 0; j < n && items[j].chosen; j++) {
        crisp_pack_plan *p = &m->ops[items[j].op].plan;
        p->choice = CRISP_HYBRID_DENSE;
        p->bytes = p->dense_bytes;
        p->band_bytes = 0;
        p->time = p->dense_time;
    }
    free(items);
}

/* Which dense-from-file convs may get a dense copy (runtime/README.md,
 * "Dense copies"). Measured on ResNet-50 @50 % (AVX-512, per-op profiles
 * against a copy of every layer): expanding costs about a fifth of a 3 x 3
 * conv's time on a 7 x 7 plane and a tenth on 14 x 14, nothing measurable
 * on 28 x 28 and above; and the dense kernels read a copy's MR rows as MR
 * streams: rows of K = 256 or 512 floats ran 8-17 % slower from a copy than
 * expanded from the file's one stream, rows of K >= 1024 (4 KiB, a page)
 * faster; a linear (GEMV, each weight used once) 25 % slower. */
#define COPY_MAX_PIXELS ((uint64_t)196)
/* Budget the copies leave unused beyond SESSION_RESERVE, for the kernel
 * scratch of more threads (about 1 MiB each): ResNet-50 @50 % with copies
 * up to the budget's edge peaked 0.2 MiB under it at 2 threads. */
#define COPY_SPARE ((uint64_t)8 << 20)

static int copy_wanted(const crisp_model *m, const crisp_op *op) {
    const crisp_pack_plan *p = &op->plan;
    if (!p->deferred || p->choice != CRISP_HYBRID_DENSE || p->copy) return 0;
    if (!crisp_dense_layout_pays(m, op)) return 0;
    const crisp_conv2d_params *c = &op->k.conv;
    return (uint64_t)c->output_height * c->output_width <= COPY_MAX_PIXELS;
}

/* What the memory limit (src/memlimit.c: allocations, not file pages) will
 * have counted once every deferred layer is packed, with the arena and the
 * graph records. `certain`: only that, which the load cannot avoid (band
 * offsets are packed only where they fit, kernel scratch is planned later):
 * over the limit the load would fail. Else also the band offsets' upper
 * bound and SESSION_RESERVE for one session's scratch: room for an optional
 * copy. */
static uint64_t limit_need(const crisp_model *m, int certain) {
    uint64_t need = m->resident_bytes + m->arena_bytes + crisp_limits_graph_bytes(m);
    if (!certain) need += SESSION_RESERVE;
    for (uint32_t i = 0; i < m->op_count; i++)
        if (m->ops[i].plan.deferred)
            need += m->ops[i].plan.bytes + (certain ? 0 : m->ops[i].plan.band_bytes);
    return need;
}

/* Whether op a's copy comes before op b's: the smaller output plane first
 * (its expansion a larger share of the layer: 7 x 7 convs ran 0.75-0.87x
 * their time from a copy, 14 x 14 ones 0.82-0.97x, at 1 and 2 threads),
 * then file order. Ordering by pixel tiles (expansions per run at 1 thread)
 * measured no better at 1 thread and worse at 2, where every thread expands
 * the panels of its own tiles. */
static int copy_before(const crisp_model *m, uint32_t a, uint32_t b) {
    const crisp_conv2d_params *pa = &m->ops[a].k.conv, *pb = &m->ops[b].k.conv;
    const uint64_t xa = (uint64_t)pa->output_height * pa->output_width;
    const uint64_t xb = (uint64_t)pb->output_height * pb->output_width;
    return xa != xb ? xa < xb : a < b;
}

/* Room left under the budget: dense copies in copy_before's order, each
 * only while its growth (the copy less the block-row starts and the file
 * pages it gives back) fits the budget's room and the copy fits the memory
 * limit beside the rest of the load and one session. */
static void promote(crisp_model *m, uint64_t room) {
    uint32_t *order = malloc((m->op_count ? m->op_count : 1) * sizeof *order);
    if (order == NULL) return; /* no copies: every layer stays expanded */
    size_t n = 0;
    for (uint32_t i = 0; i < m->op_count; i++) { /* insertion, in copy_before's order */
        if (!copy_wanted(m, &m->ops[i])) continue;
        size_t j = n++;
        for (; j > 0 && copy_before(m, i, order[j - 1]); j--) order[j] = order[j - 1];
        order[j] = i;
    }
    const uint64_t need = limit_need(m, 0);
    uint64_t limit_room = need < m->max_memory_bytes ? m->max_memory_bytes - need : 0;
    for (size_t j = 0; j < n; j++) {
        crisp_pack_plan *p = &m->ops[order[j]].plan;
        const crisp_tensor *t = &m->tensors[m->ops[order[j]].weight];
        const uint64_t bytes = (uint64_t)t->hybrid.rows * t->hybrid.cols * sizeof(float);
        const uint64_t given_back = p->bytes + t->raw_size;
        const uint64_t growth = bytes > given_back ? bytes - given_back : 0;
        const uint64_t added = bytes > p->bytes ? bytes - p->bytes : 0;
        if (growth > room || added > limit_room) continue;
        room -= growth, limit_room -= added;
        p->copy = 1;
        p->bytes = bytes;
    }
    free(order);
}

void crisp_fit_packed_forms(crisp_model *m) {
    if (m->hybrid_form != CRISP_HYBRID_FORM_AUTO) return;
    const uint64_t allowed = m->arena_bytes + RSS_SLACK - SESSION_RESERVE;
    uint64_t packed, released;
    size_t runs = count_forms(m, &packed, &released);
    if (runs > 0 && packed > released && packed - released > allowed) {
        demote(m, runs, packed - released - allowed, 1);
        runs = count_forms(m, &packed, &released);
    }
    /* A memory limit below what the runs allocate: dense from the file where
     * that makes the load fit, rather than failing it (crisp_check_limits
     * still fails a model that cannot fit either way, naming the figures).
     * Only past what the load cannot avoid: a model that fitted keeps its
     * forms. */
    const uint64_t need = limit_need(m, 1);
    if (runs > 0 && need > m->max_memory_bytes) {
        demote(m, runs, need - m->max_memory_bytes, 0);
        (void)count_forms(m, &packed, &released);
    }
    /* Copies are optional speed: they leave COPY_SPARE of the budget free. */
    const uint64_t held = packed > released ? packed - released : 0;
    if (held + COPY_SPARE < allowed) promote(m, allowed - held - COPY_SPARE);
}

crisp_status crisp_pack_deferred(crisp_model *m, uint32_t index) {
    crisp_op *op = &m->ops[index];
    if (!op->plan.deferred) return CRISP_OK;
    const crisp_tensor *t = &m->tensors[op->weight];
    const crisp_pack_plan *p = &op->plan;
    if (p->choice == CRISP_HYBRID_DENSE || p->choice == CRISP_HYBRID_IN_FILE) {
        char what[96];
        describe(what, sizeof what, index, op);
        if (p->choice == CRISP_HYBRID_IN_FILE) op->packed.in_file = 1; /* the starts, read in place */
        return p->copy ? copy_dense(m, op, t, what) : expand(m, op, t, what);
    }
    const geometry g = geometry_of(op, t);
    const counts n = {p->runs, p->segments, p->entries, p->weights};
    return build(m, index, op, t, &g, 0, t->dims[0], 0, n, p->choice == CRISP_HYBRID_FILLED);
}

void crisp_packed_free(crisp_packed *packed) {
    free(packed->memory);
    free(packed->panel_memory);
    memset(packed, 0, sizeof *packed);
}
