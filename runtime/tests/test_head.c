/* The classifier head and crisp_session_run_to: head detection (softmax,
 * reshape, dequantize after the head; no head; a shared value), run_to
 * against the full run (the head computed by hand on the features), the
 * graph input, an int8 feature value dequantised, errors, and bitwise
 * identical results for 1..4 threads. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "crisp.h"
#include "head_models.h"
#include "sample_models.h"

CHECK_DEFINE_COUNTERS;

static void test_detection(void) {
    static const char *const tails[] = {"", "s", "r", "rs", "sr"};
    for (int t = 0; t < 5; t++) {
        mb_model mb;
        hm_cnn(&mb, &(hm_options){.classes = 5, .features = 8, .bias = t % 2, .tail = tails[t]});
        crisp_model *m = hm_load(&mb);
        mb_free(&mb);
        crisp_head_info h;
        CHECK(m && crisp_model_get_head(m, &h) == CRISP_OK, "tail '%s': %s", tails[t],
              crisp_last_error());
        CHECK(h.op == 3 && h.feature_value == 3 && h.features == 8 && h.classes == 5 &&
                  h.has_bias == (uint32_t)(t % 2) && h.dtype == 1,
              "tail '%s': op %u value %u features %u classes %u bias %u dtype %u", tails[t],
              h.op, h.feature_value, h.features, h.classes, h.has_bias, h.dtype);
        crisp_model_free(m);
    }
    /* linear -> relu -> relu6 -> softmax: no head. */
    mb_model mb;
    mb_sample_cnn(&mb);
    crisp_model *m = hm_load(&mb);
    mb_free(&mb);
    crisp_head_info h;
    CHECK(crisp_model_get_head(m, &h) == CRISP_ERR_UNSUPPORTED &&
              strstr(crisp_last_error(), "model has no linear classifier head (op 12 (RELU6) leads to the graph output"),
          "got: %s", crisp_last_error());
    crisp_model_free(m);
    hm_cnn(&mb, &(hm_options){.classes = 4, .features = 8, .tail = "u"});
    m = hm_load(&mb);
    mb_free(&mb);
    CHECK(crisp_model_get_head(m, &h) == CRISP_ERR_UNSUPPORTED &&
              strstr(crisp_last_error(), "op 4 (RELU) produces the graph output"),
          "got: %s", crisp_last_error());
    crisp_model_free(m);
    /* int8: QUANTIZE -> LINEAR -> DEQUANTIZE -> SOFTMAX. */
    hm_int8(&mb);
    m = hm_load(&mb);
    mb_free(&mb);
    CHECK(crisp_model_get_head(m, &h) == CRISP_OK && h.op == 1 && h.feature_value == 1 &&
              h.features == 8 && h.classes == 5 && h.dtype == 2,
          "int8 head: %s", crisp_last_error());
    /* run_to on the int8 features: dequantised QUANTIZE output. */
    crisp_session *s;
    crisp_session_create(m, &s);
    const float x[8] = {0.1f, -0.2f, 0.33f, 1.0f, -7.0f, 0.0f, 0.026f, 0.074f};
    float f[8];
    CHECK(crisp_session_run_to(s, 1, x, 8, f, 8) == CRISP_OK, "%s", crisp_last_error());
    for (int i = 0; i < 8; i++) {
        const float q = fminf(fmaxf(3.0f + nearbyintf(x[i] / 0.05f), -128.0f), 127.0f);
        CHECK(f[i] == 0.05f * (q - 3.0f), "int8 feature %d: %g, expected %g", i, f[i],
              0.05f * (q - 3.0f));
    }
    crisp_session_free(s);
    CHECK(crisp_model_get_head(NULL, &h) == CRISP_ERR_ARGUMENT, "NULL model");
    CHECK(crisp_model_get_head(m, NULL) == CRISP_ERR_ARGUMENT, "NULL out");
    crisp_model_free(m);
}

static void test_run_to(void) {
    mb_model mb;
    hm_cnn(&mb, &(hm_options){.classes = 6, .features = 8, .bias = 1, .tail = "s",
                              .hybrid_conv = 1});
    const float *w = mb.tensors[hm_head_weight(&mb)].data;
    const float *b = mb.tensors[mb.ops[3].bias].data;
    float wc[48], bc[6];
    memcpy(wc, w, sizeof wc), memcpy(bc, b, sizeof bc);
    crisp_model *m = hm_load(&mb);
    mb_free(&mb);
    enum { B = 4 };
    float x[B * 108], f[B * 8], y[B * 6], yf[B * 6];
    unsigned rng = 5;
    for (int i = 0; i < B * 108; i++) x[i] = check_rand_float(&rng);
    crisp_session *s;
    crisp_session_create(m, &s);
    CHECK(crisp_session_run(s, x, B * 108, y, B * 6) == CRISP_OK, "%s", crisp_last_error());
    CHECK(crisp_session_run_to(s, 3, x, B * 108, f, B * 8) == CRISP_OK, "%s", crisp_last_error());
    for (int i = 0; i < B; i++) {
        double z[6], mx = -1e30, sum = 0;
        for (int c = 0; c < 6; c++) {
            z[c] = bc[c];
            for (int k = 0; k < 8; k++) z[c] += (double)wc[c * 8 + k] * f[i * 8 + k];
            mx = fmax(mx, z[c]);
        }
        for (int c = 0; c < 6; c++) sum += exp(z[c] - mx);
        for (int c = 0; c < 6; c++) {
            const double want = exp(z[c] - mx) / sum;
            CHECK(fabs(y[i * 6 + c] - want) <= 1e-5 * fabs(want) + 1e-7,
                  "sample %d class %d: full run %g, head by hand %g", i, c, y[i * 6 + c], want);
        }
    }
    /* The head output value, then softmax by hand; and the graph input. */
    CHECK(crisp_session_run_to(s, 4, x, B * 108, yf, B * 6) == CRISP_OK, "%s", crisp_last_error());
    float xi[B * 108];
    CHECK(crisp_session_run_to(s, 0, x, B * 108, xi, B * 108) == CRISP_OK &&
              memcmp(xi, x, sizeof x) == 0,
          "run_to(input) is a copy");
    /* The last value: the same as a full run. */
    float yl[B * 6];
    CHECK(crisp_session_run_to(s, 5, x, B * 108, yl, B * 6) == CRISP_OK &&
              memcmp(yl, y, sizeof y) == 0,
          "run_to(output) equals run");
    /* Errors. */
    CHECK(crisp_session_run_to(s, 6, x, B * 108, f, B * 8) == CRISP_ERR_ARGUMENT &&
              strstr(crisp_last_error(), "value 6 is out of range (the model has 6 values)"),
          "got %s", crisp_last_error());
    CHECK(crisp_session_run_to(s, 3, x, B * 108, f, B * 8 - 1) == CRISP_ERR_SHAPE &&
              strstr(crisp_last_error(), "out has 31 floats; a batch of 4 needs 4 x 8 = (8)"),
          "got %s", crisp_last_error());
    CHECK(crisp_session_run_to(s, 3, x, 107, f, 8) == CRISP_ERR_SHAPE, "short input");
    CHECK(crisp_session_run_to(NULL, 3, x, 108, f, 8) == CRISP_ERR_ARGUMENT, "NULL session");
    CHECK(crisp_session_run_to(s, 3, NULL, 108, f, 8) == CRISP_ERR_ARGUMENT, "NULL input");
    crisp_session_free(s);
    /* Threads 1..4, bitwise, on a hybrid model's features and head output. */
    float ref[B * 8], ref4[B * 6], got[B * 8], got4[B * 6];
    for (uint32_t t = 1; t <= 4; t++) {
        crisp_session_create_with_options(m, &(crisp_session_options){t, 0}, &s);
        CHECK(crisp_session_run_to(s, 3, x, B * 108, t == 1 ? ref : got, B * 8) == CRISP_OK &&
                  crisp_session_run_to(s, 4, x, B * 108, t == 1 ? ref4 : got4, B * 6) == CRISP_OK,
              "%s", crisp_last_error());
        if (t > 1)
            CHECK(memcmp(ref, got, sizeof ref) == 0 && memcmp(ref4, got4, sizeof ref4) == 0,
                  "%u threads differ", t);
        crisp_session_free(s);
    }
    CHECK(memcmp(ref, f, sizeof ref) == 0 && memcmp(ref4, yf, sizeof ref4) == 0,
          "batch of %d vs per-sample", B);
    crisp_model_free(m);
    /* The sample hybrid CNN: threads on its features (hybrid convs, depthwise). */
    mb_sample_hybrid_cnn(&mb);
    m = hm_load(&mb);
    mb_free(&mb);
    crisp_head_info h;
    CHECK(crisp_model_get_head(m, &h) == CRISP_OK && h.features == 24 && h.classes == 10,
          "hybrid cnn head: %s", crisp_last_error());
    float x2[2 * 192], a[2 * 24], c[2 * 24];
    for (int i = 0; i < 2 * 192; i++) x2[i] = check_rand_float(&rng);
    for (uint32_t t = 1; t <= 4; t++) {
        crisp_session_create_with_options(m, &(crisp_session_options){t, 0}, &s);
        CHECK(crisp_session_run_to(s, h.feature_value, x2, 2 * 192, t == 1 ? a : c, 48) ==
                  CRISP_OK,
              "%s", crisp_last_error());
        if (t > 1) CHECK(memcmp(a, c, sizeof a) == 0, "hybrid cnn: %u threads differ", t);
        crisp_session_free(s);
    }
    crisp_model_free(m);
}

int main(void) {
    test_detection();
    test_run_to();
    return check_report();
}
