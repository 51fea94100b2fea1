/* int8 depthwise conv microkernel, AVX2: taps in pairs, so one vpmaddwd
 * multiplies two taps' centred int16 inputs by their weights and adds them
 * in int32 (|q_x - z_x| <= 255, |q_w| <= 127: no overflow). 16 output
 * pixels per chunk; the unpacks that interleave a pair's inputs work within
 * 128-bit lanes, and the packs of the epilogue work the same way, which
 * restores pixel order. The requantisation is the reference's float
 * operations in its order (x86/qs8_requant_x86.h). */
#include <immintrin.h>
#include <string.h>

#include "kernels/ukernels.h"
#include "kernels/qs8_dwconv_pairs.h"
#include "qs8_requant_x86.h"

static inline __m256i widen(const int16_t *p) {
    return _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
}

static inline __m128i narrow16(__m256i a, __m256i b) { /* 16 int32 in [-128, 127] -> int8 */
    const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xD8);
    return _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
}

/* More than 64 taps: one tap at a time, widened and multiplied in int32. */
static void any_taps(const crisp_qs8_dwconv_plane *pl, const int8_t *w, int32_t bias,
                     float multiplier, int8_t *out, const crisp_qs8_requant *q) {
    const size_t ow = pl->output_width, kh = pl->kernel_height, kw = pl->kernel_width;
    const size_t s = pl->stride_width, d = pl->dilation_width;
    for (size_t oy = 0; oy < pl->output_height; oy++) {
        int8_t *o = out + oy * ow;
        for (size_t ox0 = 0; ox0 < ow; ox0 += 32) {
            __m256i a0 = _mm256_set1_epi32(bias), a1 = a0, a2 = a0, a3 = a0;
            for (size_t ky = 0; ky < kh; ky++) {
                const int16_t *row = pl->phases +
                                     (oy * pl->stride_height + ky * pl->dilation_height) *
                                         pl->phase_stride + ox0;
                for (size_t kx = 0; kx < kw; kx++) {
                    const int16_t *src = row + (kx * d % s) * pl->phase_size + kx * d / s;
                    const __m256i wv = _mm256_set1_epi32(w[ky * kw + kx]);
                    a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(wv, widen(src)));
                    a1 = _mm256_add_epi32(a1, _mm256_mullo_epi32(wv, widen(src + 8)));
                    a2 = _mm256_add_epi32(a2, _mm256_mullo_epi32(wv, widen(src + 16)));
                    a3 = _mm256_add_epi32(a3, _mm256_mullo_epi32(wv, widen(src + 24)));
                }
            }
            int8_t r[32];
            _mm_storeu_si128((__m128i *)(void *)r,
                             narrow16(crisp_qs8_requant_avx2(a0, multiplier, q),
                                      crisp_qs8_requant_avx2(a1, multiplier, q)));
            _mm_storeu_si128((__m128i *)(void *)(r + 16),
                             narrow16(crisp_qs8_requant_avx2(a2, multiplier, q),
                                      crisp_qs8_requant_avx2(a3, multiplier, q)));
            memcpy(o + ox0, r, ow - ox0 < 32 ? ow - ox0 : 32);
        }
    }
}


void crisp_qs8_dwconv_ukernel__avx2(const crisp_qs8_dwconv_plane *pl, const int8_t *w,
                                    int32_t bias, float multiplier, int8_t *out,
                                    const crisp_qs8_requant *q) {
    const size_t ow = pl->output_width, taps = pl->kernel_height * pl->kernel_width;
    if (taps > 2 * CRISP_QS8_DWCONV_MAX_PAIRS) {
        any_taps(pl, w, bias, multiplier, out, q);
        return;
    }
    /* The tap pairs: offsets from (oy, ox0)'s base, weights as int16 pairs. */
    size_t off[2 * CRISP_QS8_DWCONV_MAX_PAIRS];
    int32_t wp[CRISP_QS8_DWCONV_MAX_PAIRS];
    const size_t np = crisp_qs8_dwconv_pairs(pl, w, off, wp);
    for (size_t oy = 0; oy < pl->output_height; oy++) {
        int8_t *o = out + oy * ow;
        const int16_t *base_row = pl->phases + oy * pl->stride_height * pl->phase_stride;
        for (size_t ox0 = 0; ox0 < ow; ox0 += 16) {
            const int16_t *base = base_row + ox0;
            __m256i a0 = _mm256_set1_epi32(bias), a1 = a0;
            for (size_t p = 0; p < np; p++) {
                const __m256i x0 = _mm256_loadu_si256((const __m256i *)(const void *)(base + off[2 * p]));
                const __m256i x1 = _mm256_loadu_si256((const __m256i *)(const void *)(base + off[2 * p + 1]));
                const __m256i wv = _mm256_set1_epi32(wp[p]);
                a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_unpacklo_epi16(x0, x1), wv));
                a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_unpackhi_epi16(x0, x1), wv));
            }
            /* lane l of a0: pixels 8 l .. 8 l + 3, of a1: 8 l + 4 .. 8 l + 7; packs per lane. */
            const __m256i r16 = _mm256_packs_epi32(crisp_qs8_requant_avx2(a0, multiplier, q),
                                                   crisp_qs8_requant_avx2(a1, multiplier, q));
            int8_t r[16];
            _mm_storeu_si128((__m128i *)(void *)r, _mm_packs_epi16(_mm256_castsi256_si128(r16),
                                                                   _mm256_extracti128_si256(r16, 1)));
            memcpy(o + ox0, r, ow - ox0 < 16 ? ow - ox0 : 16);
        }
    }
}
