/* Depthwise 3 x 3, channels in the lanes, NEON (kernels/f32_dwconv_hwc.inc):
 * the AVX-512 variant's walk with 4 channels per call, 4 x 4 transposes
 * (vtrn + vcombine) and partial rows through a 4-float buffer. The clamp is
 * the reference's two comparisons as compare-and-select (FMAX would turn -0
 * into +0 against a bound of 0). */
#include <arm_neon.h>
#include <string.h>

#include "kernels/ukernels.h"

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

void crisp_f32_dwconv_hwc_ukernel__neon(const crisp_dwconv_hwc_block *b,
                                       const crisp_minmax_params *params) {
    const size_t C = b->channels, ih = b->input_height, iw = b->input_width, s = b->stride;
    const size_t oh = b->output_height, ow = b->output_width;
    const size_t pt = b->padding_top, pl = b->padding_left;
    const size_t hp = (oh - 1) * s + 3, wp = (ow - 1) * s + 3;
    const size_t plane = ih * iw, oplane = oh * ow;
    float *const tile = b->tile;
    const float32x4_t zero = vdupq_n_f32(0.0f);
    for (size_t ty = 0; ty < hp; ty++) {
        float *row = tile + ty * wp * 4;
        if (ty < pt || ty - pt >= ih) {
            for (size_t tx = 0; tx < wp; tx++) vst1q_f32(row + 4 * tx, zero);
            continue;
        }
        for (size_t tx = 0; tx < pl && tx < wp; tx++) vst1q_f32(row + 4 * tx, zero);
        for (size_t tx = pl + iw; tx < wp; tx++) vst1q_f32(row + 4 * tx, zero);
    }
    size_t iy = 0, ix = 0;
    for (size_t q0 = 0; q0 < plane; q0 += 4) {
        const size_t n = plane - q0 < 4 ? plane - q0 : 4;
        float32x4_t r[4];
        for (size_t c = 0; c < 4; c++) r[c] = c < C ? load_n(b->x + c * plane + q0, n) : zero;
        transpose4(r);
        for (size_t j = 0; j < n; j++) {
            const size_t ty = iy + pt, tx = ix + pl;
            if (ty < hp && tx < wp) vst1q_f32(tile + (ty * wp + tx) * 4, r[j]);
            if (++ix == iw) ix = 0, iy++;
        }
    }
    float wt[9][4] = {{0}}, bt[4] = {0};
    for (size_t c = 0; c < C; c++) {
        for (size_t k = 0; k < 9; k++) wt[k][c] = b->w[c * 9 + k];
        if (b->bias != NULL) bt[c] = b->bias[c];
    }
    float32x4_t w[9];
    for (size_t k = 0; k < 9; k++) w[k] = vld1q_f32(wt[k]);
    const float32x4_t bias = vld1q_f32(bt);
    const float32x4_t lo = vdupq_n_f32(params->output_min), hi = vdupq_n_f32(params->output_max);
    const size_t dy = wp * 4;
    size_t oy = 0, ox = 0;
    for (size_t o0 = 0; o0 < oplane; o0 += 4) {
        const size_t n = oplane - o0 < 4 ? oplane - o0 : 4;
        float32x4_t a[4];
        for (size_t j = 0; j < 4; j++) {
            if (j >= n) {
                a[j] = zero;
                continue;
            }
            const float *x = tile + (oy * s * wp + ox * s) * 4;
            float32x4_t v = bias;
            v = vfmaq_f32(v, w[0], vld1q_f32(x));
            v = vfmaq_f32(v, w[1], vld1q_f32(x + 4));
            v = vfmaq_f32(v, w[2], vld1q_f32(x + 8));
            v = vfmaq_f32(v, w[3], vld1q_f32(x + dy));
            v = vfmaq_f32(v, w[4], vld1q_f32(x + dy + 4));
            v = vfmaq_f32(v, w[5], vld1q_f32(x + dy + 8));
            v = vfmaq_f32(v, w[6], vld1q_f32(x + 2 * dy));
            v = vfmaq_f32(v, w[7], vld1q_f32(x + 2 * dy + 4));
            v = vfmaq_f32(v, w[8], vld1q_f32(x + 2 * dy + 8));
            v = vbslq_f32(vcltq_f32(v, lo), lo, v); /* the reference's comparisons: -0 stays */
            a[j] = vbslq_f32(vcgtq_f32(v, hi), hi, v);
            if (++ox == ow) ox = 0, oy++;
        }
        transpose4(a);
        for (size_t c = 0; c < C; c++) store_n(b->y + c * oplane + o0, a[c], n);
    }
}
