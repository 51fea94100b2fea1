/* One op on the session's threads. Each op becomes a number of equal work
 * items: conv = (output channel or hybrid run, output row) pairs, which
 * serves both wide layers (many channels) and narrow ones (depthwise, or
 * fewer channels than threads: the rows split them); hybrid runs of one
 * block-row carry equal work since every block-row keeps as many blocks;
 * linear = outputs or runs; pools = channels; elementwise = element chunks.
 * The items are cut into a few contiguous chunks per thread (on the
 * optimised kernels at pixel-tile boundaries when there are enough tiles,
 * or after retiling an im2col conv that has too few, crisp_fast_tiling_for,
 * so a tile's patch matrix is built once), which the threads claim
 * (src/thread_pool.c): a thread that is descheduled leaves its chunks to the
 * others instead of holding the op up. Kernels compute every output element
 * the same way whatever the range, so results are bitwise identical for any
 * thread count and any claim order. */
#include <stdint.h>
#include <string.h>

#include "conv_fast.h"
#include "expand.h"
#include "format.h"
#include "kernels/ref.h"
#include "session.h"

typedef struct job job;
typedef void (*work_fn)(const job *j, size_t begin, size_t end, size_t thread);

struct job {
    const crisp_op *op;
    const crisp_model *m;
    const uint8_t *x, *x2; /* inputs */
    uint8_t *y;            /* output */
    size_t items;
    work_fn work;
    const crisp_session *s;
    size_t chunks, align; /* chunk boundaries fall on multiples of align items */
    crisp_fast_tiling tiling; /* fast_work: the session's tiles of the op */
};

/* Items of an op on the optimised kernels (src/conv_fast.c); the thread's
 * scratch keeps the last patch tile it built across its chunks of the op. */
static void fast_work(const job *j, size_t b, size_t e, size_t t) {
    /* x2: a fused conv's residual (crisp_run_op), else NULL. */
    crisp_fast_run(j->s->fast, j->m, j->op, (const float *)j->x, (const float *)j->x2,
                   (float *)j->y, b, e, j->tiling.tile_pixels,
                   j->s->scratch + t * j->s->scratch_stride,
                   &j->s->held_tile[t * CRISP_HELD_TILE_STRIDE]);
}

/* Hybrid weights run as packed sparse runs; a float32 hybrid layer run dense
 * (src/hybrid_form.h) runs on the dense reference kernels, expanding its
 * rows from the file (expanded_work) or over its dense copy (src/pack.c,
 * copy_dense); an int8 hybrid linear run dense (densify_linear) on the dense
 * reference linear over its copy. */
static int is_hybrid(const crisp_op *op, const crisp_tensor *t) {
    return crisp_encoding_is_hybrid(t->encoding) && !crisp_op_expanded(op) &&
           op->packed.dense_qs8 == NULL && op->packed.dense_f32 == NULL;
}

static const float *bias_of(const job *j) {
    return j->op->bias != CRISP_NO_ID ? j->m->tensors[j->op->bias].data : NULL;
}

/* A float32 hybrid layer run dense, on the reference kernels: one output
 * channel at a time, its row expanded into the thread's scratch in plain C
 * (src/expand.h), then the dense reference conv (items oc * Ho + oy, groups
 * = 1) or linear on that channel alone: the same operations as on a dense
 * copy of the weights. */
static void expanded_work(const job *j, size_t b, size_t e, size_t t) {
    const crisp_op *op = j->op;
    const crisp_hybrid *h = &j->m->tensors[op->weight].hybrid;
    const int linear = op->kind == CRISP_OP_LINEAR;
    const size_t per = linear ? 1 : op->k.conv.output_height;
    const size_t pixels = linear ? 1 : per * op->k.conv.output_width;
    float *row = j->s->scratch + t * j->s->scratch_stride;
    const float *bias = bias_of(j);
    crisp_conv2d_params one = op->k.conv;
    one.output_channels = 1;
    for (size_t item = b; item < e;) {
        const size_t oc = item / per, stop = e < (oc + 1) * per ? e : (oc + 1) * per;
        crisp_expand_rows(h, op->packed.expand_values, op->packed.expand_indices, NULL, oc, 1,
                          row);
        float *y = (float *)j->y + oc * pixels;
        if (linear)
            crisp_f32_linear__ref(&op->k.linear, (const float *)j->x, row,
                                  bias != NULL ? bias + oc : NULL, y, 0, 1);
        else
            crisp_f32_conv2d__ref(&one, (const float *)j->x, row, bias != NULL ? bias + oc : NULL,
                                  y, item - oc * per, stop - oc * per);
        item = stop;
    }
}

static void conv_work(const job *j, size_t b, size_t e, size_t t) {
    const crisp_op *op = j->op;
    if (crisp_op_expanded(op)) {
        expanded_work(j, b, e, t);
        return;
    }
    const crisp_tensor *w = &j->m->tensors[op->weight];
    if (op->dtype == CRISP_DTYPE_I8) {
        if (is_hybrid(op, w))
            crisp_qs8_conv2d_hybrid__ref(&op->k.qconv, &op->packed.sparse,
                                         (const int8_t *)j->x, (int8_t *)j->y, b, e);
        else
            crisp_qs8_conv2d__ref(&op->k.qconv, (const int8_t *)j->x, w->q, (int8_t *)j->y, b, e);
    } else if (is_hybrid(op, w)) {
        crisp_f32_conv2d_hybrid__ref(&op->k.conv, &op->packed.sparse, (const float *)j->x,
                                     bias_of(j), (float *)j->y, b, e);
    } else {
        crisp_f32_conv2d__ref(&op->k.conv, (const float *)j->x, crisp_op_dense_f32(j->m, op),
                              bias_of(j), (float *)j->y, b, e);
    }
}

static void linear_work(const job *j, size_t b, size_t e, size_t t) {
    const crisp_op *op = j->op;
    if (crisp_op_expanded(op)) {
        expanded_work(j, b, e, t);
        return;
    }
    const crisp_tensor *w = &j->m->tensors[op->weight];
    if (op->dtype == CRISP_DTYPE_I8) {
        if (is_hybrid(op, w))
            crisp_qs8_linear_hybrid__ref(&op->k.qlinear, &op->packed.sparse,
                                         (const int8_t *)j->x, (int8_t *)j->y, b, e);
        else
            crisp_qs8_linear__ref(&op->k.qlinear, (const int8_t *)j->x,
                                  op->packed.dense_qs8 != NULL ? op->packed.dense_qs8 : w->q,
                                  (int8_t *)j->y, b, e);
    } else if (is_hybrid(op, w)) {
        crisp_f32_linear_hybrid__ref(&op->k.linear, &op->packed.sparse, (const float *)j->x,
                                     bias_of(j), (float *)j->y, b, e);
    } else {
        crisp_f32_linear__ref(&op->k.linear, (const float *)j->x, crisp_op_dense_f32(j->m, op),
                              bias_of(j), (float *)j->y, b, e);
    }
}

/* Channels [b, e) of a pool: the kernels take a channel count, so the range
 * is a shifted view with its own params. */
static void pool_work(const job *j, size_t b, size_t e, size_t t) {
    (void)t;
    const crisp_op *op = j->op;
    const crisp_value *in = &j->m->values[op->inputs[0]], *out = &j->m->values[op->output];
    const size_t size = (size_t)crisp_dtype_size(op->dtype);
    const size_t in_plane = (size_t)in->dims[1] * in->dims[2];
    const size_t out_plane = (size_t)(out->elements / in->dims[0]);
    const uint8_t *x = j->x + b * in_plane * size;
    uint8_t *y = j->y + b * out_plane * size;
    if (op->dtype == CRISP_DTYPE_I8) {
        crisp_qs8_pool2d_params q = op->k.qpool;
        q.pool.channels = e - b;
        const int8_t *qx = (const int8_t *)x;
        int8_t *qy = (int8_t *)y;
        crisp_pool2d_params p = op->k.pool;
        p.channels = e - b;
        if (op->kind == CRISP_OP_MAX_POOL2D && j->s->fast != NULL) {
            const crisp_qs8_maxpool_ukernel_fn pool = crisp_qs8_kernels_best()->maxpool;
            for (size_t c = 0; c < e - b; c++) pool(&p, qx + c * in_plane, qy + c * out_plane);
            return;
        }
        switch (op->kind) {
        case CRISP_OP_MAX_POOL2D: crisp_qs8_maxpool2d__ref(&p, qx, qy); break;
        case CRISP_OP_AVG_POOL2D: crisp_qs8_avgpool2d__ref(&q, qx, qy); break;
        case CRISP_OP_ADAPTIVE_AVG_POOL2D: crisp_qs8_adaptive_avgpool2d__ref(&q, qx, qy); break;
        default: crisp_qs8_global_avgpool__ref(&q, qx, qy); break;
        }
        return;
    }
    crisp_pool2d_params p = op->k.pool;
    p.channels = e - b;
    const float *fx = (const float *)x;
    float *fy = (float *)y;
    switch (op->kind) {
    case CRISP_OP_MAX_POOL2D: crisp_f32_maxpool2d__ref(&p, fx, fy); break;
    case CRISP_OP_AVG_POOL2D: crisp_f32_avgpool2d__ref(&p, fx, fy); break;
    case CRISP_OP_ADAPTIVE_AVG_POOL2D: crisp_f32_adaptive_avgpool2d__ref(&p, fx, fy); break;
    default: crisp_f32_global_avgpool__ref(e - b, in_plane, fx, fy); break;
    }
}

/* Elements [b, e) of an elementwise op. */
static void elementwise_work(const job *j, size_t b, size_t e, size_t t) {
    (void)t;
    const crisp_op *op = j->op;
    const size_t n = e - b;
    if (op->kind == CRISP_OP_QUANTIZE) {
        (j->s->fast != NULL ? crisp_qs8_kernels_best()->quantize : crisp_f32_quantize__ref)(
            n, (const float *)j->x + b, (int8_t *)j->y + b, &op->k.quant);
        return;
    }
    if (op->kind == CRISP_OP_DEQUANTIZE) {
        crisp_f32_dequantize__ref(n, (const int8_t *)j->x + b, (float *)j->y + b, &op->k.quant);
        return;
    }
    if (op->kind == CRISP_OP_MUL_CHANNELS) {
        crisp_f32_mul_channels__ref(&op->k.channels, (const float *)j->x, (const float *)j->x2,
                                    (float *)j->y, b, e);
        return;
    }
    if (op->kind >= CRISP_OP_SILU && op->kind <= CRISP_OP_HARDSIGMOID) {
        crisp_f32_activation__ref(n, (const float *)j->x + b, (float *)j->y + b, op->pointwise);
        return;
    }
    const size_t size = (size_t)crisp_dtype_size(op->dtype);
    if (op->kind == CRISP_OP_RESHAPE) {
        memcpy(j->y + b * size, j->x + b * size, n * size);
    } else if (op->dtype == CRISP_DTYPE_I8) {
        const int8_t *x = (const int8_t *)j->x + b;
        if (op->kind == CRISP_OP_ADD)
            (j->s->fast != NULL ? crisp_qs8_kernels_best()->add : crisp_qs8_add__ref)(
                n, x, (const int8_t *)j->x2 + b, (int8_t *)j->y + b, &op->k.qadd);
        else
            crisp_qs8_clamp__ref(n, x, (int8_t *)j->y + b, &op->k.qclamp);
    } else {
        const float *x = (const float *)j->x + b;
        if (op->kind == CRISP_OP_ADD)
            (j->s->fast != NULL ? j->s->fast->add : crisp_f32_add__ref)(
                n, x, (const float *)j->x2 + b, (float *)j->y + b, &op->k.minmax);
        else
            crisp_f32_clamp__ref(n, x, (float *)j->y + b, &op->k.minmax);
    }
}

/* Elements [b, e) of a fused non-clamp activation, in place over the output
 * the op's kernel has written. */
static void pointwise_work(const job *j, size_t b, size_t e, size_t t) {
    (void)t;
    crisp_f32_activation__ref(e - b, (float *)j->y + b, (float *)j->y + b, j->op->pointwise);
}

static void softmax_work(const job *j, size_t b, size_t e, size_t t) {
    (void)t;
    (void)b, (void)e;
    crisp_f32_softmax__ref(&j->op->k.softmax, (const float *)j->x, (float *)j->y);
}


/* Chunk c of C: items [align * (g c / C), align * (g (c + 1) / C)), g =
 * items / align groups (the last group takes the rest). */
static void run_chunk(void *context, size_t c, size_t t) {
    const job *j = context;
    const uint64_t groups = j->items / j->align;
    size_t b = (size_t)(groups * c / j->chunks) * j->align;
    size_t e = (size_t)(groups * (c + 1) / j->chunks) * j->align;
    if (c + 1 == j->chunks) e = j->items;
    if (b < e) j->work(j, b, e, t);
}

/* Work items and function of an op on the reference kernels (elementwise
 * by default: one item per output element). */
static void reference_items(job *j, const crisp_value *in, const crisp_value *out) {
    const crisp_op *op = j->op;
    const crisp_model *m = j->m;
    switch ((enum crisp_op_kind)op->kind) {
    case CRISP_OP_CONV2D: {
        const crisp_tensor *w = &m->tensors[op->weight];
        const size_t units = is_hybrid(op, w) ? op->packed.sparse.run_count : w->dims[0];
        j->items = units * out->dims[1];
        j->work = conv_work;
        break;
    }
    case CRISP_OP_LINEAR: {
        const crisp_tensor *w = &m->tensors[op->weight];
        j->items = is_hybrid(op, w) ? op->packed.sparse.run_count : w->dims[0];
        j->work = linear_work;
        break;
    }
    case CRISP_OP_MAX_POOL2D:
    case CRISP_OP_AVG_POOL2D:
    case CRISP_OP_GLOBAL_AVG_POOL:
    case CRISP_OP_ADAPTIVE_AVG_POOL2D:
        j->items = in->dims[0];
        j->work = pool_work;
        break;
    case CRISP_OP_SOFTMAX:
        j->items = 1;
        j->work = softmax_work;
        break;
    case CRISP_OP_ADD:
    case CRISP_OP_RELU:
    case CRISP_OP_RELU6:
    case CRISP_OP_SILU:
    case CRISP_OP_SIGMOID:
    case CRISP_OP_HARDSWISH:
    case CRISP_OP_HARDSIGMOID:
    case CRISP_OP_MUL_CHANNELS:
    case CRISP_OP_RESHAPE:
    case CRISP_OP_QUANTIZE:
    case CRISP_OP_DEQUANTIZE: break;
    }
}

/* The job's items on the session's threads (or the caller alone). */
static void run_job(const crisp_session *s, job *j) {
    const crisp_op *op = j->op;
    if (s->pool == NULL || j->items < 2) {
        if (j->items > 0) {
            if (s->held_tile != NULL) s->held_tile[0] = CRISP_NO_TILE;
            j->work(j, 0, j->items, 0);
        }
        return;
    }
    const size_t threads = crisp_pool_threads(s->pool);
    const size_t want = threads * CRISP_FAST_CHUNKS_PER_THREAD;
    j->align = 1;
    if (j->work == fast_work && j->tiling.by_tile) j->align = op->fast.units;
    j->chunks = j->items / j->align < want ? j->items / j->align : want;
    if (s->held_tile != NULL)
        for (size_t t = 0; t < threads; t++)
            s->held_tile[t * CRISP_HELD_TILE_STRIDE] = CRISP_NO_TILE;
    crisp_pool_run(s->pool, j->chunks, run_chunk, j);
}

void crisp_run_op(const crisp_session *s, const crisp_op *op) { crisp_run_op_fused(s, op, 1); }

/* Whether conv op (a fused ADD's) adds its residual per tile itself, on
 * the optimised kernels (`fast`): what crisp_run_op_fused does and what the
 * residual copy is sized for. */
static int adds_in_driver(const crisp_op *op, int fast) {
    return fast && crisp_fast_adds_residual(op);
}

uint64_t crisp_residual_copy_bytes(const crisp_model *m, int fast) {
    uint64_t most = 0;
    for (uint32_t i = 0; i < m->op_count; i++) {
        const crisp_op *op = &m->ops[i];
        if (op->fused_add == CRISP_NO_ID || adds_in_driver(op, fast)) continue;
        const crisp_value *r = &m->values[crisp_fused_residual(m, op)];
        if (crisp_op_written(m, op)->arena_offset != r->arena_offset) continue;
        const uint64_t bytes = r->elements * crisp_dtype_size(r->dtype);
        if (bytes > most) most = bytes;
    }
    return most;
}

/* Whether a session on the optimised kernels (`fast`) skips op: a 1 x 1
 * conv that the depthwise conv after it computes (expand fusion). */
static int fused_away(int fast, const crisp_op *op) {
    return fast && op->fused_by_next && op->fast.path != CRISP_FAST_NONE;
}

uint64_t crisp_expand_buffer_bytes(const crisp_model *m, int fast) {
    uint64_t most = 0;
    for (uint32_t i = 0; i < m->op_count; i++) {
        const crisp_op *op = &m->ops[i];
        const crisp_value *v = crisp_op_written(m, op);
        if (v == NULL || v->arena_offset != CRISP_NO_SLOT) continue;
        if (fused_away(fast, op)) continue;
        const uint64_t bytes = v->elements * crisp_dtype_size(v->dtype);
        if (bytes > most) most = bytes;
    }
    return most;
}

void crisp_run_op_fused(const crisp_session *s, const crisp_op *op, int fuse) {
    const crisp_model *m = s->model;
    const crisp_value *out = crisp_op_written(m, op);
    if (out == NULL) return; /* a fused ADD: its conv computed it (src/fuse.c) */
    /* Expand fusion (src/fuse.c): on the optimised kernels the depthwise conv
     * computes the 1 x 1 conv before it, reading that conv's input. */
    const int fast = s->fast != NULL && op->fast.path != CRISP_FAST_NONE;
    if (fuse && fused_away(s->fast != NULL, op)) return;
    const uint32_t x_id = fast && op->fuses_prev ? op[-1].inputs[0] : op->inputs[0];
    const crisp_value *in = &m->values[x_id];
    job j = {op, m, crisp_value_data(s, in), NULL, crisp_value_data(s, out),
             (size_t)out->elements, elementwise_work, s, 1, 1, {0, 0, 0}};
    if (s->input != NULL && x_id == m->input_value) j.x = (const uint8_t *)s->input;
    if (op->input_count == 2) j.x2 = crisp_value_data(s, &m->values[op->inputs[1]]);
    const uint8_t *residual = NULL;
    if (op->fused_add != CRISP_NO_ID && fuse)
        residual = crisp_value_data(s, &m->values[crisp_fused_residual(m, op)]);
    int in_driver = 0; /* the residual added per tile by the conv driver */
    /* Ops with an optimised plan (src/conv_fast.c: conv, linear, max pool). */
    if (fast) {
        j.tiling = crisp_fast_tiling_for(op, s->pool != NULL ? crisp_pool_threads(s->pool) : 1);
        j.items = op->fast.units * j.tiling.tiles;
        j.work = fast_work;
        in_driver = adds_in_driver(op, 1);
        j.x2 = in_driver ? residual : NULL; /* fast paths read one input */
    } else {
        reference_items(&j, in, out);
    }
    if (residual != NULL && !in_driver && residual == j.y) {
        /* The ADD's output shares the residual's buffer (src/planner.c),
         * which the conv is about to overwrite with its own result. */
        memcpy(s->residual_copy, residual, (size_t)out->elements * crisp_dtype_size(out->dtype));
        residual = s->residual_copy;
    }
    run_job(s, &j);
    if (residual != NULL && !in_driver) {
        /* Other kernels: the ADD as its own pass over the conv's result,
         * the same two roundings. */
        const crisp_op *add = &m->ops[op->fused_add];
        job a = {add, m, j.y, residual, j.y, (size_t)out->elements, elementwise_work, s, 1, 1,
                 {0, 0, 0}};
        run_job(s, &a);
    }
    /* A fused silu/sigmoid/hardswish/hardsigmoid: not a clamp the kernels' epilogues
     * know, so one pass over the output after them, the same for every kernel set
     * and thread count (a per-element function: bitwise identical however split). */
    if (op->pointwise != CRISP_ACT_NONE &&
        (op->kind == CRISP_OP_CONV2D || op->kind == CRISP_OP_LINEAR || op->kind == CRISP_OP_ADD)) {
        job p = {op, m, NULL, NULL, j.y, (size_t)out->elements, pointwise_work, s, 1, 1, {0, 0, 0}};
        run_job(s, &p);
    }
}
