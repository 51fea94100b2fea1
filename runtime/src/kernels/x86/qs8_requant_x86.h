/* Internal to the int8 x86 kernels (and the YMM run kernels' partial-row
 * load, crisp_qs8_load_partial_avx2): the requantisation of int32 sums, the
 * vector form of crisp_qs8_requantize (kernels/common.h) with the same IEEE
 * operations in the same order: int32 -> float (round to nearest), one
 * multiply, round to nearest even, add of the zero point, clamp. The sums
 * are finite, so no NaN reaches the clamp and max/min act as its
 * comparisons; the clamped value is integral and in range, so the final
 * conversion and the saturating packs are exact. */
#ifndef CRISP_KERNELS_X86_QS8_REQUANT_X86_H
#define CRISP_KERNELS_X86_QS8_REQUANT_X86_H

#include <immintrin.h>
#include <stdint.h>

#include "kernels/common.h"
#include "kernels/params.h"

/* bias - z * weight_sum: the sums below add q_w * (q_x + z_x - z) where z
 * = z_x (s8 operands) or z_x - 128 (u8 operands, q_x + 128). In range: src/pack.c
 * guarantees |bias| + 255 * sum |q_w| <= INT32_MAX and |z_x - z| <= 255. */
static inline int32_t crisp_qs8_folded_bias(const crisp_qs8_requant *q, size_t r, int32_t z) {
    return (int32_t)((int64_t)q->bias[r] - (int64_t)z * q->weight_sum[r]);
}

/* The sum of a YMM register's eight int32 lanes (wrapping, as the kernels'
 * vector adds: their sums are exact, src/pack.c). */
static inline int32_t crisp_qs8_hsum_avx2(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

/* The first nc < 16 bytes of a B row, zero above, for the YMM run kernels'
 * partial tiles (no masked byte loads below AVX-512): whole dwords by a
 * masked load (masked-out ones are not read: the row may end the buffer),
 * the last 1-3 bytes into the next dword. No call: a memcpy would make the
 * compiler spill every YMM accumulator around it (all are caller-saved). */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline __m128i crisp_qs8_load_partial_avx2(const int8_t *p, size_t nc) {
    const int d = (int)(nc / 4);
    const __m128i lane = _mm_setr_epi32(0, 1, 2, 3);
    __m128i v = _mm_maskload_epi32((const int *)(const void *)p,
                                   _mm_cmpgt_epi32(_mm_set1_epi32(d), lane));
    if (nc % 4 != 0) {
        uint32_t tail = 0;
        for (size_t i = 4 * (size_t)d; i < nc; i++)
            tail |= (uint32_t)(uint8_t)p[i] << (8 * (i % 4));
        v = _mm_or_si128(v, _mm_and_si128(_mm_set1_epi32((int)tail),
                                          _mm_cmpeq_epi32(_mm_set1_epi32(d), lane)));
    }
    return v;
}

static inline __m256i crisp_qs8_requant_avx2(__m256i acc, float multiplier,
                                             const crisp_qs8_requant *q) {
    __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_set1_ps(multiplier));
    v = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm256_add_ps(_mm256_set1_ps((float)q->output_zero_point), v);
    v = _mm256_max_ps(v, _mm256_set1_ps((float)q->output_min));
    v = _mm256_min_ps(v, _mm256_set1_ps((float)q->output_max));
    return _mm256_cvtps_epi32(v);
}

#if defined(__AVX512F__)
/* The same requantisation in fewer operations, for the AVX-512 kernels:
 * clamp first, then round and convert, the zero point added to the
 * integers by the caller (after a pack to int16: one add per 32 outputs).
 * For every float v and integers z, lo <= hi:
 *   clamp(rint(v) + z, lo, hi) == cvt_rn(clamp(v, lo - z, hi - z)) + z,
 * because rint is monotone and leaves the integers lo - z and hi - z as they
 * are (exact in float: |lo - z|, |hi - z| <= 255), and the reference's float
 * add z + rint(v) can round only where |rint(v)| >= 2^23, far past either
 * bound, where both sides give the bound; v = +-inf (a huge multiplier)
 * gives the bound too. The result is in [lo - z, hi - z]. */
static inline __m512i crisp_qs8_requant_unzeroed_avx512(__m512i acc, __m512 multiplier,
                                                         __m512 lo_z, __m512 hi_z) {
    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), multiplier);
    v = _mm512_min_ps(_mm512_max_ps(v, lo_z), hi_z);
    return _mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

/* Fewer still where the op's products fit (crisp_qs8_finish, kernels/
 * common.h): v rounded to int32 by the conversion, rint(v) exactly, and the
 * clamp left to crisp_qs8_pack_avx512. */
static inline __m512i crisp_qs8_requant_fit_avx512(__m512i acc, __m512 multiplier) {
    const __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), multiplier);
    return _mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

/* Four vectors of either form above to 64 bytes in the packs' order (per
 * 128-bit lane l: lanes 4 l .. 4 l + 3 of a, b, c, d): z_y added to the
 * int16 halves with saturation, then, if clamp (a constant), the bytes
 * clamped to [lo, hi]. Exact for both: a clamped-first value is in [lo -
 * z_y, hi - z_y], so nothing saturates and it needs no byte clamp; the
 * rounded one is crisp_qs8_finish's CRISP_QS8_FIT (kernels/common.h). */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline __m512i crisp_qs8_pack_avx512(__m512i a, __m512i b, __m512i c, __m512i d,
                                            __m512i zy, __m512i lo, __m512i hi, int clamp) {
    const __m512i ab = _mm512_adds_epi16(_mm512_packs_epi32(a, b), zy);
    const __m512i cd = _mm512_adds_epi16(_mm512_packs_epi32(c, d), zy);
    const __m512i r = _mm512_packs_epi16(ab, cd);
    return clamp ? _mm512_min_epi8(_mm512_max_epi8(r, lo), hi) : r;
}

#endif

#endif
