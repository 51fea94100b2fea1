/* crisp_model_write_head and crisp_model_get_head_weights: round trips
 * (the new file loads; its logits equal W f + b on the unchanged features;
 * labels, PROV, unknown sections, SALY re-ordered or dropped), hybrid heads
 * read back densely, every refusal with its message, a failing write (no
 * directory, the file size limit) leaving nothing under the name, and 20
 * SIGKILLs at random points while writing over an existing model: the old
 * file or the complete new one, every time. argv[1]: a scratch directory. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "crisp.h"
#include "head_models.h"
#include "scratch.h"

CHECK_DEFINE_COUNTERS;

#define KIND(s) ((uint32_t)(s)[0] | (uint32_t)(s)[1] << 8 | (uint32_t)(s)[2] << 16 | (uint32_t)(s)[3] << 24)




static void write_all(const char *path, const void *data, size_t size) {
    CHECK(scratch_write(path, data, size), "cannot write %s", path);
}

/* Temporary files of `name` left in the scratch directory (removed). */
static int count_temps(const char *name) {
    char prefix[256];
    snprintf(prefix, sizeof prefix, ".%s.tmp-", name);
    DIR *d = opendir(scratch_dir());
    int n = 0;
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
            n++;
            unlink(scratch_path(e->d_name));
        }
    if (d) closedir(d);
    return n;
}

/* A section's bytes inside a file (NULL if absent). */
static const uint8_t *section(const uint8_t *f, const char *kind, size_t *size) {
    const size_t e = mb_section_entry(f, KIND(kind));
    if (e == 0) return NULL;
    *size = (size_t)mb_get_u64(f + e + 16);
    return f + mb_get_u64(f + e + 8);
}

static float rnd(unsigned *r) { return check_rand_float(r); }

/* The new model's output on x equals softmax/identity(W f + b) with f the old model's features. */
static void check_logits(const crisp_model *old, const crisp_model *nm, const float *w,
                         const float *b, uint32_t C, uint32_t F, int softmax, const char *what) {
    enum { B = 3 };
    crisp_model_info oi, ni;
    crisp_model_get_info(old, &oi);
    crisp_model_get_info(nm, &ni);
    CHECK(ni.output_elements == C, "%s: %llu outputs", what, (unsigned long long)ni.output_elements);
    if (ni.output_elements != C) return;
    const size_t in_n = (size_t)oi.input_elements;
    float *x = malloc(B * in_n * sizeof *x), f[B * 64], f2[B * 64], *y = malloc(B * C * sizeof *y);
    unsigned r = 77;
    for (size_t i = 0; i < B * in_n; i++) x[i] = rnd(&r);
    crisp_session *s, *s2;
    crisp_head_info h;
    crisp_model_get_head(old, &h);
    crisp_session_create(old, &s);
    crisp_session_create(nm, &s2);
    CHECK(crisp_session_run_to(s, h.feature_value, x, B * in_n, f, B * F) == CRISP_OK, "%s", crisp_last_error());
    CHECK(crisp_session_run_to(s2, h.feature_value, x, B * in_n, f2, B * F) == CRISP_OK &&
              memcmp(f, f2, B * F * sizeof *f) == 0,
          "%s: features differ", what);
    CHECK(crisp_session_run(s2, x, B * in_n, y, B * C) == CRISP_OK, "%s", crisp_last_error());
    for (int i = 0; i < B; i++) {
        double z[64], mx = -1e300, sum = 0;
        for (uint32_t c = 0; c < C; c++) {
            z[c] = b ? b[c] : 0;
            for (uint32_t k = 0; k < F; k++) z[c] += (double)w[c * F + k] * f[i * F + k];
            mx = fmax(mx, z[c]);
        }
        for (uint32_t c = 0; c < C; c++) sum += exp(z[c] - mx);
        for (uint32_t c = 0; c < C; c++) {
            const double want = softmax ? exp(z[c] - mx) / sum : z[c];
            CHECK(fabs(y[i * C + c] - want) <= 1e-5 * fabs(want) + 1e-6,
                  "%s: sample %d class %u: %g, expected %g", what, i, c, y[i * C + c], want);
        }
    }
    crisp_session_free(s), crisp_session_free(s2);
    free(x), free(y);
}

static void test_round_trip(void) {
    static const uint8_t prep[] = "XTRA: an optional section this runtime does not know";
    mb_model mb;
    hm_cnn(&mb, &(hm_options){.classes = 5, .features = 8, .bias = 1, .tail = "rs", .labels = 1,
                              .hybrid_conv = 1,
                              .provenance = "{\"source\": \"hm\", \"head\": {\"reduced\": false}}"});
    mb_add_section(&mb, KIND("XTRA"), 0, prep, sizeof prep);
    crisp_model *m = hm_load(&mb);
    mb_free(&mb);
    const uint32_t C = 3, F = 8;
    float w[24], b[3];
    unsigned r = 3;
    for (int i = 0; i < 24; i++) w[i] = rnd(&r);
    for (int i = 0; i < 3; i++) b[i] = rnd(&r);
    const int32_t ids[3] = {103, 7, 100};
    const char *names[3] = {"c1", "new \"one\"", "caf\xc3\xa9"};
    const crisp_new_head nh = {C, w, b, ids, names, "{\"mode\": \"fit\", \"images\": 6}"};
    const char *path = scratch_path("rt.crisp");
    unlink(path);
    CHECK(crisp_model_write_head(m, &nh, path) == CRISP_OK, "%s", crisp_last_error());
    crisp_model *nm = NULL;
    CHECK(crisp_model_load_file(path, &nm) == CRISP_OK, "reload: %s", crisp_last_error());
    if (nm != NULL) {
        crisp_model_info info;
        crisp_model_get_info(nm, &info);
        CHECK(info.output_rank == 2 && info.output_dims[0] == 1 && info.output_dims[1] == 3,
              "output shape rank %u (%u,%u)", info.output_rank, info.output_dims[0],
              info.output_dims[1]);
        check_logits(m, nm, w, b, C, F, 1, "round trip");
        for (uint32_t i = 0; i < C; i++) {
            int32_t id = 0;
            const char *name = "";
            CHECK(crisp_model_get_label(nm, i, &id, &name) == CRISP_OK && id == ids[i] &&
                      strcmp(name, names[i]) == 0,
                  "label %u", i);
        }
        const char *prov;
        crisp_model_get_provenance(nm, &prov, NULL);
        CHECK(strcmp(prov, "{\"source\": \"hm\", \"head\": {\"reduced\": false}, \"personalized\": "
                           "{\"mode\": \"fit\", \"images\": 6}}") == 0,
              "PROV: %s", prov);
        crisp_head_info h;
        float w2[24], b2[3];
        CHECK(crisp_model_get_head(nm, &h) == CRISP_OK && h.classes == 3 && h.has_bias,
              "new head");
        CHECK(crisp_model_get_head_weights(nm, w2, 24, b2, 3) == CRISP_OK &&
                  memcmp(w2, w, sizeof w) == 0 && memcmp(b2, b, sizeof b) == 0,
              "head weights read back");
        crisp_model_free(nm);
    }
    size_t n;
    uint8_t *f = scratch_read(path, &n);
    size_t ps = 0;
    const uint8_t *p = f ? section(f, "XTRA", &ps) : NULL;
    CHECK(p != NULL && ps == sizeof prep && memcmp(p, prep, ps) == 0, "an unknown optional section is copied verbatim");
    CHECK(f && section(f, "SALY", &ps) == NULL, "no SALY before, none after");
    free(f);
    CHECK(count_temps("rt.crisp") == 0, "temporary files left");
    /* Over an existing file, and from the file just written (a second personalisation). */
    CHECK(crisp_model_load_file(path, &nm) == CRISP_OK, "%s", crisp_last_error());
    const crisp_new_head nh2 = {C, w, NULL, ids, names, NULL};
    CHECK(crisp_model_write_head(nm, &nh2, path) == CRISP_OK, "%s", crisp_last_error());
    crisp_model *n2 = NULL;
    CHECK(crisp_model_load_file(path, &n2) == CRISP_OK, "%s", crisp_last_error());
    if (n2) {
        check_logits(m, n2, w, NULL, C, F, 1, "bias NULL = zeros");
        crisp_model_free(n2);
    }
    crisp_model_free(nm);
    crisp_model_free(m);
}

static void test_hybrid_and_bias(void) {
    for (uint32_t v = 1; v <= 2; v++) {
        mb_model mb;
        hm_cnn(&mb, &(hm_options){.classes = 6, .features = 16, .bias = 0, .tail = "s",
                                  .hybrid_head = 1, .head_v = v, .provenance = "not json"});
        crisp_model *m = hm_load(&mb);
        mb_free(&mb);
        /* The dense read-back computes what the runtime's hybrid kernel computes. */
        float w[96], b[6];
        CHECK(crisp_model_get_head_weights(m, w, 96, b, 6) == CRISP_OK, "%s", crisp_last_error());
        int zeros = 0;
        for (int i = 0; i < 96; i++) zeros += w[i] == 0;
        CHECK(zeros >= 48 && b[0] == 0 && b[5] == 0, "V %u: %d zeros in a 2:4 head", v, zeros);
        float x[108], f[16], z[6];
        unsigned r = 9;
        for (int i = 0; i < 108; i++) x[i] = rnd(&r);
        crisp_session *s;
        crisp_session_create(m, &s);
        crisp_session_run_to(s, 3, x, 108, f, 16);
        crisp_session_run_to(s, 4, x, 108, z, 6);
        crisp_session_free(s);
        for (int c = 0; c < 6; c++) {
            double want = 0;
            for (int k = 0; k < 16; k++) want += (double)w[c * 16 + k] * f[k];
            CHECK(fabs(z[c] - want) <= 1e-5 * fabs(want) + 1e-6, "V %u class %d: %g vs %g", v, c,
                  z[c], want);
        }
        CHECK(crisp_model_get_head_weights(m, w, 95, b, 6) == CRISP_ERR_SHAPE, "wrong count");
        /* No bias before; a bias now: a tensor record is appended. */
        float nw[32], nb[2] = {0.5f, -0.25f};
        for (int i = 0; i < 32; i++) nw[i] = rnd(&r);
        const int32_t ids[2] = {0, 1};
        const char *names[2] = {"a", "b"};
        const crisp_new_head nh = {2, nw, nb, ids, names, NULL};
        const char *path = scratch_path("hyb.crisp");
        CHECK(crisp_model_write_head(m, &nh, path) == CRISP_OK, "%s", crisp_last_error());
        crisp_model *nm = NULL;
        CHECK(crisp_model_load_file(path, &nm) == CRISP_OK, "%s", crisp_last_error());
        if (nm) {
            crisp_model_info oi, ni;
            crisp_model_get_info(m, &oi), crisp_model_get_info(nm, &ni);
            CHECK(ni.tensor_count == oi.tensor_count + 1, "bias appended: %u tensors", ni.tensor_count);
            check_logits(m, nm, nw, nb, 2, 16, 1, "hybrid head replaced");
            const char *prov;
            crisp_model_get_provenance(nm, &prov, NULL);
            CHECK(strcmp(prov, "{\"previous\": \"not json\", \"personalized\": {}}") == 0,
                  "PROV wrapped: %s", prov);
            crisp_model_free(nm);
        }
        crisp_model_free(m);
    }
}

/* A personalised model personalised again: its PROV holds one "personalized"
 * member, the new one, wherever the old one stood; the rest is kept as it was. */
static void test_prov_replaces(void) {
    static const struct {
        const char *old, *want;
    } cases[] = {
        {"{\"personalized\": {\"mode\": \"a\"}}", "{\"personalized\": {\"n\": 1}}"},
        {"{\"src\": \"x\", \"personalized\": {\"mode\": \"a\", \"c\": [\"}\", 2]}}",
         "{\"src\": \"x\", \"personalized\": {\"n\": 1}}"},
        {"{\"personalized\": {\"mode\": \"a\"}, \"src\": {\"personalized\": 0}}",
         "{\"src\": {\"personalized\": 0}, \"personalized\": {\"n\": 1}}"},
        {"{ \"a\": 1,\n \"personalized\": true , \"b\": \"q\\\"\" }",
         "{ \"a\": 1,\n \"b\": \"q\\\"\" , \"personalized\": {\"n\": 1}}"},
        /* Does not scan as members: appended, as before. */
        {"{\"a\" 1, \"personalized\": 2}", "{\"a\" 1, \"personalized\": 2, \"personalized\": {\"n\": 1}}"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        mb_model mb;
        hm_cnn(&mb, &(hm_options){.classes = 3, .features = 8, .bias = 1, .labels = 1,
                                  .provenance = cases[c].old});
        crisp_model *m = hm_load(&mb);
        mb_free(&mb);
        float w[16] = {0}, b[2] = {0};
        const int32_t ids[2] = {0, 1};
        const char *names[2] = {"a", "b"};
        const crisp_new_head nh = {2, w, b, ids, names, "{\"n\": 1}"};
        const char *path = scratch_path("prov.crisp");
        unlink(path);
        CHECK(crisp_model_write_head(m, &nh, path) == CRISP_OK, "%s", crisp_last_error());
        crisp_model *nm = NULL;
        CHECK(crisp_model_load_file(path, &nm) == CRISP_OK, "%s", crisp_last_error());
        if (nm) {
            const char *prov;
            crisp_model_get_provenance(nm, &prov, NULL);
            CHECK(strcmp(prov, cases[c].want) == 0, "case %zu: PROV %s", c, prov);
            crisp_model_free(nm);
        }
        crisp_model_free(m);
    }
}

static void test_saly(void) {
    mb_model mb;
    hm_cnn(&mb, &(hm_options){.classes = 5, .features = 8, .bias = 1, .labels = 1,
                              .hybrid_conv = 1});
    /* conv: 8 x 27 in 4 x 9 blocks: 2 x 3; the head: its own layer, dropped on write. */
    uint16_t conv[5 * 6], head[5 * 2];
    for (int i = 0; i < 30; i++) conv[i] = hm_half((float)(i + 1));
    for (int i = 0; i < 10; i++) head[i] = hm_half(0.5f);
    const hm_saly_layer layers[2] = {{0, 5, 2, 3, "features.0", conv},
                                     {hm_head_weight(&mb), 5, 1, 2, "fc", head}};
    size_t n;
    uint8_t *saly = hm_saly(layers, 2, &n);
    mb_add_section(&mb, KIND("SALY"), 0, saly, n);
    crisp_model *m = hm_load(&mb);
    uint8_t *conv_raw = malloc(mb.tensors[0].raw_size);
    memcpy(conv_raw, mb.tensors[0].raw, mb.tensors[0].raw_size);
    mb_free(&mb);
    free(saly);
    float w[16] = {0}, b[2] = {0};
    const int32_t ids[2] = {109, 100}; /* old label indices 3 and 0 */
    const char *names[2] = {"c3", "c0"};
    const crisp_new_head nh = {2, w, b, ids, names, NULL};
    const char *path = scratch_path("saly.crisp");
    CHECK(crisp_model_write_head(m, &nh, path) == CRISP_OK, "%s", crisp_last_error());
    uint8_t *f = scratch_read(path, &n);
    size_t ss = 0;
    const uint8_t *s = f ? section(f, "SALY", &ss) : NULL;
    CHECK(s != NULL && mb_get_u32(s) == 1 && mb_get_u32(s + 16) == 0 && mb_get_u32(s + 20) == 2,
          "SALY: one layer (tensor 0) of 2 classes");
    if (s != NULL && mb_get_u32(s) == 1) {
        const uint64_t at = mb_get_u64(s + 16 + 24);
        CHECK(memcmp(s + 16 + 32, "features.0", 10) == 0, "layer name");
        for (int j = 0; j < 2; j++)
            for (int k = 0; k < 6; k++) {
                const int old_row = j == 0 ? 3 : 0;
                const uint16_t got = (uint16_t)(s[at + 2 * (j * 6 + k)] | s[at + 2 * (j * 6 + k) + 1] << 8);
                CHECK(got == conv[old_row * 6 + k], "SALY row %d block %d", j, k);
            }
    }
    free(f);
    crisp_model *nm = NULL;
    CHECK(crisp_model_load_file(path, &nm) == CRISP_OK, "%s", crisp_last_error());
    float c_old = -1, c_new = -2;
    const crisp_status s_old = crisp_model_class_coverage(m, 109, &c_old);
    CHECK(s_old == CRISP_OK, "coverage: %s", crisp_last_error());
    const crisp_status s_new = nm ? crisp_model_class_coverage(nm, 109, &c_new) : CRISP_ERR_IO;
    CHECK(s_new == CRISP_OK, "coverage: %s", crisp_last_error());
    /* By hand: class 3's conv row (19..24) over the kept blocks of the encoding; the old file
     * also has the dense head's layer (0.5 + 0.5, all kept), the new one not. */
    double kept = 0, total = 0;
    for (uint32_t br = 0; br < 2; br++) {
        const uint32_t lo = mb_get_u32(conv_raw + 32 + 4 * br), hi = mb_get_u32(conv_raw + 36 + 4 * br);
        for (uint32_t c = 0; c < 3; c++) {
            int is_kept = 0;
            for (uint32_t j = lo; j < hi; j++) is_kept |= mb_get_u32(conv_raw + 44 + 4 * j) == c;
            const double v = 3 * 6 + br * 3 + c + 1;
            total += v;
            kept += is_kept ? v : 0;
        }
    }
    CHECK(fabsf(c_new - (float)(kept / total)) < 1e-6f && kept < total,
          "coverage after the write: %g, by hand %g", c_new, kept / total);
    CHECK(fabsf(c_old - (float)((kept + 1) / (total + 1))) < 1e-6f,
          "coverage before: %g, by hand %g", c_old, (kept + 1) / (total + 1));
    free(conv_raw);
    crisp_model_free(nm);
    /* A class that was not in the label map: SALY dropped. */
    const int32_t ids2[2] = {100, 5000};
    const crisp_new_head nh2 = {2, w, b, ids2, names, NULL};
    CHECK(crisp_model_write_head(m, &nh2, path) == CRISP_OK, "%s", crisp_last_error());
    f = scratch_read(path, &n);
    CHECK(f && section(f, "SALY", &ss) == NULL, "SALY dropped for a new class");
    free(f);
    crisp_model_free(m);
}

static void test_refusals(void) {
    mb_model mb;
    hm_int8(&mb);
    crisp_model *q = hm_load(&mb);
    mb_free(&mb);
    float w[64] = {0}, b[8] = {0};
    const int32_t ids[2] = {0, 1};
    const char *names[2] = {"a", "b"};
    crisp_new_head nh = {2, w, b, ids, names, NULL};
    const char *path = scratch_path("refused.crisp");
    unlink(path);
    CHECK(crisp_model_write_head(q, &nh, path) == CRISP_ERR_UNSUPPORTED &&
              strstr(crisp_last_error(), "personalisation of int8 models is not supported yet; "
                                         "personalise the float32 model"),
          "got %s", crisp_last_error());
    crisp_model_free(q);
    hm_cnn(&mb, &(hm_options){.classes = 4, .features = 8, .tail = "u"});
    crisp_model *nohead = hm_load(&mb);
    mb_free(&mb);
    CHECK(crisp_model_write_head(nohead, &nh, path) == CRISP_ERR_UNSUPPORTED &&
              strstr(crisp_last_error(), "model has no linear classifier head"),
          "got %s", crisp_last_error());
    crisp_model_free(nohead);
    hm_cnn(&mb, &(hm_options){.classes = 4, .features = 8, .labels = 1});
    crisp_model *m = hm_load(&mb);
    mb_free(&mb);
    const char *bad_names[2] = {"a", "\xff"};
    nh.names = bad_names;
    CHECK(crisp_model_write_head(m, &nh, path) == CRISP_ERR_ARGUMENT &&
              strstr(crisp_last_error(), "label 1 (class 1): name has invalid UTF-8 at byte 0"),
          "got %s", crisp_last_error());
    nh.names = names;
    w[9] = NAN;
    CHECK(crisp_model_write_head(m, &nh, path) == CRISP_ERR_ARGUMENT &&
              strstr(crisp_last_error(), "head.weight[9] (class 1) is not finite"),
          "got %s", crisp_last_error());
    w[9] = 0;
    nh.provenance_json = "[1]";
    CHECK(crisp_model_write_head(m, &nh, path) == CRISP_ERR_ARGUMENT &&
              strstr(crisp_last_error(), "provenance_json is not a UTF-8 JSON object"),
          "got %s", crisp_last_error());
    nh.provenance_json = NULL;
    nh.classes = 0;
    CHECK(crisp_model_write_head(m, &nh, path) == CRISP_ERR_ARGUMENT, "0 classes");
    nh.classes = 2;
    CHECK(crisp_model_write_head(NULL, &nh, path) == CRISP_ERR_ARGUMENT, "NULL model");
    CHECK(crisp_model_write_head(m, &nh, NULL) == CRISP_ERR_ARGUMENT, "NULL path");
    CHECK(crisp_model_write_head(m, &nh, scratch_path("")) == CRISP_ERR_ARGUMENT, "a directory");
    /* No such directory: an IO error naming the path; nothing created. */
    const char *missing = scratch_path("no/such/dir/x.crisp");
    CHECK(crisp_model_write_head(m, &nh, missing) == CRISP_ERR_IO &&
              strstr(crisp_last_error(), "cannot write '") &&
              strstr(crisp_last_error(), "no/such/dir/x.crisp"),
          "got %s", crisp_last_error());
    struct stat st;
    CHECK(stat(path, &st) != 0, "nothing under the name after refusals");
    crisp_model_free(m);
}

/* A model large enough that writing it takes a while (a 1000 x 512 head). */
static crisp_model *big_model(float **w, crisp_new_head *nh) {
    mb_model mb;
    hm_cnn(&mb, &(hm_options){.classes = 10, .features = 512, .bias = 1, .tail = "s",
                              .labels = 1, .provenance = "{}"});
    crisp_model *m = hm_load(&mb);
    mb_free(&mb);
    static int32_t ids[1000];
    static char text[1000][8];
    static const char *names[1000];
    *w = malloc(1000 * 512 * sizeof **w);
    unsigned r = 1;
    for (int i = 0; i < 1000 * 512; i++) (*w)[i] = rnd(&r);
    for (int i = 0; i < 1000; i++) {
        ids[i] = i;
        snprintf(text[i], sizeof text[i], "k%d", i);
        names[i] = text[i];
    }
    *nh = (crisp_new_head){1000, *w, NULL, ids, names, "{\"trial\": true}"};
    return m;
}

static void test_file_size_limit(void) {
    float *w;
    crisp_new_head nh;
    crisp_model *m = big_model(&w, &nh);
    const char *path = scratch_path("limited.crisp");
    static const uint8_t old[] = "the old file";
    write_all(path, old, sizeof old);
    struct rlimit saved, lim;
    getrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, SIG_IGN);
    lim = saved;
    lim.rlim_cur = 100000;
    const int limited = setrlimit(RLIMIT_FSIZE, &lim) == 0;
    const crisp_status s = crisp_model_write_head(m, &nh, path);
    const char *e = crisp_last_error();
    setrlimit(RLIMIT_FSIZE, &saved);
    if (limited) {
        CHECK(s == CRISP_ERR_IO && strstr(e, "file too large") && strstr(e, "limited.crisp"),
              "got %s: %s", crisp_status_name(s), e);
        size_t n;
        uint8_t *f = scratch_read(path, &n);
        CHECK(f && n == sizeof old && memcmp(f, old, n) == 0, "the old file is untouched");
        free(f);
        CHECK(count_temps("limited.crisp") == 0, "the temporary file was removed");
    } else {
        printf("note: setrlimit(RLIMIT_FSIZE) is not available here; skipped\n");
    }
    free(w);
    crisp_model_free(m);
}

static void test_sigkill(void) {
    float *w;
    crisp_new_head nh;
    crisp_model *m = big_model(&w, &nh);
    const char *ref = scratch_path("kill_ref.crisp"), *path = scratch_path("NEW.crisp");
    CHECK(crisp_model_write_head(m, &nh, ref) == CRISP_OK, "%s", crisp_last_error());
    size_t ref_n, old_n;
    uint8_t *ref_bytes = scratch_read(ref, &ref_n);
    /* The old model: the same base with another head (valid, different bytes). */
    crisp_new_head oh = nh;
    oh.classes = 3;
    CHECK(crisp_model_write_head(m, &oh, path) == CRISP_OK, "%s", crisp_last_error());
    uint8_t *old_bytes = scratch_read(path, &old_n);
    unsigned r = 20240613;
    int olds = 0, news = 0;
    for (int trial = 0; trial < 20; trial++) {
        write_all(path, old_bytes, old_n);
        fflush(NULL);
        const pid_t child = fork();
        if (child == 0) {
            for (;;) crisp_model_write_head(m, &nh, path);
        }
        const long us = 500 + (long)(check_rand(&r) % 40000u);
        struct timespec t = {0, us * 1000};
        nanosleep(&t, NULL);
        kill(child, SIGKILL);
        int status;
        waitpid(child, &status, 0);
        size_t n = 0;
        uint8_t *f = scratch_read(path, &n);
        const int is_old = f && n == old_n && memcmp(f, old_bytes, n) == 0;
        const int is_new = f && n == ref_n && memcmp(f, ref_bytes, n) == 0;
        CHECK(is_old || is_new, "trial %d (kill after %ld us): NEW.crisp is neither the old nor "
              "the complete new file (%zu bytes)", trial, us, n);
        olds += is_old, news += is_new;
        if (is_new) {
            crisp_model *nm = NULL;
            CHECK(crisp_model_load_file(path, &nm) == CRISP_OK, "trial %d: %s", trial,
                  crisp_last_error());
            crisp_model_free(nm);
        }
        free(f);
    }
    const int temps = count_temps("NEW.crisp");
    printf("SIGKILL: 20 trials, old file %d times, new file %d times, %d temporary files left "
           "(removed)\n", olds, news, temps);
    free(ref_bytes), free(old_bytes), free(w);
    crisp_model_free(m);
}


int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_write_head SCRATCH_DIR\n");
        return 2;
    }
    scratch_open(argv[1]);
    test_round_trip();
    test_hybrid_and_bias();
    test_prov_replaces();
    test_saly();
    test_refusals();
    test_file_size_limit();
    test_sigkill();
    scratch_close();
    return check_report();
}
