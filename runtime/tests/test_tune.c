/* Bias tuning of the last stage (src/stage.c, src/tune.c, crisp_model_write_tuned):
 * the stage found on a small residual CNN (strided + hybrid conv, downsample,
 * add + relu, depthwise relu6 without bias, max and avg pool, a second
 * residual add, global pool) and on the other test models; the stage's
 * forward against a session's logits; its gradients (every tuned bias, head
 * weight and bias) against finite differences of the loss; tuning lowers the
 * loss below the head-only optimum on features that are not separable;
 * bitwise repeatable; the written file keeps every other tensor byte for byte
 * and runs as tuned; bad inputs and refusals. argv[1]: a scratch directory. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "crisp.h"
#include "head_models.h"
#include "hybrid_builder.h"
#include "model.h"
#include "model_builder.h"
#include "scratch.h"
#include "tune.h"

CHECK_DEFINE_COUNTERS;

enum { CLASSES = 3 };


/* The residual CNN (ops in file order):
 *  0 conv0 3->8 3x3 p1 relu (8x8, frozen)         value 1
 *  1 convA 8->8 3x3 s2 p1 relu, HYBRID_F32, bias   value 2   } the stage, 4x4
 *  2 convB 8->8 3x3 p1, bias                       value 3   }
 *  3 down  8->8 1x1 s2, bias                       value 4   }
 *  4 add(3, 4) relu                                value 5   }
 *  5 depthwise 3x3 p1 relu6, no bias               value 6   }
 *  6 max pool 3x3 s1 p1                            value 7   }
 *  7 avg pool 3x3 s1 p1 (no pad count)             value 8   }
 *  8 add(8, 5)                                     value 9   }
 *  9 global avg pool                               value 10  }
 * 10 reshape (8)                                   value 11  }
 * 11 head LINEAR 8 -> 3                            value 12
 * 12 softmax                                       value 13 */
static void residual_cnn(mb_model *m) {
    mb_init(m);
    unsigned rng = 77;
    const uint32_t x = mb_value(m, 3, 3, 8, 8, 0), c0 = mb_value(m, 3, 8, 8, 8, 0);
    uint32_t v[12];
    for (int i = 0; i < 8; i++) v[i] = mb_value(m, 3, 8, 4, 4, 0);
    const uint32_t g = mb_value(m, 3, 8, 1, 1, 0), f = mb_value(m, 1, 8, 0, 0, 0);
    const uint32_t h = mb_value(m, 1, CLASSES, 0, 0, 0), sm = mb_value(m, 1, CLASSES, 0, 0, 0);
    m->input = x, m->output = sm;
    const int32_t c3[16] = {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    const int32_t c3s2[16] = {3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1};
    const int32_t c1s2[16] = {1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1};
    const int32_t dw[16] = {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 8};
    const int32_t mp[16] = {3, 3, 1, 1, 1, 1, 1, 1, 0};
    const int32_t ap[16] = {3, 3, 1, 1, 1, 1, 0, 0, 0};
    mb_op(m, 1, 1, x, MB_NONE, c0, mb_tensor(m, 4, 8, 3, 3, 3, NULL),
          mb_tensor(m, 1, 8, 0, 0, 0, NULL), c3);
    /* convA: 8 x 72, 4x8 blocks, 5 of 9 block-columns kept per block-row, 2:4 inside. */
    const mb_hybrid hy = {8, 72, 4, 8, 2, 4, 1, 5, 0, 0};
    float *dense = malloc(8 * 72 * sizeof *dense);
    size_t size;
    uint64_t kept;
    uint8_t *bytes = mb_hybrid_encode(&hy, &rng, dense, NULL, &size, &kept);
    const uint32_t wd[4] = {8, 3, 3, 8};
    const uint32_t wa = mb_tensor_raw(m, 2, 4, wd, bytes, size);
    free(dense), free(bytes);
    mb_op(m, 1, 1, c0, MB_NONE, v[0], wa, mb_tensor(m, 1, 8, 0, 0, 0, NULL), c3s2);
    mb_op(m, 1, 0, v[0], MB_NONE, v[1], mb_tensor(m, 4, 8, 3, 3, 8, NULL),
          mb_tensor(m, 1, 8, 0, 0, 0, NULL), c3);
    mb_op(m, 1, 0, c0, MB_NONE, v[2], mb_tensor(m, 4, 8, 1, 1, 8, NULL),
          mb_tensor(m, 1, 8, 0, 0, 0, NULL), c1s2);
    mb_op(m, 3, 1, v[1], v[2], v[3], MB_NONE, MB_NONE, NULL);
    mb_op(m, 1, 2, v[3], MB_NONE, v[4], mb_tensor(m, 4, 8, 3, 3, 1, NULL), MB_NONE, dw);
    mb_op(m, 6, 0, v[4], MB_NONE, v[5], MB_NONE, MB_NONE, mp);
    mb_op(m, 7, 0, v[5], MB_NONE, v[6], MB_NONE, MB_NONE, ap);
    mb_op(m, 3, 0, v[6], v[3], v[7], MB_NONE, MB_NONE, NULL);
    mb_op(m, 8, 0, v[7], MB_NONE, g, MB_NONE, MB_NONE, NULL);
    mb_op(m, 10, 0, g, MB_NONE, f, MB_NONE, MB_NONE, NULL);
    mb_op(m, 2, 0, f, MB_NONE, h, mb_tensor(m, 2, CLASSES, 8, 0, 0, NULL),
          mb_tensor(m, 1, CLASSES, 0, 0, 0, NULL), NULL);
    const int32_t axis[16] = {0};
    mb_op(m, 11, 0, h, MB_NONE, sm, MB_NONE, MB_NONE, axis);
}

static crisp_model *load_residual(void) {
    mb_model mb;
    residual_cnn(&mb);
    crisp_model *m = hm_load(&mb);
    mb_free(&mb);
    return m;
}

/* n random graph inputs, their stage inputs (threads as given) and random labels. */
static float *stage_inputs(const crisp_model *m, size_t n, uint32_t threads, float **inputs_out,
                           int32_t *labels) {
    crisp_stage_info st;
    crisp_model_get_stage(m, &st);
    float *in = malloc(n * 192 * sizeof *in), *x = malloc(n * st.input_elements * sizeof *x);
    unsigned rng = 5;
    for (size_t i = 0; i < n * 192; i++) in[i] = check_rand_float(&rng);
    for (size_t i = 0; i < n; i++) labels[i] = (int32_t)(i % CLASSES);
    crisp_session *s;
    CHECK(crisp_session_create_with_options(m, &(crisp_session_options){threads, 0}, &s) ==
              CRISP_OK, "%s", crisp_last_error());
    CHECK(crisp_session_run_to(s, st.input_value, in, n * 192, x, n * st.input_elements) ==
              CRISP_OK, "%s", crisp_last_error());
    crisp_session_free(s);
    if (inputs_out) *inputs_out = in;
    else free(in);
    return x;
}

static void test_stage_detection(void) {
    crisp_model *m = load_residual();
    crisp_stage_info st;
    CHECK(crisp_model_get_stage(m, &st) == CRISP_OK, "%s", crisp_last_error());
    CHECK(st.first_op == 1 && st.pool_op == 9 && st.head_op == 11, "stage ops %u..%u head %u",
          st.first_op, st.pool_op, st.head_op);
    CHECK(st.input_value == 1 && st.input_elements == 512, "input value %u (%u elements)",
          st.input_value, st.input_elements);
    CHECK(st.height == 4 && st.width == 4, "resolution %ux%u", st.height, st.width);
    CHECK(st.tuned_ops == 3 && st.tuned_biases == 24, "tuned %u ops, %llu biases", st.tuned_ops,
          (unsigned long long)st.tuned_biases);
    const uint32_t want[3] = {1, 2, 3};
    for (uint32_t i = 0; i < 3; i++) {
        uint32_t op, ch;
        CHECK(crisp_model_get_stage_op(m, i, &op, &ch) == CRISP_OK && op == want[i] && ch == 8,
              "tuned op %u: %u (%u channels)", i, op, ch);
    }
    uint32_t op, ch;
    CHECK(crisp_model_get_stage_op(m, 3, &op, &ch) == CRISP_ERR_ARGUMENT, "index 3 accepted");
    crisp_model_free(m);

    /* The personalisation test CNN: conv on the graph input, global pool, head. */
    mb_model mb;
    hm_cnn(&mb, &(hm_options){.classes = 4, .features = 5, .bias = 1, .hybrid_conv = 1,
                              .tail = "s"});
    m = hm_load(&mb);
    mb_free(&mb);
    CHECK(crisp_model_get_stage(m, &st) == CRISP_OK, "%s", crisp_last_error());
    CHECK(st.first_op == 0 && st.input_value == 0 && st.tuned_ops == 1 && st.tuned_biases == 5 &&
              st.height == 6,
          "hm_cnn stage: first %u input %u tuned %u/%llu", st.first_op, st.input_value,
          st.tuned_ops, (unsigned long long)st.tuned_biases);
    crisp_model_free(m);

    /* int8: refused. */
    hm_int8(&mb);
    m = hm_load(&mb);
    mb_free(&mb);
    CHECK(crisp_model_get_stage(m, &st) == CRISP_ERR_UNSUPPORTED &&
              strstr(crisp_last_error(), "float32") != NULL,
          "int8: %s", crisp_last_error());
    crisp_model_free(m);

    /* No global pool before the head. */
    mb_init(&mb);
    {
        const uint32_t x = mb_value(&mb, 1, 8, 0, 0, 0), a = mb_value(&mb, 1, 6, 0, 0, 0);
        const uint32_t y = mb_value(&mb, 1, 3, 0, 0, 0);
        mb.input = x, mb.output = y;
        mb_op(&mb, 2, 1, x, MB_NONE, a, mb_tensor(&mb, 2, 6, 8, 0, 0, NULL), MB_NONE, NULL);
        mb_op(&mb, 2, 0, a, MB_NONE, y, mb_tensor(&mb, 2, 3, 6, 0, 0, NULL), MB_NONE, NULL);
    }
    m = hm_load(&mb);
    mb_free(&mb);
    CHECK(crisp_model_get_stage(m, &st) == CRISP_ERR_UNSUPPORTED &&
              strstr(crisp_last_error(), "no last stage found") != NULL &&
              strstr(crisp_last_error(), "op 0 (LINEAR)") != NULL,
          "MLP: %s", crisp_last_error());
    crisp_model_free(m);

    /* An op without a backward pass inside the stage (DEQUANTIZE at the stage's resolution). */
    mb_init(&mb);
    {
        const uint32_t x = mb_value(&mb, 3, 3, 4, 4, 0), c = mb_value(&mb, 3, 4, 4, 4, 0);
        const uint32_t q = mb_qvalue(&mb, 3, 4, 4, 4, 0, 0.05f, 0);
        const uint32_t d = mb_value(&mb, 3, 4, 4, 4, 0), g = mb_value(&mb, 1, 4, 0, 0, 0);
        const uint32_t y = mb_value(&mb, 1, 2, 0, 0, 0);
        mb.input = x, mb.output = y;
        const int32_t c3[16] = {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
        mb_op(&mb, 1, 0, x, MB_NONE, c, mb_tensor(&mb, 4, 4, 3, 3, 3, NULL),
              mb_tensor(&mb, 1, 4, 0, 0, 0, NULL), c3);
        mb_op(&mb, 12, 0, c, MB_NONE, q, MB_NONE, MB_NONE, NULL);
        mb_op(&mb, 13, 0, q, MB_NONE, d, MB_NONE, MB_NONE, NULL);
        mb_op(&mb, 8, 0, d, MB_NONE, g, MB_NONE, MB_NONE, NULL);
        mb_op(&mb, 2, 0, g, MB_NONE, y, mb_tensor(&mb, 2, 2, 4, 0, 0, NULL), MB_NONE, NULL);
    }
    m = hm_load(&mb);
    mb_free(&mb);
    CHECK(crisp_model_get_stage(m, &st) == CRISP_ERR_UNSUPPORTED &&
              strstr(crisp_last_error(), "op 2 (DEQUANTIZE") != NULL &&
              strstr(crisp_last_error(), "no backward pass") != NULL,
          "dequantize in the stage: %s", crisp_last_error());
    crisp_model_free(m);

    /* A fused 1.2 activation (silu, ...): no backward pass for it, so refused, not ignored. */
    mb_init(&mb);
    {
        const uint32_t x = mb_value(&mb, 3, 3, 4, 4, 0), c = mb_value(&mb, 3, 4, 4, 4, 0);
        const uint32_t g = mb_value(&mb, 1, 4, 0, 0, 0), y = mb_value(&mb, 1, 2, 0, 0, 0);
        mb.input = x, mb.output = y;
        mb.version_minor = 2;
        const int32_t c3[16] = {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
        mb_op(&mb, 1, 3, x, MB_NONE, c, mb_tensor(&mb, 4, 4, 3, 3, 3, NULL),
              mb_tensor(&mb, 1, 4, 0, 0, 0, NULL), c3);
        mb_op(&mb, 8, 0, c, MB_NONE, g, MB_NONE, MB_NONE, NULL);
        mb_op(&mb, 2, 0, g, MB_NONE, y, mb_tensor(&mb, 2, 2, 4, 0, 0, NULL), MB_NONE, NULL);
    }
    m = hm_load(&mb);
    mb_free(&mb);
    CHECK(crisp_model_get_stage(m, &st) == CRISP_ERR_UNSUPPORTED &&
              strstr(crisp_last_error(), "op 0 (CONV2D) of the last stage (ops 0..1) has a fused "
                                         "silu, which has no backward pass") != NULL,
          "fused silu in the stage: %s", crisp_last_error());
    crisp_model_free(m);
}

/* The stage's forward gives the session's logits; its gradients the loss's finite differences. */
static void test_forward_and_gradients(void) {
    crisp_model *m = load_residual();
    enum { N = 4 };
    int32_t labels[N];
    float *inputs;
    float *x = stage_inputs(m, N, 1, &inputs, labels);
    crisp_stage_net *net;
    CHECK(crisp_stage_net_create(m, &net) == CRISP_OK, "%s", crisp_last_error());
    const size_t F = crisp_stage_net_features(net), T = crisp_stage_net_bias_count(net);
    const size_t in_n = crisp_stage_net_input_size(net);
    CHECK(F == 8 && T == 24 && in_n == 512, "sizes %zu %zu %zu", F, T, in_n);
    float wf[CLASSES * 8], bf[CLASSES];
    crisp_model_get_head_weights(m, wf, CLASSES * 8, bf, CLASSES);
    double w[CLASSES * 8], b[CLASSES];
    for (int k = 0; k < CLASSES * 8; k++) w[k] = wf[k];
    for (int k = 0; k < CLASSES; k++) b[k] = bf[k];
    crisp_session *s;
    crisp_session_create(m, &s);
    double worst = 0;
    for (int i = 0; i < N; i++) {
        float want[CLASSES];
        CHECK(crisp_session_run_to(s, 12, inputs + i * 192, 192, want, CLASSES) == CRISP_OK, "%s",
              crisp_last_error());
        double z[CLASSES];
        int ok;
        crisp_stage_net_sample(net, x + i * in_n, labels[i], w, b, CLASSES, NULL, NULL, NULL, &ok,
                               z);
        for (int c = 0; c < CLASSES; c++) worst = fmax(worst, fabs(z[c] - want[c]));
    }
    crisp_session_free(s);
    CHECK(worst < 1e-4, "stage logits differ from the session's by %g", worst);

    /* Gradients of one sample's loss. */
    double dw[CLASSES * 8] = {0}, db[CLASSES] = {0}, *dbias = calloc(T, sizeof *dbias);
    int ok;
    const float *xi = x + in_n;
    const int32_t yi = labels[1];
    const double base = crisp_stage_net_sample(net, xi, yi, w, b, CLASSES, dw, db, dbias, &ok, NULL);
    float *biases = malloc(T * sizeof *biases), *probe = malloc(T * sizeof *probe);
    crisp_stage_net_get_biases(net, biases);
    double nonzero = 0;
    int bad = 0;
    const float eps = 1e-3f;
    for (size_t k = 0; k < T; k++) {
        memcpy(probe, biases, T * sizeof *probe);
        probe[k] = biases[k] + eps;
        crisp_stage_net_set_biases(net, probe);
        const double up = crisp_stage_net_sample(net, xi, yi, w, b, CLASSES, NULL, NULL, NULL, &ok, NULL);
        probe[k] = biases[k] - eps;
        crisp_stage_net_set_biases(net, probe);
        const double down = crisp_stage_net_sample(net, xi, yi, w, b, CLASSES, NULL, NULL, NULL, &ok, NULL);
        const double central = (up - down) / (2 * eps), fwd = (up - base) / eps,
                     bwd = (base - down) / eps;
        const double tol = 3e-3 + 1e-2 * fabs(dbias[k]);
        if (fabs(central - dbias[k]) > tol && fabs(fwd - dbias[k]) > tol &&
            fabs(bwd - dbias[k]) > tol && bad++ < 3)
            CHECK(0, "d loss / d bias[%zu] = %g, finite differences %g (one-sided %g, %g)", k,
                  dbias[k], central, fwd, bwd);
        nonzero += fabs(dbias[k]);
    }
    crisp_stage_net_set_biases(net, biases);
    CHECK(bad == 0, "%d bias derivatives off", bad);
    CHECK(nonzero > 1e-3, "every bias gradient is zero (%g)", nonzero);
    /* The head (smooth in w, b): central differences in double. */
    for (int k = 0; k < CLASSES * 8; k += 5) {
        const double keep = w[k];
        w[k] = keep + 1e-6;
        const double up = crisp_stage_net_sample(net, xi, yi, w, b, CLASSES, NULL, NULL, NULL, &ok, NULL);
        w[k] = keep - 1e-6;
        const double down = crisp_stage_net_sample(net, xi, yi, w, b, CLASSES, NULL, NULL, NULL, &ok, NULL);
        w[k] = keep;
        CHECK(fabs((up - down) / 2e-6 - dw[k]) < 1e-5 * (1 + fabs(dw[k])),
              "d loss / d W[%d] = %g, finite differences %g", k, dw[k], (up - down) / 2e-6);
    }
    for (int c = 0; c < CLASSES; c++) {
        const double keep = b[c];
        b[c] = keep + 1e-6;
        const double up = crisp_stage_net_sample(net, xi, yi, w, b, CLASSES, NULL, NULL, NULL, &ok, NULL);
        b[c] = keep - 1e-6;
        const double down = crisp_stage_net_sample(net, xi, yi, w, b, CLASSES, NULL, NULL, NULL, &ok, NULL);
        b[c] = keep;
        CHECK(fabs((up - down) / 2e-6 - db[c]) < 1e-5 * (1 + fabs(db[c])),
              "d loss / d b[%d] = %g, finite differences %g", c, db[c], (up - down) / 2e-6);
    }
    free(biases), free(probe), free(dbias), free(x), free(inputs);
    crisp_stage_net_free(net);
    crisp_model_free(m);
}

/* Head-only (crisp_fit_head, at its optimum) then bias tuning: a lower loss, repeatable. */
static void test_tuning(void) {
    crisp_model *m = load_residual();
    enum { N = 36 };
    int32_t labels[N];
    float *x = stage_inputs(m, N, 1, NULL, labels);
    crisp_head_info h;
    crisp_model_get_head(m, &h);
    /* Head-only on the session's features. */
    float *inputs;
    int32_t l2s[N];
    float *x2 = stage_inputs(m, N, 1, &inputs, l2s);
    float feats[N * 8];
    crisp_session *s;
    crisp_session_create(m, &s);
    crisp_session_run_to(s, h.feature_value, inputs, N * 192, feats, N * 8);
    crisp_session_free(s);
    float w0[CLASSES * 8], b0[CLASSES];
    crisp_fit_report fr;
    CHECK(crisp_fit_head(feats, labels, N, 8, CLASSES, &(crisp_fit_options){300, 0, 0, 0}, w0, b0,
                         &fr) == CRISP_OK, "%s", crisp_last_error());
    CHECK(fr.train_accuracy < 1.0f, "the features are separable (accuracy %g): pick harder data",
          fr.train_accuracy);
    float w[CLASSES * 8], b[CLASSES], biases[24], w2[CLASSES * 8], b2[CLASSES], biases2[24];
    memcpy(w, w0, sizeof w), memcpy(b, b0, sizeof b);
    const crisp_tune_options o = {30, 1e-2f, 0, 6, 3, 0};
    crisp_tune_report r;
    CHECK(crisp_tune_biases(m, x, labels, N, CLASSES, &o, w, b, biases, 24, &r) == CRISP_OK, "%s",
          crisp_last_error());
    CHECK(fabs(r.loss_before - fr.loss) < 1e-4, "loss before %g, head-only fit %g", r.loss_before,
          fr.loss);
    CHECK(!r.kept_start && r.loss_after < 0.9f * r.loss_before,
          "tuning: loss %g -> %g (kept start %u)", r.loss_before, r.loss_after, r.kept_start);
    CHECK(r.accuracy_after >= r.accuracy_before, "accuracy %g -> %g", r.accuracy_before,
          r.accuracy_after);
    CHECK(r.epochs == 30 && r.steps == 30 * 6, "epochs %u steps %u", r.epochs, r.steps);
    printf("tuning: loss %.4f -> %.4f, accuracy %.3f -> %.3f\n", r.loss_before, r.loss_after,
           r.accuracy_before, r.accuracy_after);
    /* Bitwise repeatable (stage inputs from 3 threads are bitwise those of 1). */
    float *x3 = stage_inputs(m, N, 3, NULL, l2s);
    CHECK(memcmp(x, x3, N * 512 * sizeof *x) == 0, "stage inputs differ for 3 threads");
    memcpy(w2, w0, sizeof w2), memcpy(b2, b0, sizeof b2);
    crisp_tune_report r2;
    CHECK(crisp_tune_biases(m, x3, labels, N, CLASSES, &o, w2, b2, biases2, 24, &r2) == CRISP_OK,
          "%s", crisp_last_error());
    CHECK(memcmp(w, w2, sizeof w) == 0 && memcmp(b, b2, sizeof b) == 0 &&
              memcmp(biases, biases2, sizeof biases) == 0 && memcmp(&r, &r2, sizeof r) == 0,
          "tuning is not bitwise repeatable");

    /* A learning rate that diverges keeps the start. */
    memcpy(w2, w0, sizeof w2), memcpy(b2, b0, sizeof b2);
    const crisp_tune_options wild = {3, 50.0f, 0, 6, 3, 0};
    CHECK(crisp_tune_biases(m, x, labels, N, CLASSES, &wild, w2, b2, biases2, 24, &r2) == CRISP_OK,
          "%s", crisp_last_error());
    if (r2.kept_start) {
        CHECK(memcmp(w2, w0, sizeof w2) == 0 && r2.loss_after == r2.loss_before,
              "kept start but the head changed");
        float file_biases[24];
        crisp_stage_net *net;
        crisp_stage_net_create(m, &net);
        crisp_stage_net_get_biases(net, file_biases);
        crisp_stage_net_free(net);
        CHECK(memcmp(file_biases, biases2, sizeof biases2) == 0, "kept start, biases changed");
    }
    CHECK(r2.loss_after <= r2.loss_before, "lr 50: loss %g -> %g", r2.loss_before, r2.loss_after);

    /* The written file: tuned biases and head in, every other tensor byte for byte. */
    crisp_new_bias nb[3];
    uint32_t at = 0;
    for (uint32_t i = 0; i < 3; i++) {
        uint32_t op, ch;
        crisp_model_get_stage_op(m, i, &op, &ch);
        nb[i] = (crisp_new_bias){op, ch, biases + at};
        at += ch;
    }
    const int32_t ids[CLASSES] = {7, 8, 9};
    const char *names[CLASSES] = {"a", "b", "c"};
    const crisp_new_head nh = {CLASSES, w, b, ids, names, "{\"tune\": \"bias\"}"};
    const char *path = scratch_path("tuned.crisp");
    CHECK(crisp_model_write_tuned(m, &nh, nb, 3, path) == CRISP_OK, "%s", crisp_last_error());
    crisp_model *t = NULL;
    CHECK(crisp_model_load_file(path, &t) == CRISP_OK, "%s", crisp_last_error());
    if (t != NULL) {
        crisp_model_info a, bi;
        crisp_model_get_info(m, &a), crisp_model_get_info(t, &bi);
        CHECK(a.tensor_count == bi.tensor_count, "tensor count %u -> %u", a.tensor_count,
              bi.tensor_count);
        for (uint32_t k = 0; k < a.tensor_count && k < bi.tensor_count; k++) {
            const crisp_tensor *ta = &m->tensors[k], *tb = &t->tensors[k];
            const uint32_t hw = m->ops[11].weight, hb = m->ops[11].bias;
            int tuned = k == hw || k == hb;
            const float *want = NULL;
            for (int i = 0; i < 3; i++)
                if (m->ops[nb[i].op].bias == k) tuned = 1, want = nb[i].values;
            if (k == hw) want = w;
            if (k == hb) want = b;
            if (!tuned)
                CHECK(ta->raw_size == tb->raw_size && memcmp(ta->raw, tb->raw, ta->raw_size) == 0,
                      "tensor %u changed", k);
            else
                CHECK(tb->raw_size == 4 * tb->elements && memcmp(tb->raw, want, tb->raw_size) == 0,
                      "tensor %u is not the tuned values", k);
        }
        /* It runs as tuned: the stage net on the new file, at its own biases, gives the
         * same loss as the tuning reported. */
        crisp_stage_net *net;
        CHECK(crisp_stage_net_create(t, &net) == CRISP_OK, "%s", crisp_last_error());
        double wd[CLASSES * 8], bd[CLASSES], ce = 0, pen = 0;
        for (int k = 0; k < CLASSES * 8; k++) wd[k] = w[k], pen += (double)w[k] * w[k];
        for (int c = 0; c < CLASSES; c++) bd[c] = b[c];
        for (int i = 0; i < N; i++) {
            int ok;
            ce += crisp_stage_net_sample(net, x + i * 512, labels[i], wd, bd, CLASSES, NULL, NULL,
                                         NULL, &ok, NULL);
        }
        const double loss = ce / N + 0.5e-3 * pen;
        CHECK(fabs(loss - r.loss_after) < 1e-4 * (1 + loss), "file's loss %g, tuned %g", loss,
              r.loss_after);
        crisp_stage_net_free(net);
        crisp_model_free(t);
    }
    free(x), free(x2), free(x3), free(inputs);
    crisp_model_free(m);
}

static void test_refusals(void) {
    crisp_model *m = load_residual();
    enum { N = 6 };
    int32_t labels[N];
    float *x = stage_inputs(m, N, 1, NULL, labels);
    float w[CLASSES * 8] = {0}, b[CLASSES] = {0}, biases[24];
    CHECK(crisp_tune_biases(m, x, labels, N, CLASSES, NULL, w, b, biases, 23, NULL) ==
              CRISP_ERR_ARGUMENT && strstr(crisp_last_error(), "24") != NULL,
          "bias count: %s", crisp_last_error());
    labels[2] = CLASSES;
    CHECK(crisp_tune_biases(m, x, labels, N, CLASSES, NULL, w, b, biases, 24, NULL) ==
              CRISP_ERR_ARGUMENT && strstr(crisp_last_error(), "labels[2]") != NULL,
          "label: %s", crisp_last_error());
    labels[2] = 0;
    x[5] = NAN;
    CHECK(crisp_tune_biases(m, x, labels, N, CLASSES, NULL, w, b, biases, 24, NULL) ==
              CRISP_ERR_ARGUMENT && strstr(crisp_last_error(), "not finite") != NULL,
          "NaN input: %s", crisp_last_error());
    x[5] = 0;
    CHECK(crisp_tune_biases(m, x, labels, N, CLASSES, &(crisp_tune_options){.flags = 4}, w, b,
                            biases, 24, NULL) == CRISP_ERR_ARGUMENT,
          "flags accepted");
    CHECK(crisp_tune_biases(m, x, labels, 0, CLASSES, NULL, w, b, biases, 24, NULL) ==
              CRISP_ERR_ARGUMENT, "n = 0 accepted");

    /* The writer's refusals. */
    const int32_t ids[CLASSES] = {0, 1, 2};
    const char *names[CLASSES] = {"a", "b", "c"};
    const crisp_new_head nh = {CLASSES, w, b, ids, names, NULL};
    float v[8] = {0};
    const struct {
        crisp_new_bias nb[2];
        uint32_t count;
        const char *says;
    } bad[] = {
        {{{11, 3, v}}, 1, "is the head"},
        {{{5, 8, v}}, 1, "has no bias tensor"},
        {{{4, 8, v}}, 1, "has no bias tensor"}, /* ADD */
        {{{1, 7, v}}, 1, "has 7 values"},
        {{{1, 8, NULL}}, 1, "(NULL)"},
        {{{99, 8, v}}, 1, "the model has 13 ops"},
        {{{1, 8, v}, {1, 8, v}}, 2, "both name op 1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(crisp_model_write_tuned(m, &nh, bad[i].nb, bad[i].count, scratch_path("bad.crisp")) ==
                  CRISP_ERR_ARGUMENT && strstr(crisp_last_error(), bad[i].says) != NULL,
              "case %zu: %s", i, crisp_last_error());
        CHECK(access(scratch_path("bad.crisp"), F_OK) != 0, "case %zu wrote a file", i);
    }
    float inf8[8] = {0, 0, INFINITY};
    const crisp_new_bias nan_bias = {2, 8, inf8};
    CHECK(crisp_model_write_tuned(m, &nh, &nan_bias, 1, scratch_path("bad.crisp")) ==
              CRISP_ERR_ARGUMENT && strstr(crisp_last_error(), "not finite") != NULL,
          "inf bias: %s", crisp_last_error());
    free(x);
    crisp_model_free(m);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_tune SCRATCH_DIR\n");
        return 2;
    }
    scratch_open(argv[1]);
    test_stage_detection();
    test_forward_and_gradients();
    test_tuning();
    test_refusals();
    scratch_close();
    return check_report();
}
