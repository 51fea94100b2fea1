/* int8 hybrid linear run microkernel, AVX2 (generic/qs8_spmv_body.h): inputs
 * gathered as int16 (q_x + 128), weights widened to int16, vpmaddwd adds
 * pairs of products into int32 lanes (vpmaddubsw would saturate at 2 x 255 x
 * 127). A group's four inputs are one 64-bit broadcast for four rows. */
#include <immintrin.h>
#include <stdint.h>

#include "qs8_requant_x86.h"

#define CRISP_QS8_SPMV_NAME crisp_qs8_spmv_ukernel__avx2
#define XB int16_t
#define X_OFFSET 128
#define ACC __m256i
#define ACC_ZERO() _mm256_setzero_si256()

static inline __m256i widen16(const int8_t *w) {
    return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)w));
}
static inline __m256i dot16(__m256i acc, const int8_t *w, const int16_t *xb) {
    const __m256i xv = _mm256_loadu_si256((const __m256i *)(const void *)xb);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(widen16(w), xv));
}
static inline __m256i dotg(__m256i acc, const int8_t *w, const int16_t *xb) {
    long long v;
    __builtin_memcpy(&v, xb, 8);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(widen16(w), _mm256_set1_epi64x(v)));
}
/* Lanes 2k and 2k + 1 hold row k's two pair sums. */
static inline void rows4(__m256i acc, int32_t out[4]) {
    const __m256i h = _mm256_hadd_epi32(acc, acc); /* r0 r1 r0 r1 | r2 r3 r2 r3 */
    const __m128i r = _mm_unpacklo_epi64(_mm256_castsi256_si128(h),
                                         _mm256_extracti128_si256(h, 1));
    _mm_storeu_si128((__m128i *)(void *)out, r);
}
#define DOT16(acc, w, xb) dot16(acc, w, xb)
#define DOTG(acc, w, xb) dotg(acc, w, xb)
#define HSUM(acc) crisp_qs8_hsum_avx2(acc)
#define ROWS4(acc, out) rows4(acc, out)
#include "kernels/generic/qs8_spmv_body.h"
