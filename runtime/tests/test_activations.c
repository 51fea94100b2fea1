/* The 1.2 ops of timm's mobile networks through the loader and a session: a
 * small squeeze-excite CNN with silu/hardswish/sigmoid/hardsigmoid fused on
 * dense, depthwise and 1x1 convs, ADD and LINEAR, the standalone activation
 * ops and MUL_CHANNELS in both scale shapes, against naive.c, on the
 * reference and the optimised kernels, bitwise equal for 1..4 threads; and
 * the loader's refusals of malformed or int8 uses. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "crisp.h"
#include "loader_check.h"
#include "model_builder.h"
#include "naive.h"

CHECK_DEFINE_COUNTERS;

enum { CONV = 1, LINEAR = 2, ADD = 3, GAP = 8, RESHAPE = 10, QUANTIZE = 12, DEQUANTIZE = 13 };
enum { SILU = 14, SIGMOID = 15, HARDSWISH = 16, HARDSIGMOID = 17, MUL_CHANNELS = 18 };
enum { A_NONE, A_RELU, A_RELU6, A_SILU, A_SIGMOID, A_HARDSWISH, A_HARDSIGMOID };

static const int32_t conv3x3[16] = {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
static const int32_t dw3x3[16] = {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 16};
static const int32_t conv1x1[16] = {1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1};

/* Value and op ids of the model the tests break. */
typedef struct se_ids {
    uint32_t v[18], op[17];
} se_ids;

static void make_se_cnn(mb_model *m, se_ids *id) {
    mb_init(m);
    m->version_minor = 2;
    uint32_t *v = id->v, *o = id->op;
    v[0] = mb_value(m, 3, 4, 8, 8, 0);
    v[1] = mb_value(m, 3, 16, 8, 8, 0);
    o[0] = mb_op(m, CONV, A_SILU, v[0], MB_NONE, v[1], mb_tensor(m, 4, 16, 3, 3, 4, NULL),
                 mb_tensor(m, 1, 16, 0, 0, 0, NULL), conv3x3);
    v[2] = mb_value(m, 3, 16, 8, 8, 0);
    o[1] = mb_op(m, CONV, A_HARDSWISH, v[1], MB_NONE, v[2], mb_tensor(m, 4, 16, 3, 3, 1, NULL),
                 mb_tensor(m, 1, 16, 0, 0, 0, NULL), dw3x3);
    v[3] = mb_value(m, 3, 16, 1, 1, 0);
    o[2] = mb_op(m, GAP, 0, v[2], MB_NONE, v[3], MB_NONE, MB_NONE, NULL);
    v[4] = mb_value(m, 3, 4, 1, 1, 0);
    o[3] = mb_op(m, CONV, A_RELU, v[3], MB_NONE, v[4], mb_tensor(m, 4, 4, 1, 1, 16, NULL),
                 mb_tensor(m, 1, 4, 0, 0, 0, NULL), conv1x1);
    v[5] = mb_value(m, 3, 16, 1, 1, 0);
    o[4] = mb_op(m, CONV, A_SIGMOID, v[4], MB_NONE, v[5], mb_tensor(m, 4, 16, 1, 1, 4, NULL),
                 mb_tensor(m, 1, 16, 0, 0, 0, NULL), conv1x1);
    v[6] = mb_value(m, 3, 16, 8, 8, 0);
    o[5] = mb_op(m, MUL_CHANNELS, 0, v[2], v[5], v[6], MB_NONE, MB_NONE, NULL);
    v[7] = mb_value(m, 3, 8, 8, 8, 0);
    o[6] = mb_op(m, CONV, A_HARDSIGMOID, v[6], MB_NONE, v[7], mb_tensor(m, 4, 8, 1, 1, 16, NULL),
                 MB_NONE, conv1x1);
    const uint32_t unary[4] = {SILU, SIGMOID, HARDSWISH, HARDSIGMOID};
    for (int k = 0; k < 4; k++) {
        v[8 + k] = mb_value(m, 3, 8, 8, 8, 0);
        o[7 + k] = mb_op(m, unary[k], 0, v[7 + k], MB_NONE, v[8 + k], MB_NONE, MB_NONE, NULL);
    }
    v[12] = mb_value(m, 3, 8, 8, 8, 0);
    o[11] = mb_op(m, ADD, A_SILU, v[11], v[7], v[12], MB_NONE, MB_NONE, NULL);
    v[13] = mb_value(m, 1, 8, 0, 0, 0);
    o[12] = mb_op(m, GAP, 0, v[12], MB_NONE, v[13], MB_NONE, MB_NONE, NULL);
    v[14] = mb_value(m, 3, 8, 8, 8, 0);
    o[13] = mb_op(m, MUL_CHANNELS, 0, v[12], v[13], v[14], MB_NONE, MB_NONE, NULL);
    v[15] = mb_value(m, 1, 512, 0, 0, 0);
    o[14] = mb_op(m, RESHAPE, 0, v[14], MB_NONE, v[15], MB_NONE, MB_NONE, NULL);
    v[16] = mb_value(m, 1, 10, 0, 0, 0);
    o[15] = mb_op(m, LINEAR, A_SIGMOID, v[15], MB_NONE, v[16], mb_tensor(m, 2, 10, 512, 0, 0, NULL),
                  mb_tensor(m, 1, 10, 0, 0, 0, NULL), NULL);
    m->input = v[0];
    m->output = v[16];
}

static const float *tensor_of(const mb_model *m, uint32_t op, int bias) {
    const uint32_t t = bias ? m->ops[op].bias : m->ops[op].weight;
    return t == MB_NONE ? NULL : m->tensors[t].data;
}

static void gap(int c, int plane, const float *x, float *y) {
    for (int k = 0; k < c; k++) {
        double s = 0;
        for (int i = 0; i < plane; i++) s += x[k * plane + i];
        y[k] = (float)(s / plane);
    }
}

/* The model by naive.c, one sample. */
static void naive_forward(const mb_model *m, const se_ids *id, const float *x, float *out) {
    static float v1[1024], v2[1024], v3[16], v4[4], v5[16], v6[1024], v7[512], u[5][512];
    static float v12[512], v13[8], v14[512];
    naive_conv c = {4, 8, 8, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, A_SILU};
    naive_conv2d(&c, x, tensor_of(m, id->op[0], 0), tensor_of(m, id->op[0], 1), v1);
    c = (naive_conv){16, 8, 8, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 16, A_HARDSWISH};
    naive_conv2d(&c, v1, tensor_of(m, id->op[1], 0), tensor_of(m, id->op[1], 1), v2);
    gap(16, 64, v2, v3);
    c = (naive_conv){16, 1, 1, 4, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, A_RELU};
    naive_conv2d(&c, v3, tensor_of(m, id->op[3], 0), tensor_of(m, id->op[3], 1), v4);
    c = (naive_conv){4, 1, 1, 16, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, A_SIGMOID};
    naive_conv2d(&c, v4, tensor_of(m, id->op[4], 0), tensor_of(m, id->op[4], 1), v5);
    naive_mul_channels(16, 64, v2, v5, v6);
    c = (naive_conv){16, 8, 8, 8, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, A_HARDSIGMOID};
    naive_conv2d(&c, v6, tensor_of(m, id->op[6], 0), NULL, v7);
    memcpy(u[0], v7, sizeof v7);
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 512; i++) u[k + 1][i] = naive_act(u[k][i], A_SILU + k);
    for (int i = 0; i < 512; i++) v12[i] = naive_act((double)u[4][i] + v7[i], A_SILU);
    gap(8, 64, v12, v13);
    naive_mul_channels(8, 64, v12, v13, v14);
    naive_linear(512, 10, A_SIGMOID, v14, tensor_of(m, id->op[15], 0),
                 tensor_of(m, id->op[15], 1), out);
}

static void test_se_cnn(void) {
    mb_model mb;
    se_ids id;
    make_se_cnn(&mb, &id);
    size_t n;
    uint8_t *f = mb_build(&mb, &n);
    crisp_model *m;
    if (crisp_model_load_buffer(f, n, &m) != CRISP_OK) {
        CHECK(0, "se_cnn: %s", crisp_last_error());
        free(f), mb_free(&mb);
        return;
    }
    enum { BATCH = 2, IN = 256, OUT = 10 };
    float x[BATCH * IN], want[BATCH * OUT], y1[BATCH * OUT], y[BATCH * OUT];
    unsigned rng = 5;
    for (int i = 0; i < BATCH * IN; i++) x[i] = 3 * check_rand_float(&rng);
    for (int b = 0; b < BATCH; b++) naive_forward(&mb, &id, x + b * IN, want + b * OUT);
    for (int ref = 0; ref <= 1; ref++) {
        for (uint32_t t = 1; t <= 4; t++) {
            crisp_session_options o = {t, ref ? CRISP_SESSION_REFERENCE_KERNELS : 0};
            crisp_session *s;
            CHECK(crisp_session_create_with_options(m, &o, &s) == CRISP_OK, "session: %s",
                  crisp_last_error());
            CHECK(crisp_session_run(s, x, BATCH * IN, t == 1 ? y1 : y, BATCH * OUT) == CRISP_OK,
                  "run: %s", crisp_last_error());
            if (t > 1)
                CHECK(memcmp(y, y1, sizeof y) == 0, "%s kernels: %u threads differ from 1",
                      ref ? "reference" : "optimised", t);
            crisp_session_free(s);
        }
        double worst = 0;
        for (int i = 0; i < BATCH * OUT; i++)
            if (!(fabs(y1[i] - want[i]) <= worst)) worst = fabs(y1[i] - want[i]);
        CHECK(worst < 2e-6, "%s kernels: max error %g against naive.c",
              ref ? "reference" : "optimised", worst);
    }
    crisp_model_free(m);
    free(f);
    mb_free(&mb);
}

/* One malformed variant of the SE CNN: edit, build, expect. */
#define EXPECT_BROKEN(edit, status, needle)                                                  \
    do {                                                                                     \
        mb_model mb_;                                                                        \
        se_ids id_;                                                                          \
        make_se_cnn(&mb_, &id_);                                                             \
        mb_model *m = &mb_;                                                                  \
        const se_ids *id = &id_;                                                             \
        edit;                                                                                \
        size_t n_;                                                                           \
        uint8_t *f_ = mb_build(&mb_, &n_);                                                   \
        EXPECT_LOAD(f_, n_, status, needle, needle);                                         \
        free(f_);                                                                            \
        mb_free(&mb_);                                                                       \
    } while (0)

static void test_malformed_ops(void) {
    EXPECT_BROKEN(m->ops[id->op[5]].inputs[1] = id->v[1], CRISP_ERR_FORMAT,
                  "GRPH: op 5 (MUL_CHANNELS): inputs have shapes (16,8,8) and (16,8,8); "
                  "MUL_CHANNELS needs (C,H,W) and (C,1,1) or (C)");
    EXPECT_BROKEN(m->ops[id->op[13]].inputs[1] = id->v[4], CRISP_ERR_FORMAT,
                  "GRPH: op 13 (MUL_CHANNELS): inputs have shapes (8,8,8) and (4,1,1)");
    EXPECT_BROKEN((m->ops[id->op[5]].inputs[1] = MB_NONE, m->ops[id->op[5]].input_count = 1),
                  CRISP_ERR_FORMAT, "GRPH: op 5 (MUL_CHANNELS): input_count is 1, expected 2");
    EXPECT_BROKEN((m->ops[id->op[15]].kind = MUL_CHANNELS, m->ops[id->op[15]].weight = MB_NONE,
                   m->ops[id->op[15]].bias = MB_NONE, m->ops[id->op[15]].activation = 0,
                   m->ops[id->op[15]].inputs[1] = id->v[3], m->ops[id->op[15]].input_count = 2),
                  CRISP_ERR_FORMAT,
                  "GRPH: op 15 (MUL_CHANNELS): input value 15 has shape (512), expected rank 3");
    EXPECT_BROKEN(m->ops[id->op[7]].activation = A_RELU, CRISP_ERR_FORMAT,
                  "GRPH: op 7 (SILU): activation is 1, but only CONV2D, LINEAR and ADD");
    EXPECT_BROKEN(m->ops[id->op[8]].params[0] = 1, CRISP_ERR_FORMAT,
                  "GRPH: op 8 (SIGMOID): unused param 0 is 1, expected 0");
    EXPECT_BROKEN(m->ops[id->op[9]].weight = 0, CRISP_ERR_FORMAT,
                  "GRPH: op 9 (HARDSWISH): weight/bias are 0/4294967295");
    EXPECT_BROKEN(m->values[id->v[11]].dims[0] = 9, CRISP_ERR_FORMAT,
                  "GRPH: op 10 (HARDSIGMOID): output value 11 has shape (9,8,8), expected (8,8,8)");
    EXPECT_BROKEN(m->ops[id->op[0]].activation = 7, CRISP_ERR_UNSUPPORTED,
                  "GRPH: op 0 (CONV2D): activation 7 is not supported by this runtime (it knows "
                  "0..6); upgrade crisp-edge");
    EXPECT_BROKEN(m->ops[id->op[7]].kind = 19, CRISP_ERR_UNSUPPORTED,
                  "GRPH: op 7: kind 19 is not supported by this runtime (it knows 1..18); "
                  "upgrade crisp-edge");
    (void)conv1x1;
}

/* int8 has no kernel for them: the loader refuses the op, naming it. */
static void test_int8_refused(void) {
    static const uint32_t wdims[4] = {4, 1, 1, 4};
    static const float scales[4] = {0.1f, 0.1f, 0.1f, 0.1f};
    static const int8_t q[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    for (int conv = 0; conv <= 1; conv++) {
        mb_model m;
        mb_init(&m);
        m.version_minor = 2;
        const uint32_t x = mb_value(&m, 3, 4, 2, 2, 0);
        const uint32_t qx = mb_qvalue(&m, 3, 4, 2, 2, 0, 0.05f, 3);
        mb_op(&m, QUANTIZE, 0, x, MB_NONE, qx, MB_NONE, MB_NONE, NULL);
        const uint32_t qy = mb_qvalue(&m, 3, 4, 2, 2, 0, 0.05f, 3);
        if (conv)
            mb_op(&m, CONV, A_HARDSWISH, qx, MB_NONE, qy, mb_tensor_i8(&m, 4, wdims, scales, q),
                  MB_NONE, conv1x1);
        else
            mb_op(&m, SIGMOID, 0, qx, MB_NONE, qy, MB_NONE, MB_NONE, NULL);
        const uint32_t y = mb_value(&m, 3, 4, 2, 2, 0);
        mb_op(&m, DEQUANTIZE, 0, qy, MB_NONE, y, MB_NONE, MB_NONE, NULL);
        m.input = x;
        m.output = y;
        size_t n;
        uint8_t *f = mb_build(&m, &n);
        EXPECT_LOAD(f, n, CRISP_ERR_FORMAT,
                    conv ? "GRPH: op 1 (CONV2D): input value 1 is int8, expected float32 (silu, "
                           "sigmoid, hardswish and hardsigmoid are float32 only)"
                         : "GRPH: op 1 (SIGMOID): input value 1 is int8, expected float32 (this "
                           "op is float32 only)",
                    conv ? "int8 conv + hardswish" : "int8 sigmoid");
        free(f);
        mb_free(&m);
    }
}

int main(void) {
    test_se_cnn();
    test_malformed_ops();
    test_int8_refused();
    return check_report();
}
