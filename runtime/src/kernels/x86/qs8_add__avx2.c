/* int8 addition, AVX2: 8 elements per step through int32 and float (the
 * reference's operations, kernels/qs8_add.inc), then the scalar tail. The
 * clamp is max(v, lo) then min(v, hi): vmaxps returns its second operand
 * when the first is NaN, as the reference's comparison does. The division by
 * the output scale becomes a multiply by its reciprocal where
 * crisp_qs8_add_prepare found that exact for every input pair. */
#include <immintrin.h>

#include "kernels/common.h"
#include "kernels/ukernels.h"

static inline __attribute__((always_inline)) void add(size_t n, const int8_t *a, const int8_t *b,
                                                       int8_t *y, const crisp_qs8_add_params *p,
                                                       int by_inverse) {
    const __m256i za = _mm256_set1_epi32(p->a_zero_point), zb = _mm256_set1_epi32(p->b_zero_point);
    const __m256 sa = _mm256_set1_ps(p->a_scale), sb = _mm256_set1_ps(p->b_scale);
    const __m256 sy = _mm256_set1_ps(by_inverse ? p->output_inverse : p->output_scale);
    const __m256 zy = _mm256_set1_ps((float)p->output_zero_point);
    const __m256 lo = _mm256_set1_ps((float)p->output_min), hi = _mm256_set1_ps((float)p->output_max);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i qa = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(a + i)));
        const __m256i qb = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(b + i)));
        const __m256 ra = _mm256_mul_ps(sa, _mm256_cvtepi32_ps(_mm256_sub_epi32(qa, za)));
        const __m256 rb = _mm256_mul_ps(sb, _mm256_cvtepi32_ps(_mm256_sub_epi32(qb, zb)));
        __m256 v = by_inverse ? _mm256_mul_ps(_mm256_add_ps(ra, rb), sy)
                              : _mm256_div_ps(_mm256_add_ps(ra, rb), sy);
        v = _mm256_add_ps(zy, _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
        const __m256i q = _mm256_cvtps_epi32(v);
        const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        _mm_storel_epi64((__m128i *)(void *)(y + i), _mm_packs_epi16(q16, q16));
    }
    for (; i < n; i++) y[i] = crisp_qs8_add_one(a[i], b[i], p);
}

void crisp_qs8_add_ukernel__avx2(size_t n, const int8_t *a, const int8_t *b, int8_t *y,
                                 const crisp_qs8_add_params *p) {
    if (p->by_inverse) add(n, a, b, y, p, 1);
    else add(n, a, b, y, p, 0);
}
