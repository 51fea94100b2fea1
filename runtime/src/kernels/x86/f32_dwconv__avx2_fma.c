/* Depthwise conv microkernels (phases and in place), AVX2+FMA: 4 ymm per
 * chunk (32 output pixels), the shared body in generic/f32_dwconv_body.h;
 * column masks are ANDed after the load. */
#include <immintrin.h>

#include "kernels/x86/avx2_tail.h"

#define CRISP_DWCONV_NAME crisp_f32_dwconv_ukernel__avx2_fma
#define VEC __m256
#define VL ((size_t)8)
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSET1(x) _mm256_set1_ps(x)
#define VFMA(acc, w, x) _mm256_fmadd_ps(w, x, acc)
/* max/min return their second operand when either is NaN: NaN survives. */
#define VCLAMP(v, lo, hi) _mm256_min_ps(hi, _mm256_max_ps(lo, v))
#define VSTORE_N(p, v, n) crisp_avx2_store_n(p, v, n)
#define CRISP_DWCONV_DIRECT_NAME crisp_f32_dwconv_direct_ukernel__avx2_fma
#define VMASK __m256
#define VMASK_LOAD(p) _mm256_loadu_ps((const float *)(const void *)(p))
#define VLOADZ(p, m) _mm256_and_ps(_mm256_loadu_ps(p), m)
#define VLOAD2(p) crisp_avx2_even(p)
#define VLOAD2Z(p, m) _mm256_and_ps(crisp_avx2_even(p), m)
/* The even floats of p[0..15]: shufps picks (0 2 | 8 10) per 128-bit half,
 * vpermpd puts the 64-bit pairs back in order. */
static inline __m256 crisp_avx2_even(const float *p) {
    const __m256 pairs = _mm256_shuffle_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8), 0x88);
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(pairs), 0xd8));
}
#include "kernels/generic/f32_dwconv_body.h"
