/* libFuzzer target (CMake -DCRISP_FUZZ=ON, clang): load_buffer on the input;
 * if it loads, query everything, then run it when it is small enough for
 * the fuzzer's time and memory budget:
 *
 * - up to FUZZ_CHECK_MACS (and a bounded arena and kernel scratch): the
 *   differential battery below, on two deterministic samples derived from
 *   the input (one pseudo-random in [-2, 2], one from the input's bytes
 *   with a few huge, tiny and subnormal values);
 * - up to FUZZ_MAX_MACS: one sample of zeros and one of ones on a
 *   single-threaded session, so a malformed-but-accepted shape would crash
 *   a kernel under ASan/UBSan;
 * - larger models are loaded and queried but not run.
 *
 * The battery. (1) Op by op on one of the samples: the reference session
 * runs the graph; before each op its arena is copied into two sessions on
 * the optimised kernels (1 and 3 threads), which run the same op from the
 * same state. Ops on a summing optimised path (GEMM, SPMM, DWCONV, GEMV)
 * must agree with the reference within the kernel tests' rule, relative to
 * magnitude: |fast - ref| <= (1e-5 + 2 (K + 2) 2^-24) S, with K the op's
 * reduction length and S = sum |w| |x| + |b| per output element, computed
 * by the same op on the reference kernels of a copy of the model whose
 * float weights and biases are made non-negative and whose fused
 * activation is dropped, on |x|. Elements whose S is not finite, or so
 * large that a partial sum (or a hardswish after it) could overflow, are
 * skipped; where S is finite both results must be finite. Max pooling must be exact, or NaN only where
 * its input has one. Every other op (int8 included: it has reference
 * kernels only) must be bitwise equal, and so must the 1- and 3-thread
 * sessions on every op. (2) Whole runs through the public API: sessions at
 * 1 and 3 threads, on the reference and the optimised kernels, batch 2 (both
 * samples) then batch 1 (the first): 3 threads bitwise equal to 1 thread,
 * and the batch's first sample bitwise equal to the batch of 1 (no state
 * leaks between samples). A failure aborts: the input is a bug.
 *
 * A custom mutator re-computes the header, table and section CRCs after
 * most mutations: otherwise nearly every mutant dies at a checksum and the
 * validator behind it is never reached. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32.h"
#include "crisp.h"
#include "format.h"
#include "model.h"
#include "session.h"

/* Enough for every seed and far below -rss_limit_mb; keeps pools and convs
 * (work ~ arena x window, or MACs) well inside -timeout under ASan. */
#define FUZZ_MAX_ARENA (256u << 10)
#define FUZZ_MAX_MACS (1u << 26)
/* The loader's memory limit (MiB), set explicitly: every seed needs well under
 * 1 MiB, and mutants asking more (a large kernel's conv scratch, aliased label
 * names) are refused by the limit instead of allocating past -rss_limit_mb
 * under ASan. Not the 512 MiB default, nor CRISP_MAX_MEMORY_MB. */
#define FUZZ_MAX_MEMORY_MB 64u
/* The battery runs a model about 14 times: a tighter budget for it. */
#define FUZZ_CHECK_MACS (1u << 23)
#define FUZZ_MAX_SCRATCH (1u << 20) /* floats per session thread */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Every CRC the container has, wherever the (mutated) table says, within bounds. */
static void fix_crcs(uint8_t *f, size_t size) {
    if (size < CRISP_HEADER_SIZE) return;
    const uint64_t table = crisp_rd_u64(f + CRISP_HDR_TABLE_OFFSET);
    const uint32_t count = crisp_rd_u32(f + CRISP_HDR_SECTION_COUNT);
    const uint32_t stride = crisp_rd_u32(f + CRISP_HDR_ENTRY_SIZE);
    if (count <= CRISP_MAX_SECTIONS && stride >= CRISP_ENTRY_SIZE && stride <= CRISP_MAX_ENTRY_SIZE &&
        table <= size && (uint64_t)count * stride <= size - table) {
        for (uint32_t i = 0; i < count; i++) {
            uint8_t *e = f + table + (uint64_t)i * stride;
            const uint64_t off = crisp_rd_u64(e + CRISP_ENT_OFFSET), len = crisp_rd_u64(e + CRISP_ENT_SIZE);
            if (off <= size && len <= size - off)
                put_u32(e + CRISP_ENT_CRC, crisp_crc32(0, f + off, (size_t)len));
        }
        put_u32(f + CRISP_HDR_TABLE_CRC, crisp_crc32(0, f + table, (size_t)count * stride));
    }
    put_u32(f + CRISP_HDR_CRC, crisp_crc32(0, f, CRISP_HDR_CRC));
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed) {
    size = LLVMFuzzerMutate(data, size, max_size);
    if (seed % 8 != 0) fix_crcs(data, size); /* 1 in 8 keeps its broken checksums */
    return size;
}

static void run_simple(const crisp_model *m, const crisp_model_info *info) {
    crisp_session *s = NULL;
    const crisp_session_options options = {1, 0};
    if (crisp_session_create_with_options(m, &options, &s) != CRISP_OK) return;
    const size_t nx = (size_t)info->input_elements, ny = (size_t)info->output_elements;
    float *x = calloc(nx, sizeof *x), *y = malloc(ny * sizeof *y);
    if (x != NULL && y != NULL) {
        crisp_session_run(s, x, nx, y, ny);
        for (size_t i = 0; i < nx; i++) x[i] = 1.0f;
        crisp_session_run(s, x, nx, y, ny);
    }
    free(x);
    free(y);
    crisp_session_free(s);
}

/* ---- the differential battery ---- */

static void bug(const char *what, uint32_t op, size_t i, double a, double b, double bound) {
    fprintf(stderr, "fuzz_loader: %s: op %u element %zu: %.9g vs %.9g (bound %.9g)\n", what,
            (unsigned)op, i, a, b, bound);
    abort();
}

static int is_sum_path(uint32_t path) {
    return path == CRISP_FAST_GEMM || path == CRISP_FAST_SPMM || path == CRISP_FAST_DWCONV ||
           path == CRISP_FAST_GEMV || path == CRISP_FAST_SPMV;
}

/* The model with every ADD and every expand conv on its own (src/fuse.c):
 * op by op, each op's result is then the value it writes, and the magnitude
 * model (which drops the convs' activations, so would fuse more) keeps the
 * same plan. */
static int load_unfused(const uint8_t *data, size_t size, const crisp_load_options *options,
                        crisp_model **out) {
    setenv("CRISP_FUSE_ADD", "0", 1);
    setenv("CRISP_FUSE_EXPAND", "0", 1);
    const int ok = crisp_model_load_buffer_with_options(data, size, options, out) == CRISP_OK;
    unsetenv("CRISP_FUSE_ADD");
    unsetenv("CRISP_FUSE_EXPAND");
    return ok;
}

static void clear_signs(uint8_t *file, const crisp_model *m, const float *p, uint64_t n) {
    const size_t at = (size_t)((const uint8_t *)p - m->bytes);
    for (uint64_t i = 0; i < n; i++) file[at + 4 * i + 3] &= 0x7F;
}

/* The model with every float weight and bias of an op on a summing fast
 * path made non-negative and its activation dropped, so that op on the
 * reference kernels and |x| computes sum |w| |x| + |b|. NULL if that copy
 * does not load with the same arena plan. */
static crisp_model *abs_model(const uint8_t *data, size_t size, const crisp_model *m) {
    uint8_t *f = malloc(size ? size : 1);
    if (f == NULL) return NULL;
    memcpy(f, data, size);
    for (uint32_t k = 0; k < m->op_count; k++) {
        const crisp_op *op = &m->ops[k];
        if (!is_sum_path(op->fast.path)) continue;
        const uint32_t ids[2] = {op->weight, op->bias};
        for (int j = 0; j < 2; j++) {
            if (ids[j] == CRISP_NO_ID) continue;
            const crisp_tensor *t = &m->tensors[ids[j]];
            if (t->encoding == CRISP_ENCODING_DENSE_F32) clear_signs(f, m, t->data, t->elements);
            else if (t->encoding == CRISP_ENCODING_HYBRID_F32)
                clear_signs(f, m, (const float *)t->hybrid.values, t->hybrid.value_count);
        }
        const size_t rec = (size_t)(m->op_records - m->bytes) + (size_t)k * m->op_record_size;
        memset(f + rec + CRISP_OP_ACTIVATION, 0, 4);
    }
    fix_crcs(f, size);
    crisp_model *a = NULL;
    const crisp_load_options options = {FUZZ_MAX_MEMORY_MB, 0};
    const int ok = load_unfused(f, size, &options, &a);
    free(f);
    if (!ok) return NULL;
    int same = a->arena_bytes == m->arena_bytes && a->op_count == m->op_count &&
               a->value_count == m->value_count;
    for (uint32_t v = 0; same && v < m->value_count; v++)
        same = a->values[v].arena_offset == m->values[v].arena_offset;
    for (uint32_t k = 0; same && k < m->op_count; k++)
        same = a->ops[k].fast.path == m->ops[k].fast.path;
    if (!same) {
        crisp_model_free(a);
        return NULL;
    }
    return a;
}

static crisp_session *session(const crisp_model *m, uint32_t threads, uint32_t flags) {
    crisp_session *s = NULL;
    const crisp_session_options o = {threads, flags};
    if (crisp_session_create_with_options(m, &o, &s) != CRISP_OK) {
        fprintf(stderr, "fuzz_loader: session (%u threads, flags %u): %s\n", (unsigned)threads,
                (unsigned)flags, crisp_last_error());
        abort();
    }
    return s;
}

static size_t value_bytes(const crisp_value *v) {
    return (size_t)v->elements * (v->dtype == CRISP_DTYPE_I8 ? 1 : 4);
}

/* An optimised op's output y against the reference r (s: the magnitudes, or NULL). */
static void compare_fast(const crisp_model *m, uint32_t k, const uint8_t *ref_arena,
                         const float *r, const float *y, const float *s) {
    const crisp_op *op = &m->ops[k];
    const size_t n = (size_t)m->values[op->output].elements;
    if (op->fast.path == CRISP_FAST_MAXPOOL) {
        const crisp_value *in = &m->values[op->inputs[0]];
        const float *x = (const float *)(ref_arena + in->arena_offset);
        int input_nan = 0;
        for (size_t i = 0; i < (size_t)in->elements && !input_nan; i++) input_nan = isnan(x[i]);
        for (size_t i = 0; i < n; i++) {
            if (isnan(r[i]) || isnan(y[i])) {
                if (!(isnan(r[i]) && isnan(y[i])) && !input_nan)
                    bug("max pool: NaN without a NaN input", k, i, y[i], r[i], 0);
            } else if (r[i] != y[i]) {
                bug("max pool differs from the reference", k, i, y[i], r[i], 0);
            }
        }
        return;
    }
    if (s == NULL) return;
    const crisp_tensor *w = &m->tensors[op->weight];
    const double K = (double)(w->elements / w->dims[0]);
    const double rel = 1e-5 + 2.0 * (K + 2) * 0x1p-24;
    /* A non-clamp activation after the sums (dropped in the magnitude model)
     * can overflow on its own: hardswish computes x (x + 3 clipped to 6) / 6,
     * inf for x above FLT_MAX / 6 on every kernel set alike (the spec's float
     * operations). Such elements are skipped as near overflow. */
    const double limit = op->pointwise != CRISP_ACT_NONE ? FLT_MAX / 8 : FLT_MAX / 4;
    for (size_t i = 0; i < n; i++) {
        const double mag = s[i];
        if (!(mag <= limit)) continue; /* NaN, inf or near overflow */
        const double bound = rel * mag + 1e-30;
        if (!isfinite(r[i]) || !isfinite(y[i]) || fabs((double)y[i] - r[i]) > bound) {
            fprintf(stderr, "fuzz_loader: op %u: kind %u, fast path %u, K %.0f, S %.9g\n",
                    (unsigned)k, (unsigned)op->kind, (unsigned)op->fast.path, K, mag);
            bug("optimised kernel differs from the reference", k, i, y[i], r[i], bound);
        }
    }
}

/* Part (1): op by op from the reference's state (see the top of the file). */
static void check_ops(const crisp_model *m, const crisp_model *am, const float *x) {
    crisp_session *ref = session(m, 1, CRISP_SESSION_REFERENCE_KERNELS);
    crisp_session *f1 = session(m, 1, 0), *f3 = session(m, 3, 0);
    crisp_session *as = am ? session(am, 1, CRISP_SESSION_REFERENCE_KERNELS) : NULL;
    const size_t arena = (size_t)m->arena_bytes;
    const crisp_value *in = &m->values[m->input_value];
    memcpy(ref->arena + in->arena_offset, x, (size_t)in->elements * sizeof *x);
    for (uint32_t k = 0; k < m->op_count; k++) {
        const crisp_op *op = &m->ops[k];
        const crisp_value *out = &m->values[op->output];
        memcpy(f1->arena, ref->arena, arena);
        memcpy(f3->arena, ref->arena, arena);
        crisp_run_op(f1, op);
        crisp_run_op(f3, op);
        const float *mag = NULL;
        if (as != NULL && is_sum_path(op->fast.path)) {
            memcpy(as->arena, ref->arena, arena);
            const crisp_value *v = &m->values[op->inputs[0]];
            float *ax = (float *)(as->arena + v->arena_offset);
            for (size_t i = 0; i < (size_t)v->elements; i++) ax[i] = fabsf(ax[i]);
            crisp_run_op(as, &am->ops[k]);
            mag = (const float *)(as->arena + out->arena_offset);
        }
        uint8_t *before = NULL;
        if (op->fast.path == CRISP_FAST_MAXPOOL) { /* its input, for the NaN rule */
            before = malloc(arena);
            memcpy(before, ref->arena, arena);
        }
        crisp_run_op(ref, op);
        const uint8_t *r = ref->arena + out->arena_offset, *y1 = f1->arena + out->arena_offset;
        const size_t nb = value_bytes(out);
        if (memcmp(y1, f3->arena + out->arena_offset, nb) != 0)
            bug("3 threads differ from 1 thread", k, 0, 0, 0, 0);
        if (op->fast.path == CRISP_FAST_NONE) {
            if (memcmp(y1, r, nb) != 0) bug("reference op differs between sessions", k, 0, 0, 0, 0);
        } else {
            compare_fast(m, k, before, (const float *)r, (const float *)y1, mag);
        }
        free(before);
    }
    crisp_session_free(ref);
    crisp_session_free(f1);
    crisp_session_free(f3);
    crisp_session_free(as);
}

/* Part (2): whole runs, batch 2 and 1, 1 and 3 threads, both kernel sets. */
static void check_runs(const crisp_model *m, const crisp_model *mu, const float *x2, size_t nx,
                       size_t ny) {
    float *y[4], *y1 = malloc(ny * sizeof *y1), *yu = malloc(2 * ny * sizeof *yu);
    for (uint32_t c = 0; c < 4; c++) {
        const uint32_t threads = c & 1 ? 3 : 1, flags = c & 2 ? CRISP_SESSION_REFERENCE_KERNELS : 0;
        crisp_session *s = session(m, threads, flags);
        y[c] = malloc(2 * ny * sizeof *y[c]);
        if (crisp_session_run(s, x2, 2 * nx, y[c], 2 * ny) != CRISP_OK ||
            crisp_session_run(s, x2, nx, y1, ny) != CRISP_OK) {
            fprintf(stderr, "fuzz_loader: run failed: %s\n", crisp_last_error());
            abort();
        }
        if (memcmp(y[c], y1, ny * sizeof *y1) != 0)
            bug("a batch's first sample differs from the same sample alone", c, 0, 0, 0, 0);
        if (c & 1 && memcmp(y[c], y[c - 1], 2 * ny * sizeof *y1) != 0)
            bug("whole run: 3 threads differ from 1 thread", c, 0, 0, 0, 0);
        crisp_session_free(s);
        /* Residual fusion changes no bit (src/fuse.c). */
        s = session(mu, threads, flags);
        if (crisp_session_run(s, x2, 2 * nx, yu, 2 * ny) != CRISP_OK) abort();
        if (memcmp(y[c], yu, 2 * ny * sizeof *yu) != 0)
            bug("whole run: fused ADDs differ from unfused", c, 0, 0, 0, 0);
        crisp_session_free(s);
    }
    for (int c = 0; c < 4; c++) free(y[c]);
    free(y1), free(yu);
}

static void battery(const uint8_t *data, size_t size, const crisp_model *m,
                    const crisp_model_info *info) {
    const size_t nx = (size_t)info->input_elements, ny = (size_t)info->output_elements;
    float *x2 = malloc(2 * nx * sizeof *x2);
    uint32_t h = crisp_crc32(0, data, size) | 1u;
    for (size_t i = 0; i < nx; i++) { /* xorshift32 in [-2, 2] */
        h ^= h << 13, h ^= h >> 17, h ^= h << 5;
        x2[i] = (float)(h >> 8) * 0x1p-22f - 2.0f;
    }
    static const float special[] = {1e20f, -3e-39f, 1e-30f, -65504.0f, 0.0f, -0.0f};
    for (size_t i = 0; i < nx; i++)
        x2[nx + i] = i % 61 == 60 ? special[(i / 61) % 6]
                                  : (float)((int)data[i % size] - 128) * (1.0f / 32);
    const crisp_load_options options = {FUZZ_MAX_MEMORY_MB, 0};
    crisp_model *mu = NULL;
    if (!load_unfused(data, size, &options, &mu)) {
        fprintf(stderr, "fuzz_loader: loads fused but not unfused: %s\n", crisp_last_error());
        abort();
    }
    crisp_model *am = abs_model(data, size, mu);
    check_ops(mu, am, x2 + (h & 1 ? nx : 0));
    crisp_model_free(am);
    check_runs(m, mu, x2, nx, ny);
    crisp_model_free(mu);
    free(x2);
}

/* Window reads of the max and average pools per sample: not in the MACs, and
 * a 129 x 129 window over a 256 x 256 plane (a valid 256 KiB arena) takes a
 * billion, so they count towards the run budgets too (global and adaptive
 * pools read about their input, which the arena bound keeps small). */
static uint64_t pool_work(const crisp_model *m) {
    uint64_t work = 0;
    for (uint32_t k = 0; k < m->op_count; k++) {
        const crisp_op *op = &m->ops[k];
        if (op->kind != CRISP_OP_MAX_POOL2D && op->kind != CRISP_OP_AVG_POOL2D) continue;
        const crisp_pool2d_params *p = op->dtype == CRISP_DTYPE_I8 &&
                                               op->kind == CRISP_OP_AVG_POOL2D
                                           ? &op->k.qpool.pool
                                           : &op->k.pool;
        work += m->values[op->output].elements * p->kernel_height * p->kernel_width;
    }
    return work;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    crisp_model *m = NULL;
    const crisp_load_options options = {FUZZ_MAX_MEMORY_MB, 0};
    if (crisp_model_load_buffer_with_options(data, size, &options, &m) != CRISP_OK) return 0;
    crisp_model_info info;
    crisp_model_get_info(m, &info);
    for (uint32_t i = 0; i < info.label_count; i++) {
        int32_t id;
        const char *name;
        crisp_model_get_label(m, i, &id, &name);
    }
    const char *json;
    size_t length;
    crisp_model_get_provenance(m, &json, &length);
    crisp_preprocess prep;
    crisp_model_get_preprocess(m, &prep);
    if (info.arena_bytes <= FUZZ_MAX_ARENA && m->scratch_floats <= FUZZ_MAX_SCRATCH) {
        const uint64_t work = info.macs + pool_work(m);
        if (work <= FUZZ_CHECK_MACS) battery(data, size, m, &info);
        else if (work <= FUZZ_MAX_MACS) run_simple(m, &info);
    }
    crisp_model_free(m);
    return 0;
}
