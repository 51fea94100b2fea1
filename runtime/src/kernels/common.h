/* Helpers shared by the reference kernels, the optimised microkernels and
 * their drivers (src/conv_fast.c): conv window geometry and the float clamp
 * of fused activations. */
#ifndef CRISP_KERNELS_COMMON_H
#define CRISP_KERNELS_COMMON_H

#include <stddef.h>

/* Output pixels ox in [lo, hi) read input column ox*stride + offset inside
 * [0, width); the rest of the row reads padding and contributes nothing
 * (zero for float, the zero point - so again nothing - for int8). */
static inline void crisp_conv_valid_range(size_t out_size, size_t in_size, size_t stride,
                                          ptrdiff_t offset, size_t *lo, size_t *hi) {
    const ptrdiff_t s = (ptrdiff_t)stride;
    ptrdiff_t first = offset >= 0 ? 0 : (-offset + s - 1) / s;
    const ptrdiff_t last_in = (ptrdiff_t)in_size - 1 - offset; /* ox*stride <= last_in */
    ptrdiff_t end = last_in < 0 ? 0 : last_in / s + 1;
    if (end > (ptrdiff_t)out_size) end = (ptrdiff_t)out_size;
    if (first > end) first = end;
    *lo = (size_t)first;
    *hi = (size_t)end;
}

/* Input row of output row oy for kernel row ky, or -1 when it is padding. */
static inline ptrdiff_t crisp_conv_input_row(size_t oy, size_t ky, size_t stride, size_t pad,
                                             size_t dilation, size_t in_height) {
    const ptrdiff_t iy = (ptrdiff_t)(oy * stride) - (ptrdiff_t)pad + (ptrdiff_t)(ky * dilation);
    return iy < 0 || iy >= (ptrdiff_t)in_height ? -1 : iy;
}

static inline float crisp_clampf(float v, float lo, float hi) {
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

#endif
