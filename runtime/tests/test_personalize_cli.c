/* crisp-personalize's real code (crisp_personalize_main) in-process: a fit
 * from --npy/--labels (int64 and int32 labels, --names, ids kept or new), a
 * re-selection with coverage and its warning, and every bad input with exit
 * code and message; --images on a folder of the image fixtures (argv[2]) with a corrupt
 * file, --skip-bad and a model without PREP. argv[1]: a scratch directory. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "crisp.h"
#include "crisp_personalize_cli.h"
#include "head_models.h"
#include "model.h"
#include "npy.h"
#include "scratch.h"

CHECK_DEFINE_COUNTERS;

#define KIND(s) ((uint32_t)(s)[0] | (uint32_t)(s)[1] << 8 | (uint32_t)(s)[2] << 16 | (uint32_t)(s)[3] << 24)

static char out_text[1 << 16], err_text[1 << 16];


static void write_file(const char *name, const void *data, size_t size) {
    CHECK(scratch_write(scratch_path(name), data, size), "cannot write %s", name);
}

/* An integer .npy: '<i8' or '<i4'. */
static void write_labels(const char *name, const int64_t *v, size_t n, int wide) {
    char header[128];
    int len = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (%zu,), }",
                       wide ? "<i8" : "<i4", n);
    while ((10 + len + 1) % 64) header[len++] = ' ';
    header[len++] = '\n';
    const size_t item = wide ? 8 : 4, size = 10 + (size_t)len + n * item;
    uint8_t *b = malloc(size);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (uint8_t)len, b[9] = 0;
    memcpy(b + 10, header, (size_t)len);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < item; k++) b[10 + len + i * item + k] = (uint8_t)((uint64_t)v[i] >> (8 * k));
    write_file(name, b, size);
    free(b);
}

static void read_back(FILE *f, char *buf, size_t cap) {
    rewind(f);
    const size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
}

static int cli(const char *first, ...) {
    char *argv[32] = {"crisp-personalize"};
    int argc = 1;
    va_list args;
    va_start(args, first);
    for (const char *a = first; a != NULL && argc < 31; a = va_arg(args, const char *))
        argv[argc++] = (char *)a;
    va_end(args);
    argv[argc] = NULL;
    FILE *out = tmpfile(), *err = tmpfile();
    const int rc = crisp_personalize_main(argc, argv, out, err);
    read_back(out, out_text, sizeof out_text);
    read_back(err, err_text, sizeof err_text);
    fclose(out), fclose(err);
    return rc;
}

#define EXPECT(rc_want, needle, ...)                                                        \
    do {                                                                                    \
        const int rc_ = cli(__VA_ARGS__, NULL);                                             \
        CHECK(rc_ == (rc_want) && strstr(err_text, needle) != NULL,                          \
              "line %d: exit %d (want %d), stderr: %s", __LINE__, rc_, rc_want, err_text);  \
    } while (0)

static void make_files(void) {
    /* Base: 5 classes (ids 100..112, names c0..c4), hybrid conv with SALY, full head. */
    mb_model mb;
    hm_cnn(&mb, &(hm_options){.classes = 5, .features = 8, .bias = 1, .tail = "s", .labels = 1,
                              .hybrid_conv = 1, .provenance = "{\"head\": {\"reduced\": false}}"});
    uint16_t conv[5 * 6];
    for (int i = 0; i < 30; i++) conv[i] = hm_half((float)(1 + i % 7));
    const hm_saly_layer layer = {0, 5, 2, 3, "features.0", conv};
    size_t n;
    uint8_t *saly = hm_saly(&layer, 1, &n);
    mb_add_section(&mb, KIND("SALY"), 0, saly, n);
    uint8_t *f = mb_build(&mb, &n);
    write_file("base.crisp", f, n);
    free(f);
    mb.provenance = "{\"head\": {\"reduced\": true}}";
    f = mb_build(&mb, &n);
    write_file("reduced.crisp", f, n);
    free(f), free(saly);
    mb_free(&mb);
    hm_cnn(&mb, &(hm_options){.classes = 4, .features = 8, .tail = "u"});
    f = mb_build(&mb, &n);
    write_file("nohead.crisp", f, n);
    free(f);
    mb_free(&mb);
    hm_int8(&mb);
    f = mb_build(&mb, &n);
    write_file("int8.crisp", f, n);
    free(f);
    mb_free(&mb);
    /* 12 images of 3 classes: class means apart, so the fit separates them. */
    enum { N = 12 };
    float x[N * 108];
    int64_t y[N];
    unsigned r = 5;
    for (int i = 0; i < N; i++) {
        y[i] = i % 3;
        for (int k = 0; k < 108; k++)
            x[i * 108 + k] = (float)((k / 36) == y[i]) * 2.0f + 0.3f * check_rand_float(&r);
    }
    char msg[256];
    const uint64_t d4[4] = {N, 3, 6, 6}, d2[2] = {N, 108}, bad[2] = {N, 107};
    CHECK(npy_write(scratch_path("x.npy"), x, 4, d4, msg, sizeof msg) == 0, "%s", msg);
    CHECK(npy_write(scratch_path("x2.npy"), x, 2, d2, msg, sizeof msg) == 0, "%s", msg);
    CHECK(npy_write(scratch_path("xbad.npy"), x, 2, bad, msg, sizeof msg) == 0, "%s", msg);
    CHECK(npy_write(scratch_path("yfloat.npy"), x, 1, (const uint64_t[]){N}, msg, sizeof msg) == 0,
          "%s", msg);
    write_labels("y.npy", y, N, 1);
    write_labels("y32.npy", y, N, 0);
    write_labels("yshort.npy", y, N - 1, 1);
    int64_t one[N];
    memcpy(one, y, sizeof one);
    one[0] = 3; /* class 3 has one image */
    write_labels("yone.npy", one, N, 1);
    one[0] = -2;
    write_labels("yneg.npy", one, N, 1);
}

static void test_fit(void) {
    const char *base = scratch_path("base.crisp"), *out = scratch_path("fit.crisp");
    int rc = cli(base, "--npy", scratch_path("x.npy"), "--labels", scratch_path("y.npy"), "--names",
                 "c1,dog,cat", "--out", out, "--threads", "2", NULL);
    CHECK(rc == 0, "fit: exit %d: %s", rc, err_text);
    CHECK(strstr(out_text, "train accuracy 100.0 %") && strstr(out_text, "wrote ") &&
              strstr(out_text, "seconds: features"),
          "stdout: %s", out_text);
    crisp_model *m = NULL;
    CHECK(crisp_model_load_file(out, &m) == CRISP_OK, "%s", crisp_last_error());
    if (m) {
        int32_t id = 0;
        const char *name = "";
        /* "c1" is in the base label map (id 103); the others continue after 112. */
        CHECK(crisp_model_get_label(m, 0, &id, &name) == CRISP_OK && id == 103 &&
                  strcmp(name, "c1") == 0, "label 0: %d %s", id, name);
        CHECK(crisp_model_get_label(m, 1, &id, &name) == CRISP_OK && id == 113 &&
                  strcmp(name, "dog") == 0, "label 1: %d %s", id, name);
        CHECK(crisp_model_get_label(m, 2, &id, &name) == CRISP_OK && id == 114, "label 2: %d", id);
        const char *prov;
        crisp_model_get_provenance(m, &prov, NULL);
        CHECK(strstr(prov, "\"personalized\": {\"mode\": \"fit\", \"classes\": [{\"id\": 103, "
                           "\"name\": \"c1\"}") && strstr(prov, "\"images\": 12"),
              "PROV: %s", prov);
        crisp_model_free(m);
    }
    /* int32 labels, (n, elements) inputs, default names, bitwise the same head for 1 and 3 threads. */
    rc = cli(base, "--npy", scratch_path("x2.npy"), "--labels", scratch_path("y32.npy"), "--out",
             scratch_path("fit1.crisp"), NULL);
    CHECK(rc == 0, "fit int32: %s", err_text);
    rc = cli(base, "--npy", scratch_path("x.npy"), "--labels", scratch_path("y.npy"), "--out",
             scratch_path("fit3.crisp"), "--threads", "3", NULL);
    CHECK(rc == 0, "fit 3 threads: %s", err_text);
    crisp_model *a = NULL, *b = NULL;
    crisp_model_load_file(scratch_path("fit1.crisp"), &a);
    crisp_model_load_file(scratch_path("fit3.crisp"), &b);
    float wa[24], ba[3], wb[24], bb[3];
    CHECK(a && b && crisp_model_get_head_weights(a, wa, 24, ba, 3) == CRISP_OK &&
              crisp_model_get_head_weights(b, wb, 24, bb, 3) == CRISP_OK &&
              memcmp(wa, wb, sizeof wa) == 0 && memcmp(ba, bb, sizeof ba) == 0,
          "1 vs 3 threads: a different head");
    int32_t id = 0;
    const char *name = "";
    CHECK(a && crisp_model_get_label(a, 2, &id, &name) == CRISP_OK && strcmp(name, "2") == 0 &&
              id == 115,
          "default names: %d %s", id, name);
    crisp_model_free(a), crisp_model_free(b);
    /* A re-selection from a personalised file: no full head. */
    EXPECT(1, "repack the base model with --keep-head", out, "--classes", "c1", "--out",
           scratch_path("again.crisp"));
}


/* --tune bias: the stage and what was tuned printed, train accuracy before/after, PROV, the
 * same file bit for bit for 1 and 3 threads, the conv weights unchanged, bad combinations. */
static void test_tune_bias(void) {
    const char *base = scratch_path("base.crisp");
    int rc = cli(base, "--npy", scratch_path("x.npy"), "--labels", scratch_path("y.npy"), "--tune", "bias",
                 "--epochs", "5", "--out", scratch_path("tb1.crisp"), NULL);
    CHECK(rc == 0, "tune bias: exit %d: %s", rc, err_text);
    CHECK(strstr(out_text, "tune bias: ops 0..3 (6x6), 1 conv biases (8 values) + head (27 values)") &&
              strstr(out_text, "5 epochs, 10 steps") && strstr(out_text, "train accuracy") &&
              strstr(out_text, " -> ") && strstr(out_text, "seconds: features") &&
              strstr(out_text, ", tune "),
          "stdout: %s", out_text);
    rc = cli(base, "--npy", scratch_path("x2.npy"), "--labels", scratch_path("y32.npy"), "--tune", "bias",
             "--epochs", "5", "--out", scratch_path("tb3.crisp"), "--threads", "3", NULL);
    CHECK(rc == 0, "tune bias, 3 threads: exit %d: %s", rc, err_text);
    size_t n1, n3;
    uint8_t *f1 = scratch_read(scratch_path("tb1.crisp"), &n1), *f3 = scratch_read(scratch_path("tb3.crisp"), &n3);
    CHECK(n1 > 0 && n1 == n3 && memcmp(f1, f3, n1) == 0,
          "1 and 3 threads wrote different files (%zu, %zu bytes)", n1, n3);
    free(f1), free(f3);
    crisp_model *b = NULL, *t = NULL;
    crisp_model_load_file(base, &b);
    CHECK(crisp_model_load_file(scratch_path("tb1.crisp"), &t) == CRISP_OK, "%s", crisp_last_error());
    if (b != NULL && t != NULL) {
        const crisp_tensor *wb = &b->tensors[b->ops[0].weight], *wt = &t->tensors[t->ops[0].weight];
        CHECK(wb->raw_size == wt->raw_size && memcmp(wb->raw, wt->raw, wb->raw_size) == 0,
              "the conv's weights changed");
        const crisp_tensor *bb = &b->tensors[b->ops[0].bias], *bt = &t->tensors[t->ops[0].bias];
        CHECK(bb->raw_size == bt->raw_size && memcmp(bb->raw, bt->raw, bb->raw_size) != 0,
              "the conv's bias did not change");
        const char *prov;
        crisp_model_get_provenance(t, &prov, NULL);
        CHECK(strstr(prov, "\"tune\": \"bias\", \"stage\": {\"first_op\": 0, \"pool_op\": 1, "
                           "\"head_op\": 3, \"tuned_ops\": [0], \"tuned_biases\": 8}, "
                           "\"epochs\": 5, \"lr\": 0.001") != NULL,
              "PROV: %s", prov);
    }
    crisp_model_free(b), crisp_model_free(t);
    EXPECT(2, "not --classes", base, "--classes", "c1", "--tune", "bias", "--out", scratch_path("no.crisp"));
    EXPECT(2, "(head or bias)", base, "--npy", scratch_path("x.npy"), "--labels", scratch_path("y.npy"),
           "--tune", "all", "--out", scratch_path("no.crisp"));
    EXPECT(2, "--lr goes with --tune bias", base, "--npy", scratch_path("x.npy"), "--labels",
           scratch_path("y.npy"), "--lr", "0.01", "--out", scratch_path("no.crisp"));
    EXPECT(2, "--imprint-only goes with --tune head", base, "--npy", scratch_path("x.npy"), "--labels",
           scratch_path("y.npy"), "--tune", "bias", "--imprint-only", "--out", scratch_path("no.crisp"));
    EXPECT(1, "is int8", scratch_path("int8.crisp"), "--npy", scratch_path("x.npy"), "--labels",
           scratch_path("y.npy"), "--tune", "bias", "--out", scratch_path("no.crisp"));
    CHECK(access(scratch_path("no.crisp"), F_OK) != 0, "a refused run wrote a file");
}

static void test_reselect(void) {
    const char *base = scratch_path("base.crisp"), *out = scratch_path("sel.crisp");
    int rc = cli(base, "--classes", "c3,100", "--out", out, NULL);
    CHECK(rc == 0, "reselect: %s", err_text);
    CHECK(strstr(out_text, "class 'c3' (109): coverage ") && strstr(out_text, "class 'c0' (100)"),
          "stdout: %s", out_text);
    crisp_model *m = NULL, *o = NULL;
    CHECK(crisp_model_load_file(out, &m) == CRISP_OK && crisp_model_load_file(base, &o) == CRISP_OK,
          "%s", crisp_last_error());
    if (m && o) {
        float w[16], b[2], fw[40], fb[5];
        crisp_model_get_head_weights(m, w, 16, b, 2);
        crisp_model_get_head_weights(o, fw, 40, fb, 5);
        CHECK(memcmp(w, fw + 3 * 8, 32) == 0 && memcmp(w + 8, fw, 32) == 0 && b[0] == fb[3] &&
                  b[1] == fb[0],
              "rows copied");
        const char *prov;
        crisp_model_get_provenance(m, &prov, NULL);
        CHECK(strstr(prov, "\"mode\": \"reselect\"") && strstr(prov, "\"coverage\": "),
              "PROV: %s", prov);
        float c;
        CHECK(crisp_model_class_coverage(m, 109, &c) == CRISP_OK, "SALY kept: %s",
              crisp_last_error());
    }
    crisp_model_free(m), crisp_model_free(o);
    rc = cli(base, "--classes", "c2", "--out", out, "--min-coverage", "1", NULL);
    CHECK(rc == 0 && strstr(err_text, "warning: class 'c2' (106): only") &&
              strstr(err_text, "below --min-coverage 1.00"),
          "warning: %s", err_text);
}

static void test_bad_inputs(void) {
    const char *base = scratch_path("base.crisp"), *out = scratch_path("bad.crisp");
    const char *x = scratch_path("x.npy"), *y = scratch_path("y.npy");
    EXPECT(2, "need --out NEW.crisp", base, "--classes", "c1");
    EXPECT(2, "need exactly one of", base, "--out", out);
    EXPECT(2, "need exactly one of", base, "--classes", "c1", "--npy", x, "--labels", y, "--out", out);
    EXPECT(2, "--npy and --labels go together", base, "--npy", x, "--out", out);
    EXPECT(2, "--epochs: bad value '0'", base, "--classes", "c1", "--out", out, "--epochs", "0");
    EXPECT(2, "--min-coverage: bad value '2'", base, "--classes", "c1", "--out", out,
           "--min-coverage", "2");
    EXPECT(2, "unknown option '--bogus'", base, "--bogus");
    EXPECT(1, "stores no image preprocessing (PREP)", base, "--images", scratch_dir(), "--out", out);
    EXPECT(2, "--skip-bad goes with --images", base, "--classes", "c1", "--skip-bad", "--out",
           out);
    EXPECT(1, "cannot open '", scratch_path("missing.crisp"), "--classes", "c1", "--out", out);
    EXPECT(1, "model has no linear classifier head", scratch_path("nohead.crisp"), "--classes", "0",
           "--out", out);
    EXPECT(1, "personalisation of int8 models is not supported yet", scratch_path("int8.crisp"),
           "--classes", "0", "--out", out);
    EXPECT(1, "missing.npy", base, "--npy", scratch_path("missing.npy"), "--labels", y, "--out", out);
    EXPECT(1, "does not fit the model: expected (n, 3,6,6) or (n, 108)", base, "--npy",
           scratch_path("xbad.npy"), "--labels", y, "--out", out);
    EXPECT(1, "is not an integer type", base, "--npy", x, "--labels", scratch_path("yfloat.npy"),
           "--out", out);
    EXPECT(1, "shape (11,), expected (12,)", base, "--npy", x, "--labels", scratch_path("yshort.npy"),
           "--out", out);
    EXPECT(1, "class '3' has 1 usable image; every class needs at least 2", base, "--npy", x,
           "--labels", scratch_path("yone.npy"), "--out", out);
    EXPECT(1, "label -2 at index 0", base, "--npy", x, "--labels", scratch_path("yneg.npy"), "--out", out);
    EXPECT(1, "--names has 2 names, but", base, "--npy", x, "--labels", y, "--names", "a,b",
           "--out", out);
    EXPECT(1, "--names: 'a' names classes 0 and 2", base, "--npy", x, "--labels", y, "--names",
           "a,b,a", "--out", out);
    EXPECT(1, "unknown class 'zebra' in --classes; the full head has 'c0' (100), 'c1' (103)", base,
           "--classes", "c1,zebra", "--out", out);
    EXPECT(1, "--classes names class 'c1' twice ('c1' and '103')", base, "--classes", "c1,103", "--out", out);
    EXPECT(1, "the head was reduced to the user's classes; repack the base model with --keep-head",
           scratch_path("reduced.crisp"), "--classes", "c1", "--out", out);
    EXPECT(1, "cannot write '", base, "--classes", "c1", "--out", scratch_path("no/such/dir/x.crisp"));
    struct stat st;
    CHECK(stat(out, &st) != 0, "nothing written on errors");
}

static char fixtures[512];

static void copy_fixture(const char *name, const char *to) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", fixtures, name);
    FILE *f = fopen(path, "rb");
    static uint8_t buf[1 << 20];
    const size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    CHECK(n > 0, "cannot read the fixture %s", path);
    write_file(to, buf, n);
}

/* --images: the base model with a PREP (stretch to its 6x6 input), two classes of the image
 * fixtures (PNG, RGBA PNG, BMP, JPEG of other sizes), then a corrupt file among them. */
static void test_images(void) {
    uint8_t prep[64] = {0};
    const float scale = 1.0f / 255.0f, mean = 0.5f, std = 0.25f;
    const uint32_t head[7] = {64, 3, 6, 6, 2, 0, 0}; /* record, C, H, W, stretch, S, RGB */
    for (int i = 0; i < 7; i++) mb_put_u32(prep + 4 * i, head[i]);
    memcpy(prep + 28, &scale, 4);
    for (int c = 0; c < 3; c++) memcpy(prep + 32 + 4 * c, &mean, 4), memcpy(prep + 44 + 4 * c, &std, 4);
    mb_model mb;
    hm_cnn(&mb, &(hm_options){.classes = 5, .features = 8, .bias = 1, .tail = "s", .labels = 1,
                              .provenance = "{\"head\": {\"reduced\": false}}"});
    mb_add_section(&mb, KIND("PREP"), 0, prep, sizeof prep);
    size_t n;
    uint8_t *f = mb_build(&mb, &n);
    write_file("prep.crisp", f, n);
    free(f);
    mb_free(&mb);
    /* scratch_path's buffers are reused after 16 calls: keep these paths. */
    char model[1024], out[1024], imgs[1024];
    snprintf(model, sizeof model, "%s", scratch_path("prep.crisp"));
    snprintf(out, sizeof out, "%s", scratch_path("img.crisp"));
    snprintf(imgs, sizeof imgs, "%s", scratch_path("imgs"));
    mkdir(scratch_path("imgs"), 0755), mkdir(scratch_path("imgs/cat"), 0755), mkdir(scratch_path("imgs/dog"), 0755);
    mkdir(scratch_path("imgs/.hidden"), 0755);
    copy_fixture("photo.png", "imgs/cat/a.png");
    copy_fixture("rgba.png", "imgs/cat/b.PNG");
    copy_fixture("palette.bmp", "imgs/dog/c.bmp");
    copy_fixture("photo.jpg", "imgs/dog/d.jpeg");
    write_file("imgs/dog/notes.txt", "not an image", 12);
    int rc = cli(model, "--images", imgs, "--out", out, "--threads", "2", NULL);
    CHECK(rc == 0 && strstr(out_text, "fit: 4 images"), "images: exit %d: %s%s", rc, out_text,
          err_text);
    crisp_model *m = NULL;
    CHECK(crisp_model_load_file(out, &m) == CRISP_OK, "%s", crisp_last_error());
    int32_t id = 0;
    const char *name = "";
    CHECK(m && crisp_model_get_label(m, 1, &id, &name) == CRISP_OK && strcmp(name, "dog") == 0 &&
              id == 114, "label 1: %d %s", id, name);
    crisp_preprocess pp;
    CHECK(m && crisp_model_get_preprocess(m, &pp) == CRISP_OK && pp.present && pp.resize == 2,
          "the new file keeps PREP");
    crisp_model_free(m);
    /* A corrupt image: named, and nothing written; --skip-bad goes on without it. */
    write_file("imgs/dog/e.png", "\x89PNG\r\n\x1a\n not really", 20);
    unlink(out);
    EXPECT(1, "imgs/dog/e.png", model, "--images", imgs, "--out", out);
    CHECK(strstr(err_text, "--skip-bad") != NULL && access(out, F_OK) != 0,
          "corrupt image: %s", err_text);
    rc = cli(model, "--images", imgs, "--out", out, "--skip-bad", NULL);
    CHECK(rc == 0 && strstr(err_text, "skipped") && strstr(err_text, "e.png"),
          "--skip-bad: exit %d: %s", rc, err_text);
    crisp_model_load_file(out, &m);
    const char *prov = "";
    if (m) crisp_model_get_provenance(m, &prov, NULL);
    CHECK(m && strstr(prov, "\"skipped\": 1"), "PROV: %s", prov);
    crisp_model_free(m);
    unlink(scratch_path("imgs/cat/b.PNG"));
    EXPECT(1, "class 'cat' has 1 usable image; every class needs at least 2", model, "--images",
           imgs, "--out", out, "--skip-bad");
    EXPECT(1, "no class folders", model, "--images", scratch_path("imgs/cat"), "--out", out);
    EXPECT(1, "cannot open the folder", model, "--images", scratch_path("nowhere"), "--out", out);
    const char *files[] = {"imgs/cat/a.png", "imgs/dog/c.bmp", "imgs/dog/d.jpeg",
                           "imgs/dog/notes.txt", "imgs/dog/e.png"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) unlink(scratch_path(files[i]));
    rmdir(scratch_path("imgs/cat")), rmdir(scratch_path("imgs/dog")), rmdir(scratch_path("imgs/.hidden"));
    rmdir(scratch_path("imgs"));
}


int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_personalize_cli SCRATCH_DIR IMAGE_FIXTURES_DIR\n");
        return 2;
    }
    snprintf(fixtures, sizeof fixtures, "%s", argv[2]);
    scratch_open(argv[1]);
    make_files();
    test_fit();
    test_tune_bias();
    test_reselect();
    test_bad_inputs();
    test_images();
    scratch_close();
    return check_report();
}
