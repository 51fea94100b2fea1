#include <stddef.h>

#include "kernels/ref.h"
#include "kernels/ref/common.h"

/* Direct convolution, one output row at a time: the row stays in L1 while
 * every (input channel, tap) adds a scaled input row into it, and the
 * innermost loop runs over contiguous output pixels so it vectorises.
 * Items are (output channel, output row) pairs: oc * output_height + oy. */
void crisp_f32_conv2d__ref(const crisp_conv2d_params *p, const float *input,
                           const float *weight, const float *bias, float *output, size_t begin,
                           size_t end) {
    const size_t ih = p->input_height, iw = p->input_width;
    const size_t oh = p->output_height, ow = p->output_width;
    const size_t kh = p->kernel_height, kw = p->kernel_width, sw = p->stride_width;
    const size_t cin_g = p->input_channels / p->groups;
    const size_t cout_g = p->output_channels / p->groups;

    for (size_t item = begin; item < end; item++) {
        const size_t oc = item / oh, oy = item % oh, g = oc / cout_g;
        const float *w_oc = weight + oc * kh * kw * cin_g;
        const float b = bias != NULL ? bias[oc] : 0.0f;
        float *restrict out = output + (oc * oh + oy) * ow;
        for (size_t ox = 0; ox < ow; ox++) out[ox] = b;
        for (size_t ky = 0; ky < kh; ky++) {
            const ptrdiff_t iy = crisp_conv_input_row(oy, ky, p->stride_height, p->padding_top,
                                                      p->dilation_height, ih);
            if (iy < 0) continue;
            for (size_t kx = 0; kx < kw; kx++) {
                const ptrdiff_t offset =
                    (ptrdiff_t)(kx * p->dilation_width) - (ptrdiff_t)p->padding_left;
                size_t lo, hi;
                crisp_conv_valid_range(ow, iw, sw, offset, &lo, &hi);
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
            out[ox] = crisp_clampf(out[ox], p->minmax.output_min, p->minmax.output_max);
    }
}
