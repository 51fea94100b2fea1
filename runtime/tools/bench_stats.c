#include "bench_stats.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int by_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double nearest_rank(const double *sorted, size_t n, unsigned percent) {
    size_t rank = (n * percent + 99) / 100; /* ceil(n * p / 100), 1-based */
    if (rank < 1) rank = 1;
    return sorted[rank - 1];
}

void bench_summarise(double *ms, size_t n, bench_stats *out) {
    qsort(ms, n, sizeof *ms, by_double);
    double total = 0;
    for (size_t i = 0; i < n; i++) total += ms[i];
    out->min_ms = ms[0];
    out->median_ms = n % 2 ? ms[n / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2;
    out->p90_ms = nearest_rank(ms, n, 90);
    out->p99_ms = nearest_rank(ms, n, 99);
    out->total_ms = total;
    out->mean_ms = total / (double)n;
}

/* One whole number 1..BENCH_MAX_THREADS at *p; advances *p past it. */
static int parse_count(const char **p, unsigned *out) {
    char *end;
    errno = 0;
    const long v = strtol(*p, &end, 10);
    if (end == *p || errno != 0 || v < 1 || v > BENCH_MAX_THREADS || **p == '-' || **p == '+')
        return 0;
    *out = (unsigned)v;
    *p = end;
    return 1;
}

size_t bench_parse_threads(const char *text, unsigned *counts, size_t capacity, const char **why) {
    size_t n = 0;
    const char *p = text;
    *why = "";
    for (;;) {
        unsigned lo, hi;
        if (!parse_count(&p, &lo)) {
            *why = "each entry must be a whole number 1..256 or a range A..B";
            return 0;
        }
        hi = lo;
        if (strncmp(p, "..", 2) == 0) {
            p += 2;
            if (!parse_count(&p, &hi) || hi < lo) {
                *why = "a range A..B needs 1 <= A <= B <= 256";
                return 0;
            }
        }
        for (unsigned t = lo; t <= hi; t++) {
            if (n == capacity) {
                *why = "too many thread counts (at most 64)";
                return 0;
            }
            counts[n++] = t;
        }
        if (*p == '\0') return n;
        if (*p != ',') {
            *why = "separate entries with commas, e.g. 1,2,4 or 1..4";
            return 0;
        }
        p++;
    }
}
