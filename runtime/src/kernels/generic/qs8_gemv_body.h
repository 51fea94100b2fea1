/* The int8 dense GEMV microkernel's body, shared by every tier: included
 * once per ISA by a file that defines the operations below and is compiled
 * with that ISA's flags (and -ffp-contract=off, as every int8 kernel). For
 * each of mr <= 4 rows,
 *   acc  = bias[r] + sum_k W[r, k] (x[k] - z_x)
 *   y[r] = crisp_qs8_requantize((float)acc * multiplier[r], z_y, min, max),
 * the reference's exact int32 sum and float operations. Four row
 * accumulators of lanes along K walk it together (one load of x feeds four
 * rows); the kernels sum W[r, k] (x[k] + X_OFFSET) (the u8 operand of
 * vpdpbusd is x + 128) and take (z_x + X_OFFSET) * weight_sum[r] out of the
 * bias once. Each partial sum is bounded by 255 sum |q_w|, and the total by
 * |bias| + 255 sum |q_w| <= INT32_MAX (src/pack.c refuses anything more), so
 * wrapping vector adds give the exact sum.
 *
 *   XVEC, VL (bytes of K per step), ACC, ACC_ZERO(), XLOAD(p) -> XVEC,
 *   DOT(acc, w, xv) -> acc (+= the VL products of row bytes w with xv),
 *   HSUM(acc) -> int32_t, X_OFFSET; optionally TAIL_MASK_TYPE, TAIL_MASK(n),
 *   XLOAD_TAIL(p, mask), DOT_TAIL(acc, w, xv, mask) to finish K in masked
 *   vector lanes instead of the scalar loop. Reads exactly kc bytes of x and
 *   of each row. */
#include "kernels/common.h"
#include "kernels/ukernels.h"

void CRISP_QS8_GEMV_NAME(size_t mr, size_t kc, const int8_t *w, size_t w_stride,
                         const int8_t *x, int8_t *y, const crisp_qs8_requant *q) {
    /* Rows past mr repeat row 0: computed, never stored. */
    const int8_t *w0 = w, *w1 = w + (mr > 1 ? 1 : 0) * w_stride;
    const int8_t *w2 = w + (mr > 2 ? 2 : 0) * w_stride, *w3 = w + (mr > 3 ? 3 : 0) * w_stride;
    ACC a0 = ACC_ZERO(), a1 = ACC_ZERO(), a2 = ACC_ZERO(), a3 = ACC_ZERO();
    size_t k = 0;
    for (; k + VL <= kc; k += VL) {
        const XVEC xv = XLOAD(x + k);
        a0 = DOT(a0, w0 + k, xv);
        a1 = DOT(a1, w1 + k, xv);
        a2 = DOT(a2, w2 + k, xv);
        a3 = DOT(a3, w3 + k, xv);
    }
#ifdef TAIL_MASK
    if (k < kc) {
        const TAIL_MASK_TYPE m = TAIL_MASK(kc - k);
        const XVEC xv = XLOAD_TAIL(x + k, m);
        a0 = DOT_TAIL(a0, w0 + k, xv, m);
        a1 = DOT_TAIL(a1, w1 + k, xv, m);
        a2 = DOT_TAIL(a2, w2 + k, xv, m);
        a3 = DOT_TAIL(a3, w3 + k, xv, m);
        k = kc;
    }
#endif
    int32_t s[4] = {HSUM(a0), HSUM(a1), HSUM(a2), HSUM(a3)};
    for (; k < kc; k++) {
        const int32_t xk = (int32_t)x[k] + X_OFFSET;
        s[0] += w0[k] * xk, s[1] += w1[k] * xk;
        s[2] += w2[k] * xk, s[3] += w3[k] * xk;
    }
    const int64_t z = (int64_t)q->input_zero_point + X_OFFSET;
    for (size_t r = 0; r < mr; r++) {
        const int32_t acc = (int32_t)((int64_t)q->bias[r] - z * q->weight_sum[r] + s[r]);
        y[r] = crisp_qs8_requantize((float)acc * q->multiplier[r], q->output_zero_point,
                                    q->output_min, q->output_max);
    }
}
