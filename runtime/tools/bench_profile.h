/* crisp-bench --profile: where a model's time goes, per op kind and kernel. */
#ifndef CRISP_TOOLS_BENCH_PROFILE_H
#define CRISP_TOOLS_BENCH_PROFILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "crisp.h"

#define BENCH_PROFILE_MAX_ROWS 32

/* The ops of one (kind, kernel) pair, summed over the profiled runs. */
typedef struct bench_profile_row {
    const char *kind, *kernel;
    unsigned ops;
    uint64_t macs, effective_macs; /* per sample */
    double ms;                     /* per sample */
} bench_profile_row;

typedef struct bench_profile {
    bench_profile_row rows[BENCH_PROFILE_MAX_ROWS];
    size_t count;
    double total_ms; /* per sample, all ops */
} bench_profile;

/* Runs `runs` profiled samples of x with `threads` threads after one warm-up
 * and sums the ops into p, largest time first. 0 and a message on failure. */
int bench_profile_run(const crisp_model *model, const crisp_model_info *info, const float *x,
                      float *y, unsigned threads, long runs, bench_profile *p, FILE *err);

/* A text table (indented under the model's lines) or a JSON array. */
void bench_profile_print(FILE *out, const bench_profile *p, int json);

#endif
