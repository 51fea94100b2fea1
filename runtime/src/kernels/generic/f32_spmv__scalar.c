/* float32 hybrid linear runs at batch 1, portable C (kernels/f32_spmv.inc):
 * each row's sum in entry order. Also the other tiers' path for run heights
 * their lanes do not divide. */
#include "kernels/common.h"
#include "kernels/ukernels.h"

void crisp_f32_spmv_ukernel__scalar(size_t rows, size_t entries, const uint32_t *column,
                                    const float *w, const float *x, float *y, const float *bias,
                                    const crisp_minmax_params *p) {
    for (size_t r = 0; r < rows; r++) {
        float acc = bias != NULL ? bias[r] : 0.0f;
        for (size_t e = 0; e < entries; e++) acc += w[e * rows + r] * x[column[e]];
        y[r] = crisp_clampf(acc, p->output_min, p->output_max);
    }
}
