/* float32 -> int8 quantisation, AVX-512F: 16 elements per step (the
 * reference's operations, kernels/f32_quantize.inc), then the scalar tail.
 * vmaxps returns its second operand when the first is NaN: NaN gives -128,
 * as the reference's comparison does. */
#include <immintrin.h>

#include "kernels/common.h"
#include "kernels/ukernels.h"

void crisp_f32_quantize_ukernel__avx512f(size_t n, const float *x, int8_t *y,
                                         const crisp_qs8_quantize_params *p) {
    const __m512 scale = _mm512_set1_ps(p->scale), zero = _mm512_set1_ps((float)p->zero_point);
    const __m512 lo = _mm512_set1_ps(-128.0f), hi = _mm512_set1_ps(127.0f);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_div_ps(_mm512_loadu_ps(x + i), scale);
        v = _mm512_add_ps(zero, _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
        _mm_storeu_si128((__m128i *)(void *)(y + i), _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(v)));
    }
    for (; i < n; i++) y[i] = crisp_qs8_requantize(x[i] / p->scale, p->zero_point, -128, 127);
}
