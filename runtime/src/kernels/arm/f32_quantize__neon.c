/* float32 -> int8 quantisation, NEON: 8 elements per step (the reference's
 * operations, kernels/f32_quantize.inc), then the scalar tail. The clamp is
 * the reference's comparisons as selects (NaN gives -128). */
#include <arm_neon.h>

#include "kernels/common.h"
#include "kernels/ukernels.h"

static inline int32x4_t quantize4(float32x4_t x, const crisp_qs8_quantize_params *p) {
    float32x4_t v = vdivq_f32(x, vdupq_n_f32(p->scale));
    v = vaddq_f32(vdupq_n_f32((float)p->zero_point), vrndnq_f32(v));
    const float32x4_t lo = vdupq_n_f32(-128.0f), hi = vdupq_n_f32(127.0f);
    v = vbslq_f32(vcgtq_f32(v, lo), v, lo);
    v = vbslq_f32(vcltq_f32(v, hi), v, hi);
    return vcvtq_s32_f32(v);
}

void crisp_f32_quantize_ukernel__neon(size_t n, const float *x, int8_t *y,
                                      const crisp_qs8_quantize_params *p) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const int32x4_t a = quantize4(vld1q_f32(x + i), p), b = quantize4(vld1q_f32(x + i + 4), p);
        vst1_s8(y + i, vqmovn_s16(vcombine_s16(vqmovn_s32(a), vqmovn_s32(b))));
    }
    for (; i < n; i++) y[i] = crisp_qs8_requantize(x[i] / p->scale, p->zero_point, -128, 127);
}
