#include <stddef.h>
#include <stdint.h>

#include "kernels/ref.h"
#include "kernels/ref/common.h"

/* int8 direct convolution with the f32 kernel's structure: for each
 * (output channel, output row) item, int32 accumulators for a tile of the
 * row take (q_x - z_x) * q_w from every in-image tap (padding reads the zero
 * point and so adds nothing), then requantise. Integer accumulation is
 * exact, so the order of the taps does not matter. */
void crisp_qs8_conv2d__ref(const crisp_qs8_conv2d_params *qp, const int8_t *input,
                           const int8_t *weight, int8_t *output, size_t begin, size_t end) {
    const crisp_conv2d_params *p = &qp->conv;
    const crisp_qs8_requant *q = &qp->q;
    const size_t ih = p->input_height, iw = p->input_width;
    const size_t oh = p->output_height, ow = p->output_width;
    const size_t kh = p->kernel_height, kw = p->kernel_width, sw = p->stride_width;
    const size_t cin_g = p->input_channels / p->groups;
    const size_t cout_g = p->output_channels / p->groups;
    const int32_t zx = q->input_zero_point;

    for (size_t item = begin; item < end; item++) {
        const size_t oc = item / oh, oy = item % oh, g = oc / cout_g;
        const int8_t *w_oc = weight + oc * kh * kw * cin_g;
        int8_t *out = output + (oc * oh + oy) * ow;
        for (size_t x0 = 0; x0 < ow; x0 += CRISP_QS8_TILE) {
            const size_t x1 = ow - x0 < CRISP_QS8_TILE ? ow : x0 + CRISP_QS8_TILE;
            int32_t acc[CRISP_QS8_TILE];
            for (size_t j = 0; j < x1 - x0; j++) acc[j] = q->bias[oc];
            for (size_t ky = 0; ky < kh; ky++) {
                const ptrdiff_t iy = crisp_conv_input_row(oy, ky, p->stride_height,
                                                          p->padding_top, p->dilation_height, ih);
                if (iy < 0) continue;
                for (size_t kx = 0; kx < kw; kx++) {
                    const ptrdiff_t offset =
                        (ptrdiff_t)(kx * p->dilation_width) - (ptrdiff_t)p->padding_left;
                    size_t lo, hi;
                    crisp_conv_valid_range(ow, iw, sw, offset, &lo, &hi);
                    lo = lo > x0 ? lo : x0;
                    hi = hi < x1 ? hi : x1;
                    if (lo >= hi) continue;
                    const int8_t *w_tap = w_oc + (ky * kw + kx) * cin_g;
                    const size_t ix0 = (size_t)((ptrdiff_t)(lo * sw) + offset);
                    int32_t *a = acc + (lo - x0);
                    for (size_t ic = 0; ic < cin_g; ic++) {
                        const int32_t w = w_tap[ic];
                        const int8_t *in = input + ((g * cin_g + ic) * ih + (size_t)iy) * iw + ix0;
                        for (size_t j = 0; j < hi - lo; j++) a[j] += ((int32_t)in[j * sw] - zx) * w;
                    }
                }
            }
            for (size_t j = x0; j < x1; j++)
                out[j] = crisp_qs8_requantize((float)acc[j - x0] * q->multiplier[oc],
                                              q->output_zero_point, q->output_min, q->output_max);
        }
    }
}
