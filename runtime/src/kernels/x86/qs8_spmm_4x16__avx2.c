/* int8 hybrid run microkernel, AVX2: up to 4 rows of a run x 16 pixels.
 * vpmaddubsw would saturate (255 x 127 x 2 > 32767), so B is widened to
 * int16 and multiplied with vpmaddwd, whose pair sums of int16 products
 * cannot overflow int32. Per group of four kept columns (the packed layout
 * of src/pack.c) the B rows of columns 0 and 2 are interleaved into int16
 * pairs per pixel, and those of 1 and 3; a row's four weights, one 32-bit
 * broadcast, give (w0, w2) and (w1, w3) as int16 pairs by two shifts. So per
 * group and row, 16 pixels take four vpmaddwd. z_x comes out of the bias
 * once per row (weight_sum). */
#include <immintrin.h>
#include <string.h>

#include "kernels/ukernels.h"
#include "qs8_requant_x86.h"

#define ROWS(X) X(0) X(1) X(2) X(3)

/* 16 bytes of a B row; a partial tile's zero past nc (qs8_requant_x86.h:
 * a stack copy through memcpy had cost the partial tiles most of their time,
 * and its call made the compiler spill the accumulators). */
static inline __attribute__((always_inline)) __m128i load16(const int8_t *p, size_t nc,
                                                             const int full) {
    if (full) return _mm_loadu_si128((const __m128i *)(const void *)p);
    return crisp_qs8_load_partial_avx2(p, nc);
}

static inline __attribute__((always_inline)) void chunk(size_t rows, size_t nc, size_t entries,
                                                        const uint32_t *column, const int8_t *w,
                                                        const int8_t *b, size_t b_stride,
                                                        int8_t *c, size_t c_stride,
                                                        const crisp_qs8_requant *q,
                                                        const int rr, const int full) {
    const int32_t z = q->input_zero_point;
#define DECL(i) __m256i c##i##0 = _mm256_setzero_si256(), c##i##1 = _mm256_setzero_si256();
    ROWS(DECL)
#undef DECL
#define INIT(i) \
    if (rr > i) c##i##0 = c##i##1 = _mm256_set1_epi32(crisp_qs8_folded_bias(q, i, z));
    ROWS(INIT)
#undef INIT
    const size_t groups = (entries + 3) / 4;
    for (size_t g = 0; g < groups; g++) {
        const size_t e = 4 * g;
        uint32_t k[4];
        crisp_qs8_group_columns(column, e, entries, k);
        const __m128i x0 = load16(b + k[0] * b_stride, nc, full);
        const __m128i x1 = load16(b + k[1] * b_stride, nc, full);
        const __m128i x2 = load16(b + k[2] * b_stride, nc, full);
        const __m128i x3 = load16(b + k[3] * b_stride, nc, full);
        /* (x0, x2) and (x1, x3) pairs of pixels 0..7 (lo) and 8..15 (hi). */
        const __m256i e_lo = _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(x0, x2));
        const __m256i e_hi = _mm256_cvtepi8_epi16(_mm_unpackhi_epi8(x0, x2));
        const __m256i o_lo = _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(x1, x3));
        const __m256i o_hi = _mm256_cvtepi8_epi16(_mm_unpackhi_epi8(x1, x3));
        const int8_t *wg = w + e * rows;
#define ROW(i)                                                                               \
    if (rr > i) {                                                                            \
        int32_t w32;                                                                         \
        memcpy(&w32, wg + 4 * i, 4);                                                         \
        const __m256i wv = _mm256_set1_epi32(w32);                                           \
        const __m256i we = _mm256_srai_epi16(_mm256_slli_epi16(wv, 8), 8); /* w0, w2 */      \
        const __m256i wo = _mm256_srai_epi16(wv, 8);                       /* w1, w3 */      \
        c##i##0 = _mm256_add_epi32(c##i##0, _mm256_add_epi32(_mm256_madd_epi16(e_lo, we),    \
                                                             _mm256_madd_epi16(o_lo, wo)));  \
        c##i##1 = _mm256_add_epi32(c##i##1, _mm256_add_epi32(_mm256_madd_epi16(e_hi, we),    \
                                                             _mm256_madd_epi16(o_hi, wo)));  \
    }
        ROWS(ROW)
#undef ROW
    }
#define STORE(i)                                                                             \
    if (rr > i) {                                                                            \
        const float mult = q->multiplier[i];                                                 \
        const __m256i r16 = _mm256_packs_epi32(crisp_qs8_requant_avx2(c##i##0, mult, q),     \
                                               crisp_qs8_requant_avx2(c##i##1, mult, q));    \
        /* packs interleave the 128-bit halves: lanes 0 2 1 3 hold pixels 0-3 ... */        \
        const __m256i ord = _mm256_permute4x64_epi64(r16, 0xD8);                             \
        const __m128i r8 = _mm_packs_epi16(_mm256_castsi256_si128(ord),                      \
                                           _mm256_extracti128_si256(ord, 1));                \
        if (full) {                                                                          \
            _mm_storeu_si128((__m128i *)(void *)(c + i * c_stride), r8);                     \
        } else {                                                                             \
            int8_t tmp[16];                                                                  \
            _mm_storeu_si128((__m128i *)(void *)tmp, r8);                                    \
            memcpy(c + i * c_stride, tmp, nc);                                               \
        }                                                                                    \
    }
    ROWS(STORE)
#undef STORE
}

void crisp_qs8_spmm_ukernel_4x16__avx2(size_t rows, size_t nc, size_t entries,
                                       const uint32_t *column, const int8_t *w, const int8_t *b,
                                       size_t b_stride, int8_t *c, size_t c_stride,
                                       const crisp_qs8_requant *q) {
    for (size_t r0 = 0; r0 < rows; r0 += 4) {
        crisp_qs8_requant qr = *q;
        qr.bias += r0, qr.multiplier += r0, qr.weight_sum += r0;
        const int8_t *wr = w + 4 * r0;
        int8_t *cr = c + r0 * c_stride;
        const size_t rr = rows - r0 < 4 ? rows - r0 : 4;
#define CALL(n, nn, f) chunk(rows, nn, entries, column, wr, b, b_stride, cr, c_stride, &qr, n, f)
        if (nc == 16) {
            switch (rr) { case 1: CALL(1, 16, 1); break; case 2: CALL(2, 16, 1); break;
                          case 3: CALL(3, 16, 1); break; default: CALL(4, 16, 1); break; }
        } else {
            switch (rr) { case 1: CALL(1, nc, 0); break; case 2: CALL(2, nc, 0); break;
                          case 3: CALL(3, nc, 0); break; default: CALL(4, nc, 0); break; }
        }
#undef CALL
    }
}
