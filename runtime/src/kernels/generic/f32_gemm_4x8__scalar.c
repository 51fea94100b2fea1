/* Portable dense GEMM microkernel: the tier for CPUs without a SIMD variant
 * and the model the SIMD variants follow (ukernels.h has the contract). */
#include "kernels/common.h"
#include "kernels/ukernels.h"

void crisp_f32_gemm_ukernel_4x8__scalar(size_t mr, size_t nc, size_t kc, const float *a,
                                        size_t a_stride, const float *b, size_t b_stride,
                                        float *c, size_t c_stride, const float *bias,
                                        const crisp_minmax_params *params) {
    for (size_t i = 0; i < mr; i++) {
        float acc[8];
        const float b0 = bias != NULL ? bias[i] : 0.0f;
        for (size_t n = 0; n < 8; n++) acc[n] = b0;
        const float *ai = a + i * a_stride;
        for (size_t k = 0; k < kc; k++) {
            const float w = ai[k];
            const float *bk = b + k * b_stride;
            for (size_t n = 0; n < nc; n++) acc[n] += w * bk[n];
        }
        for (size_t n = 0; n < nc; n++)
            c[i * c_stride + n] = crisp_clampf(acc[n], params->output_min, params->output_max);
    }
}
