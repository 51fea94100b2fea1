/* int8 hybrid run microkernel, NEON with the Armv8.2 dot product (sdot;
 * this file is compiled with +dotprod and selected only where the CPU
 * reports it): up to 4 rows of a run x 16 pixels. Per group of four kept
 * columns the four B rows are interleaved (two rounds of zips) so each
 * 32-bit lane holds one pixel's four bytes, and each row's four weights
 * (adjacent in the packed layout, src/pack.c) meet them in one sdot per 4
 * pixels, taken by lane from one 16-byte load of the chunk's weights. s8 x
 * s8: z_x comes out of the bias once per row (weight_sum). int32 sums are
 * exact (src/pack.c bounds them). */
#include <arm_neon.h>

#include "kernels/ukernels.h"
#include "qs8_neon.h"

#define VECS(X, i) X(i, 0) X(i, 1) X(i, 2) X(i, 3)
#define ROWS(X) X(0) X(1) X(2) X(3)

static inline __attribute__((always_inline)) void chunk(size_t rows, size_t nc, size_t entries,
                                                        const uint32_t *column, const int8_t *w,
                                                        const int8_t *b, size_t b_stride,
                                                        int8_t *c, size_t c_stride,
                                                        const crisp_qs8_requant *q,
                                                        const int rr) {
#define DECL(i, v) int32x4_t c##i##v = vdupq_n_s32(0);
#define DECL_ROW(i) VECS(DECL, i)
    ROWS(DECL_ROW)
#define INIT(i, v) if (rr > i) c##i##v = vdupq_n_s32(crisp_qs8_folded_bias_neon(q, i));
#define INIT_ROW(i) VECS(INIT, i)
    ROWS(INIT_ROW)
    const size_t groups = (entries + 3) / 4;
    for (size_t g = 0; g < groups; g++) {
        const size_t e = 4 * g;
        uint32_t k[4];
        crisp_qs8_group_columns(column, e, entries, k);
        const int8x16_t x0 = crisp_qs8_load16(b + k[0] * b_stride, nc);
        const int8x16_t x1 = crisp_qs8_load16(b + k[1] * b_stride, nc);
        const int8x16_t x2 = crisp_qs8_load16(b + k[2] * b_stride, nc);
        const int8x16_t x3 = crisp_qs8_load16(b + k[3] * b_stride, nc);
        const int16x8_t t0 = vreinterpretq_s16_s8(vzip1q_s8(x0, x1));
        const int16x8_t t1 = vreinterpretq_s16_s8(vzip2q_s8(x0, x1));
        const int16x8_t t2 = vreinterpretq_s16_s8(vzip1q_s8(x2, x3));
        const int16x8_t t3 = vreinterpretq_s16_s8(vzip2q_s8(x2, x3));
        const int8x16_t p0 = vreinterpretq_s8_s16(vzip1q_s16(t0, t2)); /* pixels 0-3 */
        const int8x16_t p1 = vreinterpretq_s8_s16(vzip2q_s16(t0, t2)); /* 4-7 */
        const int8x16_t p2 = vreinterpretq_s8_s16(vzip1q_s16(t1, t3)); /* 8-11 */
        const int8x16_t p3 = vreinterpretq_s8_s16(vzip2q_s16(t1, t3)); /* 12-15 */
        /* A partial row chunk's 4 rr weights: rr is a constant here, so the
         * pieces of crisp_qs8_load16 fold to one or two loads. */
        const int8x16_t wq = crisp_qs8_load16(w + e * rows, 4 * (size_t)rr);
#define DOT(i, v) c##i##v = vdotq_laneq_s32(c##i##v, p##v, wq, i);
#define ROW(i) if (rr > i) { VECS(DOT, i) }
        ROWS(ROW)
#undef ROW
#undef DOT
    }
#define STORE(i)                                                                          \
    if (rr > i)                                                                           \
        crisp_qs8_store_row_neon(c + i * c_stride, nc, c##i##0, c##i##1, c##i##2, c##i##3, \
                                 q->multiplier[i], q);
    ROWS(STORE)
#undef STORE
}

void crisp_qs8_spmm_ukernel_4x16__neondot(size_t rows, size_t nc, size_t entries,
                                          const uint32_t *column, const int8_t *w,
                                          const int8_t *b, size_t b_stride, int8_t *c,
                                          size_t c_stride, const crisp_qs8_requant *q) {
    for (size_t r0 = 0; r0 < rows; r0 += 4) {
        crisp_qs8_requant qr = *q;
        qr.bias += r0, qr.multiplier += r0, qr.weight_sum += r0;
        const int8_t *wr = w + 4 * r0;
        int8_t *cr = c + r0 * c_stride;
        switch (rows - r0 < 4 ? rows - r0 : 4) {
        case 1: chunk(rows, nc, entries, column, wr, b, b_stride, cr, c_stride, &qr, 1); break;
        case 2: chunk(rows, nc, entries, column, wr, b, b_stride, cr, c_stride, &qr, 2); break;
        case 3: chunk(rows, nc, entries, column, wr, b, b_stride, cr, c_stride, &qr, 3); break;
        default: chunk(rows, nc, entries, column, wr, b, b_stride, cr, c_stride, &qr, 4); break;
        }
    }
}
