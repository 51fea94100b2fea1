/* Hybrid-sparse conv and linear, float32 and int8, end to end through the
 * loader (so the repacking is tested too): random shapes, block shapes,
 * N:M, V and densities; each model against a dense computation of the
 * same weights (expanded here, in the test only), with threads 1..4
 * bitwise equal to one thread, and effective MACs = kept values x pixels.
 * Float32 layers with groups 1 also run dense (CRISP_HYBRID_FORM=dense),
 * bitwise equal to the same kernels on a DENSE_F32 copy of the weights; a
 * mapped file whose packed layers would exceed the memory budget runs the
 * cheapest of them dense instead (memory_fit). */
#define _POSIX_C_SOURCE 200809L /* setenv, mkstemp */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "crisp.h"
#include "hybrid_builder.h"
#include "model_builder.h"
#include "naive.h"
#include "naive_qs8.h"

CHECK_DEFINE_COUNTERS;

typedef struct hcase {
    naive_conv c; /* linear: cin features, cout outputs, h = w = 1, 1x1 kernel */
    int linear, int8;
    mb_hybrid hy;
} hcase;

static float *random_floats(unsigned *rng, size_t n, float scale) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = check_rand_float(rng) * scale;
    return p;
}

/* Runs the built file with 1..4 threads; returns the 1-thread output. */
static float *run_threads(const uint8_t *file, size_t size, const float *x, size_t nx, size_t ny,
                          const char *what, crisp_model_info *info) {
    crisp_model *m;
    if (crisp_model_load_buffer(file, size, &m) != CRISP_OK) {
        CHECK(0, "%s: load: %s", what, crisp_last_error());
        return NULL;
    }
    crisp_model_get_info(m, info);
    float *first = malloc(ny * sizeof *first), *y = malloc(ny * sizeof *y);
    for (uint32_t t = 1; t <= 4; t++) {
        crisp_session_options o = {t, 0};
        crisp_session *s;
        CHECK(crisp_session_create_with_options(m, &o, &s) == CRISP_OK, "%s: session %u: %s", what,
              t, crisp_last_error());
        CHECK(crisp_session_run(s, x, nx, t == 1 ? first : y, ny) == CRISP_OK, "%s: run: %s",
              what, crisp_last_error());
        if (t > 1)
            CHECK(memcmp(first, y, ny * sizeof *y) == 0,
                  "%s: %u threads differ from one thread", what, t);
        crisp_session_free(s);
    }
    free(y);
    crisp_model_free(m);
    return first;
}

/* Output of the file's model with CRISP_HYBRID_FORM = form (NULL: unset),
 * on the reference kernels or with `threads` threads; NULL after a failure. */
static float *run_form(const uint8_t *file, size_t size, const char *form, uint32_t threads,
                       int reference, const float *x, size_t nx, size_t ny, const char *what) {
    if (form != NULL) setenv("CRISP_HYBRID_FORM", form, 1);
    crisp_model *m;
    const crisp_status st = crisp_model_load_buffer(file, size, &m);
    unsetenv("CRISP_HYBRID_FORM");
    if (st != CRISP_OK) {
        CHECK(0, "%s: load: %s", what, crisp_last_error());
        return NULL;
    }
    float *y = malloc(ny * sizeof *y);
    crisp_session_options o = {threads, reference ? CRISP_SESSION_REFERENCE_KERNELS : 0};
    crisp_session *s;
    CHECK(crisp_session_create_with_options(m, &o, &s) == CRISP_OK &&
              crisp_session_run(s, x, nx, y, ny) == CRISP_OK,
          "%s: %s", what, crisp_last_error());
    crisp_session_free(s);
    crisp_model_free(m);
    return y;
}

/* A float32 layer with groups 1 run dense (src/expand.h: rows expanded
 * from the file per kernel call) gives bitwise what the same kernels give on
 * a DENSE_F32 copy of its weights (the path that kept a dense copy at load):
 * reference kernels, 1 and 3 threads. */
static void dense_form_matches_copy(const uint8_t *file, size_t size, const uint8_t *copy,
                                    size_t copy_size, const float *x, size_t nx, size_t ny,
                                    const char *what) {
    for (int k = 0; k < 3; k++) {
        const uint32_t threads = k == 2 ? 3 : 1;
        float *got = run_form(file, size, "dense", threads, k == 0, x, nx, ny, what);
        float *want = run_form(copy, copy_size, NULL, threads, k == 0, x, nx, ny, what);
        CHECK(got != NULL && want != NULL && memcmp(got, want, ny * sizeof *got) == 0,
              "%s: dense form differs from a dense copy (%s)", what,
              k == 0 ? "reference kernels" : k == 1 ? "1 thread" : "3 threads");
        free(got), free(want);
    }
}

static void run_case(const hcase *hc, unsigned *rng, const char *what) {
    const naive_conv *c = &hc->c;
    const int oh = naive_conv_out(c->h, c->kh, c->sh, c->pt + c->pb, c->dh);
    const int ow = naive_conv_out(c->w, c->kw, c->sw, c->pl + c->pr, c->dw);
    const uint32_t cin_g = (uint32_t)(c->cin / c->groups), R = (uint32_t)c->cout;
    const uint32_t K = hc->linear ? (uint32_t)c->cin : (uint32_t)(c->kh * c->kw) * cin_g;
    mb_hybrid hy = hc->hy;
    hy.rows = R, hy.cols = K, hy.int8 = hc->int8;
    float *dense = malloc((size_t)R * K * sizeof *dense), *wscale = malloc(R * sizeof *wscale);
    size_t wsize;
    uint64_t kept;
    uint8_t *wbytes = mb_hybrid_encode(&hy, rng, dense, wscale, &wsize, &kept);
    const size_t nx = (size_t)c->cin * c->h * c->w, ny = (size_t)R * oh * ow;
    float *x = random_floats(rng, nx, 2), *bias = random_floats(rng, R, 0.5f);
    /* The float reference on the (dequantised) weights. */
    float *wf = malloc((size_t)R * K * sizeof *wf), *want = malloc(ny * sizeof *want);
    for (size_t i = 0; i < (size_t)R * K; i++) wf[i] = hc->int8 ? dense[i] * wscale[i / K] : dense[i];
    if (hc->linear) naive_linear(c->cin, c->cout, c->act, x, wf, bias, want);
    else naive_conv2d(c, x, wf, bias, want);

    mb_model mb;
    mb_init(&mb);
    const uint32_t in = hc->linear ? mb_value(&mb, 1, (uint32_t)c->cin, 0, 0, 0)
                                   : mb_value(&mb, 3, (uint32_t)c->cin, (uint32_t)c->h, (uint32_t)c->w, 0);
    const uint32_t wdims[4] = {R, hc->linear ? K : (uint32_t)c->kh, hc->linear ? 0 : (uint32_t)c->kw,
                               hc->linear ? 0 : cin_g};
    const uint32_t wt = mb_tensor_raw(&mb, hc->int8 ? 4 : 2, hc->linear ? 2 : 4, wdims, wbytes, wsize);
    const uint32_t bt = mb_tensor(&mb, 1, R, 0, 0, 0, bias);
    const int32_t params[16] = {c->kh, c->kw, c->sh, c->sw, c->pt, c->pl, c->pb, c->pr, c->dh, c->dw,
                                c->groups};
    naive_q xq = {4.0f / 255, check_rand_int(rng, -10, 10)}, yq = {1, check_rand_int(rng, -10, 10)};
    float top = 1e-3f;
    for (size_t i = 0; i < ny; i++) top = fabsf(want[i]) > top ? fabsf(want[i]) : top;
    yq.scale = top * 2 / 255;
    const uint32_t kind = hc->linear ? 2 : 1;
    uint32_t out;
    if (!hc->int8) {
        out = hc->linear ? mb_value(&mb, 1, R, 0, 0, 0) : mb_value(&mb, 3, R, (uint32_t)oh, (uint32_t)ow, 0);
        mb_op(&mb, kind, (uint32_t)c->act, in, MB_NONE, out, wt, bt, hc->linear ? NULL : params);
    } else {
        const uint32_t q = hc->linear ? mb_qvalue(&mb, 1, (uint32_t)c->cin, 0, 0, 0, xq.scale, xq.zero_point)
                                      : mb_qvalue(&mb, 3, (uint32_t)c->cin, (uint32_t)c->h, (uint32_t)c->w, 0,
                                                  xq.scale, xq.zero_point);
        const uint32_t r = hc->linear ? mb_qvalue(&mb, 1, R, 0, 0, 0, yq.scale, yq.zero_point)
                                      : mb_qvalue(&mb, 3, R, (uint32_t)oh, (uint32_t)ow, 0, yq.scale,
                                                  yq.zero_point);
        out = hc->linear ? mb_value(&mb, 1, R, 0, 0, 0) : mb_value(&mb, 3, R, (uint32_t)oh, (uint32_t)ow, 0);
        mb_op(&mb, 12, 0, in, MB_NONE, q, MB_NONE, MB_NONE, NULL);
        mb_op(&mb, kind, (uint32_t)c->act, q, MB_NONE, r, wt, bt, hc->linear ? NULL : params);
        mb_op(&mb, 13, 0, r, MB_NONE, out, MB_NONE, MB_NONE, NULL);
        /* Exact int8 expectation from naive_qs8.c on the dense q. */
        int8_t *qx = malloc(nx), *qw = malloc((size_t)R * K), *qy = malloc(ny);
        int32_t *bq = malloc(R * sizeof *bq);
        float *mult = malloc(R * sizeof *mult);
        for (size_t i = 0; i < nx; i++) qx[i] = naive_quantize(x[i], xq);
        for (size_t i = 0; i < (size_t)R * K; i++) qw[i] = (int8_t)dense[i];
        naive_qs8_channel(xq, yq, bias, wscale, (int)R, bq, mult);
        if (hc->linear) naive_qs8_linear(c->cin, c->cout, c->act, xq, yq, qx, qw, bq, mult, qy);
        else naive_qs8_conv2d(c, xq, yq, qx, qw, bq, mult, qy);
        for (size_t i = 0; i < ny; i++) want[i] = naive_dequantize(qy[i], yq);
        free(qx), free(qw), free(qy), free(bq), free(mult);
    }
    mb.input = in, mb.output = out;
    size_t size;
    uint8_t *file = mb_build(&mb, &size);
    if (!hc->int8 && c->groups == 1) {
        /* The same layer with a DENSE_F32 copy of the weights. */
        mb_model d;
        mb_init(&d);
        const uint32_t din = hc->linear ? mb_value(&d, 1, (uint32_t)c->cin, 0, 0, 0)
                                        : mb_value(&d, 3, (uint32_t)c->cin, (uint32_t)c->h,
                                                   (uint32_t)c->w, 0);
        const uint32_t dwt = mb_tensor(&d, hc->linear ? 2 : 4, R, wdims[1], wdims[2], wdims[3], dense);
        const uint32_t dbt = mb_tensor(&d, 1, R, 0, 0, 0, bias);
        const uint32_t dout = hc->linear ? mb_value(&d, 1, R, 0, 0, 0)
                                         : mb_value(&d, 3, R, (uint32_t)oh, (uint32_t)ow, 0);
        mb_op(&d, kind, (uint32_t)c->act, din, MB_NONE, dout, dwt, dbt, hc->linear ? NULL : params);
        d.input = din, d.output = dout;
        size_t copy_size;
        uint8_t *copy = mb_build(&d, &copy_size);
        dense_form_matches_copy(file, size, copy, copy_size, x, nx, ny, what);
        free(copy), mb_free(&d);
    }
    crisp_model_info info;
    float *got = run_threads(file, size, x, nx, ny, what, &info);
    if (got != NULL) {
        double err = 0;
        for (size_t i = 0; i < ny; i++) {
            const double e = fabs((double)got[i] - want[i]) / (fabs(want[i]) > 1 ? fabs(want[i]) : 1);
            err = e > err ? e : err;
        }
        CHECK(hc->int8 ? err == 0 : err < 1e-4, "%s: error %g", what, err);
        CHECK(info.effective_macs == kept * (uint64_t)(oh * ow) &&
                  info.macs == (uint64_t)R * K * (uint64_t)(oh * ow),
              "%s: macs %llu effective %llu, expected %llu and %llu", what,
              (unsigned long long)info.macs, (unsigned long long)info.effective_macs,
              (unsigned long long)R * K * (uint64_t)(oh * ow), (unsigned long long)kept * (uint64_t)(oh * ow));
    }
    free(got), free(file), mb_free(&mb);
    free(dense), free(wscale), free(wbytes), free(x), free(bias), free(wf), free(want);
}

static const uint32_t block_shapes[][2] = {{16, 16}, {32, 32}, {8, 16}, {64, 64}, {4, 8},
                                           {3, 4},   {5, 8},   {2, 16}, {1, 4}};
static const uint32_t nm[][2] = {{1, 4}, {2, 4}, {2, 8}, {4, 8}, {4, 4}, {1, 1}, {8, 8}, {3, 3}};

static hcase random_case(unsigned *rng, int linear, int int8) {
    hcase h;
    memset(&h, 0, sizeof h);
    h.linear = linear, h.int8 = int8;
    const uint32_t *bs = block_shapes[check_rand(rng) % 9], *p = nm[check_rand(rng) % 8];
    h.hy.br = bs[0], h.hy.bc = bs[1], h.hy.n = p[0], h.hy.m = p[1];
    if (h.hy.n < h.hy.m && h.hy.bc % h.hy.m) h.hy.bc = (h.hy.bc / h.hy.m + 1) * h.hy.m;
    const uint32_t vs[4] = {1, 2, 4, h.hy.br};
    do h.hy.v = vs[check_rand(rng) % 4];
    while (h.hy.br % h.hy.v);
    naive_conv *c = &h.c;
    c->groups = linear ? 1 : check_rand_int(rng, 1, 2);
    const int tap = h.hy.n < h.hy.m ? (int)h.hy.m * check_rand_int(rng, 1, 3) : check_rand_int(rng, 1, 12);
    c->cin = c->groups * (linear ? tap * check_rand_int(rng, 1, 4) : tap);
    c->cout = c->groups * check_rand_int(rng, 1, 20);
    c->kh = c->kw = c->sh = c->sw = c->dh = c->dw = 1;
    c->h = c->w = 1;
    if (!linear) {
        c->kh = check_rand_int(rng, 1, 3), c->kw = check_rand_int(rng, 1, 3);
        c->sh = check_rand_int(rng, 1, 2), c->sw = check_rand_int(rng, 1, 2);
        c->dh = check_rand_int(rng, 1, 2), c->dw = check_rand_int(rng, 1, 2);
        c->pt = check_rand_int(rng, 0, 2), c->pl = check_rand_int(rng, 0, 2);
        c->pb = check_rand_int(rng, 0, 2), c->pr = check_rand_int(rng, 0, 2);
        c->h = c->dh * (c->kh - 1) + check_rand_int(rng, 1, 7);
        c->w = c->dw * (c->kw - 1) + check_rand_int(rng, 1, 7);
    }
    c->act = check_rand_int(rng, 0, 2);
    const uint32_t K = linear ? (uint32_t)c->cin : (uint32_t)(c->kh * c->kw * (c->cin / c->groups));
    const uint32_t nbc = (K + h.hy.bc - 1) / h.hy.bc;
    h.hy.kept_per_row = check_rand_int(rng, 0, 2) == 0 ? 0 : (uint32_t)check_rand_int(rng, 1, (int)nbc);
    h.hy.empty_odd_rows = check_rand_int(rng, 0, 5) == 0;
    return h;
}

static void fixed_cases(unsigned *rng) {
    /* ResNet-like 3x3, Cout 40 (not a multiple of Br 16 / 32 / 64), K 288 (a
     * partial last block-column for Bc 64 and 40); per-row and shared N:M,
     * block-only 4:4, all blocks kept (0), one block per block-row, block-rows
 * keeping no block. */
    const naive_conv base = {32, 6, 6, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    const mb_hybrid shapes[] = {
        {0, 0, 16, 16, 2, 4, 1, 3, 0, 0}, {0, 0, 16, 16, 2, 4, 4, 3, 0, 0}, {0, 0, 32, 32, 1, 4, 1, 0, 0, 0},
        {0, 0, 64, 64, 4, 8, 8, 2, 0, 0}, {0, 0, 8, 16, 2, 8, 2, 5, 0, 0},  {0, 0, 16, 16, 4, 4, 1, 4, 0, 0},
        {0, 0, 16, 40, 2, 4, 16, 1, 0, 0}, {0, 0, 8, 16, 2, 4, 2, 1, 0, 1}};
    char what[96];
    for (int i = 0; i < 8; i++)
        for (int int8 = 0; int8 < 2; int8++) {
            hcase h = {base, 0, int8, shapes[i]};
            h.c.sh = h.c.sw = i % 2 ? 2 : 1;
            snprintf(what, sizeof what, "fixed conv %d %s", i, int8 ? "int8" : "f32");
            run_case(&h, rng, what);
            h.linear = 1;
            h.c = (naive_conv){96, 1, 1, 24, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, i % 3};
            snprintf(what, sizeof what, "fixed linear %d %s", i, int8 ? "int8" : "f32");
            run_case(&h, rng, what);
        }
}

/* Loads `path` (mapped) or `file` (a buffer: no fit), runs x once with the
 * profile on and writes op i's kernel name into kernels[i]. */
static float *run_profiled(const char *path, const uint8_t *file, size_t size, const float *x,
                           size_t nx, size_t ny, const char *kernels[2], const char *what) {
    crisp_model *m;
    const crisp_status st =
        path != NULL ? crisp_model_load_file(path, &m) : crisp_model_load_buffer(file, size, &m);
    if (st != CRISP_OK) {
        CHECK(0, "%s: load: %s", what, crisp_last_error());
        return NULL;
    }
    float *y = malloc(ny * sizeof *y);
    crisp_session_options o = {2, CRISP_SESSION_PROFILE};
    crisp_session *s;
    CHECK(crisp_session_create_with_options(m, &o, &s) == CRISP_OK &&
              crisp_session_run(s, x, nx, y, ny) == CRISP_OK,
          "%s: %s", what, crisp_last_error());
    for (uint32_t i = 0; i < 2; i++) {
        crisp_op_profile p;
        CHECK(crisp_session_get_op_profile(s, i, &p) == CRISP_OK, "%s: profile", what);
        kernels[i] = p.kernel; /* static strings */
    }
    crisp_session_free(s);
    crisp_model_free(m);
    return y;
}

/* Two block-only (4:4, V 1) linears, K = 8192 -> H = 2048 (keeping `kept`
 * of its 512 blocks per block-row, then a ReLU) -> R = 512 (keeping 13 of
 * 128), whose runs take 8 bytes per kept value against the file's 4: the
 * memory tests' model, its input and the dense computation's output. */
enum { FIT_K = 8192, FIT_H = 2048, FIT_R = 512 };
typedef struct fit_model {
    uint8_t *file;
    size_t size;
    float *x, *want, top; /* top: the largest |want|, at least 1e-3 */
} fit_model;

static fit_model fit_model_build(unsigned *rng, uint32_t kept) {
    const uint32_t K = FIT_K, H = FIT_H, R = FIT_R;
    mb_hybrid big = {H, K, 16, 16, 4, 4, 1, kept, 0, 0}, small = {R, H, 16, 16, 4, 4, 1, 13, 0, 0};
    float *w1 = malloc((size_t)H * K * sizeof *w1), *w2 = malloc((size_t)R * H * sizeof *w2);
    size_t s1, s2;
    uint64_t k1, k2;
    uint8_t *e1 = mb_hybrid_encode(&big, rng, w1, NULL, &s1, &k1);
    uint8_t *e2 = mb_hybrid_encode(&small, rng, w2, NULL, &s2, &k2);
    fit_model f = {NULL, 0, random_floats(rng, K, 1), malloc(R * sizeof(float)), 1e-3f};
    float *b1 = random_floats(rng, H, 0.5f), *b2 = random_floats(rng, R, 0.5f);
    float *hidden = malloc(H * sizeof *hidden);
    naive_linear((int)K, (int)H, 1, f.x, w1, b1, hidden);
    naive_linear((int)H, (int)R, 0, hidden, w2, b2, f.want);
    for (uint32_t i = 0; i < R; i++) f.top = fabsf(f.want[i]) > f.top ? fabsf(f.want[i]) : f.top;
    mb_model mb;
    mb_init(&mb);
    const uint32_t in = mb_value(&mb, 1, K, 0, 0, 0), mid = mb_value(&mb, 1, H, 0, 0, 0);
    const uint32_t out = mb_value(&mb, 1, R, 0, 0, 0);
    const uint32_t d1[4] = {H, K, 0, 0}, d2[4] = {R, H, 0, 0};
    const uint32_t t1 = mb_tensor_raw(&mb, 2, 2, d1, e1, s1), t2 = mb_tensor_raw(&mb, 2, 2, d2, e2, s2);
    mb_op(&mb, 2, 1, in, MB_NONE, mid, t1, mb_tensor(&mb, 1, H, 0, 0, 0, b1), NULL);
    mb_op(&mb, 2, 0, mid, MB_NONE, out, t2, mb_tensor(&mb, 1, R, 0, 0, 0, b2), NULL);
    mb.input = in, mb.output = out;
    f.file = mb_build(&mb, &f.size);
    mb_free(&mb);
    free(e1), free(e2), free(w1), free(w2), free(b1), free(b2), free(hidden);
    return f;
}

static void fit_model_free(fit_model *f) {
    free(f->file), free(f->x), free(f->want);
}

/* y (NULL: the load failed, already reported) ran op 0 on kernel0 and op 1
 * on spmv, and agrees with the dense computation. */
static void fit_model_check(const fit_model *f, const float *y, const char *const kernels[2],
                            const char *kernel0, const char *what) {
    if (y == NULL) return;
    CHECK(strcmp(kernels[0], kernel0) == 0 && strcmp(kernels[1], "spmv") == 0,
          "%s: kernels %s, %s", what, kernels[0], kernels[1]);
    for (uint32_t i = 0; i < FIT_R; i++)
        CHECK(fabsf(y[i] - f->want[i]) <= 1e-4f * f->top, "%s: out[%u] %g, want %g", what, i,
              (double)y[i], (double)f->want[i]);
}

/* The memory budget (runtime/README.md, "Dense or sparse, per layer"): a
 * mapped model's packed weights may hold at most arena + 10 MiB beyond the
 * file pages they replace. The fit model keeping a fifth of the big layer's
 * blocks (about 13 MB over its file bytes: over the budget alone). Running
 * the big one dense frees the most bytes for the least time (its runs are
 * nearer the dense time), so it alone turns dense, loaded mapped or from a
 * buffer alike (the budget counts as for a mapped file: the forms do not
 * depend on the load); with CRISP_HYBRID_FORM=sparse both keep their runs.
 * Outputs agree with a dense computation either way, and bitwise between the
 * two loads. */
static void memory_fit(unsigned *rng) {
    fit_model f = fit_model_build(rng, 102);
    const char *tmp = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/crisp-memory-fit-XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
    const int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, f.file, f.size) == (ssize_t)f.size && close(fd) == 0,
          "memory fit: cannot write %s", path);
    const char *kernels[2] = {"", ""};
    float *mapped = NULL;
    unsetenv("CRISP_HYBRID_FORM"); /* auto, whatever the caller's environment says */
    for (int k = 0; k < 3; k++) {
        const char *what = k == 0 ? "memory fit: mapped" : k == 1 ? "memory fit: buffer"
                                                                  : "memory fit: mapped, sparse";
        if (k == 2) setenv("CRISP_HYBRID_FORM", "sparse", 1);
        float *y = run_profiled(k == 1 ? NULL : path, f.file, f.size, f.x, FIT_K, FIT_R, kernels,
                                what);
        unsetenv("CRISP_HYBRID_FORM");
        fit_model_check(&f, y, kernels, k < 2 ? "gemv (expanded)" : "spmv", what);
        if (y == NULL) continue;
        if (k == 0) {
            mapped = y;
            continue;
        }
        if (k == 1 && mapped != NULL)
            CHECK(memcmp(mapped, y, FIT_R * sizeof *y) == 0,
                  "memory fit: buffer and mapped loads differ");
        free(y);
    }
    free(mapped);
    unlink(path);
    fit_model_free(&f);
}

/* The memory limit (CRISP_MAX_MEMORY_MB) below what the runs allocate, the
 * budget above it: the fit model keeping 61 of the big layer's 512 blocks
 * per block-row runs as runs (16 MB at 8 bytes per kept value, 8 MB over its
 * file bytes, inside the budget). Under a 16 MiB limit it runs dense from
 * the file instead (src/pack.c, crisp_fit_packed_forms) and the load goes
 * on, where it failed with CRISP_ERR_LIMIT before; the small layer keeps its
 * runs. Under 18 MiB, which the runs fit, nothing changes. */
static void memory_limit_fit(unsigned *rng) {
    fit_model f = fit_model_build(rng, 61);
    unsetenv("CRISP_HYBRID_FORM");
    /* 18 MiB holds the runs (they loaded under 17 before the fit knew the
     * limit): they stay; 16 does not. */
    static const char *const limits[] = {NULL, "18", "16"};
    for (int l = 0; l < 3; l++) {
        char what[64];
        snprintf(what, sizeof what, "memory limit fit: %s%s", l ? limits[l] : "no limit",
                 l ? " MiB" : "");
        if (l) setenv("CRISP_MAX_MEMORY_MB", limits[l], 1);
        const char *kernels[2] = {"", ""};
        float *y = run_profiled(NULL, f.file, f.size, f.x, FIT_K, FIT_R, kernels, what);
        unsetenv("CRISP_MAX_MEMORY_MB");
        fit_model_check(&f, y, kernels, l == 2 ? "gemv (expanded)" : "spmv", what);
        free(y);
    }
    fit_model_free(&f);
}

/* Resident bytes of this process's mappings of the file with inode `inode`
 * (/proc/self/smaps; by inode, not by path, which smaps prints resolved),
 * or -1 where smaps cannot be read (then the caller checks nothing);
 * *found: how many mappings of it there are. */
static long long mapped_rss(unsigned long long inode, int *found) {
    FILE *f = fopen("/proc/self/smaps", "r");
    *found = 0;
    if (f == NULL) return -1;
    char line[1024], perms[8];
    long long total = 0, kb;
    unsigned long from, to;
    unsigned long long offset, node;
    unsigned major, minor;
    int ours = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        if (sscanf(line, "%lx-%lx %7s %llx %x:%x %llu", &from, &to, perms, &offset, &major, &minor,
                   &node) == 7) { /* a mapping's first line */
            ours = node == inode && inode != 0;
            *found += ours;
        } else if (ours && sscanf(line, "Rss: %lld kB", &kb) == 1) {
            total += kb * 1024;
        }
    }
    fclose(f);
    return total;
}

/* A mapped file's repacked tensors stay out of memory while the model runs
 * (src/model.c, release_packed_weights). Two block-only linears, 8192 ->
 * 2048 keeping 40 of 512 blocks per block-row (5.2 MB) and 2048 -> 2048
 * keeping 24 of 128 (3.1 MB), both run as packed runs, the first one's bias
 * stored between their weights and read at every run. A page cache holding
 * the file in 2 MiB folios (Linux 6.x) mapped such a folio whole, by one
 * PMD, at the first touch of the bias, the released weights around it
 * included (2 MiB of them here), until the released ranges got mappings of
 * their own without huge pages. A kernel without large folios passes
 * either way. */
static void released_pages_stay_out(unsigned *rng) {
    enum { K = 8192, H = 2048 };
    mb_hybrid big = {H, K, 16, 16, 4, 4, 1, 40, 0, 0}, next = {H, H, 16, 16, 4, 4, 1, 24, 0, 0};
    float *w1 = malloc((size_t)H * K * sizeof *w1), *w2 = malloc((size_t)H * H * sizeof *w2);
    size_t s1, s2, size;
    uint64_t k1, k2;
    uint8_t *e1 = mb_hybrid_encode(&big, rng, w1, NULL, &s1, &k1);
    uint8_t *e2 = mb_hybrid_encode(&next, rng, w2, NULL, &s2, &k2);
    float *x = random_floats(rng, K, 1), *b = random_floats(rng, H, 0.5f);
    mb_model mb;
    mb_init(&mb);
    const uint32_t in = mb_value(&mb, 1, K, 0, 0, 0), mid = mb_value(&mb, 1, H, 0, 0, 0);
    const uint32_t out = mb_value(&mb, 1, H, 0, 0, 0), d1[4] = {H, K, 0, 0}, d2[4] = {H, H, 0, 0};
    const uint32_t t1 = mb_tensor_raw(&mb, 2, 2, d1, e1, s1), b1 = mb_tensor(&mb, 1, H, 0, 0, 0, b);
    const uint32_t t2 = mb_tensor_raw(&mb, 2, 2, d2, e2, s2), b2 = mb_tensor(&mb, 1, H, 0, 0, 0, b);
    mb_op(&mb, 2, 1, in, MB_NONE, mid, t1, b1, NULL);
    mb_op(&mb, 2, 0, mid, MB_NONE, out, t2, b2, NULL);
    mb.input = in, mb.output = out;
    uint8_t *file = mb_build(&mb, &size);
    const char *tmp = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/crisp-released-XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
    const int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, file, size) == (ssize_t)size && close(fd) == 0,
          "released pages: cannot write %s", path);
    unsetenv("CRISP_HYBRID_FORM");
    crisp_model *m;
    crisp_session *s;
    if (crisp_model_load_file(path, &m) == CRISP_OK) {
        float *y = malloc(H * sizeof *y);
        CHECK(crisp_session_create(m, &s) == CRISP_OK, "released pages: %s", crisp_last_error());
        for (int r = 0; r < 3; r++)
            CHECK(crisp_session_run(s, x, K, y, H) == CRISP_OK, "released pages: %s",
                  crisp_last_error());
        struct stat st;
        int found = 0;
        const long long rss = stat(path, &st) == 0 ? mapped_rss(st.st_ino, &found) : -1;
        /* Both layers run as runs: what stays mapped is the headers, the
         * biases and the pages around them, far below 1 MiB. */
        CHECK(rss < 0 || (found > 0 && rss <= (1 << 20)),
              "released pages: %lld bytes of the %zu-byte file mapped after the runs (%d "
              "mappings of it found)", rss, size, found);
        crisp_session_free(s);
        crisp_model_free(m);
        free(y);
    } else {
        CHECK(0, "released pages: load: %s", crisp_last_error());
    }
    unlink(path);
    free(file), mb_free(&mb), free(e1), free(e2), free(w1), free(w2), free(x), free(b);
}

static uint32_t form_of(const crisp_model *m, uint32_t op, const char *isa, const char *what) {
    uint32_t form = 99;
    CHECK(crisp_model_get_op_form(m, op, isa, &form) == CRISP_OK, "%s: op %u on %s: %s", what,
          (unsigned)op, isa != NULL ? isa : "this CPU", crisp_last_error());
    return form;
}

/* crisp_model_get_op_form: the cost table's form before the memory budget
 * moves any layer, for any tier (the packer stores dense what is
 * DENSE_STORED: crisp_edge/packing/forms.py). A dense 3 x 3 conv (NONE),
 * then 2:4 convs keeping every block (half the MACs, at less than half the
 * dense rate on every tier): a 3 x 3 one of K = 1152 (DENSE_STORED) and a
 * 1 x 1 one of K = 64 (DENSE: short rows run faster expanded); the fit
 * model's big linear, which the memory budget runs dense, still answers
 * RUNS (its cost choice). */
static void op_forms(unsigned *rng) {
    static const char *const tiers[] = {NULL, "", "avx512f", "avx2_fma", "neon", "scalar"};
    enum { C = 128, H = 8, R = 64, K = 9 * C };
    mb_hybrid wide = {R, K, 16, 16, 2, 4, 1, 0, 0, 0}, narrow = {R, R, 16, 16, 2, 4, 1, 0, 0, 0};
    float *w = malloc((size_t)R * K * sizeof *w), *w0 = random_floats(rng, (size_t)C * K, 1);
    float *w2 = malloc((size_t)R * R * sizeof *w2), *b = random_floats(rng, C, 0.5f);
    size_t size, size2;
    uint64_t kept;
    uint8_t *enc = mb_hybrid_encode(&wide, rng, w, NULL, &size, &kept);
    uint8_t *enc2 = mb_hybrid_encode(&narrow, rng, w2, NULL, &size2, &kept);
    mb_model mb;
    mb_init(&mb);
    const uint32_t in = mb_value(&mb, 3, C, H, H, 0), mid = mb_value(&mb, 3, C, H, H, 0);
    const uint32_t mid2 = mb_value(&mb, 3, R, H, H, 0), out = mb_value(&mb, 3, R, H, H, 0);
    const uint32_t dims[4] = {R, 3, 3, C}, dims2[4] = {R, 1, 1, R};
    const int32_t params[16] = {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    const int32_t params1[16] = {1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1};
    mb_op(&mb, 1, 1, in, MB_NONE, mid, mb_tensor(&mb, 4, C, 3, 3, C, w0),
          mb_tensor(&mb, 1, C, 0, 0, 0, b), params);
    mb_op(&mb, 1, 1, mid, MB_NONE, mid2, mb_tensor_raw(&mb, 2, 4, dims, enc, size),
          mb_tensor(&mb, 1, R, 0, 0, 0, b), params);
    mb_op(&mb, 1, 0, mid2, MB_NONE, out, mb_tensor_raw(&mb, 2, 4, dims2, enc2, size2),
          mb_tensor(&mb, 1, R, 0, 0, 0, b), params1);
    mb.input = in, mb.output = out;
    uint8_t *file = mb_build(&mb, &size);
    crisp_model *m;
    if (crisp_model_load_buffer(file, size, &m) == CRISP_OK) {
        for (size_t t = 0; t < sizeof tiers / sizeof *tiers; t++) {
            const char *name = tiers[t] ? tiers[t] : "NULL";
            CHECK(form_of(m, 0, tiers[t], "op forms") == CRISP_LAYER_FORM_NONE,
                  "op forms: the dense conv has a form on %s", name);
            CHECK(form_of(m, 1, tiers[t], "op forms") == CRISP_LAYER_FORM_DENSE_STORED,
                  "op forms: the 2:4 3 x 3 conv is not DENSE_STORED on %s", name);
            CHECK(form_of(m, 2, tiers[t], "op forms") == CRISP_LAYER_FORM_DENSE,
                  "op forms: the 2:4 1 x 1 conv is not DENSE on %s", name);
        }
        uint32_t form = 0;
        CHECK(crisp_model_get_op_form(m, 3, NULL, &form) == CRISP_ERR_ARGUMENT &&
                  strstr(crisp_last_error(), "out of range") != NULL,
              "op forms: op 3 of 3: %s", crisp_last_error());
        CHECK(crisp_model_get_op_form(m, 1, "sse4", &form) == CRISP_ERR_ARGUMENT &&
                  strstr(crisp_last_error(), "'sse4'") != NULL,
              "op forms: tier sse4: %s", crisp_last_error());
        CHECK(crisp_model_get_op_form(m, 1, NULL, NULL) == CRISP_ERR_ARGUMENT &&
                  crisp_model_get_op_form(NULL, 0, NULL, &form) == CRISP_ERR_ARGUMENT,
              "op forms: NULL arguments accepted");
        crisp_model_free(m);
    } else {
        CHECK(0, "op forms: load: %s", crisp_last_error());
    }
    free(file), mb_free(&mb), free(enc), free(enc2), free(w), free(w0), free(w2), free(b);

    fit_model f = fit_model_build(rng, 102);
    unsetenv("CRISP_HYBRID_FORM");
    const char *kernels[2] = {"", ""};
    float *y = run_profiled(NULL, f.file, f.size, f.x, FIT_K, FIT_R, kernels, "op forms: fit");
    CHECK(y == NULL || strcmp(kernels[0], "gemv (expanded)") == 0,
          "op forms: the budget no longer runs the fit model's big layer dense (%s)", kernels[0]);
    if (crisp_model_load_buffer(f.file, f.size, &m) == CRISP_OK) {
        CHECK(form_of(m, 0, NULL, "op forms: fit") == CRISP_LAYER_FORM_RUNS &&
                  form_of(m, 1, "scalar", "op forms: fit") == CRISP_LAYER_FORM_RUNS,
              "op forms: the fit model's layers are not RUNS by cost");
        crisp_model_free(m);
    }
    free(y);
    fit_model_free(&f);
}

int main(void) {
    unsigned rng = 4711;
    op_forms(&rng);
    released_pages_stay_out(&rng);
    memory_fit(&rng);
    memory_limit_fit(&rng);
    fixed_cases(&rng);
    char what[160];
    for (int t = 0; t < 240; t++) {
        const int linear = t % 4 == 3, int8 = t % 2;
        const hcase h = random_case(&rng, linear, int8);
        snprintf(what, sizeof what,
                 "%s %s cin %d %dx%d cout %d k %dx%d s %d,%d d %d,%d g %d act %d | Br %u Bc %u "
                 "%u:%u V %u kept %u%s",
                 linear ? "linear" : "conv", int8 ? "int8" : "f32", h.c.cin, h.c.h, h.c.w, h.c.cout,
                 h.c.kh, h.c.kw, h.c.sh, h.c.sw, h.c.dh, h.c.dw, h.c.groups, h.c.act, h.hy.br,
                 h.hy.bc, h.hy.n, h.hy.m, h.hy.v, h.hy.kept_per_row,
                 h.hy.empty_odd_rows ? " (odd block-rows empty)" : "");
        run_case(&h, &rng, what);
    }
    return check_report();
}
