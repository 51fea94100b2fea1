/* crisp-ukernel-bench: every variant of every optimised microkernel family,
 * timed on ResNet-50 layer shapes, one line of GFLOP/s per variant and shape.
 *
 * The variants come from the same lists (src/kernels/f32_*.inc) that declare
 * the prototypes (src/kernels/ukernels.h), drive run-time selection
 * (src/kernels/select.c) and the tests (tests/test_fast.c), so a variant
 * added to a list is benchmarked with no change here. A variant this CPU
 * lacks (or that CRISP_MAX_ISA caps) is printed as skipped.
 *
 * Workloads, fed the way src/conv_fast.c feeds the kernels (pixel tiles of at
 * most 64 Ki floats of B, row panels sweeping a tile for GEMM, NR-pixel
 * chunks over all runs for the sparse runs):
 *   gemm     dense convs of ResNet-50 as GEMMs: Cout x K (= kh*kw*Cin) x pixels;
 *   spmm     the same shapes as hybrid runs: 16x16 blocks, 20 % of each
 *            block-row's blocks kept, 2:4 inside (density 0.10), per-row N:M
 *            (V = 1), the same per-row weights as filled runs (16-row runs
 *            over every column of the kept blocks, zeros where a row left one
 *            out: src/pack.c) and row-shared (V = 4); GFLOP/s counts kept
 *            weights only (never a filled run's zeros), so the
 *            dense-equivalent speed is the layer's time against gemm's;
 *   gemv     ResNet-50's classifier, 2048 -> 1000;
 *   dwconv   3x3 depthwise layers of MobileNetV2 (ResNet-50 has none), the
 *            kernel on stride phases (one channel's plane, in cache);
 *   dwdirect the same layers on the kernel that reads the input in place
 *            (every channel of a whole input, as the driver runs it);
 *   maxpool  ResNet-50's stem pool, 3x3 stride 2 (one op per window element);
 *   expand24 the gemm shapes as 2:4 in 16x16 blocks, all kept, expanded to
 *            dense 12 rows at a time as src/expand.c does for a layer run
 *            dense (once per pixel tile); the GFLOP/s column counts dense
 *            floats written (G/s), ms/layer is one expansion of every row;
 *   qs8_spmm the spmm shapes and runs on int8 (B tiles of at most 256 KiB, as
 *            src/conv_fast_qs8.c), GOP/s in the GFLOP/s column;
 *   qs8_gemv the int8 classifiers of MobileNetV2 (1280 -> 1000) and ResNet-50
 *            (2048 -> 1000), GOP/s;
 *   qs8_dwdirect the dwdirect layers on int8, read in place (every channel
 *            of a whole input; planes of up to 1024 bytes copied between
 *            margins of the zero point as the driver does, the copy timed),
 *            GOP/s;
 *   qs8_spmv the qs8_gemv classifiers as hybrid runs (the spmm shapes' blocks and
 *            2:4, V = 1 and 4), one run per call from a copy of x with the
 *            kernels' slack (src/conv_fast_qs8.c), GOP/s of kept weights.
 * Method: one warm-up pass, which also sets how many passes make a repetition
 * last at least 20 ms; the median of the repetitions (default 5); wall time,
 * or the thread's CPU time with --cpu-time (for a shared machine).
 * --quick runs one tiny shape per family, once per repetition: a smoke test
 * for ctest (milliseconds, also under qemu and sanitizers), not a measurement. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crisp.h"
#include "kernels/ukernels.h"

/* ---- The variants, from the family lists ---- */

typedef struct variant {
    const char *family, *isa, *name;
    crisp_f32_gemm_ukernel_fn gemm;
    crisp_f32_spmm_ukernel_fn spmm;
    crisp_f32_gemv_ukernel_fn gemv;
    crisp_f32_dwconv_ukernel_fn window; /* dwconv and maxpool */
    crisp_f32_expand24_ukernel_fn expand24;
    crisp_f32_dwconv_direct_ukernel_fn direct;
    size_t mr, nr;
} variant;

#define CRISP_GEMM(tier, fn, mr, nr) {"gemm", #tier, #fn, fn, NULL, NULL, NULL, NULL, NULL, mr, nr},
#define CRISP_SPMM(tier, fn, nr) {"spmm", #tier, #fn, NULL, fn, NULL, NULL, NULL, NULL, 0, nr},
#define CRISP_GEMV(tier, fn, mr) {"gemv", #tier, #fn, NULL, NULL, fn, NULL, NULL, NULL, mr, 0},
#define CRISP_DWCONV(tier, fn) {"dwconv", #tier, #fn, NULL, NULL, NULL, fn, NULL, NULL, 0, 0},
#define CRISP_MAXPOOL(tier, fn) {"maxpool", #tier, #fn, NULL, NULL, NULL, fn, NULL, NULL, 0, 0},
#define CRISP_EXPAND24(tier, fn) {"expand24", #tier, #fn, NULL, NULL, NULL, NULL, fn, NULL, 0, 0},
/* dwdirect: nr holds the row walk's least output width (0 = none). */
#define CRISP_DWCONV_DIRECT(tier, fn, rows) {"dwdirect", #tier, #fn, NULL, NULL, NULL, NULL, NULL, fn, 0, rows},
static const variant variants[] = {
#include "kernels/f32_gemm.inc"
#include "kernels/f32_spmm.inc"
#include "kernels/f32_gemv.inc"
#include "kernels/f32_dwconv.inc"
#include "kernels/f32_dwconv_direct.inc"
#include "kernels/f32_maxpool.inc"
#include "kernels/f32_expand24.inc"
};
#undef CRISP_EXPAND24
#undef CRISP_GEMM
#undef CRISP_SPMM
#undef CRISP_GEMV
#undef CRISP_DWCONV
#undef CRISP_DWCONV_DIRECT
#undef CRISP_MAXPOOL

/* The int8 families (src/kernels/qs8_*.inc). */
typedef struct qs8_variant {
    const char *family, *isa, *name;
    crisp_qs8_spmm_ukernel_fn spmm;
    crisp_qs8_gemv_ukernel_fn gemv;
    crisp_qs8_spmv_ukernel_fn spmv;
    size_t mr, nr;
    crisp_qs8_dwconv_direct_ukernel_fn dwdirect;
} qs8_variant;
#define CRISP_QS8_SPMM(tier, fn, nr) {"qs8_spmm", #tier, #fn, fn, NULL, NULL, 0, nr, NULL},
#define CRISP_QS8_GEMV(tier, fn, mr) {"qs8_gemv", #tier, #fn, NULL, fn, NULL, mr, 0, NULL},
#define CRISP_QS8_SPMV(tier, fn) {"qs8_spmv", #tier, #fn, NULL, NULL, fn, 0, 0, NULL},
#define CRISP_QS8_DWCONV_DIRECT(tier, fn) {"qs8_dwdirect", #tier, #fn, NULL, NULL, NULL, 0, 0, fn},
static const qs8_variant qs8_variants[] = {
#include "kernels/qs8_spmm.inc"
#include "kernels/qs8_gemv.inc"
#include "kernels/qs8_spmv.inc"
#include "kernels/qs8_dwconv_direct.inc"
};
#undef CRISP_QS8_SPMM
#undef CRISP_QS8_GEMV
#undef CRISP_QS8_SPMV
#undef CRISP_QS8_DWCONV_DIRECT

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- The shapes ---- */

/* A conv as a matrix product: m output rows (Cout), k = kh*kw*Cin, n pixels. */
typedef struct layer {
    const char *name;
    size_t m, k, n;
} layer;

static const layer resnet50[] = {
    {"res2 3x3 64->64", 64, 576, 3136},      {"res2 1x1 64->256", 256, 64, 3136},
    {"res3 3x3 128->128", 128, 1152, 784},   {"res4 3x3 256->256", 256, 2304, 196},
    {"res4 1x1 1024->256", 256, 1024, 196},  {"res5 3x3 512->512", 512, 4608, 49},
    {"res5 1x1 512->2048", 2048, 512, 49},
};
static const layer classifier[] = {{"fc 2048->1000", 1000, 2048, 1}};
/* The int8 classifiers: MobileNetV2's and ResNet-50's. */
static const layer qs8_classifiers[] = {{"fc 1280->1000", 1000, 1280, 1},
                                        {"fc 2048->1000", 1000, 2048, 1}};
static const layer tiny_layer[] = {{"tiny 16x64x40", 16, 64, 40}};
static const layer tiny_fc[] = {{"tiny fc 64->20", 20, 64, 1}};

/* A square depthwise conv or pool window over channels planes of h x w. */
typedef struct window {
    const char *name;
    size_t channels, h, w, k, stride, pad;
} window;

static const window mobilenet_dw[] = {
    {"mbv2 dw3x3/1 32ch 112x112", 32, 112, 112, 3, 1, 1},
    {"mbv2 dw3x3/1 144ch 56x56", 144, 56, 56, 3, 1, 1},
    {"mbv2 dw3x3/2 144ch 56->28", 144, 56, 56, 3, 2, 1},
    {"mbv2 dw3x3/1 192ch 28x28", 192, 28, 28, 3, 1, 1},
    {"mbv2 dw3x3/1 576ch 14x14", 576, 14, 14, 3, 1, 1},
    {"mbv2 dw3x3/2 576ch 14->7", 576, 14, 14, 3, 2, 1},
    {"mbv2 dw3x3/1 960ch 7x7", 960, 7, 7, 3, 1, 1},
};
static const window resnet50_pool[] = {{"res1 max3x3/2 64ch 112->56", 64, 112, 112, 3, 2, 1}};
static const window tiny_dw[] = {{"tiny dw3x3/1 2ch 9x9", 2, 9, 9, 3, 1, 1}};
static const window tiny_pool[] = {{"tiny max3x3/2 2ch 9x9", 2, 9, 9, 3, 2, 1}};

/* ---- Helpers ---- */

static unsigned rng_state = 12345u;
static float random_float(void) { /* uniform in [-1, 1) */
    rng_state = rng_state * 1103515245u + 12345u;
    return (float)((rng_state >> 8) & 0xFFFFu) / 32768.0f - 1.0f;
}
static size_t random_below(size_t n) {
    rng_state = rng_state * 1103515245u + 12345u;
    return (size_t)((rng_state >> 8) & 0xFFFFFFu) % n;
}

static void *alloc(size_t bytes) {
    const size_t size = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, size ? size : 64);
    if (p == NULL) {
        fprintf(stderr, "crisp-ukernel-bench: out of memory for %zu bytes\n", bytes);
        exit(1);
    }
    return p;
}

static float *random_floats(size_t n) {
    float *p = alloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = random_float();
    return p;
}

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* --cpu-time: this thread's CPU time instead of the wall clock, so time
 * slices given to other processes on a shared machine do not count (their
 * cache pollution still does). */
static clockid_t clock_id = CLOCK_MONOTONIC;

static double now(void) {
    struct timespec t;
    clock_gettime(clock_id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct options {
    int quick, repetitions;
    double min_seconds; /* per repetition */
    const char *family; /* NULL: all */
} options;

/* Median seconds per pass of f(job). */
static double time_passes(void (*f)(const void *), const void *job, const options *o) {
    double t0 = now();
    f(job); /* warm-up: caches, page faults, and the pass length */
    const double once = now() - t0;
    size_t passes = 1;
    if (o->min_seconds > 0 && once < o->min_seconds)
        passes = (size_t)ceil(o->min_seconds / (once > 1e-7 ? once : 1e-7));
    double times[101];
    for (int r = 0; r < o->repetitions; r++) {
        t0 = now();
        for (size_t i = 0; i < passes; i++) f(job);
        times[r] = (now() - t0) / (double)passes;
    }
    qsort(times, (size_t)o->repetitions, sizeof times[0], by_value);
    return times[o->repetitions / 2];
}

static const crisp_minmax_params no_clamp = {-INFINITY, INFINITY};

static int all_finite(const float *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i])) return 0;
    return 1;
}

static void report(const variant *v, const char *shape, double flops, double seconds) {
    printf("%-8s %-40s %-30s %9.2f %10.4f\n", v->family, v->name, shape, flops / seconds * 1e-9,
           seconds * 1e3);
}

/* The pixel tile of src/conv_fast.c: B stays within 64 Ki floats, at most
 * 512 pixels, a multiple of NR. */
static size_t tile_pixels(size_t k, size_t n, size_t nr) {
    size_t nt = (size_t)65536 / k / nr * nr;
    nt = min_size(nt < nr ? nr : nt, 512 / nr * nr);
    return min_size(nt, (n + nr - 1) / nr * nr);
}

/* ---- GEMM: dense conv layers ---- */

typedef struct gemm_job {
    const variant *v;
    const layer *l;
    size_t nt;
    const float *a, *b, *bias;
    float *c;
} gemm_job;

static void gemm_pass(const void *p) {
    const gemm_job *j = p;
    const size_t m = j->l->m, k = j->l->k, n = j->l->n, nt = j->nt, mr = j->v->mr, nr = j->v->nr;
    for (size_t p0 = 0; p0 < n; p0 += nt) {
        const size_t np = min_size(nt, n - p0);
        const float *b = j->b + p0 * k; /* tile p0 / nt: k rows of nt pixels */
        for (size_t r0 = 0; r0 < m; r0 += mr)
            for (size_t n0 = 0; n0 < np; n0 += nr)
                j->v->gemm(min_size(mr, m - r0), min_size(nr, np - n0), k, j->a + r0 * k, k,
                           b + n0, nt, j->c + r0 * n + p0 + n0, n, j->bias + r0, &no_clamp);
    }
}

static int bench_gemm(const variant *v, const layer *l, const options *o) {
    const size_t nt = tile_pixels(l->k, l->n, v->nr), tiles = (l->n + nt - 1) / nt;
    float *a = random_floats(l->m * l->k), *b = random_floats(tiles * l->k * nt);
    float *bias = random_floats(l->m), *c = alloc(l->m * l->n * sizeof *c);
    const gemm_job j = {v, l, nt, a, b, bias, c};
    const double s = time_passes(gemm_pass, &j, o);
    report(v, l->name, 2.0 * (double)l->m * (double)l->k * (double)l->n, s);
    const int ok = all_finite(c, l->m * l->n);
    free(a), free(b), free(bias), free(c);
    return ok;
}

/* ---- Sparse runs: hybrid conv layers ---- */

typedef struct sparse_job {
    const variant *v;
    const layer *l;
    size_t nt, runs, rows; /* rows per run: V */
    const size_t *run_entry; /* [runs + 1] */
    const uint32_t *column;
    const float *w, *b, *bias; /* w: per run, entries x rows */
    float *c;
} sparse_job;

static void spmm_pass(const void *p) {
    const sparse_job *j = p;
    const size_t k = j->l->k, n = j->l->n, nt = j->nt, nr = j->v->nr;
    for (size_t p0 = 0; p0 < n; p0 += nt) {
        const size_t np = min_size(nt, n - p0);
        const float *b = j->b + p0 * k;
        for (size_t n0 = 0; n0 < np; n0 += nr)
            for (size_t r = 0; r < j->runs; r++) {
                const size_t e0 = j->run_entry[r], row0 = r * j->rows;
                j->v->spmm(j->rows, min_size(nr, np - n0), j->run_entry[r + 1] - e0,
                           j->column + e0, j->w + e0 * j->rows, b + n0, nt,
                           j->c + row0 * n + p0 + n0, n, j->bias + row0, &no_clamp);
            }
    }
}

/* 16x16 blocks, round(20 %) of each block-row's block-columns kept (at
 * least one), 2 of every 4 columns of a kept block kept per run of v rows;
 * v = 16 makes filled runs: every column of the kept blocks, in w the
 * weight where the row (its own 2:4 pick) kept the column, else zero. */
static size_t make_runs(const layer *l, size_t v, size_t *run_entry, uint32_t *column,
                        float *w) {
    const size_t nbc = l->k / 16, keep = (nbc + 2) / 5 ? (nbc + 2) / 5 : 1;
    static const uint8_t pairs[6][2] = {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}};
    size_t *order = alloc(nbc * sizeof *order), e = 0, r = 0;
    for (size_t br = 0; br < l->m / 16; br++) {
        for (size_t i = 0; i < nbc; i++) order[i] = i;
        for (size_t i = 0; i < keep; i++) { /* partial Fisher-Yates, then sort */
            const size_t t = i + random_below(nbc - i), x = order[t];
            order[t] = order[i], order[i] = x;
        }
        for (size_t i = 1; i < keep; i++)
            for (size_t q = i; q > 0 && order[q - 1] > order[q]; q--) {
                const size_t x = order[q];
                order[q] = order[q - 1], order[q - 1] = x;
            }
        for (size_t run = 0; run < 16 / v; run++, r++) {
            run_entry[r] = e;
            for (size_t b = 0; b < keep; b++)
                for (size_t g = 0; g < 4; g++) {
                    if (v == 16) { /* four columns; each row keeps two */
                        for (size_t q = 0; q < 4; q++) {
                            column[e + q] = (uint32_t)(order[b] * 16 + g * 4 + q);
                            for (size_t i = 0; i < 16; i++) w[(e + q) * 16 + i] = 0.0f;
                        }
                        for (size_t i = 0; i < 16; i++) {
                            const uint8_t *pair = pairs[random_below(6)];
                            for (int q = 0; q < 2; q++) w[(e + pair[q]) * 16 + i] = random_float();
                        }
                        e += 4;
                        continue;
                    }
                    const uint8_t *pair = pairs[random_below(6)];
                    for (int q = 0; q < 2; q++)
                        column[e++] = (uint32_t)(order[b] * 16 + g * 4 + pair[q]);
                }
        }
    }
    run_entry[r] = e;
    free(order);
    return e;
}

static int bench_spmm(const variant *v, const layer *l, size_t rows, const options *o) {
    const size_t nt = tile_pixels(l->k, l->n, v->nr), tiles = (l->n + nt - 1) / nt;
    const size_t runs = l->m / rows, filled = rows == 16;
    size_t *run_entry = alloc((runs + 1) * sizeof *run_entry);
    uint32_t *column = alloc(runs * (l->k + 8) * sizeof *column);
    float *w = random_floats(runs * (l->k + 8) * rows);
    const size_t entries = make_runs(l, rows, run_entry, column, w);
    const size_t kept = filled ? entries * rows / 2 : entries * rows; /* 2:4 */
    float *b = random_floats(tiles * l->k * nt);
    float *bias = random_floats(l->m), *c = alloc(l->m * l->n * sizeof *c);
    const sparse_job j = {v, l, nt, runs, rows, run_entry, column, w, b, bias, c};
    const double s = time_passes(spmm_pass, &j, o);
    char shape[64];
    snprintf(shape, sizeof shape, "%s d=%.2f %s", l->name,
             (double)kept / ((double)l->m * (double)l->k), filled ? "filled" : rows == 1 ? "V=1" : "V=4");
    report(v, shape, 2.0 * (double)kept * (double)l->n, s);
    const int ok = all_finite(c, l->m * l->n);
    free(run_entry), free(column), free(w), free(b), free(bias), free(c);
    return ok;
}

/* ---- int8 sparse runs: the same hybrid layers on int8 ---- */

typedef struct qs8_sparse_job {
    const qs8_variant *v;
    const layer *l;
    size_t nt, runs, rows;
    const size_t *run_entry, *run_weight;
    const uint32_t *column;
    const int8_t *w, *b;
    crisp_qs8_requant q;
    int8_t *c;
} qs8_sparse_job;

static void qs8_spmm_pass(const void *p) {
    const qs8_sparse_job *j = p;
    const size_t k = j->l->k, n = j->l->n, nt = j->nt, nr = j->v->nr;
    for (size_t p0 = 0; p0 < n; p0 += nt) {
        const size_t np = min_size(nt, n - p0);
        const int8_t *b = j->b + p0 * k;
        for (size_t n0 = 0; n0 < np; n0 += nr)
            for (size_t r = 0; r < j->runs; r++) {
                const size_t e0 = j->run_entry[r], row0 = r * j->rows;
                crisp_qs8_requant q = j->q;
                q.bias += row0, q.multiplier += row0, q.weight_sum += row0;
                j->v->spmm(j->rows, min_size(nr, np - n0), j->run_entry[r + 1] - e0,
                           j->column + e0, j->w + j->run_weight[r], b + n0, nt,
                           j->c + row0 * n + p0 + n0, n, &q);
            }
    }
}

static int bench_qs8_spmm(const qs8_variant *v, const layer *l, size_t rows, const options *o) {
    size_t nt = (size_t)262144 / l->k / v->nr * v->nr;
    nt = min_size(nt < v->nr ? v->nr : nt, 512 / v->nr * v->nr);
    nt = min_size(nt, (l->n + v->nr - 1) / v->nr * v->nr);
    const size_t tiles = (l->n + nt - 1) / nt, runs = l->m / rows;
    size_t *run_entry = alloc((runs + 1) * sizeof *run_entry);
    size_t *run_weight = alloc(runs * sizeof *run_weight);
    uint32_t *column = alloc(runs * (l->k / 2 + 8) * sizeof *column);
    const size_t entries = make_runs(l, rows, run_entry, column, NULL); /* w: filled runs only */
    size_t weights = 0;
    for (size_t r = 0; r < runs; r++)
        run_weight[r] = weights, weights += (run_entry[r + 1] - run_entry[r] + 3) / 4 * 4 * rows;
    int8_t *w = alloc(weights), *b = alloc(tiles * l->k * nt), *c = alloc(l->m * l->n);
    for (size_t i = 0; i < weights; i++) w[i] = (int8_t)(random_below(255) - 127);
    for (size_t i = 0; i < tiles * l->k * nt; i++) b[i] = (int8_t)(random_below(256) - 128);
    int32_t *bias = alloc(l->m * 4), *wsum = alloc(l->m * 4);
    float *mult = alloc(l->m * 4);
    for (size_t i = 0; i < l->m; i++) bias[i] = 0, wsum[i] = 0, mult[i] = 1e-4f;
    const qs8_sparse_job j = {v, l, nt, runs, rows, run_entry, run_weight, column, w, b,
                              {3, -5, -128, 127, bias, mult, wsum, 1 /* fits: m = 1e-4 */}, c};
    const double s = time_passes(qs8_spmm_pass, &j, o);
    char shape[64];
    snprintf(shape, sizeof shape, "%s d=%.2f V=%zu", l->name,
             (double)entries * (double)rows / ((double)l->m * (double)l->k), rows);
    printf("%-8s %-40s %-30s %9.2f %10.4f\n", v->family, v->name, shape,
           2.0 * (double)entries * (double)rows * (double)l->n / s * 1e-9, s * 1e3);
    free(run_entry), free(run_weight), free(column), free(w), free(b), free(c), free(bias),
        free(wsum), free(mult);
    return 1;
}

/* ---- int8 hybrid linear runs at batch 1: the classifiers ---- */

typedef struct qs8_spmv_job {
    const qs8_variant *v;
    size_t runs, rows;
    const size_t *run_entry, *run_weight;
    const uint32_t *column;
    const int8_t *w, *x;
    crisp_qs8_requant q;
    int8_t *y;
} qs8_spmv_job;

static void qs8_spmv_pass(const void *p) {
    const qs8_spmv_job *j = p;
    for (size_t r = 0; r < j->runs; r++) {
        const size_t e0 = j->run_entry[r], row0 = r * j->rows;
        crisp_qs8_requant q = j->q;
        q.bias += row0, q.multiplier += row0, q.weight_sum += row0;
        j->v->spmv(j->rows, j->run_entry[r + 1] - e0, j->column + e0, j->w + j->run_weight[r],
                   j->x, j->y + row0, &q);
    }
}

static void bench_qs8_spmv(const qs8_variant *v, const layer *l, size_t rows, const options *o) {
    const size_t runs = l->m / 16 * (16 / rows); /* make_runs: whole 16-row block-rows */
    size_t *run_entry = alloc((runs + 1) * sizeof *run_entry);
    size_t *run_weight = alloc(runs * sizeof *run_weight);
    uint32_t *column = alloc(runs * (l->k / 2 + 8) * sizeof *column);
    const size_t entries = make_runs(l, rows, run_entry, column, NULL);
    size_t weights = 0;
    for (size_t r = 0; r < runs; r++)
        run_weight[r] = weights, weights += (run_entry[r + 1] - run_entry[r] + 3) / 4 * 4 * rows;
    int8_t *w = alloc(weights), *x = alloc(l->k + CRISP_QS8_SPMV_SLACK), *y = alloc(l->m);
    for (size_t i = 0; i < weights; i++) w[i] = (int8_t)(random_below(255) - 127);
    for (size_t i = 0; i < l->k + CRISP_QS8_SPMV_SLACK; i++)
        x[i] = (int8_t)(random_below(256) - 128);
    int32_t *bias = alloc(l->m * 4), *wsum = alloc(l->m * 4);
    float *mult = alloc(l->m * 4);
    for (size_t i = 0; i < l->m; i++) bias[i] = 0, wsum[i] = 0, mult[i] = 1e-4f;
    const qs8_spmv_job j = {v, runs, rows, run_entry, run_weight, column, w, x,
                            {3, -5, -128, 127, bias, mult, wsum, 1 /* fits: m = 1e-4 */}, y};
    const double s = time_passes(qs8_spmv_pass, &j, o);
    char shape[64];
    snprintf(shape, sizeof shape, "%s d=%.2f V=%zu", l->name,
             (double)entries * (double)rows / ((double)l->m * (double)l->k), rows);
    printf("%-8s %-40s %-30s %9.2f %10.4f\n", v->family, v->name, shape,
           2.0 * (double)entries * (double)rows / s * 1e-9, s * 1e3);
    free(run_entry), free(run_weight), free(column), free(w), free(x), free(y), free(bias),
        free(wsum), free(mult);
}

/* ---- int8 GEMV: the classifiers ---- */

typedef struct qs8_gemv_job {
    const qs8_variant *v;
    const layer *l;
    const int8_t *w, *x;
    crisp_qs8_requant q;
    int8_t *y;
} qs8_gemv_job;

static void qs8_gemv_pass(const void *p) {
    const qs8_gemv_job *j = p;
    const size_t m = j->l->m, k = j->l->k, mr = j->v->mr;
    for (size_t r0 = 0; r0 < m; r0 += mr) {
        crisp_qs8_requant q = j->q;
        q.bias += r0, q.multiplier += r0, q.weight_sum += r0;
        j->v->gemv(min_size(mr, m - r0), k, j->w + r0 * k, k, j->x, j->y + r0, &q);
    }
}

static void bench_qs8_gemv(const qs8_variant *v, const layer *l, const options *o) {
    int8_t *w = alloc(l->m * l->k), *x = alloc(l->k), *y = alloc(l->m);
    for (size_t i = 0; i < l->m * l->k; i++) w[i] = (int8_t)(random_below(255) - 127);
    for (size_t i = 0; i < l->k; i++) x[i] = (int8_t)(random_below(256) - 128);
    int32_t *bias = alloc(l->m * 4), *wsum = alloc(l->m * 4);
    float *mult = alloc(l->m * 4);
    for (size_t i = 0; i < l->m; i++) bias[i] = 0, wsum[i] = 0, mult[i] = 1e-4f;
    const qs8_gemv_job j = {v, l, w, x, {3, -5, -128, 127, bias, mult, wsum, 1 /* fits: m = 1e-4 */}, y};
    const double s = time_passes(qs8_gemv_pass, &j, o);
    printf("%-8s %-40s %-30s %9.2f %10.4f\n", v->family, v->name, l->name,
           2.0 * (double)l->m * (double)l->k / s * 1e-9, s * 1e3);
    free(w), free(x), free(y), free(bias), free(wsum), free(mult);
}

/* ---- GEMV: the classifier ---- */

typedef struct gemv_job {
    const variant *v;
    const layer *l;
    const float *w, *x, *bias;
    float *y;
} gemv_job;

static void gemv_pass(const void *p) {
    const gemv_job *j = p;
    const size_t m = j->l->m, k = j->l->k, mr = j->v->mr;
    for (size_t r0 = 0; r0 < m; r0 += mr)
        j->v->gemv(min_size(mr, m - r0), k, j->w + r0 * k, k, j->x, j->y + r0, j->bias + r0,
                   &no_clamp);
}

static int bench_gemv(const variant *v, const layer *l, const options *o) {
    float *w = random_floats(l->m * l->k), *x = random_floats(l->k);
    float *bias = random_floats(l->m), *y = alloc(l->m * sizeof *y);
    const gemv_job j = {v, l, w, x, bias, y};
    const double s = time_passes(gemv_pass, &j, o);
    report(v, l->name, 2.0 * (double)l->m * (double)l->k, s);
    const int ok = all_finite(y, l->m);
    free(w), free(x), free(bias), free(y);
    return ok;
}

/* ---- Depthwise conv and max pool: one channel's padded phases ---- */

typedef struct window_job {
    const variant *v;
    const window *d;
    crisp_dwconv_plane plane;
    const float *w; /* [channels][k * k], or NULL (max pool) */
    float bias;
    float *out;
} window_job;

static void window_pass(const void *p) {
    const window_job *j = p;
    const size_t taps = j->d->k * j->d->k;
    for (size_t c = 0; c < j->d->channels; c++)
        j->v->window(&j->plane, j->w != NULL ? j->w + c * taps : NULL, j->bias, j->out,
                     &no_clamp);
}

static int bench_window(const variant *v, const window *d, int is_max, const options *o) {
    const size_t s = d->stride, k = d->k;
    const size_t oh = (d->h + 2 * d->pad - k) / s + 1, ow = (d->w + 2 * d->pad - k) / s + 1;
    const size_t rows = (oh - 1) * s + k, cols = (ow - 1) * s + k, stride = (cols + s - 1) / s;
    const size_t psize = (rows + s - 1) / s * stride;
    /* The driver copies each channel's padded input into these s x s stride
     * phases (src/conv_fast.c); the kernel alone is timed here, on one
     * channel's whole plane per call. */
    float *phases = random_floats(s * s * psize + CRISP_DWCONV_SLACK);
    float *w = is_max ? NULL : random_floats(d->channels * k * k), *out = alloc(oh * ow * 4);
    const window_job j = {v, d, {phases, psize, stride, s, s, 1, 1, k, k, oh, ow}, w,
                          is_max ? -INFINITY : 0.5f, out};
    const double sec = time_passes(window_pass, &j, o);
    report(v, d->name, (is_max ? 1.0 : 2.0) * (double)(k * k * oh * ow * d->channels), sec);
    const int ok = all_finite(out, oh * ow);
    free(phases), free(w), free(out);
    return ok;
}

/* ---- 2:4 expansion: a layer's rows, 12 at a time ---- */

typedef struct expand_job {
    const variant *v;
    const layer *l;
    const float *values;
    const uint8_t *stream, *columns;
    float *panel;
} expand_job;

static void expand_pass(const void *p) {
    const expand_job *j = p;
    const size_t k = j->l->k, half = k / 2; /* one row's values and positions */
    for (size_t r0 = 0; r0 < j->l->m;) {
        const size_t br = r0 / 16, t = r0 % 16;
        const size_t rows = min_size(min_size(12, 16 - t), j->l->m - r0);
        const crisp_expand24_rows e = {k / 16, j->columns, 16, k, t, rows, 1,
                                       j->values + br * 16 * half, 16 * 8, j->stream,
                                       br * 16 * half, 16 * 8, k};
        j->v->expand24(&e, j->panel);
        r0 += rows;
    }
}

static int bench_expand24(const variant *v, const layer *l, const options *o) {
    if (l->k % 16 != 0) return 1;
    const size_t nbr = (l->m + 15) / 16, half = l->k / 2;
    float *values = random_floats(nbr * 16 * half), *panel = alloc(12 * l->k * sizeof *panel);
    uint8_t *stream = alloc(nbr * 16 * half / 4), *columns = alloc(l->k / 16 * 4);
    for (size_t i = 0; i < nbr * 16 * half / 4; i++) stream[i] = 0xD8; /* (0, 2), (1, 3) */
    for (uint32_t c = 0; c < l->k / 16; c++) memcpy(columns + 4 * c, &c, 4);
    const expand_job j = {v, l, values, stream, columns, panel};
    const double s = time_passes(expand_pass, &j, o);
    report(v, l->name, (double)l->m * (double)l->k, s);
    const int ok = all_finite(panel, 12 * l->k);
    free(values), free(panel), free(stream), free(columns);
    return ok;
}

/* ---- Depthwise conv read in place: every channel of a whole input ---- */

typedef struct direct_job {
    const variant *v;
    const window *d;
    crisp_dwconv_image im;
    const float *x, *w;
    float *out;
} direct_job;

static void direct_pass(const void *p) {
    const direct_job *j = p;
    const size_t taps = j->d->k * j->d->k, plane = j->d->h * j->d->w;
    crisp_dwconv_image im = j->im;
    for (size_t c = 0; c < j->d->channels; c++) {
        im.x = j->x + c * plane;
        j->v->direct(&im, j->w + c * taps, 0.5f, j->out, &no_clamp);
    }
}

static int bench_direct(const variant *v, const window *d, const options *o) {
    const size_t s = d->stride, k = d->k;
    const size_t oh = (d->h + 2 * d->pad - k) / s + 1, ow = (d->w + 2 * d->pad - k) / s + 1;
    /* No zero margins: chunks that reach a padding row copy their window
     * (the driver copies planes of up to 1024 floats between margins
     * instead, src/conv_fast.c). */
    float *x = random_floats(d->channels * d->h * d->w), *w = random_floats(d->channels * k * k);
    uint32_t *masks = alloc(crisp_dwconv_mask_entries(k, d->w) * sizeof *masks);
    float *edge = alloc(crisp_dwconv_edge_floats(k, k, 1, 1, d->w) * sizeof *edge);
    float *out = alloc(oh * ow * 4);
    /* The row walk where the driver would ask for it (src/conv_fast.c, dw_rows). */
    const int rows = v->nr > 0 && k == 3 && d->pad == 1 && ow >= v->nr;
    direct_job j = {v, d, {NULL, 0, 0, masks, edge, d->h, d->w, d->pad, d->pad, s, 1, 1, k, k, oh, ow,
                           rows, 0, 0, 0},
                    x, w, out};
    crisp_dwconv_column_masks(&j.im, masks);
    const double sec = time_passes(direct_pass, &j, o);
    report(v, d->name, 2.0 * (double)(k * k * oh * ow * d->channels), sec);
    const int ok = all_finite(out, oh * ow);
    free(x), free(w), free(masks), free(edge), free(out);
    return ok;
}

/* ---- int8 depthwise conv read in place: every channel of a whole input ---- */

typedef struct qs8_direct_job {
    const qs8_variant *v;
    const window *d;
    crisp_qs8_dwconv_image im;
    const int8_t *x, *w;
    crisp_qs8_requant q;
    int8_t *out, *copy;
    const int32_t *wsum; /* per channel, as the loader's weight_sum */
} qs8_direct_job;

static void qs8_direct_pass(const void *p) {
    const qs8_direct_job *j = p;
    const size_t taps = j->d->k * j->d->k, plane = j->d->h * j->d->w;
    crisp_qs8_dwconv_image im = j->im;
    for (size_t c = 0; c < j->d->channels; c++) {
        im.x = j->x + c * plane;
        if (j->copy != NULL) { /* as the driver: small planes between margins of z_x */
            memcpy(j->copy + im.zeros_before, im.x, plane);
            im.x = j->copy + im.zeros_before;
        }
        j->v->dwdirect(&im, j->w + c * taps, 1000, j->wsum[c], 0.01f, j->out, &j->q);
    }
}

static void bench_qs8_direct(const qs8_variant *v, const window *d, const options *o) {
    const size_t s = d->stride, k = d->k;
    const size_t oh = (d->h + 2 * d->pad - k) / s + 1, ow = (d->w + 2 * d->pad - k) / s + 1;
    int8_t *x = alloc(d->channels * d->h * d->w), *w = alloc(d->channels * k * k);
    for (size_t i = 0; i < d->channels * d->h * d->w; i++) x[i] = (int8_t)(random_below(256) - 128);
    for (size_t i = 0; i < d->channels * k * k; i++) w[i] = (int8_t)(random_below(255) - 127);
    uint32_t *masks = alloc(crisp_qs8_dwconv_mask_entries(d->w) * sizeof *masks);
    int8_t *edge = alloc(crisp_qs8_dwconv_edge_bytes(s, k, 1, d->w));
    int8_t *out = alloc(oh * ow);
    qs8_direct_job j = {v, d, {NULL, 0, 0, masks, edge, d->h, d->w, d->pad, d->pad, s, 1, k, k, oh, ow},
                        x, w, {-3, 5, -128, 127, NULL, NULL, NULL, 1 /* fits, as loaded */}, out, NULL,
                        NULL};
    int32_t *wsum = alloc(d->channels * sizeof *wsum);
    for (size_t c = 0; c < d->channels; c++) {
        wsum[c] = 0;
        for (size_t i = 0; i < k * k; i++) wsum[c] += w[c * k * k + i];
    }
    j.wsum = wsum;
    crisp_qs8_dwconv_quad_masks(&j.im, masks);
    /* Planes of at most 1024 bytes are copied between margins of z_x, as
     * src/conv_fast_qs8.c does (the copy is timed); larger ones are read in
     * place, chunks at the padding rows copying their windows. */
    const size_t plane = d->h * d->w;
    if (plane <= 1024) {
        const size_t end = (oh - 1) * d->w + ow, before = d->pad * d->w + d->pad;
        const size_t reach = s * (end - 1) + crisp_qs8_dwconv_edge_bytes(s, k, 1, d->w);
        const size_t after = reach > plane + before ? reach - plane - before : 0;
        j.copy = alloc(before + plane + after);
        memset(j.copy, j.q.input_zero_point, before + plane + after);
        j.im.zeros_before = before, j.im.zeros_after = after;
    }
    const double sec = time_passes(qs8_direct_pass, &j, o);
    printf("%-8s %-40s %-30s %9.2f %10.4f\n", v->family, v->name, d->name,
           2.0 * (double)(k * k * oh * ow * d->channels) / sec * 1e-9, sec * 1e3);
    free(x), free(w), free(masks), free(edge), free(out), free(j.copy), free(wsum);
}

/* ---- Main ---- */

#define USAGE                                                                                  \
    "usage: crisp-ukernel-bench [--quick] "                                                    \
    "[--family gemm|spmm|gemv|dwconv|dwdirect|maxpool|expand24|qs8_spmm|qs8_gemv|"             \
    "qs8_spmv|qs8_dwdirect] "                                                                  \
    "[--repetitions N] [--cpu-time]\n"

int main(int argc, char **argv) {
    options o = {0, 5, 0.02, NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--quick") == 0) {
            o.quick = 1;
        } else if (strcmp(a, "--family") == 0 && i + 1 < argc) {
            o.family = argv[++i];
        } else if (strcmp(a, "--cpu-time") == 0) {
            clock_id = CLOCK_THREAD_CPUTIME_ID;
        } else if (strcmp(a, "--repetitions") == 0 && i + 1 < argc) {
            char *end;
            const long n = strtol(argv[++i], &end, 10);
            if (*end != '\0' || n < 1 || n > 101) {
                fprintf(stderr, "crisp-ukernel-bench: --repetitions wants 1..101\n" USAGE);
                return 2;
            }
            o.repetitions = (int)n;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(USAGE, stdout);
            return 0;
        } else {
            fprintf(stderr, "crisp-ukernel-bench: unknown argument '%s'\n" USAGE, a);
            return 2;
        }
    }
    if (o.family != NULL && strcmp(o.family, "gemm") != 0 && strcmp(o.family, "spmm") != 0 &&
        strcmp(o.family, "gemv") != 0 && strcmp(o.family, "dwconv") != 0 &&
        strcmp(o.family, "maxpool") != 0 && strcmp(o.family, "qs8_spmm") != 0 &&
        strcmp(o.family, "qs8_gemv") != 0 && strcmp(o.family, "qs8_spmv") != 0 &&
        strcmp(o.family, "expand24") != 0 && strcmp(o.family, "dwdirect") != 0 &&
        strcmp(o.family, "qs8_dwdirect") != 0) {
        fprintf(stderr, "crisp-ukernel-bench: unknown family '%s'\n" USAGE, o.family);
        return 2;
    }
    if (o.quick) o.repetitions = 3, o.min_seconds = 0;
    const layer *convs = o.quick ? tiny_layer : resnet50, *fcs = o.quick ? tiny_fc : classifier;
    const size_t nconvs = o.quick ? COUNT(tiny_layer) : COUNT(resnet50);
    const size_t nfcs = o.quick ? COUNT(tiny_fc) : COUNT(classifier);
    const layer *qfcs = o.quick ? tiny_fc : qs8_classifiers;
    const size_t nqfcs = o.quick ? COUNT(tiny_fc) : COUNT(qs8_classifiers);
    const window *dws = o.quick ? tiny_dw : mobilenet_dw, *pools = o.quick ? tiny_pool
                                                                            : resnet50_pool;
    const size_t ndws = o.quick ? COUNT(tiny_dw) : COUNT(mobilenet_dw);
    const size_t npools = o.quick ? COUNT(tiny_pool) : COUNT(resnet50_pool);

    printf("# crisp-ukernel-bench%s: this CPU's kernels are the %s tier; median of %d "
           "repetitions after a warm-up%s%s\n",
           o.quick ? " --quick (smoke test, not a measurement)" : "", crisp_kernel_isa(),
           o.repetitions, o.quick ? "" : ", each at least 20 ms",
           clock_id == CLOCK_MONOTONIC ? "" : " of thread CPU time");
    printf("%-8s %-40s %-30s %9s %10s\n", "family", "variant", "shape", "GFLOP/s", "ms/layer");
    int ok = 1, ran = 0;
    for (size_t i = 0; i < COUNT(variants); i++) {
        const variant *v = &variants[i];
        if (o.family != NULL && strcmp(o.family, v->family) != 0) continue;
        if (!crisp_isa_supported(v->isa)) {
            printf("%-8s %-40s skipped: this CPU lacks %s (or CRISP_MAX_ISA caps it)\n",
                   v->family, v->name, v->isa);
            continue;
        }
        ran++;
        for (size_t s = 0; v->gemm != NULL && s < nconvs; s++) ok &= bench_gemm(v, &convs[s], &o);
        for (size_t s = 0; v->spmm != NULL && s < nconvs; s++) {
            ok &= bench_spmm(v, &convs[s], 1, &o);
            ok &= bench_spmm(v, &convs[s], 16, &o);
            ok &= bench_spmm(v, &convs[s], 4, &o);
        }
        for (size_t s = 0; v->gemv != NULL && s < nfcs; s++)
            ok &= bench_gemv(v, &fcs[s], &o);
        for (size_t s = 0; v->expand24 != NULL && s < nconvs; s++)
            ok &= bench_expand24(v, &convs[s], &o);
        const int is_max = strcmp(v->family, "maxpool") == 0;
        for (size_t s = 0; v->window != NULL && s < (is_max ? npools : ndws); s++)
            ok &= bench_window(v, is_max ? &pools[s] : &dws[s], is_max, &o);
        for (size_t s = 0; v->direct != NULL && s < ndws; s++) ok &= bench_direct(v, &dws[s], &o);
        fflush(stdout);
    }
    for (size_t i = 0; i < COUNT(qs8_variants); i++) {
        const qs8_variant *v = &qs8_variants[i];
        if (o.family != NULL && strcmp(o.family, v->family) != 0) continue;
        if (!crisp_isa_supported(v->isa)) {
            printf("%-8s %-40s skipped: this CPU lacks %s (or CRISP_MAX_ISA caps it)\n",
                   v->family, v->name, v->isa);
            continue;
        }
        ran++;
        for (size_t s = 0; v->spmm != NULL && s < nconvs; s++) {
            ok &= bench_qs8_spmm(v, &convs[s], 1, &o);
            ok &= bench_qs8_spmm(v, &convs[s], 4, &o);
        }
        for (size_t s = 0; v->gemv != NULL && s < nqfcs; s++) bench_qs8_gemv(v, &qfcs[s], &o);
        for (size_t s = 0; v->spmv != NULL && s < nqfcs; s++) {
            bench_qs8_spmv(v, &qfcs[s], 1, &o);
            bench_qs8_spmv(v, &qfcs[s], 4, &o);
        }
        for (size_t s = 0; v->dwdirect != NULL && s < ndws; s++) bench_qs8_direct(v, &dws[s], &o);
        fflush(stdout);
    }
    if (ran == 0) {
        fprintf(stderr, "crisp-ukernel-bench: no variant of the lists runs on this CPU\n");
        return 1;
    }
    if (!ok) {
        fprintf(stderr, "crisp-ukernel-bench: a kernel wrote a non-finite output\n");
        return 1;
    }
    return 0;
}
