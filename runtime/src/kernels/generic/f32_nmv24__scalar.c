/* float32 2:4 in-place linear, portable C (kernels/f32_nmv24.inc): each
 * row's sum block by block, group by group. */
#include "kernels/generic/f32_nmv24_body.h"

void crisp_f32_nmv24_ukernel__scalar(const crisp_expand24_rows *p, const float *x, float *y,
                                     const float *bias, const crisp_minmax_params *params) {
    for (size_t i = 0; i < p->rows; i++) {
        float acc = 0.0f;
        for (size_t b = 0; b < p->blocks; b++) {
            const size_t c0 = crisp_nmv24_c0(p, b);
            acc += crisp_nmv24_block_row(p, x, b, c0, crisp_nmv24_width(p, c0), p->row0 + i);
        }
        y[i] = crisp_nmv24_output(acc, bias, i, params);
    }
}
