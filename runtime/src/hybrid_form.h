/* The form a float32 hybrid conv/linear runs in on the optimised kernels:
 * its sparse runs (src/pack.c), or expanded once at load to dense weights
 * for the dense GEMM/GEMV, whichever a per-ISA cost table says is faster
 * (runtime/README.md, "Dense or sparse, per layer"). */
#ifndef CRISP_HYBRID_FORM_H
#define CRISP_HYBRID_FORM_H

#include <stdint.h>

#include "crisp.h"

/* CRISP_HYBRID_FORM in the environment: auto (default, the cost table),
 * sparse (never expand), dense (expand every layer a dense kernel runs). */
enum crisp_hybrid_form {
    CRISP_HYBRID_FORM_AUTO = 0,
    CRISP_HYBRID_FORM_SPARSE,
    CRISP_HYBRID_FORM_DENSE,
};

/* Reads CRISP_HYBRID_FORM; anything but auto|sparse|dense (or unset/empty)
 * is CRISP_ERR_ARGUMENT naming the value. */
crisp_status crisp_hybrid_form_resolve(uint32_t *form);

/* What the choice looks at, for one layer. */
typedef struct crisp_hybrid_cost {
    const char *isa;       /* crisp_f32_kernels_best()->isa */
    int linear;            /* batch-1 linear (GEMV) rather than conv (GEMM) */
    uint32_t v;            /* rows sharing an N:M selection (docs/format.md) */
    uint64_t kept_values;  /* executed MACs per pixel in the sparse form */
    uint64_t dense_values; /* R x K */
    uint64_t packed_bytes; /* the sparse form's packed runs */
} crisp_hybrid_cost;

/* 1 when the layer runs dense: the form is dense, or it is auto and the
 * sparse runs would be slower (kept_values > dense_values x the ISA's
 * sparse efficiency) while the dense copy (4 bytes per weight) costs at most
 * a quarter more memory than the packed runs it replaces. Deterministic: a
 * function of its arguments and the compiled table only. */
int crisp_hybrid_runs_dense(uint32_t form, const crisp_hybrid_cost *c);

#endif
