/* float32 hybrid linear runs at batch 1, NEON (kernels/f32_spmv.inc): rows a
 * multiple of 4 multiply each group of four rows' weights by the column's
 * input broadcast; a lone row multiplies four consecutive weights by four
 * inputs loaded lane by lane (no gather). Other heights: the portable loop. */
#include <arm_neon.h>

#include "kernels/common.h"
#include "kernels/ukernels.h"

void crisp_f32_spmv_ukernel__neon(size_t rows, size_t entries, const uint32_t *column,
                                  const float *w, const float *x, float *y, const float *bias,
                                  const crisp_minmax_params *p) {
    if (rows == 1) {
        float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
        size_t e = 0;
        for (; e + 8 <= entries; e += 8) {
            float32x4_t a = vld1q_dup_f32(x + column[e]), b = vld1q_dup_f32(x + column[e + 4]);
            a = vld1q_lane_f32(x + column[e + 1], a, 1), b = vld1q_lane_f32(x + column[e + 5], b, 1);
            a = vld1q_lane_f32(x + column[e + 2], a, 2), b = vld1q_lane_f32(x + column[e + 6], b, 2);
            a = vld1q_lane_f32(x + column[e + 3], a, 3), b = vld1q_lane_f32(x + column[e + 7], b, 3);
            acc0 = vfmaq_f32(acc0, vld1q_f32(w + e), a);
            acc1 = vfmaq_f32(acc1, vld1q_f32(w + e + 4), b);
        }
        float s = vaddvq_f32(vaddq_f32(acc0, acc1));
        for (; e < entries; e++) s += w[e] * x[column[e]];
        y[0] = crisp_clampf(s + (bias != NULL ? bias[0] : 0.0f), p->output_min, p->output_max);
        return;
    }
    if (rows % 4 != 0 || rows > 16) {
        crisp_f32_spmv_ukernel__scalar(rows, entries, column, w, x, y, bias, p);
        return;
    }
    for (size_t g = 0; g < rows; g += 4) {
        float32x4_t acc0 = bias != NULL ? vld1q_f32(bias + g) : vdupq_n_f32(0.0f);
        float32x4_t acc1 = vdupq_n_f32(0.0f);
        size_t e = 0;
        for (; e + 2 <= entries; e += 2) {
            acc0 = vfmaq_f32(acc0, vld1q_f32(w + e * rows + g), vld1q_dup_f32(x + column[e]));
            acc1 = vfmaq_f32(acc1, vld1q_f32(w + (e + 1) * rows + g), vld1q_dup_f32(x + column[e + 1]));
        }
        if (e < entries)
            acc0 = vfmaq_f32(acc0, vld1q_f32(w + e * rows + g), vld1q_dup_f32(x + column[e]));
        const float32x4_t lo = vdupq_n_f32(p->output_min), hi = vdupq_n_f32(p->output_max);
        float32x4_t v = vaddq_f32(acc0, acc1);
        v = vbslq_f32(vcltq_f32(v, lo), lo, v); /* the reference's comparisons: -0 stays */
        vst1q_f32(y + g, vbslq_f32(vcgtq_f32(v, hi), hi, v));
    }
}
