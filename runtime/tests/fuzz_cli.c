/* libFuzzer target (CMake -DCRISP_FUZZ=ON, clang): crisp-run's code
 * (crisp_run_main, in-process) on an argv made of the input split at NUL
 * bytes: the argument parser first, then whatever it reaches (loading,
 * .npy and image reading, batching, top-k printing, --output).
 *
 * Files: at startup a temp dir (mkdtemp under $TMPDIR or /tmp, removed at
 * exit) receives m.crisp (a small model with PREP and labels, one name
 * with a quote and a control byte), n.crisp (the same without PREP),
 * x.npy (a batch of 2 for it), s.npy (one sample), b.npy (a wrong shape)
 * and i.bmp (an image PREP resizes and crops). Each call runs with that
 * dir as the working directory, and any argument containing '/' skips the
 * input, so every name the tool can open or write is inside it.
 *
 * Bounds, so one input stays cheap: --repeat and --threads above 3 skip
 * the input (the tool allows 1000000 of either; a session caps threads at
 * 256), and so does an --output naming one of the files above; what
 * --output wrote is removed after the call. stdout and stderr go to
 * /dev/null. The exit code must be 0, 1 or 2. */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crisp_run_cli.h"
#include "model_builder.h"
#include "npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256];
static int dir_fd = -1, home_fd = -1;
static FILE *devnull;
static const char *const fixed[] = {"m.crisp", "n.crisp", "x.npy", "s.npy", "b.npy", "i.bmp"};

static void put_f32(uint8_t *p, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    mb_put_u32(p, u);
}

static void write_file(const char *name, const void *bytes, size_t n) {
    FILE *f = fopen(name, "wb");
    if (f == NULL || fwrite(bytes, 1, n, f) != n || fclose(f) != 0) abort();
}

/* (3,4,4) -> global average pool -> (3) -> softmax; PREP: shorter side 6, centre crop. */
static void write_model(const char *name, int with_prep) {
    uint8_t prep[64] = {0};
    mb_put_u32(prep, 64);
    mb_put_u32(prep + 4, 3);
    mb_put_u32(prep + 8, 4);
    mb_put_u32(prep + 12, 4);
    mb_put_u32(prep + 16, 1 /* shorter side */);
    mb_put_u32(prep + 20, 6);
    put_f32(prep + 28, 1.0f / 255.0f);
    for (int c = 0; c < 3; c++) {
        put_f32(prep + 32 + 4 * c, 0.5f);
        put_f32(prep + 44 + 4 * c, 0.25f);
    }
    mb_model m;
    mb_init(&m);
    const uint32_t in = mb_value(&m, 3, 3, 4, 4, 0), gp = mb_value(&m, 3, 3, 1, 1, 0);
    const uint32_t fl = mb_value(&m, 1, 3, 0, 0, 0), out = mb_value(&m, 1, 3, 0, 0, 0);
    mb_op(&m, 8, 0, in, MB_NONE, gp, MB_NONE, MB_NONE, NULL);
    mb_op(&m, 10, 0, gp, MB_NONE, fl, MB_NONE, MB_NONE, NULL);
    mb_op(&m, 11, 0, fl, MB_NONE, out, MB_NONE, MB_NONE, NULL);
    m.input = in;
    m.output = out;
    m.label_count = 3;
    static const char *const names[] = {"cat", "a \"dog\"\x01", "\xc3\xa9t\xc3\xa9"};
    for (int i = 0; i < 3; i++) m.label_ids[i] = 7 * i, m.label_names[i] = names[i];
    m.provenance = "{\"fuzz\": true}";
    if (with_prep) mb_add_section(&m, 0x50455250u /* PREP */, 0, prep, sizeof prep);
    size_t n;
    uint8_t *file = mb_build(&m, &n);
    write_file(name, file, n);
    free(file);
    mb_free(&m);
}

/* A 24-bit BMP, 9 x 7, bottom-up, rows padded to 4 bytes. */
static void write_bmp(const char *name) {
    enum { W = 9, H = 7, ROW = (3 * W + 3) / 4 * 4 };
    uint8_t b[54 + ROW * H] = {'B', 'M'};
    mb_put_u32(b + 2, sizeof b);
    mb_put_u32(b + 10, 54);
    mb_put_u32(b + 14, 40);
    mb_put_u32(b + 18, W);
    mb_put_u32(b + 22, H);
    b[26] = 1, b[28] = 24;
    mb_put_u32(b + 34, ROW * H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < 3 * W; x++) b[54 + y * ROW + x] = (uint8_t)(31 * x + 17 * y);
    write_file(name, b, sizeof b);
}

static void remove_dir(void) {
    if (dir_fd < 0) return;
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) unlinkat(dir_fd, fixed[i], 0);
    rmdir(dir);
}

static void setup(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/crisp-fuzz-cli-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    home_fd = open(".", O_RDONLY | O_DIRECTORY);
    if (home_fd < 0 || mkdtemp(dir) == NULL || (dir_fd = open(dir, O_RDONLY | O_DIRECTORY)) < 0 ||
        fchdir(dir_fd) != 0 || (devnull = fopen("/dev/null", "w")) == NULL)
        abort();
    atexit(remove_dir);
    write_model("m.crisp", 1);
    write_model("n.crisp", 0);
    float x[2 * 48];
    for (int i = 0; i < 2 * 48; i++) x[i] = (float)(i % 11) * 0.25f - 1.0f;
    char err[256];
    const uint64_t batch[4] = {2, 3, 4, 4}, one[3] = {3, 4, 4}, bad[1] = {5};
    if (npy_write("x.npy", x, 4, batch, err, sizeof err) != 0 ||
        npy_write("s.npy", x, 3, one, err, sizeof err) != 0 ||
        npy_write("b.npy", x, 1, bad, err, sizeof err) != 0)
        abort();
    write_bmp("i.bmp");
    if (fchdir(home_fd) != 0) abort();
}

static int is_fixed(const char *s) {
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        if (strcmp(s, fixed[i]) == 0) return 1;
    return 0;
}

/* The value after an option that would make this input too costly, or escape the dir. */
static int too_costly(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strchr(argv[i], '/') != NULL) return 1;
        if (i + 1 < argc &&
            (strcmp(argv[i], "--repeat") == 0 || strcmp(argv[i], "--threads") == 0) &&
            strtol(argv[i + 1], NULL, 10) > 3)
            return 1;
        if (i + 1 < argc && strcmp(argv[i], "--output") == 0 && is_fixed(argv[i + 1])) return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (devnull == NULL) setup();
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    int argc = 2; /* "crisp-run" and the first piece */
    for (size_t i = 0; i < size; i++) argc += text[i] == '\0';
    char **argv = malloc((size_t)(argc + 1) * sizeof *argv);
    argv[0] = "crisp-run";
    argc = 1;
    for (size_t i = 0; i <= size;) {
        argv[argc++] = text + i;
        i += strlen(text + i) + 1;
    }
    if (size == 0) argc = 1; /* no arguments at all */
    argv[argc] = NULL;
    if (!too_costly(argc, argv)) {
        if (fchdir(dir_fd) != 0) abort();
        const int rc = crisp_run_main(argc, argv, devnull, devnull);
        if (rc < 0 || rc > 2) abort();
        for (int i = 1; i + 1 < argc; i++)
            if (strcmp(argv[i], "--output") == 0) unlink(argv[i + 1]);
        if (fchdir(home_fd) != 0) abort();
    }
    free(argv);
    free(text);
    return 0;
}
