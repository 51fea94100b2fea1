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
    /* Each op's own figures (--profile-ops), op_count entries each; the
     * kind and kernel names are the library's static strings. */
    uint32_t op_count;
    double *op_ms;
    const char **op_kind, **op_kernel;
    uint64_t *op_macs, *op_effective_macs;
} bench_profile;

/* Runs `runs` profiled samples of x with `threads` threads after one warm-up
 * and sums the ops into p, largest time first. 0 and a message on failure. */
int bench_profile_run(const crisp_model *model, const crisp_model_info *info, const float *x,
                      float *y, unsigned threads, long runs, bench_profile *p, FILE *err);

/* A text table (indented under the model's lines) or a JSON array. */
void bench_profile_print(FILE *out, const bench_profile *p, int json);

/* --profile-ops: one line per op (index, kind, kernel, MMACs) with its ms per
 * sample at each of the n profiles' thread counts and, past the first, the
 * first's time over each (the speedup from more threads): which ops scale
 * and which do not. Ops under 1 us in every profile are left out. */
void bench_profile_print_ops(FILE *out, const bench_profile *const *p, const unsigned *threads,
                             size_t n);

void bench_profile_free(bench_profile *p);

#endif
