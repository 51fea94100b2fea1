/* Minimal test harness: CHECK counts, failures print where and why, and
 * check_report() prints "N passed, N failed" and gives the exit code. */
#ifndef CRISP_TEST_CHECK_H
#define CRISP_TEST_CHECK_H

#include <stdio.h>

extern int check_passed, check_failed;

/* Define the counters in exactly one translation unit per test program. */
#define CHECK_DEFINE_COUNTERS int check_passed, check_failed

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (cond) {                                                             \
            check_passed++;                                                     \
        } else {                                                                \
            check_failed++;                                                     \
            fprintf(stderr, "%s:%d: FAILED (%s): ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
        }                                                                       \
    } while (0)

static inline int check_report(void) {
    printf("%d passed, %d failed\n", check_passed, check_failed);
    return check_failed != 0 || check_passed == 0;
}

/* Deterministic xorshift so failures reproduce; no global state. */
static inline unsigned check_rand(unsigned *state) {
    unsigned x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}
static inline int check_rand_int(unsigned *state, int lo, int hi) {
    return lo + (int)(check_rand(state) % (unsigned)(hi - lo + 1));
}
static inline float check_rand_float(unsigned *state) {
    return (float)(check_rand(state) % 20001u) / 10000.0f - 1.0f;
}

#endif
