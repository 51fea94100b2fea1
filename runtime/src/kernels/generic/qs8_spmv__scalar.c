/* int8 hybrid linear run microkernel, portable tier (kernels/qs8_spmv.inc):
 * the run's inputs are gathered once, centred (q_x - z_x, as the
 * reference), then each row sums them against its weights, group by group.
 * Exact int32 sums, the reference's requantisation. The vector tiers call it
 * for the run heights they do not vectorise. */
#include "kernels/common.h"
#include "kernels/ukernels.h"

#define BLOCK 256

void crisp_qs8_spmv_ukernel__scalar(size_t rows, size_t entries, const uint32_t *column,
                                    const int8_t *w, const int8_t *x, int8_t *y,
                                    const crisp_qs8_requant *q) {
    int32_t xg[BLOCK];
    int32_t acc[BLOCK];
    for (size_t r0 = 0; r0 < rows; r0 += BLOCK) {
        const size_t nr = rows - r0 < BLOCK ? rows - r0 : BLOCK;
        for (size_t r = 0; r < nr; r++) acc[r] = q->bias[r0 + r];
        for (size_t e0 = 0; e0 < entries; e0 += BLOCK) {
            const size_t ne = entries - e0 < BLOCK ? entries - e0 : BLOCK; /* e0 % 4 == 0 */
            for (size_t e = 0; e < ne; e++) xg[e] = (int32_t)x[column[e0 + e]] - q->input_zero_point;
            for (size_t e = ne; e < (ne + 3) / 4 * 4; e++) xg[e] = 0;
            for (size_t r = 0; r < nr; r++) {
                int32_t sum = 0;
                for (size_t g = 0; g < ne; g += 4) {
                    const int8_t *wg = w + crisp_qs8_weight_index(e0 + g, r0 + r, rows);
                    sum += wg[0] * xg[g] + wg[1] * xg[g + 1] + wg[2] * xg[g + 2] +
                           wg[3] * xg[g + 3];
                }
                acc[r] += sum;
            }
        }
        for (size_t r = 0; r < nr; r++)
            y[r0 + r] = crisp_qs8_requantize((float)acc[r] * q->multiplier[r0 + r],
                                             q->output_zero_point, q->output_min, q->output_max);
    }
}
