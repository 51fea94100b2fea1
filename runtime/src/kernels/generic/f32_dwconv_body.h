/* The depthwise conv microkernel's body, shared by every tier: included once
 * per ISA by a file that defines the vector type and operations below and is
 * compiled with that ISA's flags. A chunk is four vectors of output pixels
 * (four independent FMA chains); every tap of a chunk is a contiguous read of
 * a column phase (ukernels.h), so there are no gathers and no bounds checks:
 * the driver pads the end of the phase planes by CRISP_DWCONV_SLACK floats.
 *
 *   VEC                 vector type, VL float lanes
 *   VLOAD(p)            load VL floats (unaligned)
 *   VSET1(x)            broadcast
 *   VFMA(acc, w, x)     acc + w * x
 *   VCLAMP(v, lo, hi)   clamp keeping NaN (lo, hi are VEC)
 *   VSTORE_N(p, v, n)   store the first n <= VL lanes
 *
 * Max pooling reuses it (generic/f32_maxpool_*.c): VFMA then keeps the max
 * (NaN wins, as in torch), the "bias" is -inf and the weights are unused. */
#include "kernels/common.h"
#include "kernels/ukernels.h"

void CRISP_DWCONV_NAME(const crisp_dwconv_plane *pl, const float *w, float bias, float *out,
                       size_t oy0, size_t oy1, const crisp_minmax_params *params) {
    const size_t ow = pl->output_width, kh = pl->kernel_height, kw = pl->kernel_width;
    const size_t s = pl->stride_width, d = pl->dilation_width;
    const VEC lo = VSET1(params->output_min), hi = VSET1(params->output_max);
    for (size_t oy = oy0; oy < oy1; oy++) {
        float *o = out + oy * ow;
        for (size_t ox0 = 0; ox0 < ow; ox0 += 4 * VL) {
            const size_t n = ow - ox0 < 4 * VL ? ow - ox0 : 4 * VL;
            const size_t nv = (n + VL - 1) / VL;
            VEC a0 = VSET1(bias), a1 = a0, a2 = a0, a3 = a0;
            for (size_t ky = 0; ky < kh; ky++) {
                const float *row = pl->phases +
                                   (oy * pl->stride_height + ky * pl->dilation_height) *
                                       pl->phase_stride + ox0;
                for (size_t kx = 0; kx < kw; kx++) {
                    const float *src = row + (kx * d % s) * pl->phase_size + kx * d / s;
                    const VEC wv = VSET1(w != NULL ? w[ky * kw + kx] : 0.0f);
                    a0 = VFMA(a0, wv, VLOAD(src));
                    if (nv > 1) a1 = VFMA(a1, wv, VLOAD(src + VL));
                    if (nv > 2) a2 = VFMA(a2, wv, VLOAD(src + 2 * VL));
                    if (nv > 3) a3 = VFMA(a3, wv, VLOAD(src + 3 * VL));
                }
            }
            const VEC acc[4] = {a0, a1, a2, a3};
            for (size_t v = 0; v < nv; v++) {
                const size_t left = n - v * VL;
                VSTORE_N(o + ox0 + v * VL, VCLAMP(acc[v], lo, hi), left < VL ? left : VL);
            }
        }
    }
}
