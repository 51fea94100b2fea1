/* float32 addition, AVX2: 32 elements per step, then 8, then the scalar
 * tail. vmaxps and vminps return their second operand when either is NaN:
 * max(lo, v) then min(hi, v) let NaN pass through as the reference does. */
#include <immintrin.h>

#include "kernels/common.h"
#include "kernels/ukernels.h"

static inline __m256 add(const float *a, const float *b, __m256 lo, __m256 hi) {
    const __m256 v = _mm256_add_ps(_mm256_loadu_ps(a), _mm256_loadu_ps(b));
    return _mm256_min_ps(hi, _mm256_max_ps(lo, v));
}

void crisp_f32_add_ukernel__avx2_fma(size_t n, const float *a, const float *b, float *y,
                                     const crisp_minmax_params *p) {
    const __m256 lo = _mm256_set1_ps(p->output_min), hi = _mm256_set1_ps(p->output_max);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256 v0 = add(a + i, b + i, lo, hi), v1 = add(a + i + 8, b + i + 8, lo, hi);
        const __m256 v2 = add(a + i + 16, b + i + 16, lo, hi);
        const __m256 v3 = add(a + i + 24, b + i + 24, lo, hi);
        _mm256_storeu_ps(y + i, v0);
        _mm256_storeu_ps(y + i + 8, v1);
        _mm256_storeu_ps(y + i + 16, v2);
        _mm256_storeu_ps(y + i + 24, v3);
    }
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, add(a + i, b + i, lo, hi));
    for (; i < n; i++) y[i] = crisp_clampf(a[i] + b[i], p->output_min, p->output_max);
}
