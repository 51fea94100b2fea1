/* int8 depthwise conv microkernel, AVX-512 VNNI: taps in pairs, so one
 * vpdpwssd multiplies two taps' centred int16 inputs by their weights and
 * adds both to the int32 sums (|q_x - z_x| <= 255, |q_w| <= 127: no
 * overflow; the add wraps like any int32 vector add, and the exact sum is in
 * range). Each pair's two
 * input vectors (contiguous reads of the phase plane) are interleaved by
 * unpacks, which work within 128-bit lanes: with 32 pixels per chunk, lane l
 * of accumulator 0 holds pixels 8 (l / 4) + l % 4 and accumulator 1 the next
 * four; the epilogue's 32-bit unpacks restore the order. Rows of at most 16
 * pixels (7 and 14 at the end of MobileNet) take 256-bit vectors. The
 * requantisation is the reference's float operations in its order
 * (x86/qs8_requant_x86.h explains why that is bitwise). */
#include <immintrin.h>
#include <string.h>

#include "kernels/ukernels.h"
#include "kernels/qs8_dwconv_pairs.h"
#include "qs8_requant_x86.h"


static inline __m512i requant(__m512i acc, float multiplier, const crisp_qs8_requant *q) {
    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_set1_ps(multiplier));
    v = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm512_add_ps(_mm512_set1_ps((float)q->output_zero_point), v);
    v = _mm512_max_ps(v, _mm512_set1_ps((float)q->output_min));
    v = _mm512_min_ps(v, _mm512_set1_ps((float)q->output_max));
    return _mm512_cvtps_epi32(v);
}

void crisp_qs8_dwconv_ukernel__avx512vnni(const crisp_qs8_dwconv_plane *pl, const int8_t *w,
                                          int32_t bias, float multiplier, int8_t *out,
                                          const crisp_qs8_requant *q) {
    const size_t ow = pl->output_width, taps = pl->kernel_height * pl->kernel_width;
    if (taps > 2 * CRISP_QS8_DWCONV_MAX_PAIRS) {
        crisp_qs8_dwconv_ukernel__avx512f(pl, w, bias, multiplier, out, q);
        return;
    }
    /* The tap pairs: offsets from (oy, ox0)'s base, weights as int16 pairs. */
    size_t off[2 * CRISP_QS8_DWCONV_MAX_PAIRS];
    int32_t wp[CRISP_QS8_DWCONV_MAX_PAIRS];
    const size_t np = crisp_qs8_dwconv_pairs(pl, w, off, wp);
    for (size_t oy = 0; oy < pl->output_height; oy++) {
        int8_t *o = out + oy * ow;
        const int16_t *base_row = pl->phases + oy * pl->stride_height * pl->phase_stride;
        for (size_t ox0 = 0; ox0 < ow; ox0 += 32) {
            const int16_t *base = base_row + ox0;
            const size_t n = ow - ox0 < 32 ? ow - ox0 : 32;
            if (n > 16) {
                __m512i a0 = _mm512_set1_epi32(bias), a1 = a0;
                for (size_t p = 0; p < np; p++) {
                    const __m512i x0 = _mm512_loadu_si512((const void *)(base + off[2 * p]));
                    const __m512i x1 = _mm512_loadu_si512((const void *)(base + off[2 * p + 1]));
                    const __m512i wv = _mm512_set1_epi32(wp[p]);
                    a0 = _mm512_dpwssd_epi32(a0, _mm512_unpacklo_epi16(x0, x1), wv);
                    a1 = _mm512_dpwssd_epi32(a1, _mm512_unpackhi_epi16(x0, x1), wv);
                }
                const __m128i r0 = _mm512_cvtsepi32_epi8(requant(a0, multiplier, q));
                const __m128i r1 = _mm512_cvtsepi32_epi8(requant(a1, multiplier, q));
                int8_t r[32];
                _mm_storeu_si128((__m128i *)(void *)r, _mm_unpacklo_epi32(r0, r1));
                _mm_storeu_si128((__m128i *)(void *)(r + 16), _mm_unpackhi_epi32(r0, r1));
                memcpy(o + ox0, r, n);
            } else {
                __m256i a0 = _mm256_set1_epi32(bias), a1 = a0;
                for (size_t p = 0; p < np; p++) {
                    const __m256i x0 = _mm256_loadu_si256((const __m256i *)(const void *)(base + off[2 * p]));
                    const __m256i x1 = _mm256_loadu_si256((const __m256i *)(const void *)(base + off[2 * p + 1]));
                    const __m256i wv = _mm256_set1_epi32(wp[p]);
                    a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_unpacklo_epi16(x0, x1), wv));
                    a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_unpackhi_epi16(x0, x1), wv));
                }
                /* packs work per lane too: lane l = pixels 8 l .. 8 l + 7 in order. */
                const __m256i r16 = _mm256_packs_epi32(crisp_qs8_requant_avx2(a0, multiplier, q),
                                                       crisp_qs8_requant_avx2(a1, multiplier, q));
                int8_t r[16];
                _mm_storeu_si128((__m128i *)(void *)r,
                                 _mm_packs_epi16(_mm256_castsi256_si128(r16),
                                                 _mm256_extracti128_si256(r16, 1)));
                memcpy(o + ox0, r, n);
            }
        }
    }
}
