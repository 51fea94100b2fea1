/* int8 dense GEMV microkernel, AVX-512 VNNI (generic/qs8_gemv_body.h): 64
 * bytes of K per step, x made unsigned (q_x + 128, one xor) for vpdpbusd's
 * u8 x s8 products, which it adds four at a time into int32 lanes without
 * saturation; K's tail in masked loads (zero weights add nothing). */
#include <immintrin.h>

#define CRISP_QS8_GEMV_NAME crisp_qs8_gemv_ukernel_4__avx512vnni
#define XVEC __m512i
#define VL ((size_t)64)
#define ACC __m512i
#define ACC_ZERO() _mm512_setzero_si512()
#define XLOAD(p) _mm512_xor_si512(_mm512_loadu_si512(p), _mm512_set1_epi8((char)0x80))
#define DOT(acc, w, xv) _mm512_dpbusd_epi32(acc, xv, _mm512_loadu_si512(w))
#define HSUM(acc) _mm512_reduce_add_epi32(acc)
#define X_OFFSET 128
#define TAIL_MASK_TYPE __mmask64
#define TAIL_MASK(n) ((((__mmask64)1) << (n)) - 1) /* n < 64 */
#define XLOAD_TAIL(p, m) \
    _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, p), _mm512_set1_epi8((char)0x80))
#define DOT_TAIL(acc, w, xv, m) _mm512_dpbusd_epi32(acc, xv, _mm512_maskz_loadu_epi8(m, w))
#include "kernels/generic/qs8_gemv_body.h"
