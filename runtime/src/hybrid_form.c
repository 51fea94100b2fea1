/* Dense or sparse, per layer: the cost table and the choice (hybrid_form.h). */
#include "hybrid_form.h"

#include <stdlib.h>
#include <string.h>

#include "status.h"


crisp_status crisp_hybrid_form_resolve(uint32_t *form) {
    const char *env = getenv("CRISP_HYBRID_FORM");
    *form = CRISP_HYBRID_FORM_AUTO;
    if (env == NULL || env[0] == '\0' || strcmp(env, "auto") == 0) return CRISP_OK;
    if (strcmp(env, "sparse") == 0) {
        *form = CRISP_HYBRID_FORM_SPARSE;
    } else if (strcmp(env, "filled") == 0) {
        *form = CRISP_HYBRID_FORM_FILLED;
    } else if (strcmp(env, "dense") == 0) {
        *form = CRISP_HYBRID_FORM_DENSE;
    } else if (strcmp(env, "infile") == 0) {
        *form = CRISP_HYBRID_FORM_IN_FILE;
    } else {
        return crisp_error(CRISP_ERR_ARGUMENT,
                           "CRISP_HYBRID_FORM is '%.40s': expected auto, sparse, filled, dense or "
                           "infile", env);
    }
    return CRISP_OK;
}

/* Efficiency: MACs per second of a form over the dense kernel's MACs per
 * second on the same layer, so a form's time is its MACs / efficiency and
 * dense takes R x K / 1. Per-row N:M (V = 1) runs feed one FMA per
 * activation load; row-shared (V > 1) and filled runs share each load among
 * the rows of a kernel call (4 with avx512f and neon, 2 with avx2_fma), and
 * filled runs' MACs include their zeros (runtime/README.md, "Optimised
 * kernels"). Batch-1 linear layers compare their runs (f32_spmv.inc: a
 * gather per 16 kept columns) with the GEMV, which streams the dense weights
 * once.
 * Calibration (ResNet-50 files of crisp-edge peerbench, each conv timed alone
 * through crisp_fast_run in thread CPU time, two forms interleaved; and
 * docs/benchmarks.md): avx512f per-row runs take 1.13-1.43x the dense time
 * at 50 % sparsity (0.40), filled runs 0.73-0.80x the per-row time at 75-90 %
 * and 1.01x dense at 50 % (0.95: dense wins the tie), row-shared V = 4 runs
 * 0.69x the filled time (0.85); avx2_fma per-row runs 1.44x dense at 50 %
 * (0.35), filled 1.7x dense at 50 % and 1.10x per-row at 90 % (0.60: never
 * chosen for 2:4). Linear layers: the runs on the batch-1 kernels
 * (f32_spmv.inc) against the expanded GEMV, ResNet-50's and MobileNetV2's
 * 2:4 classifiers (Sapphire Rapids VM, each op's time in one process, forms
 * interleaved, 1 and 2 threads): avx512f per-row 1.51-1.67x the GEMV (0.32),
 * V = 4 0.86-0.95x (0.55); avx2_fma (CRISP_MAX_ISA=avx2) per-row 1.10x
 * (0.45), V = 4 0.63x (0.80). neon copies avx2_fma's conv rates and keeps
 * the linear rates measured with the one-pixel sparse-run kernel before
 * f32_spmv (0.23, 0.55) until measured on a board; scalar from the scalar
 * variants' GFLOP/s (spmm 4x8 about 0.3 of gemm 4x8).
 * linear_in_file: 2:4 linears read in place (f32_nmv24.inc), kept values
 * (half the dense MACs) against the expanded GEMV on the same layer (each
 * op's time in one process, warm, 1 thread): avx512f ResNet-50's classifier
 * 0.41 against 0.53 ms, MobileNetV2's 0.130 against 0.173 (0.65); avx2_fma
 * (CRISP_MAX_ISA=avx2) 0.387 against 0.644 (0.83), MobileNetV2 V = 4 level
 * with its spmv runs (0.80); scalar 0.84 against 1.47 ms (0.85; its runs
 * measured 0.67 there, against the table's 0.30, left as calibrated); neon
 * copies avx2_fma until measured on a board. */
typedef struct efficiency {
    const char *isa;
    float conv_per_row, conv_shared, conv_filled, linear_per_row, linear_shared;
    float run_overhead;   /* conv runs: MAC-equivalents per run and pixel */
    float linear_in_file; /* 2:4 linears read in place (f32_nmv24.inc), per kept value */
} efficiency;

/* run_overhead: a conv's runs cost about this many MACs more per run and
 * output pixel than their values (each call's set-up and epilogue, and the
 * chunk-major sweep writing every run's rows 64 pixels at a time). It only
 * matters when runs hold few values: MobileNetV2's first expand conv (16 ->
 * 96 on 112 x 112, 2:4 in its one block-column: 8 entries per run) ran
 * 1.53-1.75x its dense time as V = 4 runs with avx512f (1.44x avx2_fma),
 * while the table alone put the runs at 0.59x; 48 (32) makes it dense and
 * changes no other choice among the benchmark's ResNet-50 and MobileNetV2
 * files (docs/benchmarks-issue15.md). */
static const efficiency table[] = {
    {"avx512f", 0.40f, 0.85f, 0.95f, 0.32f, 0.55f, 48.0f, 0.65f},
    {"avx2_fma", 0.35f, 0.70f, 0.60f, 0.45f, 0.80f, 32.0f, 0.80f},
    {"neon", 0.35f, 0.70f, 0.60f, 0.23f, 0.55f, 32.0f, 0.80f},
    {"scalar", 0.30f, 0.30f, 0.30f, 0.30f, 0.30f, 0.0f, 0.85f},
};

/* int8 convs (groups 1), by the int8 kernel tier: conv_per_row and
 * conv_shared against conv_filled = 1 (the run kernels' rate on a block-row's
 * rows sharing all their columns; no dense form, linears unused). The int8
 * run kernels interleave four B rows per group of four kept columns for
 * every call of up to 4 rows (qs8_spmm_4x64__avx512vnni.c): a lone row pays
 * that interleave alone, a filled run's rows share it, at the price of the
 * zeros. Calibration (bench-results/int8 @90 %, each conv's thread time in
 * one process, runs and filled interleaved, 1 and 2 threads): avx512vnni
 * filled / per-row runs 0.47-0.96 per conv (ResNet-50, MobileNetV2, VGG-16:
 * the models 0.81, 0.81, 0.87x: 0.32), filled / V = 4 runs 0.84-2.5 (models
 * 1.07-1.48x: 0.65); avx2_fma (CRISP_MAX_ISA=avx2) per-row 0.46-1.02 (models
 * 0.74-0.79x: 0.38), V = 4 0.91-2.1 (models 1.23-1.54x: 0.70). avxvnni
 * (qs8_spmm_4x32__avxvnni.c, the avx512vnni kernel at half width) copies
 * avx512vnni until measured on a client core. neon and
 * neon_dotprod (4-row calls too) copy avx2_fma until measured on a board; the
 * scalar kernel takes one row per call, so nothing is shared. */
static const efficiency table_qs8[] = {
    {"avx512vnni", 0.32f, 0.65f, 1.0f, 1.0f, 1.0f, 0.0f, 0.0f},
    {"avx2_fma", 0.38f, 0.70f, 1.0f, 1.0f, 1.0f, 0.0f, 0.0f},
    {"avxvnni", 0.32f, 0.65f, 1.0f, 1.0f, 1.0f, 0.0f, 0.0f},
    {"neon_dotprod", 0.38f, 0.70f, 1.0f, 1.0f, 1.0f, 0.0f, 0.0f},
    {"neon", 0.38f, 0.70f, 1.0f, 1.0f, 1.0f, 0.0f, 0.0f},
    {"scalar", 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 0.0f, 0.0f},
};

/* A form other than the file's runs may cost this much more memory: a
 * quarter (filled runs store their zeros: a 1:4 layer's take about twice
 * its runs' bytes, and stay out). */
#define MEMORY_SLACK 1.25

/* The row of `t` for tier `isa`, or NULL. */
static const efficiency *row_of(const efficiency *t, size_t rows, const char *isa) {
    for (size_t i = 0; isa != NULL && i < rows; i++)
        if (strcmp(t[i].isa, isa) == 0) return &t[i];
    return NULL;
}

static const efficiency *rates(const crisp_hybrid_cost *c) {
    return c->int8 ? row_of(table_qs8, sizeof table_qs8 / sizeof *table_qs8, c->isa)
                   : row_of(table, sizeof table / sizeof *table, c->isa);
}

const char *crisp_hybrid_tier(const char *name) {
    const efficiency *e = row_of(table, sizeof table / sizeof *table, name);
    return e != NULL ? e->isa : NULL;
}

double crisp_hybrid_time(const crisp_hybrid_cost *c, uint32_t choice) {
    const efficiency *e = rates(c);
    if (e == NULL) return -1.0;
    const double overhead = c->linear ? 0.0 : e->run_overhead;
    if (choice == CRISP_HYBRID_RUNS) {
        const int shared = c->v > 1;
        const double rate = c->linear ? (shared ? e->linear_shared : e->linear_per_row)
                                      : (shared ? e->conv_shared : e->conv_per_row);
        return ((double)c->run_values + overhead * (double)c->runs) / rate;
    }
    if (choice == CRISP_HYBRID_IN_FILE)
        return c->in_file && !c->int8 ? (double)c->run_values / e->linear_in_file : -1.0;
    if (choice == CRISP_HYBRID_FILLED)
        return c->filled_values > 0
                   ? ((double)c->filled_values + overhead * (double)c->filled_runs) / e->conv_filled
                   : -1.0;
    return c->int8 ? -1.0 : (double)c->dense_values;
}

uint32_t crisp_hybrid_choose(uint32_t form, const crisp_hybrid_cost *c) {
    if (form == CRISP_HYBRID_FORM_SPARSE) return CRISP_HYBRID_RUNS;
    if (form == CRISP_HYBRID_FORM_DENSE) return c->int8 ? CRISP_HYBRID_RUNS : CRISP_HYBRID_DENSE;
    if (form == CRISP_HYBRID_FORM_FILLED)
        return c->filled_values > 0 ? CRISP_HYBRID_FILLED : CRISP_HYBRID_RUNS;
    if (form == CRISP_HYBRID_FORM_IN_FILE)
        return c->in_file && !c->int8 ? CRISP_HYBRID_IN_FILE : CRISP_HYBRID_RUNS;
    if (rates(c) == NULL) return CRISP_HYBRID_RUNS;
    const double room = MEMORY_SLACK * (double)c->run_bytes;
    uint32_t best = CRISP_HYBRID_RUNS;
    double best_time = crisp_hybrid_time(c, CRISP_HYBRID_RUNS);
    const double filled_time = crisp_hybrid_time(c, CRISP_HYBRID_FILLED);
    if (filled_time >= 0.0 && (double)c->filled_bytes <= room && filled_time < best_time) {
        best = CRISP_HYBRID_FILLED;
        best_time = filled_time;
    }
    const double dense_time = crisp_hybrid_time(c, CRISP_HYBRID_DENSE);
    if (dense_time >= 0.0 && (double)c->dense_bytes <= room && dense_time < best_time) {
        best = CRISP_HYBRID_DENSE;
        best_time = dense_time;
    }
    /* In place keeps what dense from the file keeps. */
    const double in_file_time = crisp_hybrid_time(c, CRISP_HYBRID_IN_FILE);
    if (in_file_time >= 0.0 && (double)c->dense_bytes <= room && in_file_time < best_time)
        best = CRISP_HYBRID_IN_FILE;
    return best;
}

/* Cheapest slowdown per byte freed first; ties by op, so the order (and the
 * choice) is a function of the items alone. */
static int by_cost_per_byte(const void *a, const void *b) {
    const crisp_hybrid_demotion *x = a, *y = b;
    const double cx = x->slowdown / (double)x->saving, cy = y->slowdown / (double)y->saving;
    if (cx != cy) return cx < cy ? -1 : 1;
    return (x->op > y->op) - (x->op < y->op);
}

uint64_t crisp_hybrid_fit(crisp_hybrid_demotion *items, size_t n, uint64_t excess) {
    size_t usable = 0;
    for (size_t i = 0; i < n; i++) {
        items[i].chosen = 0;
        if (items[i].saving > 0) items[usable++] = items[i];
    }
    qsort(items, usable, sizeof *items, by_cost_per_byte);
    uint64_t freed = 0;
    for (size_t i = 0; i < usable && freed < excess; i++) {
        items[i].chosen = 1;
        freed += items[i].saving;
    }
    return freed;
}
