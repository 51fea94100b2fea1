/* int8 dense GEMV microkernel, AVX2 (generic/qs8_gemv_body.h): 16 bytes of
 * K per step, x and the weights sign-extended to int16 and multiplied in
 * pairs into int32 lanes by vpmaddwd (|product| <= 2^14: its int32 pair
 * sums are exact, where vpmaddubsw's int16 ones of x + 128 would saturate). */
#include <immintrin.h>
#include <stdint.h>

#include "qs8_requant_x86.h"

static inline __m256i widen16(const int8_t *p) {
    return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)p));
}


#define CRISP_QS8_GEMV_NAME crisp_qs8_gemv_ukernel_4__avx2
#define XVEC __m256i
#define VL ((size_t)16)
#define ACC __m256i
#define ACC_ZERO() _mm256_setzero_si256()
#define XLOAD(p) widen16(p)
#define DOT(acc, w, xv) _mm256_add_epi32(acc, _mm256_madd_epi16(widen16(w), xv))
#define HSUM(acc) crisp_qs8_hsum_avx2(acc)
#define X_OFFSET 0
#include "kernels/generic/qs8_gemv_body.h"
