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
    } else if (strcmp(env, "dense") == 0) {
        *form = CRISP_HYBRID_FORM_DENSE;
    } else {
        return crisp_error(CRISP_ERR_ARGUMENT,
                           "CRISP_HYBRID_FORM is '%.40s': expected auto, sparse or dense", env);
    }
    return CRISP_OK;
}

/* Sparse efficiency: the sparse runs' kept MACs per second over the dense
 * kernel's MACs per second, on one layer, so a layer of density d runs
 * faster sparse when d < efficiency. Per-row N:M (V = 1) feeds one FMA per
 * activation load, row-shared (V > 1) several (runtime/README.md,
 * "Optimised kernels"); batch-1 linear layers compare the one-pixel sparse
 * runs with the GEMV, which streams the dense weights once. Calibration:
 * avx512f and avx2_fma from crisp-ukernel-bench (--family gemm vs spmm) and
 * the ResNet-50 per-layer table and profiles of docs/benchmarks.md (per-row
 * at 50 % sparsity reaches 0.8-1.2x dense, at 75 % 1.6-1.9x: efficiency
 * about 0.45); neon copies avx2_fma until measured on a board; scalar from
 * the scalar variants' GFLOP/s (spmm 4x8 about 0.3 of gemm 4x8). */
typedef struct efficiency {
    const char *isa;
    float conv_per_row, conv_shared, linear_per_row, linear_shared;
} efficiency;

static const efficiency table[] = {
    {"avx512f", 0.45f, 0.85f, 0.23f, 0.55f},
    {"avx2_fma", 0.40f, 0.70f, 0.23f, 0.55f},
    {"neon", 0.40f, 0.70f, 0.23f, 0.55f},
    {"scalar", 0.30f, 0.30f, 0.30f, 0.30f},
};

/* The dense copy may cost this much more than the packed runs it replaces:
 * at most a quarter (per-row 2:4 at density 0.45 costs 3.6 bytes per dense
 * weight packed, 4 dense). */
#define DENSE_MEMORY_SLACK 1.25

int crisp_hybrid_runs_dense(uint32_t form, const crisp_hybrid_cost *c) {
    if (form == CRISP_HYBRID_FORM_SPARSE) return 0;
    if (form == CRISP_HYBRID_FORM_DENSE) return 1;
    const efficiency *e = NULL;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (c->isa != NULL && strcmp(table[i].isa, c->isa) == 0) e = &table[i];
    if (e == NULL || c->dense_values == 0) return 0;
    const int shared = c->v > 1;
    const double rate = c->linear ? (shared ? e->linear_shared : e->linear_per_row)
                                  : (shared ? e->conv_shared : e->conv_per_row);
    const double dense_bytes = 4.0 * (double)c->dense_values;
    return (double)c->kept_values > rate * (double)c->dense_values &&
           dense_bytes <= DENSE_MEMORY_SLACK * (double)c->packed_bytes;
}
