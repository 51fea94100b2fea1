/* int8 depthwise conv microkernel, AVX-512F: 32 output pixels per chunk in
 * two int32 vectors; per tap 32 centred int16 inputs (one contiguous load of
 * the phase plane) widened and multiplied by the tap's weight; then the
 * requantisation with the reference's float operations in its order
 * (x86/qs8_requant_x86.h explains why that is bitwise), a scalar store of a
 * partial chunk. */
#include <immintrin.h>
#include <string.h>

#include "kernels/ukernels.h"

static inline __m512i requant(__m512i acc, float multiplier, const crisp_qs8_requant *q) {
    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_set1_ps(multiplier));
    v = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm512_add_ps(_mm512_set1_ps((float)q->output_zero_point), v);
    v = _mm512_max_ps(v, _mm512_set1_ps((float)q->output_min));
    v = _mm512_min_ps(v, _mm512_set1_ps((float)q->output_max));
    return _mm512_cvtps_epi32(v);
}

void crisp_qs8_dwconv_ukernel__avx512f(const crisp_qs8_dwconv_plane *pl, const int8_t *w,
                                       int32_t bias, float multiplier, int8_t *out,
                                       const crisp_qs8_requant *q) {
    const size_t ow = pl->output_width, kh = pl->kernel_height, kw = pl->kernel_width;
    const size_t s = pl->stride_width, d = pl->dilation_width;
    for (size_t oy = 0; oy < pl->output_height; oy++) {
        int8_t *o = out + oy * ow;
        for (size_t ox0 = 0; ox0 < ow; ox0 += 32) {
            const int two = ow - ox0 > 16; /* 7- and 14-pixel rows need one vector */
            __m512i a0 = _mm512_set1_epi32(bias), a1 = a0;
            for (size_t ky = 0; ky < kh; ky++) {
                const int16_t *row = pl->phases +
                                     (oy * pl->stride_height + ky * pl->dilation_height) *
                                         pl->phase_stride + ox0;
                for (size_t kx = 0; kx < kw; kx++) {
                    const int16_t *src = row + (kx * d % s) * pl->phase_size + kx * d / s;
                    const __m512i wv = _mm512_set1_epi32(w[ky * kw + kx]);
                    const __m256i x0 = _mm256_loadu_si256((const __m256i *)(const void *)src);
                    a0 = _mm512_add_epi32(a0, _mm512_mullo_epi32(wv, _mm512_cvtepi16_epi32(x0)));
                    if (two) {
                        const __m256i x1 =
                            _mm256_loadu_si256((const __m256i *)(const void *)(src + 16));
                        a1 = _mm512_add_epi32(a1,
                                              _mm512_mullo_epi32(wv, _mm512_cvtepi16_epi32(x1)));
                    }
                }
            }
            int8_t r[32];
            _mm_storeu_si128((__m128i *)(void *)r, _mm512_cvtsepi32_epi8(requant(a0, multiplier, q)));
            if (two)
                _mm_storeu_si128((__m128i *)(void *)(r + 16),
                                 _mm512_cvtsepi32_epi8(requant(a1, multiplier, q)));
            memcpy(o + ox0, r, ow - ox0 < 32 ? ow - ox0 : 32);
        }
    }
}
