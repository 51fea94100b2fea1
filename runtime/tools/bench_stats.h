/* Small pieces of crisp-bench that are worth testing on their own: latency
 * statistics and the --threads list syntax. */
#ifndef CRISP_BENCH_STATS_H
#define CRISP_BENCH_STATS_H

#include <stddef.h>

#define BENCH_MAX_THREAD_COUNTS 64
#define BENCH_MAX_THREADS 256

typedef struct bench_stats {
    double min_ms, median_ms, p90_ms, p99_ms, mean_ms, total_ms;
} bench_stats;

/* Sorts ms[0..n) in place and summarises it; n >= 1. Percentiles use the
 * nearest-rank definition (the smallest sample with at least p % of the
 * samples at or below it), so every reported number is a measured run. */
void bench_summarise(double *ms, size_t n, bench_stats *out);

/* Parses "1,2,4", "1..4" or a mix ("1,2..4,8") into counts[], each 1..256.
 * Returns how many, or 0 if the text is malformed (then *why says what). */
size_t bench_parse_threads(const char *text, unsigned *counts, size_t capacity, const char **why);

#endif
