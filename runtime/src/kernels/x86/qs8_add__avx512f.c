/* int8 addition, AVX-512F: 16 elements per step through int32 and float
 * (the reference's operations, kernels/qs8_add.inc), then the scalar tail.
 * The clamp is max(v, lo) then min(v, hi): vmaxps returns its second operand
 * when the first is NaN, as the reference's comparison does. The division by
 * the output scale becomes a multiply by its reciprocal where
 * crisp_qs8_add_prepare found that exact for every input pair. */
#include <immintrin.h>

#include "kernels/common.h"
#include "kernels/ukernels.h"

static inline __attribute__((always_inline)) void add(size_t n, const int8_t *a, const int8_t *b,
                                                       int8_t *y, const crisp_qs8_add_params *p,
                                                       int by_inverse) {
    const __m512i za = _mm512_set1_epi32(p->a_zero_point), zb = _mm512_set1_epi32(p->b_zero_point);
    const __m512 sa = _mm512_set1_ps(p->a_scale), sb = _mm512_set1_ps(p->b_scale);
    const __m512 sy = _mm512_set1_ps(by_inverse ? p->output_inverse : p->output_scale);
    const __m512 zy = _mm512_set1_ps((float)p->output_zero_point);
    const __m512 lo = _mm512_set1_ps((float)p->output_min), hi = _mm512_set1_ps((float)p->output_max);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512i qa = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(a + i)));
        const __m512i qb = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(b + i)));
        const __m512 ra = _mm512_mul_ps(sa, _mm512_cvtepi32_ps(_mm512_sub_epi32(qa, za)));
        const __m512 rb = _mm512_mul_ps(sb, _mm512_cvtepi32_ps(_mm512_sub_epi32(qb, zb)));
        __m512 v = by_inverse ? _mm512_mul_ps(_mm512_add_ps(ra, rb), sy)
                              : _mm512_div_ps(_mm512_add_ps(ra, rb), sy);
        v = _mm512_add_ps(zy, _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
        _mm_storeu_si128((__m128i *)(void *)(y + i), _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(v)));
    }
    for (; i < n; i++) y[i] = crisp_qs8_add_one(a[i], b[i], p);
}

void crisp_qs8_add_ukernel__avx512f(size_t n, const int8_t *a, const int8_t *b, int8_t *y,
                                    const crisp_qs8_add_params *p) {
    if (p->by_inverse) add(n, a, b, y, p, 1);
    else add(n, a, b, y, p, 0);
}
