/* Portable hybrid-sparse run microkernel (ukernels.h has the contract). */
#include "kernels/common.h"
#include "kernels/ukernels.h"

void crisp_f32_spmm_ukernel_4x8__scalar(size_t rows, size_t nc, size_t entries,
                                        const uint32_t *column, const float *w, const float *b,
                                        size_t b_stride, float *c, size_t c_stride,
                                        const float *bias, const crisp_minmax_params *params) {
    for (size_t r = 0; r < rows; r++) {
        float acc[8];
        const float b0 = bias != NULL ? bias[r] : 0.0f;
        for (size_t n = 0; n < 8; n++) acc[n] = b0;
        for (size_t e = 0; e < entries; e++) {
            const float we = w[e * rows + r];
            const float *be = b + (size_t)column[e] * b_stride;
            for (size_t n = 0; n < nc; n++) acc[n] += we * be[n];
        }
        for (size_t n = 0; n < nc; n++)
            c[r * c_stride + n] = crisp_clampf(acc[n], params->output_min, params->output_max);
    }
}
