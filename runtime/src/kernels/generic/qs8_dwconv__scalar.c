/* int8 depthwise conv microkernel, portable C: 32 output pixels of int32
 * sums per chunk, each tap a contiguous read of the centred int16 phase
 * plane (ukernels.h, crisp_qs8_dwconv_plane), then crisp_qs8_requantize per
 * output. */
#include "kernels/common.h"
#include "kernels/ukernels.h"

#define CHUNK 32

void crisp_qs8_dwconv_ukernel__scalar(const crisp_qs8_dwconv_plane *pl, const int8_t *w, int32_t bias,
                           float multiplier, int8_t *out, const crisp_qs8_requant *q) {
    const size_t ow = pl->output_width, kh = pl->kernel_height, kw = pl->kernel_width;
    const size_t s = pl->stride_width, d = pl->dilation_width;
    for (size_t oy = 0; oy < pl->output_height; oy++) {
        int8_t *o = out + oy * ow;
        for (size_t ox0 = 0; ox0 < ow; ox0 += CHUNK) {
            const size_t n = ow - ox0 < CHUNK ? ow - ox0 : CHUNK;
            int32_t acc[CHUNK];
            for (size_t j = 0; j < CHUNK; j++) acc[j] = bias;
            for (size_t ky = 0; ky < kh; ky++) {
                const int16_t *row = pl->phases +
                                     (oy * pl->stride_height + ky * pl->dilation_height) *
                                         pl->phase_stride + ox0;
                for (size_t kx = 0; kx < kw; kx++) {
                    const int16_t *src = row + (kx * d % s) * pl->phase_size + kx * d / s;
                    const int32_t wv = w[ky * kw + kx];
                    for (size_t j = 0; j < CHUNK; j++) acc[j] += wv * src[j];
                }
            }
            for (size_t j = 0; j < n; j++)
                o[ox0 + j] = crisp_qs8_requantize((float)acc[j] * multiplier,
                                                  q->output_zero_point, q->output_min,
                                                  q->output_max);
        }
    }
}
