/* PREP and images: every malformed PREP field is a format error naming it;
 * crisp_model_get_preprocess; the image fixtures of argv[1]
 * (tests/make_image_fixtures.py: PNG 8/16-bit, RGBA, BMP exactly, JPEG within
 * 2 steps) against the host pipeline's output; truncated and corrupt images;
 * a model without PREP. Usage: test_image DIR */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32.h"
#include "loader_check.h"
#include "model_builder.h"
#include "npy.h"

CHECK_DEFINE_COUNTERS;

#define KIND(s) ((uint32_t)(s)[0] | (uint32_t)(s)[1] << 8 | (uint32_t)(s)[2] << 16 | (uint32_t)(s)[3] << 24)

typedef struct prep_rec {
    uint32_t h, w, resize, size, order;
    float mean[3], std[3];
} prep_rec;

static const prep_rec IMAGENET_SS = {12, 12, 1, 14, 0, {0.485f, 0.456f, 0.406f},
                                     {0.229f, 0.224f, 0.225f}};

static void put_f32(uint8_t *p, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    mb_put_u32(p, u);
}

static void prep_bytes(uint8_t out[64], const prep_rec *p) {
    memset(out, 0, 64);
    mb_put_u32(out, 64);
    mb_put_u32(out + 4, 3);
    mb_put_u32(out + 8, p->h);
    mb_put_u32(out + 12, p->w);
    mb_put_u32(out + 16, p->resize);
    mb_put_u32(out + 20, p->size);
    mb_put_u32(out + 24, p->order);
    put_f32(out + 28, 1.0f / 255.0f);
    for (int c = 0; c < 3; c++) {
        put_f32(out + 32 + 4 * c, p->mean[c]);
        put_f32(out + 44 + 4 * c, p->std[c]);
    }
}

/* (3,H,W) -> RESHAPE -> (3HW), with `prep` (size bytes) as PREP unless NULL. */
static uint8_t *image_model(uint32_t h, uint32_t w, const void *prep, size_t prep_size,
                            size_t *size) {
    mb_model m;
    mb_init(&m);
    const uint32_t in = mb_value(&m, 3, 3, h, w, 0);
    const uint32_t out = mb_value(&m, 1, 3 * h * w, 0, 0, 0);
    mb_op(&m, 10, 0, in, MB_NONE, out, MB_NONE, MB_NONE, NULL);
    m.input = in;
    m.output = out;
    if (prep != NULL) mb_add_section(&m, KIND("PREP"), 0, prep, prep_size);
    uint8_t *file = mb_build(&m, size);
    mb_free(&m);
    return file;
}

static crisp_model *load_image_model(const prep_rec *p) {
    uint8_t rec[64];
    prep_bytes(rec, p);
    size_t size;
    uint8_t *file = image_model(p->h, p->w, rec, 64, &size);
    crisp_model *m = NULL;
    CHECK(crisp_model_load_buffer(file, size, &m) == CRISP_OK, "load: %s", crisp_last_error());
    free(file);
    return m;
}

static void test_bad_prep(void) {
    const prep_rec good = {8, 8, 1, 8, 0, {0.5f, 0.5f, 0.5f}, {0.25f, 0.25f, 0.25f}};
    struct {
        size_t at;
        uint32_t u;
        float f;
        int is_float;
        const char *message;
    } cases[] = {
        {0, 32, 0, 0, "PREP: record_size is 32, expected 64"},
        {0, 65, 0, 0, "PREP: record_size is 65, expected 64"},
        {4, 4, 0, 0, "PREP: channels is 4, expected 3"},
        {8, 9, 0, 0, "PREP: height is 9, expected 8 (the graph input's)"},
        {12, 7, 0, 0, "PREP: width is 7, expected 8 (the graph input's)"},
        {16, 3, 0, 0, "PREP: resize is 3, expected 0 (none), 1 (shorter_side) or 2 (stretch)"},
        {20, 7, 0, 0, "PREP: resize_size is 7, expected 8..16384 with resize shorter_side"},
        {20, 16385, 0, 0, "PREP: resize_size is 16385, expected 8..16384"},
        {24, 2, 0, 0, "PREP: channel_order is 2, expected 0 (RGB) or 1 (BGR)"},
        {28, 0, 0.0f, 1, "PREP: scale is 0, expected finite > 0"},
        {28, 0, INFINITY, 1, "PREP: scale is inf, expected finite > 0"},
        {36, 0, NAN, 1, "PREP: mean[1] is"},
        {48, 0, 0.0f, 1, "PREP: std[1] is 0, expected > 0"},
        {52, 0, -1.0f, 1, "PREP: std[2] is -1, expected > 0"},
        {44, 0, INFINITY, 1, "PREP: std[0] is inf, expected finite > 0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t rec[64];
        prep_bytes(rec, &good);
        if (cases[i].is_float) put_f32(rec + cases[i].at, cases[i].f);
        else mb_put_u32(rec + cases[i].at, cases[i].u);
        size_t size;
        uint8_t *file = image_model(8, 8, rec, 64, &size);
        EXPECT_LOAD(file, size, CRISP_ERR_FORMAT, cases[i].message, cases[i].message);
        free(file);
    }
    /* resize_size must be 0 unless shorter_side; a longer record is read by its prefix. */
    uint8_t rec[80];
    prep_bytes(rec, &good);
    mb_put_u32(rec + 16, 0);
    size_t size;
    uint8_t *file = image_model(8, 8, rec, 64, &size);
    EXPECT_LOAD(file, size, CRISP_ERR_FORMAT, "PREP: resize_size is 8, expected 0 with resize none",
                "resize_size with none");
    free(file);
    prep_bytes(rec, &good);
    memset(rec + 64, 0xAB, 16);
    mb_put_u32(rec, 80);
    file = image_model(8, 8, rec, 80, &size);
    EXPECT_LOAD(file, size, CRISP_OK, NULL, "an 80-byte record from a later minor version");
    free(file);
    /* A cut section, and a graph input that is no image. */
    for (size_t n = 0; n < 64; n += 9) {
        file = image_model(8, 8, rec, n, &size);
        EXPECT_LOAD(file, size, CRISP_ERR_FORMAT, "smaller than its 64-byte record",
                    "truncated PREP");
        free(file);
    }
    mb_model m;
    mb_init(&m);
    const uint32_t in = mb_value(&m, 1, 192, 0, 0, 0), out = mb_value(&m, 1, 192, 0, 0, 0);
    mb_op(&m, 4, 0, in, MB_NONE, out, MB_NONE, MB_NONE, NULL);
    m.input = in;
    m.output = out;
    prep_bytes(rec, &good);
    mb_add_section(&m, KIND("PREP"), 0, rec, 64);
    file = mb_build(&m, &size);
    EXPECT_LOAD(file, size, CRISP_ERR_FORMAT, "images need a (3,H,W) input", "rank-1 input");
    free(file);
    mb_free(&m);
}

static void test_get_preprocess(void) {
    const prep_rec p = {6, 10, 2, 0, 1, {0.1f, 0.2f, 0.3f}, {1, 2, 3}};
    crisp_model *m = load_image_model(&p);
    crisp_preprocess out;
    CHECK(crisp_model_get_preprocess(m, &out) == CRISP_OK && out.present == 1 &&
              out.channels == 3 && out.height == 6 && out.width == 10 &&
              out.resize == CRISP_RESIZE_STRETCH && out.resize_size == 0 &&
              out.channel_order == CRISP_CHANNELS_BGR && out.scale == 1.0f / 255.0f &&
              out.mean[2] == 0.3f && out.std[1] == 2.0f,
          "get_preprocess");
    CHECK(crisp_model_get_preprocess(NULL, &out) == CRISP_ERR_ARGUMENT, "NULL model");
    CHECK(crisp_model_get_preprocess(m, NULL) == CRISP_ERR_ARGUMENT, "NULL out");
    crisp_model_free(m);
    size_t size;
    uint8_t *file = image_model(6, 10, NULL, 0, &size);
    CHECK(crisp_model_load_buffer(file, size, &m) == CRISP_OK, "load without PREP");
    free(file);
    CHECK(crisp_model_get_preprocess(m, &out) == CRISP_OK && out.present == 0 &&
              out.height == 0 && out.scale == 0,
          "no PREP: present 0, fields 0");
    float x[180];
    CHECK(crisp_image_decode(m, "\x89PNG", 4, x, 180) == CRISP_ERR_UNSUPPORTED &&
              strstr(crisp_last_error(), "MODEL: the file stores no preprocessing (PREP); repack "
                                         "it with `crisp-edge pack ... --mean"),
          "no PREP: %s", crisp_last_error());
    CHECK(crisp_image_load(m, "/nonexistent.png", x, 180) == CRISP_ERR_UNSUPPORTED,
          "no PREP, load: %s", crisp_last_error());
    crisp_model_free(m);
}

static uint8_t *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    uint8_t *buf = malloc(1 << 20);
    *size = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static void test_fixture(const char *dir, const char *name, const prep_rec *p, float steps) {
    char path[1024], expected[1100];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(expected, sizeof expected, "%s.expected.npy", path);
    npy_array want;
    char err[512];
    if (npy_read(expected, &want, err, sizeof err) != 0) {
        CHECK(0, "%s", err);
        return;
    }
    crisp_model *m = load_image_model(p);
    const size_t n = (size_t)3 * p->h * p->w;
    float *got = malloc(n * sizeof *got);
    CHECK(want.count == n, "%s: expected has %llu values", name, (unsigned long long)want.count);
    if (crisp_image_load(m, path, got, n) != CRISP_OK) {
        CHECK(0, "%s: %s", name, crisp_last_error());
    } else if (want.count == n) {
        double worst = 0;
        for (size_t i = 0; i < n; i++) {
            const double d = fabs((double)got[i] - want.data[i]) * p->std[i / (n / 3)] * 255.0;
            if (d > worst) worst = d;
        }
        CHECK(worst <= steps + 1e-3, "%s: %.3f steps from the host pipeline (allowed %g)", name,
              worst, (double)steps);
    }
    /* The same bytes through crisp_image_decode give the same floats. */
    size_t size;
    uint8_t *bytes = read_all(path, &size);
    float *again = malloc(n * sizeof *again);
    CHECK(bytes != NULL && crisp_image_decode(m, bytes, size, again, n) == CRISP_OK &&
              memcmp(again, got, n * sizeof *got) == 0,
          "%s: decode differs from load", name);
    free(bytes);
    free(again);
    free(got);
    npy_free(&want);
    crisp_model_free(m);
}

static void test_bad_images(const char *dir) {
    crisp_model *m = load_image_model(&IMAGENET_SS);
    const size_t n = 3 * 12 * 12;
    float *x = malloc(n * sizeof *x);
    char path[1024];
    const char *names[] = {"photo.png", "photo.jpg", "palette.bmp"};
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        size_t size;
        uint8_t *bytes = read_all(path, &size);
        CHECK(bytes != NULL, "read %s", path);
        if (bytes == NULL) continue;
        /* Every cut of the PNG and JPEG is an error (BMP has no end marker: cuts of its
         * pixel data are stb's call), never a crash. */
        for (size_t cut = 0; cut < size; cut += (k == 2 ? 1 : 7)) {
            const crisp_status s = crisp_image_decode(m, bytes, cut, x, n);
            if (k < 2)
                CHECK(s == CRISP_ERR_FORMAT && strncmp(crisp_last_error(), "image: ", 7) == 0,
                      "%s cut to %zu: %s %s", names[k], cut, crisp_status_name(s),
                      crisp_last_error());
            else
                CHECK(s == CRISP_ERR_FORMAT || s == CRISP_OK, "bmp cut to %zu: %s", cut,
                      crisp_last_error());
        }
        /* Flips: a PNG's CRC catches every flip inside a chunk; anything else never crashes. */
        for (size_t at = 0; at < size; at += 5) {
            bytes[at] ^= 0x5A;
            const crisp_status s = crisp_image_decode(m, bytes, size, x, n);
            if (k == 0 && at >= 8)
                CHECK(s == CRISP_ERR_FORMAT, "png flip at %zu: %s", at, crisp_last_error());
            bytes[at] ^= 0x5A;
        }
        free(bytes);
    }
    CHECK(crisp_image_decode(m, "GIF89a....", 10, x, n) == CRISP_ERR_FORMAT &&
              strstr(crisp_last_error(), "not a PNG, JPEG or BMP image"),
          "gif: %s", crisp_last_error());
    CHECK(crisp_image_load(m, "/nonexistent/x.png", x, n) == CRISP_ERR_IO &&
              strstr(crisp_last_error(), "image '/nonexistent/x.png'"),
          "missing file: %s", crisp_last_error());
    CHECK(crisp_image_load(m, dir, x, n) == CRISP_ERR_IO, "a directory: %s", crisp_last_error());
    snprintf(path, sizeof path, "%s/photo.png", dir);
    CHECK(crisp_image_load(m, path, x, n - 1) == CRISP_ERR_SHAPE &&
              strstr(crisp_last_error(), "the model takes 432 = (3,12,12)"),
          "short output: %s", crisp_last_error());
    CHECK(crisp_image_decode(NULL, "x", 1, x, n) == CRISP_ERR_ARGUMENT, "NULL model");
    CHECK(crisp_image_decode(m, NULL, 1, x, n) == CRISP_ERR_ARGUMENT, "NULL data");
    CHECK(crisp_image_load(m, NULL, x, n) == CRISP_ERR_ARGUMENT, "NULL path");
    /* A header asking for more than CRISP_IMAGE_MAX_SIDE is refused before decoding. */
    uint8_t big[45] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                       0, 0, 0x23, 0x28, 0, 0, 0, 10, 8, 2, 0, 0, 0, 0, 0, 0, 0,
                       0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
    const uint32_t crc = crisp_crc32(0, big + 12, 17);
    for (int i = 0; i < 4; i++) big[29 + i] = (uint8_t)(crc >> (24 - 8 * i));
    CHECK(crisp_image_decode(m, big, sizeof big, x, n) == CRISP_ERR_FORMAT &&
              strstr(crisp_last_error(), "image is 9000x10 pixels, at most 8192x8192 allowed"),
          "huge: %s", crisp_last_error());
    free(x);
    crisp_model_free(m);
    /* resize none: another size is a shape error naming both. */
    const prep_rec none = {12, 12, 0, 0, 0, {0, 0, 0}, {1, 1, 1}};
    m = load_image_model(&none);
    x = malloc(n * sizeof *x);
    CHECK(crisp_image_load(m, path, x, n) == CRISP_ERR_SHAPE &&
              strstr(crisp_last_error(), "image is 37x23 pixels; the model takes exactly 12x12"),
          "resize none: %s", crisp_last_error());
    free(x);
    crisp_model_free(m);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_image DIR (runtime/tests/data/images)\n");
        return 2;
    }
    test_bad_prep();
    test_get_preprocess();
    const prep_rec gray16 = {9, 13, 2, 0, 1, {0.5f, 0.5f, 0.5f}, {0.25f, 0.25f, 0.25f}};
    const prep_rec rgba = {17, 19, 0, 0, 0, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
    const prep_rec bmp = {20, 10, 2, 0, 0, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
    test_fixture(argv[1], "photo.png", &IMAGENET_SS, 0);
    test_fixture(argv[1], "photo.jpg", &IMAGENET_SS, 2);
    test_fixture(argv[1], "gray16.png", &gray16, 0);
    test_fixture(argv[1], "rgba.png", &rgba, 0);
    test_fixture(argv[1], "palette.bmp", &bmp, 0);
    test_bad_images(argv[1]);
    return check_report();
}
