/* Expand fusion (src/fuse.c, crisp_fuse_expands; runtime/README.md "Expand
 * fusion"): which 1 x 1 convs the depthwise conv after them computes band by
 * band, and that fusing changes no bit. The model: two expand -> depthwise
 * stride-2 blocks on a 64 x 64 input (a dense expand reading the graph input
 * with a relu6, a hybrid one with a relu; both outputs over the 1 MiB that
 * fuses), and what must not fuse: an expand read by two depthwise convs, a
 * stride-1 depthwise conv, a depthwise conv after a depthwise conv, and a
 * block whose expand output fits in half an L2 (32 x 32 planes). Each is run
 * fused and with CRISP_FUSE_EXPAND=0 on the optimised kernels at 1, 2 and 3
 * threads, whole and through crisp_session_run_to on every value, and on the
 * reference kernels (which fuse nothing) whole at 1 thread. A fused conv's
 * output has no arena slot: reference sessions write it to an expand buffer
 * allocated with them, optimised ones only once crisp_session_run_to reads
 * it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fuse_check.h"
#include "crisp.h"
#include "format.h"
#include "hybrid_builder.h"
#include "kernels/ukernels.h"
#include "model.h"
#include "model_builder.h"
#include "session.h"

CHECK_DEFINE_COUNTERS;

enum { CI = 8, CE = 80, H = 64, W = 64 };

/* conv(in) -> new value of `co` channels; kernel k, stride s, padding k / 2. */
static uint32_t conv(mb_model *mb, uint32_t in, uint32_t weight, uint32_t co, uint32_t h,
                     uint32_t k, uint32_t s, uint32_t groups, uint32_t act) {
    const uint32_t oh = (h + 2 * (k / 2) - k) / s + 1;
    const uint32_t out = mb_value(mb, 3, co, oh, oh, 0);
    const uint32_t bias = mb_tensor(mb, 1, co, 0, 0, 0, NULL);
    const int32_t p[16] = {(int32_t)k, (int32_t)k, (int32_t)s, (int32_t)s, (int32_t)k / 2,
                           (int32_t)k / 2, (int32_t)k / 2, (int32_t)k / 2, 1, 1, (int32_t)groups};
    mb_op(mb, CRISP_OP_CONV2D, act, in, MB_NONE, out, weight, bias, p);
    return out;
}

static uint32_t hybrid_expand(mb_model *mb, unsigned *rng) {
    const mb_hybrid hy = {CE, 16, 16, 16, 2, 4, 1, 1, 0, 0};
    float *dense = malloc((size_t)CE * 16 * sizeof *dense);
    size_t size;
    uint64_t kept;
    uint8_t *bytes = mb_hybrid_encode(&hy, rng, dense, NULL, &size, &kept);
    const uint32_t dims[4] = {CE, 1, 1, 16};
    const uint32_t t = mb_tensor_raw(mb, CRISP_ENCODING_HYBRID_F32, 4, dims, bytes, size);
    free(bytes), free(dense);
    return t;
}

/* The model; expect[op] = 1 for the depthwise convs that fuse the op before. */
static uint8_t *build(unsigned *rng, size_t *size, int *expect, uint32_t *ops) {
    mb_model mb;
    mb_init(&mb);
    const uint32_t x = mb_value(&mb, 3, CI, H, W, 0);
    mb.input = x;
    const uint32_t e8 = mb_tensor(&mb, 4, CE, 1, 1, CI, NULL);
    const uint32_t e16 = mb_tensor(&mb, 4, 16, 1, 1, CI, NULL);
    const uint32_t dw = mb_tensor(&mb, 4, CE, 3, 3, 1, NULL);
    const uint32_t back = mb_tensor(&mb, 4, CI, 1, 1, CE, NULL);
    for (uint32_t i = 0; i < 32; i++) expect[i] = 0;
    const uint32_t v1 = conv(&mb, x, e8, CE, H, 1, 1, 1, CRISP_ACT_RELU6);         /* op 0 */
    const uint32_t v2 = conv(&mb, v1, dw, CE, H, 3, 2, CE, CRISP_ACT_RELU6);       /* op 1 */
    expect[1] = 1;
    const uint32_t v3 = conv(&mb, v2, back, CI, H / 2, 1, 1, 1, 0);                /* op 2 */
    const uint32_t v4 = conv(&mb, x, e16, 16, H, 1, 1, 1, CRISP_ACT_RELU);         /* op 3 */
    const uint32_t v5 = conv(&mb, v4, hybrid_expand(&mb, rng), CE, H, 1, 1, 1, 0); /* op 4 */
    const uint32_t v6 = conv(&mb, v5, dw, CE, H, 3, 2, CE, 0);                     /* op 5 */
    expect[5] = 1;
    const uint32_t v7 = conv(&mb, v6, back, CI, H / 2, 1, 1, 1, 0); /* op 6 */
    /* Read by two depthwise convs: not fused. */
    const uint32_t v8 = conv(&mb, x, e8, CE, H, 1, 1, 1, 0);          /* op 7 */
    const uint32_t v9 = conv(&mb, v8, dw, CE, H, 3, 2, CE, 0);        /* op 8 */
    const uint32_t v10 = conv(&mb, v8, dw, CE, H, 3, 2, CE, 0);       /* op 9 */
    const uint32_t v11 = conv(&mb, v9, back, CI, H / 2, 1, 1, 1, 0);  /* op 10 */
    const uint32_t v12 = conv(&mb, v10, back, CI, H / 2, 1, 1, 1, 0); /* op 11 */
    /* Stride 1, and a depthwise conv after a depthwise conv: not fused. */
    const uint32_t v13 = conv(&mb, x, e8, CE, H, 1, 1, 1, 0);           /* op 12 */
    const uint32_t v14 = conv(&mb, v13, dw, CE, H, 3, 1, CE, 0);        /* op 13 */
    const uint32_t v15 = conv(&mb, v14, dw, CE, H, 3, 2, CE, 0);        /* op 14 */
    const uint32_t v16 = conv(&mb, v15, back, CI, H / 2, 1, 1, 1, 0);   /* op 15 */
    uint32_t sum = v3;
    const uint32_t terms[4] = {v7, v11, v12, v16}; /* ops 16 .. 19 */
    for (int i = 0; i < 4; i++) {
        const uint32_t out = mb_value(&mb, 3, CI, H / 2, W / 2, 0);
        mb_op(&mb, CRISP_OP_ADD, 0, sum, terms[i], out, MB_NONE, MB_NONE, NULL);
        sum = out;
    }
    /* 32 x 32 planes: the expand's output (320 KiB) stays in L2 anyway. */
    const uint32_t v17 = conv(&mb, sum, e8, CE, H / 2, 1, 1, 1, 0);       /* op 20 */
    const uint32_t v18 = conv(&mb, v17, dw, CE, H / 2, 3, 2, CE, 0);      /* op 21 */
    mb.output = conv(&mb, v18, back, CI, H / 4, 1, 1, 1, 0);             /* op 22 */
    *ops = 23;
    uint8_t *f = mb_build(&mb, size);
    mb_free(&mb);
    return f;
}

int main(void) {
    unsigned rng = 777;
    size_t size;
    uint32_t ops;
    int expect[32];
    uint8_t *f = build(&rng, &size, expect, &ops);
    crisp_model *fused = fuse_check_load(f, size, NULL);
    crisp_model *plain = fuse_check_load(f, size, "CRISP_FUSE_EXPAND");
    if (fused == NULL || plain == NULL) return check_report();
    /* The row walk reads bands; a kernel set without it (scalar) fuses nothing. */
    const int walks = crisp_f32_kernels_best()->dwconv_direct_rows > 0;
    for (uint32_t i = 0; i < ops; i++) {
        const int want = walks && expect[i];
        CHECK(fused->ops[i].fuses_prev == want, "op %u fuses_prev %d, expected %d", (unsigned)i,
              fused->ops[i].fuses_prev, want);
        CHECK(fused->ops[i].fused_by_next == (walks && expect[i + 1]),
              "op %u fused_by_next %d", (unsigned)i, fused->ops[i].fused_by_next);
        CHECK(!plain->ops[i].fuses_prev && !plain->ops[i].fused_by_next,
              "CRISP_FUSE_EXPAND=0: op %u fused", (unsigned)i);
    }
    printf("kernels %s: %s\n", crisp_f32_kernels_best()->isa, walks ? "fused" : "no row walk");
    /* The two fused expand outputs (80 x 64 x 64 floats each) take no arena
     * space (this model's arena peaks elsewhere, at the expand read twice). */
    const uint64_t wide = (uint64_t)CE * H * W * sizeof(float);
    for (uint32_t i = 0; i < ops; i++)
        CHECK((fused->values[fused->ops[i].output].arena_offset == CRISP_NO_SLOT) ==
                  (fused->ops[i].fused_by_next != 0),
              "op %u: output slot does not match its fusion", (unsigned)i);
    CHECK(crisp_expand_buffer_bytes(plain, 0) == 0 && crisp_expand_buffer_bytes(plain, 1) == 0,
          "unfused: expand buffer bytes %llu / %llu",
          (unsigned long long)crisp_expand_buffer_bytes(plain, 1),
          (unsigned long long)crisp_expand_buffer_bytes(plain, 0));
    CHECK(crisp_expand_buffer_bytes(fused, 1) == 0 &&
              crisp_expand_buffer_bytes(fused, 0) == (walks ? wide : 0),
          "expand buffer bytes %llu (optimised) / %llu (reference)",
          (unsigned long long)crisp_expand_buffer_bytes(fused, 1),
          (unsigned long long)crisp_expand_buffer_bytes(fused, 0));
    CHECK(fused->arena_bytes <= plain->arena_bytes,
          "arena %llu fused, %llu unfused", (unsigned long long)fused->arena_bytes,
          (unsigned long long)plain->arena_bytes);
    const size_t nx = (size_t)CI * H * W, ny = (size_t)CI * (H / 4) * (W / 4);
    const size_t most = (size_t)CE * H * W;
    float *x = malloc(2 * nx * sizeof *x), *a = malloc(most * sizeof *a),
          *b = malloc(most * sizeof *b);
    for (size_t i = 0; i < 2 * nx; i++) x[i] = 2.0f * check_rand_float(&rng);
    /* The optimised kernels at 1, 2 and 3 threads (bands split between
     * threads), the reference kernels (which fuse nothing) at 1. */
    for (int k = 0; k < 4; k++) {
        const uint32_t threads = k < 3 ? (uint32_t)k + 1 : 1;
        const uint32_t flags = k == 3 ? CRISP_SESSION_REFERENCE_KERNELS : 0;
        const char *what = k >= 3 ? "reference kernels" : "optimised kernels";
        crisp_session *sf = fuse_check_session(fused, threads, flags);
        crisp_session *sp = fuse_check_session(plain, threads, flags);
        CHECK(crisp_session_run(sf, x, 2 * nx, a, 2 * ny) == CRISP_OK &&
                  crisp_session_run(sp, x, 2 * nx, b, 2 * ny) == CRISP_OK,
              "run: %s", crisp_last_error());
        CHECK(memcmp(a, b, 2 * ny * sizeof *a) == 0, "%s, %u threads: fused output differs",
              what, (unsigned)threads);
        CHECK((sf->expand_buffer != NULL) == (flags != 0 && walks),
              "%s: expand buffer %p after a run", what, (void *)sf->expand_buffer);
        /* Every value, the fused convs' own outputs included (the reference
         * kernels run every op on its own anyway, and slowly under qemu). */
        if (flags == 0) fuse_check_values(sf, sp, fused, x, nx, a, b, what, threads);
        CHECK((sf->expand_buffer != NULL) == walks, "%s: no expand buffer after run_to",
              what);
        for (uint32_t i = 0; i < ops; i++) {
            crisp_op_profile p;
            crisp_session_get_op_profile(sf, i, &p);
            const char *want = flags == 0 && fused->ops[i].fuses_prev      ? "dwconv (+expand)"
                               : flags == 0 && fused->ops[i].fused_by_next ? "fused into next)"
                                                                           : NULL;
            if (want != NULL) /* the expand conv: its own form, then the fusion */
                CHECK(strstr(p.kernel, want) != NULL && p.kernel[0] != 'f' &&
                          (p.effective_macs == 0) == (fused->ops[i].fused_by_next != 0),
                      "op %u: kernel %s, expected %s", (unsigned)i, p.kernel, want);
            else
                CHECK(strstr(p.kernel, "fused into") == NULL && strstr(p.kernel, "+expand") == NULL,
                      "%s: op %u: kernel %s", what, (unsigned)i, p.kernel);
        }
        crisp_session_free(sf), crisp_session_free(sp);
    }
    free(x), free(a), free(b), free(f);
    crisp_model_free(fused), crisp_model_free(plain);
    return check_report();
}
