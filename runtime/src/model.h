/* Internal: the validated, immutable model shared by all sessions. */
#ifndef CRISP_MODEL_H
#define CRISP_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "crisp.h"
#include "format.h"
#include "hybrid_form.h"
#include "kernels/params.h"

typedef struct crisp_value {
    uint32_t dtype;     /* CRISP_DTYPE_F32 or CRISP_DTYPE_I8 */
    float scale;        /* int8: real = scale * (q - zero_point) */
    int32_t zero_point;
    uint32_t rank;
    uint32_t dims[CRISP_MAX_RANK];
    uint64_t elements;
    uint32_t producer; /* op index, or CRISP_NO_ID for the graph input */
    uint32_t last_use; /* last op index reading it; op_count for the graph output */
    uint64_t arena_offset; /* CRISP_NO_SLOT: none (src/planner.c, expand fusion) */
} crisp_value;

/* The arena offset of a value that has no slot: the output of a 1 x 1 conv
 * fused into the depthwise conv after it (src/fuse.c), which the optimised
 * kernels never write. A session that runs such a conv alone (the reference
 * kernels, crisp_session_run_to) writes it to its own expand buffer
 * (src/session.h, crisp_value_data). */
#define CRISP_NO_SLOT UINT64_MAX

/* A validated hybrid-sparse tensor (docs/format.md): header fields and the
 * little-endian parts, in place inside WGHT. */
typedef struct crisp_hybrid {
    uint32_t rows, cols;             /* R, K */
    uint32_t block_rows, block_cols; /* Br, Bc */
    uint32_t n, m, v, kept_blocks;
    uint64_t nbr, nbc;
    uint32_t index_bits;             /* ceil(log2 M), 0 when N == M */
    const uint8_t *block_row_ptr;    /* u32[nbr + 1] */
    const uint8_t *block_col;        /* u32[kept_blocks] */
    const float *scales;             /* HYBRID_I8: f32[R]; else NULL */
    const void *values;              /* f32 or i8 */
    const uint8_t *indices;          /* bit stream */
    uint64_t value_count;            /* kept values, zeros at unused positions included */
} crisp_hybrid;

typedef struct crisp_tensor {
    uint32_t encoding;
    uint32_t rank;
    uint32_t dims[CRISP_MAX_RANK];
    uint64_t elements;
    const float *data;     /* DENSE_F32: in place inside WGHT */
    const float *scales;   /* DENSE_I8: per output channel, in place */
    const int8_t *q;       /* DENSE_I8: OHWI / (out, in), in place */
    crisp_hybrid hybrid;   /* HYBRID_F32, HYBRID_I8 */
    const uint8_t *raw;     /* the data inside WGHT (any encoding), and its size */
    uint64_t raw_size;
    uint64_t stored_values; /* elements (dense) or hybrid.value_count */
} crisp_tensor;

/* What a conv/linear op needs beyond the file, built once at load by
 * src/pack.c and owned by the model. */
typedef struct crisp_packed {
    crisp_sparse_weights sparse; /* hybrid encodings run sparse */
    /* A HYBRID_F32 layer run dense (src/hybrid_form.h) without a dense copy:
     * the drivers expand the rows they multiply from the file (src/expand.h),
     * starting each block-row at these value and index positions [nbr]; then
     * `sparse` is empty. NULL otherwise. */
    const uint64_t *expand_values, *expand_indices;
    /* A 2:4 linear with those starts that runs sparse on the file's encoding
     * in place (src/hybrid_form.h, CRISP_HYBRID_IN_FILE; f32_nmv24.inc) rather
     * than expanded: set at load, its kernels chosen in src/conv_fast.c. */
    int in_file;
    /* A HYBRID_F32 layer run dense from a copy expanded once at load (src/
     * pack.c, crisp_fit_packed_forms): R x K row-major, what a DENSE_F32
     * tensor's data would be; then `sparse` is empty. NULL otherwise. */
    const float *dense_f32;
    uint64_t filled_weights;     /* `sparse` holds filled runs (src/pack.c) of this many
                                    weights, zeros included; 0 = the file's runs */
    /* An int8 hybrid linear run dense (src/pack.c, densify_linear): R x K
     * row-major, and `sparse` is empty. NULL otherwise. */
    const int8_t *dense_qs8;
    int32_t *bias_q;             /* int8: [Cout] */
    float *multiplier;           /* int8: [Cout] */
    int32_t *weight_sum;         /* int8: [Cout], sum of the stored q_w */
    void *memory;                /* one allocation behind all the arrays */
    /* Dense int8 conv, groups 1 (src/pack.c): the weights in panels of 4 rows
     * in the grouped int8 layout, and the columns 0 .. K-1, so the int8
     * sparse-run kernels run it as runs that keep every column. */
    const int8_t *panel_qs8;     /* panel p at p * 4 * round4(K) */
    const uint32_t *panel_column; /* [K]: 0, 1, ..., K-1 */
    void *panel_memory;
} crisp_packed;

/* A float32 hybrid conv (groups 1) or linear, which has a dense form
 * (src/hybrid_form.h): stage 5 chooses its form and counts its packed
 * layout; it is packed after the activation arena is planned
 * (crisp_pack_deferred), once the model's memory fit (crisp_fit_packed_forms)
 * has seen every layer. */
typedef struct crisp_pack_plan {
    int deferred;          /* packed by crisp_pack_deferred, not crisp_pack_op */
    uint32_t choice;       /* enum crisp_hybrid_choice */
    uint64_t runs, segments, entries, weights; /* the chosen run form's layout */
    uint64_t bytes;        /* what the choice allocates */
    uint64_t band_bytes;   /* at most this many more for band offsets (src/conv_fast.c) */
    uint64_t dense_bytes;  /* what running dense allocates (block-row starts) */
    int copy;              /* dense from a copy expanded at load, not from the file
                              (crisp_fit_packed_forms); then `bytes` is the copy's */
    double time, dense_time; /* the cost table's time of the choice and of dense, whole
                                layer (per pixel x output pixels); -1 without a table */
    crisp_hybrid_cost cost; /* what the choice looked at (crisp_model_get_op_form asks
                               it again for another kernel tier) */
} crisp_pack_plan;

/* How an op runs on the optimised kernels (src/conv_fast.c), decided once at
 * load for the kernels this CPU selects; path NONE = reference kernels. */
enum crisp_fast_path {
    CRISP_FAST_NONE = 0,
    CRISP_FAST_GEMM,   /* dense float32 conv, groups = 1 */
    CRISP_FAST_SPMM,   /* hybrid float32 conv, groups = 1 */
    CRISP_FAST_DWCONV, /* dense float32 depthwise conv */
    CRISP_FAST_MAXPOOL, /* float32 max pooling */
    CRISP_FAST_GEMV,    /* dense float32 linear */
    CRISP_FAST_QS8_SPMM, /* hybrid int8 conv (groups = 1) */
    CRISP_FAST_QS8_GEMM, /* dense int8 conv, groups = 1 */
    CRISP_FAST_QS8_DWCONV, /* dense int8 depthwise conv */
    CRISP_FAST_QS8_GEMV,   /* dense int8 linear */
    CRISP_FAST_QS8_SPMV,   /* hybrid int8 linear (batch 1) */
    CRISP_FAST_SPMV,       /* hybrid float32 linear (batch 1) */
    CRISP_FAST_NMV24,      /* 2:4 hybrid float32 linear read in place (batch 1) */
};

typedef struct crisp_fast_plan {
    uint32_t path;
    int direct;            /* 1x1, stride 1, no padding: the input is the B operand */
    size_t units;          /* row panels (GEMM, GEMV, QS8_GEMV), runs (SPMM, QS8_SPMV), channels (DWCONV, MAXPOOL)
                              or channel blocks (DWCONV with channel_block) */
    size_t channel_block;  /* DWCONV: channels per call of the channels-in-lanes kernel, or 0 */
    int dw_rows;           /* DWCONV in place: the kernel walks rows (crisp_dwconv_image.rows) */
    size_t tiles;          /* pixel tiles; work item = tile * units + unit */
    size_t tile_pixels;    /* pixels per tile (a multiple of the kernel's NR; with a band,
                              whole output rows) */
    size_t k;              /* rows of the B operand: kh * kw * Cin */
    size_t scratch_floats; /* per thread: the im2col tile, the band and its wide output
                              rows, or the padded phases */
    /* A stride-1 hybrid conv reading a padded band of input rows in place instead of an
     * im2col tile (src/conv_fast.c, "Bands"); band_offset NULL otherwise. Its tiles are
     * whole output rows. */
    const uint32_t *band_offset; /* [entries]: each kept column's offset in the band,
                                    ci * band_plane + ky * dh * band_width + kx * dw; owned */
    size_t band_width;           /* elements (float or int8) per band row: ow + dw (kw - 1) */
    size_t band_plane;           /* elements per input channel: rows of the largest tile's band */
    size_t band_out_stride;      /* elements per output channel in the wide output buffer */
} crisp_fast_plan;

typedef struct crisp_op {
    uint32_t kind;
    uint32_t activation;
    uint32_t input_count;
    uint32_t inputs[2];
    uint32_t output;
    uint32_t weight; /* tensor id or CRISP_NO_ID */
    uint32_t bias;
    int32_t params[CRISP_OP_PARAM_COUNT];
    /* Kernel parameters derived once by shape inference. */
    uint32_t dtype; /* of the input (QUANTIZE: float32) */
    /* A non-clamp activation (CRISP_ACT_SILU ...) applied to the output after the
     * op's kernel: the fused activation, or what a SILU/SIGMOID/... op computes. */
    uint32_t pointwise;
    union {
        crisp_conv2d_params conv;
        crisp_linear_params linear;
        crisp_pool2d_params pool;
        crisp_softmax_params softmax;
        crisp_minmax_params minmax; /* add, relu, relu6 */
        crisp_channels_params channels; /* mul_channels */
        crisp_qs8_conv2d_params qconv;
        crisp_qs8_linear_params qlinear;
        crisp_qs8_pool2d_params qpool; /* avg, global avg, adaptive avg */
        crisp_qs8_add_params qadd;
        crisp_qs8_clamp_params qclamp;  /* relu, relu6 */
        crisp_qs8_quantize_params quant; /* quantize, dequantize */
    } k;
    /* Residual fusion (src/fuse.c): a float32 conv that also computes the ADD
     * op `fused_add` reading its output (writing that ADD's output value, the
     * ADD's other input added and its clamp applied per tile, right after the
     * kernels wrote it); that ADD op then has `fused_into` = the conv and is
     * skipped. CRISP_NO_ID otherwise. */
    uint32_t fused_add, fused_into;
    /* Expand fusion (src/fuse.c, crisp_fuse_expands): a float32 depthwise conv
     * that computes the 1 x 1 conv right before it band by band into its own
     * scratch (fuses_prev; it reads that conv's input), and that conv, which
     * the op loop then skips on the optimised kernels (fused_by_next). Its
     * output keeps its arena slot for crisp_session_run_to. */
    uint8_t fuses_prev, fused_by_next;
    crisp_packed packed; /* conv/linear with hybrid weights or int8 */
    crisp_pack_plan plan;
    crisp_fast_plan fast;
    uint64_t macs, effective_macs; /* conv/linear: dense and executed, per sample */
} crisp_op;

/* A located section after the container checks. */
typedef struct crisp_section {
    const uint8_t *data;
    uint64_t size;
} crisp_section;

struct crisp_model {
    /* Exactly one of these owns the bytes. */
    void *mapping;
    size_t mapping_size;
    void *owned;

    const uint8_t *bytes;
    uint64_t size;
    uint32_t format_major, format_minor;
    crisp_section grph, wght, labl, prov, prep;
    crisp_section saly; /* optional; CRC checked, parsed only on use (src/saly.c) */
    char *path; /* the file's path (load_file), for messages; NULL for a buffer */
    /* The GRPH record arrays and their strides (later minor versions may
     * append fields to a record). */
    const uint8_t *value_records, *tensor_records, *op_records;
    uint32_t value_record_size, tensor_record_size, op_record_size;

    uint32_t value_count, tensor_count, op_count;
    uint32_t input_value, output_value;
    crisp_value *values;
    crisp_tensor *tensors;
    crisp_op *ops;

    uint32_t label_count;
    int32_t *label_ids;
    char **label_names; /* pointers into label_text */
    char *label_text;

    char *provenance; /* NUL-terminated copy */
    size_t provenance_length;

    crisp_preprocess preprocess; /* PREP; present 0 without one */

    uint64_t arena_bytes, naive_bytes, macs, effective_macs;
    size_t scratch_floats; /* per session thread: max over the ops' fast plans */
    size_t reference_scratch_floats; /* per thread of a reference-kernel session: one
                                        expanded row (src/expand.h), K of the widest */

    /* Memory limit (src/memlimit.c): the bound, what the stages charged
     * before allocating (packed weights, label names; each also on its own),
     * and the model's whole own share (those + graph records + provenance). */
    uint64_t max_memory_bytes;
    uint64_t resident_bytes, packed_bytes, label_bytes;
    uint32_t hybrid_form; /* enum crisp_hybrid_form, from the environment at load */
    uint64_t own_bytes;
};

/* The loader's stages, in the order src/model.c calls them (runtime/README.md,
 * "Loading"). Each validates what it reads, reports the first fault with
 * crisp_error and returns its status; none calls another stage. A stage may
 * rely on every stage before it having succeeded (for per-op and per-tensor
 * stages: for this op or tensor and all earlier ones). */

/* src/container.c: header, section table, section bounds and CRCs; sets the
 * model's grph/wght/labl/prov/saly/prep sections. */
crisp_status crisp_parse_container(crisp_model *model);
/* src/graph.c: GRPH header (counts, record sizes, graph input/output ids);
 * allocates values, tensors and ops; locates the record arrays. */
crisp_status crisp_parse_graph_header(crisp_model *model);
/* src/graph.c: every value record (dtype, dims, quantisation); graph input
 * and output are float32. */
crisp_status crisp_parse_values(crisp_model *model);
/* src/tensor.c: tensor record `index` (encoding, dims, data bounds inside
 * WGHT); sets raw/raw_size. */
crisp_status crisp_parse_tensor(crisp_model *model, uint32_t index);
/* src/tensor.c: the data of a parsed DENSE_F32 or DENSE_I8 tensor. */
crisp_status crisp_check_dense(crisp_model *model, uint32_t index);
/* src/hybrid.c: the data of a parsed HYBRID_F32 or HYBRID_I8 tensor; fills
 * tensor.hybrid. */
crisp_status crisp_check_hybrid(crisp_model *model, uint32_t index);
/* src/graph.c: op record `index` (kind, activation, input/output ids in
 * execution order, single production, weight/bias ids, unused params). */
crisp_status crisp_parse_op(crisp_model *model, uint32_t index);
/* src/shape.c: params, weight/bias dims, output shape against the stored
 * one, MACs; fills the float kernel params. */
crisp_status crisp_infer_op(crisp_model *model, uint32_t index);
/* src/dtype.c: dtype signature of an inferred op; int8 ops get their
 * quantised kernel params. */
crisp_status crisp_check_op_dtypes(crisp_model *model, uint32_t index);
/* src/pack.c: repacks a conv/linear op's hybrid weights and derives int8
 * bias/multipliers (refusing a channel whose accumulator could overflow);
 * the packed bytes are charged against the memory limit before allocating. */
crisp_status crisp_pack_op(crisp_model *model, uint32_t index);
/* src/pack.c, after the arena is planned: where the packed weights would
 * hold more than the memory budget allows (file + arena + 10 MiB in all, so
 * a one-thread session on a mapped file stays within the file + 2 x arena +
 * 16 MiB that runtime/README.md promises; a buffer load chooses the same
 * forms), turns the deferred layers that cost the least time per byte freed
 * from runs into dense-from-file (src/hybrid_form.h, crisp_hybrid_fit). Only
 * under CRISP_HYBRID_FORM=auto. Cannot fail. */
void crisp_fit_packed_forms(crisp_model *model);

/* src/fuse.c, before the arena plan: sets every op's fused_add / fused_into
 * (CRISP_FUSE_ADD=0 in the environment at load: none). */
void crisp_fuse_residual_adds(crisp_model *model);
/* src/fuse.c, after crisp_fuse_residual_adds and before the arena plan: sets
 * every op's fuses_prev / fused_by_next (CRISP_FUSE_EXPAND=0 at load: none). */
void crisp_fuse_expands(crisp_model *model);
/* src/pack.c: packs a deferred op in its planned form (charged against the
 * memory limit before allocating). */
crisp_status crisp_pack_deferred(crisp_model *model, uint32_t index);
/* src/graph.c, after every op: each value but the input is produced; the
 * output lives to the end of the run. */
crisp_status crisp_check_graph_values(crisp_model *model);
/* src/labels.c: the optional LABL and PROV sections. Label names are copied
 * once per distinct (offset, length), charged against the memory limit
 * before allocating. */
crisp_status crisp_parse_labels(crisp_model *model);
crisp_status crisp_parse_provenance(crisp_model *model);
/* src/labels.c: offset of the first byte of s[0..n) that is not well-formed UTF-8 or is a
 * NUL, n when all is well (overlongs, surrogates and > U+10FFFF are errors). The rule for
 * label names and PROV, which the personalisation writer checks before writing them too. */
size_t crisp_utf8_error_at(const uint8_t *s, size_t n);
/* src/prep.c: the optional PREP section, every field against the graph
 * input; fills model->preprocess. */
crisp_status crisp_parse_preprocess(crisp_model *model);
/* src/planner.c: the activation arena (values' offsets, arena and naive bytes). */
crisp_status crisp_plan_model(crisp_model *model);
/* Then src/conv_fast.c plans each op on the optimised kernels (cannot fail). */
/* src/memlimit.c, last: the model's own bytes plus one single-threaded
 * session's (arena, kernel scratch) against max_memory_bytes; sets
 * own_bytes. CRISP_ERR_LIMIT naming the figures. */
crisp_status crisp_check_limits(crisp_model *model);

/* Rank 1..4, used dims >= 1, unused 0; the element count, or 0 after
 * reporting (src/graph.c, shared with src/tensor.c). */
uint64_t crisp_read_dims(const uint8_t *p, const char *what, uint32_t id, uint32_t *rank,
                         uint32_t dims[CRISP_MAX_RANK], uint64_t limit);
/* int8 weight checks shared by DENSE_I8 and HYBRID_I8 (src/tensor.c). */
crisp_status crisp_check_weight_scales(uint32_t index, const char *encoding, const float *scales,
                                       uint64_t count);
crisp_status crisp_check_weight_values(uint32_t index, const char *encoding, const float *v,
                                       uint64_t count);
crisp_status crisp_check_weight_q(uint32_t index, const char *encoding, const int8_t *q,
                                  uint64_t count);
void crisp_packed_free(crisp_packed *packed);

/* The value op writes in the arena: its output, or for a conv that fused
 * an ADD (src/fuse.c) the ADD's output; NULL for the fused ADD itself. */
static inline const crisp_value *crisp_op_written(const crisp_model *m, const crisp_op *op) {
    if (op->fused_into != CRISP_NO_ID) return NULL;
    if (op->fused_add != CRISP_NO_ID) return &m->values[m->ops[op->fused_add].output];
    return &m->values[op->output];
}

/* The input of a fused conv's ADD that the conv adds to its result: the one
 * it does not produce. */
static inline uint32_t crisp_fused_residual(const crisp_model *m, const crisp_op *conv) {
    const crisp_op *add = &m->ops[conv->fused_add];
    return add->inputs[0] == conv->output ? add->inputs[1] : add->inputs[0];
}

/* A hybrid layer the cost table runs on the dense kernels (src/expand.h). */
static inline int crisp_op_expanded(const crisp_op *op) {
    return op->packed.expand_values != NULL;
}

/* A float32 conv's or linear's dense weights in memory, R x K row-major: a
 * DENSE_F32 tensor's data, or a hybrid layer's dense copy; NULL otherwise. */
static inline const float *crisp_op_dense_f32(const crisp_model *m, const crisp_op *op) {
    if (op->packed.dense_f32 != NULL) return op->packed.dense_f32;
    const crisp_tensor *t = &m->tensors[op->weight];
    return t->encoding == CRISP_ENCODING_DENSE_F32 ? t->data : NULL;
}

static inline int crisp_encoding_is_hybrid(uint32_t encoding) {
    return encoding == CRISP_ENCODING_HYBRID_F32 || encoding == CRISP_ENCODING_HYBRID_I8;
}

/* Position i of a hybrid index stream: `bits` bits, least-significant bit
 * first. The caller has checked that the stream holds index i. */
static inline uint32_t crisp_hybrid_index(const uint8_t *stream, uint64_t i, unsigned bits) {
    if (bits == 0) return 0;
    const uint64_t pos = i * bits;
    const unsigned shift = (unsigned)(pos % 8);
    uint32_t v = (uint32_t)stream[pos / 8] >> shift;
    if (shift + bits > 8) v |= (uint32_t)stream[pos / 8 + 1] << (8 - shift);
    return v & ((1u << bits) - 1);
}

/* Bytes of one element of a value. */
static inline uint64_t crisp_dtype_size(uint32_t dtype) { return dtype == CRISP_DTYPE_I8 ? 1 : 4; }

#endif
