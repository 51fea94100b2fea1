/* The optimised kernels against their spec. Part 1: every microkernel
 * variant of every family list (the .inc files in src/kernels) that this CPU supports,
 * against textbook double-precision loops, over random tile shapes including
 * partial tiles (mr < MR, nc < NR, odd K) - unsupported variants are
 * skipped and counted, not failed. Part 2: whole conv layers through the
 * session on the kernels this CPU selects (capped by CRISP_MAX_ISA: ctest
 * runs this program once per tier) against a session on the reference
 * kernels: dense, hybrid-sparse (per-row and row-shared N:M, partial edge
 * blocks, channel counts off the tile) and depthwise convs with several
 * strides, dilations, paddings and kernel sizes, images big enough for
 * several pixel tiles and K big enough for small tiles. */
#define _DEFAULT_SOURCE /* setenv, MAP_ANONYMOUS */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "conv_fast.h"
#include "crisp.h"
#include "hybrid_builder.h"
#include "hybrid_form.h"
#include "kernels/common.h"
#include "kernels/ref.h"
#include "kernels/ukernels.h"
#include "model_builder.h"
#include "naive.h"
#include "session.h"

CHECK_DEFINE_COUNTERS;

static int skipped;

static float *random_floats(unsigned *rng, size_t n, float scale) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = check_rand_float(rng) * scale;
    return p;
}

/* `bytes` whose last byte is followed by an inaccessible page: a kernel read
 * past the end faults even where ASan does not look (masked vector loads and
 * gathers). Released with guarded_free(p, bytes). */
static void *guarded_alloc(size_t bytes) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t span = (bytes + page - 1) / page * page;
    uint8_t *base = mmap(NULL, span + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) abort();
    if (mprotect(base + span, page, PROT_NONE) != 0) abort();
    return base + span - bytes;
}

static void guarded_free(void *p, size_t bytes) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t span = (bytes + page - 1) / page * page;
    munmap((uint8_t *)p + bytes - span, span + page);
}

static double clampd(double v, const crisp_minmax_params *p) {
    return v < p->output_min ? p->output_min : v > p->output_max ? p->output_max : v;
}

static const crisp_minmax_params acts[3] = {{-INFINITY, INFINITY}, {0, INFINITY}, {0, 6}};

/* |got - want| <= tol * (1 + sum of |terms|): rounding grows with the sum. */
static int close_enough(double got, double want, double abs_sum) {
    return fabs(got - want) <= 1e-5 * (1 + abs_sum);
}

/* ---- Part 1: microkernels ---- */

typedef struct gemm_variant {
    const char *isa, *name;
    crisp_f32_gemm_ukernel_fn fn;
    size_t mr, nr;
} gemm_variant;
typedef struct spmm_variant {
    const char *isa, *name;
    crisp_f32_spmm_ukernel_fn fn;
    size_t nr;
} spmm_variant;
typedef struct dw_variant {
    const char *isa, *name;
    crisp_f32_dwconv_ukernel_fn fn;
} dw_variant;

#define CRISP_GEMM(tier, name, mr, nr) {#tier, #name, name, mr, nr},
static const gemm_variant gemms[] = {
#include "kernels/f32_gemm.inc"
};
#undef CRISP_GEMM
#define CRISP_SPMM(tier, name, nr) {#tier, #name, name, nr},
static const spmm_variant spmms[] = {
#include "kernels/f32_spmm.inc"
};
#undef CRISP_SPMM
#define CRISP_DWCONV(tier, name) {#tier, #name, name},
static const dw_variant dws[] = {
#include "kernels/f32_dwconv.inc"
};
#undef CRISP_DWCONV

typedef struct dw_direct_variant {
    const char *isa, *name;
    crisp_f32_dwconv_direct_ukernel_fn fn;
    size_t rows; /* its row walk's least output width, 0 = none */
} dw_direct_variant;
#define CRISP_DWCONV_DIRECT(tier, name, rows) {#tier, #name, name, rows},
static const dw_direct_variant dw_directs[] = {
#include "kernels/f32_dwconv_direct.inc"
};
#undef CRISP_DWCONV_DIRECT

#define CRISP_MAXPOOL(tier, name) {#tier, #name, name},
static const dw_variant maxpools[] = {
#include "kernels/f32_maxpool.inc"
};
#undef CRISP_MAXPOOL

typedef struct gemv_variant {
    const char *isa, *name;
    crisp_f32_gemv_ukernel_fn fn;
    size_t mr;
} gemv_variant;
#define CRISP_GEMV(tier, name, mr) {#tier, #name, name, mr},
static const gemv_variant gemvs[] = {
#include "kernels/f32_gemv.inc"
};
#undef CRISP_GEMV

typedef struct f32_add_variant {
    const char *isa, *name;
    crisp_f32_add_ukernel_fn fn;
} f32_add_variant;
#define CRISP_F32_ADD(tier, name) {#tier, #name, name},
static const f32_add_variant f32_adds[] = {
#include "kernels/f32_add.inc"
};
#undef CRISP_F32_ADD

typedef struct dw_hwc_variant {
    const char *isa, *name;
    crisp_f32_dwconv_hwc_ukernel_fn fn;
    size_t block;
} dw_hwc_variant;
#define CRISP_DWCONV_HWC(tier, name, block) {#tier, #name, name, block},
static const dw_hwc_variant dw_hwcs[] = {
#include "kernels/f32_dwconv_hwc.inc"
    {"scalar", "none", NULL, 0}, /* keeps the list non-empty on every architecture */
};
#undef CRISP_DWCONV_HWC

typedef struct spmv_variant {
    const char *isa, *name;
    crisp_f32_spmv_ukernel_fn fn;
} spmv_variant;
#define CRISP_F32_SPMV(tier, name) {#tier, #name, name},
static const spmv_variant spmvs[] = {
#include "kernels/f32_spmv.inc"
};
#undef CRISP_F32_SPMV

typedef struct stride2_variant {
    const char *isa, *name;
    crisp_f32_stride2_ukernel_fn fn;
} stride2_variant;
#define CRISP_F32_STRIDE2(tier, name) {#tier, #name, name},
static const stride2_variant stride2s[] = {
#include "kernels/f32_stride2.inc"
};
#undef CRISP_F32_STRIDE2

typedef struct qs8_stride2_variant {
    const char *isa, *name;
    crisp_qs8_stride2_ukernel_fn fn;
} qs8_stride2_variant;
#define CRISP_QS8_STRIDE2(tier, name) {#tier, #name, name},
static const qs8_stride2_variant qs8_stride2s[] = {
#include "kernels/qs8_stride2.inc"
};
#undef CRISP_QS8_STRIDE2

typedef struct qs8_add_variant {
    const char *isa, *name;
    crisp_qs8_add_ukernel_fn fn;
} qs8_add_variant;
#define CRISP_QS8_ADD(tier, name) {#tier, #name, name},
static const qs8_add_variant qs8_adds[] = {
#include "kernels/qs8_add.inc"
};
#undef CRISP_QS8_ADD

typedef struct quantize_variant {
    const char *isa, *name;
    crisp_f32_quantize_ukernel_fn fn;
} quantize_variant;
#define CRISP_F32_QUANTIZE(tier, name) {#tier, #name, name},
static const quantize_variant quantizes[] = {
#include "kernels/f32_quantize.inc"
};
#undef CRISP_F32_QUANTIZE

typedef struct qs8_dw_variant {
    const char *isa, *name;
    crisp_qs8_dwconv_ukernel_fn fn;
} qs8_dw_variant;
#define CRISP_QS8_DWCONV(tier, name) {#tier, #name, name},
static const qs8_dw_variant qs8_dws[] = {
#include "kernels/qs8_dwconv.inc"
};
#undef CRISP_QS8_DWCONV

typedef struct qs8_dw_direct_variant {
    const char *isa, *name;
    crisp_qs8_dwconv_direct_ukernel_fn fn;
} qs8_dw_direct_variant;
#define CRISP_QS8_DWCONV_DIRECT(tier, name) {#tier, #name, name},
static const qs8_dw_direct_variant qs8_dw_directs[] = {
#include "kernels/qs8_dwconv_direct.inc"
};
#undef CRISP_QS8_DWCONV_DIRECT

typedef struct qs8_dw_hwc_variant {
    const char *isa, *name;
    crisp_qs8_dwconv_hwc_ukernel_fn fn;
    size_t block;
} qs8_dw_hwc_variant;
#define CRISP_QS8_DWCONV_HWC(tier, name, block) {#tier, #name, name, block},
static const qs8_dw_hwc_variant qs8_dw_hwcs[] = {
#include "kernels/qs8_dwconv_hwc.inc"
    {"scalar", "none", NULL, 0}, /* keeps the list non-empty on every architecture */
};
#undef CRISP_QS8_DWCONV_HWC

typedef struct qs8_spmm_variant {
    const char *isa, *name;
    crisp_qs8_spmm_ukernel_fn fn;
    size_t nr;
} qs8_spmm_variant;
#define CRISP_QS8_SPMM(tier, name, nr) {#tier, #name, name, nr},
typedef struct qs8_gemv_variant {
    const char *isa, *name;
    crisp_qs8_gemv_ukernel_fn fn;
    size_t mr;
} qs8_gemv_variant;
#define CRISP_QS8_GEMV(tier, name, mr) {#tier, #name, name, mr},
static const qs8_gemv_variant qs8_gemvs[] = {
#include "kernels/qs8_gemv.inc"
};
#undef CRISP_QS8_GEMV

typedef struct qs8_spmv_variant {
    const char *isa, *name;
    crisp_qs8_spmv_ukernel_fn fn;
} qs8_spmv_variant;
#define CRISP_QS8_SPMV(tier, name) {#tier, #name, name},
static const qs8_spmv_variant qs8_spmvs[] = {
#include "kernels/qs8_spmv.inc"
};
#undef CRISP_QS8_SPMV

static const qs8_spmm_variant qs8_spmms[] = {
#include "kernels/qs8_spmm.inc"
};
#undef CRISP_QS8_SPMM

typedef struct expand24_variant {
    const char *isa, *name;
    crisp_f32_expand24_ukernel_fn fn;
} expand24_variant;
#define CRISP_EXPAND24(tier, name) {#tier, #name, name},
static const expand24_variant expand24s[] = {
#include "kernels/f32_expand24.inc"
};
#undef CRISP_EXPAND24

typedef struct nmv24_variant {
    const char *isa, *name;
    crisp_f32_nmv24_ukernel_fn fn;
} nmv24_variant;
#define CRISP_F32_NMV24(tier, name) {#tier, #name, name},
static const nmv24_variant nmv24s[] = {
#include "kernels/f32_nmv24.inc"
};
#undef CRISP_F32_NMV24

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void test_gemm(const gemm_variant *v, unsigned *rng) {
    for (int trial = 0; trial < 60; trial++) {
        const size_t mr = (size_t)check_rand_int(rng, 1, (int)v->mr);
        const size_t nc = (size_t)check_rand_int(rng, 1, (int)v->nr);
        const size_t kc = (size_t)check_rand_int(rng, 1, 300);
        const size_t as = kc + (size_t)check_rand_int(rng, 0, 3);
        const size_t bs = nc + (size_t)check_rand_int(rng, 0, 40), cs = nc + 5;
        float *a = random_floats(rng, v->mr * as, 1), *b = random_floats(rng, kc * bs, 1);
        float *bias = trial % 3 == 0 ? NULL : random_floats(rng, mr, 1);
        float *c = malloc(mr * cs * sizeof *c);
        for (size_t i = 0; i < mr * cs; i++) c[i] = 12345.0f; /* untouched outside the tile */
        const crisp_minmax_params *p = &acts[trial % 3];
        v->fn(mr, nc, kc, a, as, b, bs, c, cs, bias, p);
        int ok = 1;
        for (size_t i = 0; i < mr && ok; i++)
            for (size_t n = 0; n < cs && ok; n++) {
                if (n >= nc) {
                    ok = c[i * cs + n] == 12345.0f;
                    continue;
                }
                double acc = bias ? bias[i] : 0, mag = fabs(acc);
                for (size_t k = 0; k < kc; k++) {
                    acc += (double)a[i * as + k] * b[k * bs + n];
                    mag += fabs((double)a[i * as + k] * b[k * bs + n]);
                }
                ok = close_enough(c[i * cs + n], clampd(acc, p), mag);
            }
        CHECK(ok, "%s: mr %zu nc %zu kc %zu", v->name, mr, nc, kc);
        free(a), free(b), free(bias), free(c);
    }
}

static void test_spmm(const spmm_variant *v, unsigned *rng) {
    for (int trial = 0; trial < 60; trial++) {
        const size_t rows = (size_t)check_rand_int(rng, 1, 17);
        const size_t nc = (size_t)check_rand_int(rng, 1, (int)v->nr);
        const size_t entries = (size_t)check_rand_int(rng, 0, 200);
        const size_t brows = 300, bs = nc + (size_t)check_rand_int(rng, 0, 40), cs = nc + 3;
        uint32_t *col = malloc((entries ? entries : 1) * sizeof *col);
        for (size_t e = 0; e < entries; e++) col[e] = check_rand(rng) % brows;
        float *w = random_floats(rng, entries * rows, 1), *b = random_floats(rng, brows * bs, 1);
        float *bias = trial % 4 == 0 ? NULL : random_floats(rng, rows, 1);
        float *c = malloc(rows * cs * sizeof *c);
        for (size_t i = 0; i < rows * cs; i++) c[i] = 12345.0f;
        const crisp_minmax_params *p = &acts[trial % 3];
        v->fn(rows, nc, entries, col, w, b, bs, c, cs, bias, p);
        int ok = 1;
        for (size_t r = 0; r < rows && ok; r++)
            for (size_t n = 0; n < cs && ok; n++) {
                if (n >= nc) {
                    ok = c[r * cs + n] == 12345.0f;
                    continue;
                }
                double acc = bias ? bias[r] : 0, mag = fabs(acc);
                for (size_t e = 0; e < entries; e++) {
                    const double t = (double)w[e * rows + r] * b[col[e] * bs + n];
                    acc += t, mag += fabs(t);
                }
                ok = close_enough(c[r * cs + n], clampd(acc, p), mag);
            }
        CHECK(ok, "%s: rows %zu nc %zu entries %zu", v->name, rows, nc, entries);
        free(col), free(w), free(b), free(bias), free(c);
    }
}

static void test_gemv(const gemv_variant *v, unsigned *rng) {
    for (int trial = 0; trial < 60; trial++) {
        const size_t mr = (size_t)check_rand_int(rng, 1, (int)v->mr);
        const size_t kc = (size_t)check_rand_int(rng, 1, 700);
        const size_t ws = kc + (size_t)check_rand_int(rng, 0, 5);
        float *w = random_floats(rng, mr * ws, 1), *x = random_floats(rng, kc, 1);
        float *bias = trial % 3 == 0 ? NULL : random_floats(rng, mr, 1);
        float y[8] = {12345, 12345, 12345, 12345, 12345, 12345, 12345, 12345};
        const crisp_minmax_params *p = &acts[trial % 3];
        v->fn(mr, kc, w, ws, x, y, bias, p);
        int ok = 1;
        for (size_t r = 0; r < 8 && ok; r++) {
            if (r >= mr) {
                ok = y[r] == 12345.0f;
                continue;
            }
            double acc = bias ? bias[r] : 0, mag = fabs(acc);
            for (size_t k = 0; k < kc; k++) {
                acc += (double)w[r * ws + k] * x[k];
                mag += fabs((double)w[r * ws + k] * x[k]);
            }
            ok = close_enough(y[r], clampd(acc, p), mag);
        }
        CHECK(ok, "%s: mr %zu kc %zu", v->name, mr, kc);
        free(w), free(x), free(bias);
    }
}

/* Depthwise 3 x 3 blocks, channels in the lanes, against a double sum, to
 * rounding: 1 .. block channels, stride 1 and 2, paddings 0 .. 2 on each side
 * (asymmetric; input rows and columns the output never reaches), planes from
 * 1 x 1 to 30 x 30, bias or none, every clamp. The block's planes end
 * before an inaccessible page (a read past its last channel faults), and the
 * output has a guard channel after the block that must stay untouched. */
static void test_dw_hwc(const dw_hwc_variant *v, unsigned *rng) {
    for (int trial = 0; trial < 150; trial++) {
        const size_t C = (size_t)check_rand_int(rng, 1, (int)v->block), s = 1 + trial % 2;
        const size_t pt = (size_t)check_rand_int(rng, 0, 2), pl = (size_t)check_rand_int(rng, 0, 2);
        const size_t pb = (size_t)check_rand_int(rng, 0, 2), pr = (size_t)check_rand_int(rng, 0, 2);
        const size_t ih = (size_t)check_rand_int(rng, 1, trial % 5 == 0 ? 30 : 12);
        const size_t iw = (size_t)check_rand_int(rng, 1, trial % 5 == 0 ? 30 : 12);
        if (ih + pt + pb < 3 || iw + pl + pr < 3) continue;
        const size_t oh = (ih + pt + pb - 3) / s + 1, ow = (iw + pl + pr - 3) / s + 1;
        const size_t plane = ih * iw, oplane = oh * ow;
        float *x = guarded_alloc(C * plane * sizeof *x), *w = random_floats(rng, C * 9, 1);
        for (size_t i = 0; i < C * plane; i++) x[i] = 2 * check_rand_float(rng);
        float *bias = check_rand_int(rng, 0, 2) == 0 ? NULL : random_floats(rng, C, 1);
        float *y = malloc((C + 1) * oplane * sizeof *y);
        float *tile = malloc(crisp_dwconv_hwc_tile_floats(oh, ow, s, v->block) * sizeof *tile);
        for (size_t i = 0; i < (C + 1) * oplane; i++) y[i] = 12345.0f;
        /* A tile left from another layer: any cell the kernel reads unset is NaN. */
        for (size_t i = 0; i < crisp_dwconv_hwc_tile_floats(oh, ow, s, v->block); i++) tile[i] = NAN;
        const crisp_minmax_params *p = &acts[check_rand_int(rng, 0, 2)];
        const crisp_dwconv_hwc_block blk = {x, w, bias, y, tile, C, ih, iw, pt, pl, s, oh, ow};
        v->fn(&blk, p);
        int ok = 1;
        size_t bad = 0;
        for (size_t c = 0; c < C && ok; c++)
            for (size_t oy = 0; oy < oh && ok; oy++)
                for (size_t ox = 0; ox < ow && ok; ox++) {
                    double acc = bias ? bias[c] : 0, mag = fabs(acc);
                    for (size_t ky = 0; ky < 3; ky++)
                        for (size_t kx = 0; kx < 3; kx++) {
                            const ptrdiff_t iy = (ptrdiff_t)(oy * s + ky) - (ptrdiff_t)pt;
                            const ptrdiff_t ix = (ptrdiff_t)(ox * s + kx) - (ptrdiff_t)pl;
                            if (iy < 0 || ix < 0 || iy >= (ptrdiff_t)ih || ix >= (ptrdiff_t)iw) continue;
                            const double t = (double)w[c * 9 + ky * 3 + kx] * x[c * plane + (size_t)iy * iw + (size_t)ix];
                            acc += t, mag += fabs(t);
                        }
                    bad = (c * oh + oy) * ow + ox;
                    ok = close_enough(y[bad], clampd(acc, p), mag);
                }
        for (size_t i = C * oplane; i < (C + 1) * oplane && ok; i++) ok = y[i] == 12345.0f;
        CHECK(ok, "%s: C %zu s %zu %zux%zu pad %zu,%zu,%zu,%zu -> %zux%zu: output %zu", v->name, C, s,
              ih, iw, pt, pl, pb, pr, oh, ow, bad);
        guarded_free(x, C * plane * sizeof *x), free(w), free(bias), free(y), free(tile);
    }
}

/* float32 hybrid linear runs at batch 1 against a double sum, to rounding:
 * run heights the vector paths take (1, 2, 4, 8, 16) and others (3, 5, 12,
 * 17), column counts around the gather widths (0 included), columns anywhere
 * in x (repeats allowed), bias or none, every clamp; no read past the run's
 * columns, weights or x, nothing written past the run. */
static void test_spmv(const spmv_variant *v, unsigned *rng) {
    static const size_t heights[] = {1, 2, 4, 8, 16, 3, 5, 12, 17};
    for (int trial = 0; trial < 180; trial++) {
        const size_t rows = heights[trial % 9];
        const size_t entries = (size_t)check_rand_int(rng, 0, trial % 5 == 0 ? 300 : 40);
        const size_t K = (size_t)check_rand_int(rng, 1, 900);
        /* Columns, weights and x end before an inaccessible page: a read past
         * the run (a gather lane, a masked load) faults. */
        const size_t nw = entries * rows;
        uint32_t *column = guarded_alloc((entries ? entries : 1) * sizeof *column);
        float *w = guarded_alloc((nw ? nw : 1) * sizeof *w), *x = guarded_alloc(K * sizeof *x);
        for (size_t e = 0; e < entries; e++) column[e] = (uint32_t)check_rand_int(rng, 0, (int)K - 1);
        for (size_t i = 0; i < nw; i++) w[i] = check_rand_float(rng);
        for (size_t k = 0; k < K; k++) x[k] = 2 * check_rand_float(rng);
        /* Bias and clamp drawn apart from the height, so every path meets both. */
        float *bias = check_rand_int(rng, 0, 2) == 0 ? NULL : random_floats(rng, rows, 1);
        float y[18];
        for (size_t r = 0; r < 18; r++) y[r] = 12345.0f;
        const crisp_minmax_params *p = &acts[check_rand_int(rng, 0, 2)];
        v->fn(rows, entries, column, w, x, y, bias, p);
        int ok = y[rows] == 12345.0f;
        for (size_t r = 0; r < rows && ok; r++) {
            double acc = bias ? bias[r] : 0, mag = fabs(acc);
            for (size_t e = 0; e < entries; e++) {
                acc += (double)w[e * rows + r] * x[column[e]];
                mag += fabs((double)w[e * rows + r] * x[column[e]]);
            }
            ok = close_enough(y[r], clampd(acc, p), mag);
        }
        CHECK(ok, "%s: rows %zu entries %zu K %zu", v->name, rows, entries, K);
        guarded_free(column, (entries ? entries : 1) * sizeof *column);
        guarded_free(w, (nw ? nw : 1) * sizeof *w), guarded_free(x, K * sizeof *x), free(bias);
    }
}

/* An int8 value drawn with its edges (-128, 127, 0, -1) likely. */
static int32_t edgy_q(unsigned *rng, int lo) {
    static const int32_t edges[4] = {-128, 127, 0, -1};
    const int32_t v = check_rand_int(rng, 0, 5) == 0 ? edges[check_rand(rng) % 4]
                                                     : check_rand_int(rng, lo, 127);
    return v < lo ? lo : v;
}

/* crisp_qs8_requant.fits_int32 as src/pack.c sets it for these channels,
 * except in every fourth trial, which asks for the clamp-first form (the
 * kernels must be exact either way). */
static int32_t fits_as_loaded(int trial, size_t rows, const int32_t *bias,
                              const uint64_t *abs_sum, const float *mult) {
    int fits = trial % 4 != 3;
    for (size_t r = 0; r < rows; r++)
        fits = fits && crisp_qs8_channel_fits_int32(bias[r], abs_sum[r], mult[r]);
    return fits;
}

/* int8 runs, bitwise against the reference's arithmetic (the textbook int32
 * sum and crisp_qs8_requantize): random rows, entries (odd counts, partial
 * groups of four), pixels (partial chunks), zero points at the edges,
 * per-channel multipliers wide enough to saturate at both ends, narrowed
 * output ranges. B rows end exactly at nc + slack so a read past nc shows
 * under ASan. */
static void test_qs8_spmm(const qs8_spmm_variant *v, unsigned *rng) {
    for (int trial = 0; trial < 300; trial++) {
        const size_t rows = (size_t)check_rand_int(rng, 1, 9);
        const size_t nc = (size_t)check_rand_int(rng, 1, (int)v->nr);
        const size_t entries = (size_t)check_rand_int(rng, 0, trial % 5 == 0 ? 600 : 40);
        const size_t brows = 1 + (size_t)check_rand_int(rng, 0, 300);
        const size_t bs = nc + (size_t)check_rand_int(rng, 0, 3), cs = nc + 3;
        const size_t groups = (entries + 3) / 4;
        uint32_t *col = malloc((entries ? entries : 1) * sizeof *col);
        for (size_t e = 0; e < entries; e++) col[e] = check_rand(rng) % brows;
        int8_t *w = calloc(groups * 4 * rows + 1, 1), *b = malloc(brows * bs);
        int32_t *bias = malloc(rows * 4), *wsum = calloc(rows, 4);
        uint64_t *asum = calloc(rows, sizeof *asum);
        float *mult = malloc(rows * 4);
        /* Trials at the edge of fitting (trial % 10 == 7) take the largest
         * sums the bound allows: q_x - z_x = 255 everywhere (z_x = -128, B =
         * 127) and each row's weights and bias of one sign. */
        const int edge = trial % 10 == 7;
        for (size_t e = 0; e < entries; e++)
            for (size_t r = 0; r < rows; r++) {
                int8_t q = (int8_t)edgy_q(rng, -127);
                if (edge) q = (int8_t)(r % 2 ? -abs(q) : abs(q));
                w[crisp_qs8_weight_index(e, r, rows)] = q;
                wsum[r] += q, asum[r] += (uint64_t)abs(q);
            }
        for (size_t i = 0; i < brows * bs; i++) b[i] = edge ? 127 : (int8_t)edgy_q(rng, -128);
        for (size_t r = 0; r < rows; r++) {
            bias[r] = check_rand_int(rng, -1000000, 1000000);
            if (edge) bias[r] = r % 2 ? -abs(bias[r]) : abs(bias[r]);
            /* 2^-20 .. 2^-4 per channel: from unsaturated to saturating. */
            mult[r] = ldexpf(1.0f + check_rand_float(rng) * 0.5f, -check_rand_int(rng, 4, 20));
            /* Some channels at the edge of fitting: products up to 2^30. */
            if (edge)
                mult[r] = (float)(0.999 * 1073741824.0 /
                                  (fabs((double)bias[r]) + 255.0 * (double)asum[r] + 1.0));
            /* Some products past int32: no fit, the float clamp. */
            if (trial % 10 == 9 && r % 2 == 1) mult[r] = ldexpf(1.0f, check_rand_int(rng, 12, 40));
        }
        crisp_qs8_requant q = {edge ? -128 : edgy_q(rng, -128), edgy_q(rng, -128), -128, 127,
                               bias, mult, wsum, fits_as_loaded(trial, rows, bias, asum, mult)};
        if (trial % 3 == 1) q.output_min = q.output_zero_point; /* relu */
        if (trial % 3 == 2)
            q.output_min = q.output_zero_point,
            q.output_max = q.output_zero_point + 40 < 127 ? q.output_zero_point + 40 : 127;
        int8_t *c = malloc(rows * cs);
        memset(c, 0x5A, rows * cs);
        v->fn(rows, nc, entries, col, w, b, bs, c, cs, &q);
        int ok = 1;
        for (size_t r = 0; r < rows && ok; r++)
            for (size_t n = 0; n < cs && ok; n++) {
                if (n >= nc) {
                    ok = c[r * cs + n] == 0x5A;
                    continue;
                }
                int32_t acc = bias[r];
                for (size_t e = 0; e < entries; e++)
                    acc += ((int32_t)b[col[e] * bs + n] - q.input_zero_point) *
                           w[crisp_qs8_weight_index(e, r, rows)];
                ok = c[r * cs + n] == crisp_qs8_requantize((float)acc * mult[r],
                                                           q.output_zero_point, q.output_min,
                                                           q.output_max);
            }
        CHECK(ok, "%s: rows %zu nc %zu entries %zu z_x %d z_y %d fits %d", v->name, rows, nc,
              entries, (int)q.input_zero_point, (int)q.output_zero_point, (int)q.fits_int32);
        free(col), free(w), free(b), free(bias), free(wsum), free(asum), free(mult), free(c);
    }
}

/* int8 dense GEMV calls, bitwise against the reference kernel
 * (crisp_qs8_linear__ref over the same rows): K odd, below the vector
 * widths and off multiples of 4 and 64, mr below MR, zero points at the
 * edges, weights and x with their edge values likely and, in some calls,
 * all at +-127 / -128 so the int32 sums reach their extremes (one call has
 * 255 x sum |q_w| near INT32_MAX), per-channel multipliers from unsaturated
 * to saturating, relu and relu6 ranges. x and the last weight row end their
 * buffers, so a read past kc shows under ASan; y past mr stays untouched. */
static void test_qs8_gemv(const qs8_gemv_variant *v, unsigned *rng) {
    static const size_t sizes[] = {1, 3, 4, 5, 15, 16, 17, 31, 63, 64, 65, 127, 200, 1001};
    for (int trial = 0; trial < 200; trial++) {
        const size_t mr = (size_t)check_rand_int(rng, 1, (int)v->mr);
        const int huge = trial == 28; /* 255 x 127 x 66000 ~ 2^31 */
        const size_t kc = trial < 28 ? sizes[trial % 14]
                          : huge     ? 66000
                                     : (size_t)check_rand_int(rng, 1, 2100);
        const int extreme = huge || trial % 7 == 3;
        int8_t *x = malloc(kc), *w = malloc(mr * kc);
        int32_t bias[8], wsum[8] = {0};
        float mult[8];
        for (size_t k = 0; k < kc; k++)
            x[k] = extreme ? (int8_t)(trial % 2 ? 127 : -128) : (int8_t)edgy_q(rng, -128);
        for (size_t r = 0; r < mr; r++) {
            for (size_t k = 0; k < kc; k++) {
                const int8_t q = extreme ? (int8_t)(r % 2 ? -127 : 127) : (int8_t)edgy_q(rng, -128);
                w[r * kc + k] = q;
                wsum[r] += q;
            }
            bias[r] = huge ? 0 : check_rand_int(rng, -1000000, 1000000);
            /* 2^-30 .. 2^-4 per channel: from unsaturated to saturating. */
            mult[r] = ldexpf(1.0f + check_rand_float(rng) * 0.5f,
                             -check_rand_int(rng, 4, huge ? 30 : 20));
        }
        crisp_qs8_linear_params p = {kc, mr, {edgy_q(rng, -128), edgy_q(rng, -128), -128, 127,
                                              bias, mult, wsum, 0}}; /* not read */
        crisp_qs8_requant *q = &p.q;
        if (huge) q->input_zero_point = 127; /* x - z_x = -255 throughout */
        if (trial % 3 == 1) q->output_min = q->output_zero_point; /* relu */
        if (trial % 3 == 2)                                         /* relu6 */
            q->output_min = q->output_zero_point,
            q->output_max = q->output_zero_point + 40 < 127 ? q->output_zero_point + 40 : 127;
        int8_t want[8], got[8];
        crisp_qs8_linear__ref(&p, x, w, want, 0, mr);
        memset(got, 0x5A, sizeof got);
        v->fn(mr, kc, w, kc, x, got, q);
        int ok = memcmp(got, want, mr) == 0;
        for (size_t r = mr; r < 8; r++) ok &= got[r] == 0x5A;
        CHECK(ok, "%s: mr %zu kc %zu z_x %d z_y %d range %d..%d", v->name, mr, kc,
              (int)q->input_zero_point, (int)q->output_zero_point, (int)q->output_min,
              (int)q->output_max);
        free(x), free(w);
    }
}

/* int8 hybrid linear runs at batch 1, bitwise against the reference kernel
 * (crisp_qs8_linear_hybrid__ref over a one-run layer): rows 1 to 16 (the
 * vectorised heights and the others) and a few taller, entries odd, below
 * and off the vector steps (partial last groups) and up to 1100, zero
 * points at the edges, weights and x at their edges, and in some calls all
 * at +-127 / -128 (one run with 255 x sum |q_w| near INT32_MAX), per-channel
 * multipliers from unsaturated to saturating, relu and relu6 ranges. The
 * weight stream and x (plus the slack) end their buffers, so a read past
 * them shows under ASan; y past the run stays untouched. */
static void test_qs8_spmv(const qs8_spmv_variant *v, unsigned *rng) {
    static const size_t sizes[] = {0, 1, 3, 4, 5, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 129};
    for (int trial = 0; trial < 400; trial++) {
        const size_t rows = trial % 25 == 24 ? (size_t)check_rand_int(rng, 17, 40)
                                             : (size_t)(trial % 16) + 1;
        const int huge = trial == 7 || trial == 40; /* 255 x 127 x 66000 ~ 2^31 */
        const size_t entries = huge        ? 66000
                               : trial < 96 ? sizes[(trial / 6) % 16]
                                           : (size_t)check_rand_int(rng, 0, trial % 4 ? 300 : 1100);
        const int extreme = huge || trial % 7 == 3;
        const size_t k = entries + (size_t)check_rand_int(rng, 1, 300);
        const size_t groups = (entries + 3) / 4, nw = groups * 4 * rows;
        uint32_t *col = malloc((entries ? entries : 1) * sizeof *col);
        for (size_t e = 0; e < entries; e++) col[e] = check_rand(rng) % (uint32_t)k;
        if (trial % 3 == 0 && entries > 0) col[entries - 1] = (uint32_t)k - 1; /* x's last byte */
        int8_t *x = malloc(k + CRISP_QS8_SPMV_SLACK), *w = calloc(nw ? nw : 1, 1);
        for (size_t i = 0; i < k + CRISP_QS8_SPMV_SLACK; i++)
            x[i] = extreme ? (int8_t)(trial % 2 ? 127 : -128) : (int8_t)edgy_q(rng, -128);
        int32_t *bias = malloc(rows * 4), *wsum = calloc(rows, 4);
        float *mult = malloc(rows * 4);
        for (size_t r = 0; r < rows; r++) {
            for (size_t e = 0; e < entries; e++) {
                const int8_t q = extreme ? (int8_t)(r % 2 ? -127 : 127) : (int8_t)edgy_q(rng, -127);
                w[crisp_qs8_weight_index(e, r, rows)] = q;
                wsum[r] += q;
            }
            bias[r] = huge ? 0 : check_rand_int(rng, -1000000, 1000000);
            /* 2^-30 .. 2^-4 per channel: from unsaturated to saturating. */
            mult[r] = ldexpf(1.0f + check_rand_float(rng) * 0.5f,
                             -check_rand_int(rng, 4, huge ? 30 : 20));
        }
        crisp_qs8_linear_params p = {k, rows, {edgy_q(rng, -128), edgy_q(rng, -128), -128, 127,
                                               bias, mult, wsum, 0}}; /* not read */
        crisp_qs8_requant *q = &p.q;
        if (huge) q->input_zero_point = trial % 2 ? -128 : 127; /* |x - z_x| = 255 throughout */
        if (trial % 3 == 1) q->output_min = q->output_zero_point; /* relu */
        if (trial % 3 == 2)                                         /* relu6 */
            q->output_min = q->output_zero_point,
            q->output_max = q->output_zero_point + 40 < 127 ? q->output_zero_point + 40 : 127;
        const uint32_t run_row[2] = {0, (uint32_t)rows}, run_segment[2] = {0, 1};
        const uint32_t segment_tap[1] = {0}, segment_entry[2] = {0, (uint32_t)entries};
        const size_t run_weight[1] = {0};
        const crisp_sparse_weights sw = {1, run_row, run_segment, segment_tap, segment_entry,
                                         col, run_weight, NULL, w};
        int8_t *want = malloc(rows), *got = malloc(rows + 8);
        crisp_qs8_linear_hybrid__ref(&p, &sw, x, want, 0, 1);
        memset(got, 0x5A, rows + 8);
        v->fn(rows, entries, col, w, x, got, q);
        int ok = memcmp(got, want, rows) == 0;
        for (size_t r = rows; r < rows + 8; r++) ok &= got[r] == 0x5A;
        CHECK(ok, "%s: rows %zu entries %zu z_x %d z_y %d range %d..%d", v->name, rows, entries,
              (int)q->input_zero_point, (int)q->output_zero_point, (int)q->output_min,
              (int)q->output_max);
        free(col), free(x), free(w), free(bias), free(wsum), free(mult), free(want), free(got);
    }
}

/* float32 addition against the reference kernel: lengths around the vector
 * widths and unroll steps, clamps that cut (relu, relu6-like, none), inputs
 * offset from 64-byte alignment, and NaN, infinities (inf - inf) and signed
 * zeros among the values. Bitwise equal; nothing written past n. */
static void test_f32_add(const f32_add_variant *v, unsigned *rng) {
    for (int trial = 0; trial < 200; trial++) {
        const size_t n = (size_t)check_rand_int(rng, 0, trial % 4 == 0 ? 300 : 70);
        /* The inputs start `off` floats into their buffers (off 64-byte alignment)
         * and their n-th element is the last before an inaccessible page: a read
         * past it faults. */
        const size_t off = (size_t)check_rand_int(rng, 0, 15), len = n + off;
        float *a = guarded_alloc((len ? len : 1) * 4), *b = guarded_alloc((len ? len : 1) * 4);
        float *got = malloc((n + 17) * 4), *want = malloc((n + 1) * 4);
        for (size_t i = 0; i < len; i++) {
            a[i] = check_rand_float(rng) * 4, b[i] = check_rand_float(rng) * 4;
            const int k = check_rand_int(rng, 0, 40);
            if (k == 0) a[i] = NAN; /* one NaN input: two NaNs may meet in either order */
            if (k == 1) a[i] = INFINITY, b[i] = -INFINITY;
            if (k == 2) a[i] = -0.0f, b[i] = -0.0f;
            if (k == 3) b[i] = INFINITY;
        }
        for (size_t i = 0; i < n + 17; i++) got[i] = 12345.0f;
        crisp_minmax_params p = {-INFINITY, INFINITY};
        if (trial % 3 == 1) p.output_min = 0.0f;
        if (trial % 3 == 2) p.output_min = 0.0f, p.output_max = 6.0f;
        v->fn(n, a + off, b + off, got, &p);
        crisp_f32_add__ref(n, a + off, b + off, want, &p);
        size_t bad = n;
        for (size_t i = 0; i < n && bad == n; i++)
            if (memcmp(&got[i], &want[i], 4) != 0) bad = i;
        CHECK(bad == n, "%s: n %zu, element %zu: %g, reference %g", v->name, n, bad,
              bad < n ? (double)got[bad] : 0.0, bad < n ? (double)want[bad] : 0.0);
        CHECK(got[n] == 12345.0f, "%s: n %zu: wrote past the end", v->name, n);
        guarded_free(a, (len ? len : 1) * 4), guarded_free(b, (len ? len : 1) * 4);
        free(got), free(want);
    }
}

/* Every second float: lengths around the vector width, the source ending at
 * src[2 (n - 1)] before an inaccessible page (a read past it faults), nothing
 * written past n. */
static void test_stride2(const stride2_variant *v, unsigned *rng) {
    for (size_t n = 0; n <= 70; n++) {
        const size_t len = n ? 2 * (n - 1) + 1 : 1;
        float *src = guarded_alloc(len * sizeof *src), *dst = malloc((n + 1) * sizeof *dst);
        for (size_t i = 0; i < len; i++) src[i] = check_rand_float(rng);
        dst[n] = 777.0f;
        v->fn(n, src, dst);
        size_t bad = n;
        for (size_t j = 0; j < n && bad == n; j++)
            if (memcmp(&dst[j], &src[2 * j], sizeof *dst) != 0) bad = j;
        CHECK(bad == n && dst[n] == 777.0f, "%s: n %zu: element %zu wrong or wrote past n", v->name,
              n, bad);
        guarded_free(src, len * sizeof *src), free(dst);
    }
}

/* Every second byte, as test_stride2: lengths around 16, 32 and 64 (and
 * twice), the source ending at its last byte read. */
static void test_qs8_stride2(const qs8_stride2_variant *v, unsigned *rng) {
    for (size_t n = 0; n <= 200; n++) {
        const size_t len = n ? 2 * (n - 1) + 1 : 1;
        int8_t *src = guarded_alloc(len), *dst = malloc(n + 1);
        for (size_t i = 0; i < len; i++) src[i] = (int8_t)check_rand_int(rng, -128, 127);
        dst[n] = 77;
        v->fn(n, src, dst);
        size_t bad = n;
        for (size_t j = 0; j < n && bad == n; j++)
            if (dst[j] != src[2 * j]) bad = j;
        CHECK(bad == n && dst[n] == 77, "%s: n %zu: byte %zu wrong or wrote past n", v->name, n,
              bad);
        guarded_free(src, len), free(dst);
    }
}

/* int8 addition against the reference kernel, bitwise: lengths around the
 * vector widths, zero points at the edges, narrowed output ranges, and
 * scales so large that sums overflow to infinity and NaN (the clamp must
 * then give what the reference's comparisons give). */
static void test_qs8_add(const qs8_add_variant *v, unsigned *rng) {
    for (int trial = 0; trial < 200; trial++) {
        const size_t n = (size_t)check_rand_int(rng, 0, trial % 4 == 0 ? 300 : 40);
        int8_t *a = malloc(n + 1), *b = malloc(n + 1), *got = malloc(n + 1), *want = malloc(n + 1);
        for (size_t i = 0; i < n; i++) a[i] = (int8_t)edgy_q(rng, -128), b[i] = (int8_t)edgy_q(rng, -128);
        crisp_qs8_add_params p = {0.001f + check_rand_float(rng) * check_rand_float(rng),
                                  0.001f + check_rand_float(rng) * check_rand_float(rng),
                                  0.001f + fabsf(check_rand_float(rng)) * 0.2f,
                                  edgy_q(rng, -128), edgy_q(rng, -128), edgy_q(rng, -128), -128,
                                  127, 0.0f, 0};
        p.a_scale = fabsf(p.a_scale), p.b_scale = fabsf(p.b_scale);
        if (trial % 5 == 1) p.output_min = p.output_zero_point;
        if (trial % 7 == 3) p.a_scale = 3e38f, p.b_scale = 3e38f, p.output_scale = 1e-3f;
        if (trial % 2 == 0) crisp_qs8_add_prepare(&p); /* else the division path */
        v->fn(n, a, b, got, &p);
        crisp_qs8_add__ref(n, a, b, want, &p);
        CHECK(n == 0 || memcmp(got, want, n) == 0, "%s: n %zu scales %g %g %g z %d %d %d",
              v->name, n, (double)p.a_scale, (double)p.b_scale, (double)p.output_scale,
              (int)p.a_zero_point, (int)p.b_zero_point, (int)p.output_zero_point);
        free(a), free(b), free(got), free(want);
    }
}

/* The reciprocal path over every input pair: where crisp_qs8_add_prepare
 * allows it, the variant must give the reference's 65536 outputs; the check
 * must allow it for common scales (else the path is dead) and refuse it
 * for some (else it checks nothing: the multiply does round differently). */
static void test_qs8_add_inverse(const qs8_add_variant *v) {
    enum { N = 256 * 256 };
    int8_t *a = malloc(N), *b = malloc(N), *got = malloc(N), *want = malloc(N);
    for (int i = 0; i < N; i++) a[i] = (int8_t)(i / 256 - 128), b[i] = (int8_t)(i % 256 - 128);
    unsigned rng = 12345; /* its own sequence: the cases do not depend on other tests */
    int allowed = 0, refused = 0;
    /* 24 random scale sets, then more until one is refused (rarer), each
     * compared over all pairs; the search only runs the check. */
    for (int trial = 0; trial < 24 || (refused == 0 && trial < 2000); trial++) {
        crisp_qs8_add_params p = {0.002f + 0.05f * fabsf(check_rand_float(&rng)),
                                  0.002f + 0.05f * fabsf(check_rand_float(&rng)),
                                  0.002f + 0.08f * fabsf(check_rand_float(&rng)),
                                  edgy_q(&rng, -128), edgy_q(&rng, -128), edgy_q(&rng, -128), -128,
                                  127, 0.0f, 0};
        crisp_qs8_add_prepare(&p);
        allowed += p.by_inverse, refused += !p.by_inverse;
        if (trial >= 24 && p.by_inverse) continue;
        v->fn(N, a, b, got, &p);
        crisp_qs8_add__ref(N, a, b, want, &p);
        CHECK(memcmp(got, want, N) == 0, "%s (by_inverse %d): scales %g %g %g z %d %d %d", v->name,
              (int)p.by_inverse, (double)p.a_scale, (double)p.b_scale, (double)p.output_scale,
              (int)p.a_zero_point, (int)p.b_zero_point, (int)p.output_zero_point);
    }
    CHECK(allowed > 0 && refused > 0, "%s: reciprocal allowed %d, refused %d", v->name, allowed,
          refused);
    printf("%s: the reciprocal was exact for %d of %d scale sets\n", v->name, allowed,
           allowed + refused);
    free(a), free(b), free(got), free(want);
}

/* int8 depthwise: a phase plane of centred int16 values built here from a
 * random padded image (|q_x - z_x| <= 255), against the textbook sum and
 * crisp_qs8_requantize, bitwise. */
static void test_qs8_dw(const qs8_dw_variant *v, unsigned *rng) {
    for (int trial = 0; trial < 80; trial++) {
        const size_t s = (size_t)check_rand_int(rng, 1, 3), sh = (size_t)check_rand_int(rng, 1, 3);
        const size_t kh = (size_t)check_rand_int(rng, 1, 5), kw = (size_t)check_rand_int(rng, 1, 5);
        const size_t dh = (size_t)check_rand_int(rng, 1, 2), dw = (size_t)check_rand_int(rng, 1, 2);
        const size_t oh = (size_t)check_rand_int(rng, 1, 9), ow = (size_t)check_rand_int(rng, 1, 150);
        const size_t rows = (oh - 1) * sh + (kh - 1) * dh + 1, cols = (ow - 1) * s + (kw - 1) * dw + 1;
        const size_t stride = (cols + s - 1) / s;
        int16_t *padded = malloc(rows * cols * sizeof *padded);
        for (size_t i = 0; i < rows * cols; i++)
            padded[i] = (int16_t)(trial % 4 == 0 ? (check_rand_int(rng, 0, 1) ? 255 : -255)
                                                 : check_rand_int(rng, -255, 255));
        int16_t *phases = calloc(s * rows * stride + CRISP_QS8_DWCONV_SLACK, sizeof *phases);
        for (size_t r = 0; r < rows; r++)
            for (size_t x = 0; x < cols; x++)
                phases[(x % s) * rows * stride + r * stride + x / s] = padded[r * cols + x];
        const crisp_qs8_dwconv_plane pl = {phases, rows * stride, stride, sh, s, dh, dw, kh, kw,
                                           oh, ow};
        int8_t w[25];
        for (size_t i = 0; i < kh * kw; i++) w[i] = (int8_t)edgy_q(rng, -127);
        const int32_t bias = check_rand_int(rng, -100000, 100000);
        const float mult = ldexpf(1.0f + check_rand_float(rng) * 0.5f, -check_rand_int(rng, 2, 14));
        uint64_t asum = 0;
        for (size_t i = 0; i < kh * kw; i++) asum += (uint64_t)abs(w[i]);
        crisp_qs8_requant q = {0, edgy_q(rng, -128), -128, 127, NULL, NULL, NULL,
                               fits_as_loaded(trial, 1, &bias, &asum, &mult)};
        if (trial % 3 == 1) q.output_min = q.output_zero_point;
        int8_t *out = malloc(oh * ow);
        v->fn(&pl, w, bias, mult, out, &q);
        int ok = 1;
        for (size_t oy = 0; oy < oh && ok; oy++)
            for (size_t ox = 0; ox < ow && ok; ox++) {
                int32_t acc = bias;
                for (size_t ky = 0; ky < kh; ky++)
                    for (size_t kx = 0; kx < kw; kx++)
                        acc += w[ky * kw + kx] *
                               padded[(oy * sh + ky * dh) * cols + ox * s + kx * dw];
                ok = out[oy * ow + ox] == crisp_qs8_requantize((float)acc * mult,
                                                               q.output_zero_point,
                                                               q.output_min, q.output_max);
            }
        CHECK(ok, "%s: s %zu/%zu k %zux%zu d %zu/%zu out %zux%zu", v->name, sh, s, kh, kw, dh,
              dw, oh, ow);
        free(padded), free(phases), free(out);
    }
}

/* The in-place int8 depthwise kernels read the plane where it lies: an
 * allocation of exactly ih x iw bytes (ASan sees any read outside it, the
 * masked lanes' included), or the plane between margins of z_x as the
 * driver copies small planes, with the edge window and the mask table
 * allocated exactly too. Against the textbook int32 sum over the taps inside
 * the image and crisp_qs8_requantize, bitwise: strides 1 and 2, windows up
 * to 5 x 4, paddings up to the window, widths around the chunk sizes, zero
 * points and weights at their edges, and saturating sums. */
static void test_qs8_dw_direct(const qs8_dw_direct_variant *v, unsigned *rng) {
    enum { GUARD = 40 };
    for (int trial = 0; trial < 240; trial++) {
        const size_t s = (size_t)(trial % 4 < 2 ? 1 : 2);
        const size_t kh = trial % 2 ? 3 : (size_t)check_rand_int(rng, 1, 5);
        const size_t kw = trial % 2 ? 3 : (size_t)check_rand_int(rng, 1, 4);
        const size_t dh = trial % 5 == 4 ? 2 : 1;
        const size_t ih = dh * (kh - 1) + (size_t)check_rand_int(rng, 1, trial % 3 ? 16 : 9);
        const size_t iw = (kw - 1) + (size_t)check_rand_int(rng, 1, trial % 3 ? 24 : 140);
        size_t pt = (size_t)check_rand_int(rng, 0, (int)(dh * (kh - 1)));
        size_t pb = (size_t)check_rand_int(rng, 0, (int)(dh * (kh - 1)));
        size_t pl = (size_t)check_rand_int(rng, 0, (int)(kw - 1));
        size_t pr = (size_t)check_rand_int(rng, 0, (int)(kw - 1 - pl));
        if (trial % 3 == 0) pt = dh * (kh - 1) / 2, pb = dh * (kh - 1) - pt;
        if (trial % 3 == 0) pl = (kw - 1) / 2, pr = kw - 1 - pl;
        const size_t oh = (ih + pt + pb - dh * (kh - 1) - 1) / s + 1;
        const size_t ow = (iw + pl + pr - kw) / s + 1;
        if (!crisp_qs8_dwconv_direct_fits(s, s, kh, kw, 1, ow, iw)) continue;
        const int extreme = trial % 7 == 5;
        /* At the edge of fitting (trial % 10 == 3): the largest sums the
         * bound allows inside the image, q_x - z_x = 255 and weights and
         * bias of one sign. */
        const int at_edge = trial % 10 == 3;
        crisp_qs8_requant q = {at_edge ? -128 : edgy_q(rng, -128), edgy_q(rng, -128), -128, 127,
                               NULL, NULL, NULL, 0};
        if (trial % 3 == 1) q.output_min = q.output_zero_point;
        if (trial % 5 == 2) q.output_max = q.output_zero_point + 40 < 127 ? q.output_zero_point + 40 : 127;
        const int8_t zx = (int8_t)q.input_zero_point;
        const size_t before = trial % 3 == 2 ? (size_t)check_rand_int(rng, 0, (int)(3 * iw)) : 0;
        const size_t after = trial % 3 == 2 ? (size_t)check_rand_int(rng, 0, (int)(3 * iw + 160)) : 0;
        int8_t *margined = malloc(before + ih * iw + after); /* exactly: ASan sees over-reads */
        memset(margined, zx, before + ih * iw + after);
        int8_t *x = margined + before;
        for (size_t i = 0; i < ih * iw; i++)
            x[i] = at_edge ? 127 : extreme ? (int8_t)(trial % 2 ? 127 : -128) : (int8_t)edgy_q(rng, -128);
        int8_t w[20];
        for (size_t i = 0; i < kh * kw; i++)
            w[i] = extreme ? (int8_t)(i % 2 ? 127 : -127) : (int8_t)edgy_q(rng, -127);
        if (at_edge)
            for (size_t i = 0; i < kh * kw; i++) w[i] = (int8_t)(trial % 20 == 3 ? -abs(w[i]) : abs(w[i]));
        int32_t bias = extreme ? check_rand_int(rng, -4000000, 4000000)
                               : check_rand_int(rng, -100000, 100000);
        if (at_edge) bias = trial % 20 == 3 ? -abs(bias) : abs(bias);
        uint64_t asum = 0;
        for (size_t i = 0; i < kh * kw; i++) asum += (uint64_t)abs(w[i]);
        /* Some at the edge of fitting (products up to 2^30), the rest from
         * unsaturated to saturating. */
        const float mult =
            at_edge ? (float)(0.999 * 1073741824.0 / (fabs((double)bias) + 255.0 * (double)asum + 1.0))
            : trial % 10 == 9 ? ldexpf(1.0f, check_rand_int(rng, 12, 40)) /* past int32 */
            : extreme       ? ldexpf(1.0f + check_rand_float(rng) * 0.5f, -check_rand_int(rng, 0, 6))
                            : ldexpf(1.0f + check_rand_float(rng) * 0.5f, -check_rand_int(rng, 2, 14));
        q.fits_int32 = fits_as_loaded(trial, 1, &bias, &asum, &mult);
        uint32_t *masks = malloc(crisp_qs8_dwconv_mask_entries(iw) * sizeof *masks);
        int8_t *edge = malloc(crisp_qs8_dwconv_edge_bytes(s, kh, dh, iw));
        const crisp_qs8_dwconv_image im = {x,  before, after, masks, edge, ih, iw, pt, pl,
                                           s,  dh,     kh,    kw,    oh,   ow};
        crisp_qs8_dwconv_quad_masks(&im, masks);
        int8_t *out = malloc(oh * ow + GUARD);
        memset(out, 0x5a, oh * ow + GUARD);
        int32_t wsum = 0;
        for (size_t i = 0; i < kh * kw; i++) wsum += w[i];
        v->fn(&im, w, bias, wsum, mult, out, &q);
        int ok = 1;
        size_t bad = 0;
        for (size_t oy = 0; oy < oh && ok; oy++)
            for (size_t ox = 0; ox < ow && ok; ox++) {
                int32_t acc = bias;
                for (size_t ky = 0; ky < kh; ky++)
                    for (size_t kx = 0; kx < kw; kx++) {
                        const ptrdiff_t iy = (ptrdiff_t)(oy * s + ky * dh) - (ptrdiff_t)pt;
                        const ptrdiff_t ix = (ptrdiff_t)(ox * s + kx) - (ptrdiff_t)pl;
                        if (iy >= 0 && iy < (ptrdiff_t)ih && ix >= 0 && ix < (ptrdiff_t)iw)
                            acc += w[ky * kw + kx] * (x[(size_t)iy * iw + (size_t)ix] - zx);
                    }
                ok = out[oy * ow + ox] == crisp_qs8_requantize((float)acc * mult,
                                                               q.output_zero_point,
                                                               q.output_min, q.output_max);
                bad = oy * ow + ox;
            }
        for (size_t i = oh * ow; i < oh * ow + GUARD && ok; i++) ok = out[i] == 0x5a, bad = i;
        CHECK(ok, "%s: s %zu k %zux%zu dh %zu in %zux%zu pad %zu,%zu,%zu,%zu margins %zu,%zu "
              "z %d fits %d first bad %zu", v->name, s, kh, kw, dh, ih, iw, pt, pl, pb, pr, before,
              after, (int)zx, (int)q.fits_int32, bad);
        free(margined), free(masks), free(edge), free(out);
    }
}

/* The int8 channels-in-lanes depthwise kernels, bitwise against the
 * textbook int32 sum and crisp_qs8_requantize: 1 .. block channels, strides
 * 1 and 2, padding 0 .. 2 above and left (and whatever the size leaves
 * below and right), planes 1 .. 40 wide (more than one 16-pixel column
 * block), zero points and weights at their edges, per-channel multipliers
 * (both requantisation forms, the edge of fitting with sums at the bound,
 * products past int32), narrowed ranges. The input planes, the tile and the
 * outputs are allocated exactly (ASan sees a read or write outside them);
 * bytes around the block's output planes stay untouched. */
static void test_qs8_dw_hwc(const qs8_dw_hwc_variant *v, unsigned *rng) {
    enum { GUARD = 48 };
    for (int trial = 0; trial < 300; trial++) {
        const size_t n = (size_t)check_rand_int(rng, 1, (int)v->block);
        const size_t s = (size_t)(trial % 2 ? 2 : 1);
        const size_t pt = (size_t)check_rand_int(rng, 0, 2), pl = (size_t)check_rand_int(rng, 0, 2);
        const size_t ih = (size_t)check_rand_int(rng, 1, trial % 5 == 0 ? 40 : 16);
        const size_t iw = (size_t)check_rand_int(rng, 1, trial % 5 == 1 ? 40 : 16);
        const size_t pb = (size_t)check_rand_int(rng, 0, 2), pr = (size_t)check_rand_int(rng, 0, 2);
        if (ih + pt + pb < 3 || iw + pl + pr < 3) continue;
        const size_t oh = (ih + pt + pb - 3) / s + 1, ow = (iw + pl + pr - 3) / s + 1;
        const int at_edge = trial % 10 == 3, past = trial % 10 == 9;
        crisp_qs8_requant q = {at_edge ? -128 : edgy_q(rng, -128), edgy_q(rng, -128), -128, 127,
                               NULL, NULL, NULL, 0};
        if (trial % 3 == 1) q.output_min = q.output_zero_point;
        if (trial % 5 == 2) q.output_max = q.output_zero_point + 40 < 127 ? q.output_zero_point + 40 : 127;
        const size_t plane = ih * iw, oplane = oh * ow;
        int8_t *x = malloc(n * plane), *w = malloc(n * 9);
        for (size_t i = 0; i < n * plane; i++) x[i] = at_edge ? 127 : (int8_t)edgy_q(rng, -128);
        int32_t bias[16], wsum[16] = {0};
        uint64_t asum[16] = {0};
        float mult[16];
        for (size_t c = 0; c < n; c++) {
            for (size_t i = 0; i < 9; i++) {
                int8_t q8 = (int8_t)edgy_q(rng, -127);
                if (at_edge) q8 = (int8_t)(c % 2 ? -abs(q8) : abs(q8));
                w[c * 9 + i] = q8, wsum[c] += q8, asum[c] += (uint64_t)abs(q8);
            }
            bias[c] = check_rand_int(rng, -100000, 100000);
            if (at_edge) bias[c] = c % 2 ? -abs(bias[c]) : abs(bias[c]);
            mult[c] = at_edge ? (float)(0.999 * 1073741824.0 /
                                        (fabs((double)bias[c]) + 255.0 * (double)asum[c] + 1.0))
                      : past  ? ldexpf(1.0f, check_rand_int(rng, 12, 40))
                              : ldexpf(1.0f + check_rand_float(rng) * 0.5f, -check_rand_int(rng, 2, 14));
        }
        q.bias = bias, q.multiplier = mult, q.weight_sum = wsum;
        q.fits_int32 = fits_as_loaded(trial, n, bias, asum, mult);
        const size_t tb = crisp_qs8_dwconv_hwc_tile_bytes(oh, ow, s);
        void *tile = aligned_alloc(64, (tb + 63) / 64 * 64); /* as the session's scratch */
        int8_t *out = malloc(GUARD + n * oplane + GUARD);
        memset(out, 0x5a, GUARD + n * oplane + GUARD);
        const crisp_qs8_dwconv_hwc_block blk = {x, w, out + GUARD, tile, n, ih, iw, pt, pl, s, oh, ow};
        v->fn(&blk, &q);
        int ok = 1;
        size_t bad = 0;
        for (size_t c = 0; c < n && ok; c++)
            for (size_t oy = 0; oy < oh && ok; oy++)
                for (size_t ox = 0; ox < ow && ok; ox++) {
                    int32_t acc = bias[c];
                    for (size_t ky = 0; ky < 3; ky++)
                        for (size_t kx = 0; kx < 3; kx++) {
                            const ptrdiff_t iy = (ptrdiff_t)(oy * s + ky) - (ptrdiff_t)pt;
                            const ptrdiff_t ix = (ptrdiff_t)(ox * s + kx) - (ptrdiff_t)pl;
                            if (iy >= 0 && iy < (ptrdiff_t)ih && ix >= 0 && ix < (ptrdiff_t)iw)
                                acc += w[c * 9 + ky * 3 + kx] *
                                       (x[c * plane + (size_t)iy * iw + (size_t)ix] - q.input_zero_point);
                        }
                    bad = c * oplane + oy * ow + ox;
                    ok = out[GUARD + bad] == crisp_qs8_requantize((float)acc * mult[c],
                                                                   q.output_zero_point,
                                                                   q.output_min, q.output_max);
                }
        for (size_t i = 0; i < GUARD && ok; i++) ok = out[i] == 0x5a && out[GUARD + n * oplane + i] == 0x5a;
        CHECK(ok, "%s: %zu channels, s %zu, in %zux%zu pad %zu,%zu,%zu,%zu fits %d first bad %zu",
              v->name, n, s, ih, iw, pt, pl, pb, pr, (int)q.fits_int32, bad);
        free(x), free(w), free(tile), free(out);
    }
}

/* QUANTIZE against the reference kernel, bitwise: values around the rounding
 * ties and beyond the int8 range, infinities and NaN, zero points at the
 * edges. */
static void test_quantize(const quantize_variant *v, unsigned *rng) {
    for (int trial = 0; trial < 100; trial++) {
        const size_t n = (size_t)check_rand_int(rng, 0, trial % 4 == 0 ? 300 : 40);
        float *x = malloc((n + 1) * sizeof *x);
        int8_t *got = malloc(n + 1), *want = malloc(n + 1);
        const crisp_qs8_quantize_params p = {0.01f + fabsf(check_rand_float(rng)) * 0.1f,
                                             edgy_q(rng, -128)};
        for (size_t i = 0; i < n; i++) {
            const int kind = check_rand_int(rng, 0, 9);
            x[i] = kind == 0   ? NAN
                   : kind == 1 ? (check_rand_int(rng, 0, 1) ? INFINITY : -INFINITY)
                   : kind == 2 ? ((float)check_rand_int(rng, -300, 300) + 0.5f) * p.scale
                               : check_rand_float(rng) * 200.0f * p.scale;
        }
        v->fn(n, x, got, &p);
        crisp_f32_quantize__ref(n, x, want, &p);
        CHECK(n == 0 || memcmp(got, want, n) == 0, "%s: n %zu scale %g z %d", v->name, n,
              (double)p.scale, (int)p.zero_point);
        free(x), free(got), free(want);
    }
}

/* The kernel reads the stride phases (ukernels.h) built here from a random
 * padded image; it must write exactly the oh x ow outputs. */
static void test_dw(const dw_variant *v, unsigned *rng, int max) {
    enum { GUARD = 40 };
    for (int trial = 0; trial < 80; trial++) {
        const size_t s = (size_t)check_rand_int(rng, 1, 3), sh = (size_t)check_rand_int(rng, 1, 3);
        /* Every other trial 3x3 (the kernels' register-resident path). */
        const size_t kh = trial % 2 ? 3 : (size_t)check_rand_int(rng, 1, 5);
        const size_t kw = trial % 2 ? 3 : (size_t)check_rand_int(rng, 1, 5);
        const size_t dh = (size_t)check_rand_int(rng, 1, 2), dw = (size_t)check_rand_int(rng, 1, 2);
        const size_t oh = (size_t)check_rand_int(rng, 1, trial % 3 ? 16 : 9);
        const size_t ow = (size_t)check_rand_int(rng, 1, trial % 3 ? 20 : 150);
        const size_t rows = (oh - 1) * sh + (kh - 1) * dh + 1, cols = (ow - 1) * s + (kw - 1) * dw + 1;
        const size_t stride = (cols + s - 1) / s, prows = (rows + sh - 1) / sh;
        const size_t psize = prows * stride;
        float *padded = random_floats(rng, rows * cols, 2);
        /* Max pooling: NaN in a window wins, -inf padding never does. */
        if (max && trial % 4 == 1) padded[check_rand(rng) % (rows * cols)] = NAN;
        if (max && trial % 4 == 2) padded[check_rand(rng) % (rows * cols)] = -INFINITY;
        float *phases = random_floats(rng, sh * s * psize + CRISP_DWCONV_SLACK, 2);
        for (size_t r = 0; r < rows; r++)
            for (size_t x = 0; x < cols; x++)
                phases[((r % sh) * s + x % s) * psize + (r / sh) * stride + x / s] =
                    padded[r * cols + x];
        const crisp_dwconv_plane pl = {phases, psize, stride, sh, s, dh, dw, kh, kw, oh, ow};
        float *w = random_floats(rng, kh * kw, 1), *out = malloc((oh * ow + GUARD) * sizeof *out);
        const float bias = max ? -INFINITY : check_rand_float(rng);
        const crisp_minmax_params *p = max ? &acts[0] : &acts[trial % 3];
        for (size_t i = 0; i < oh * ow + GUARD; i++) out[i] = 12345.0f;
        v->fn(&pl, max ? NULL : w, bias, out, p);
        int ok = 1;
        for (size_t i = oh * ow; i < oh * ow + GUARD && ok; i++) ok = out[i] == 12345.0f;
        for (size_t oy = 0; oy < oh && ok; oy++)
            for (size_t ox = 0; ox < ow && ok; ox++) {
                double acc = bias, mag = max ? 0 : fabs(acc);
                for (size_t ky = 0; ky < kh; ky++)
                    for (size_t kx = 0; kx < kw; kx++) {
                        const float in = padded[(oy * sh + ky * dh) * cols + ox * s + kx * dw];
                        if (max) {
                            if (isnan(in) || in > acc) acc = isnan(acc) ? acc : in;
                            continue;
                        }
                        const double t = (double)w[ky * kw + kx] * in;
                        acc += t, mag += fabs(t);
                    }
                const float got = out[oy * ow + ox];
                ok = max ? (isnan(acc) ? isnan(got) : got == (float)acc)
                         : close_enough(got, clampd(acc, p), mag);
            }
        CHECK(ok, "%s: s %zu/%zu k %zux%zu d %zu/%zu out %zux%zu", v->name, sh, s, kh, kw, dh, dw,
              oh, ow);
        free(padded), free(phases), free(w), free(out);
    }
}

/* A random 2:4 block-row in the file's layout (ukernels.h,
 * crisp_expand24_rows): block widths 4..40 with a partial last block, kept
 * blocks from none to all, V from 1 to the block-row height, positions
 * starting on either half of a byte; values and stream end exactly where a
 * kernel may read (ASan catches an over-read). */
typedef struct layout24 {
    size_t bc, cols, blocks, cb[9], height, vv, runs, row0, rows, vs, is, first;
    float *values;
    uint8_t *stream;
    uint8_t col_bytes[4 * 9];
} layout24;

static void make_layout24(unsigned *rng, int iter, size_t max_rows, layout24 *L) {
    static const uint8_t pairs[6] = {0x4, 0x8, 0xC, 0x9, 0xD, 0xE}; /* (i0, i1) as i0 | i1 << 2 */
    /* Every 10th: one block as wide as the row (an N:M-only layer's). */
    const int wide = iter % 10 == 5;
    L->bc = wide ? 16 * (size_t)check_rand_int(rng, 2, 24)
                 : 4 * (size_t)(iter % 3 == 0 ? 4 : check_rand_int(rng, 1, 10));
    const size_t nbc = wide ? 1 : (size_t)check_rand_int(rng, 1, 9), bc = L->bc;
    L->cols = nbc * bc - 4 * (size_t)check_rand_int(rng, 0, (int)bc / 4 - 1);
    L->blocks = 0;
    for (size_t c = 0; c < nbc; c++)
        if (iter % 4 == 0 || check_rand_int(rng, 0, 2) > 0) L->cb[L->blocks++] = c;
    L->height = (size_t)check_rand_int(rng, 1, 16);
    L->vv = (size_t)check_rand_int(rng, 1, (int)L->height);
    L->runs = (L->height + L->vv - 1) / L->vv;
    L->row0 = (size_t)check_rand_int(rng, 0, (int)L->height - 1);
    const size_t most = L->height - L->row0 < max_rows ? L->height - L->row0 : max_rows;
    L->rows = (size_t)check_rand_int(rng, 1, (int)most);
    L->vs = L->height * bc / 2, L->is = L->runs * bc / 2;
    L->first = 2 * (size_t)check_rand_int(rng, 0, 3);
    const size_t blocks = L->blocks;
    const size_t last_w = blocks ? (L->cb[blocks - 1] * bc + bc > L->cols ? L->cols - L->cb[blocks - 1] * bc : bc) : 0;
    const size_t nvalues = blocks ? (blocks - 1) * L->vs + L->height * last_w / 2 : 0;
    const size_t npos = L->first + (blocks ? (blocks - 1) * L->is + L->runs * last_w / 2 : 0);
    const size_t nbytes = (npos + 3) / 4;
    L->values = random_floats(rng, nvalues, 1);
    L->stream = malloc(nbytes ? nbytes : 1);
    for (size_t i = 0; i < nbytes; i++) L->stream[i] = (uint8_t)check_rand(rng);
    for (size_t b = 0; b < blocks; b++) {
        const size_t w = L->cb[b] * bc + bc > L->cols ? L->cols - L->cb[b] * bc : bc;
        for (size_t j = 0; j < L->runs; j++)
            for (size_t g = 0; g < w / 4; g++) {
                const size_t p = L->first + b * L->is + j * (w / 2) + 2 * g, sh = (p % 4) * 2;
                L->stream[p / 4] = (uint8_t)((L->stream[p / 4] & ~(0xF << sh)) |
                                             pairs[check_rand(rng) % 6] << sh);
            }
    }
    for (size_t b = 0; b < blocks; b++) {
        const uint32_t c = (uint32_t)L->cb[b];
        memcpy(L->col_bytes + 4 * b, &c, 4); /* little-endian targets only */
    }
}

/* Calls f(column, value) for each kept value of row t of the layout. */
#define LAYOUT24_ROW(L, t, f)                                                               \
    for (size_t b_ = 0; b_ < (L)->blocks; b_++) {                                          \
        const size_t c0_ = (L)->cb[b_] * (L)->bc;                                          \
        const size_t w_ = c0_ + (L)->bc > (L)->cols ? (L)->cols - c0_ : (L)->bc;           \
        for (size_t g_ = 0; g_ < w_ / 4; g_++)                                             \
            for (size_t k_ = 0; k_ < 2; k_++) {                                            \
                const size_t p_ = (L)->first + b_ * (L)->is + ((t) / (L)->vv) * (w_ / 2) + 2 * g_ + k_; \
                const size_t pos_ = ((L)->stream[p_ / 4] >> ((p_ % 4) * 2)) & 3;           \
                f(c0_ + 4 * g_ + pos_, (L)->values[b_ * (L)->vs + (t) * (w_ / 2) + 2 * g_ + k_]); \
            }                                                                              \
    }

/* 2:4 expansion (ukernels.h, crisp_expand24_rows) against the formula on
 * random block-rows (make_layout24); padding between output rows must stay
 * untouched. */
static void test_expand24(const expand24_variant *v, unsigned *rng) {
    for (int iter = 0; iter < 300; iter++) {
        layout24 L;
        make_layout24(rng, iter, 16, &L);
        const size_t stride = L.cols + (size_t)check_rand_int(rng, 0, 5), rows = L.rows;
        float *got = malloc(rows * stride * sizeof *got), *want = malloc(rows * stride * sizeof *want);
        for (size_t i = 0; i < rows * stride; i++) got[i] = want[i] = 1234.5f;
        for (size_t i = 0; i < rows; i++) {
            float *o = want + i * stride;
            for (size_t c = 0; c < L.cols; c++) o[c] = 0.0f;
#define SET(c, value) o[c] = value
            LAYOUT24_ROW(&L, L.row0 + i, SET)
#undef SET
        }
        const crisp_expand24_rows p = {L.blocks, L.col_bytes, L.bc, L.cols, L.row0, rows, L.vv,
                                       L.values, L.vs, L.stream, L.first, L.is, stride};
        v->fn(&p, got);
        CHECK(memcmp(got, want, rows * stride * sizeof *got) == 0,
              "%s: Bc %zu cols %zu blocks %zu rows %zu+%zu of %zu V %zu first %zu", v->name, L.bc,
              L.cols, L.blocks, L.row0, rows, L.height, L.vv, L.first);
        free(L.values), free(L.stream), free(got), free(want);
    }
}

/* 2:4 linear read in place (ukernels.h, f32_nmv24.inc) against a double
 * sum, to rounding, on the same random block-rows (whole 16-column blocks
 * from every third on, the vector paths'; up to CRISP_NMV24_MAX_ROWS rows),
 * bias or none, every clamp; x ends before an inaccessible page and nothing
 * is written past the rows. */
static void test_nmv24(const nmv24_variant *v, unsigned *rng) {
    for (int iter = 0; iter < 300; iter++) {
        layout24 L;
        make_layout24(rng, iter, CRISP_NMV24_MAX_ROWS, &L);
        float *x = guarded_alloc(L.cols * sizeof *x);
        for (size_t k = 0; k < L.cols; k++) x[k] = 2 * check_rand_float(rng);
        float *bias = check_rand_int(rng, 0, 2) == 0 ? NULL : random_floats(rng, L.rows, 1);
        const crisp_minmax_params *mm = &acts[check_rand_int(rng, 0, 2)];
        float y[CRISP_NMV24_MAX_ROWS + 1];
        for (size_t r = 0; r <= CRISP_NMV24_MAX_ROWS; r++) y[r] = 12345.0f;
        const crisp_expand24_rows p = {L.blocks, L.col_bytes, L.bc, L.cols, L.row0, L.rows, L.vv,
                                       L.values, L.vs, L.stream, L.first, L.is, 0};
        v->fn(&p, x, y, bias, mm);
        int ok = y[L.rows] == 12345.0f;
        for (size_t i = 0; i < L.rows && ok; i++) {
            double acc = bias ? bias[i] : 0, mag = fabs(acc);
#define ADD(c, value) acc += (double)(value) * x[c], mag += fabs((double)(value) * x[c])
            LAYOUT24_ROW(&L, L.row0 + i, ADD)
#undef ADD
            ok = close_enough(y[i], clampd(acc, mm), mag);
        }
        CHECK(ok, "%s: Bc %zu cols %zu blocks %zu rows %zu+%zu of %zu V %zu first %zu", v->name,
              L.bc, L.cols, L.blocks, L.row0, L.rows, L.height, L.vv, L.first);
        guarded_free(x, L.cols * sizeof *x), free(bias), free(L.values), free(L.stream);
    }
}

/* The direct kernel reads the plane in place (an allocation of exactly
 * ih x iw floats, so ASan sees any read outside it, or the plane between
 * zero margins as the driver copies small planes) and must write exactly
 * what the phase kernel of its tier writes from the padded copy, bitwise:
 * the same sums in the same order, padding read as 0. Infinities in the
 * first and last columns catch a wrapped tap that is not masked. */
static void test_dw_direct(const dw_direct_variant *v, const dw_variant *phase, unsigned *rng) {
    enum { GUARD = 40 };
    /* Trials 160 on: 3 x 3, stride 1 and 2, dilation 1, padding 1 all round,
     * rows of 16-140, on the row walk where the variant has one
     * (f32_dwconv_direct.inc, crisp_dwconv_image.rows). */
    for (int trial = 0; trial < 240; trial++) {
        const int rows_walk = trial >= 160;
        size_t s = (size_t)(trial % 4 < 2 ? 1 : 2);
        size_t kh = trial % 2 ? 3 : (size_t)check_rand_int(rng, 1, 5);
        size_t kw = trial % 2 ? 3 : (size_t)check_rand_int(rng, 1, 5);
        size_t dh = (size_t)check_rand_int(rng, 1, 2), dw = (size_t)check_rand_int(rng, 1, 2);
        size_t ih = (dh * (kh - 1) + (size_t)check_rand_int(rng, 1, trial % 3 ? 16 : 9));
        size_t iw = (dw * (kw - 1) + (size_t)check_rand_int(rng, 1, trial % 3 ? 20 : 130));
        /* Paddings up to the window ("same" every third trial); the output
         * rows must not be longer than the input's. */
        size_t pt = (size_t)check_rand_int(rng, 0, (int)(dh * (kh - 1)));
        size_t pb = (size_t)check_rand_int(rng, 0, (int)(dh * (kh - 1)));
        size_t pl = (size_t)check_rand_int(rng, 0, (int)(dw * (kw - 1)));
        size_t pr = (size_t)check_rand_int(rng, 0, (int)(dw * (kw - 1) - pl));
        if (trial % 3 == 0) pt = dh * (kh - 1) / 2, pb = dh * (kh - 1) - pt;
        if (trial % 3 == 0) pl = dw * (kw - 1) / 2, pr = dw * (kw - 1) - pl;
        if (rows_walk) {
            s = trial % 2 ? 2 : 1;
            kh = kw = 3;
            dh = dw = 1;
            /* Top and left 1; bottom and right 0-1 (stride 1, where only 1 keeps
             * the size the walk takes) or 0-2 (stride 2, 2 past an even end
             * declines): the kernel walks or declines, bitwise either way. */
            pt = pl = 1;
            pb = (size_t)check_rand_int(rng, 0, s == 1 ? 1 : 2);
            pr = (size_t)check_rand_int(rng, 0, s == 1 ? 1 : 2);
            ih = (size_t)check_rand_int(rng, 1, 20);
            iw = trial % 5 == 0 ? 16 * (size_t)check_rand_int(rng, 3, 8)
                                : (size_t)check_rand_int(rng, 16, 140);
            if (ih + pb < 2) pb = 1; /* at least one output row */
        }
        const size_t rows = ih + pt + pb, cols = iw + pl + pr;
        const size_t oh = (rows - dh * (kh - 1) - 1) / s + 1, ow = (cols - dw * (kw - 1) - 1) / s + 1;
        const int margins = trial % 3 == 2 && !rows_walk;
        const size_t before = margins ? (size_t)check_rand_int(rng, 0, (int)(3 * iw)) : 0;
        const size_t after = margins ? (size_t)check_rand_int(rng, 0, (int)(3 * iw + 160)) : 0;
        /* The row walks' planes end at an inaccessible page: a read past the
         * plane faults (masked-off lanes do not). */
        const size_t plane_bytes = (before + ih * iw + after) * sizeof(float);
        float *margined = rows_walk ? guarded_alloc(plane_bytes) : calloc(1, plane_bytes);
        if (rows_walk) memset(margined, 0, plane_bytes);
        float *x = margined + before;
        float *xs = random_floats(rng, ih * iw, 2);
        memcpy(x, xs, ih * iw * sizeof *x);
        free(xs);
        for (size_t r = 0; r < ih && trial % 4 == 1; r++)
            x[r * iw + (check_rand(rng) % 2 ? 0 : iw - 1)] = check_rand(rng) % 2 ? INFINITY : -INFINITY;
        /* The phases of the padded image, as the driver builds them. */
        const size_t stride = (cols + s - 1) / s, prows = (rows + s - 1) / s;
        const size_t psize = prows * stride;
        float *phases = calloc(s * s * psize + CRISP_DWCONV_SLACK, sizeof *phases);
        for (size_t r = 0; r < ih; r++)
            for (size_t c = 0; c < iw; c++) {
                const size_t pr_ = r + pt, pc = c + pl;
                phases[((pr_ % s) * s + pc % s) * psize + (pr_ / s) * stride + pc / s] = x[r * iw + c];
            }
        const crisp_dwconv_plane pl1 = {phases, psize, stride, s, s, dh, dw, kh, kw, oh, ow};
        uint32_t *masks = malloc(crisp_dwconv_mask_entries(kw, iw) * sizeof *masks);
        float *edge = malloc(crisp_dwconv_edge_floats(kh, kw, dh, dw, iw) * sizeof *edge);
        /* The row walk where the trial has its geometry; elsewhere asked for
         * every other trial, which the kernel must ignore. */
        const int walk = rows_walk ? v->rows > 0 : trial % 2;
        const crisp_dwconv_image im = {x,  before, after, masks, edge, ih, iw, pt, pl,
                                       s,  dh,     dw,    kh,    kw,   oh, ow, walk, 0, 0, 0};
        crisp_dwconv_column_masks(&im, masks);
        float *w = random_floats(rng, kh * kw, 1);
        float *got = malloc((oh * ow + GUARD) * sizeof *got), *want = malloc(oh * ow * sizeof *want);
        const float bias = check_rand_float(rng);
        for (size_t i = 0; i < oh * ow + GUARD; i++) got[i] = 12345.0f;
        phase->fn(&pl1, w, bias, want, &acts[trial % 3]);
        v->fn(&im, w, bias, got, &acts[trial % 3]);
        int ok = memcmp(got, want, oh * ow * sizeof *got) == 0;
        for (size_t i = oh * ow; i < oh * ow + GUARD && ok; i++) ok = got[i] == 12345.0f;
        CHECK(ok, "%s: s %zu k %zux%zu d %zu/%zu in %zux%zu pad %zu,%zu,%zu,%zu margins %zu,%zu",
              v->name, s, kh, kw, dh, dw, ih, iw, pt, pl, pb, pr, before, after);
        if (rows_walk) guarded_free(margined, plane_bytes);
        else free(margined);
        free(phases), free(masks), free(edge), free(w), free(got), free(want);
    }
}

static void microkernels(void) {
    unsigned rng = 7;
    for (size_t i = 0; i < COUNT(gemms); i++)
        if (crisp_isa_supported(gemms[i].isa)) test_gemm(&gemms[i], &rng);
        else skipped++;
    for (size_t i = 0; i < COUNT(spmms); i++)
        if (crisp_isa_supported(spmms[i].isa)) test_spmm(&spmms[i], &rng);
        else skipped++;
    for (size_t i = 0; i < COUNT(dws); i++)
        if (crisp_isa_supported(dws[i].isa)) test_dw(&dws[i], &rng, 0);
        else skipped++;
    for (size_t i = 0; i < COUNT(dw_directs); i++) {
        const dw_variant *phase = NULL; /* the phase kernel of the same tier */
        for (size_t j = 0; j < COUNT(dws); j++)
            if (strcmp(dws[j].isa, dw_directs[i].isa) == 0) phase = &dws[j];
        CHECK(phase != NULL, "%s: no phase kernel of its tier", dw_directs[i].name);
        if (phase != NULL && crisp_isa_supported(dw_directs[i].isa)) test_dw_direct(&dw_directs[i], phase, &rng);
        else skipped++;
    }
    for (size_t i = 0; i < COUNT(gemvs); i++)
        if (crisp_isa_supported(gemvs[i].isa)) test_gemv(&gemvs[i], &rng);
        else skipped++;
    for (size_t i = 0; i < COUNT(expand24s); i++)
        if (crisp_isa_supported(expand24s[i].isa)) test_expand24(&expand24s[i], &rng);
    for (size_t i = 0; i < COUNT(nmv24s); i++)
        if (crisp_isa_supported(nmv24s[i].isa)) test_nmv24(&nmv24s[i], &rng);
        else skipped++;
    for (size_t i = 0; i < COUNT(maxpools); i++)
        if (crisp_isa_supported(maxpools[i].isa)) test_dw(&maxpools[i], &rng, 1);
        else skipped++;
    for (size_t i = 0; i < COUNT(quantizes); i++)
        if (crisp_isa_supported(quantizes[i].isa)) test_quantize(&quantizes[i], &rng);
        else skipped++;
    for (size_t i = 0; i < COUNT(qs8_dws); i++)
        if (crisp_isa_supported(qs8_dws[i].isa)) test_qs8_dw(&qs8_dws[i], &rng);
        else skipped++;
    for (size_t i = 0; i < COUNT(qs8_dw_hwcs); i++)
        if (qs8_dw_hwcs[i].fn != NULL && crisp_isa_supported(qs8_dw_hwcs[i].isa))
            test_qs8_dw_hwc(&qs8_dw_hwcs[i], &rng);
    for (size_t i = 0; i < COUNT(qs8_dw_directs); i++)
        if (crisp_isa_supported(qs8_dw_directs[i].isa)) test_qs8_dw_direct(&qs8_dw_directs[i], &rng);
        else skipped++;
    for (size_t i = 0; i < COUNT(dw_hwcs); i++)
        if (dw_hwcs[i].fn != NULL && crisp_isa_supported(dw_hwcs[i].isa)) test_dw_hwc(&dw_hwcs[i], &rng);
        else if (dw_hwcs[i].fn != NULL) skipped++;
    for (size_t i = 0; i < COUNT(spmvs); i++)
        if (crisp_isa_supported(spmvs[i].isa)) test_spmv(&spmvs[i], &rng);
        else skipped++;
    for (size_t i = 0; i < COUNT(stride2s); i++)
        if (crisp_isa_supported(stride2s[i].isa)) test_stride2(&stride2s[i], &rng);
        else skipped++;
    for (size_t i = 0; i < COUNT(qs8_stride2s); i++)
        if (crisp_isa_supported(qs8_stride2s[i].isa)) test_qs8_stride2(&qs8_stride2s[i], &rng);
        else skipped++;
    for (size_t i = 0; i < COUNT(f32_adds); i++)
        if (crisp_isa_supported(f32_adds[i].isa)) test_f32_add(&f32_adds[i], &rng);
        else skipped++;
    for (size_t i = 0; i < COUNT(qs8_adds); i++)
        if (crisp_isa_supported(qs8_adds[i].isa)) {
            test_qs8_add(&qs8_adds[i], &rng);
            test_qs8_add_inverse(&qs8_adds[i]);
        }
        else skipped++;
    for (size_t i = 0; i < COUNT(qs8_spmms); i++)
        if (crisp_isa_supported(qs8_spmms[i].isa)) test_qs8_spmm(&qs8_spmms[i], &rng);
        else skipped++;
    for (size_t i = 0; i < COUNT(qs8_gemvs); i++)
        if (crisp_isa_supported(qs8_gemvs[i].isa)) test_qs8_gemv(&qs8_gemvs[i], &rng);
        else skipped++;
    for (size_t i = 0; i < COUNT(qs8_spmvs); i++)
        if (crisp_isa_supported(qs8_spmvs[i].isa)) test_qs8_spmv(&qs8_spmvs[i], &rng);
        else skipped++;
}

/* ---- Part 2: conv layers, optimised session vs reference session ---- */

typedef struct layer {
    int linear; /* c.cin features -> c.cout outputs */
    naive_conv c;
    int hybrid; /* 0 dense; else N:M in blocks, V rows sharing */
    mb_hybrid hy;
    int copy_limit_mb; /* > 0: also loaded under this CRISP_MAX_MEMORY_MB */
} layer;

/* Layers whose optimised runs read a band, compared with the im2col path. */
static int banded;

static int uses_band(const crisp_model *m) {
    for (uint32_t i = 0; i < m->op_count; i++)
        if (m->ops[i].fast.band_offset != NULL) return 1;
    return 0;
}

/* Layers run dense in several pixel tiles, each tile expanding every panel
 * again (src/conv_fast.c): counted so the test fails if none does. */
static int expanded_tiled;

/* Depthwise layers on the channels-in-lanes kernels (f32_dwconv_hwc.inc). */
static int dw_blocked;

/* Depthwise layers on the in-place kernel's row walk. */
static int dw_rowed;

static int uses_row_walk(const crisp_model *m) {
    for (uint32_t i = 0; i < m->op_count; i++)
        if (m->ops[i].fast.dw_rows) return 1;
    return 0;
}

static int uses_channel_blocks(const crisp_model *m) {
    for (uint32_t i = 0; i < m->op_count; i++)
        if (m->ops[i].fast.channel_block > 0) return 1;
    return 0;
}

static int expanded_tiles(const crisp_model *m) {
    for (uint32_t i = 0; i < m->op_count; i++)
        if (crisp_op_expanded(&m->ops[i]) && m->ops[i].fast.tiles > 1) return 1;
    return 0;
}

/* A direct conv run dense whose whole input fits in 1 MiB expands each
 * panel once: one tile of every pixel (src/conv_fast.c). */
static int expanded_direct_whole;

static void check_expanded_direct(const crisp_model *m, const char *what) {
    for (uint32_t i = 0; i < m->op_count; i++) {
        const crisp_op *op = &m->ops[i];
        if (!crisp_op_expanded(op) || op->kind != CRISP_OP_CONV2D || !op->fast.direct) continue;
        const size_t px = (size_t)op->k.conv.output_height * op->k.conv.output_width;
        if (op->fast.k * px * sizeof(float) > ((size_t)1 << 20)) continue;
        CHECK(op->fast.tiles == 1 && op->fast.tile_pixels >= px,
              "%s: op %u, expanded direct conv of %zu pixels in %zu tiles of %zu", what, i, px,
              op->fast.tiles, op->fast.tile_pixels);
        expanded_direct_whole++;
    }
}

/* Layers run dense from a copy made at load (src/pack.c, "dense copies"),
 * checked bitwise against the same layer expanded from the file. */
static int dense_copied;

/* Linears read in place (CRISP_FAST_NMV24), over every run_layer. */
static int in_file_ran;

static int in_file_linears(const crisp_model *m) {
    int n = 0;
    for (uint32_t i = 0; i < m->op_count; i++) n += m->ops[i].fast.path == CRISP_FAST_NMV24;
    return n;
}

static int dense_copies(const crisp_model *m) {
    int n = 0;
    for (uint32_t i = 0; i < m->op_count; i++) n += m->ops[i].packed.dense_f32 != NULL;
    return n;
}

static void run_layer(const layer *L, unsigned *rng, const char *what) {
    const naive_conv *c = &L->c;
    const int oh = L->linear ? 1 : naive_conv_out(c->h, c->kh, c->sh, c->pt + c->pb, c->dh);
    const int ow = L->linear ? 1 : naive_conv_out(c->w, c->kw, c->sw, c->pl + c->pr, c->dw);
    const uint32_t cin_g = (uint32_t)(c->cin / c->groups), R = (uint32_t)c->cout;
    const uint32_t K = L->linear ? (uint32_t)c->cin : (uint32_t)(c->kh * c->kw) * cin_g;
    mb_model mb;
    mb_init(&mb);
    const uint32_t in = L->linear ? mb_value(&mb, 1, (uint32_t)c->cin, 0, 0, 0)
                                  : mb_value(&mb, 3, (uint32_t)c->cin, (uint32_t)c->h,
                                             (uint32_t)c->w, 0);
    uint32_t wt;
    uint8_t *wbytes = NULL;
    float *dense = NULL;
    if (L->hybrid) {
        mb_hybrid hy = L->hy;
        hy.rows = R, hy.cols = K;
        size_t wsize;
        uint64_t kept;
        dense = malloc((size_t)R * K * sizeof *dense);
        wbytes = mb_hybrid_encode(&hy, rng, dense, NULL, &wsize, &kept);
        const uint32_t dims[4] = {R, L->linear ? K : (uint32_t)c->kh, L->linear ? 0 : (uint32_t)c->kw,
                                  L->linear ? 0 : cin_g};
        wt = mb_tensor_raw(&mb, 2, L->linear ? 2 : 4, dims, wbytes, wsize);
    } else if (L->linear) {
        wt = mb_tensor(&mb, 2, R, K, 0, 0, NULL);
    } else {
        wt = mb_tensor(&mb, 4, R, (uint32_t)c->kh, (uint32_t)c->kw, cin_g, NULL);
    }
    const uint32_t bt = check_rand_int(rng, 0, 3) == 0 ? MB_NONE : mb_tensor(&mb, 1, R, 0, 0, 0, NULL);
    const int32_t params[16] = {c->kh, c->kw, c->sh, c->sw, c->pt, c->pl, c->pb, c->pr, c->dh, c->dw,
                                c->groups};
    const uint32_t out = L->linear ? mb_value(&mb, 1, R, 0, 0, 0)
                                   : mb_value(&mb, 3, R, (uint32_t)oh, (uint32_t)ow, 0);
    mb_op(&mb, L->linear ? 2 : 1, (uint32_t)c->act, in, MB_NONE, out, wt, bt,
          L->linear ? NULL : params);
    mb.input = in, mb.output = out;
    size_t size;
    uint8_t *file = mb_build(&mb, &size);
    mb_free(&mb);
    /* The spec: the reference kernels on the sparse runs. Then the optimised
     * kernels in each form a hybrid layer can run in (src/hybrid_form.h):
     * against the spec within rounding, bitwise equal across thread counts;
     * and the reference kernels on the expanded weights. */
    const size_t nx = L->linear ? (size_t)c->cin : (size_t)c->cin * c->h * c->w;
    const size_t ny = (size_t)R * oh * ow;
    float *x = random_floats(rng, nx, 2), *want = malloc(ny * 4), *got = malloc(ny * 4);
    float *first = malloc(ny * 4), *expanded = calloc(ny, 4);
    int expanded_ran = 0; /* the forced dense form loaded and ran */
    static const char *const forms[] = {"sparse", "dense", "filled", "auto", "infile"};
    for (int fi = 0; fi < (L->hybrid ? 5 : 1); fi++) {
        setenv("CRISP_HYBRID_FORM", forms[fi], 1);
        crisp_model *m;
        if (crisp_model_load_buffer(file, size, &m) != CRISP_OK) {
            CHECK(0, "%s: load (%s form): %s", what, forms[fi], crisp_last_error());
            continue;
        }
        const int band = uses_band(m);
        const int copies = dense_copies(m);
        CHECK(copies == 0 || fi == 3, "%s: a dense copy under the forced %s form", what,
              forms[fi]);
        dense_copied += copies;
        in_file_ran += in_file_linears(m);
        expanded_tiled += expanded_tiles(m);
        check_expanded_direct(m, what);
        dw_blocked += uses_channel_blocks(m);
        dw_rowed += uses_row_walk(m);
        crisp_session *s;
        crisp_session_options o = {1, CRISP_SESSION_REFERENCE_KERNELS};
        CHECK(crisp_session_create_with_options(m, &o, &s) == CRISP_OK, "%s", crisp_last_error());
        CHECK(crisp_session_run(s, x, nx, fi == 0 ? want : got, ny) == CRISP_OK, "%s",
              crisp_last_error());
        crisp_session_free(s);
        for (uint32_t t = fi == 0 ? 1 : 0; t <= 3; t += t == 0 ? 1 : 2) {
            if (t > 0) {
                o = (crisp_session_options){t, 0};
                CHECK(crisp_session_create_with_options(m, &o, &s) == CRISP_OK, "%s",
                      crisp_last_error());
                CHECK(crisp_session_run(s, x, nx, got, ny) == CRISP_OK, "%s", crisp_last_error());
                crisp_session_free(s);
            }
            double err = 0, top = 1;
            for (size_t i = 0; i < ny; i++) {
                err = fmax(err, fabs((double)got[i] - want[i]));
                top = fmax(top, fabs((double)want[i]));
            }
            CHECK(err <= 2e-6 * top * sqrt((double)K),
                  "%s (%s, %s form, %s): max error %g, scale %g", what, crisp_kernel_isa(),
                  forms[fi], t == 0 ? "reference kernels" : t == 1 ? "1 thread" : "3 threads",
                  err, top);
            if (t == 1) memcpy(first, got, ny * 4);
            if (t == 1 && fi == 1) memcpy(expanded, got, ny * 4), expanded_ran = 1;
            /* The copy holds the floats the expansion writes: the same sums. */
            CHECK(copies == 0 || expanded_ran, "%s: a dense copy but no expanded run", what);
            if (t >= 1 && copies > 0 && expanded_ran)
                CHECK(memcmp(expanded, got, ny * 4) == 0,
                      "%s (%u threads): the dense copy and the expansion differ", what,
                      (unsigned)t);
            if (t == 3)
                CHECK(memcmp(first, got, ny * 4) == 0, "%s (%s form): 1 and 3 threads differ",
                      what, forms[fi]);
        }
        crisp_model_free(m);
        /* A stride-1 conv's sparse runs read a padded band of input rows in place
         * (src/conv_fast.c, "Bands"): the same sums in the same order as from the
         * im2col tile, so bitwise its results, at 1 and 3 threads. */
        if (band) {
            setenv("CRISP_CONV_IM2COL", "1", 1);
            const crisp_status loaded = crisp_model_load_buffer(file, size, &m);
            unsetenv("CRISP_CONV_IM2COL");
            CHECK(loaded == CRISP_OK, "%s: load (im2col): %s", what, crisp_last_error());
            CHECK(loaded != CRISP_OK || !uses_band(m), "%s: CRISP_CONV_IM2COL=1 still reads a band",
                  what);
            for (uint32_t t = 1; loaded == CRISP_OK && t <= 3; t += 2) {
                const crisp_session_options bo = {t, 0};
                crisp_session *bs;
                CHECK(crisp_session_create_with_options(m, &bo, &bs) == CRISP_OK, "%s",
                      crisp_last_error());
                CHECK(crisp_session_run(bs, x, nx, got, ny) == CRISP_OK, "%s", crisp_last_error());
                crisp_session_free(bs);
                CHECK(memcmp(first, got, ny * 4) == 0,
                      "%s (%s form, %u threads): band and im2col results differ", what,
                      forms[fi], (unsigned)t);
            }
            if (loaded == CRISP_OK) crisp_model_free(m);
            banded++;
        }
    }
    unsetenv("CRISP_HYBRID_FORM");
    /* A memory limit with no room for the copy: expanded from the file, the
     * load goes on, the same results. */
    if (L->copy_limit_mb > 0 && expanded_ran) {
        char limit[16];
        snprintf(limit, sizeof limit, "%d", L->copy_limit_mb);
        setenv("CRISP_MAX_MEMORY_MB", limit, 1);
        crisp_model *m;
        const crisp_status loaded = crisp_model_load_buffer(file, size, &m);
        unsetenv("CRISP_MAX_MEMORY_MB");
        CHECK(loaded == CRISP_OK, "%s: load under a %s MiB limit: %s", what, limit,
              crisp_last_error());
        if (loaded == CRISP_OK) {
            CHECK(dense_copies(m) == 0 && m->ops[0].packed.expand_values != NULL,
                  "%s: a %s MiB limit still made a dense copy", what, limit);
            crisp_session *s;
            const crisp_session_options o = {1, 0};
            CHECK(crisp_session_create_with_options(m, &o, &s) == CRISP_OK, "%s",
                  crisp_last_error());
            CHECK(crisp_session_run(s, x, nx, got, ny) == CRISP_OK, "%s", crisp_last_error());
            crisp_session_free(s);
            CHECK(memcmp(expanded, got, ny * 4) == 0, "%s: expanded under the limit differs",
                  what);
            crisp_model_free(m);
        }
    }
    free(x), free(want), free(got), free(first), free(expanded);
    free(file), free(wbytes), free(dense);
}

static void random_geometry(naive_conv *c, unsigned *rng, int max_hw) {
    c->kh = check_rand_int(rng, 1, 5), c->kw = check_rand_int(rng, 1, 5);
    c->sh = check_rand_int(rng, 1, 3), c->sw = check_rand_int(rng, 1, 3);
    c->dh = check_rand_int(rng, 1, 2), c->dw = check_rand_int(rng, 1, 2);
    c->pt = check_rand_int(rng, 0, 2), c->pl = check_rand_int(rng, 0, 2);
    c->pb = check_rand_int(rng, 0, 2), c->pr = check_rand_int(rng, 0, 2);
    c->h = c->dh * (c->kh - 1) + check_rand_int(rng, 1, max_hw);
    c->w = c->dw * (c->kw - 1) + check_rand_int(rng, 1, max_hw);
    c->act = check_rand_int(rng, 0, 2);
}

/* A random hybrid pattern for conv L (its cin rounded up to whole N:M groups). */
static void random_hybrid(layer *L, unsigned *rng) {
    naive_conv *c = &L->c;
    static const uint32_t shapes[][2] = {{16, 16}, {8, 8}, {4, 8}, {5, 12}};
    static const uint32_t nms[][2] = {{2, 4}, {1, 4}, {4, 4}};
    const uint32_t *bs = shapes[check_rand(rng) % 4], *p = nms[check_rand(rng) % 3];
    L->hy = (mb_hybrid){0, 0, bs[0], bs[1], p[0], p[1], 1, 0, 0, 0};
    /* N:M groups never straddle a tap (docs/format.md). */
    if (p[0] < p[1]) c->cin = (c->cin + (int)p[1] - 1) / (int)p[1] * (int)p[1];
    if (p[0] < p[1] && bs[1] % p[1]) L->hy.bc = (bs[1] / p[1] + 1) * p[1];
    const uint32_t vs[3] = {1, 4, bs[0]};
    do L->hy.v = vs[check_rand(rng) % 3];
    while (bs[0] % L->hy.v);
    const uint32_t K = (uint32_t)(c->kh * c->kw * c->cin);
    L->hy.kept_per_row = (uint32_t)check_rand_int(rng, 1, (int)((K + L->hy.bc - 1) / L->hy.bc));
    L->hy.empty_odd_rows = check_rand_int(rng, 0, 4) == 0;
}

/* ResNet-50's layer4 shape: a 3 x 3 conv, padding 1, on a 7 x 7 plane, cin
 * -> cout channels, ReLU, 2:4 in 16 x 16 blocks, every block kept. */
static void layer4_conv(layer *L, int cin, int cout) {
    memset(L, 0, sizeof *L);
    naive_conv *c = &L->c;
    c->kh = c->kw = 3, c->sh = c->sw = c->dh = c->dw = c->groups = 1;
    c->pt = c->pl = c->pb = c->pr = 1;
    c->h = c->w = 7, c->cin = cin, c->cout = cout, c->act = 1;
    L->hybrid = 1;
    L->hy = (mb_hybrid){0, 0, 16, 16, 2, 4, 1, 0, 0, 0};
}

static void conv_name(char *what, size_t size, const layer *L) {
    const naive_conv *c = &L->c;
    snprintf(what, size, "%s conv %dx%d s%d,%d d%d,%d p%d,%d,%d,%d %dx%dx%d -> %d",
             L->hybrid ? "hybrid" : "dense", c->kh, c->kw, c->sh, c->sw, c->dh, c->dw, c->pt,
             c->pl, c->pb, c->pr, c->cin, c->h, c->w, c->cout);
}

static void layers(void) {
    unsigned rng = 99;
    char what[160];
    for (int i = 0; i < 40; i++) { /* dense and hybrid, groups 1 */
        layer L;
        memset(&L, 0, sizeof L);
        naive_conv *c = &L.c;
        random_geometry(c, &rng, i % 4 == 0 ? 60 : 20);
        if (i % 5 == 0) c->kh = c->kw = c->sh = c->sw = 1, c->pt = c->pl = c->pb = c->pr = 0;
        c->groups = 1;
        c->cin = check_rand_int(&rng, 1, i % 7 == 0 ? 300 : 40);
        c->cout = check_rand_int(&rng, 1, 70);
        L.hybrid = i % 2;
        if (L.hybrid) random_hybrid(&L, &rng);
        conv_name(what, sizeof what, &L);
        run_layer(&L, &rng, what);
    }
    /* Hybrid, stride 1: the band path (src/conv_fast.c), against the reference
     * and bitwise against the im2col path; planes and channel counts that cut
     * the band into several tiles (and more at 3 threads). */
    for (int i = 0; i < 16; i++) {
        layer L;
        memset(&L, 0, sizeof L);
        naive_conv *c = &L.c;
        random_geometry(c, &rng, i % 2 == 0 ? 60 : 16);
        c->sh = c->sw = c->groups = 1;
        /* Two or three output rows: at 3 threads fewer row tiles than threads, so
         * threads share a tile and one builds its band once for several chunks. */
        if (i % 4 == 3) c->h = c->dh * (c->kh - 1) + 2 - (c->pt + c->pb > 1 ? 1 : c->pt + c->pb);
        c->cin = check_rand_int(&rng, 1, i % 3 == 0 ? 300 : 40);
        c->cout = check_rand_int(&rng, 1, 70);
        L.hybrid = 1;
        random_hybrid(&L, &rng);
        conv_name(what, sizeof what, &L);
        run_layer(&L, &rng, what);
    }
    { /* A 1 x 1 conv run dense (the "dense" form) whose input (512 x 14 x 14
       * floats, 392 KiB) is over the dense tile budget but under 1 MiB: one
       * whole-image tile (src/conv_fast.c), also at 3 threads. */
        layer L;
        memset(&L, 0, sizeof L);
        naive_conv *c = &L.c;
        c->kh = c->kw = c->sh = c->sw = c->dh = c->dw = c->groups = 1;
        c->h = c->w = 14, c->cin = 512, c->cout = 24, c->act = 1;
        L.hybrid = 1;
        L.hy = (mb_hybrid){0, 0, 16, 16, 2, 4, 1, 0, 0, 0};
        L.hy.kept_per_row = 32;
        conv_name(what, sizeof what, &L);
        run_layer(&L, &rng, what);
    }
    { /* A 3 x 3 conv at 2:4 on a 7 x 7 plane with K = 1152 (ResNet-50's
       * layer4 shape, narrower): run dense, from a copy made at load under
       * auto (src/pack.c); a 7 MiB memory limit leaves no room for it. */
        layer L;
        layer4_conv(&L, 128, 512);
        L.copy_limit_mb = 7;
        conv_name(what, sizeof what, &L);
        run_layer(&L, &rng, what);
    }
    { /* A 3 x 3 conv on a 7 x 7 plane with K = 4608 (ResNet-50's layer4 at 90 %
       * per-row, fewer rows): 64 MACs per copied element in filled runs, but
       * its 64-pixel im2col tile (AVX-512) is 4.5x the tile budget and the
       * band one tile, so the filled form reads a band (src/conv_fast.c). */
        layer L;
        layer4_conv(&L, 512, 320);
        L.hy.kept_per_row = 58; /* of 288 blocks: 20 % of K executed in filled runs */
        conv_name(what, sizeof what, &L);
        const int before = banded;
        run_layer(&L, &rng, what);
        if (strcmp(crisp_kernel_isa(), "avx512f") == 0)
            CHECK(banded > before, "%s: no form read a band", what);
    }
    CHECK(dense_copied >= 1, "no layer ran dense from a copy");
    CHECK(banded >= 16, "only %d layers compared with the im2col path", banded);
    CHECK(expanded_tiled >= 4, "only %d layers run dense in several tiles", expanded_tiled);
    CHECK(expanded_direct_whole >= 1, "no direct conv ran dense on a whole-image tile");
    /* Linear, dense and hybrid: 16 x 16 blocks; from 20 on, N:M-only rows
     * (one block as wide as K, as a pruned classifier's) of 16 and 32 rows
     * (the in-place kernels take 16 rows a call). */
    for (int i = 0; i < 26; i++) {
        layer L;
        memset(&L, 0, sizeof L);
        L.linear = 1;
        naive_conv *c = &L.c;
        c->kh = c->kw = c->sh = c->sw = c->dh = c->dw = c->groups = c->h = c->w = 1;
        c->act = check_rand_int(&rng, 0, 2);
        c->cin = 4 * check_rand_int(&rng, 1, 300), c->cout = check_rand_int(&rng, 1, 90);
        L.hybrid = i % 2 || i >= 20;
        if (i >= 20) {
            if (i % 2) c->cin = 16 * check_rand_int(&rng, 1, 40); /* whole 16-column segments */
            L.hy = (mb_hybrid){0, 0, i % 3 ? 16u : 32u, (uint32_t)c->cin, 2, 4, i % 4 < 2 ? 4 : 1, 1, 0, 0};
        } else if (L.hybrid) {
            L.hy = (mb_hybrid){0, 0, 16, 16, 2, 4, i % 4 == 1 ? 4 : 1, 0, 0, 0};
            L.hy.kept_per_row =
                (uint32_t)check_rand_int(&rng, 1, (int)(((uint32_t)c->cin + 15) / 16));
        }
        snprintf(what, sizeof what, "%s linear %d -> %d", L.hybrid ? "hybrid" : "dense", c->cin,
                 c->cout);
        run_layer(&L, &rng, what);
    }
    CHECK(in_file_ran >= 10, "only %d hybrid linears read in place", in_file_ran);
    for (int i = 0; i < 54; i++) { /* depthwise; from 30 on stride 1 or 2 (read in place) */
        layer L;
        memset(&L, 0, sizeof L);
        naive_conv *c = &L.c;
        random_geometry(c, &rng, i % 3 == 0 ? 70 : 20);
        if (i >= 30) c->sh = c->sw = 1 + i % 2;
        /* From 42 on MobileNet's 3 x 3 (channels in lanes on small planes, more than
         * one block of channels). */
        if (i >= 42) { /* its plane resized to hold the window, as random_geometry does */
            c->kh = c->kw = 3, c->dh = c->dw = 1;
            if (c->h < 3) c->h = 3;
            if (c->w < 3) c->w = 3;
        }
        c->cin = c->cout = c->groups = check_rand_int(&rng, 1, i >= 42 ? 40 : 24);
        snprintf(what, sizeof what, "depthwise %dx%d s%d,%d d%d,%d p%d,%d,%d,%d %dx%dx%d",
                 c->kh, c->kw, c->sh, c->sw, c->dh, c->dw, c->pt, c->pl, c->pb, c->pr, c->cin,
                 c->h, c->w);
        run_layer(&L, &rng, what);
    }
    if (crisp_f32_kernels_best()->dwconv_hwc != NULL)
        CHECK(dw_blocked >= 6, "only %d depthwise layers ran channels in lanes", dw_blocked);
    /* MobileNet's 3 x 3 with padding 1 on planes of up to 70 columns out, at least
     * the width from which the tier walks rows (f32_dwconv_direct.inc; 14 without). */
    const size_t least_rows = crisp_f32_kernels_best()->dwconv_direct_rows;
    const int least = least_rows > 0 ? (int)least_rows : 14;
    for (int i = 0; i < 8; i++) {
        layer L;
        memset(&L, 0, sizeof L);
        naive_conv *c = &L.c;
        random_geometry(c, &rng, 20);
        c->kh = c->kw = 3, c->dh = c->dw = 1;
        c->sh = c->sw = 1 + i % 2;
        c->pt = c->pl = c->pb = c->pr = 1;
        c->w = c->sw * check_rand_int(&rng, least, 70) - (i % 4 == 3);
        c->h = check_rand_int(&rng, 1, 30);
        c->cin = c->cout = c->groups = check_rand_int(&rng, 1, 20);
        c->act = check_rand_int(&rng, 0, 2);
        snprintf(what, sizeof what, "depthwise rows 3x3 s%d %dx%dx%d", c->sh, c->cin, c->h, c->w);
        run_layer(&L, &rng, what);
    }
    if (crisp_f32_kernels_best()->dwconv_direct_rows > 0)
        CHECK(dw_rowed >= 6, "only %d depthwise layers walked rows", dw_rowed);
}

/* int8 hybrid and dense conv, hybrid and dense linear layers (QUANTIZE -> layer
 * -> DEQUANTIZE), optimised session (1 and 3 threads) vs reference session:
 * bitwise equal. Zero points at the edges, output scales from unsaturated to
 * saturating, per-row and row-shared N:M, partial blocks, 1x1 convs read in
 * place, channel counts off the 4-row panels and the GEMV's rows per call, odd K;
 * depthwise convs of MobileNet's kind (stride 1 or 2, windows up to 4 wide,
 * read in place) on planes copied between margins (<= 1024 bytes) or not. */
static int uses_filled(const crisp_model *m) {
    for (uint32_t i = 0; i < m->op_count; i++)
        if (m->ops[i].packed.filled_weights > 0) return 1;
    return 0;
}

/* Whether the model's int8 conv/linear takes the kernels' short
 * requantisation (its products fit int32). */
static int fits_int32(const crisp_model *m) {
    for (uint32_t i = 0; i < m->op_count; i++) {
        const crisp_op *op = &m->ops[i];
        if (op->dtype != CRISP_DTYPE_I8) continue;
        if (op->kind == CRISP_OP_CONV2D && op->k.qconv.q.fits_int32) return 1;
        if (op->kind == CRISP_OP_LINEAR && op->k.qlinear.q.fits_int32) return 1;
    }
    return 0;
}

/* Whether an int8 depthwise conv runs channels in lanes (qs8_dwconv_hwc.inc). */
static int uses_qs8_hwc(const crisp_model *m) {
    for (uint32_t i = 0; i < m->op_count; i++)
        if (m->ops[i].dtype == CRISP_DTYPE_I8 && m->ops[i].fast.path == CRISP_FAST_QS8_DWCONV &&
            m->ops[i].fast.channel_block > 0)
            return 1;
    return 0;
}

static void qs8_layers(void) {
    int qs8_banded = 0, qs8_filled = 0, qs8_fits = 0, qs8_unfit = 0, qs8_hwc = 0;
    unsigned rng = 1616;
    static const float out_scales[3] = {0.5f, 0.05f, 0.002f};
    for (int i = 0; i < 90; i++) {
        const int mobile = i >= 66; /* in-place depthwise (qs8_dwconv_direct) */
        const int gemv = i >= 56 && !mobile; /* dense linears (qs8_gemv), any K */
        const int linear = gemv || (!mobile && i % 5 == 4);
        const int dense = gemv || mobile || (!linear && i % 7 >= 5);
        const int depthwise = mobile || (!linear && dense && i % 2 == 0); /* groups = channels */
        naive_conv c;
        memset(&c, 0, sizeof c);
        if (linear) {
            c.kh = c.kw = c.sh = c.sw = c.dh = c.dw = c.h = c.w = 1;
            c.cin = gemv ? check_rand_int(&rng, 1, 2100) : 4 * check_rand_int(&rng, 1, 200);
        } else {
            random_geometry(&c, &rng, i % 4 == 0 ? 60 : 20);
            /* Two thirds at stride 1: hybrid and dense convs read bands (src/conv_fast.c). */
            if (i % 3 != 0) c.sh = c.sw = 1;
            if (i % 5 == 0 && !mobile) c.kh = c.kw = c.sh = c.sw = 1, c.pt = c.pl = c.pb = c.pr = 0;
            c.cin = 4 * check_rand_int(&rng, 1, i % 7 == 0 ? 64 : 12);
        }
        if (mobile) {
            c.kh = c.kw = 3, c.dh = c.dw = 1, c.pt = c.pl = c.pb = c.pr = 1;
            if (i % 3 == 0) c.kh = check_rand_int(&rng, 1, 5), c.kw = check_rand_int(&rng, 1, 4);
            if (i % 3 == 0) c.pl = check_rand_int(&rng, 0, c.kw - 1), c.pr = c.kw - 1 - c.pl;
            if (i % 5 == 0) c.dh = 2;
            c.sh = c.sw = 1 + i % 2;
            c.h = c.dh * (c.kh - 1) + check_rand_int(&rng, 1, 60);
            c.w = c.kw - 1 + check_rand_int(&rng, 1, 60);
            c.cin = check_rand_int(&rng, 1, 24);
            /* A third on small planes (channels in lanes, qs8_dwconv_hwc.inc). */
            if (i % 3 == 1) c.h = c.dh * (c.kh - 1) + 1 + c.h % 14, c.w = c.kw + c.w % 14;
        }
        c.groups = 1;
        c.act = check_rand_int(&rng, 0, 2);
        c.cout = check_rand_int(&rng, 1, 70);
        /* Stride-1 convs with room for a band: kh kw Cin >= 2 (Cin + Cout). */
        if (!linear && !mobile && !depthwise && i % 5 != 0 && i % 3 != 0) {
            if (c.kh * c.kw < 4) c.kh = 3, c.kw = 2, c.h += 2 * c.dh, c.w += c.dw;
            c.cout = check_rand_int(&rng, 1, c.cin);
        }
        if (depthwise) c.cout = c.groups = c.cin;
        /* 1x1 convs end in a residual ADD of their input (an int8 ADD op). */
        const int residual = !linear && !mobile && i % 5 == 0;
        if (residual) c.cout = c.cin;
        const int oh = linear ? 1 : naive_conv_out(c.h, c.kh, c.sh, c.pt + c.pb, c.dh);
        const int ow = linear ? 1 : naive_conv_out(c.w, c.kw, c.sw, c.pl + c.pr, c.dw);
        const uint32_t R = (uint32_t)c.cout;
        const uint32_t K = (uint32_t)(c.kh * c.kw * (c.cin / c.groups));
        static const uint32_t shapes[][2] = {{16, 16}, {8, 8}, {4, 8}, {5, 12}};
        static const uint32_t nms[][2] = {{2, 4}, {1, 4}, {4, 4}};
        const uint32_t *bs = shapes[check_rand(&rng) % 4], *p = nms[check_rand(&rng) % 3];
        mb_hybrid hy = {R, K, bs[0], bs[1], p[0], p[1], 1, 0, 1, 0};
        if (p[0] < p[1] && bs[1] % p[1]) hy.bc = (bs[1] / p[1] + 1) * p[1];
        const uint32_t vs[3] = {1, 4, bs[0]};
        do hy.v = vs[check_rand(&rng) % 3];
        while (bs[0] % hy.v);
        hy.kept_per_row = (uint32_t)check_rand_int(&rng, 1, (int)((K + hy.bc - 1) / hy.bc));
        hy.empty_odd_rows = check_rand_int(&rng, 0, 4) == 0;
        mb_model mb;
        mb_init(&mb);
        const int32_t zx = edgy_q(&rng, -128), zy = edgy_q(&rng, -128);
        float sy = out_scales[check_rand(&rng) % 3];
        /* Products past int32 (multipliers ~1e5): the kernels' float clamp
         * (crisp_qs8_requant.fits_int32 = 0). */
        if (i % 11 == 10) sy = 1e-10f;
        const uint32_t xf = linear ? mb_value(&mb, 1, (uint32_t)c.cin, 0, 0, 0)
                                   : mb_value(&mb, 3, (uint32_t)c.cin, (uint32_t)c.h,
                                              (uint32_t)c.w, 0);
        const uint32_t xq = linear ? mb_qvalue(&mb, 1, (uint32_t)c.cin, 0, 0, 0, 0.02f, zx)
                                   : mb_qvalue(&mb, 3, (uint32_t)c.cin, (uint32_t)c.h,
                                               (uint32_t)c.w, 0, 0.02f, zx);
        const uint32_t yq = linear ? mb_qvalue(&mb, 1, R, 0, 0, 0, sy, zy)
                                   : mb_qvalue(&mb, 3, R, (uint32_t)oh, (uint32_t)ow, 0, sy, zy);
        const uint32_t yf = linear ? mb_value(&mb, 1, R, 0, 0, 0)
                                   : mb_value(&mb, 3, R, (uint32_t)oh, (uint32_t)ow, 0);
        const uint32_t sum = residual ? mb_qvalue(&mb, 3, R, (uint32_t)oh, (uint32_t)ow, 0,
                                                  0.04f, edgy_q(&rng, -128))
                                      : MB_NONE;
        size_t wsize;
        uint64_t kept;
        float *expanded = malloc((size_t)R * K * sizeof *expanded);
        float *scales = malloc(R * sizeof *scales);
        const uint32_t dims[4] = {R, linear ? K : (uint32_t)c.kh, linear ? 0 : (uint32_t)c.kw,
                                  linear ? 0 : (uint32_t)(c.cin / c.groups)};
        uint8_t *wbytes = NULL;
        uint32_t wt;
        if (dense) {
            int8_t *q = malloc((size_t)R * K);
            for (size_t j = 0; j < (size_t)R * K; j++) q[j] = (int8_t)edgy_q(&rng, -127);
            for (uint32_t r = 0; r < R; r++) scales[r] = 0.001f + 0.0005f * (float)(r % 7);
            wt = mb_tensor_i8(&mb, linear ? 2 : 4, dims, scales, q);
            free(q);
        } else {
            wbytes = mb_hybrid_encode(&hy, &rng, expanded, scales, &wsize, &kept);
            wt = mb_tensor_raw(&mb, 4, linear ? 2 : 4, dims, wbytes, wsize);
        }
        const uint32_t bt = i % 3 == 0 ? MB_NONE : mb_tensor(&mb, 1, R, 0, 0, 0, NULL);
        const int32_t params[16] = {c.kh, c.kw, c.sh, c.sw, c.pt, c.pl, c.pb, c.pr, c.dh, c.dw,
                                    c.groups};
        mb_op(&mb, 12, 0, xf, MB_NONE, xq, MB_NONE, MB_NONE, NULL); /* QUANTIZE */
        mb_op(&mb, linear ? 2 : 1, (uint32_t)c.act, xq, MB_NONE, yq, wt, bt,
              linear ? NULL : params);
        if (residual) mb_op(&mb, 3, (uint32_t)(i % 3), xq, yq, sum, MB_NONE, MB_NONE, NULL);
        mb_op(&mb, 13, 0, residual ? sum : yq, MB_NONE, yf, MB_NONE, MB_NONE, NULL);
        mb.input = xf, mb.output = yf;
        size_t size;
        uint8_t *file = mb_build(&mb, &size);
        mb_free(&mb);
        char what[160];
        snprintf(what, sizeof what,
                 "int8 %s %s %dx%d s%d,%d d%d,%d p%d,%d %dx%dx%d -> %d, %u:%u v%u, z %d/%d",
                 depthwise ? "depthwise" : dense ? "dense" : "hybrid", linear ? "linear" : "conv", c.kh, c.kw, c.sh, c.sw, c.dh, c.dw, c.pt, c.pl,
                 c.cin, c.h, c.w, c.cout, hy.n, hy.m, hy.v, (int)zx, (int)zy);
        /* Hybrid layers: the runs' reference (CRISP_HYBRID_FORM=sparse) is the
         * spec; the other form, forced and as the cost rule picks it, must match
         * it on both kernel sets: linears dense (src/pack.c, densify_linear),
         * convs filled runs (zeros add nothing to the exact int32 sums). */
        static const char *const linear_forms[3] = {"sparse", "dense", "auto"};
        static const char *const conv_forms[3] = {"sparse", "filled", "auto"};
        const char *const *forms = linear ? linear_forms : conv_forms;
        const int nforms = !dense ? 3 : 1;
        const size_t nx = (size_t)c.cin * c.h * c.w, ny = (size_t)R * oh * ow;
        float *x = random_floats(&rng, nx, 3), *want = malloc(ny * 4), *got = malloc(ny * 4);
        for (int fi = 0; fi < nforms; fi++) {
            if (nforms > 1) setenv("CRISP_HYBRID_FORM", forms[fi], 1);
            crisp_model *m;
            if (crisp_model_load_buffer(file, size, &m) != CRISP_OK) {
                CHECK(0, "%s: load: %s", what, crisp_last_error());
                continue;
            }
            qs8_banded += uses_band(m);
            if (fi == 2) qs8_filled += uses_filled(m);
            if (fi == 0) qs8_fits += fits_int32(m), qs8_unfit += sy == 1e-10f && !fits_int32(m);
            if (fi == 0) qs8_hwc += uses_qs8_hwc(m);
            crisp_session *s;
            crisp_session_options o = {1, CRISP_SESSION_REFERENCE_KERNELS};
            CHECK(crisp_session_create_with_options(m, &o, &s) == CRISP_OK, "%s", crisp_last_error());
            CHECK(crisp_session_run(s, x, nx, fi == 0 ? want : got, ny) == CRISP_OK, "%s",
                  crisp_last_error());
            crisp_session_free(s);
            if (fi > 0)
                CHECK(memcmp(got, want, ny * 4) == 0, "%s (reference, form %s): not bitwise equal",
                      what, forms[fi]);
            for (uint32_t t = 1; t <= 3; t += 2) {
                o = (crisp_session_options){t, 0};
                CHECK(crisp_session_create_with_options(m, &o, &s) == CRISP_OK, "%s",
                      crisp_last_error());
                CHECK(crisp_session_run(s, x, nx, got, ny) == CRISP_OK, "%s", crisp_last_error());
                CHECK(memcmp(got, want, ny * 4) == 0,
                      "%s (%s, %u threads, form %s): not bitwise equal", what, crisp_kernel_isa(),
                      t, nforms > 1 ? forms[fi] : "auto");
                if (fi == 0 && t == 3) {
                    /* The QUANTIZE reads the caller's floats in place (src/session.c);
                     * run_to copies them into the arena first: the same bytes. And a
                     * batch of two samples reads each from its own place. */
                    CHECK(s->quantize_from_caller, "%s: the input is copied", what);
                    memset(got, 0, ny * 4);
                    CHECK(crisp_session_run_to(s, m->output_value, x, nx, got, ny) == CRISP_OK,
                          "%s", crisp_last_error());
                    CHECK(memcmp(got, want, ny * 4) == 0, "%s: run_to differs from run", what);
                    float *x2 = malloc(2 * nx * 4), *y2 = malloc(2 * ny * 4);
                    for (size_t e = 0; e < nx; e++) x2[e] = -x[e], x2[nx + e] = x[e];
                    CHECK(crisp_session_run(s, x2, 2 * nx, y2, 2 * ny) == CRISP_OK, "%s",
                          crisp_last_error());
                    CHECK(memcmp(y2 + ny, want, ny * 4) == 0, "%s: the batch's second sample",
                          what);
                    CHECK(crisp_session_run(s, x2, nx, got, ny) == CRISP_OK, "%s",
                          crisp_last_error());
                    CHECK(memcmp(y2, got, ny * 4) == 0, "%s: the batch's first sample", what);
                    free(x2), free(y2);
                }
                crisp_session_free(s);
            }
            crisp_model_free(m);
        }
        if (nforms > 1) unsetenv("CRISP_HYBRID_FORM");
        free(x), free(want), free(got);
        free(file), free(wbytes), free(expanded), free(scales);
    }
    CHECK(qs8_banded >= 8, "only %d int8 convs read a band", qs8_banded);
    if (crisp_qs8_kernels_best()->dwconv_hwc != NULL)
        CHECK(qs8_hwc >= 4, "only %d int8 depthwise convs run channels in lanes", qs8_hwc);
    /* The ordinary scales fit; the tiny one (8 models of 90) must not. */
    CHECK(qs8_fits >= 70 && qs8_unfit == 8, "%d int8 layers fit int32, %d of the tiny scale not",
          qs8_fits, qs8_unfit);
    /* The scalar int8 kernel takes one row per call: nothing to share, no filled runs. */
    if (strcmp(crisp_qs8_kernels_best()->isa, "scalar") != 0)
        CHECK(qs8_filled >= 4, "only %d int8 convs run filled by the cost rule", qs8_filled);
}

/* Max pooling layers, optimised session vs reference session: bitwise equal
 * (a max is exact), NaN included. */
static void maxpool_layers(void) {
    unsigned rng = 5;
    for (int i = 0; i < 30; i++) {
        const int c = check_rand_int(&rng, 1, 9), k = check_rand_int(&rng, 1, 4);
        const int s = check_rand_int(&rng, 1, 3), d = check_rand_int(&rng, 1, 2);
        const int pad = check_rand_int(&rng, 0, k / 2), ceil_mode = check_rand_int(&rng, 0, 1);
        const int h = d * (k - 1) + check_rand_int(&rng, 1, 40);
        const int w = d * (k - 1) + check_rand_int(&rng, 1, 90);
        const int oh = naive_pool_out(h, k, s, pad, d, ceil_mode);
        const int ow = naive_pool_out(w, k, s, pad, d, ceil_mode);
        mb_model mb;
        mb_init(&mb);
        const uint32_t in = mb_value(&mb, 3, (uint32_t)c, (uint32_t)h, (uint32_t)w, 0);
        const uint32_t out = mb_value(&mb, 3, (uint32_t)c, (uint32_t)oh, (uint32_t)ow, 0);
        const int32_t params[16] = {k, k, s, s, pad, pad, d, d, ceil_mode};
        mb_op(&mb, 6, 0, in, MB_NONE, out, MB_NONE, MB_NONE, params); /* MAX_POOL2D */
        mb.input = in, mb.output = out;
        size_t size;
        uint8_t *file = mb_build(&mb, &size);
        mb_free(&mb);
        crisp_model *m;
        if (crisp_model_load_buffer(file, size, &m) != CRISP_OK) {
            CHECK(0, "maxpool %d: load: %s", i, crisp_last_error());
            free(file);
            continue;
        }
        const size_t nx = (size_t)c * h * w, ny = (size_t)c * oh * ow;
        float *x = random_floats(&rng, nx, 2), *want = malloc(ny * 4), *got = malloc(ny * 4);
        if (i % 3 == 0) x[check_rand(&rng) % nx] = NAN;
        crisp_session *sref, *sfast;
        crisp_session_options o = {1, CRISP_SESSION_REFERENCE_KERNELS};
        CHECK(crisp_session_create_with_options(m, &o, &sref) == CRISP_OK, "%s", crisp_last_error());
        o = (crisp_session_options){2, 0};
        CHECK(crisp_session_create_with_options(m, &o, &sfast) == CRISP_OK, "%s", crisp_last_error());
        CHECK(crisp_session_run(sref, x, nx, want, ny) == CRISP_OK, "%s", crisp_last_error());
        CHECK(crisp_session_run(sfast, x, nx, got, ny) == CRISP_OK, "%s", crisp_last_error());
        int same = 1;
        for (size_t j = 0; j < ny; j++)
            same &= isnan(want[j]) ? isnan(got[j]) : got[j] == want[j];
        CHECK(same, "maxpool k%d s%d d%d p%d ceil%d %dx%dx%d (%s)", k, s, d, pad, ceil_mode, c, h,
              w, crisp_kernel_isa());
        crisp_session_free(sref), crisp_session_free(sfast);
        crisp_model_free(m);
        free(x), free(want), free(got), free(file);
    }
}

/* int8 max pooling layers (QUANTIZE -> MAX_POOL2D -> DEQUANTIZE), optimised
 * session (2 threads) vs reference session: bitwise equal, windows in the
 * padding (ceil mode) included. */
static void qs8_maxpool_layers(void) {
    unsigned rng = 55;
    for (int i = 0; i < 30; i++) {
        const int c = check_rand_int(&rng, 1, 9), k = check_rand_int(&rng, 1, 4);
        const int s = check_rand_int(&rng, 1, 3), d = check_rand_int(&rng, 1, 2);
        const int pad = check_rand_int(&rng, 0, k / 2), ceil_mode = check_rand_int(&rng, 0, 1);
        const int h = d * (k - 1) + check_rand_int(&rng, 1, 40);
        const int w = d * (k - 1) + check_rand_int(&rng, 1, 90);
        const int oh = naive_pool_out(h, k, s, pad, d, ceil_mode);
        const int ow = naive_pool_out(w, k, s, pad, d, ceil_mode);
        const int32_t z = edgy_q(&rng, -128);
        mb_model mb;
        mb_init(&mb);
        const uint32_t in = mb_value(&mb, 3, (uint32_t)c, (uint32_t)h, (uint32_t)w, 0);
        const uint32_t qin = mb_qvalue(&mb, 3, (uint32_t)c, (uint32_t)h, (uint32_t)w, 0, 0.03f, z);
        const uint32_t qout = mb_qvalue(&mb, 3, (uint32_t)c, (uint32_t)oh, (uint32_t)ow, 0, 0.03f, z);
        const uint32_t out = mb_value(&mb, 3, (uint32_t)c, (uint32_t)oh, (uint32_t)ow, 0);
        const int32_t params[16] = {k, k, s, s, pad, pad, d, d, ceil_mode};
        mb_op(&mb, 12, 0, in, MB_NONE, qin, MB_NONE, MB_NONE, NULL);
        mb_op(&mb, 6, 0, qin, MB_NONE, qout, MB_NONE, MB_NONE, params); /* MAX_POOL2D */
        mb_op(&mb, 13, 0, qout, MB_NONE, out, MB_NONE, MB_NONE, NULL);
        mb.input = in, mb.output = out;
        size_t size;
        uint8_t *file = mb_build(&mb, &size);
        mb_free(&mb);
        crisp_model *m;
        if (crisp_model_load_buffer(file, size, &m) != CRISP_OK) {
            CHECK(0, "int8 maxpool %d: load: %s", i, crisp_last_error());
            free(file);
            continue;
        }
        const size_t nx = (size_t)c * h * w, ny = (size_t)c * oh * ow;
        float *x = random_floats(&rng, nx, 5), *want = malloc(ny * 4), *got = malloc(ny * 4);
        crisp_session *sref, *sfast;
        crisp_session_options o = {1, CRISP_SESSION_REFERENCE_KERNELS};
        CHECK(crisp_session_create_with_options(m, &o, &sref) == CRISP_OK, "%s", crisp_last_error());
        o = (crisp_session_options){2, 0};
        CHECK(crisp_session_create_with_options(m, &o, &sfast) == CRISP_OK, "%s", crisp_last_error());
        CHECK(crisp_session_run(sref, x, nx, want, ny) == CRISP_OK, "%s", crisp_last_error());
        CHECK(crisp_session_run(sfast, x, nx, got, ny) == CRISP_OK, "%s", crisp_last_error());
        CHECK(memcmp(got, want, ny * 4) == 0, "int8 maxpool k%d s%d d%d p%d ceil%d %dx%dx%d z %d",
              k, s, d, pad, ceil_mode, c, h, w, (int)z);
        crisp_session_free(sref), crisp_session_free(sfast);
        crisp_model_free(m);
        free(x), free(want), free(got), free(file);
    }
}

/* The per-layer choice is a function of the layer and the cost table only;
 * a bad CRISP_HYBRID_FORM fails the load, naming the value. */
static void hybrid_forms(void) {
    /* 512 x 4608 conv, per-row 2:4: runs cost 8 bytes per kept value, filled
     * runs twice the values at 4 bytes each plus a column per 16. */
    const uint64_t dense = 512 * 4608;
#define COST(isa, linear, v, kept)                                                          \
    ((crisp_hybrid_cost){isa, 0, linear, v, kept, 8 * (kept) + 4096, (linear) ? 0 : 2 * (kept), \
                         8 * (kept) + (kept) / 4, 512 / (v), 512 / 16, dense, 16 * 512 / 16, 0})
    const crisp_hybrid_cost half = COST("avx512f", 0, 1, dense / 2);
    CHECK(crisp_hybrid_choose(CRISP_HYBRID_FORM_AUTO, &half) == CRISP_HYBRID_DENSE,
          "2:4 only runs dense");
    const crisp_hybrid_cost tenth = COST("avx512f", 0, 1, dense / 10);
    CHECK(crisp_hybrid_choose(CRISP_HYBRID_FORM_AUTO, &tenth) != CRISP_HYBRID_DENSE,
          "d = 0.1 runs sparse");
    CHECK(crisp_hybrid_choose(CRISP_HYBRID_FORM_DENSE, &tenth) == CRISP_HYBRID_DENSE, "dense");
    CHECK(crisp_hybrid_choose(CRISP_HYBRID_FORM_FILLED, &tenth) == CRISP_HYBRID_FILLED, "filled");
    CHECK(crisp_hybrid_choose(CRISP_HYBRID_FORM_SPARSE, &half) == CRISP_HYBRID_RUNS, "sparse");
    crisp_hybrid_cost no_fill = tenth;
    no_fill.filled_values = 0;
    CHECK(crisp_hybrid_choose(CRISP_HYBRID_FORM_FILLED, &no_fill) == CRISP_HYBRID_RUNS,
          "no filled form: the runs");
    crisp_hybrid_cost big_fill = tenth;
    big_fill.filled_bytes = 2 * big_fill.run_bytes; /* 1:4 filled: twice the memory */
    CHECK(crisp_hybrid_choose(CRISP_HYBRID_FORM_AUTO, &big_fill) == CRISP_HYBRID_RUNS,
          "memory keeps 1:4 in its runs");
    const crisp_hybrid_cost shared = COST("avx512f", 0, 4, dense / 2);
    CHECK(crisp_hybrid_choose(CRISP_HYBRID_FORM_AUTO, &shared) == CRISP_HYBRID_RUNS,
          "row-shared 2:4 runs sparse");
    const crisp_hybrid_cost fc = COST("neon", 1, 1, dense / 2);
    CHECK(crisp_hybrid_choose(CRISP_HYBRID_FORM_AUTO, &fc) == CRISP_HYBRID_DENSE,
          "2:4 linear runs dense");
    /* A 2:4 linear read in place: half the MACs at the dense rate, no more
     * memory than dense from the file; only under auto, never forced. */
    crisp_hybrid_cost in_file = COST("avx512f", 1, 4, dense / 2);
    in_file.in_file = 1;
    CHECK(crisp_hybrid_choose(CRISP_HYBRID_FORM_AUTO, &in_file) == CRISP_HYBRID_IN_FILE,
          "2:4 linear: in place");
    CHECK(crisp_hybrid_choose(CRISP_HYBRID_FORM_DENSE, &in_file) == CRISP_HYBRID_DENSE &&
              crisp_hybrid_choose(CRISP_HYBRID_FORM_SPARSE, &in_file) == CRISP_HYBRID_RUNS,
          "forced forms keep their meaning");
    CHECK(crisp_hybrid_time(&fc, CRISP_HYBRID_IN_FILE) < 0.0, "no in-place form: -1");
    const crisp_hybrid_cost unknown = COST("riscv", 0, 1, dense / 2);
    CHECK(crisp_hybrid_choose(CRISP_HYBRID_FORM_AUTO, &unknown) == CRISP_HYBRID_RUNS,
          "unknown ISA: the runs");
    crisp_hybrid_cost big = half;
    big.run_bytes = dense; /* a dense copy would take four times the runs' memory */
    CHECK(crisp_hybrid_choose(CRISP_HYBRID_FORM_AUTO, &big) == CRISP_HYBRID_DENSE,
          "dense keeps no copy: memory does not keep it sparse");
    big.dense_bytes = 2 * big.run_bytes;
    CHECK(crisp_hybrid_choose(CRISP_HYBRID_FORM_AUTO, &big) != CRISP_HYBRID_DENSE,
          "a form over the memory slack is not chosen");
    /* The model-wide memory fit: least slowdown per byte freed first, ties by
     * op; layers that free nothing are dropped; it stops once enough is freed. */
    crisp_hybrid_demotion d[4] = {{100, 50.0, 3, 0}, {10, 1.0, 1, 0}, {0, 0.0, 0, 0}, {100, 50.0, 2, 0}};
    CHECK(crisp_hybrid_fit(d, 4, 50) == 110 && d[0].op == 1 && d[0].chosen && d[1].op == 2 &&
              d[1].chosen && d[2].op == 3 && !d[2].chosen,
          "fit: cheapest per byte, ties by op, stops once freed");
    crisp_hybrid_demotion e[2] = {{100, 50.0, 3, 1}, {10, 1.0, 1, 1}};
    CHECK(crisp_hybrid_fit(e, 2, 0) == 0 && !e[0].chosen && !e[1].chosen, "fit: nothing to free");
    crisp_hybrid_demotion f[3] = {{100, 50.0, 3, 0}, {10, 1.0, 1, 0}, {0, 0.0, 0, 0}};
    CHECK(crisp_hybrid_fit(f, 3, 1000) == 110 && f[0].chosen && f[1].chosen,
          "fit: every usable layer when the excess is larger");
    CHECK(crisp_hybrid_time(&half, CRISP_HYBRID_DENSE) == (double)dense &&
              crisp_hybrid_time(&half, CRISP_HYBRID_RUNS) > (double)dense &&
              crisp_hybrid_time(&no_fill, CRISP_HYBRID_FILLED) < 0.0 &&
              crisp_hybrid_time(&unknown, CRISP_HYBRID_RUNS) < 0.0,
          "times: dense R x K, runs over their rate, no form or no table -1");
    /* int8 convs: 2:4 per-row runs go filled (one B interleave for a block-row's
     * rows), row-shared runs stay; no dense form, whatever is forced. int8 runs
     * take 5 bytes per kept value, filled runs 1 per weight plus a column per 16. */
#define QCOST(isa, v, kept) \
    ((crisp_hybrid_cost){isa, 1, 0, v, kept, 5 * (kept), 2 * (kept), 2 * (kept) + (kept) / 4, \
                         512 / (v), 512 / 16, 0, 0, 0})
    const crisp_hybrid_cost q_row = QCOST("avx512vnni", 1, dense / 10);
    CHECK(crisp_hybrid_choose(CRISP_HYBRID_FORM_AUTO, &q_row) == CRISP_HYBRID_FILLED,
          "int8 per-row 2:4 runs filled");
    const crisp_hybrid_cost q_shared = QCOST("avx512vnni", 4, dense / 10);
    CHECK(crisp_hybrid_choose(CRISP_HYBRID_FORM_AUTO, &q_shared) == CRISP_HYBRID_RUNS,
          "int8 row-shared 2:4 keeps its runs");
    const crisp_hybrid_cost q_neon = QCOST("neon", 1, dense / 10);
    CHECK(crisp_hybrid_choose(CRISP_HYBRID_FORM_AUTO, &q_neon) == CRISP_HYBRID_FILLED,
          "int8 per-row on neon: filled");
    const crisp_hybrid_cost q_scalar = QCOST("scalar", 1, dense / 10);
    CHECK(crisp_hybrid_choose(CRISP_HYBRID_FORM_AUTO, &q_scalar) == CRISP_HYBRID_RUNS,
          "int8 on the scalar kernel (one row per call): the runs");
    CHECK(crisp_hybrid_choose(CRISP_HYBRID_FORM_DENSE, &q_row) == CRISP_HYBRID_RUNS,
          "int8 convs have no dense form");
    CHECK(crisp_hybrid_choose(CRISP_HYBRID_FORM_FILLED, &q_shared) == CRISP_HYBRID_FILLED,
          "int8 filled when forced");
    crisp_hybrid_cost q_one4 = QCOST("avx512vnni", 1, dense / 10);
    q_one4.filled_values = 4 * q_one4.run_values; /* 1:4: filled runs hold 3 zeros per value */
    CHECK(crisp_hybrid_choose(CRISP_HYBRID_FORM_AUTO, &q_one4) == CRISP_HYBRID_RUNS,
          "int8 per-row 1:4 keeps its runs");
#undef QCOST
    /* Few values per run: a 16 -> 96 1x1 conv at 2:4 (one block-column, 8
     * values per run) runs dense although its V = 4 runs execute half the
     * MACs; with 20x the columns the runs win again. */
    const crisp_hybrid_cost thin = {"avx512f", 0, 0, 4, 96 * 8, 8 * 96 * 8, 0, 0, 24, 0, 96 * 16, 96, 0};
    CHECK(crisp_hybrid_choose(CRISP_HYBRID_FORM_AUTO, &thin) == CRISP_HYBRID_DENSE,
          "runs of 8 values run dense");
    crisp_hybrid_cost wide = thin;
    wide.run_values *= 20, wide.run_bytes *= 20, wide.dense_values *= 20;
    CHECK(crisp_hybrid_choose(CRISP_HYBRID_FORM_AUTO, &wide) == CRISP_HYBRID_RUNS,
          "runs of 160 values stay runs");
#undef COST
    uint32_t form = 99;
    setenv("CRISP_HYBRID_FORM", "desne", 1);
    CHECK(crisp_hybrid_form_resolve(&form) == CRISP_ERR_ARGUMENT &&
              strstr(crisp_last_error(), "'desne'") != NULL,
          "bad form: %s", crisp_last_error());
    crisp_model *m = NULL;
    CHECK(crisp_model_load_buffer("x", 1, &m) == CRISP_ERR_ARGUMENT && m == NULL,
          "a bad form fails the load: %s", crisp_last_error());
    setenv("CRISP_HYBRID_FORM", "dense", 1);
    CHECK(crisp_hybrid_form_resolve(&form) == CRISP_OK && form == CRISP_HYBRID_FORM_DENSE, "dense");
    unsetenv("CRISP_HYBRID_FORM");
    CHECK(crisp_hybrid_form_resolve(&form) == CRISP_OK && form == CRISP_HYBRID_FORM_AUTO, "auto");
}

/* A session's tiling of an im2col conv (src/conv_fast.h): the tiles cover
 * the pixels, never exceed the plan's (the scratch is sized by it), and with
 * fewer plan tiles than chunks a session of T threads cuts chunks on tile
 * boundaries, so no two threads build the same patch matrix; one thread and
 * ops with enough tiles keep the plan; 1x1 convs read in place keep it too,
 * or with enough runs and a small input are one whole-image tile (they use
 * no scratch). */
static void session_tiling(void) {
    static const size_t shapes[][3] = {/* pixels, plan tiles, plan tile pixels */
                                       {196, 4, 64}, {49, 1, 64}, {3136, 49, 64}, {784, 13, 64},
                                       {7, 1, 64},   {1, 1, 64},  {300, 1, 512}};
    /* (runs, K): a direct conv with >= 2 T runs and an input of at most 1 MiB
     * splits by runs (one whole-image tile); too few runs or a larger input
     * keeps the pixel tiles. */
    static const size_t units_k[][2] = {{0, 16}, {6, 16}, {16, 16}, {16, 4096}};
    for (size_t i = 0; i < COUNT(shapes); i++)
        for (size_t u = 0; u < COUNT(units_k); u++)
            for (int direct = 0; direct < 2; direct++)
                for (size_t threads = 1; threads <= 5; threads++) {
                    crisp_op op;
                    memset(&op, 0, sizeof op);
                    op.kind = CRISP_OP_CONV2D;
                    op.k.conv.output_height = 1, op.k.conv.output_width = (uint32_t)shapes[i][0];
                    op.fast.path = CRISP_FAST_SPMM, op.fast.direct = direct;
                    op.fast.tiles = shapes[i][1], op.fast.tile_pixels = shapes[i][2];
                    op.fast.units = units_k[u][0], op.fast.k = units_k[u][1];
                    const crisp_fast_tiling t = crisp_fast_tiling_for(&op, threads);
                    const size_t px = shapes[i][0];
                    if (direct && threads > 1 && op.fast.units >= 2 * threads &&
                        op.fast.k * px * sizeof(float) <= ((size_t)1 << 20)) {
                        CHECK(t.tiles == 1 && t.tile_pixels == px && !t.by_tile,
                              "%zu pixels, %zu runs, %zu threads: %zu x %zu, by_tile %d", px,
                              op.fast.units, threads, t.tiles, t.tile_pixels, t.by_tile);
                        continue;
                    }
                    CHECK(t.tile_pixels >= 1 && t.tile_pixels <= shapes[i][2] &&
                              t.tiles * t.tile_pixels >= px && (t.tiles - 1) * t.tile_pixels < px,
                          "tiling of %zu pixels at %zu threads: %zu x %zu", px, threads, t.tiles,
                          t.tile_pixels);
                    const int keeps = threads == 1 || direct ||
                                      shapes[i][1] >= CRISP_FAST_CHUNKS_PER_THREAD * threads;
                    if (keeps)
                        CHECK(t.tiles == shapes[i][1] && t.tile_pixels == shapes[i][2],
                              "%zu pixels, %zu threads: plan changed", px, threads);
                    CHECK(t.by_tile == (threads > 1 && t.tiles >= threads &&
                                        (!direct || shapes[i][1] >= CRISP_FAST_CHUNKS_PER_THREAD * threads)),
                          "%zu pixels, %zu threads, direct %d: by_tile %d", px, threads, direct, t.by_tile);
                }
    crisp_op op; /* ResNet-50's 3x3 convs at 14 x 14, 2 threads: 4 tiles of 56, 56, 56, 28 */
    memset(&op, 0, sizeof op);
    op.kind = CRISP_OP_CONV2D;
    op.k.conv.output_height = op.k.conv.output_width = 14;
    op.fast.path = CRISP_FAST_SPMM, op.fast.tiles = 4, op.fast.tile_pixels = 64;
    const crisp_fast_tiling t = crisp_fast_tiling_for(&op, 2);
    CHECK(t.tiles == 4 && t.tile_pixels == 56 && t.by_tile, "14 x 14 at 2 threads: %zu x %zu",
          t.tiles, t.tile_pixels);
}

int main(void) {
    hybrid_forms();
    session_tiling();
    microkernels();
    layers();
    qs8_layers();
    maxpool_layers();
    qs8_maxpool_layers();
    printf("kernels: %s; %d variant(s) skipped (not supported by this CPU, or capped by CRISP_MAX_ISA)\n", crisp_kernel_isa(),
           skipped);
    return check_report();
}
