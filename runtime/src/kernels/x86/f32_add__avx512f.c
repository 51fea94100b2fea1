/* float32 addition, AVX-512F: 64 elements per step (four vectors, so the
 * loads of both inputs stream ahead), then 16, then a masked tail (masked-off
 * lanes touch no memory). The clamp is max(lo, v) then min(hi, v): vmaxps and
 * vminps return their second operand when either is NaN, so NaN passes
 * through as in the reference's comparisons (kernels/common.h). */
#include <immintrin.h>

#include "kernels/ukernels.h"

static inline __m512 add(const float *a, const float *b, __m512 lo, __m512 hi, __mmask16 m) {
    const __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, a), _mm512_maskz_loadu_ps(m, b));
    return _mm512_min_ps(hi, _mm512_max_ps(lo, v));
}

void crisp_f32_add_ukernel__avx512f(size_t n, const float *a, const float *b, float *y,
                                    const crisp_minmax_params *p) {
    const __m512 lo = _mm512_set1_ps(p->output_min), hi = _mm512_set1_ps(p->output_max);
    const __mmask16 all = (__mmask16)0xFFFF;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        const __m512 v0 = add(a + i, b + i, lo, hi, all);
        const __m512 v1 = add(a + i + 16, b + i + 16, lo, hi, all);
        const __m512 v2 = add(a + i + 32, b + i + 32, lo, hi, all);
        const __m512 v3 = add(a + i + 48, b + i + 48, lo, hi, all);
        _mm512_storeu_ps(y + i, v0);
        _mm512_storeu_ps(y + i + 16, v1);
        _mm512_storeu_ps(y + i + 32, v2);
        _mm512_storeu_ps(y + i + 48, v3);
    }
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, add(a + i, b + i, lo, hi, all));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, add(a + i, b + i, lo, hi, m));
    }
}
