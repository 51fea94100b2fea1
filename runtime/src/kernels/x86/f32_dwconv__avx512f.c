/* Depthwise conv microkernels (phases and in place), AVX-512: 4 zmm per
 * chunk (64 output pixels), the shared body in generic/f32_dwconv_body.h;
 * partial vectors are stored, and column masks applied, with lane masks. */
#include <immintrin.h>
#include <stdint.h>

#define CRISP_DWCONV_NAME crisp_f32_dwconv_ukernel__avx512f
#define VEC __m512
#define VL ((size_t)16)
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSET1(x) _mm512_set1_ps(x)
#define VFMA(acc, w, x) _mm512_fmadd_ps(w, x, acc)
/* max/min return their second operand when either is NaN: NaN survives. */
#define VCLAMP(v, lo, hi) _mm512_min_ps(hi, _mm512_max_ps(lo, v))
#define VSTORE_N(p, v, n) _mm512_mask_storeu_ps(p, (__mmask16)((1u << (n)) - 1), v)
#define CRISP_DWCONV_DIRECT_NAME crisp_f32_dwconv_direct_ukernel__avx512f
/* The column mask folds into the load: masked lanes are not read. */
#define VMASK __mmask16
#define VMASK_LOAD(p) crisp_avx512_lane_mask(p)
#define VLOADZ(p, m) _mm512_maskz_loadu_ps(m, p)
#define VLOAD2(p) crisp_avx512_even(p, (__mmask16)0xffff)
#define VLOAD2Z(p, m) crisp_avx512_even(p, m)
static inline __mmask16 crisp_avx512_lane_mask(const uint32_t *p) {
    const __m512i m = _mm512_loadu_si512(p);
    return _mm512_test_epi32_mask(m, m);
}
/* The even floats of p[0..31], 0 in the lanes m drops. */
static inline __m512 crisp_avx512_even(const float *p, __mmask16 m) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_maskz_permutex2var_ps(m, _mm512_loadu_ps(p), even, _mm512_loadu_ps(p + 16));
}

/* The row walks (generic/f32_dwconv_body.h): valignd for the neighbours,
 * vpermt2ps for the even and odd columns. */
#define VZERO _mm512_setzero_ps()
#define ROWS_LOAD_N(p, n) _mm512_maskz_loadu_ps((__mmask16)((1u << (n)) - 1), p)
#define ROWS_PREV(cur, prev)                                                                 \
    _mm512_castsi512_ps(                                                                     \
        _mm512_alignr_epi32(_mm512_castps_si512(cur), _mm512_castps_si512(prev), 15))
#define ROWS_NEXT(cur, next)                                                                 \
    _mm512_castsi512_ps(                                                                     \
        _mm512_alignr_epi32(_mm512_castps_si512(next), _mm512_castps_si512(cur), 1))
#define ROWS_EVEN_ODD(a, b, even, odd)                                                       \
    do {                                                                                     \
        even = _mm512_permutex2var_ps(                                                       \
            a, _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), b); \
        odd = _mm512_permutex2var_ps(                                                        \
            a, _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31), b); \
    } while (0)

#include "kernels/generic/f32_dwconv_body.h"
