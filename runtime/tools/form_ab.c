/* crisp-form-ab: one model loaded once per CRISP_HYBRID_FORM value (runtime/
 * README.md, "Dense or sparse, per layer"), its sessions run in rotating
 * order in one process on the same input, so the forms see the same machine
 * state; prints each form's median and p90 latency, its ratio to the first
 * form, and the largest output difference from the first form.
 *
 *   crisp-form-ab MODEL.crisp FORM,FORM[,...] [--threads N] [--runs N] [--cpu-time]
 *
 * --cpu-time times the process's CPU time instead of the wall clock: on a
 * shared machine other processes' time slices then do not count (use it with
 * one thread: with more it sums the threads). --quick is the ctest smoke run.
 * A FORM ending in "/im2col" loads with CRISP_CONV_IM2COL=1: stride-1 hybrid
 * convs then read im2col tiles instead of bands (src/conv_fast.c, "Bands"). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_stats.h"
#include "crisp.h"

#define MAX_FORMS 4

static clockid_t clock_id = CLOCK_MONOTONIC;

static double now(void) {
    struct timespec t;
    clock_gettime(clock_id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

#define USAGE                                                                               \
    "usage: crisp-form-ab MODEL.crisp FORM,FORM[,...] [--threads N] [--runs N] [--cpu-time]\n" \
    "  FORM: auto, sparse, filled or dense (CRISP_HYBRID_FORM), optionally followed by\n" \
    "  /im2col (CRISP_CONV_IM2COL=1); --runs default 30\n"

static int fail(const char *what) {
    fprintf(stderr, "crisp-form-ab: %s: %s\n", what, crisp_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fputs(USAGE, stderr);
        return 2;
    }
    const char *path = argv[1];
    char list[128];
    snprintf(list, sizeof list, "%s", argv[2]);
    const char *forms[MAX_FORMS];
    int count = 0;
    for (char *f = strtok(list, ","); f != NULL && count < MAX_FORMS; f = strtok(NULL, ","))
        forms[count++] = f;
    unsigned threads = 1;
    int runs = 30;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = (unsigned)atoi(argv[++i]);
        } else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--cpu-time") == 0) {
            clock_id = CLOCK_PROCESS_CPUTIME_ID;
        } else if (strcmp(argv[i], "--quick") == 0) {
            runs = 3;
        } else {
            fprintf(stderr, "crisp-form-ab: unknown argument '%s'\n" USAGE, argv[i]);
            return 2;
        }
    }
    if (count < 1 || runs < 3 || runs > 10000 || threads < 1 || threads > 256) {
        fputs(USAGE, stderr);
        return 2;
    }
    crisp_model *m[MAX_FORMS] = {NULL};
    crisp_session *s[MAX_FORMS] = {NULL};
    float *y[MAX_FORMS] = {NULL};
    double *t[MAX_FORMS] = {NULL};
    crisp_model_info info;
    char im2col_env[16] = "";
    if (getenv("CRISP_CONV_IM2COL") != NULL)
        snprintf(im2col_env, sizeof im2col_env, "%s", getenv("CRISP_CONV_IM2COL"));
    for (int i = 0; i < count; i++) {
        char form[64];
        snprintf(form, sizeof form, "%s", forms[i]);
        char *slash = strchr(form, '/');
        if (slash != NULL) {
            if (strcmp(slash, "/im2col") != 0) {
                fprintf(stderr, "crisp-form-ab: form '%s': only /im2col may follow a form\n" USAGE,
                        forms[i]);
                return 2;
            }
            *slash = '\0';
            setenv("CRISP_CONV_IM2COL", "1", 1);
        }
        setenv("CRISP_HYBRID_FORM", form, 1);
        const crisp_status loaded = crisp_model_load_file(path, &m[i]);
        if (slash != NULL) { /* as the caller's environment had it */
            if (im2col_env[0] != '\0') setenv("CRISP_CONV_IM2COL", im2col_env, 1);
            else unsetenv("CRISP_CONV_IM2COL");
        }
        if (loaded != CRISP_OK) return fail(path);
        const crisp_session_options o = {threads, 0};
        if (crisp_session_create_with_options(m[i], &o, &s[i]) != CRISP_OK) return fail(forms[i]);
    }
    unsetenv("CRISP_HYBRID_FORM");
    crisp_model_get_info(m[0], &info);
    size_t nx = 1, ny = 1;
    for (uint32_t d = 0; d < info.input_rank; d++) nx *= info.input_dims[d];
    for (uint32_t d = 0; d < info.output_rank; d++) ny *= info.output_dims[d];
    float *x = malloc(nx * sizeof *x);
    unsigned rng = 1;
    for (size_t i = 0; i < nx; i++) {
        rng = rng * 1103515245u + 12345u;
        x[i] = (float)((rng >> 8) & 0xFFFFu) / 65536.0f - 0.5f;
    }
    for (int i = 0; i < count; i++) {
        y[i] = malloc(ny * sizeof *y[i]);
        t[i] = malloc((size_t)runs * sizeof *t[i]);
        for (int w = 0; w < 2; w++) /* warm-up */
            if (crisp_session_run(s[i], x, nx, y[i], ny) != CRISP_OK) return fail(forms[i]);
    }
    for (int r = 0; r < runs; r++)
        for (int k = 0; k < count; k++) {
            const int i = (r + k) % count;
            const double t0 = now();
            if (crisp_session_run(s[i], x, nx, y[i], ny) != CRISP_OK) return fail(forms[i]);
            t[i][r] = (now() - t0) * 1e3;
        }
    printf("%s, %u thread(s), %d runs each, %s, forms interleaved:\n", path, threads, runs,
           clock_id == CLOCK_MONOTONIC ? "wall time" : "process CPU time");
    double first = 0;
    for (int i = 0; i < count; i++) {
        bench_stats st; /* crisp-bench's statistics: nearest-rank percentiles */
        bench_summarise(t[i], (size_t)runs, &st);
        const double median = st.median_ms, p90 = st.p90_ms;
        if (i == 0) first = median;
        double diff = 0;
        for (size_t j = 0; j < ny; j++) diff = fmax(diff, fabs((double)y[i][j] - y[0][j]));
        printf("  %-14s median %9.3f ms  p90 %9.3f ms  %.3fx %s  max |y - y(%s)| %.3g\n",
               forms[i], median, p90, median / first, forms[0], forms[0], diff);
    }
    for (int i = 0; i < count; i++) {
        crisp_session_free(s[i]);
        crisp_model_free(m[i]);
        free(y[i]), free(t[i]);
    }
    free(x);
    return 0;
}
