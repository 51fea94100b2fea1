/* Depthwise 3 x 3, channels in the lanes, AVX-512F (kernels/f32_dwconv_hwc.inc).
 * 1. The tile cells no input pixel lands in (the padding) are zeroed.
 * 2. The block's planes go in 16 pixels at a time: one (masked) row of 16
 *    pixels per channel, a 16 x 16 transpose, one store per pixel to its
 *    cell (ty, tx) = (iy + pt, ix + pl) of the tile (Hp x Wp cells of 16
 *    floats, Hp = (oh - 1) s + 3, Wp = (ow - 1) s + 3).
 * 3. Output pixels 16 at a time: per pixel the bias and nine FMAs, tap (ky,
 *    kx) at cell (oy s + ky, ox s + kx), in the plane kernels' tap order;
 *    the clamp; a transpose; one masked store per channel.
 * Weights per tap come from a masked gather (w[c * 9 + tap]). Channels past
 * `channels` are never read (their lanes are zero) nor written. */
#include <immintrin.h>

#include "kernels/ukernels.h"

#define T16(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)

static inline __m512 lo_pd(__m512 a, __m512 b) {
    return _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)));
}
static inline __m512 hi_pd(__m512 a, __m512 b) {
    return _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)));
}

/* r[i][j] -> r[j][i] for a 16 x 16 block of floats. */
static inline __attribute__((always_inline)) void transpose16(__m512 *r) {
    __m512 t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        u[i] = lo_pd(t[i], t[i + 2]);
        u[i + 1] = hi_pd(t[i], t[i + 2]);
        u[i + 2] = lo_pd(t[i + 1], t[i + 3]);
        u[i + 3] = hi_pd(t[i + 1], t[i + 3]);
    }
    for (int h = 0; h < 16; h += 8)
        for (int i = 0; i < 4; i++) {
            t[h + i] = _mm512_shuffle_f32x4(u[h + i], u[h + i + 4], 0x88);
            t[h + i + 4] = _mm512_shuffle_f32x4(u[h + i], u[h + i + 4], 0xdd);
        }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    }
}

void crisp_f32_dwconv_hwc_ukernel__avx512f(const crisp_dwconv_hwc_block *b,
                                          const crisp_minmax_params *params) {
    const size_t C = b->channels, ih = b->input_height, iw = b->input_width, s = b->stride;
    const size_t oh = b->output_height, ow = b->output_width;
    const size_t pt = b->padding_top, pl = b->padding_left;
    const size_t hp = (oh - 1) * s + 3, wp = (ow - 1) * s + 3;
    const size_t plane = ih * iw, oplane = oh * ow;
    float *const tile = b->tile;
    const __m512 zero = _mm512_setzero_ps();
    for (size_t ty = 0; ty < hp; ty++) {
        float *row = tile + ty * wp * 16;
        if (ty < pt || ty - pt >= ih) {
            for (size_t tx = 0; tx < wp; tx++) _mm512_storeu_ps(row + 16 * tx, zero);
            continue;
        }
        for (size_t tx = 0; tx < pl && tx < wp; tx++) _mm512_storeu_ps(row + 16 * tx, zero);
        for (size_t tx = pl + iw; tx < wp; tx++) _mm512_storeu_ps(row + 16 * tx, zero);
    }
    size_t iy = 0, ix = 0;
    for (size_t q0 = 0; q0 < plane; q0 += 16) {
        const size_t n = plane - q0 < 16 ? plane - q0 : 16;
        const __mmask16 m = (__mmask16)(n == 16 ? 0xFFFF : (1u << n) - 1);
        __m512 r[16];
        for (size_t c = 0; c < 16; c++)
            r[c] = c < C ? _mm512_maskz_loadu_ps(m, b->x + c * plane + q0) : zero;
        transpose16(r);
        for (size_t j = 0; j < n; j++) {
            const size_t ty = iy + pt, tx = ix + pl;
            if (ty < hp && tx < wp) _mm512_storeu_ps(tile + (ty * wp + tx) * 16, r[j]);
            if (++ix == iw) ix = 0, iy++;
        }
    }
    const __mmask16 cm = (__mmask16)(C >= 16 ? 0xFFFF : (1u << C) - 1);
    const __m512i nine = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                            _mm512_set1_epi32(9));
#define WTAP(k) const __m512 w##k = _mm512_mask_i32gather_ps(zero, cm, _mm512_add_epi32(nine, _mm512_set1_epi32(k)), b->w, 4);
    WTAP(0) WTAP(1) WTAP(2) WTAP(3) WTAP(4) WTAP(5) WTAP(6) WTAP(7) WTAP(8)
#undef WTAP
    const __m512 bias = b->bias != NULL ? _mm512_maskz_loadu_ps(cm, b->bias) : zero;
    const __m512 lo = _mm512_set1_ps(params->output_min), hi = _mm512_set1_ps(params->output_max);
    const size_t dy = wp * 16;
    size_t oy = 0, ox = 0;
    for (size_t o0 = 0; o0 < oplane; o0 += 16) {
        const size_t n = oplane - o0 < 16 ? oplane - o0 : 16;
        __m512 a[16];
        for (size_t j = 0; j < 16; j++) {
            if (j >= n) {
                a[j] = zero;
                continue;
            }
            const float *x = tile + (oy * s * wp + ox * s) * 16;
            __m512 v = bias;
            v = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x), v);
            v = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + 16), v);
            v = _mm512_fmadd_ps(w2, _mm512_loadu_ps(x + 32), v);
            v = _mm512_fmadd_ps(w3, _mm512_loadu_ps(x + dy), v);
            v = _mm512_fmadd_ps(w4, _mm512_loadu_ps(x + dy + 16), v);
            v = _mm512_fmadd_ps(w5, _mm512_loadu_ps(x + dy + 32), v);
            v = _mm512_fmadd_ps(w6, _mm512_loadu_ps(x + 2 * dy), v);
            v = _mm512_fmadd_ps(w7, _mm512_loadu_ps(x + 2 * dy + 16), v);
            v = _mm512_fmadd_ps(w8, _mm512_loadu_ps(x + 2 * dy + 32), v);
            a[j] = _mm512_min_ps(hi, _mm512_max_ps(lo, v));
            if (++ox == ow) ox = 0, oy++;
        }
        transpose16(a);
        const __mmask16 m = (__mmask16)(n == 16 ? 0xFFFF : (1u << n) - 1);
        for (size_t c = 0; c < C; c++) _mm512_mask_storeu_ps(b->y + c * oplane + o0, m, a[c]);
    }
}
