/* Dense GEMV microkernel, AVX2+FMA (generic/f32_gemv_body.h): 8 lanes of K
 * per row accumulator. */
#include <immintrin.h>

static inline float sum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#define CRISP_GEMV_NAME crisp_f32_gemv_ukernel_4__avx2_fma
#define VEC __m256
#define VL ((size_t)8)
#define VZERO() _mm256_setzero_ps()
#define VLOAD(p) _mm256_loadu_ps(p)
#define VFMA(acc, w, x) _mm256_fmadd_ps(w, x, acc)
#define VSUM(v) sum8(v)
#include "kernels/generic/f32_gemv_body.h"
