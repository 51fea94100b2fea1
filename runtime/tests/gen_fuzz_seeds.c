/* Writes fuzzer seeds using the 1.1 encodings into DIR: the float32,
 * hybrid and int8 sample CNNs (the float32 one also with a PREP section), a
 * 1.0 file, and three models whose shapes make the optimised kernels use
 * large scratch (fuzz_loader compares them against the reference kernels):
 * a 7x7 conv over 24 channels (K = 1176 im2col rows), stride 2 with
 * dilation 2 and asymmetric padding, dilated max pooling with ceil_mode;
 * depthwise 7x7 stride 2 and 5x5 stride 3 dilation 2 (padded phase planes),
 * a 1x1 conv to 160 channels, linears 160 -> 64 -> 10; hybrid convs with
 * K = 800 (5x5 dilation 2 over 32 channels) and stride 3.
 * Usage: gen_fuzz_seeds DIR */
#include <stdio.h>
#include <stdlib.h>

#include "hybrid_builder.h"
#include "sample_models.h"

static int write(const char *dir, const char *name, mb_model *m) {
    char path[1024];
    size_t size;
    uint8_t *file = mb_build(m, &size);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    int ok = f != NULL && fwrite(file, 1, size, f) == size;
    ok = f != NULL && fclose(f) == 0 && ok;
    if (!ok) fprintf(stderr, "gen_fuzz_seeds: cannot write %s\n", path);
    free(file);
    mb_free(m);
    return ok;
}

#define CONV(kh, kw, s, pt, pl, pb, pr, d, g) \
    (const int32_t[16]) { kh, kw, s, s, pt, pl, pb, pr, d, d, g }

static uint32_t bias(mb_model *m, uint32_t n) { return mb_tensor(m, 1, n, 0, 0, 0, NULL); }

/* Global pool, flatten, linear to 10 classes, softmax. */
static void head(mb_model *m, uint32_t x, uint32_t c) {
    const uint32_t gp = mb_value(m, 3, c, 1, 1, 0), fl = mb_value(m, 1, c, 0, 0, 0);
    const uint32_t fc = mb_value(m, 1, 10, 0, 0, 0), sm = mb_value(m, 1, 10, 0, 0, 0);
    mb_op(m, 8, 0, x, MB_NONE, gp, MB_NONE, MB_NONE, NULL);
    mb_op(m, 10, 0, gp, MB_NONE, fl, MB_NONE, MB_NONE, NULL);
    mb_op(m, 2, 0, fl, MB_NONE, fc, mb_tensor(m, 2, 10, c, 0, 0, NULL), bias(m, 10), NULL);
    mb_op(m, 11, 0, fc, MB_NONE, sm, MB_NONE, MB_NONE, NULL);
    m->output = sm;
}

static void scratch_dense(mb_model *m) {
    mb_init(m);
    const uint32_t x = mb_value(m, 3, 24, 8, 8, 0), a = mb_value(m, 3, 8, 8, 8, 0);
    const uint32_t b = mb_value(m, 3, 20, 4, 3, 0), c = mb_value(m, 3, 20, 2, 1, 0);
    m->input = x;
    mb_op(m, 1, 1, x, MB_NONE, a, mb_tensor(m, 4, 8, 7, 7, 24, NULL), bias(m, 8),
          CONV(7, 7, 1, 3, 3, 3, 3, 1, 1));
    mb_op(m, 1, 2, a, MB_NONE, b, mb_tensor(m, 4, 20, 3, 3, 8, NULL), MB_NONE,
          CONV(3, 3, 2, 2, 1, 2, 1, 2, 1));
    const int32_t pool[16] = {3, 3, 2, 2, 1, 1, 2, 2, 1};
    mb_op(m, 6, 0, b, MB_NONE, c, MB_NONE, MB_NONE, pool);
    head(m, c, 20);
}

static void scratch_depthwise(mb_model *m) {
    mb_init(m);
    const uint32_t x = mb_value(m, 3, 48, 16, 16, 0), a = mb_value(m, 3, 48, 8, 8, 0);
    const uint32_t b = mb_value(m, 3, 48, 3, 3, 0), c = mb_value(m, 3, 160, 3, 3, 0);
    const uint32_t gp = mb_value(m, 3, 160, 1, 1, 0), fl = mb_value(m, 1, 160, 0, 0, 0);
    const uint32_t wide = mb_value(m, 1, 64, 0, 0, 0), out = mb_value(m, 1, 10, 0, 0, 0);
    m->input = x, m->output = out;
    mb_op(m, 1, 2, x, MB_NONE, a, mb_tensor(m, 4, 48, 7, 7, 1, NULL), bias(m, 48),
          CONV(7, 7, 2, 3, 3, 3, 3, 1, 48));
    mb_op(m, 1, 0, a, MB_NONE, b, mb_tensor(m, 4, 48, 5, 5, 1, NULL), MB_NONE,
          CONV(5, 5, 3, 4, 4, 4, 4, 2, 48));
    mb_op(m, 1, 1, b, MB_NONE, c, mb_tensor(m, 4, 160, 1, 1, 48, NULL), bias(m, 160),
          CONV(1, 1, 1, 0, 0, 0, 0, 1, 1));
    mb_op(m, 8, 0, c, MB_NONE, gp, MB_NONE, MB_NONE, NULL);
    mb_op(m, 10, 0, gp, MB_NONE, fl, MB_NONE, MB_NONE, NULL);
    mb_op(m, 2, 1, fl, MB_NONE, wide, mb_tensor(m, 2, 64, 160, 0, 0, NULL), bias(m, 64),
          NULL);
    mb_op(m, 2, 0, wide, MB_NONE, out, mb_tensor(m, 2, 10, 64, 0, 0, NULL), MB_NONE, NULL);
}

static uint32_t hybrid(mb_model *m, unsigned *rng, mb_hybrid h, const uint32_t dims[4]) {
    float *dense = malloc((size_t)h.rows * h.cols * sizeof *dense);
    size_t size;
    uint64_t kept;
    uint8_t *bytes = mb_hybrid_encode(&h, rng, dense, NULL, &size, &kept);
    const uint32_t id = mb_tensor_raw(m, 2, 4, dims, bytes, size);
    free(dense), free(bytes);
    return id;
}

static void scratch_hybrid(mb_model *m) {
    mb_init(m);
    unsigned rng = 1414;
    const uint32_t x = mb_value(m, 3, 32, 8, 8, 0), a = mb_value(m, 3, 24, 8, 8, 0);
    const uint32_t b = mb_value(m, 3, 16, 3, 3, 0);
    m->input = x;
    const uint32_t w1[4] = {24, 5, 5, 32}, w2[4] = {16, 3, 3, 24};
    const uint32_t h1 = hybrid(m, &rng, (mb_hybrid){24, 800, 8, 32, 2, 4, 1, 10, 0, 0}, w1);
    const uint32_t h2 = hybrid(m, &rng, (mb_hybrid){16, 216, 4, 8, 1, 2, 2, 9, 0, 1}, w2);
    mb_op(m, 1, 1, x, MB_NONE, a, h1, bias(m, 24), CONV(5, 5, 1, 4, 4, 4, 4, 2, 1));
    mb_op(m, 1, 0, a, MB_NONE, b, h2, MB_NONE, CONV(3, 3, 3, 1, 1, 1, 1, 1, 1));
    head(m, b, 16);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: gen_fuzz_seeds DIR\n");
        return 2;
    }
    mb_model m;
    int ok = 1;
    mb_sample_hybrid_cnn(&m);
    ok &= write(argv[1], "seed_hybrid_cnn.crisp", &m);
    mb_sample_qcnn(&m);
    ok &= write(argv[1], "seed_int8_cnn.crisp", &m);
    mb_sample_cnn(&m);
    ok &= write(argv[1], "seed_builder_cnn_1_1.crisp", &m);
    /* PREP for the sample CNN's (3,8,8) input: shorter side 10, centre crop, BGR. */
    static const uint8_t prep[64] = {
        64, 0, 0, 0, 3, 0, 0, 0, 8, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 10, 0, 0, 0, 1, 0, 0, 0,
        0x81, 0x80, 0x80, 0x3B,                                             /* scale 1/255 */
        0xEC, 0x51, 0xF8, 0x3E, 0xD5, 0x78, 0xE9, 0x3E, 0x3B, 0xDF, 0xCF, 0x3E, /* mean */
        0xFA, 0x7E, 0x6A, 0x3E, 0x42, 0x60, 0x65, 0x3E, 0x66, 0x66, 0x66, 0x3E, /* std */
        0, 0, 0, 0, 0, 0, 0, 0};
    mb_sample_cnn(&m);
    mb_add_section(&m, 0x50455250u /* PREP */, 0, prep, sizeof prep);
    ok &= write(argv[1], "seed_builder_cnn_prep.crisp", &m);
    mb_sample_cnn(&m);
    m.version_minor = 0;
    ok &= write(argv[1], "seed_builder_cnn_1_0.crisp", &m);
    scratch_dense(&m);
    ok &= write(argv[1], "seed_scratch_dense.crisp", &m);
    scratch_depthwise(&m);
    ok &= write(argv[1], "seed_scratch_depthwise.crisp", &m);
    scratch_hybrid(&m);
    ok &= write(argv[1], "seed_scratch_hybrid.crisp", &m);
    return ok ? 0 : 1;
}
