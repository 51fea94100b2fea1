/* Depthwise conv microkernels (phases and in place), AVX-512: 4 zmm per
 * chunk (64 output pixels), the shared body in generic/f32_dwconv_body.h;
 * partial vectors are stored, and column masks applied, with lane masks. */
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/ukernels.h"

#define CRISP_DWCONV_NAME crisp_f32_dwconv_ukernel__avx512f
#define VEC __m512
#define VL ((size_t)16)
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSET1(x) _mm512_set1_ps(x)
#define VFMA(acc, w, x) _mm512_fmadd_ps(w, x, acc)
/* max/min return their second operand when either is NaN: NaN survives. */
#define VCLAMP(v, lo, hi) _mm512_min_ps(hi, _mm512_max_ps(lo, v))
#define VSTORE_N(p, v, n) _mm512_mask_storeu_ps(p, (__mmask16)((1u << (n)) - 1), v)
#define CRISP_DWCONV_DIRECT_NAME crisp_f32_dwconv_direct_ukernel__avx512f
/* The column mask folds into the load: masked lanes are not read. */
#define VMASK __mmask16
#define VMASK_LOAD(p) crisp_avx512_lane_mask(p)
#define VLOADZ(p, m) _mm512_maskz_loadu_ps(m, p)
#define VLOAD2(p) crisp_avx512_even(p, (__mmask16)0xffff)
#define VLOAD2Z(p, m) crisp_avx512_even(p, m)
static inline __mmask16 crisp_avx512_lane_mask(const uint32_t *p) {
    const __m512i m = _mm512_loadu_si512(p);
    return _mm512_test_epi32_mask(m, m);
}
/* The even floats of p[0..31], 0 in the lanes m drops. */
static inline __m512 crisp_avx512_even(const float *p, __mmask16 m) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_maskz_permutex2var_ps(m, _mm512_loadu_ps(p), even, _mm512_loadu_ps(p + 16));
}

/* 3 x 3, stride 1, dilation 1, "same" padding (1 all round, output the
 * input's size), when the driver asks (crisp_dwconv_image.rows; from the
 * output width f32_dwconv_direct.inc gives): a row at a time in
 * vectors of 16 columns, two output rows per pass. Each input row vector is
 * loaded once (aligned to the row, the last one masked) for both output rows
 * it feeds, and its left and right neighbours come from valignd with the
 * vectors beside it, zeros past the row's ends, where the stream walk loads
 * all nine taps unaligned, six of them masked, per output vector. Padding
 * rows and columns are zeros either way and each output takes bias, then the
 * taps in (ky, kx) order, by FMA: bitwise the phase and stream kernels.
 * Measured on MobileNetV2's 112 x 112 and 56 x 56 planes (runtime/README.md,
 * "Optimised kernels"). */
static int direct_rows_3x3(const crisp_dwconv_image *im, const float *w, float bias,
                           float *out, const crisp_minmax_params *params) {
    const size_t ih = im->input_height, iw = im->input_width;
    if (!im->rows || im->kernel_height != 3 || im->kernel_width != 3 || im->stride != 1 ||
        im->dilation_height != 1 || im->dilation_width != 1 || im->padding_top != 1 ||
        im->padding_left != 1 || im->output_height != ih || im->output_width != iw)
        return 0;
    const size_t nv = (iw + 15) / 16;
    const __mmask16 tail = (__mmask16)(0xFFFFu >> (16 * nv - iw));
    const __m512 lo = _mm512_set1_ps(params->output_min), hi = _mm512_set1_ps(params->output_max);
    const __m512 b = _mm512_set1_ps(bias), zero = _mm512_setzero_ps();
    __m512 wk[9];
    for (size_t i = 0; i < 9; i++) wk[i] = _mm512_set1_ps(w[i]);
    for (size_t oy = 0; oy < ih; oy += 2) {
        const int two = oy + 1 < ih;
        /* Input rows oy - 1 .. oy + 2; NULL = a padding row. */
        const float *row[4];
        for (size_t k = 0; k < 4; k++) {
            const ptrdiff_t iy = (ptrdiff_t)oy - 1 + (ptrdiff_t)k;
            row[k] = iy >= 0 && iy < (ptrdiff_t)ih && (k < 3 || two) ? im->x + (size_t)iy * iw
                                                                       : NULL;
        }
        __m512 prev[4], cur[4];
        for (size_t k = 0; k < 4; k++) {
            prev[k] = zero;
            cur[k] = row[k] == NULL ? zero
                     : nv == 1      ? _mm512_maskz_loadu_ps(tail, row[k])
                                    : _mm512_loadu_ps(row[k]);
        }
        for (size_t j = 0; j < nv; j++) {
            __m512 a0 = b, a1 = b;
            for (size_t k = 0; k < 4; k++) {
                __m512 next = zero;
                if (row[k] != NULL && j + 1 < nv)
                    next = j + 2 == nv ? _mm512_maskz_loadu_ps(tail, row[k] + 16 * (j + 1))
                                       : _mm512_loadu_ps(row[k] + 16 * (j + 1));
                const __m512 left = _mm512_castsi512_ps(_mm512_alignr_epi32(
                    _mm512_castps_si512(cur[k]), _mm512_castps_si512(prev[k]), 15));
                const __m512 right = _mm512_castsi512_ps(_mm512_alignr_epi32(
                    _mm512_castps_si512(next), _mm512_castps_si512(cur[k]), 1));
                if (k < 3) { /* window row k of output row oy */
                    a0 = _mm512_fmadd_ps(wk[3 * k], left, a0);
                    a0 = _mm512_fmadd_ps(wk[3 * k + 1], cur[k], a0);
                    a0 = _mm512_fmadd_ps(wk[3 * k + 2], right, a0);
                }
                if (k > 0) { /* window row k - 1 of output row oy + 1 */
                    a1 = _mm512_fmadd_ps(wk[3 * k - 3], left, a1);
                    a1 = _mm512_fmadd_ps(wk[3 * k - 2], cur[k], a1);
                    a1 = _mm512_fmadd_ps(wk[3 * k - 1], right, a1);
                }
                prev[k] = cur[k];
                cur[k] = next;
            }
            const __mmask16 m = j + 1 == nv ? tail : (__mmask16)0xFFFF;
            _mm512_mask_storeu_ps(out + oy * iw + 16 * j, m, VCLAMP(a0, lo, hi));
            if (two) _mm512_mask_storeu_ps(out + (oy + 1) * iw + 16 * j, m, VCLAMP(a1, lo, hi));
        }
    }
    return 1;
}

/* The same at stride 2 (input rows 2 oy - 1 .. 2 oy + 1, columns 2 ox - 1 ..
 * 2 ox + 1): 32 input columns per vector of 16 outputs, split into their
 * even columns (the middle taps) and odd ones (the right taps; shifted one
 * lane by valignd with the vector before, the left taps); two output rows
 * per pass share their middle input row. */
static int direct_rows_3x3_s2(const crisp_dwconv_image *im, const float *w, float bias,
                              float *out, const crisp_minmax_params *params) {
    const size_t ih = im->input_height, iw = im->input_width;
    const size_t oh = im->output_height, ow = im->output_width;
    if (!im->rows || im->kernel_height != 3 || im->kernel_width != 3 || im->stride != 2 ||
        im->dilation_height != 1 || im->dilation_width != 1 || im->padding_top != 1 ||
        im->padding_left != 1 || 2 * ow > iw + 1 || 2 * oh > ih + 1)
        return 0;
    const size_t nv = (ow + 15) / 16;
    const __m512 lo = _mm512_set1_ps(params->output_min), hi = _mm512_set1_ps(params->output_max);
    const __m512 b = _mm512_set1_ps(bias), zero = _mm512_setzero_ps();
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    __m512 wk[9];
    for (size_t i = 0; i < 9; i++) wk[i] = _mm512_set1_ps(w[i]);
    for (size_t oy = 0; oy < oh; oy += 2) {
        const int two = oy + 1 < oh;
        /* Input rows 2 oy - 1 .. 2 oy + 3; NULL = a padding row. */
        const float *row[5];
        for (size_t k = 0; k < 5; k++) {
            const ptrdiff_t iy = 2 * (ptrdiff_t)oy - 1 + (ptrdiff_t)k;
            row[k] = iy >= 0 && iy < (ptrdiff_t)ih && (k < 3 || two) ? im->x + (size_t)iy * iw
                                                                       : NULL;
        }
        __m512 odd_prev[5];
        for (size_t k = 0; k < 5; k++) odd_prev[k] = zero;
        for (size_t j = 0; j < nv; j++) {
            /* Input columns 32 j .. 32 j + 31, zeros from iw on. */
            const size_t c0 = 32 * j, have = iw - c0 < 32 ? iw - c0 : 32;
            const __mmask16 ma = (__mmask16)(have >= 16 ? 0xFFFFu : 0xFFFFu >> (16 - have));
            const __mmask16 mb = (__mmask16)(have > 16 ? 0xFFFFu >> (32 - have) : 0);
            __m512 a0 = b, a1 = b;
            for (size_t k = 0; k < 5; k++) {
                __m512 e = zero, o = zero;
                if (row[k] != NULL) {
                    const __m512 va = _mm512_maskz_loadu_ps(ma, row[k] + c0);
                    const __m512 vb = _mm512_maskz_loadu_ps(mb, row[k] + c0 + 16);
                    e = _mm512_permutex2var_ps(va, even, vb);
                    o = _mm512_permutex2var_ps(va, odd, vb);
                }
                const __m512 left = _mm512_castsi512_ps(_mm512_alignr_epi32(
                    _mm512_castps_si512(o), _mm512_castps_si512(odd_prev[k]), 15));
                odd_prev[k] = o;
                if (k < 3) { /* window row k of output row oy */
                    a0 = _mm512_fmadd_ps(wk[3 * k], left, a0);
                    a0 = _mm512_fmadd_ps(wk[3 * k + 1], e, a0);
                    a0 = _mm512_fmadd_ps(wk[3 * k + 2], o, a0);
                }
                if (k >= 2) { /* window row k - 2 of output row oy + 1 */
                    a1 = _mm512_fmadd_ps(wk[3 * k - 6], left, a1);
                    a1 = _mm512_fmadd_ps(wk[3 * k - 5], e, a1);
                    a1 = _mm512_fmadd_ps(wk[3 * k - 4], o, a1);
                }
            }
            const size_t left_out = ow - 16 * j;
            const __mmask16 m = (__mmask16)(left_out >= 16 ? 0xFFFFu : 0xFFFFu >> (16 - left_out));
            _mm512_mask_storeu_ps(out + oy * ow + 16 * j, m, VCLAMP(a0, lo, hi));
            if (two) _mm512_mask_storeu_ps(out + (oy + 1) * ow + 16 * j, m, VCLAMP(a1, lo, hi));
        }
    }
    return 1;
}

static int direct_rows(const crisp_dwconv_image *im, const float *w, float bias, float *out,
                       const crisp_minmax_params *params) {
    return im->stride == 1 ? direct_rows_3x3(im, w, bias, out, params)
                           : direct_rows_3x3_s2(im, w, bias, out, params);
}
#define DIRECT_FAST_PATH direct_rows

#include "kernels/generic/f32_dwconv_body.h"
