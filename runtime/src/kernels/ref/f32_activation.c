/* The activations that are no clamp (1.2), in torch's CPU formulas, and the
 * squeeze-excite product. Pure per-element functions, so a split into chunks
 * and an in-place pass (y == x) change no bit. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "kernels/ref.h"
#include "kernels/ref/common.h"

void crisp_f32_activation__ref(size_t n, const float *x, float *y, uint32_t activation) {
    switch (activation) {
    case CRISP_ACT_SILU: /* x / (1 + e^-x): e^-x overflows to inf for x < -88, giving -0 */
        for (size_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + expf(-x[i]));
        break;
    case CRISP_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
        break;
    case CRISP_ACT_HARDSWISH: /* x · min(max(x + 3, 0), 6) / 6 */
        for (size_t i = 0; i < n; i++) y[i] = x[i] * crisp_clampf(x[i] + 3.0f, 0.0f, 6.0f) / 6.0f;
        break;
    case CRISP_ACT_HARDSIGMOID: /* min(max(x + 3, 0), 6) / 6 */
        for (size_t i = 0; i < n; i++) y[i] = crisp_clampf(x[i] + 3.0f, 0.0f, 6.0f) / 6.0f;
        break;
    default:
        for (size_t i = 0; i < n && y != x; i++) y[i] = x[i];
        break;
    }
}

void crisp_f32_mul_channels__ref(const crisp_channels_params *p, const float *x, const float *s,
                                 float *y, size_t begin, size_t end) {
    for (size_t i = begin; i < end; i++) y[i] = x[i] * s[i / p->plane];
}
