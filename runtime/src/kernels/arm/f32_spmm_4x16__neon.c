/* Hybrid-sparse run microkernel, NEON (AArch64): up to 4 rows of a run x 16
 * pixels (16 q-register accumulators). Per kept column the run's B row is
 * loaded once and feeds every row of the chunk (runtime/README.md, "Optimised
 * kernels": rows of a run share every B load). Partial tiles go
 * through a zero-padded copy of the B row (NEON has no masked loads). */
#include <arm_neon.h>
#include <string.h>

#include "kernels/ukernels.h"
#include "kernels/arm/neon_tail.h"

static inline __attribute__((always_inline)) void chunk(size_t rows, size_t r0, size_t nc,
                                                        size_t entries, const uint32_t *column,
                                                        const float *w, const float *b,
                                                        size_t b_stride, float *c,
                                                        size_t c_stride, const float *bias,
                                                        const crisp_minmax_params *p,
                                                        const int rr) {
    float32x4_t acc[4][4];
    for (int i = 0; i < rr; i++) {
        const float32x4_t b0 = vdupq_n_f32(bias != NULL ? bias[r0 + (size_t)i] : 0.0f);
        for (int v = 0; v < 4; v++) acc[i][v] = b0;
    }
    const int full = nc == 16;
    const float *we = w + r0;
    for (size_t e = 0; e < entries; e++, we += rows) {
        const float *be = b + (size_t)column[e] * b_stride;
        float32x4_t bv[4];
        for (int v = 0; v < 4; v++)
            bv[v] = full ? vld1q_f32(be + 4 * v) : crisp_neon_load_part(be, nc, (size_t)v);
        for (int i = 0; i < rr; i++) {
            const float32x4_t wv = vld1q_dup_f32(we + i);
            for (int v = 0; v < 4; v++) acc[i][v] = vfmaq_f32(acc[i][v], wv, bv[v]);
        }
    }
    const float32x4_t lo = vdupq_n_f32(p->output_min), hi = vdupq_n_f32(p->output_max);
    for (int i = 0; i < rr; i++) {
        float out[16];
        for (int v = 0; v < 4; v++) vst1q_f32(out + 4 * v, vminq_f32(vmaxq_f32(acc[i][v], lo), hi));
        memcpy(c + (r0 + (size_t)i) * c_stride, out, nc * sizeof(float));
    }
}

void crisp_f32_spmm_ukernel_4x16__neon(size_t rows, size_t nc, size_t entries,
                                       const uint32_t *column, const float *w, const float *b,
                                       size_t b_stride, float *c, size_t c_stride,
                                       const float *bias, const crisp_minmax_params *params) {
    for (size_t r0 = 0; r0 < rows; r0 += 4) {
        switch (rows - r0 < 4 ? rows - r0 : 4) {
        case 1: chunk(rows, r0, nc, entries, column, w, b, b_stride, c, c_stride, bias, params, 1); break;
        case 2: chunk(rows, r0, nc, entries, column, w, b, b_stride, c, c_stride, bias, params, 2); break;
        case 3: chunk(rows, r0, nc, entries, column, w, b, b_stride, c, c_stride, bias, params, 3); break;
        default: chunk(rows, r0, nc, entries, column, w, b, b_stride, c, c_stride, bias, params, 4); break;
        }
    }
}
