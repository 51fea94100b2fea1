/* int8 hybrid run microkernel, AVX-512 VNNI: up to 4 rows of a run x 64
 * pixels. Per group of four kept columns the four B rows are loaded (masked
 * to nc), made unsigned (q_x + 128) and interleaved so each 32-bit lane holds
 * one pixel's four bytes; then each row's four weights (one 32-bit broadcast,
 * the packed layout of src/pack.c) meet them in one vpdpbusd per 16 pixels:
 * with V = 4 rows sharing their kept columns, one interleave feeds 16 of
 * them. The 128 and z_x come out of the bias once per row (weight_sum).
 * vpdpbusd adds u8 x s8 products in int32 without saturation; int32 adds
 * wrap, and the exact sum is in int32 range (src/pack.c), so it is exact.
 * The unpacks work within 128-bit lanes, so lane l of accumulator j holds
 * pixel 16 (l / 4) + 4 j + l % 4; the packs of the epilogue work the same
 * way and restore pixel order. Accumulators are named variables. */
#include <immintrin.h>

#include "kernels/ukernels.h"
#include "qs8_requant_x86.h"

#define VECS(X, i) X(i, 0) X(i, 1) X(i, 2) X(i, 3)
#define ROWS(X) X(0) X(1) X(2) X(3)

static inline int32_t load32(const int8_t *p) {
    int32_t v;
    __builtin_memcpy(&v, p, 4);
    return v;
}

static inline __attribute__((always_inline)) void chunk(size_t rows, __mmask64 m,
                                                        size_t entries, const uint32_t *column,
                                                        const int8_t *w, const int8_t *b,
                                                        size_t b_stride, int8_t *c,
                                                        size_t c_stride,
                                                        const crisp_qs8_requant *q,
                                                        const int rr) {
    const int32_t z = q->input_zero_point + 128;
#define DECL(i, v) __m512i c##i##v = _mm512_setzero_si512();
#define DECL_ROW(i) VECS(DECL, i)
    ROWS(DECL_ROW)
#define INIT(i, v) if (rr > i) c##i##v = _mm512_set1_epi32(crisp_qs8_folded_bias(q, i, z));
#define INIT_ROW(i) VECS(INIT, i)
    ROWS(INIT_ROW)
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const size_t groups = (entries + 3) / 4;
    for (size_t g = 0; g < groups; g++) {
        const size_t e = 4 * g;
        uint32_t k[4];
        crisp_qs8_group_columns(column, e, entries, k);
        const __m512i x0 = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, b + k[0] * b_stride), flip);
        const __m512i x1 = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, b + k[1] * b_stride), flip);
        const __m512i x2 = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, b + k[2] * b_stride), flip);
        const __m512i x3 = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, b + k[3] * b_stride), flip);
        const __m512i t0 = _mm512_unpacklo_epi8(x0, x1), t1 = _mm512_unpackhi_epi8(x0, x1);
        const __m512i t2 = _mm512_unpacklo_epi8(x2, x3), t3 = _mm512_unpackhi_epi8(x2, x3);
        const __m512i p0 = _mm512_unpacklo_epi16(t0, t2), p1 = _mm512_unpackhi_epi16(t0, t2);
        const __m512i p2 = _mm512_unpacklo_epi16(t1, t3), p3 = _mm512_unpackhi_epi16(t1, t3);
        const int8_t *wg = w + e * rows;
#define DOT(i, v) c##i##v = _mm512_dpbusd_epi32(c##i##v, p##v, w##i);
#define ROW(i)                                                    \
    if (rr > i) {                                                 \
        const __m512i w##i = _mm512_set1_epi32(load32(wg + 4 * i)); \
        VECS(DOT, i)                                              \
    }
        ROWS(ROW)
#undef ROW
#undef DOT
    }
    /* qs8_requant_x86.h: products rounded to int32 where they fit (one
     * conversion; the bytes clamped unless the range is all of int8), else
     * clamped first against lo - z_y, hi - z_y; z_y added to the int16
     * halves. */
    const __m512 lo_z = _mm512_set1_ps((float)(q->output_min - q->output_zero_point));
    const __m512 hi_z = _mm512_set1_ps((float)(q->output_max - q->output_zero_point));
    const __m512i zy = _mm512_set1_epi16((short)q->output_zero_point);
    const __m512i lo8 = _mm512_set1_epi8((char)q->output_min);
    const __m512i hi8 = _mm512_set1_epi8((char)q->output_max);
#define FIT(i, v) crisp_qs8_requant_fit_avx512(c##i##v, mult)
#define CLAMPED(i, v) crisp_qs8_requant_unzeroed_avx512(c##i##v, mult, lo_z, hi_z)
#define STORE(i, RQ, CLAMP)                                                                  \
    if (rr > i) {                                                                            \
        const __m512 mult = _mm512_set1_ps(q->multiplier[i]);                                \
        _mm512_mask_storeu_epi8(c + i * c_stride, m,                                         \
                                crisp_qs8_pack_avx512(RQ(i, 0), RQ(i, 1), RQ(i, 2), RQ(i, 3), \
                                                      zy, lo8, hi8, CLAMP));                 \
    }
#define STORE_FIT_FULL(i) STORE(i, FIT, 0)
#define STORE_FIT(i) STORE(i, FIT, 1)
#define STORE_CLAMPED(i) STORE(i, CLAMPED, 0)
    switch (crisp_qs8_finish(q)) {
    case CRISP_QS8_FIT_FULL: ROWS(STORE_FIT_FULL) break;
    case CRISP_QS8_FIT: ROWS(STORE_FIT) break;
    default: ROWS(STORE_CLAMPED) break;
    }
#undef STORE_CLAMPED
#undef STORE_FIT
#undef STORE_FIT_FULL
#undef STORE
#undef CLAMPED
#undef FIT
}

void crisp_qs8_spmm_ukernel_4x64__avx512vnni(size_t rows, size_t nc, size_t entries,
                                             const uint32_t *column, const int8_t *w,
                                             const int8_t *b, size_t b_stride, int8_t *c,
                                             size_t c_stride, const crisp_qs8_requant *q) {
    const __mmask64 m = nc >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << nc) - 1);
    /* Rows in chunks of four: each chunk's weights are 4 bytes per row at
     * w + group * 4 * rows + row * 4. */
    for (size_t r0 = 0; r0 < rows; r0 += 4) {
        crisp_qs8_requant qr = *q;
        qr.bias += r0, qr.multiplier += r0, qr.weight_sum += r0;
        const int8_t *wr = w + 4 * r0;
        int8_t *cr = c + r0 * c_stride;
        switch (rows - r0 < 4 ? rows - r0 : 4) {
        case 1: chunk(rows, m, entries, column, wr, b, b_stride, cr, c_stride, &qr, 1); break;
        case 2: chunk(rows, m, entries, column, wr, b, b_stride, cr, c_stride, &qr, 2); break;
        case 3: chunk(rows, m, entries, column, wr, b, b_stride, cr, c_stride, &qr, 3); break;
        default: chunk(rows, m, entries, column, wr, b, b_stride, cr, c_stride, &qr, 4); break;
        }
    }
}
