#include <stddef.h>

#include "kernels/ref.h"
#include "kernels/ref/common.h"

void crisp_f32_add__ref(size_t n, const float *a, const float *b, float *y,
                        const crisp_minmax_params *p) {
    const float lo = p->output_min, hi = p->output_max;
    for (size_t i = 0; i < n; i++) y[i] = crisp_clampf(a[i] + b[i], lo, hi);
}

void crisp_f32_clamp__ref(size_t n, const float *x, float *y, const crisp_minmax_params *p) {
    const float lo = p->output_min, hi = p->output_max;
    for (size_t i = 0; i < n; i++) y[i] = crisp_clampf(x[i], lo, hi);
}
