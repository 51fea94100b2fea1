#include "sample_models.h"

#include <stdlib.h>

#include "check.h"
#include "hybrid_builder.h"

/* A hybrid weight tensor with random pattern and values. */
static uint32_t hybrid(mb_model *m, unsigned *rng, mb_hybrid h, uint32_t rank, const uint32_t dims[4]) {
    float *dense = malloc((size_t)h.rows * h.cols * sizeof *dense);
    float *scales = malloc(h.rows * sizeof *scales);
    size_t size;
    uint64_t kept;
    uint8_t *bytes = mb_hybrid_encode(&h, rng, dense, scales, &size, &kept);
    const uint32_t id = mb_tensor_raw(m, h.int8 ? 4 : 2, rank, dims, bytes, size);
    free(dense), free(scales), free(bytes);
    return id;
}

static uint32_t dense_i8(mb_model *m, unsigned *rng, uint32_t rank, const uint32_t dims[4]) {
    size_t n = 1;
    for (uint32_t i = 0; i < rank; i++) n *= dims[i];
    int8_t *q = malloc(n);
    float *scales = malloc(dims[0] * sizeof *scales);
    for (size_t i = 0; i < n; i++) q[i] = (int8_t)check_rand_int(rng, -127, 127);
    for (uint32_t c = 0; c < dims[0]; c++) scales[c] = 0.004f + 0.0005f * (float)(c % 5);
    const uint32_t id = mb_tensor_i8(m, rank, dims, scales, q);
    free(q), free(scales);
    return id;
}

void mb_sample_hybrid_cnn(mb_model *m) {
    mb_init(m);
    unsigned rng = 606;
    const uint32_t x = mb_value(m, 3, 3, 8, 8, 0), c1 = mb_value(m, 3, 16, 8, 8, 0);
    const uint32_t c2 = mb_value(m, 3, 24, 4, 4, 0), dw = mb_value(m, 3, 24, 4, 4, 0);
    const uint32_t gp = mb_value(m, 3, 24, 1, 1, 0), fl = mb_value(m, 1, 24, 0, 0, 0);
    const uint32_t fc = mb_value(m, 1, 10, 0, 0, 0), sm = mb_value(m, 1, 10, 0, 0, 0);
    m->input = x, m->output = sm;
    /* conv1: Cin 3 is no multiple of 4: block-only 3:3 blocks 8x9. */
    const uint32_t w1d[4] = {16, 3, 3, 3};
    const uint32_t w1 = hybrid(m, &rng, (mb_hybrid){16, 27, 8, 9, 3, 3, 1, 2, 0, 0}, 4, w1d);
    const int32_t conv1[16] = {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    mb_op(m, 1, 1, x, MB_NONE, c1, w1, mb_tensor(m, 1, 16, 0, 0, 0, NULL), conv1);
    const uint32_t w2d[4] = {24, 3, 3, 16};
    const uint32_t w2 = hybrid(m, &rng, (mb_hybrid){24, 144, 16, 16, 2, 8, 4, 4, 0, 0}, 4, w2d);
    const int32_t conv2[16] = {3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1};
    mb_op(m, 1, 2, c1, MB_NONE, c2, w2, mb_tensor(m, 1, 24, 0, 0, 0, NULL), conv2);
    const int32_t dwp[16] = {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 24};
    const uint32_t wdw = mb_tensor(m, 4, 24, 3, 3, 1, NULL);
    mb_op(m, 1, 1, c2, MB_NONE, dw, wdw, MB_NONE, dwp);
    mb_op(m, 8, 0, dw, MB_NONE, gp, MB_NONE, MB_NONE, NULL);
    mb_op(m, 10, 0, gp, MB_NONE, fl, MB_NONE, MB_NONE, NULL);
    const uint32_t wfd[4] = {10, 24, 0, 0};
    const uint32_t wf = hybrid(m, &rng, (mb_hybrid){10, 24, 4, 8, 2, 4, 2, 2, 0, 0}, 2, wfd);
    mb_op(m, 2, 0, fl, MB_NONE, fc, wf, mb_tensor(m, 1, 10, 0, 0, 0, NULL), NULL);
    mb_op(m, 11, 0, fc, MB_NONE, sm, MB_NONE, MB_NONE, NULL);
}

void mb_sample_qcnn(mb_model *m) {
    mb_init(m);
    unsigned rng = 707;
    const uint32_t x = mb_value(m, 3, 3, 8, 8, 0);
    const uint32_t q0 = mb_qvalue(m, 3, 3, 8, 8, 0, 0.02f, -3);
    const uint32_t q1 = mb_qvalue(m, 3, 16, 8, 8, 0, 0.03f, -128);
    const uint32_t q2 = mb_qvalue(m, 3, 16, 4, 4, 0, 0.03f, -128);
    const uint32_t q3 = mb_qvalue(m, 3, 24, 4, 4, 0, 0.025f, -128);
    const uint32_t q4 = mb_qvalue(m, 3, 24, 2, 2, 0, 0.02f, 5);
    const uint32_t q5 = mb_qvalue(m, 3, 24, 2, 2, 0, 0.02f, -7);
    const uint32_t q6 = mb_qvalue(m, 3, 24, 2, 2, 0, 0.03f, -128);
    const uint32_t q7 = mb_qvalue(m, 3, 24, 3, 3, 0, 0.02f, -100);
    const uint32_t q8 = mb_qvalue(m, 3, 24, 2, 2, 0, 0.02f, -90);
    const uint32_t q9 = mb_qvalue(m, 3, 24, 1, 1, 0, 0.015f, -80);
    const uint32_t q10 = mb_qvalue(m, 1, 24, 0, 0, 0, 0.015f, -80);
    const uint32_t q11 = mb_qvalue(m, 1, 10, 0, 0, 0, 0.1f, 2);
    const uint32_t q12 = mb_qvalue(m, 1, 10, 0, 0, 0, 0.1f, 2);
    const uint32_t q13 = mb_qvalue(m, 1, 10, 0, 0, 0, 0.1f, 2);
    const uint32_t f = mb_value(m, 1, 10, 0, 0, 0), sm = mb_value(m, 1, 10, 0, 0, 0);
    m->input = x, m->output = sm;
    mb_op(m, 12, 0, x, MB_NONE, q0, MB_NONE, MB_NONE, NULL);
    const uint32_t w1d[4] = {16, 3, 3, 3};
    const int32_t conv1[16] = {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    const uint32_t w1 = dense_i8(m, &rng, 4, w1d);
    mb_op(m, 1, 1, q0, MB_NONE, q1, w1, mb_tensor(m, 1, 16, 0, 0, 0, NULL), conv1);
    const int32_t pool[16] = {2, 2, 2, 2, 0, 0, 1, 1, 0};
    mb_op(m, 6, 0, q1, MB_NONE, q2, MB_NONE, MB_NONE, pool);
    const uint32_t w2d[4] = {24, 3, 3, 16};
    const uint32_t w2 = hybrid(m, &rng, (mb_hybrid){24, 144, 16, 32, 2, 4, 2, 3, 1, 0}, 4, w2d);
    mb_op(m, 1, 2, q2, MB_NONE, q3, w2, mb_tensor(m, 1, 24, 0, 0, 0, NULL), conv1);
    const uint32_t wdd[4] = {24, 3, 3, 1};
    const int32_t dwp[16] = {3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 24};
    const uint32_t wdw = dense_i8(m, &rng, 4, wdd);
    mb_op(m, 1, 0, q3, MB_NONE, q4, wdw, mb_tensor(m, 1, 24, 0, 0, 0, NULL), dwp);
    const uint32_t w5d[4] = {24, 1, 1, 24};
    const int32_t pw[16] = {1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1};
    const uint32_t w5 = hybrid(m, &rng, (mb_hybrid){24, 24, 8, 8, 1, 4, 1, 2, 1, 0}, 4, w5d);
    mb_op(m, 1, 0, q4, MB_NONE, q5, w5, MB_NONE, pw);
    mb_op(m, 3, 1, q4, q5, q6, MB_NONE, MB_NONE, NULL);
    const int32_t avg[16] = {2, 2, 1, 1, 1, 1, 0, 0, 0};
    mb_op(m, 7, 0, q6, MB_NONE, q7, MB_NONE, MB_NONE, avg);
    const int32_t adaptive[16] = {2, 2};
    mb_op(m, 9, 0, q7, MB_NONE, q8, MB_NONE, MB_NONE, adaptive);
    mb_op(m, 8, 0, q8, MB_NONE, q9, MB_NONE, MB_NONE, NULL);
    mb_op(m, 10, 0, q9, MB_NONE, q10, MB_NONE, MB_NONE, NULL);
    const uint32_t wfd[4] = {10, 24, 0, 0};
    const uint32_t wf = hybrid(m, &rng, (mb_hybrid){10, 24, 8, 8, 2, 4, 1, 2, 1, 0}, 2, wfd);
    mb_op(m, 2, 0, q10, MB_NONE, q11, wf, mb_tensor(m, 1, 10, 0, 0, 0, NULL), NULL);
    mb_op(m, 4, 0, q11, MB_NONE, q12, MB_NONE, MB_NONE, NULL);
    mb_op(m, 5, 0, q12, MB_NONE, q13, MB_NONE, MB_NONE, NULL);
    mb_op(m, 13, 0, q13, MB_NONE, f, MB_NONE, MB_NONE, NULL);
    mb_op(m, 11, 0, f, MB_NONE, sm, MB_NONE, MB_NONE, NULL);
}
