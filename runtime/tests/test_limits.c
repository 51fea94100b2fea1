/* Issue 14: a tiny file must not make the runtime allocate gigabytes. Every
 * allocation a model implies is counted against the memory limit before it
 * is made (src/memlimit.c): per-thread convolution scratch, the activation
 * arena, packed weights, label names; the limit comes from the load options,
 * else CRISP_MAX_MEMORY_MB, else 512 MiB. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "crisp.h"
#include "format.h"
#include "hybrid_builder.h"
#include "model.h"
#include "model_builder.h"
#include "pages.h"

CHECK_DEFINE_COUNTERS;

#define FOURCC(a, b, c, d) \
    ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)

static int contains(const char *text, const char *needle) { return strstr(text, needle) != NULL; }

static crisp_status load(const uint8_t *f, size_t n, uint32_t max_mb, crisp_model **m) {
    const crisp_load_options o = {max_mb, 0};
    return crisp_model_load_buffer_with_options(f, n, &o, m);
}

/* The file: a hybrid-sparse float conv that keeps no block, kernel
 * 128 x 128 over `cin` channels of a 1 x 1 image padded to the kernel. Its
 * weights take 40 bytes, but the optimised conv builds an im2col tile of
 * K = 128 * 128 * cin rows x (the sparse kernel's NR) pixels per thread:
 * for cin = 2048, from 1 GiB (scalar, NR 8) to 8 GiB (AVX-512, NR 64). */
static uint8_t *big_kernel_conv(uint32_t cin, size_t *size) {
    const uint32_t k = 128, cout = 1, kk = k * k * cin;
    mb_model mb;
    mb_init(&mb);
    const uint32_t x = mb_value(&mb, 3, cin, 1, 1, 0);
    const uint32_t y = mb_value(&mb, 3, cout, 1, 1, 0);
    uint8_t enc[40];
    const uint32_t header[10] = {cout, kk, cout, kk, 1, 1, 1, 0, 0, 0}; /* + ptr {0, 0} */
    for (int i = 0; i < 10; i++) mb_put_u32(enc + 4 * i, header[i]);
    const uint32_t wdims[4] = {cout, k, k, cin};
    const uint32_t w = mb_tensor_raw(&mb, CRISP_ENCODING_HYBRID_F32, 4, wdims, enc, sizeof enc);
    const int32_t params[16] = {(int32_t)k, (int32_t)k, 1, 1, 64, 64, 63, 63, 1, 1, 1};
    mb_op(&mb, CRISP_OP_CONV2D, 0, x, MB_NONE, y, w, MB_NONE, params);
    mb.input = x;
    mb.output = y;
    uint8_t *f = mb_build(&mb, size);
    mb_free(&mb);
    return f;
}

static void test_big_kernel_refused(void) {
    size_t n;
    uint8_t *f = big_kernel_conv(2048, &n);
    printf("the 128 x 128 x 2048 conv file has %zu bytes\n", n);
    CHECK(n <= 640, "the file has %zu bytes", n);
    crisp_model *m = (crisp_model *)1;
    crisp_status s = crisp_model_load_buffer(f, n, &m);
    const char *e = crisp_last_error();
    printf("default limit: %s: %s\n", crisp_status_name(s), e);
    CHECK(s == CRISP_ERR_LIMIT && m == NULL, "default limit: %s \"%s\"", crisp_status_name(s), e);
    CHECK(contains(e, "memory limit: the model needs") &&
              contains(e, "of convolution scratch per thread") && contains(e, "GiB") &&
              contains(e, "op 0 (CONV2D): an im2col tile of K = 128 x 128 x 2048") &&
              contains(e, "over the 512 MiB limit") && contains(e, "CRISP_MAX_MEMORY_MB") &&
              contains(e, "crisp_load_options.max_memory_mb"),
          "message: \"%s\"", e);
    /* The same file loads under a raised limit (loading allocates no
     * scratch: sessions do), and runs on the reference kernels, which need
     * none; a session on the optimised kernels is then checked against the
     * raised limit with its thread count. */
    s = load(f, n, 16384, &m);
    CHECK(s == CRISP_OK, "max_memory_mb 16384: %s \"%s\"", crisp_status_name(s),
          crisp_last_error());
    if (s == CRISP_OK) {
        const uint64_t scratch = (uint64_t)m->scratch_floats * 4;
        CHECK(scratch >= ((uint64_t)1 << 30), "scratch %llu bytes", (unsigned long long)scratch);
        crisp_session *ses = NULL;
        const crisp_session_options ref = {1, CRISP_SESSION_REFERENCE_KERNELS};
        s = crisp_session_create_with_options(m, &ref, &ses);
        CHECK(s == CRISP_OK, "reference session: %s", crisp_last_error());
        float x[2048], y[1] = {1.0f};
        for (int i = 0; i < 2048; i++) x[i] = 1.0f;
        if (s == CRISP_OK) {
            CHECK(crisp_session_run(ses, x, 2048, y, 1) == CRISP_OK && y[0] == 0.0f,
                  "run: %s, y %g", crisp_last_error(), (double)y[0]);
        }
        crisp_session_free(ses);
        ses = NULL;
        const crisp_session_options many = {256, 0};
        s = crisp_session_create_with_options(m, &many, &ses);
        e = crisp_last_error();
        CHECK(s == CRISP_ERR_LIMIT && ses == NULL && contains(e, "a session with 256 threads") &&
                  contains(e, "256 x ") && contains(e, "over the 16 GiB limit"),
              "256 threads: %s \"%s\"", crisp_status_name(s), e);
        crisp_model_free(m);
    }
    free(f);
}

/* CRISP_MAX_MEMORY_MB raises the default; the options override it; a
 * malformed value is refused before anything is read. */
static void test_environment(void) {
    size_t n;
    uint8_t *f = big_kernel_conv(2048, &n);
    crisp_model *m = NULL;
    setenv("CRISP_MAX_MEMORY_MB", "16384", 1);
    crisp_status s = crisp_model_load_buffer(f, n, &m);
    CHECK(s == CRISP_OK, "CRISP_MAX_MEMORY_MB=16384: %s \"%s\"", crisp_status_name(s),
          crisp_last_error());
    crisp_model_free(m);
    m = NULL;
    s = load(f, n, 512, &m);
    CHECK(s == CRISP_ERR_LIMIT && contains(crisp_last_error(), "over the 512 MiB limit"),
          "options over the environment: %s \"%s\"", crisp_status_name(s), crisp_last_error());
    crisp_model_free(m);
    const char *bad[] = {"abc", "0", "-5", "12MB", " 100", "4294967296", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        setenv("CRISP_MAX_MEMORY_MB", bad[i], 1);
        m = (crisp_model *)1;
        s = crisp_model_load_buffer(f, n, &m);
        CHECK(s == CRISP_ERR_ARGUMENT && m == NULL && contains(crisp_last_error(), "CRISP_MAX_MEMORY_MB") &&
                  contains(crisp_last_error(), bad[i]),
              "CRISP_MAX_MEMORY_MB='%s': %s \"%s\"", bad[i], crisp_status_name(s),
              crisp_last_error());
        crisp_model_free(m);
    }
    /* load_file reads it too, and checks before opening the file. */
    m = (crisp_model *)1;
    s = crisp_model_load_file("/nonexistent/model.crisp", &m);
    CHECK(s == CRISP_ERR_ARGUMENT && m == NULL, "load_file with a bad variable: %s",
          crisp_status_name(s));
    unsetenv("CRISP_MAX_MEMORY_MB");
    const crisp_load_options flags = {0, 1};
    s = crisp_model_load_buffer_with_options(f, n, &flags, &m);
    CHECK(s == CRISP_ERR_ARGUMENT && contains(crisp_last_error(), "flags"), "flags: %s",
          crisp_status_name(s));
    free(f);
}

/* A session is checked with its own thread count: a limit that fits one
 * thread's scratch but not four refuses the four-thread session. */
static void test_session_threads(void) {
    mb_model mb;
    mb_init(&mb);
    const uint32_t x = mb_value(&mb, 3, 16, 8, 8, 0), y = mb_value(&mb, 3, 4, 8, 8, 0);
    const uint32_t w = mb_tensor(&mb, 4, 4, 33, 33, 16, NULL); /* K = 17424 */
    const int32_t params[16] = {33, 33, 1, 1, 16, 16, 16, 16, 1, 1, 1};
    mb_op(&mb, CRISP_OP_CONV2D, 0, x, MB_NONE, y, w, MB_NONE, params);
    mb.input = x, mb.output = y;
    size_t n;
    uint8_t *f = mb_build(&mb, &n);
    mb_free(&mb);
    crisp_model *m = NULL;
    CHECK(load(f, n, 4096, &m) == CRISP_OK, "load: %s", crisp_last_error());
    if (m == NULL) {
        free(f);
        return;
    }
    const uint64_t per_thread = ((uint64_t)m->scratch_floats + 15) / 16 * 16 * 4;
    const uint64_t base = m->own_bytes + m->arena_bytes;
    crisp_model_free(m);
    /* Room for two threads' scratch (at least 1 MiB of it: the granularity). */
    const uint64_t mib = (uint64_t)1 << 20;
    uint64_t limit_mb = (base + 2 * per_thread + mib - 1) / mib;
    while (limit_mb * mib < base + 2 * per_thread) limit_mb++;
    const int testable = per_thread > 0 && limit_mb * mib < base + 4 * per_thread;
    printf("session test: %llu bytes of scratch per thread, limit %llu MiB%s\n",
           (unsigned long long)per_thread, (unsigned long long)limit_mb,
           testable ? "" : " (too coarse to test here)");
    if (testable) {
        CHECK(load(f, n, (uint32_t)limit_mb, &m) == CRISP_OK, "load: %s", crisp_last_error());
        crisp_session *s2 = NULL, *s4 = NULL;
        const crisp_session_options two = {2, 0}, four = {4, 0};
        CHECK(crisp_session_create_with_options(m, &two, &s2) == CRISP_OK, "2 threads: %s",
              crisp_last_error());
        const crisp_status s = crisp_session_create_with_options(m, &four, &s4);
        CHECK(s == CRISP_ERR_LIMIT && s4 == NULL &&
                  contains(crisp_last_error(), "a session with 4 threads") &&
                  contains(crisp_last_error(), "use fewer threads"),
              "4 threads: %s \"%s\"", crisp_status_name(s), crisp_last_error());
        crisp_session_free(s2);
        crisp_model_free(m);
    }
    free(f);
}

/* A LABL section of `count` records naming (offset(i), 1024 bytes) of a
 * string area of `string_bytes` 'a's, for a model with `count` outputs. */
static uint8_t *label_model(uint32_t count, uint32_t string_bytes, int shifted, size_t *size) {
    mb_model mb;
    mb_init(&mb);
    const uint32_t x = mb_value(&mb, 1, count, 0, 0, 0), y = mb_value(&mb, 1, count, 0, 0, 0);
    mb_op(&mb, CRISP_OP_RELU, 0, x, MB_NONE, y, MB_NONE, MB_NONE, NULL);
    mb.input = x, mb.output = y;
    const size_t labl = 16 + 16 * (size_t)count + string_bytes;
    uint8_t *sec = calloc(1, labl);
    mb_put_u32(sec, count), mb_put_u32(sec + 4, 16), mb_put_u32(sec + 8, string_bytes);
    for (uint32_t i = 0; i < count; i++) {
        uint8_t *r = sec + 16 + 16 * (size_t)i;
        mb_put_u32(r, i), mb_put_u32(r + 4, shifted ? i % (string_bytes - 1023) : 0);
        mb_put_u32(r + 8, 1024);
    }
    memset(sec + 16 + 16 * (size_t)count, 'a', string_bytes);
    mb_add_section(&mb, FOURCC('L', 'A', 'B', 'L'), 0, sec, labl);
    uint8_t *f = mb_build(&mb, size);
    mb_free(&mb);
    free(sec);
    return f;
}

/* Issue 14: 65536 labels naming one 1024-byte name made 64 MiB of copies
 * from a 1 MB file. Now the name is copied once and every label shares it;
 * names that really differ (overlapping, shifted) are counted against the
 * limit before they are copied. */
static void test_label_aliasing(void) {
    const uint32_t count = 65536;
    size_t n;
    uint8_t *f = label_model(count, 1024, 0, &n);
    printf("aliased labels: a %zu-byte file\n", n);
    crisp_model *m = NULL;
    crisp_status s = load(f, n, 0, &m);
    CHECK(s == CRISP_OK, "aliased labels: %s", crisp_last_error());
    if (m != NULL) {
        const char *first = NULL;
        int shared = 1, right = 1;
        for (uint32_t i = 0; i < count; i++) {
            int32_t id;
            const char *name;
            crisp_model_get_label(m, i, &id, &name);
            if (i == 0) first = name;
            shared &= name == first;
            right &= id == (int32_t)i && strlen(name) == 1024 && name[0] == 'a';
        }
        CHECK(shared && right, "the labels do not share one copy (shared %d, right %d)", shared,
              right);
        CHECK(m->label_bytes < ((uint64_t)2 << 20), "labels take %llu bytes",
              (unsigned long long)m->label_bytes);
        printf("aliased labels: %llu bytes in C\n", (unsigned long long)m->label_bytes);
        crisp_model_free(m);
    }
    free(f);

    /* Shifted names: 65536 distinct 1024-byte names in a 66 KiB area. */
    f = label_model(count, 65536 + 1023, 1, &n);
    m = NULL;
    s = load(f, n, 16, &m);
    const char *e = crisp_last_error();
    CHECK(s == CRISP_ERR_LIMIT && contains(e, "the label names (65536 labels, 67174400 bytes") &&
              contains(e, "over the 16 MiB limit"),
          "shifted labels, 16 MiB: %s \"%s\"", crisp_status_name(s), e);
    crisp_model_free(m);
    m = NULL;
    s = load(f, n, 0, &m);
    CHECK(s == CRISP_OK, "shifted labels, default limit: %s", crisp_last_error());
    if (m != NULL) {
        int32_t id;
        const char *name;
        CHECK(crisp_model_get_label(m, 70, &id, &name) == CRISP_OK && id == 70 &&
                  strlen(name) == 1024,
              "label 70");
    }
    crisp_model_free(m);
    free(f);
}

/* Packed hybrid weights (8 bytes per kept value) are charged before the
 * allocation: a 2 MiB hybrid linear layer packs into about 4 MiB run sparse
 * (CRISP_HYBRID_FORM=sparse); its dense form reads the file in place. */
static void test_packed_weights(void) {
    setenv("CRISP_HYBRID_FORM", "sparse", 1);
    const mb_hybrid h = {512, 1024, 16, 16, 1, 1, 1, 0, 0, 0};
    unsigned rng = 14;
    size_t wsize;
    uint64_t kept;
    float *dense = malloc(512 * 1024 * sizeof *dense);
    uint8_t *wbytes = mb_hybrid_encode(&h, &rng, dense, NULL, &wsize, &kept);
    mb_model mb;
    mb_init(&mb);
    const uint32_t x = mb_value(&mb, 1, 1024, 0, 0, 0), y = mb_value(&mb, 1, 512, 0, 0, 0);
    const uint32_t wdims[4] = {512, 1024, 0, 0};
    const uint32_t w = mb_tensor_raw(&mb, CRISP_ENCODING_HYBRID_F32, 2, wdims, wbytes, wsize);
    mb_op(&mb, CRISP_OP_LINEAR, 0, x, MB_NONE, y, w, MB_NONE, NULL);
    mb.input = x, mb.output = y;
    size_t n;
    uint8_t *f = mb_build(&mb, &n);
    mb_free(&mb);
    crisp_model *m = NULL;
    crisp_status s = load(f, n, 3, &m);
    const char *e = crisp_last_error();
    CHECK(s == CRISP_ERR_LIMIT && contains(e, "the packed weights of op 0 (LINEAR) need 4.") &&
              contains(e, "over the 3 MiB limit"),
          "packed weights, 3 MiB: %s \"%s\"", crisp_status_name(s), e);
    crisp_model_free(m);
    m = NULL;
    s = load(f, n, 0, &m);
    CHECK(s == CRISP_OK && m->packed_bytes >= 4 * kept, "default limit: %s", crisp_last_error());
    crisp_model_free(m);
    /* Fully kept blocks: every ISA's cost table runs it dense, which keeps no
     * copy (src/expand.h), only 16 bytes per block-row: it loads under the
     * 3 MiB the runs exceed. */
    unsetenv("CRISP_HYBRID_FORM");
    m = NULL;
    s = load(f, n, 3, &m);
    CHECK(s == CRISP_OK && m->packed_bytes == 16 * 512 / 16, "dense form, 3 MiB: %s",
          crisp_last_error());
    crisp_model_free(m);
    free(f);
    free(wbytes);
    free(dense);
}

/* The session's arena and scratch (src/pages.c): small buffers as before;
 * from one huge page up, on a huge-page boundary unless CRISP_HUGE_PAGES=0;
 * every byte usable either way (the advice changes no contents). */
static void test_pages(void) {
    const size_t sizes[] = {64, 4096 + 64, CRISP_HUGE_PAGE - 64, CRISP_HUGE_PAGE,
                            3 * CRISP_HUGE_PAGE + 4096 + 8};
    for (int off = 0; off < 2; off++) {
        if (off) setenv("CRISP_HUGE_PAGES", "0", 1);
        else unsetenv("CRISP_HUGE_PAGES");
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            const size_t n = sizes[i];
            unsigned char *p = crisp_pages_alloc(n);
            CHECK(p != NULL, "%zu bytes: no memory", n);
            if (p == NULL) continue;
            CHECK((uintptr_t)p % CRISP_ALIGN == 0, "%zu bytes at %p: not 64-byte aligned", n,
                  (void *)p);
            const int huge = crisp_pages_huge(n);
#if defined(__linux__) /* madvise(MADV_HUGEPAGE) */
            const int expect = !off && n >= CRISP_HUGE_PAGE;
#else
            const int expect = 0;
#endif
            CHECK(huge == expect, "%zu bytes, CRISP_HUGE_PAGES %s: huge %d", n,
                  off ? "0" : "unset", huge);
            if (huge)
                CHECK((uintptr_t)p % CRISP_HUGE_PAGE == 0, "%zu bytes at %p: not on a huge page",
                      n, (void *)p);
            for (size_t j = 0; j < n; j++) p[j] = (unsigned char)(j * 7 + i);
            size_t bad = 0;
            for (size_t j = 0; j < n; j++) bad += p[j] != (unsigned char)(j * 7 + i);
            CHECK(bad == 0, "%zu bytes: %zu changed", n, bad);
            free(p);
        }
    }
    unsetenv("CRISP_HUGE_PAGES");
}

int main(void) {
    unsetenv("CRISP_MAX_MEMORY_MB");
    CHECK(strcmp(crisp_status_name(CRISP_ERR_LIMIT), "CRISP_ERR_LIMIT") == 0, "status name");
    test_big_kernel_refused();
    test_environment();
    test_session_threads();
    test_label_aliasing();
    test_packed_weights();
    test_pages();
    return check_report();
}
