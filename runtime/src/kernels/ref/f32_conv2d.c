#include <stddef.h>

#include "kernels/ref.h"

/* Output pixels ox in [lo, hi) read input column ox*stride + offset inside
 * [0, width); the rest of the row reads padding and contributes nothing. */
static void valid_range(size_t out_size, size_t in_size, size_t stride, ptrdiff_t offset,
                        size_t *lo, size_t *hi) {
    ptrdiff_t s = (ptrdiff_t)stride;
    ptrdiff_t first = offset >= 0 ? 0 : (-offset + s - 1) / s;
    ptrdiff_t last_in = (ptrdiff_t)in_size - 1 - offset; /* ox*stride <= last_in */
    ptrdiff_t end = last_in < 0 ? 0 : last_in / s + 1;
    if (end > (ptrdiff_t)out_size) end = (ptrdiff_t)out_size;
    if (first > end) first = end;
    *lo = (size_t)first;
    *hi = (size_t)end;
}

static inline float clamp(float v, float lo, float hi) {
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

/* Direct convolution, one output row at a time: the row stays in L1 while
 * every (input channel, tap) adds a scaled input row into it, and the
 * innermost loop runs over contiguous output pixels so it vectorises. */
void crisp_f32_conv2d__ref(const crisp_conv2d_params *p, const float *input,
                           const float *weight, const float *bias, float *output) {
    const size_t ih = p->input_height, iw = p->input_width;
    const size_t oh = p->output_height, ow = p->output_width;
    const size_t kh = p->kernel_height, kw = p->kernel_width;
    const size_t sh = p->stride_height, sw = p->stride_width;
    const size_t cin_g = p->input_channels / p->groups;
    const size_t cout_g = p->output_channels / p->groups;

    for (size_t oc = 0; oc < p->output_channels; oc++) {
        const size_t g = oc / cout_g;
        const float *w_oc = weight + oc * kh * kw * cin_g;
        const float b = bias != NULL ? bias[oc] : 0.0f;
        for (size_t oy = 0; oy < oh; oy++) {
            float *restrict out = output + (oc * oh + oy) * ow;
            for (size_t ox = 0; ox < ow; ox++) out[ox] = b;
            for (size_t ky = 0; ky < kh; ky++) {
                const ptrdiff_t iy = (ptrdiff_t)(oy * sh) - (ptrdiff_t)p->padding_top +
                                     (ptrdiff_t)(ky * p->dilation_height);
                if (iy < 0 || iy >= (ptrdiff_t)ih) continue;
                for (size_t kx = 0; kx < kw; kx++) {
                    const ptrdiff_t offset =
                        (ptrdiff_t)(kx * p->dilation_width) - (ptrdiff_t)p->padding_left;
                    size_t lo, hi;
                    valid_range(ow, iw, sw, offset, &lo, &hi);
                    if (lo >= hi) continue;
                    const float *w_tap = w_oc + (ky * kw + kx) * cin_g;
                    /* First input column read; >= 0 by construction of lo. */
                    const size_t ix0 = (size_t)((ptrdiff_t)(lo * sw) + offset);
                    const size_t n = hi - lo;
                    float *restrict out_lo = out + lo;
                    for (size_t ic = 0; ic < cin_g; ic++) {
                        const float w = w_tap[ic];
                        const float *restrict in =
                            input + ((g * cin_g + ic) * ih + (size_t)iy) * iw + ix0;
                        if (sw == 1) {
                            for (size_t j = 0; j < n; j++) out_lo[j] += w * in[j];
                        } else {
                            for (size_t j = 0; j < n; j++) out_lo[j] += w * in[j * sw];
                        }
                    }
                }
            }
            for (size_t ox = 0; ox < ow; ox++)
                out[ox] = clamp(out[ox], p->minmax.output_min, p->minmax.output_max);
        }
    }
}
