/* int8 depthwise conv microkernel, AVX2: 32 output pixels per chunk in four
 * int32 vectors; per tap 32 centred int16 inputs widened and multiplied by
 * the tap's weight; then the requantisation with the reference's float
 * operations in its order (x86/qs8_requant_x86.h), a scalar store of a
 * partial chunk. */
#include <immintrin.h>
#include <string.h>

#include "kernels/ukernels.h"
#include "qs8_requant_x86.h"

static inline __m256i widen(const int16_t *p) {
    return _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
}

static inline __m128i narrow16(__m256i a, __m256i b) { /* 16 int32 in [-128, 127] -> int8 */
    const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xD8);
    return _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
}

void crisp_qs8_dwconv_ukernel__avx2(const crisp_qs8_dwconv_plane *pl, const int8_t *w,
                                    int32_t bias, float multiplier, int8_t *out,
                                    const crisp_qs8_requant *q) {
    const size_t ow = pl->output_width, kh = pl->kernel_height, kw = pl->kernel_width;
    const size_t s = pl->stride_width, d = pl->dilation_width;
    for (size_t oy = 0; oy < pl->output_height; oy++) {
        int8_t *o = out + oy * ow;
        for (size_t ox0 = 0; ox0 < ow; ox0 += 32) {
            __m256i a0 = _mm256_set1_epi32(bias), a1 = a0, a2 = a0, a3 = a0;
            for (size_t ky = 0; ky < kh; ky++) {
                const int16_t *row = pl->phases +
                                     (oy * pl->stride_height + ky * pl->dilation_height) *
                                         pl->phase_stride + ox0;
                for (size_t kx = 0; kx < kw; kx++) {
                    const int16_t *src = row + (kx * d % s) * pl->phase_size + kx * d / s;
                    const __m256i wv = _mm256_set1_epi32(w[ky * kw + kx]);
                    a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(wv, widen(src)));
                    a1 = _mm256_add_epi32(a1, _mm256_mullo_epi32(wv, widen(src + 8)));
                    a2 = _mm256_add_epi32(a2, _mm256_mullo_epi32(wv, widen(src + 16)));
                    a3 = _mm256_add_epi32(a3, _mm256_mullo_epi32(wv, widen(src + 24)));
                }
            }
            int8_t r[32];
            _mm_storeu_si128((__m128i *)(void *)r,
                             narrow16(crisp_qs8_requant_avx2(a0, multiplier, q),
                                      crisp_qs8_requant_avx2(a1, multiplier, q)));
            _mm_storeu_si128((__m128i *)(void *)(r + 16),
                             narrow16(crisp_qs8_requant_avx2(a2, multiplier, q),
                                      crisp_qs8_requant_avx2(a3, multiplier, q)));
            memcpy(o + ox0, r, ow - ox0 < 32 ? ow - ox0 : 32);
        }
    }
}
