/* Sessions: one arena and one thread pool per caller; runs ops in file
 * order, one sample at a time. */
#include "session.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "format.h"
#include "hybrid_form.h"
#include "memlimit.h"
#include "names.h"
#include "pages.h"
#include "status.h"

const char *crisp_kernel_isa(void) { return crisp_f32_kernels_best()->isa; }

static double now_seconds(void) {
    struct timespec t;
    timespec_get(&t, TIME_UTC); /* C11; fine for op times of microseconds and up */
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* How a hybrid layer runs, and the MACs it executes per sample: a layer run
 * dense (src/hybrid_form.h; expanded from the file or a copy made at load)
 * executes every MAC; filled runs their weights, zeros included. */
static uint32_t hybrid_choice(const crisp_op *o) {
    return o->packed.dense_f32 || o->packed.dense_qs8 ? CRISP_HYBRID_DENSE_COPY
           : o->packed.in_file                       ? CRISP_HYBRID_IN_FILE
           : crisp_op_expanded(o)                    ? CRISP_HYBRID_DENSE
           : o->packed.filled_weights                ? CRISP_HYBRID_FILLED
                                                     : CRISP_HYBRID_RUNS;
}
static uint64_t executed_macs(const crisp_model *m, const crisp_op *o) {
    const uint32_t choice = hybrid_choice(o);
    if (choice == CRISP_HYBRID_DENSE || choice == CRISP_HYBRID_DENSE_COPY) return o->macs;
    if (choice == CRISP_HYBRID_FILLED) {
        const crisp_hybrid *h = &m->tensors[o->weight].hybrid;
        return o->macs / ((uint64_t)h->rows * h->cols) * o->packed.filled_weights;
    }
    return o->effective_macs;
}

crisp_status crisp_session_get_op_profile(const crisp_session *s, uint32_t op,
                                          crisp_op_profile *out) {
    if (s == NULL || out == NULL)
        return crisp_error(CRISP_ERR_ARGUMENT, "crisp_session_get_op_profile: %s is NULL",
                           s == NULL ? "session" : "out");
    if (s->op_seconds == NULL)
        return crisp_error(CRISP_ERR_ARGUMENT,
                           "crisp_session_get_op_profile: the session was created without "
                           "CRISP_SESSION_PROFILE");
    if (op >= s->model->op_count)
        return crisp_error(CRISP_ERR_ARGUMENT,
                           "crisp_session_get_op_profile: op %u, the model has %u ops",
                           (unsigned)op, (unsigned)s->model->op_count);
    const crisp_op *o = &s->model->ops[op];
    const uint32_t choice = hybrid_choice(o);
    uint64_t executed = executed_macs(s->model, o);
    /* Expand fusion: the depthwise conv's time holds the 1 x 1 conv's work. */
    const int fast = s->fast != NULL && o->fast.path != CRISP_FAST_NONE;
    if (fast && o->fused_by_next) executed = 0;
    if (fast && o->fuses_prev) executed += executed_macs(s->model, o - 1);
    const char *kernel = s->fast == NULL ? (choice == CRISP_HYBRID_DENSE || choice == CRISP_HYBRID_IN_FILE ? "reference (expanded)"
                                            : choice == CRISP_HYBRID_DENSE_COPY ? "reference (dense copy)"
                                            : choice == CRISP_HYBRID_FILLED ? "reference (filled)"
                                                                            : "reference")
                                         : crisp_fast_path_name(o->fast.path, choice);
    /* Ops without a conv fast path that still run a microkernel list with the
     * fast kernels on (src/dispatch.c): name the list, not "reference". */
    if (s->fast != NULL && o->fast.path == CRISP_FAST_NONE) {
        if (o->kind == CRISP_OP_QUANTIZE) kernel = "quantize";
        if (o->dtype == CRISP_DTYPE_I8 && o->kind == CRISP_OP_ADD) kernel = "qs8_add";
        if (o->dtype == CRISP_DTYPE_F32 && o->kind == CRISP_OP_ADD) kernel = "add";
        if (o->dtype == CRISP_DTYPE_I8 && o->kind == CRISP_OP_MAX_POOL2D) kernel = "qs8_maxpool";
    }
    if (o->fused_into != CRISP_NO_ID) kernel = "add (fused)"; /* in the conv before it */
    if (fast && o->fused_by_next) kernel = crisp_fused_path_name(o->fast.path, choice);
    if (fast && o->fuses_prev) kernel = "dwconv (+expand)";
    *out = (crisp_op_profile){crisp_op_kind_name(o->kind), kernel, o->macs, executed,
                              s->op_calls[op], s->op_seconds[op]};
    return CRISP_OK;
}

crisp_status crisp_session_create(const crisp_model *model, crisp_session **out) {
    return crisp_session_create_with_options(model, NULL, out);
}

/* Whether every op reading the graph input is a QUANTIZE (an int8 model's
 * only float32 input op, which reads its floats with unaligned loads and
 * writes an int8 value elsewhere): the input's arena copy is then read by
 * nobody else, and the QUANTIZE can read the caller's floats instead.
 * Skipping the copy saves a pass over the input (600 KB at 224 x 224). */
static int input_read_by_quantize_only(const crisp_model *m) {
    int readers = 0;
    for (uint32_t k = 0; k < m->op_count; k++) {
        const crisp_op *op = &m->ops[k];
        for (uint32_t i = 0; i < op->input_count; i++) {
            if (op->inputs[i] != m->input_value) continue;
            if (op->kind != CRISP_OP_QUANTIZE) return 0;
            readers++;
        }
    }
    return readers > 0 && m->output_value != m->input_value;
}

/* Replaces the session's expand buffer (src/session.h) by one of `bytes`;
 * the old one stays when that fails (CRISP_ERR_NOMEM, naming `who`). */
static crisp_status grow_expand_buffer(crisp_session *s, uint64_t bytes, const char *who) {
    uint8_t *grown = crisp_pages_alloc((size_t)bytes);
    if (grown == NULL)
        return crisp_error(CRISP_ERR_NOMEM, "%s: out of memory for a %llu-byte expand buffer",
                           who, (unsigned long long)bytes);
    free(s->expand_buffer);
    s->expand_buffer = grown;
    s->expand_buffer_bytes = bytes;
    return CRISP_OK;
}

crisp_status crisp_session_create_with_options(const crisp_model *model,
                                               const crisp_session_options *options,
                                               crisp_session **out) {
    if (out == NULL) return crisp_error(CRISP_ERR_ARGUMENT, "crisp_session_create: out is NULL");
    *out = NULL;
    if (model == NULL)
        return crisp_error(CRISP_ERR_ARGUMENT, "crisp_session_create: model is NULL");
    const crisp_session_options defaults = {0, 0};
    if (options == NULL) options = &defaults;
    if (options->flags & ~(CRISP_SESSION_REFERENCE_KERNELS | CRISP_SESSION_PROFILE))
        return crisp_error(CRISP_ERR_ARGUMENT,
                           "crisp_session_create: options.flags 0x%08X has unknown bits (known: "
                           "CRISP_SESSION_REFERENCE_KERNELS = 0x1, CRISP_SESSION_PROFILE = 0x2)",
                           (unsigned)options->flags);
    if (options->threads > CRISP_MAX_THREADS)
        return crisp_error(CRISP_ERR_ARGUMENT,
                           "crisp_session_create: options.threads is %u, expected 0..%u",
                           (unsigned)options->threads, CRISP_MAX_THREADS);
    /* Checked before anything is allocated: the arena and each thread's
     * kernel scratch against the limit the model was loaded with. */
    const int fast = !(options->flags & CRISP_SESSION_REFERENCE_KERNELS);
    const size_t pool_threads = options->threads > 1 ? options->threads : 1;
    const size_t scratch_floats = fast ? model->scratch_floats : model->reference_scratch_floats;
    const uint64_t copy_bytes = crisp_residual_copy_bytes(model, fast);
    const uint64_t expand_bytes = crisp_expand_buffer_bytes(model, fast);
    const crisp_status limit = crisp_limits_check_session(model, pool_threads, scratch_floats,
                                                          copy_bytes, expand_bytes);
    if (limit != CRISP_OK) return limit;
    if (model->arena_bytes > SIZE_MAX)
        return crisp_error(CRISP_ERR_NOMEM, "session: a %llu-byte arena does not fit in memory",
                           (unsigned long long)model->arena_bytes);
    crisp_session *s = calloc(1, sizeof *s);
    uint8_t *arena = crisp_pages_alloc((size_t)model->arena_bytes);
    if (s == NULL || arena == NULL) {
        free(s);
        free(arena);
        return crisp_error(CRISP_ERR_NOMEM, "session: out of memory for a %llu-byte arena",
                           (unsigned long long)model->arena_bytes);
    }
    s->model = model;
    s->arena = arena;
    if (options->threads > 1) {
        const crisp_status st = crisp_pool_create(options->threads, NULL, &s->pool);
        if (st != CRISP_OK) {
            free(arena);
            free(s);
            return st;
        }
    }
    if (options->flags & CRISP_SESSION_PROFILE) {
        const size_t n = model->op_count ? model->op_count : 1;
        s->op_seconds = calloc(n, sizeof *s->op_seconds);
        s->op_calls = calloc(n, sizeof *s->op_calls);
        if (s->op_seconds == NULL || s->op_calls == NULL) {
            crisp_session_free(s);
            return crisp_error(CRISP_ERR_NOMEM, "session: out of memory for the op profile");
        }
    }
    if (!(options->flags & CRISP_SESSION_REFERENCE_KERNELS)) {
        s->fast = crisp_f32_kernels_best();
        const size_t threads = crisp_pool_threads(s->pool);
        s->held_tile = malloc(threads * CRISP_HELD_TILE_STRIDE * sizeof *s->held_tile);
        if (s->held_tile == NULL) {
            crisp_session_free(s);
            return crisp_error(CRISP_ERR_NOMEM, "session: out of memory for %zu threads",
                               threads);
        }
    }
    /* Per thread: the optimised kernels' tiles and panels, or the reference
     * kernels' expanded weight row (src/expand.h). */
    const size_t threads = crisp_pool_threads(s->pool);
    s->scratch_stride = (scratch_floats + 15) / 16 * 16;
    if (s->scratch_stride > 0) {
        if (s->scratch_stride > SIZE_MAX / sizeof(float) / threads ||
            (s->scratch = crisp_pages_alloc(threads * s->scratch_stride * sizeof(float))) ==
                NULL) {
            crisp_session_free(s);
            return crisp_error(CRISP_ERR_NOMEM,
                               "session: out of memory for %zu threads x %zu floats of "
                               "kernel scratch",
                               threads, s->scratch_stride);
        }
    }
    if (copy_bytes > 0 && (s->residual_copy = crisp_pages_alloc((size_t)copy_bytes)) == NULL) {
        crisp_session_free(s);
        return crisp_error(CRISP_ERR_NOMEM, "session: out of memory for a %llu-byte residual copy",
                           (unsigned long long)copy_bytes);
    }
    if (expand_bytes > 0 && grow_expand_buffer(s, expand_bytes, "session") != CRISP_OK) {
        crisp_session_free(s);
        return CRISP_ERR_NOMEM;
    }
    s->quantize_from_caller = input_read_by_quantize_only(model);
    *out = s;
    return CRISP_OK;
}

void crisp_session_free(crisp_session *s) {
    if (s == NULL) return;
    crisp_pool_free(s->pool);
    free(s->op_seconds);
    free(s->op_calls);
    free(s->scratch);
    free(s->held_tile);
    free(s->residual_copy);
    free(s->expand_buffer);
    free(s->arena);
    free(s);
}

static void shape_text(char *buf, size_t size, const crisp_value *v) {
    char dims[64];
    crisp_format_dims(dims, sizeof dims, v->rank, v->dims);
    snprintf(buf, size, "(%s)", dims);
}

/* Runs ops 0..last (file order) on the sample already in the arena's input
 * value: the one per-sample op loop of crisp_session_run and _run_to. */
static void run_ops(crisp_session *s, uint32_t last) {
    const crisp_model *m = s->model;
    if (s->op_seconds == NULL) {
        for (uint32_t k = 0; k <= last; k++) crisp_run_op(s, &m->ops[k]);
    } else {
        for (uint32_t k = 0; k <= last; k++) {
            const double t0 = now_seconds();
            crisp_run_op(s, &m->ops[k]);
            s->op_seconds[k] += now_seconds() - t0;
            s->op_calls[k]++;
        }
    }
}

/* Copies value v of the arena out as float32 (int8: dequantised). */
static void copy_value_out(const crisp_session *s, const crisp_value *v, float *out) {
    const uint8_t *p = crisp_value_data(s, v);
    const size_t n = (size_t)v->elements;
    if (v->dtype == CRISP_DTYPE_I8) {
        const int8_t *q = (const int8_t *)p;
        for (size_t i = 0; i < n; i++) out[i] = v->scale * (float)((int32_t)q[i] - v->zero_point);
    } else {
        memcpy(out, p, n * sizeof(float));
    }
}

/* Checks a batch's buffer sizes against the input and the value read out;
 * returns the batch size or 0 after reporting. */
static size_t batch_of(const crisp_model *m, const crisp_value *outv, size_t input_count,
                       size_t output_count, const char *what) {
    const crisp_value *in = &m->values[m->input_value];
    const size_t in_n = (size_t)in->elements, out_n = (size_t)outv->elements;
    char shape[80];
    if (input_count == 0 || input_count % in_n != 0) {
        shape_text(shape, sizeof shape, in);
        crisp_error(CRISP_ERR_SHAPE,
                    "input has %zu floats; the model takes a multiple of %zu = %s per sample",
                    input_count, in_n, shape);
        return 0;
    }
    const size_t batch = input_count / in_n;
    if (output_count / out_n != batch || output_count % out_n != 0) {
        shape_text(shape, sizeof shape, outv);
        crisp_error(CRISP_ERR_SHAPE,
                    "%s has %zu floats; a batch of %zu needs %zu x %zu = %s per sample", what,
                    output_count, batch, batch, out_n, shape);
        return 0;
    }
    return batch;
}

crisp_status crisp_session_run(crisp_session *s, const float *input, size_t input_count,
                               float *output, size_t output_count) {
    if (s == NULL || input == NULL || output == NULL)
        return crisp_error(CRISP_ERR_ARGUMENT, "crisp_session_run: %s is NULL",
                           s == NULL ? "session" : input == NULL ? "input" : "output");
    const crisp_model *m = s->model;
    const crisp_value *in = &m->values[m->input_value], *out = &m->values[m->output_value];
    const size_t batch = batch_of(m, out, input_count, output_count, "output");
    if (batch == 0) return CRISP_ERR_SHAPE;
    const size_t in_n = (size_t)in->elements, out_n = (size_t)out->elements;
    /* Graph input and output are float32 (checked at load). */
    uint8_t *x = crisp_value_data(s, in);
    for (size_t i = 0; i < batch; i++) {
        if (s->quantize_from_caller) s->input = input + i * in_n; /* read in place */
        else memcpy(x, input + i * in_n, in_n * sizeof(float));
        run_ops(s, m->op_count - 1);
        s->input = NULL;
        copy_value_out(s, out, output + i * out_n);
    }
    return CRISP_OK;
}

crisp_status crisp_session_run_to(crisp_session *s, uint32_t value, const float *input,
                                  size_t input_count, float *out, size_t out_count) {
    if (s == NULL || input == NULL || out == NULL)
        return crisp_error(CRISP_ERR_ARGUMENT, "crisp_session_run_to: %s is NULL",
                           s == NULL ? "session" : input == NULL ? "input" : "out");
    const crisp_model *m = s->model;
    if (value >= m->value_count)
        return crisp_error(CRISP_ERR_ARGUMENT,
                           "crisp_session_run_to: value %u is out of range (the model has %u "
                           "values)",
                           (unsigned)value, (unsigned)m->value_count);
    const crisp_value *in = &m->values[m->input_value], *v = &m->values[value];
    const size_t batch = batch_of(m, v, input_count, out_count, "out");
    if (batch == 0) return CRISP_ERR_SHAPE;
    const size_t in_n = (size_t)in->elements, out_n = (size_t)v->elements;
    uint8_t *x = crisp_value_data(s, in);
    /* The output of a conv that fused its ADD (src/fuse.c) has no arena slot:
     * that conv runs unfused into its ADD's output slot, which is free there. */
    /* A 1 x 1 conv that the depthwise conv after it computes (expand
     * fusion) runs alone into its own slot, which it keeps for this. */
    const crisp_op *fused = v->producer != CRISP_NO_ID &&
                                    (m->ops[v->producer].fused_add != CRISP_NO_ID ||
                                     m->ops[v->producer].fused_by_next)
                                ? &m->ops[v->producer]
                                : NULL;
    const crisp_value *slot = fused != NULL ? crisp_op_written(m, fused) : v;
    const uint64_t bytes = slot->elements * crisp_dtype_size(slot->dtype);
    if (slot->arena_offset == CRISP_NO_SLOT && s->expand_buffer_bytes < bytes) {
        /* A fused expand conv's output (no arena slot) larger than what the
         * session's ops needed, if anything: the buffer grows to it. */
        const crisp_status st = crisp_limits_check_session(
            m, crisp_pool_threads(s->pool), s->scratch_stride,
            crisp_residual_copy_bytes(m, s->fast != NULL), bytes);
        if (st != CRISP_OK) return st;
        if (grow_expand_buffer(s, bytes, "crisp_session_run_to") != CRISP_OK)
            return CRISP_ERR_NOMEM;
    }
    for (size_t i = 0; i < batch; i++) {
        memcpy(x, input + i * in_n, in_n * sizeof(float));
        /* The value is live from its producer on, so reading it right after
         * the producer ran sees it whatever the arena plan shares. */
        if (fused != NULL) {
            if (v->producer > 0) run_ops(s, v->producer - 1);
            crisp_run_op_fused(s, fused, 0);
        } else if (v->producer != CRISP_NO_ID) {
            run_ops(s, v->producer);
        }
        copy_value_out(s, slot, out + i * out_n);
    }
    return CRISP_OK;
}
