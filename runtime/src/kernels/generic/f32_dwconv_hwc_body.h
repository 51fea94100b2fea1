/* The channels-in-lanes depthwise 3 x 3 walk (kernels/f32_dwconv_hwc.inc),
 * shared by every tier: included once per ISA by a file that defines the
 * operations below and is compiled with that ISA's flags. VL channels per
 * call, one per lane:
 * 1. The tile cells no input pixel lands in (the padding) are zeroed.
 * 2. The block's planes go in VL pixels at a time: one row of VL pixels per
 *    channel, a VL x VL transpose, one store per pixel to its cell (ty, tx) =
 *    (iy + pt, ix + pl) of the tile (Hp x Wp cells of VL floats, Hp = (oh -
 *    1) s + 3, Wp = (ow - 1) s + 3).
 * 3. Output pixels VL at a time: per pixel the bias and nine FMAs, tap (ky,
 *    kx) at cell (oy s + ky, ox s + kx), in the plane kernels' tap order;
 *    the clamp; a transpose; one store of the pixels per channel.
 * Channels past `channels` are never read (their lanes are zero) nor
 * written.
 *
 *   VEC, VL, VZERO(), VLOAD(p), VSTORE(p, v), VFMA(acc, w, x) = acc + w * x,
 *   VCLAMP(v, lo, hi) (the tier's clamp), VSET1(x),
 *   VLOAD_N(p, n) (n <= VL floats, zero lanes above, nothing read past p[n - 1]),
 *   VSTORE_N(p, v, n) (the first n <= VL lanes), TRANSPOSE(VEC r[VL]) */
#include "kernels/ukernels.h"

void CRISP_DWCONV_HWC_NAME(const crisp_dwconv_hwc_block *b, const crisp_minmax_params *params) {
    const size_t C = b->channels, ih = b->input_height, iw = b->input_width, s = b->stride;
    const size_t oh = b->output_height, ow = b->output_width;
    const size_t pt = b->padding_top, pl = b->padding_left;
    const size_t hp = (oh - 1) * s + 3, wp = (ow - 1) * s + 3;
    const size_t plane = ih * iw, oplane = oh * ow;
    float *const tile = b->tile;
    const VEC zero = VZERO();
    for (size_t ty = 0; ty < hp; ty++) {
        float *row = tile + ty * wp * VL;
        if (ty < pt || ty - pt >= ih) {
            for (size_t tx = 0; tx < wp; tx++) VSTORE(row + VL * tx, zero);
            continue;
        }
        for (size_t tx = 0; tx < pl && tx < wp; tx++) VSTORE(row + VL * tx, zero);
        for (size_t tx = pl + iw; tx < wp; tx++) VSTORE(row + VL * tx, zero);
    }
    size_t iy = 0, ix = 0;
    for (size_t q0 = 0; q0 < plane; q0 += VL) {
        const size_t n = plane - q0 < VL ? plane - q0 : VL;
        VEC r[VL];
        for (size_t c = 0; c < VL; c++) r[c] = c < C ? VLOAD_N(b->x + c * plane + q0, n) : zero;
        TRANSPOSE(r);
        for (size_t j = 0; j < n; j++) {
            const size_t ty = iy + pt, tx = ix + pl;
            if (ty < hp && tx < wp) VSTORE(tile + (ty * wp + tx) * VL, r[j]);
            if (++ix == iw) ix = 0, iy++;
        }
    }
    /* Weights per tap and the bias, channels in lanes (zero past C). */
    float wt[9][VL] = {{0}}, bt[VL] = {0};
    for (size_t c = 0; c < C; c++) {
        for (size_t k = 0; k < 9; k++) wt[k][c] = b->w[c * 9 + k];
        if (b->bias != NULL) bt[c] = b->bias[c];
    }
    const VEC w0 = VLOAD(wt[0]), w1 = VLOAD(wt[1]), w2 = VLOAD(wt[2]);
    const VEC w3 = VLOAD(wt[3]), w4 = VLOAD(wt[4]), w5 = VLOAD(wt[5]);
    const VEC w6 = VLOAD(wt[6]), w7 = VLOAD(wt[7]), w8 = VLOAD(wt[8]);
    const VEC bias = VLOAD(bt);
    const VEC lo = VSET1(params->output_min), hi = VSET1(params->output_max);
    const size_t dy = wp * VL;
    size_t oy = 0, ox = 0;
    for (size_t o0 = 0; o0 < oplane; o0 += VL) {
        const size_t n = oplane - o0 < VL ? oplane - o0 : VL;
        VEC a[VL];
        for (size_t j = 0; j < VL; j++) {
            if (j >= n) {
                a[j] = zero;
                continue;
            }
            const float *x = tile + (oy * s * wp + ox * s) * VL;
            VEC v = bias;
            v = VFMA(v, w0, VLOAD(x));
            v = VFMA(v, w1, VLOAD(x + VL));
            v = VFMA(v, w2, VLOAD(x + 2 * VL));
            v = VFMA(v, w3, VLOAD(x + dy));
            v = VFMA(v, w4, VLOAD(x + dy + VL));
            v = VFMA(v, w5, VLOAD(x + dy + 2 * VL));
            v = VFMA(v, w6, VLOAD(x + 2 * dy));
            v = VFMA(v, w7, VLOAD(x + 2 * dy + VL));
            v = VFMA(v, w8, VLOAD(x + 2 * dy + 2 * VL));
            a[j] = VCLAMP(v, lo, hi);
            if (++ox == ow) ox = 0, oy++;
        }
        TRANSPOSE(a);
        for (size_t c = 0; c < C; c++) VSTORE_N(b->y + c * oplane + o0, a[c], n);
    }
}
