/* Depthwise conv microkernels (phases and in place), AVX2+FMA: 4 ymm per
 * chunk (32 output pixels), the shared body in generic/f32_dwconv_body.h;
 * column masks are ANDed after the load. */
#include <immintrin.h>

#include <stdint.h>

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
/* The row walks (generic/f32_dwconv_body.h): a lane across the halves by
 * vperm2f128 and vpalignr, the even and odd columns by shufps and vpermpd. */
#define VZERO _mm256_setzero_ps()
#define ROWS_LOAD_N(p, n) _mm256_maskload_ps(p, crisp_avx2_lanes(n))
#define ROWS_PREV(cur, prev) crisp_avx2_prev(cur, prev)
#define ROWS_NEXT(cur, next) crisp_avx2_next(cur, next)
#define ROWS_EVEN_ODD(a, b, even, odd)                                                       \
    do {                                                                                     \
        even = crisp_avx2_pairs(_mm256_shuffle_ps(a, b, 0x88));                              \
        odd = crisp_avx2_pairs(_mm256_shuffle_ps(a, b, 0xdd));                               \
    } while (0)
/* The mask of lanes 0 .. n - 1. */
static inline __m256i crisp_avx2_lanes(size_t n) {
    static const int32_t table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(const void *)(table + 8 - n));
}
/* [prev[7], cur[0 .. 6]]: [prev's high half | cur's low half], then per half
 * the 16 bytes ending 4 bytes into cur's half. */
static inline __m256 crisp_avx2_prev(__m256 cur, __m256 prev) {
    const __m256 t = _mm256_permute2f128_ps(prev, cur, 0x21);
    return _mm256_castsi256_ps(
        _mm256_alignr_epi8(_mm256_castps_si256(cur), _mm256_castps_si256(t), 12));
}
/* [cur[1 .. 7], next[0]]. */
static inline __m256 crisp_avx2_next(__m256 cur, __m256 next) {
    const __m256 t = _mm256_permute2f128_ps(cur, next, 0x21);
    return _mm256_castsi256_ps(
        _mm256_alignr_epi8(_mm256_castps_si256(t), _mm256_castps_si256(cur), 4));
}
/* shufps's (0 2 | 8 10) pairs per half back in order. */
static inline __m256 crisp_avx2_pairs(__m256 v) {
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), 0xd8));
}
#include "kernels/generic/f32_dwconv_body.h"
