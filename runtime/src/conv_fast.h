/* Internal: convolutions on the optimised microkernels (src/kernels/
 * ukernels.h): dense and hybrid-sparse convs as GEMM / sparse-run products
 * over im2col pixel tiles, depthwise convs over padded column phases. */
#ifndef CRISP_CONV_FAST_H
#define CRISP_CONV_FAST_H

#include "kernels/ukernels.h"
#include "model.h"

/* The plan of op `op` for kernels k (path NONE when no fast kernel applies). */
crisp_fast_plan crisp_fast_plan_op(const crisp_model *m, const crisp_op *op,
                                   const crisp_f32_kernels *k);

/* The last loader stage: every op's plan for the kernels this CPU selects,
 * and the model's per-thread scratch (the largest plan's). Cannot fail. */
void crisp_fast_plan_model(crisp_model *m);

/* Work items [begin, end) of the op's plan; scratch holds plan.scratch_floats
 * floats private to the calling thread, *held_tile the pixel tile whose patch
 * matrix scratch already holds for this op (SIZE_MAX: none; updated), so a
 * thread running several chunks of one tile builds it once. */
void crisp_fast_run(const crisp_f32_kernels *k, const crisp_model *m, const crisp_op *op,
                    const float *x, float *y, size_t begin, size_t end, float *scratch,
                    size_t *held_tile);

#endif
