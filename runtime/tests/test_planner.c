/* The arena planner: simultaneously live buffers never overlap, offsets are
 * aligned, and planning saves memory on chains. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "crisp.h"
#include "model_builder.h"
#include "planner.h"

CHECK_DEFINE_COUNTERS;

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

int main(void) {
    test_random();
    test_chain_with_residuals();
    test_model();
    return check_report();
}
