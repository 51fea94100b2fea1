/* int8 hybrid run microkernel, plain NEON (Cortex-A72 / A57: no dot
 * product): up to 4 rows of a run x 16 pixels. Per group of four kept
 * columns (the packed layout, src/pack.c) and row, two columns' products
 * are summed in int16 by a widening multiply and multiply-accumulate
 * (|q_x q_w| <= 128 x 127, so a sum of two is <= 32512: no overflow) and
 * widened into the int32 accumulators. s8 x s8: z_x comes out of the bias
 * once per row (weight_sum). */
#include <arm_neon.h>

#include "kernels/ukernels.h"
#include "qs8_neon.h"

#define ROWS(X) X(0) X(1) X(2) X(3)

static inline __attribute__((always_inline)) void chunk(size_t rows, size_t nc, size_t entries,
                                                        const uint32_t *column, const int8_t *w,
                                                        const int8_t *b, size_t b_stride,
                                                        int8_t *c, size_t c_stride,
                                                        const crisp_qs8_requant *q,
                                                        const int rr) {
#define DECL(i)                                                                        \
    int32x4_t c##i##0 = vdupq_n_s32(0), c##i##1 = c##i##0, c##i##2 = c##i##0,            \
              c##i##3 = c##i##0;                                                       \
    if (rr > i) c##i##0 = c##i##1 = c##i##2 = c##i##3 = vdupq_n_s32(crisp_qs8_folded_bias_neon(q, i));
    ROWS(DECL)
#undef DECL
    const size_t groups = (entries + 3) / 4;
    for (size_t g = 0; g < groups; g++) {
        const size_t e = 4 * g;
        uint32_t k[4];
        crisp_qs8_group_columns(column, e, entries, k);
        const int8x16_t x0 = crisp_qs8_load16(b + k[0] * b_stride, nc);
        const int8x16_t x1 = crisp_qs8_load16(b + k[1] * b_stride, nc);
        const int8x16_t x2 = crisp_qs8_load16(b + k[2] * b_stride, nc);
        const int8x16_t x3 = crisp_qs8_load16(b + k[3] * b_stride, nc);
        const int8_t *wg = w + e * rows;
#define ROW(i)                                                                              \
    if (rr > i) {                                                                           \
        const int8x8_t w0 = vdup_n_s8(wg[4 * i]), w1 = vdup_n_s8(wg[4 * i + 1]);            \
        const int8x8_t w2 = vdup_n_s8(wg[4 * i + 2]), w3 = vdup_n_s8(wg[4 * i + 3]);        \
        int16x8_t s = vmlal_s8(vmull_s8(vget_low_s8(x0), w0), vget_low_s8(x1), w1);          \
        c##i##0 = vaddw_s16(c##i##0, vget_low_s16(s));                                     \
        c##i##1 = vaddw_high_s16(c##i##1, s);                                              \
        s = vmlal_s8(vmull_s8(vget_low_s8(x2), w2), vget_low_s8(x3), w3);                   \
        c##i##0 = vaddw_s16(c##i##0, vget_low_s16(s));                                     \
        c##i##1 = vaddw_high_s16(c##i##1, s);                                              \
        s = vmlal_s8(vmull_s8(vget_high_s8(x0), w0), vget_high_s8(x1), w1);                 \
        c##i##2 = vaddw_s16(c##i##2, vget_low_s16(s));                                     \
        c##i##3 = vaddw_high_s16(c##i##3, s);                                              \
        s = vmlal_s8(vmull_s8(vget_high_s8(x2), w2), vget_high_s8(x3), w3);                 \
        c##i##2 = vaddw_s16(c##i##2, vget_low_s16(s));                                     \
        c##i##3 = vaddw_high_s16(c##i##3, s);                                              \
    }
        ROWS(ROW)
#undef ROW
    }
#define STORE(i)                                                                          \
    if (rr > i)                                                                           \
        crisp_qs8_store_row_neon(c + i * c_stride, nc, c##i##0, c##i##1, c##i##2, c##i##3, \
                                 q->multiplier[i], q);
    ROWS(STORE)
#undef STORE
}

void crisp_qs8_spmm_ukernel_4x16__neon(size_t rows, size_t nc, size_t entries,
                                       const uint32_t *column, const int8_t *w, const int8_t *b,
                                       size_t b_stride, int8_t *c, size_t c_stride,
                                       const crisp_qs8_requant *q) {
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
