/* Residual fusion (src/fuse.c; runtime/README.md, "Residual fusion"): which
 * ADDs a model's convs take, and that fusing changes no bit. One model holds
 * every case: a hybrid 1 x 1 conv (sparse runs read in place) and a dense
 * one whose ADD reads an earlier value, a downsampling pair (two fusable
 * convs: the later takes the ADD), a hybrid 3 x 3 conv on a band, a
 * depthwise conv (its ADD a pass after the kernel), and what must not fuse:
 * a conv with its own clamp, a conv output read twice, an ADD with a silu.
 * Each is run fused and with CRISP_FUSE_ADD=0 on both kernel sets at 1 and 3
 * threads, whole and through crisp_session_run_to on every value. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fuse_check.h"
#include "crisp.h"
#include "format.h"
#include "hybrid_builder.h"
#include "model.h"
#include "model_builder.h"

CHECK_DEFINE_COUNTERS;

enum { C = 32, H = 9, W = 9 };

static uint32_t hybrid_weights(mb_model *mb, unsigned *rng, uint32_t kh, uint32_t kw,
                               uint32_t v) {
    const mb_hybrid hy = {C, kh * kw * C, 16, 16, 2, 4, v, 1, 0, 0};
    float *dense = malloc((size_t)C * kh * kw * C * sizeof *dense);
    size_t size;
    uint64_t kept;
    uint8_t *bytes = mb_hybrid_encode(&hy, rng, dense, NULL, &size, &kept);
    const uint32_t dims[4] = {C, kh, kw, C};
    const uint32_t t = mb_tensor_raw(mb, CRISP_ENCODING_HYBRID_F32, 4, dims, bytes, size);
    free(bytes), free(dense);
    return t;
}

/* conv(in) -> new value; kh = kw = k, padding k / 2, groups g. */
static uint32_t conv(mb_model *mb, uint32_t in, uint32_t weight, uint32_t k, uint32_t groups,
                     uint32_t act) {
    const uint32_t out = mb_value(mb, 3, C, H, W, 0);
    const uint32_t bias = mb_tensor(mb, 1, C, 0, 0, 0, NULL);
    const int32_t p[16] = {(int32_t)k, (int32_t)k, 1, 1, (int32_t)k / 2, (int32_t)k / 2,
                           (int32_t)k / 2, (int32_t)k / 2, 1, 1, (int32_t)groups};
    mb_op(mb, CRISP_OP_CONV2D, act, in, MB_NONE, out, weight, bias, p);
    return out;
}

static uint32_t add(mb_model *mb, uint32_t a, uint32_t b, uint32_t act) {
    const uint32_t out = mb_value(mb, 3, C, H, W, 0);
    mb_op(mb, CRISP_OP_ADD, act, a, b, out, MB_NONE, MB_NONE, NULL);
    return out;
}

/* The model; *expect[op] = the op index whose ADD it should take (or
 * CRISP_NO_ID), in op order. */
static uint8_t *build(unsigned *rng, size_t *size, uint32_t *expect, uint32_t *ops) {
    mb_model mb;
    mb_init(&mb);
    const uint32_t x = mb_value(&mb, 3, C, H, W, 0);
    const uint32_t dense1 = mb_tensor(&mb, 4, C, 1, 1, C, NULL);
    const uint32_t dense3 = mb_tensor(&mb, 4, C, 3, 3, C, NULL);
    const uint32_t dw = mb_tensor(&mb, 4, C, 3, 3, 1, NULL);
    mb.input = x;
    for (uint32_t i = 0; i < 32; i++) expect[i] = CRISP_NO_ID;
    const uint32_t v1 = conv(&mb, x, dense3, 3, 1, CRISP_ACT_RELU);              /* op 0 */
    const uint32_t v2 = conv(&mb, v1, hybrid_weights(&mb, rng, 1, 1, 1), 1, 1, 0); /* op 1 */
    expect[1] = 2;
    const uint32_t v3 = add(&mb, v2, x, CRISP_ACT_RELU);                         /* op 2 */
    /* Downsampling pair: both branches fusable, the later (op 4) takes it. */
    const uint32_t v4 = conv(&mb, v3, hybrid_weights(&mb, rng, 3, 3, 4), 3, 1, 0); /* op 3 */
    const uint32_t v5 = conv(&mb, v3, dense1, 1, 1, 0);                          /* op 4 */
    expect[4] = 5;
    const uint32_t v6 = add(&mb, v4, v5, CRISP_ACT_NONE);                        /* op 5 */
    /* A conv with its own clamp keeps its ADD. */
    const uint32_t v7 = conv(&mb, v6, dense3, 3, 1, CRISP_ACT_RELU6);            /* op 6 */
    const uint32_t v8 = add(&mb, v7, v6, CRISP_ACT_RELU);                        /* op 7 */
    /* Depthwise: its ADD a pass after the kernel. */
    const uint32_t v9 = conv(&mb, v8, dw, 3, C, 0);                              /* op 8 */
    expect[8] = 9;
    const uint32_t v10 = add(&mb, v9, v8, CRISP_ACT_RELU6);                      /* op 9 */
    /* Read twice (by the ADD and by the next conv): not fused. */
    const uint32_t v11 = conv(&mb, v10, hybrid_weights(&mb, rng, 3, 3, 1), 3, 1, 0); /* op 10 */
    const uint32_t v12 = add(&mb, v11, v10, CRISP_ACT_NONE);                     /* op 11 */
    const uint32_t v13 = conv(&mb, v11, dense1, 1, 1, 0);                        /* op 12 */
    /* An ADD with a non-clamp activation: not fused. */
    const uint32_t v14 = add(&mb, v13, v12, CRISP_ACT_SILU);                     /* op 13 */
    /* Per-row 2:4 3 x 3 conv whose ADD is fused (runs, im2col or band); it
     * reads the residual, so the ADD keeps a buffer of its own. */
    const uint32_t v15 = conv(&mb, v14, hybrid_weights(&mb, rng, 3, 3, 1), 3, 1, 0); /* op 14 */
    expect[14] = 15;
    const uint32_t v16 = add(&mb, v15, v14, CRISP_ACT_RELU);                     /* op 15 */
    /* Two bottleneck-like blocks: each ADD takes its residual's buffer, the
     * second's residual being the first's output (a chain of shares). */
    const uint32_t v17 = conv(&mb, v16, dense3, 3, 1, CRISP_ACT_RELU);           /* op 16 */
    const uint32_t v18 = conv(&mb, v17, hybrid_weights(&mb, rng, 1, 1, 4), 1, 1, 0); /* op 17 */
    expect[17] = 18;
    const uint32_t v19 = add(&mb, v18, v16, CRISP_ACT_RELU);                     /* op 18 */
    const uint32_t v20 = conv(&mb, v19, dense3, 3, 1, CRISP_ACT_RELU);           /* op 19 */
    const uint32_t v21 = conv(&mb, v20, dense1, 1, 1, 0);                        /* op 20 */
    expect[20] = 21;
    const uint32_t v22 = add(&mb, v21, v19, CRISP_ACT_RELU);                     /* op 21 */
    /* The residual read by an op between the conv and its ADD: no share. */
    const uint32_t v23 = conv(&mb, v22, dense3, 3, 1, CRISP_ACT_RELU);           /* op 22 */
    const uint32_t v24 = conv(&mb, v23, hybrid_weights(&mb, rng, 1, 1, 1), 1, 1, 0); /* op 23 */
    expect[23] = 25;
    const uint32_t v25 = conv(&mb, v22, dense1, 1, 1, CRISP_ACT_RELU);           /* op 24 */
    const uint32_t v26 = add(&mb, v24, v22, CRISP_ACT_NONE);                     /* op 25 */
    mb.output = add(&mb, v26, v25, CRISP_ACT_RELU);                              /* op 26 */
    *ops = 27;
    uint8_t *f = mb_build(&mb, size);
    mb_free(&mb);
    return f;
}

int main(void) {
    unsigned rng = 12345;
    size_t size;
    uint32_t expect[32], ops;
    uint8_t *f = build(&rng, &size, expect, &ops);
    crisp_model *fused = fuse_check_load(f, size, NULL);
    crisp_model *plain = fuse_check_load(f, size, "CRISP_FUSE_ADD");
    if (fused == NULL || plain == NULL) return check_report();
    for (uint32_t i = 0; i < ops; i++) {
        const crisp_op *op = &fused->ops[i];
        CHECK(op->fused_add == expect[i], "op %u takes ADD %d, expected %d", (unsigned)i,
              (int)op->fused_add, (int)expect[i]);
        if (expect[i] != CRISP_NO_ID)
            CHECK(fused->ops[expect[i]].fused_into == i, "ADD %u: fused_into %d, expected %u",
                  (unsigned)expect[i], (int)fused->ops[expect[i]].fused_into, (unsigned)i);
        CHECK(plain->ops[i].fused_add == CRISP_NO_ID && plain->ops[i].fused_into == CRISP_NO_ID,
              "CRISP_FUSE_ADD=0: op %u fused", (unsigned)i);
    }
    /* In-place ADDs (src/planner.c): exactly these share their residual's
     * buffer; not ADD 2 (the graph input), 9 (a depthwise conv), 15 (the conv
     * reads the residual), 25 (read by op 24 in between). */
    for (uint32_t a = 0; a < ops; a++) {
        const uint32_t c = fused->ops[a].fused_into;
        if (c == CRISP_NO_ID) continue;
        const int want = a == 5 || a == 18 || a == 21;
        const crisp_value *r = &fused->values[crisp_fused_residual(fused, &fused->ops[c])];
        const int shares = fused->values[fused->ops[a].output].arena_offset == r->arena_offset;
        CHECK(shares == want, "ADD %u: %s its residual's buffer", (unsigned)a,
              shares ? "shares" : "does not share");
    }
    crisp_model_info fi, pi;
    crisp_model_get_info(fused, &fi), crisp_model_get_info(plain, &pi);
    CHECK(fi.arena_bytes <= pi.arena_bytes, "fused arena %llu > unfused %llu",
          (unsigned long long)fi.arena_bytes, (unsigned long long)pi.arena_bytes);
    const size_t nx = (size_t)C * H * W;
    float *x = malloc(2 * nx * sizeof *x), *a = malloc(2 * nx * sizeof *a),
          *b = malloc(2 * nx * sizeof *b);
    for (size_t i = 0; i < 2 * nx; i++) x[i] = 2.0f * check_rand_float(&rng);
    for (int k = 0; k < 4; k++) {
        const uint32_t threads = k & 1 ? 3 : 1;
        const uint32_t flags = k & 2 ? CRISP_SESSION_REFERENCE_KERNELS : 0;
        const char *what = k & 2 ? "reference kernels" : "optimised kernels";
        crisp_session *sf = fuse_check_session(fused, threads, flags);
        crisp_session *sp = fuse_check_session(plain, threads, flags);
        CHECK(crisp_session_run(sf, x, 2 * nx, a, 2 * nx) == CRISP_OK &&
                  crisp_session_run(sp, x, 2 * nx, b, 2 * nx) == CRISP_OK,
              "run: %s", crisp_last_error());
        CHECK(memcmp(a, b, 2 * nx * sizeof *a) == 0, "%s, %u threads: fused output differs",
              what, (unsigned)threads);
        /* Every value, the fused convs' own outputs included. */
        fuse_check_values(sf, sp, fused, x, nx, a, b, what, threads);
        for (uint32_t i = 0; i < ops; i++) {
            crisp_op_profile p;
            crisp_session_get_op_profile(sf, i, &p);
            const int is_fused = fused->ops[i].fused_into != CRISP_NO_ID;
            CHECK(is_fused == (strcmp(p.kernel, "add (fused)") == 0), "op %u: kernel %s",
                  (unsigned)i, p.kernel);
        }
        crisp_session_free(sf), crisp_session_free(sp);
    }
    free(x), free(a), free(b), free(f);
    crisp_model_free(fused), crisp_model_free(plain);
    return check_report();
}
