/* The int8 hybrid linear run microkernel's body for the tiers without a
 * gather or permute (AVX2, NEON, NEON dotprod; kernels/qs8_spmv.inc):
 * included once per ISA by a file that defines the operations below and is
 * compiled with that ISA's flags (and -ffp-contract=off, as every int8
 * kernel). The run's inputs are gathered in blocks of BLOCK entries into a
 * buffer of XB (x + X_OFFSET; zeros past the last entry, where the padded
 * weights are zero too), then
 *   one row (per-row N:M): lanes along the weight stream, 16 entries a step;
 *   4, 8, 12 or 16 rows (row-shared N:M): per chunk of four rows, each
 *     group's 16 weight bytes (four per row) against the group's four
 *     inputs repeated in every row's lanes.
 * Other heights go to the portable tier. The kernels sum q_w (x + X_OFFSET)
 * and take (z_x + X_OFFSET) * weight_sum[r] out of the bias once, as the
 * GEMV (generic/qs8_gemv_body.h): every partial sum is bounded by 255 sum
 * |q_w| and the total by |bias| + 255 sum |q_w| <= INT32_MAX (src/pack.c),
 * so the int32 sums are exact.
 *
 *   XB, X_OFFSET, ACC, ACC_ZERO(),
 *   DOT16(acc, w, xb) -> acc (+= 16 weight bytes w of one row . xb[0..16)),
 *   DOTG(acc, w, xb)  -> acc (+= one group: rows k < 4 of w[4k..4k+4) . xb[0..4)),
 *   HSUM(acc) -> int32_t (DOT16's total), ROWS4(acc, int32_t out[4]) (DOTG's
 *   four row totals). */
#include <string.h>

#include "kernels/common.h"
#include "kernels/ukernels.h"

#define BLOCK 256

void CRISP_QS8_SPMV_NAME(size_t rows, size_t entries, const uint32_t *column, const int8_t *w,
                         const int8_t *x, int8_t *y, const crisp_qs8_requant *q) {
    if (!(rows == 1 || (rows % 4 == 0 && rows <= 16))) {
        crisp_qs8_spmv_ukernel__scalar(rows, entries, column, w, x, y, q);
        return;
    }
    int32_t sum[16] = {0};
    XB xb[BLOCK + 16];
    for (size_t e0 = 0; e0 < entries; e0 += BLOCK) {
        const size_t ne = entries - e0 < BLOCK ? entries - e0 : BLOCK;
        const size_t n4 = (ne + 3) / 4 * 4, n16 = (ne + 15) / 16 * 16;
        for (size_t i = 0; i < ne; i++) xb[i] = (XB)(x[column[e0 + i]] + X_OFFSET);
        for (size_t i = ne; i < n16; i++) xb[i] = 0;
        /* Group e0 / 4 of the run starts at byte e0 * rows. */
        const int8_t *wb = w + e0 * rows;
        if (rows == 1) {
            ACC a = ACC_ZERO();
            size_t i = 0;
            for (; i + 16 <= n4; i += 16) a = DOT16(a, wb + i, xb + i);
            if (i < n4) { /* the stream ends here: no read past it */
                int8_t t[16] = {0};
                memcpy(t, wb + i, n4 - i);
                a = DOT16(a, t, xb + i);
            }
            sum[0] += HSUM(a);
            continue;
        }
        for (size_t c = 0; c < rows / 4; c++) {
            ACC a = ACC_ZERO();
            for (size_t g = 0; g < n4 / 4; g++) a = DOTG(a, wb + g * 4 * rows + 16 * c, xb + 4 * g);
            int32_t r4[4];
            ROWS4(a, r4);
            for (size_t k = 0; k < 4; k++) sum[4 * c + k] += r4[k];
        }
    }
    const int64_t z = (int64_t)q->input_zero_point + X_OFFSET;
    for (size_t r = 0; r < rows; r++) {
        const int32_t acc = (int32_t)((int64_t)q->bias[r] - z * q->weight_sum[r] + sum[r]);
        y[r] = crisp_qs8_requantize((float)acc * q->multiplier[r], q->output_zero_point,
                                    q->output_min, q->output_max);
    }
}
