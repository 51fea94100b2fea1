/* The int8 max-pooling microkernel's body, shared by every tier: included
 * once per ISA by a file that defines CRISP_QS8_MAXPOOL_NAME and is compiled
 * with that ISA's flags (byte max needs SSE4.1 or AVX2 to vectorise on x86;
 * AArch64's baseline has it). Each output row starts at -128 (a window
 * entirely in padding stays there, as in the reference) and takes, per
 * kernel tap inside the image, the max with the input elements of the tap's
 * valid output range (kernels/common.h), so the inner loops have no bounds
 * checks and vectorise. */
#include <string.h>

#include "kernels/common.h"
#include "kernels/ukernels.h"

void CRISP_QS8_MAXPOOL_NAME(const crisp_pool2d_params *p, const int8_t *x, int8_t *y) {
    const size_t ow = p->output_width, iw = p->input_width, sw = p->stride_width;
    for (size_t oy = 0; oy < p->output_height; oy++) {
        int8_t *row = y + oy * ow;
        memset(row, INT8_MIN, ow);
        for (size_t ky = 0; ky < p->kernel_height; ky++) {
            const ptrdiff_t iy = crisp_conv_input_row(oy, ky, p->stride_height, p->padding_height,
                                                      p->dilation_height, p->input_height);
            if (iy < 0) continue;
            for (size_t kx = 0; kx < p->kernel_width; kx++) {
                const ptrdiff_t offset =
                    (ptrdiff_t)(kx * p->dilation_width) - (ptrdiff_t)p->padding_width;
                size_t lo, hi;
                crisp_conv_valid_range(ow, iw, sw, offset, &lo, &hi);
                if (lo >= hi) continue;
                /* Output ox reads in[ox * sw], in range for ox in [lo, hi). */
                const int8_t *in = x + (size_t)iy * iw + (size_t)((ptrdiff_t)(lo * sw) + offset);
                int8_t *out = row + lo;
                if (sw == 1) {
                    for (size_t j = 0; j < hi - lo; j++) out[j] = in[j] > out[j] ? in[j] : out[j];
                } else if (sw == 2) { /* a constant stride: this loop vectorises */
                    for (size_t j = 0; j < hi - lo; j++) {
                        const int8_t v = in[2 * j];
                        out[j] = v > out[j] ? v : out[j];
                    }
                } else {
                    for (size_t j = 0; j < hi - lo; j++) {
                        const int8_t v = in[j * sw];
                        out[j] = v > out[j] ? v : out[j];
                    }
                }
            }
        }
    }
}
