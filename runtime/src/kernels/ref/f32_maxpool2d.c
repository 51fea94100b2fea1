#include <math.h>
#include <stddef.h>

#include "kernels/ref.h"

/* torch.nn.MaxPool2d: padding reads as -inf and a NaN in the window wins.
 * The loader derived output_height/width with torch's ceil_mode rule, so
 * every window here starts inside the image or the top/left padding. */
void crisp_f32_maxpool2d__ref(const crisp_pool2d_params *p, const float *input,
                              float *output) {
    const ptrdiff_t ih = (ptrdiff_t)p->input_height, iw = (ptrdiff_t)p->input_width;
    for (size_t c = 0; c < p->channels; c++) {
        const float *plane = input + c * p->input_height * p->input_width;
        for (size_t oy = 0; oy < p->output_height; oy++) {
            const ptrdiff_t y0 = (ptrdiff_t)(oy * p->stride_height) - (ptrdiff_t)p->padding_height;
            for (size_t ox = 0; ox < p->output_width; ox++) {
                const ptrdiff_t x0 =
                    (ptrdiff_t)(ox * p->stride_width) - (ptrdiff_t)p->padding_width;
                float m = -INFINITY;
                for (size_t ky = 0; ky < p->kernel_height; ky++) {
                    const ptrdiff_t y = y0 + (ptrdiff_t)(ky * p->dilation_height);
                    if (y < 0 || y >= ih) continue;
                    for (size_t kx = 0; kx < p->kernel_width; kx++) {
                        const ptrdiff_t x = x0 + (ptrdiff_t)(kx * p->dilation_width);
                        if (x < 0 || x >= iw) continue;
                        const float v = plane[y * iw + x];
                        if (v > m || isnan(v)) m = v;
                    }
                }
                *output++ = m;
            }
        }
    }
}
