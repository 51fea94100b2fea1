/* The int8 depthwise kernels that take taps in pairs (one int16 multiply-add
 * per pair: vpmaddwd, vpdpwssd): the pairs' input offsets and weights, the
 * same for every ISA. */
#ifndef CRISP_KERNELS_QS8_DWCONV_PAIRS_H
#define CRISP_KERNELS_QS8_DWCONV_PAIRS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/ukernels.h"

#define CRISP_QS8_DWCONV_MAX_PAIRS 32 /* kernels up to 64 taps (8 x 8) pair their taps */

/* off[2 np]: each tap's offset from an output pixel's base in the phase
 * planes; wp[np]: the pairs' weights as two int16 in one int32 (an odd last
 * tap pairs with weight 0 and repeats the last offset). Returns np; the
 * caller checks taps <= 2 * CRISP_QS8_DWCONV_MAX_PAIRS first. */
static inline size_t crisp_qs8_dwconv_pairs(const crisp_qs8_dwconv_plane *pl, const int8_t *w,
                                            size_t off[2 * CRISP_QS8_DWCONV_MAX_PAIRS],
                                            int32_t wp[CRISP_QS8_DWCONV_MAX_PAIRS]) {
    const size_t kw = pl->kernel_width, taps = pl->kernel_height * kw;
    const size_t s = pl->stride_width, d = pl->dilation_width;
    const size_t np = (taps + 1) / 2;
    for (size_t i = 0; i < 2 * np; i++) {
        const size_t t = i < taps ? i : taps - 1, ky = t / kw, kx = t % kw;
        off[i] = ky * pl->dilation_height * pl->phase_stride + (kx * d % s) * pl->phase_size +
                 kx * d / s;
    }
    for (size_t p = 0; p < np; p++) {
        const int32_t w1 = 2 * p + 1 < taps ? w[2 * p + 1] : 0;
        wp[p] = (int32_t)((uint32_t)(uint16_t)(int16_t)w[2 * p] | ((uint32_t)w1 << 16));
    }
    return np;
}

#endif
