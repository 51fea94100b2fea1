/* float32 -> int8 quantisation, portable C: the reference's formula (the
 * tail of every vector variant). */
#include "kernels/common.h"
#include "kernels/ukernels.h"

void crisp_f32_quantize_ukernel__scalar(size_t n, const float *x, int8_t *y,
                                        const crisp_qs8_quantize_params *p) {
    for (size_t i = 0; i < n; i++) y[i] = crisp_qs8_requantize(x[i] / p->scale, p->zero_point, -128, 127);
}
