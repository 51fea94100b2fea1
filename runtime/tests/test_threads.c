/* The session thread pool: whole models (float32, hybrid, int8) give
 * bitwise identical outputs for 1..4 threads and any batch; option errors;
 * a failing pthread_create is an error with a message, joins what started
 * and never hangs; sessions come and go without leaking threads. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "crisp.h"
#include "sample_models.h"
#include "thread_pool.h"

CHECK_DEFINE_COUNTERS;

static void check_model(void (*make)(mb_model *), const char *name) {
    mb_model mb;
    make(&mb);
    size_t n;
    uint8_t *f = mb_build(&mb, &n);
    uint64_t naive = 0; /* int8 values take one byte per element */
    for (uint32_t v = 0; v < mb.value_count; v++) {
        uint64_t e = mb.values[v].dtype == 2 ? 1 : 4;
        for (uint32_t d = 0; d < mb.values[v].rank; d++) e *= mb.values[v].dims[d];
        naive += (e + 63) / 64 * 64;
    }
    mb_free(&mb);
    crisp_model *m;
    if (crisp_model_load_buffer(f, n, &m) != CRISP_OK) {
        CHECK(0, "%s: %s", name, crisp_last_error());
        free(f);
        return;
    }
    free(f);
    crisp_model_info info;
    crisp_model_get_info(m, &info);
    CHECK(info.naive_bytes == naive && info.arena_bytes <= naive, "%s: naive %llu (expected %llu), arena %llu",
          name, (unsigned long long)info.naive_bytes, (unsigned long long)naive,
          (unsigned long long)info.arena_bytes);
    enum { BATCH = 3 };
    const size_t nx = BATCH * (size_t)info.input_elements, ny = BATCH * (size_t)info.output_elements;
    float *x = malloc(nx * sizeof *x), *y1 = malloc(ny * sizeof *y1), *y = malloc(ny * sizeof *y);
    unsigned rng = 31;
    for (size_t i = 0; i < nx; i++) x[i] = check_rand_float(&rng) * 2;
    for (uint32_t t = 1; t <= 4; t++) {
        crisp_session_options o = {t, 0};
        crisp_session *s;
        CHECK(crisp_session_create_with_options(m, &o, &s) == CRISP_OK, "%s: %u threads: %s", name,
              t, crisp_last_error());
        for (int rep = 0; rep < 2; rep++) { /* the pool is reused across runs */
            CHECK(crisp_session_run(s, x, nx, t == 1 ? y1 : y, ny) == CRISP_OK, "%s run: %s", name,
                  crisp_last_error());
            if (t > 1) CHECK(memcmp(y, y1, ny * sizeof *y) == 0, "%s: %u threads differ", name, t);
        }
        crisp_session_free(s);
    }
    int finite = 1;
    double sum = 0;
    for (size_t i = 0; i < ny; i++) finite &= isfinite(y1[i]), sum += y1[i];
    CHECK(finite && fabs(sum - BATCH) < 1e-4, "%s: softmax outputs sum to %g", name, sum);
    CHECK(info.effective_macs <= info.macs, "%s: effective %llu > dense %llu MACs", name,
          (unsigned long long)info.effective_macs, (unsigned long long)info.macs);
    free(x), free(y1), free(y);
    crisp_model_free(m);
}

static int calls;
static int failing_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg) {
    if (++calls == 3) return EAGAIN;
    return pthread_create(t, a, fn, arg);
}
static int broken_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg) {
    (void)t, (void)a, (void)fn, (void)arg;
    return EINVAL;
}

enum { CHUNKS = 37, RUNS = 2000 };

typedef struct tally {
    pthread_mutex_t lock;
    size_t runs[CHUNKS]; /* times each chunk ran */
    size_t bad_thread, order_breaks, last;
} tally;

static void count_task(void *context, size_t chunk, size_t t) {
    tally *c = context;
    pthread_mutex_lock(&c->lock);
    c->runs[chunk]++;
    if (t >= 4) c->bad_thread++;
    if (chunk != c->last + 1 && chunk != 0) c->order_breaks++;
    c->last = chunk;
    pthread_mutex_unlock(&c->lock);
}

/* Chunks of BIG_RUN: each distinct chunk is written by one thread only. */
#define BIG_RUN 140001u
static void mark_task(void *context, size_t chunk, size_t t) {
    (void)t;
    ((unsigned char *)context)[chunk]++;
}

static void test_pool(void) {
    crisp_pool *p = (crisp_pool *)1;
    calls = 0;
    crisp_status s = crisp_pool_create(5, failing_create, &p);
    CHECK(s == CRISP_ERR_NOMEM && p == NULL &&
              strstr(crisp_last_error(), "session: cannot start worker thread 3 of 4"),
          "failing pthread_create: %s %s", crisp_status_name(s), crisp_last_error());
    s = crisp_pool_create(3, broken_create, &p);
    CHECK(s == CRISP_ERR_INTERNAL && p == NULL && strstr(crisp_last_error(), "worker thread 1"),
          "broken pthread_create: %s %s", crisp_status_name(s), crisp_last_error());
    /* Many short runs back to back: late workers must never run a chunk
     * twice or touch a finished run (the tally lives on across runs, so a
     * chunk run twice or missed shows in its count). */
    tally c = {PTHREAD_MUTEX_INITIALIZER, {0}, 0, 0, 0};
    CHECK(crisp_pool_create(4, NULL, &p) == CRISP_OK, "pool: %s", crisp_last_error());
    for (int r = 0; r < RUNS; r++) crisp_pool_run(p, (size_t)(r % 3 ? CHUNKS : 1 + r % CHUNKS),
                                                 count_task, &c);
    size_t expected[CHUNKS] = {0}, wrong = 0;
    for (int r = 0; r < RUNS; r++)
        for (size_t k = 0; k < (size_t)(r % 3 ? CHUNKS : 1 + r % CHUNKS); k++) expected[k]++;
    for (size_t k = 0; k < CHUNKS; k++) wrong += c.runs[k] != expected[k];
    CHECK(wrong == 0 && c.bad_thread == 0 && crisp_pool_threads(p) == 4,
          "every chunk runs once per run on a pool thread: %zu chunks miscounted, %zu bad "
          "thread indices",
          wrong, c.bad_thread);
    crisp_pool_run(p, 0, count_task, &c); /* nothing to do */
    /* More chunks than one round's claim word holds (65535): every one once. */
    unsigned char *seen = calloc(BIG_RUN, 1);
    crisp_pool_run(p, BIG_RUN, mark_task, seen);
    size_t marked = 0;
    for (size_t k = 0; k < BIG_RUN; k++) marked += seen[k] == 1;
    CHECK(marked == BIG_RUN, "a run of %u chunks: %zu ran exactly once", BIG_RUN, marked);
    free(seen);
    crisp_pool_free(p);
    tally n = {PTHREAD_MUTEX_INITIALIZER, {0}, 0, 0, 0};
    crisp_pool_run(NULL, CHUNKS, count_task, &n);
    size_t once = 0;
    for (size_t k = 0; k < CHUNKS; k++) once += n.runs[k] == 1;
    CHECK(once == CHUNKS && n.order_breaks == 0 && n.bad_thread == 0,
          "NULL pool runs every chunk on the caller, in order");
    crisp_pool_free(NULL);
}

static void test_options(void) {
    mb_model mb;
    mb_sample_cnn(&mb);
    size_t n;
    uint8_t *f = mb_build(&mb, &n);
    mb_free(&mb);
    crisp_model *m;
    CHECK(crisp_model_load_buffer(f, n, &m) == CRISP_OK, "load");
    free(f);
    crisp_session *s = (crisp_session *)1;
    crisp_session_options o = {2, 0x6 << 4};
    CHECK(crisp_session_create_with_options(m, &o, &s) == CRISP_ERR_ARGUMENT && s == NULL &&
              strstr(crisp_last_error(), "options.flags 0x00000060 has unknown bits"),
          "flags: %s", crisp_last_error());
    /* The op profile: every op timed and counted per sample. */
    o = (crisp_session_options){2, CRISP_SESSION_PROFILE};
    CHECK(crisp_session_create_with_options(m, &o, &s) == CRISP_OK, "profile: %s",
          crisp_last_error());
    {
        crisp_model_info info;
        crisp_model_get_info(m, &info);
        float *x = calloc(3 * info.input_elements, sizeof *x);
        float *y = calloc(3 * info.output_elements, sizeof *y);
        CHECK(crisp_session_run(s, x, 3 * info.input_elements, y, 3 * info.output_elements) ==
                  CRISP_OK, "profiled run: %s", crisp_last_error());
        double total = 0;
        int counted = 1, named = 1, macs = 0;
        for (uint32_t k = 0; k < info.op_count; k++) {
            crisp_op_profile p;
            CHECK(crisp_session_get_op_profile(s, k, &p) == CRISP_OK, "%s", crisp_last_error());
            total += p.seconds, counted &= p.calls == 3;
            named &= p.kind != NULL && p.kernel != NULL && strlen(p.kind) > 0;
            macs += p.macs > 0 && p.effective_macs <= p.macs;
        }
        CHECK(total > 0 && counted && named && macs > 0,
              "profile: total %g s, calls per op 3 (%d), names (%d), MAC ops %d", total,
              counted, named, macs);
        crisp_op_profile p;
        CHECK(crisp_session_get_op_profile(s, info.op_count, &p) == CRISP_ERR_ARGUMENT &&
                  strstr(crisp_last_error(), "the model has"),
              "profile op out of range: %s", crisp_last_error());
        free(x), free(y);
        crisp_session_free(s);
        o = (crisp_session_options){1, 0};
        CHECK(crisp_session_create_with_options(m, &o, &s) == CRISP_OK, "%s", crisp_last_error());
        CHECK(crisp_session_get_op_profile(s, 0, &p) == CRISP_ERR_ARGUMENT &&
                  strstr(crisp_last_error(), "without CRISP_SESSION_PROFILE"),
              "unprofiled session: %s", crisp_last_error());
        crisp_session_free(s);
    }
    o = (crisp_session_options){100000, 0};
    CHECK(crisp_session_create_with_options(m, &o, &s) == CRISP_ERR_ARGUMENT &&
              strstr(crisp_last_error(), "options.threads is 100000, expected 0..256"),
          "threads: %s", crisp_last_error());
    CHECK(crisp_session_create_with_options(NULL, &o, &s) == CRISP_ERR_ARGUMENT, "NULL model");
    CHECK(crisp_session_create_with_options(m, NULL, &s) == CRISP_OK, "NULL options = defaults");
    crisp_session_free(s);
    /* Many sessions with pools, created and freed: no thread or memory left (ASan). */
    for (int i = 0; i < 20; i++) {
        o = (crisp_session_options){(uint32_t)(2 + i % 3), 0};
        CHECK(crisp_session_create_with_options(m, &o, &s) == CRISP_OK, "session %d", i);
        crisp_session_free(s);
    }
    crisp_model_free(m);
}

int main(void) {
    test_pool();
    test_options();
    check_model(mb_sample_cnn, "builder_cnn");
    check_model(mb_sample_hybrid_cnn, "hybrid_cnn");
    check_model(mb_sample_qcnn, "int8_cnn");
    return check_report();
}
