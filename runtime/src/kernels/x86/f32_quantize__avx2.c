/* float32 -> int8 quantisation, AVX2: 8 elements per step (the reference's
 * operations, kernels/f32_quantize.inc), then the scalar tail. vmaxps
 * returns its second operand when the first is NaN: NaN gives -128, as the
 * reference's comparison does. */
#include <immintrin.h>

#include "kernels/common.h"
#include "kernels/ukernels.h"

void crisp_f32_quantize_ukernel__avx2(size_t n, const float *x, int8_t *y,
                                      const crisp_qs8_quantize_params *p) {
    const __m256 scale = _mm256_set1_ps(p->scale), zero = _mm256_set1_ps((float)p->zero_point);
    const __m256 lo = _mm256_set1_ps(-128.0f), hi = _mm256_set1_ps(127.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_div_ps(_mm256_loadu_ps(x + i), scale);
        v = _mm256_add_ps(zero, _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
        const __m256i q = _mm256_cvtps_epi32(v);
        const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        _mm_storel_epi64((__m128i *)(void *)(y + i), _mm_packs_epi16(q16, q16));
    }
    for (; i < n; i++) y[i] = crisp_qs8_requantize(x[i] / p->scale, p->zero_point, -128, 127);
}
