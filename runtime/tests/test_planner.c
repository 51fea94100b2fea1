/* The arena planner: simultaneously live buffers never overlap, offsets are
 * aligned, planning saves memory on chains, the placements are those of the
 * all-pairs planner it replaced (kept here as the reference), and a graph of
 * 65536 values (the format's maximum) plans in well under a second. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "crisp.h"
#include "format.h"
#include "model.h"
#include "model_builder.h"
#include "planner.h"
#include "sample_models.h"

CHECK_DEFINE_COUNTERS;

/* The planner before issue 14, verbatim but for names: every placed item is
 * compared with every other, O(n^2 log n). The placements to reproduce. */
typedef struct ref_span {
    uint64_t begin, end;
} ref_span;
typedef struct ref_ranked {
    uint64_t size;
    uint32_t first;
    size_t index;
} ref_ranked;
static int ref_by_size_desc(const void *a, const void *b) {
    const ref_ranked *x = a, *y = b;
    if (x->size != y->size) return x->size > y->size ? -1 : 1;
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}
static int ref_by_begin(const void *a, const void *b) {
    const ref_span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}
static uint64_t ref_plan(crisp_plan_item *items, size_t count) {
    ref_ranked *order = malloc((count ? count : 1) * sizeof *order);
    ref_span *busy = malloc((count ? count : 1) * sizeof *busy);
    for (size_t i = 0; i < count; i++) order[i] = (ref_ranked){items[i].size, items[i].first, i};
    qsort(order, count, sizeof *order, ref_by_size_desc);
    uint64_t total = 0;
    for (size_t k = 0; k < count; k++) {
        crisp_plan_item *it = &items[order[k].index];
        size_t nbusy = 0;
        for (size_t q = 0; q < k; q++) {
            const crisp_plan_item *o = &items[order[q].index];
            if (o->first <= it->last && it->first <= o->last)
                busy[nbusy++] = (ref_span){o->offset, o->offset + o->size};
        }
        qsort(busy, nbusy, sizeof *busy, ref_by_begin);
        uint64_t at = 0;
        for (size_t q = 0; q < nbusy; q++) {
            if (at + it->size <= busy[q].begin) break;
            if (busy[q].end > at) at = busy[q].end;
        }
        it->offset = at;
        if (at + it->size > total) total = at + it->size;
    }
    free(order);
    free(busy);
    return total;
}

static double seconds_now(void) {
    struct timespec t;
    timespec_get(&t, TIME_UTC);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Time bounds are for a native build; CMake sets CRISP_TEST_TIME_SCALE for
 * sanitizer and emulated runs. */
static double time_scale(void) {
    const char *s = getenv("CRISP_TEST_TIME_SCALE");
    const double v = s != NULL ? atof(s) : 0.0;
    return v >= 1.0 ? v : 1.0;
}

/* crisp_plan_arena and the reference give the same offsets and arena. */
static int same_as_reference(const crisp_plan_item *items, size_t n, const char *what) {
    crisp_plan_item *a = malloc((n ? n : 1) * sizeof *a), *b = malloc((n ? n : 1) * sizeof *b);
    memcpy(a, items, n * sizeof *a);
    memcpy(b, items, n * sizeof *b);
    uint64_t arena = 0;
    const crisp_status s = crisp_plan_arena(a, n, &arena);
    const uint64_t expected = ref_plan(b, n);
    size_t differ = 0;
    for (size_t i = 0; i < n; i++) differ += a[i].offset != b[i].offset;
    const int ok = s == CRISP_OK && arena == expected && differ == 0;
    CHECK(ok, "%s: %s, arena %llu (reference %llu), %zu of %zu offsets differ", what,
          crisp_status_name(s), (unsigned long long)arena, (unsigned long long)expected, differ, n);
    free(a);
    free(b);
    return ok;
}

/* Random item sets of several shapes: short and long lifetimes, equal sizes
 * (ties decided by first op, then index), everything live at once. */
static void test_matches_reference(void) {
    unsigned rng = 1414;
    enum { MAX = 1500 };
    crisp_plan_item *items = malloc(MAX * sizeof *items);
    for (int t = 0; t < 120; t++) {
        const int shape = t % 4;
        const size_t n = (size_t)check_rand_int(&rng, 1, shape == 3 ? 300 : MAX);
        const int horizon = check_rand_int(&rng, 1, (int)n + 5);
        for (size_t i = 0; i < n; i++) {
            const uint32_t a = (uint32_t)check_rand_int(&rng, 0, horizon);
            const int span = shape == 0 ? check_rand_int(&rng, 0, 3)
                             : shape == 1 ? check_rand_int(&rng, 0, horizon)
                             : shape == 2 ? (check_rand(&rng) % 16 == 0 ? horizon : 1)
                                          : horizon + 1;
            items[i].first = shape == 3 ? 0 : a;
            items[i].last = items[i].first + (uint32_t)span;
            items[i].size = 64 * (uint64_t)(shape == 2 ? check_rand_int(&rng, 1, 3)
                                                       : check_rand_int(&rng, 1, 500));
            items[i].offset = 0;
        }
        char what[64];
        snprintf(what, sizeof what, "random set %d (shape %d, %zu items)", t, shape, n);
        if (!same_as_reference(items, n, what)) break;
    }
    free(items);
}

/* A loaded model's values as planner items, as crisp_plan_model makes them
 * (in-place ADDs' shares included: *root, malloc'd). */
static size_t model_items(const crisp_model *m, crisp_plan_item **out, uint32_t **root) {
    crisp_plan_item *items = malloc(m->value_count * sizeof *items);
    *root = malloc(m->value_count * sizeof **root);
    crisp_plan_model_items(m, items);
    crisp_plan_model_shares(m, items, *root);
    *out = items;
    return m->value_count;
}

/* Every model the tests have: the arena and each value's offset are the
 * reference planner's. */
static void check_model_plan(const uint8_t *f, size_t n, const char *what) {
    crisp_model *m = NULL;
    if (crisp_model_load_buffer(f, n, &m) != CRISP_OK) {
        CHECK(0, "%s: load: %s", what, crisp_last_error());
        return;
    }
    crisp_plan_item *items;
    uint32_t *root;
    const size_t count = model_items(m, &items, &root);
    const uint64_t expected = ref_plan(items, count);
    size_t differ = 0;
    for (size_t v = 0; v < count; v++) differ += m->values[v].arena_offset != items[root[v]].offset;
    CHECK(m->arena_bytes == expected && differ == 0,
          "%s: arena %llu (reference %llu), %zu of %zu offsets differ", what,
          (unsigned long long)m->arena_bytes, (unsigned long long)expected, differ, count);
    printf("%s: %zu values, arena %llu bytes\n", what, count, (unsigned long long)m->arena_bytes);
    free(items);
    free(root);
    crisp_model_free(m);
}

static void test_models_unchanged(const char *dir) {
    void (*samples[3])(mb_model *) = {mb_sample_cnn, mb_sample_hybrid_cnn, mb_sample_qcnn};
    const char *names[3] = {"mb_sample_cnn", "mb_sample_hybrid_cnn", "mb_sample_qcnn"};
    for (int k = 0; k < 3; k++) {
        mb_model mb;
        samples[k](&mb);
        size_t n;
        uint8_t *f = mb_build(&mb, &n);
        check_model_plan(f, n, names[k]);
        free(f);
        mb_free(&mb);
    }
    DIR *d = dir != NULL ? opendir(dir) : NULL;
    int files = 0;
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) {
        const size_t len = strlen(e->d_name);
        if (len < 7 || strcmp(e->d_name + len - 6, ".crisp") != 0) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *fp = fopen(path, "rb");
        if (fp == NULL) continue;
        fseek(fp, 0, SEEK_END);
        const long size = ftell(fp);
        fseek(fp, 0, SEEK_SET);
        uint8_t *f = malloc((size_t)size + 1);
        const size_t got = fread(f, 1, (size_t)size, fp);
        fclose(fp);
        CHECK(got == (size_t)size, "%s: read", path);
        check_model_plan(f, got, e->d_name);
        free(f);
        files++;
    }
    if (d != NULL) closedir(d);
    CHECK(dir == NULL || files > 0, "no .crisp files in %s", dir);
}

/* A ResNet-like chain of n values: RELUs, and every fourth op an ADD of a
 * value three ops back (a residual). */
static uint8_t *chain_file(uint32_t n, size_t *size) {
    uint32_t(*ops)[4] = malloc((size_t)(n - 1) * sizeof *ops);
    for (uint32_t i = 0; i + 1 < n; i++) {
        const int add = i % 4 == 3;
        ops[i][0] = add ? CRISP_OP_ADD : CRISP_OP_RELU;
        ops[i][1] = i;
        ops[i][2] = add ? i - 3 : MB_NONE;
        ops[i][3] = i + 1;
    }
    uint8_t *f = mb_build_graph(n, 16, n - 1, (const uint32_t(*)[4])ops, size);
    free(ops);
    return f;
}

/* n - 1 RELUs of the input, then a chain of ADDs folding their outputs in
 * order: every RELU output is live at once (about n^2 / 2 pairs). */
static uint8_t *wide_file(uint32_t n, size_t *size) {
    const uint32_t k = (n + 1) / 2, ops_n = n - 1; /* k RELUs, k - 1 ADDs */
    uint32_t(*ops)[4] = malloc((size_t)ops_n * sizeof *ops);
    for (uint32_t i = 0; i < k; i++) {
        ops[i][0] = CRISP_OP_RELU, ops[i][1] = 0, ops[i][2] = MB_NONE, ops[i][3] = i + 1;
    }
    /* ADD j (op k + j) makes value k + 1 + j from the previous sum and RELU j + 2. */
    for (uint32_t j = 0; j + 1 < k; j++) {
        const uint32_t prev = j == 0 ? 1 : k + j;
        ops[k + j][0] = CRISP_OP_ADD, ops[k + j][1] = prev, ops[k + j][2] = j + 2;
        ops[k + j][3] = k + 1 + j;
    }
    uint8_t *f = mb_build_graph(n, 16, ops_n, (const uint32_t(*)[4])ops, size);
    free(ops);
    return f;
}

/* Issue 14: every value was compared with every other (a chain of 65536
 * values took 2.4 s to load, a wide graph of 65536 minutes). Now both chains
 * load in well under a second (0.12 s for 65536 on a desktop core; the 1 s
 * bound leaves room for a busy machine), a wide graph with too many pairs is
 * refused at once, and a smaller wide graph plans as the reference does. */
static void test_large_graphs(void) {
    const uint32_t sizes[2] = {8192, 65536};
    for (int k = 0; k < 2; k++) {
        size_t n;
        uint8_t *f = chain_file(sizes[k], &n);
        crisp_model *m = NULL;
        const double t0 = seconds_now();
        const crisp_status s = crisp_model_load_buffer(f, n, &m);
        const double dt = seconds_now() - t0;
        printf("chain of %u values: %s in %.3f s\n", (unsigned)sizes[k], crisp_status_name(s), dt);
        CHECK(s == CRISP_OK, "chain of %u values: %s", (unsigned)sizes[k], crisp_last_error());
        CHECK(dt < 1.0 * time_scale(), "chain of %u values: loading took %.2f s (bound %.1f s)",
              (unsigned)sizes[k], dt, 1.0 * time_scale());
        if (m != NULL && sizes[k] == 8192) {
            crisp_plan_item *items;
            uint32_t *root;
            const size_t count = model_items(m, &items, &root);
            const uint64_t expected = ref_plan(items, count);
            CHECK(m->arena_bytes == expected, "chain: arena %llu, reference %llu",
                  (unsigned long long)m->arena_bytes, (unsigned long long)expected);
            free(items);
            free(root);
        }
        crisp_model_free(m);
        free(f);
    }
    {
        size_t n;
        uint8_t *f = wide_file(8192, &n);
        crisp_model *m = NULL;
        const double t0 = seconds_now();
        const crisp_status s = crisp_model_load_buffer(f, n, &m);
        const double dt = seconds_now() - t0;
        printf("wide graph of 8192 values: %s in %.3f s: %s\n", crisp_status_name(s), dt,
               crisp_last_error());
        char limit[32];
        snprintf(limit, sizeof limit, "%llu pairs", (unsigned long long)CRISP_PLAN_MAX_PAIRS);
        CHECK(s == CRISP_ERR_UNSUPPORTED && strstr(crisp_last_error(), "pairs of values") &&
                  strstr(crisp_last_error(), limit),
              "wide graph: %s \"%s\"", crisp_status_name(s), crisp_last_error());
        CHECK(dt < 1.0 * time_scale(), "wide graph: refusing took %.2f s", dt);
        crisp_model_free(m);
        free(f);
    }
    {
        size_t n;
        uint8_t *f = wide_file(2048, &n);
        check_model_plan(f, n, "wide graph of 2048 values");
        free(f);
    }
}

static int check_plan(const crisp_plan_item *items, size_t n, uint64_t arena, const char *what) {
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        ok &= items[i].offset % 64 == 0 && items[i].offset + items[i].size <= arena;
        for (size_t j = i + 1; j < n; j++) {
            const int live_together = items[i].first <= items[j].last && items[j].first <= items[i].last;
            const int overlap = items[i].offset < items[j].offset + items[j].size &&
                                items[j].offset < items[i].offset + items[i].size;
            if (live_together && overlap) {
                ok = 0;
                fprintf(stderr, "%s: items %zu and %zu are live together and overlap\n", what, i, j);
            }
        }
    }
    CHECK(ok, "%s: plan is invalid", what);
    return ok;
}

static void test_random(void) {
    unsigned rng = 8080;
    for (int t = 0; t < 300; t++) {
        const size_t n = (size_t)check_rand_int(&rng, 1, 60);
        crisp_plan_item items[60];
        uint64_t naive = 0, peak = 0;
        for (size_t i = 0; i < n; i++) {
            const uint32_t a = (uint32_t)check_rand_int(&rng, 0, 40);
            items[i].size = 64 * (uint64_t)check_rand_int(&rng, 1, 50);
            items[i].first = a;
            items[i].last = a + (uint32_t)check_rand_int(&rng, 0, 10);
            naive += items[i].size;
        }
        /* The arena can never be smaller than the bytes live at one time. */
        for (uint32_t time = 0; time <= 50; time++) {
            uint64_t live = 0;
            for (size_t i = 0; i < n; i++)
                if (items[i].first <= time && time <= items[i].last) live += items[i].size;
            if (live > peak) peak = live;
        }
        uint64_t arena;
        CHECK(crisp_plan_arena(items, n, &arena) == CRISP_OK, "plan");
        check_plan(items, n, arena, "random");
        CHECK(arena >= peak && arena <= naive, "arena %llu, peak %llu, naive %llu",
              (unsigned long long)arena, (unsigned long long)peak, (unsigned long long)naive);
    }
}

/* A chain with residual skips, as a ResNet: value i is produced by op i - 1
 * and read by op i, and every third value is also read three ops later. */
static void test_chain_with_residuals(void) {
    enum { N = 40 };
    crisp_plan_item items[N];
    uint64_t naive = 0;
    for (uint32_t i = 0; i < N; i++) {
        items[i].size = 64 * (uint64_t)(1 + (i * 7) % 13);
        items[i].first = i == 0 ? 0 : i - 1;
        items[i].last = i % 3 == 0 && i + 3 < N ? i + 2 : i;
        if (i == N - 1) items[i].last = N; /* the graph output lives to the end */
        naive += items[i].size;
    }
    uint64_t arena;
    CHECK(crisp_plan_arena(items, N, &arena) == CRISP_OK, "plan chain");
    check_plan(items, N, arena, "chain");
    CHECK(arena < naive / 4, "a chain should need far less than the naive %llu bytes, got %llu",
          (unsigned long long)naive, (unsigned long long)arena);
}

static void test_model(void) {
    mb_model mb;
    mb_sample_cnn(&mb);
    size_t n;
    uint8_t *f = mb_build(&mb, &n);
    crisp_model *m;
    CHECK(crisp_model_load_buffer(f, n, &m) == CRISP_OK, "load: %s", crisp_last_error());
    crisp_model_info info;
    crisp_model_get_info(m, &info);
    uint64_t naive = 0;
    for (uint32_t v = 0; v < mb.value_count; v++) {
        uint64_t e = 1;
        for (uint32_t d = 0; d < mb.values[v].rank; d++) e *= mb.values[v].dims[d];
        naive += (4 * e + 63) / 64 * 64;
    }
    CHECK(info.naive_bytes == naive, "naive %llu, expected %llu", (unsigned long long)info.naive_bytes,
          (unsigned long long)naive);
    CHECK(info.arena_bytes < info.naive_bytes, "arena %llu, naive %llu",
          (unsigned long long)info.arena_bytes, (unsigned long long)info.naive_bytes);
    /* Largest two buffers (conv1's 8x8x8 output and the input) are live together. */
    CHECK(info.arena_bytes >= 2048 + 768, "arena %llu too small", (unsigned long long)info.arena_bytes);
    crisp_model_free(m);
    free(f);
    mb_free(&mb);
}

int main(int argc, char **argv) {
    test_random();
    test_chain_with_residuals();
    test_model();
    test_matches_reference();
    test_models_unchanged(argc > 1 ? argv[1] : NULL);
    test_large_graphs();
    return check_report();
}
