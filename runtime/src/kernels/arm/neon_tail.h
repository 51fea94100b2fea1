/* Internal to the NEON kernels: load and store the first n lanes of a
 * vector (NEON has no masked loads or stores). */
#ifndef CRISP_KERNELS_ARM_NEON_TAIL_H
#define CRISP_KERNELS_ARM_NEON_TAIL_H

#include <arm_neon.h>
#include <stddef.h>
#include <string.h>

/* The first min(n, 4) floats at p, zeros after, reading nothing past them:
 * lane loads. The partial-tile kernels call it per k step, where a memcpy
 * into a stack tile was a library call per step (the int8 AVX2 kernels
 * measured such partial tiles at half their speed before the same change). */
static inline float32x4_t crisp_neon_load_n(const float *p, size_t n) {
    if (n >= 4) return vld1q_f32(p);
    float32x4_t v = vdupq_n_f32(0.0f);
    if (n > 0) v = vld1q_lane_f32(p, v, 0);
    if (n > 1) v = vld1q_lane_f32(p + 1, v, 1);
    if (n > 2) v = vld1q_lane_f32(p + 2, v, 2);
    return v;
}

/* Lanes 4v .. 4v + 3 of a row of nc floats (crisp_neon_load_n). */
static inline float32x4_t crisp_neon_load_part(const float *row, size_t nc, size_t v) {
    return nc > 4 * v ? crisp_neon_load_n(row + 4 * v, nc - 4 * v) : vdupq_n_f32(0.0f);
}

static inline void crisp_neon_store_n(float *p, float32x4_t v, size_t n) {
    if (n == 4) {
        vst1q_f32(p, v);
    } else {
        float tmp[4];
        vst1q_f32(tmp, v);
        memcpy(p, tmp, n * sizeof(float));
    }
}

#endif
