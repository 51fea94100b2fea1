/* crisp-run's real code (crisp_run_main) on good and broken inputs: exit
 * codes, stdout lines and stderr messages. Leaves model/input files in
 * argv[1] for the crisp_run_binary test, which runs the built executable. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "check.h"
#include "crisp.h"
#include "crisp_run_cli.h"
#include "model_builder.h"
#include "npy.h"

CHECK_DEFINE_COUNTERS;

static char dir[512];
static char out_text[1 << 16], err_text[1 << 16];

static const char *in_dir(const char *name) {
    static char paths[8][1024];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, 1024, "%s/%s", dir, name);
    return p;
}

/* Atomic (src/atomic_file.h), so parallel runs of this test (one per qemu
 * CPU) never read a half-written file. */
static void write_file(const char *name, const void *data, size_t size) {
    const char *path = in_dir(name);
    crisp_atomic_file f;
    CHECK(crisp_atomic_open(&f, path) == CRISP_OK && crisp_atomic_write(&f, data, size) == CRISP_OK &&
              crisp_atomic_commit(&f) == CRISP_OK,
          "cannot write %s: %s", path, crisp_last_error());
}

/* An .npy input; npy_write is atomic like write_file (a parallel run, or
 * crisp-run in the crisp_run_binary tests, once read one half-written:
 * test_cli failed on qemu a72 in 0.11 s and passed when rerun). */
static void write_npy(const char *name, const float *x, uint32_t rank, const uint64_t *dims) {
    char err[256];
    CHECK(npy_write(in_dir(name), x, rank, dims, err, sizeof err) == 0, "%s", err);
}

static void read_back(FILE *f, char *buf, size_t cap) {
    rewind(f);
    const size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
}

/* Runs crisp-run with a NULL-terminated argument list. */
static int cli(const char *first, ...) {
    char *argv[16] = {"crisp-run"};
    int argc = 1;
    va_list args;
    va_start(args, first);
    for (const char *a = first; a != NULL && argc < 15; a = va_arg(args, const char *))
        argv[argc++] = (char *)a;
    va_end(args);
    argv[argc] = NULL;
    FILE *out = tmpfile(), *err = tmpfile();
    const int rc = crisp_run_main(argc, argv, out, err);
    read_back(out, out_text, sizeof out_text);
    read_back(err, err_text, sizeof err_text);
    fclose(out);
    fclose(err);
    return rc;
}

static int count_lines(const char *s, const char *prefix) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, prefix)) != NULL; p++) n++;
    return n;
}

/* An .npy header around our own bytes, for malformed cases. */
static void write_npy_raw(const char *name, const char *header, size_t data_bytes, int version) {
    uint8_t buf[4096] = {0x93, 'N', 'U', 'M', 'P', 'Y', (uint8_t)version, 0};
    const size_t hlen = strlen(header), pre = version == 1 ? 10 : 12;
    buf[8] = (uint8_t)hlen, buf[9] = (uint8_t)(hlen >> 8);
    memcpy(buf + pre, header, hlen);
    memset(buf + pre + hlen, 0, data_bytes);
    write_file(name, buf, pre + hlen + data_bytes);
}

#define EXPECT_CLI(rc_expected, stream, needle, ...)                                           \
    do {                                                                                       \
        const int rc_ = cli(__VA_ARGS__, (const char *)NULL);                                  \
        CHECK(rc_ == (rc_expected) && strstr(stream, needle) != NULL,                          \
              "crisp-run %s: exit %d, expected %d with \"%s\"; stdout: %s stderr: %s", #__VA_ARGS__, \
              rc_, rc_expected, needle, out_text, err_text);                                   \
    } while (0)

static void make_files(float *reference) {
    mb_model mb;
    mb_sample_cnn(&mb);
    size_t n;
    uint8_t *f = mb_build(&mb, &n);
    write_file("model.crisp", f, n);
    write_file("truncated.crisp", f, n - 10);
    f[mb_get_u64(f + 64 + 32 + 8) + 3] ^= 0x40; /* a byte inside WGHT (entry 1) */
    write_file("corrupt.crisp", f, n);
    free(f);
    mb_free(&mb);

    float x[2 * 192];
    unsigned rng = 3;
    for (int i = 0; i < 2 * 192; i++) x[i] = check_rand_float(&rng) * 2;
    const uint64_t batch_dims[4] = {2, 3, 8, 8}, one_dims[3] = {3, 8, 8}, wrong[3] = {3, 8, 7};
    write_npy("input.npy", x, 4, batch_dims);
    write_npy("one.npy", x, 3, one_dims);
    write_npy("wrong_shape.npy", x, 3, wrong);
    write_npy_raw("v2.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 8, 8), }\n",
                  192 * 4, 2);
    write_npy_raw("f8.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 8, 8), }\n",
                  192 * 8, 1);
    write_npy_raw("fortran.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 8, 8), }\n",
                  192 * 4, 1);
    write_npy_raw("short.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 8, 8), }\n",
                  100, 1);
    write_npy_raw("badheader.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 8 8), }\n",
                  192 * 4, 1);
    write_file("notnpy.npy", "hello world, not numpy", 22);

    crisp_model *m;
    crisp_session *s;
    CHECK(crisp_model_load_file(in_dir("model.crisp"), &m) == CRISP_OK, "%s", crisp_last_error());
    CHECK(crisp_session_create(m, &s) == CRISP_OK, "session");
    CHECK(crisp_session_run(s, x, 2 * 192, reference, 20) == CRISP_OK, "run");
    crisp_session_free(s);
    crisp_model_free(m);
}

static void test_good(const float *reference) {
    EXPECT_CLI(0, out_text, "sample 1: #5 index", in_dir("model.crisp"), in_dir("input.npy"));
    CHECK(count_lines(out_text, "sample 0: #") == 5 && count_lines(out_text, "sample 1: #") == 5,
          "default top-5: %s", out_text);
    unsigned idx;
    int cls;
    CHECK(sscanf(out_text, "sample 0: #1 index %u class %d \"", &idx, &cls) == 2 && idx < 10 &&
              cls == 100 + 7 * (int)idx,
          "first line: %s", out_text);
    for (unsigned i = 0; i < 10; i++)
        CHECK(reference[i] <= reference[idx], "#1 index %u is not the arg max (%u is larger)", idx, i);
    EXPECT_CLI(0, out_text, "sample 0: #3", in_dir("model.crisp"), in_dir("one.npy"), "--top-k", "3");
    CHECK(count_lines(out_text, "sample 0: #") == 3 && !strstr(out_text, "sample 1"),
          "top-3 of one sample: %s", out_text);
    EXPECT_CLI(0, out_text, "sample 0: #10", "--top-k", "50", in_dir("model.crisp"), in_dir("v2.npy"));
    CHECK(!strstr(out_text, "#11"), "top-k beyond the outputs: %s", out_text);
    EXPECT_CLI(0, out_text, "median latency: ", in_dir("model.crisp"), in_dir("input.npy"),
               "--repeat", "3");
    EXPECT_CLI(0, out_text, "sample 0: #1", in_dir("model.crisp"), in_dir("input.npy"), "--output",
               in_dir("out.npy"));
    npy_array y;
    char err[256];
    CHECK(npy_read(in_dir("out.npy"), &y, err, sizeof err) == 0 && y.rank == 2 && y.dims[0] == 2 &&
              y.dims[1] == 10 && memcmp(y.data, reference, 20 * sizeof(float)) == 0,
          "--output file: %s", err);
    npy_free(&y);
    /* The output is written atomically (tools/npy.c): replaced whole, no
     * temporary file left behind. A name of this process's own, since the
     * qemu runs of this test share the directory. */
    char own[64], tmp_prefix[80];
    snprintf(own, sizeof own, "out-%ld.npy", (long)getpid());
    snprintf(tmp_prefix, sizeof tmp_prefix, ".%s.tmp", own);
    write_file(own, "stale", 5);
    EXPECT_CLI(0, out_text, "sample 0: #1", in_dir("model.crisp"), in_dir("input.npy"), "--output",
               in_dir(own));
    CHECK(npy_read(in_dir(own), &y, err, sizeof err) == 0 && y.count == 20 &&
              memcmp(y.data, reference, 20 * sizeof(float)) == 0,
          "--output over an existing file: %s", err);
    npy_free(&y);
    DIR *d = opendir(dir);
    CHECK(d != NULL, "cannot list %s", dir);
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
        CHECK(strncmp(e->d_name, tmp_prefix, strlen(tmp_prefix)) != 0,
              "--output left a temporary file: %s", e->d_name);
    if (d != NULL) closedir(d);
    remove(in_dir(own));
    EXPECT_CLI(0, out_text, "sample 0: #1", in_dir("model.crisp"), in_dir("input.npy"), "--output",
               in_dir("out3.npy"), "--threads", "3");
    CHECK(npy_read(in_dir("out3.npy"), &y, err, sizeof err) == 0 && y.count == 20 &&
              memcmp(y.data, reference, 20 * sizeof(float)) == 0,
          "--threads 3 must give the single-thread output bitwise: %s", err);
    npy_free(&y);
    EXPECT_CLI(1, err_text, "options.threads is 300, expected 0..256", in_dir("model.crisp"),
               in_dir("input.npy"), "--threads", "300");
    EXPECT_CLI(2, err_text, "--threads wants a whole number", in_dir("model.crisp"),
               in_dir("input.npy"), "--threads", "0");
    EXPECT_CLI(0, out_text, "--threads N", "--help");
}

static void test_errors(void) {
    char model[1100];
    snprintf(model, sizeof model, "%s", in_dir("model.crisp"));
    EXPECT_CLI(1, err_text, "crisp-run: error: cannot open", in_dir("missing.crisp"), in_dir("input.npy"));
    EXPECT_CLI(1, err_text, "crisp-run: error: section WGHT: CRC32 mismatch", in_dir("corrupt.crisp"),
               in_dir("input.npy"));
    EXPECT_CLI(1, err_text, "(truncated?)", in_dir("truncated.crisp"), in_dir("input.npy"));
    EXPECT_CLI(1, err_text, "crisp-run: error: not a .crisp file: bad magic", in_dir("input.npy"),
               in_dir("input.npy"));
    EXPECT_CLI(1, err_text, "dtype '<f8' is not little-endian float32", model, in_dir("f8.npy"));
    EXPECT_CLI(1, err_text, "(3,8,8) or (N,3,8,8)", model, in_dir("f8.npy"));
    EXPECT_CLI(1, err_text, "Fortran order", model, in_dir("fortran.npy"));
    EXPECT_CLI(1, err_text, "needs 768 data bytes, the file has 100 (truncated)", model,
               in_dir("short.npy"));
    EXPECT_CLI(1, err_text, "bad .npy header", model, in_dir("badheader.npy"));
    EXPECT_CLI(1, err_text, "not a .npy file", model, in_dir("notnpy.npy"));
    EXPECT_CLI(1, err_text, "cannot open", model, in_dir("missing.npy"));
    EXPECT_CLI(1, err_text, "shape (3,8,7) does not fit the model: expected (3,8,8) or (N,3,8,8)",
               model, in_dir("wrong_shape.npy"));
    EXPECT_CLI(1, err_text, "cannot create", model, in_dir("input.npy"), "--output",
               "/nonexistent/dir/out.npy");

    EXPECT_CLI(2, err_text, "usage: crisp-run", model);
    EXPECT_CLI(2, err_text, "unknown option '--fast'", model, in_dir("input.npy"), "--fast");
    EXPECT_CLI(2, err_text, "--top-k wants a whole number", model, in_dir("input.npy"), "--top-k", "0");
    EXPECT_CLI(2, err_text, "--top-k wants a whole number", model, in_dir("input.npy"), "--top-k", "3x");
    EXPECT_CLI(2, err_text, "--repeat needs a value", model, in_dir("input.npy"), "--repeat");
    EXPECT_CLI(2, err_text, "unexpected argument", model, in_dir("input.npy"), "extra");
    const int rc = cli(NULL, (const char *)NULL);
    CHECK(rc == 2 && strstr(err_text, "usage: crisp-run"), "no arguments: exit %d", rc);
}

/* An 8x8 RGB PNG (Pillow, random pixels). */
static const uint8_t tiny_png[] = {0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x08, 0x08, 0x02, 0x00, 0x00, 0x00, 0x4B, 0x6D, 0x29, 0xDC, 0x00, 0x00, 0x00, 0xD3, 0x49, 0x44, 0x41, 0x54, 0x78, 0xDA, 0x01, 0xC8, 0x00, 0x37, 0xFF, 0x00, 0x5F, 0x82, 0xC2, 0xD9, 0xCF, 0xEB, 0x0F, 0xA3, 0x21, 0xD7, 0xD9, 0x82, 0xF8, 0xBD, 0x10, 0x45, 0xB8, 0xE8, 0xCD, 0x4E, 0xA9, 0x3D, 0x7D, 0x0A, 0x01, 0x1D, 0xF0, 0x42, 0xF6, 0xC6, 0xE5, 0x28, 0x4E, 0x14, 0x16, 0xDA, 0xF1, 0x27, 0x9C, 0x06, 0x58, 0xD4, 0xEA, 0x70, 0x58, 0x5D, 0x19, 0x04, 0x70, 0x01, 0x7F, 0xB2, 0xED, 0x01, 0xBF, 0x8E, 0xCC, 0x2A, 0xCA, 0x4E, 0xE7, 0xB3, 0xC5, 0xC7, 0xC8, 0x5B, 0x76, 0xBF, 0x22, 0xE2, 0x68, 0x25, 0x8A, 0xA4, 0x01, 0xED, 0xBF, 0x56, 0xA2, 0x48, 0x92, 0xD1, 0xE8, 0x64, 0xD7, 0x11, 0xFB, 0x16, 0xC7, 0x94, 0x83, 0xE9, 0xB5, 0xEE, 0xFB, 0xD8, 0xBA, 0x08, 0x98, 0x01, 0xF0, 0xF5, 0xE6, 0x74, 0xCA, 0xF2, 0x1A, 0x1C, 0x47, 0x17, 0x0C, 0x6E, 0xDE, 0x29, 0x0C, 0x95, 0x69, 0x3A, 0xC7, 0x4A, 0x34, 0xE4, 0x07, 0xB3, 0x00, 0xA6, 0x27, 0xB9, 0xD8, 0x49, 0xC4, 0xF7, 0x2C, 0x0E, 0x7F, 0xDB, 0x16, 0x3A, 0x4B, 0xF9, 0xDC, 0x2E, 0x79, 0xA8, 0x05, 0xD9, 0x33, 0x9D, 0x8A, 0x00, 0x38, 0x12, 0x95, 0x14, 0x20, 0xEB, 0xB9, 0x4C, 0xF1, 0xD6, 0x26, 0x7B, 0xCF, 0x3A, 0x35, 0x6C, 0x0C, 0xA3, 0x3A, 0x67, 0x3D, 0xF5, 0x3F, 0x07, 0x02, 0x30, 0xB8, 0xC9, 0xED, 0x40, 0x1C, 0x18, 0xD3, 0xB7, 0x15, 0xF8, 0x87, 0xDA, 0xD0, 0x79, 0x3F, 0xAF, 0x3F, 0x54, 0x1F, 0xFD, 0x41, 0x6F, 0x9E, 0xCF, 0x5B, 0x62, 0x81, 0xEF, 0x4D, 0xBC, 0xCA, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82};

/* --image: the sample CNN with a PREP for its (3,8,8) input (resize none). */
static void test_images(void) {
    static const uint8_t prep[64] = {64, 0, 0, 0, 3, 0, 0, 0, 8, 0, 0, 0, 8, 0, 0, 0,
                                     0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x81, 0x80, 0x80, 0x3B,
                                     0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x3F,
                                     0, 0, 0x80, 0x3F, 0, 0, 0x80, 0x3F, 0, 0, 0, 0, 0, 0, 0, 0};
    mb_model mb;
    mb_sample_cnn(&mb);
    mb_add_section(&mb, 0x50455250u /* PREP */, 0, prep, sizeof prep);
    size_t n;
    uint8_t *f = mb_build(&mb, &n);
    write_file("prep.crisp", f, n);
    free(f);
    mb_free(&mb);
    write_file("tiny.png", tiny_png, sizeof tiny_png);
    write_file("cut.png", tiny_png, sizeof tiny_png / 2);
    const char *model = in_dir("prep.crisp"), *png = in_dir("tiny.png");
    char line[1200];
    snprintf(line, sizeof line, "image %s: #1 index ", png);
    EXPECT_CLI(0, out_text, line, model, "--image", png, "--top-k", "2");
    EXPECT_CLI(0, out_text, "#2 index", model, "--image", png, "--image", png, "--top-k", "2");
    EXPECT_CLI(1, err_text, "truncated) (--skip-bad to go on without it)", model, "--image", png,
               "--image", in_dir("cut.png"));
    EXPECT_CLI(0, err_text, "crisp-run: warning: skipped: image '", model, "--image", png,
               "--image", in_dir("cut.png"), "--skip-bad");
    EXPECT_CLI(1, err_text, "none of the 1 images could be read", model, "--image",
               in_dir("cut.png"), "--skip-bad");
    EXPECT_CLI(1, err_text, "stores no preprocessing (PREP); repack it", in_dir("model.crisp"),
               "--image", png);
    EXPECT_CLI(2, err_text, "give INPUT.npy or --image, not both", model, in_dir("input.npy"),
               "--image", png);
    EXPECT_CLI(2, err_text, "--skip-bad goes with --image", model, in_dir("input.npy"),
               "--skip-bad");
    EXPECT_CLI(2, err_text, "--image needs a value", model, "--image");
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_cli DIR\n");
        return 2;
    }
    snprintf(dir, sizeof dir, "%s", argv[1]);
    mkdir(dir, 0777); /* may exist already */
    float reference[20];
    make_files(reference);
    test_good(reference);
    test_errors();
    test_images();
    return check_report();
}
