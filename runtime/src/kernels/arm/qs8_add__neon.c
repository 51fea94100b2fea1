/* int8 addition, NEON: 8 elements per step through int32 and float (the
 * reference's operations, kernels/qs8_add.inc), then the scalar tail. The
 * clamp is the reference's comparisons as selects (vmaxq would keep a NaN
 * where the reference gives the lower bound). The division by the output
 * scale becomes a multiply by its reciprocal where crisp_qs8_add_prepare
 * found that exact for every input pair. */
#include <arm_neon.h>

#include "kernels/common.h"
#include "kernels/ukernels.h"

static inline float32x4_t real4(int16x4_t qa, int16x4_t qb, const crisp_qs8_add_params *p) {
    const float32x4_t fa =
        vcvtq_f32_s32(vsubq_s32(vmovl_s16(qa), vdupq_n_s32(p->a_zero_point)));
    const float32x4_t fb =
        vcvtq_f32_s32(vsubq_s32(vmovl_s16(qb), vdupq_n_s32(p->b_zero_point)));
    const float32x4_t r = vaddq_f32(vmulq_f32(vdupq_n_f32(p->a_scale), fa),
                                    vmulq_f32(vdupq_n_f32(p->b_scale), fb));
    float32x4_t v = p->by_inverse ? vmulq_f32(r, vdupq_n_f32(p->output_inverse))
                                  : vdivq_f32(r, vdupq_n_f32(p->output_scale));
    v = vaddq_f32(vdupq_n_f32((float)p->output_zero_point), vrndnq_f32(v));
    const float32x4_t lo = vdupq_n_f32((float)p->output_min);
    const float32x4_t hi = vdupq_n_f32((float)p->output_max);
    v = vbslq_f32(vcgtq_f32(v, lo), v, lo);
    v = vbslq_f32(vcltq_f32(v, hi), v, hi);
    return v;
}

void crisp_qs8_add_ukernel__neon(size_t n, const int8_t *a, const int8_t *b, int8_t *y,
                                 const crisp_qs8_add_params *p) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const int16x8_t qa = vmovl_s8(vld1_s8(a + i)), qb = vmovl_s8(vld1_s8(b + i));
        const int32x4_t lo = vcvtq_s32_f32(real4(vget_low_s16(qa), vget_low_s16(qb), p));
        const int32x4_t hi = vcvtq_s32_f32(real4(vget_high_s16(qa), vget_high_s16(qb), p));
        vst1_s8(y + i, vqmovn_s16(vcombine_s16(vqmovn_s32(lo), vqmovn_s32(hi))));
    }
    for (; i < n; i++) y[i] = crisp_qs8_add_one(a[i], b[i], p);
}
