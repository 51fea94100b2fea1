/* float32 addition, NEON: 16 elements per step, then 4, then the scalar
 * tail. The clamp is the reference's two comparisons as compare-and-select
 * (FMAX would turn -0 into +0 against a bound of 0, and NaN into the default
 * NaN): bitwise the reference. */
#include <arm_neon.h>

#include "kernels/common.h"
#include "kernels/ukernels.h"

static inline float32x4_t add(const float *a, const float *b, float32x4_t lo, float32x4_t hi) {
    float32x4_t v = vaddq_f32(vld1q_f32(a), vld1q_f32(b));
    v = vbslq_f32(vcltq_f32(v, lo), lo, v);
    return vbslq_f32(vcgtq_f32(v, hi), hi, v);
}

void crisp_f32_add_ukernel__neon(size_t n, const float *a, const float *b, float *y,
                                 const crisp_minmax_params *p) {
    const float32x4_t lo = vdupq_n_f32(p->output_min), hi = vdupq_n_f32(p->output_max);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const float32x4_t v0 = add(a + i, b + i, lo, hi), v1 = add(a + i + 4, b + i + 4, lo, hi);
        const float32x4_t v2 = add(a + i + 8, b + i + 8, lo, hi);
        const float32x4_t v3 = add(a + i + 12, b + i + 12, lo, hi);
        vst1q_f32(y + i, v0);
        vst1q_f32(y + i + 4, v1);
        vst1q_f32(y + i + 8, v2);
        vst1q_f32(y + i + 12, v3);
    }
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, add(a + i, b + i, lo, hi));
    for (; i < n; i++) y[i] = crisp_clampf(a[i] + b[i], p->output_min, p->output_max);
}
