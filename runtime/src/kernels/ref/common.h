/* Internal to the reference kernels: the int8 conv accumulator tile and the
 * int8 requantisation step. Helpers shared beyond them (the average-pooling
 * window, also used by src/backward.c) are kernels/common.h. */
#ifndef CRISP_KERNELS_REF_COMMON_H
#define CRISP_KERNELS_REF_COMMON_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/common.h"
#include "kernels/params.h"

/* Output pixels per int32 accumulator tile of the int8 conv kernels (on the stack). */
#define CRISP_QS8_TILE 64

/* The one rounding and clamping step of every int8 output: zero + nearbyintf
 * of an already scaled float, clamped to [lo, hi] (NaN gives lo), computed in
 * float so no out-of-range conversion to int can happen. */
static inline int8_t crisp_qs8_requantize(float scaled, int32_t zero, int32_t lo, int32_t hi) {
    float v = (float)zero + nearbyintf(scaled);
    v = v > (float)lo ? v : (float)lo;
    v = v < (float)hi ? v : (float)hi;
    return (int8_t)(int32_t)v;
}

#endif
