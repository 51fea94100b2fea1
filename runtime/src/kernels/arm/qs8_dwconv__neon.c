/* int8 depthwise conv microkernel, NEON: 16 output pixels per chunk in four
 * int32 vectors; per tap 16 centred int16 inputs multiplied by the tap's
 * weight with widening multiply-accumulates (vmlal); then the requantisation
 * with the reference's float operations in its order (arm/qs8_neon.h). */
#include <arm_neon.h>

#include "kernels/ukernels.h"
#include "qs8_neon.h"

void crisp_qs8_dwconv_ukernel__neon(const crisp_qs8_dwconv_plane *pl, const int8_t *w,
                                    int32_t bias, float multiplier, int8_t *out,
                                    const crisp_qs8_requant *q) {
    const size_t ow = pl->output_width, kh = pl->kernel_height, kw = pl->kernel_width;
    const size_t s = pl->stride_width, d = pl->dilation_width;
    for (size_t oy = 0; oy < pl->output_height; oy++) {
        int8_t *o = out + oy * ow;
        for (size_t ox0 = 0; ox0 < ow; ox0 += 16) {
            int32x4_t a0 = vdupq_n_s32(bias), a1 = a0, a2 = a0, a3 = a0;
            for (size_t ky = 0; ky < kh; ky++) {
                const int16_t *row = pl->phases +
                                     (oy * pl->stride_height + ky * pl->dilation_height) *
                                         pl->phase_stride + ox0;
                for (size_t kx = 0; kx < kw; kx++) {
                    const int16_t *src = row + (kx * d % s) * pl->phase_size + kx * d / s;
                    const int16_t wv = w[ky * kw + kx];
                    const int16x8_t x0 = vld1q_s16(src), x1 = vld1q_s16(src + 8);
                    a0 = vmlal_n_s16(a0, vget_low_s16(x0), wv);
                    a1 = vmlal_high_n_s16(a1, x0, wv);
                    a2 = vmlal_n_s16(a2, vget_low_s16(x1), wv);
                    a3 = vmlal_high_n_s16(a3, x1, wv);
                }
            }
            crisp_qs8_store_row_neon(o + ox0, ow - ox0 < 16 ? ow - ox0 : 16, a0, a1, a2, a3,
                                     multiplier, q);
        }
    }
}
