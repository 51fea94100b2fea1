/* float32 addition, portable C: the reference's loop (kernels/f32_add.inc). */
#include "kernels/common.h"
#include "kernels/ukernels.h"

void crisp_f32_add_ukernel__scalar(size_t n, const float *a, const float *b, float *y,
                                   const crisp_minmax_params *p) {
    const float lo = p->output_min, hi = p->output_max;
    for (size_t i = 0; i < n; i++) y[i] = crisp_clampf(a[i] + b[i], lo, hi);
}
