/* Depthwise 3 x 3, channels in the lanes, AVX2 (kernels/f32_dwconv_hwc.inc):
 * the AVX-512 variant's walk with 8 channels per call, 8 x 8 transposes and
 * partial rows (pixels or channels) through an 8-float buffer. */
#include <immintrin.h>
#include <string.h>

#include "kernels/ukernels.h"

/* r[i][j] -> r[j][i] for an 8 x 8 block of floats. */
static inline __attribute__((always_inline)) void transpose8(__m256 *r) {
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

static inline __m256 load_n(const float *p, size_t n) {
    if (n == 8) return _mm256_loadu_ps(p);
    float b[8] = {0};
    memcpy(b, p, n * sizeof *b);
    return _mm256_loadu_ps(b);
}

static inline void store_n(float *p, __m256 v, size_t n) {
    if (n == 8) {
        _mm256_storeu_ps(p, v);
        return;
    }
    float b[8];
    _mm256_storeu_ps(b, v);
    memcpy(p, b, n * sizeof *b);
}

void crisp_f32_dwconv_hwc_ukernel__avx2_fma(const crisp_dwconv_hwc_block *b,
                                           const crisp_minmax_params *params) {
    const size_t C = b->channels, ih = b->input_height, iw = b->input_width, s = b->stride;
    const size_t oh = b->output_height, ow = b->output_width;
    const size_t pt = b->padding_top, pl = b->padding_left;
    const size_t hp = (oh - 1) * s + 3, wp = (ow - 1) * s + 3;
    const size_t plane = ih * iw, oplane = oh * ow;
    float *const tile = b->tile;
    const __m256 zero = _mm256_setzero_ps();
    for (size_t ty = 0; ty < hp; ty++) {
        float *row = tile + ty * wp * 8;
        if (ty < pt || ty - pt >= ih) {
            for (size_t tx = 0; tx < wp; tx++) _mm256_storeu_ps(row + 8 * tx, zero);
            continue;
        }
        for (size_t tx = 0; tx < pl && tx < wp; tx++) _mm256_storeu_ps(row + 8 * tx, zero);
        for (size_t tx = pl + iw; tx < wp; tx++) _mm256_storeu_ps(row + 8 * tx, zero);
    }
    size_t iy = 0, ix = 0;
    for (size_t q0 = 0; q0 < plane; q0 += 8) {
        const size_t n = plane - q0 < 8 ? plane - q0 : 8;
        __m256 r[8];
        for (size_t c = 0; c < 8; c++) r[c] = c < C ? load_n(b->x + c * plane + q0, n) : zero;
        transpose8(r);
        for (size_t j = 0; j < n; j++) {
            const size_t ty = iy + pt, tx = ix + pl;
            if (ty < hp && tx < wp) _mm256_storeu_ps(tile + (ty * wp + tx) * 8, r[j]);
            if (++ix == iw) ix = 0, iy++;
        }
    }
    float wt[9][8] = {{0}}, bt[8] = {0};
    for (size_t c = 0; c < C; c++) {
        for (size_t k = 0; k < 9; k++) wt[k][c] = b->w[c * 9 + k];
        if (b->bias != NULL) bt[c] = b->bias[c];
    }
    const __m256 w0 = _mm256_loadu_ps(wt[0]), w1 = _mm256_loadu_ps(wt[1]), w2 = _mm256_loadu_ps(wt[2]);
    const __m256 w3 = _mm256_loadu_ps(wt[3]), w4 = _mm256_loadu_ps(wt[4]), w5 = _mm256_loadu_ps(wt[5]);
    const __m256 w6 = _mm256_loadu_ps(wt[6]), w7 = _mm256_loadu_ps(wt[7]), w8 = _mm256_loadu_ps(wt[8]);
    const __m256 bias = _mm256_loadu_ps(bt);
    const __m256 lo = _mm256_set1_ps(params->output_min), hi = _mm256_set1_ps(params->output_max);
    const size_t dy = wp * 8;
    size_t oy = 0, ox = 0;
    for (size_t o0 = 0; o0 < oplane; o0 += 8) {
        const size_t n = oplane - o0 < 8 ? oplane - o0 : 8;
        __m256 a[8];
        for (size_t j = 0; j < 8; j++) {
            if (j >= n) {
                a[j] = zero;
                continue;
            }
            const float *x = tile + (oy * s * wp + ox * s) * 8;
            __m256 v = bias;
            v = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x), v);
            v = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + 8), v);
            v = _mm256_fmadd_ps(w2, _mm256_loadu_ps(x + 16), v);
            v = _mm256_fmadd_ps(w3, _mm256_loadu_ps(x + dy), v);
            v = _mm256_fmadd_ps(w4, _mm256_loadu_ps(x + dy + 8), v);
            v = _mm256_fmadd_ps(w5, _mm256_loadu_ps(x + dy + 16), v);
            v = _mm256_fmadd_ps(w6, _mm256_loadu_ps(x + 2 * dy), v);
            v = _mm256_fmadd_ps(w7, _mm256_loadu_ps(x + 2 * dy + 8), v);
            v = _mm256_fmadd_ps(w8, _mm256_loadu_ps(x + 2 * dy + 16), v);
            a[j] = _mm256_min_ps(hi, _mm256_max_ps(lo, v));
            if (++ox == ow) ox = 0, oy++;
        }
        transpose8(a);
        for (size_t c = 0; c < C; c++) store_n(b->y + c * oplane + o0, a[c], n);
    }
}
