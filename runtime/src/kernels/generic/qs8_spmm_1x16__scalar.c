/* int8 hybrid run microkernel, portable C: one row at a time, 16 pixels of
 * int32 accumulators, the reference's arithmetic (sums of (q_x - z_x) * q_w,
 * which never leave int32: src/pack.c bounds every partial sum). */
#include "kernels/common.h"
#include "kernels/ukernels.h"

void crisp_qs8_spmm_ukernel_1x16__scalar(size_t rows, size_t nc, size_t entries,
                                         const uint32_t *column, const int8_t *w,
                                         const int8_t *b, size_t b_stride, int8_t *c,
                                         size_t c_stride, const crisp_qs8_requant *q) {
    const int32_t zx = q->input_zero_point;
    for (size_t r = 0; r < rows; r++) {
        int32_t acc[16];
        for (size_t n = 0; n < nc; n++) acc[n] = q->bias[r];
        for (size_t e = 0; e < entries; e++) {
            const int32_t wv = w[crisp_qs8_weight_index(e, r, rows)];
            const int8_t *x = b + column[e] * b_stride;
            for (size_t n = 0; n < nc; n++) acc[n] += ((int32_t)x[n] - zx) * wv;
        }
        for (size_t n = 0; n < nc; n++)
            c[r * c_stride + n] = crisp_qs8_requantize((float)acc[n] * q->multiplier[r],
                                                       q->output_zero_point, q->output_min,
                                                       q->output_max);
    }
}
