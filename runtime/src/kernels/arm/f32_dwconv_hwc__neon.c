/* Depthwise 3 x 3, channels in the lanes, NEON: the walk of
 * generic/f32_dwconv_hwc_body.h with 4 channels per call, 4 x 4 transposes
 * (vtrn + vcombine) and partial rows through a 4-float buffer. The clamp is
 * the reference's two comparisons as compare-and-select (FMAX would turn -0
 * into +0 against a bound of 0). */
#include <arm_neon.h>
#include <string.h>

static inline void transpose4(float32x4_t *r) {
    const float32x4x2_t a = vtrnq_f32(r[0], r[1]), b = vtrnq_f32(r[2], r[3]);
    r[0] = vcombine_f32(vget_low_f32(a.val[0]), vget_low_f32(b.val[0]));
    r[1] = vcombine_f32(vget_low_f32(a.val[1]), vget_low_f32(b.val[1]));
    r[2] = vcombine_f32(vget_high_f32(a.val[0]), vget_high_f32(b.val[0]));
    r[3] = vcombine_f32(vget_high_f32(a.val[1]), vget_high_f32(b.val[1]));
}

static inline float32x4_t load_n(const float *p, size_t n) {
    if (n == 4) return vld1q_f32(p);
    float b[4] = {0};
    memcpy(b, p, n * sizeof *b);
    return vld1q_f32(b);
}

static inline void store_n(float *p, float32x4_t v, size_t n) {
    if (n == 4) {
        vst1q_f32(p, v);
        return;
    }
    float b[4];
    vst1q_f32(b, v);
    memcpy(p, b, n * sizeof *b);
}

static inline float32x4_t clamp(float32x4_t v, float32x4_t lo, float32x4_t hi) {
    v = vbslq_f32(vcltq_f32(v, lo), lo, v);
    return vbslq_f32(vcgtq_f32(v, hi), hi, v);
}

#define CRISP_DWCONV_HWC_NAME crisp_f32_dwconv_hwc_ukernel__neon
#define VEC float32x4_t
#define VL ((size_t)4)
#define VZERO() vdupq_n_f32(0.0f)
#define VLOAD(p) vld1q_f32(p)
#define VSTORE(p, v) vst1q_f32(p, v)
#define VSET1(x) vdupq_n_f32(x)
#define VFMA(acc, w, x) vfmaq_f32(acc, w, x)
#define VCLAMP(v, lo, hi) clamp(v, lo, hi)
#define VLOAD_N(p, n) load_n(p, n)
#define VSTORE_N(p, v, n) store_n(p, v, n)
#define TRANSPOSE(r) transpose4(r)
#include "kernels/generic/f32_dwconv_hwc_body.h"
