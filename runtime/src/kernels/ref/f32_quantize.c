#include <stddef.h>
#include <stdint.h>

#include "kernels/ref.h"
#include "kernels/ref/common.h"

void crisp_f32_quantize__ref(size_t n, const float *x, int8_t *y,
                             const crisp_qs8_quantize_params *p) {
    for (size_t i = 0; i < n; i++)
        y[i] = crisp_qs8_requantize(x[i] / p->scale, p->zero_point, -128, 127);
}

void crisp_f32_dequantize__ref(size_t n, const int8_t *x, float *y,
                               const crisp_qs8_quantize_params *p) {
    for (size_t i = 0; i < n; i++) y[i] = p->scale * (float)((int32_t)x[i] - p->zero_point);
}
