#include <stddef.h>
#include <stdint.h>

#include "kernels/ref.h"

/* As crisp_f32_maxpool2d__ref on q (max commutes with the monotone
 * dequantisation, and the output keeps the input's scale and zero point). */
void crisp_qs8_maxpool2d__ref(const crisp_pool2d_params *p, const int8_t *input,
                              int8_t *output) {
    const ptrdiff_t ih = (ptrdiff_t)p->input_height, iw = (ptrdiff_t)p->input_width;
    for (size_t c = 0; c < p->channels; c++) {
        const int8_t *plane = input + c * p->input_height * p->input_width;
        for (size_t oy = 0; oy < p->output_height; oy++) {
            const ptrdiff_t y0 = (ptrdiff_t)(oy * p->stride_height) - (ptrdiff_t)p->padding_height;
            for (size_t ox = 0; ox < p->output_width; ox++) {
                const ptrdiff_t x0 =
                    (ptrdiff_t)(ox * p->stride_width) - (ptrdiff_t)p->padding_width;
                int8_t m = INT8_MIN;
                for (size_t ky = 0; ky < p->kernel_height; ky++) {
                    const ptrdiff_t y = y0 + (ptrdiff_t)(ky * p->dilation_height);
                    if (y < 0 || y >= ih) continue;
                    for (size_t kx = 0; kx < p->kernel_width; kx++) {
                        const ptrdiff_t x = x0 + (ptrdiff_t)(kx * p->dilation_width);
                        if (x >= 0 && x < iw && plane[y * iw + x] > m) m = plane[y * iw + x];
                    }
                }
                *output++ = m;
            }
        }
    }
}
