/* SALY: the half-float decode (normals, subnormals, zeros, infinities, NaN),
 * crisp_model_class_coverage on a dense and a hybrid layer against a hand
 * computation, and its errors: no SALY, a class SALY lacks, malformed
 * records, a non-finite saliency. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "crisp.h"
#include "head_models.h"
#include "saly.h"

CHECK_DEFINE_COUNTERS;

#define KIND(s) ((uint32_t)(s)[0] | (uint32_t)(s)[1] << 8 | (uint32_t)(s)[2] << 16 | (uint32_t)(s)[3] << 24)

static void test_f16(void) {
    static const struct { uint16_t h; float f; } cases[] = {
        {0x0000, 0.0f}, {0x3C00, 1.0f}, {0xC000, -2.0f}, {0x3555, 0.333251953125f},
        {0x7BFF, 65504.0f}, {0x0400, 6.103515625e-05f}, {0x0001, 5.9604644775390625e-08f},
        {0x03FF, 6.097555160522461e-05f}, {0x8001, -5.9604644775390625e-08f},
        {0x7C00, INFINITY}, {0xFC00, -INFINITY}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK(crisp_f16_to_f32(cases[i].h) == cases[i].f, "0x%04X: %g, expected %g",
              cases[i].h, crisp_f16_to_f32(cases[i].h), cases[i].f);
    CHECK(signbit(crisp_f16_to_f32(0x8000)) && crisp_f16_to_f32(0x8000) == 0, "-0");
    CHECK(isnan(crisp_f16_to_f32(0x7E00)) && isnan(crisp_f16_to_f32(0x7C01)), "NaN");
    for (int i = 0; i < 2000; i++) { /* the test encoder round-trips */
        const float f = (float)i * 0.37f - 300.0f;
        const float back = crisp_f16_to_f32(hm_half(f));
        CHECK(fabsf(back - f) <= fabsf(f) / 1024.0f, "%g -> %g", f, back);
    }
}

static crisp_model *with_saly(const hm_saly_layer *l, uint32_t count, uint8_t **conv_raw) {
    mb_model mb;
    hm_cnn(&mb, &(hm_options){.classes = 3, .features = 8, .labels = 1, .hybrid_conv = 1});
    size_t n;
    uint8_t *saly = hm_saly(l, count, &n);
    mb_add_section(&mb, KIND("SALY"), 0, saly, n);
    crisp_model *m = hm_load(&mb);
    if (conv_raw != NULL) {
        *conv_raw = malloc(mb.tensors[0].raw_size);
        memcpy(*conv_raw, mb.tensors[0].raw, mb.tensors[0].raw_size);
    }
    mb_free(&mb);
    free(saly);
    return m;
}

static void test_coverage(void) {
    /* conv (hybrid, 2 x 3 blocks) and the dense head (tensor 2: 3 x 8, one 1 x 2 grid). */
    uint16_t conv[3 * 9] = {0}, head[3 * 2]; /* 3 x 9: room for the wrong grid below */
    float conv_f[3 * 6];
    unsigned r = 8;
    for (int i = 0; i < 18; i++) {
        conv[i] = hm_half((float)check_rand_int(&r, 0, 1000) / 64.0f);
        conv_f[i] = crisp_f16_to_f32(conv[i]);
    }
    conv[2 * 6 + 1] = 0x0001; /* a subnormal counts */
    conv_f[2 * 6 + 1] = 5.9604644775390625e-08f;
    for (int i = 0; i < 6; i++) head[i] = hm_half(0.25f * (float)(i + 1));
    const hm_saly_layer layers[2] = {{0, 3, 2, 3, "conv", conv}, {2, 3, 1, 2, "fc", head}};
    uint8_t *raw;
    crisp_model *m = with_saly(layers, 2, &raw);
    for (int k = 0; k < 3; k++) {
        double kept = 0, total = 0;
        for (uint32_t br = 0; br < 2; br++) {
            const uint32_t lo = mb_get_u32(raw + 32 + 4 * br), hi = mb_get_u32(raw + 36 + 4 * br);
            for (uint32_t c = 0; c < 3; c++) {
                int is_kept = 0;
                for (uint32_t j = lo; j < hi; j++) is_kept |= mb_get_u32(raw + 44 + 4 * j) == c;
                total += conv_f[k * 6 + br * 3 + c];
                if (is_kept) kept += conv_f[k * 6 + br * 3 + c];
            }
        }
        for (int c = 0; c < 2; c++) { /* the dense head keeps every block */
            kept += 0.25 * (k * 2 + c + 1);
            total += 0.25 * (k * 2 + c + 1);
        }
        float got = -1;
        CHECK(crisp_model_class_coverage(m, 100 + 3 * k, &got) == CRISP_OK, "%s",
              crisp_last_error());
        CHECK(fabsf(got - (float)(kept / total)) < 1e-6f, "class %d: %g, by hand %g", k, got,
              kept / total);
    }
    float c;
    CHECK(crisp_model_class_coverage(m, 101, &c) == CRISP_ERR_ARGUMENT &&
              strstr(crisp_last_error(), "SALY lacks class 101"),
          "got %s", crisp_last_error());
    CHECK(crisp_model_class_coverage(NULL, 100, &c) == CRISP_ERR_ARGUMENT, "NULL");
    crisp_model_free(m);
    free(raw);
    /* Non-finite saliency; wrong grid; a tensor that does not exist. */
    conv[4] = 0x7C00;
    m = with_saly(layers, 1, NULL);
    CHECK(crisp_model_class_coverage(m, 100, &c) == CRISP_ERR_FORMAT &&
              strstr(crisp_last_error(), "class 100, block (1, 1) has a non-finite saliency"),
          "got %s", crisp_last_error());
    crisp_model_free(m);
    conv[4] = 0;
    const hm_saly_layer wrong_grid[1] = {{0, 3, 3, 3, "conv", conv}};
    m = with_saly(wrong_grid, 1, NULL);
    CHECK(crisp_model_class_coverage(m, 100, &c) == CRISP_ERR_FORMAT &&
              strstr(crisp_last_error(), "SALY: layer 0 (tensor 0, 3 classes, 3 x 3 blocks): "
                                         "nbr x nbc differs from the hybrid tensor's block grid"),
          "got %s", crisp_last_error());
    crisp_model_free(m);
    const hm_saly_layer bad_tensor[1] = {{40, 3, 2, 3, "conv", conv}};
    m = with_saly(bad_tensor, 1, NULL);
    CHECK(crisp_model_class_coverage(m, 100, &c) == CRISP_ERR_FORMAT &&
              strstr(crisp_last_error(), "tensor is not a tensor of the file"),
          "got %s", crisp_last_error());
    crisp_model_free(m);
    /* No SALY at all. */
    mb_model mb;
    hm_cnn(&mb, &(hm_options){.classes = 3, .features = 8, .labels = 1});
    m = hm_load(&mb);
    mb_free(&mb);
    CHECK(crisp_model_class_coverage(m, 100, &c) == CRISP_ERR_ARGUMENT &&
              strstr(crisp_last_error(), "the file has no SALY section"),
          "got %s", crisp_last_error());
    crisp_model_free(m);
}

int main(void) {
    test_f16();
    test_coverage();
    return check_report();
}
