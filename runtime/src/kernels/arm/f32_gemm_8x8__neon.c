/* Dense GEMM microkernel, NEON (AArch64): 8 rows x 8 pixels (16 q-register
 * accumulators, two B vectors, one duplicated weight). Partial tiles (nc < 8)
 * go through a zero-padded copy of each B row, since NEON has no masked
 * loads; rows past mr repeat the last row and are not stored. */
#include <arm_neon.h>
#include <string.h>

#include "kernels/ukernels.h"
#include "kernels/arm/neon_tail.h"

#define MR 8

void crisp_f32_gemm_ukernel_8x8__neon(size_t mr, size_t nc, size_t kc, const float *a,
                                      size_t a_stride, const float *b, size_t b_stride,
                                      float *c, size_t c_stride, const float *bias,
                                      const crisp_minmax_params *params) {
    const float *ar[MR];
    float32x4_t acc[MR][2];
    for (int i = 0; i < MR; i++) {
        const size_t row = (size_t)i < mr ? (size_t)i : mr - 1;
        ar[i] = a + row * a_stride;
        acc[i][0] = acc[i][1] = vdupq_n_f32(bias != NULL ? bias[row] : 0.0f);
    }
    const int full = nc == 8;
    for (size_t k = 0; k < kc; k++) {
        const float *bk = b + k * b_stride;
        const float32x4_t b0 = full ? vld1q_f32(bk) : crisp_neon_load_part(bk, nc, 0);
        const float32x4_t b1 = full ? vld1q_f32(bk + 4) : crisp_neon_load_part(bk, nc, 1);
        for (int i = 0; i < MR; i++) {
            const float32x4_t w = vld1q_dup_f32(ar[i] + k);
            acc[i][0] = vfmaq_f32(acc[i][0], w, b0);
            acc[i][1] = vfmaq_f32(acc[i][1], w, b1);
        }
    }
    /* fmax/fmin of NEON return NaN when either operand is NaN: NaN survives. */
    const float32x4_t lo = vdupq_n_f32(params->output_min), hi = vdupq_n_f32(params->output_max);
    for (int i = 0; i < MR && (size_t)i < mr; i++) {
        float out[8];
        vst1q_f32(out, vminq_f32(vmaxq_f32(acc[i][0], lo), hi));
        vst1q_f32(out + 4, vminq_f32(vmaxq_f32(acc[i][1], lo), hi));
        memcpy(c + (size_t)i * c_stride, out, nc * sizeof(float));
    }
}
