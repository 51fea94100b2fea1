/* Internal to the NEON kernels: store the first n <= 4 lanes of a vector
 * (NEON has no masked stores). */
#ifndef CRISP_KERNELS_ARM_NEON_TAIL_H
#define CRISP_KERNELS_ARM_NEON_TAIL_H

#include <arm_neon.h>
#include <stddef.h>
#include <string.h>

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
