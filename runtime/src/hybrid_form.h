/* The form a float32 hybrid conv/linear runs in on the optimised kernels:
 * its sparse runs as the file selects them (src/pack.c), filled runs (per-row
 * N:M blocks whose rows share every column of each kept block, zeros where a
 * row left one out), or dense on the dense GEMM/GEMV, its rows expanded from
 * the file as the kernels need them (src/expand.h) or, where the memory
 * budget has room, from a copy made at load (src/pack.c, "dense copies"),
 * whichever a per-ISA cost table says is fastest
 * (runtime/README.md, "Dense or sparse, per layer"). An int8 hybrid conv
 * (groups 1) runs as its runs or as filled runs, by a table of its own. */
#ifndef CRISP_HYBRID_FORM_H
#define CRISP_HYBRID_FORM_H

#include <stdint.h>

#include "crisp.h"

/* CRISP_HYBRID_FORM in the environment: auto (default, the cost table),
 * sparse (the file's runs, never filled or expanded), filled (filled runs
 * wherever they exist, else the file's), dense (expand every layer a dense
 * kernel runs; int8 hybrid linears too, src/pack.c densify_linear), infile
 * (2:4 float32 linears read in place, else the file's runs). */
enum crisp_hybrid_form {
    CRISP_HYBRID_FORM_AUTO = 0,
    CRISP_HYBRID_FORM_SPARSE,
    CRISP_HYBRID_FORM_FILLED,
    CRISP_HYBRID_FORM_DENSE,
    CRISP_HYBRID_FORM_IN_FILE,
};

/* Reads CRISP_HYBRID_FORM; anything but auto|sparse|filled|dense|infile (or
 * unset/empty) is CRISP_ERR_ARGUMENT naming the value. */
crisp_status crisp_hybrid_form_resolve(uint32_t *form);

/* What the choice looks at, for one layer. */
typedef struct crisp_hybrid_cost {
    const char *isa;        /* crisp_f32_kernels_best()->isa (int8: crisp_qs8_kernels_best()'s) */
    int int8;               /* an int8 conv: runs or filled runs only (no dense form) */
    int linear;             /* batch-1 linear (GEMV) rather than conv (GEMM) */
    uint32_t v;             /* rows sharing an N:M selection (docs/format.md) */
    uint64_t run_values;    /* MACs per pixel of the file's runs (its kept values) */
    uint64_t run_bytes;     /* their packed bytes */
    uint64_t filled_values; /* MACs per pixel of filled runs; 0 = no filled form */
    uint64_t filled_bytes;
    uint64_t runs, filled_runs; /* kernel calls per pixel chunk of each run form */
    uint64_t dense_values;  /* R x K */
    uint64_t dense_bytes;   /* what running dense keeps (src/expand.h: block-row starts) */
    int in_file;            /* a 2:4 batch-1 linear: the in-place form exists (f32_nmv24.inc) */
} crisp_hybrid_cost;

enum crisp_hybrid_choice {
    CRISP_HYBRID_RUNS = 0,
    CRISP_HYBRID_FILLED,
    CRISP_HYBRID_DENSE,
    /* Names and profiles only: dense from a copy made at load (src/pack.c:
     * crisp_fit_packed_forms for float32 convs, densify_linear for int8
     * linears) rather than expanded from the file; never chosen by
     * crisp_hybrid_choose. */
    CRISP_HYBRID_DENSE_COPY,
    /* A 2:4 batch-1 linear run sparse on the file's encoding in place
     * (f32_nmv24.inc): the block-row starts of a dense-from-file layer, no
     * runs packed. */
    CRISP_HYBRID_IN_FILE,
};

/* The float32 cost table's name for kernel tier `name` ("avx512f", "avx2_fma",
 * "neon", "scalar"), or NULL for a name it has no row for. */
const char *crisp_hybrid_tier(const char *name);

/* The layer's form: the forced one (when it exists), or under auto the
 * fastest by the ISA's efficiencies (time = MACs / efficiency) among the
 * forms whose memory is at most a quarter above the file's runs' (filled
 * runs store their zeros; dense keeps no copy, src/expand.h). Ties keep the
 * runs. Deterministic: a function of its arguments and the compiled table
 * only. */
uint32_t crisp_hybrid_choose(uint32_t form, const crisp_hybrid_cost *c);

/* The cost table's time of a form per output pixel (MAC-equivalents over
 * the form's efficiency; dense: R x K), or -1 where the form does not exist
 * for the layer or the ISA has no table. */
double crisp_hybrid_time(const crisp_hybrid_cost *c, uint32_t choice);

/* Within the model's memory budget (runtime/README.md, "Dense or sparse,
 * per layer"): a float32 layer packed as runs or filled runs that could run
 * dense from the file instead. */
typedef struct crisp_hybrid_demotion {
    uint64_t saving; /* bytes running it dense would free (its packed bytes, less
                        what dense keeps and the file pages it then keeps) */
    double slowdown; /* the cost table's time of dense less its form's, whole layer */
    uint32_t op;     /* the op, for ties and for the caller */
    int chosen;      /* set by crisp_hybrid_fit */
} crisp_hybrid_demotion;

/* Chooses layers to run dense until at least `excess` bytes are freed, the
 * least slowdown per byte freed first (ties: the lower op); items that free
 * nothing are dropped. Reorders `items` (the first ones are then the chosen
 * ones) and returns the bytes freed, less than `excess` when every usable
 * layer is chosen. Deterministic: a function of the items only. */
uint64_t crisp_hybrid_fit(crisp_hybrid_demotion *items, size_t n, uint64_t excess);

#endif
