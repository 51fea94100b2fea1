/* libFuzzer target (CMake -DCRISP_FUZZ=ON, clang): crisp_image_decode on the
 * input, through a model whose PREP resizes (shorter side, then the centre
 * crop) so the decoder, the container checks and the resampler all run.
 * Seeds: runtime/tests/data/images. Inputs whose header asks for more than
 * FUZZ_MAX_PIXELS are skipped (the runtime accepts up to 8192 x 8192, which
 * is valid but too slow for the fuzzer's budget under ASan). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crisp.h"
#include "model_builder.h"

#define FUZZ_MAX_PIXELS (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static crisp_model *model;

static void put_f32(uint8_t *p, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    mb_put_u32(p, u);
}

static crisp_model *make_model(void) {
    uint8_t prep[64] = {0};
    mb_put_u32(prep, 64);
    mb_put_u32(prep + 4, 3);
    mb_put_u32(prep + 8, 7);
    mb_put_u32(prep + 12, 5);
    mb_put_u32(prep + 16, CRISP_RESIZE_SHORTER_SIDE);
    mb_put_u32(prep + 20, 9);
    put_f32(prep + 28, 1.0f / 255.0f);
    for (int c = 0; c < 3; c++) {
        put_f32(prep + 32 + 4 * c, 0.5f);
        put_f32(prep + 44 + 4 * c, 0.25f);
    }
    mb_model m;
    mb_init(&m);
    const uint32_t in = mb_value(&m, 3, 3, 7, 5, 0), out = mb_value(&m, 1, 105, 0, 0, 0);
    mb_op(&m, 10, 0, in, MB_NONE, out, MB_NONE, MB_NONE, NULL);
    m.input = in;
    m.output = out;
    mb_add_section(&m, 0x50455250u /* PREP */, 0, prep, sizeof prep);
    size_t n;
    uint8_t *file = mb_build(&m, &n);
    crisp_model *loaded = NULL;
    if (crisp_model_load_buffer(file, n, &loaded) != CRISP_OK) abort();
    free(file);
    mb_free(&m);
    return loaded;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Width x height a PNG or BMP header claims (JPEG: the first SOF), 0 if unknown. */
static uint64_t claimed_pixels(const uint8_t *d, size_t n) {
    if (n >= 24 && d[0] == 0x89 && d[1] == 'P') return (uint64_t)be32(d + 16) * be32(d + 20);
    if (n >= 26 && d[0] == 'B' && d[1] == 'M') {
        const uint32_t w = (uint32_t)d[18] | (uint32_t)d[19] << 8 | (uint32_t)d[20] << 16 |
                           (uint32_t)d[21] << 24;
        int32_t h;
        memcpy(&h, d + 22, 4);
        return (uint64_t)w * (uint64_t)(h < 0 ? -(int64_t)h : h);
    }
    for (size_t i = 2; i + 9 < n; i++)
        if (d[i] == 0xFF && d[i + 1] >= 0xC0 && d[i + 1] <= 0xCF && d[i + 1] != 0xC4 &&
            d[i + 1] != 0xC8 && d[i + 1] != 0xCC)
            return (uint64_t)((uint32_t)d[i + 5] << 8 | d[i + 6]) *
                   ((uint32_t)d[i + 7] << 8 | d[i + 8]);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (model == NULL) model = make_model();
    if (claimed_pixels(data, size) > FUZZ_MAX_PIXELS) return 0;
    float out[105];
    crisp_image_decode(model, data, size, out, 105);
    return 0;
}
