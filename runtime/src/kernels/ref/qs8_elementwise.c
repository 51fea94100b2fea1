#include <stddef.h>
#include <stdint.h>

#include "kernels/ref.h"
#include "kernels/ref/common.h"

/* y = clamp(z_y + nearbyintf((s_a (q_a - z_a) + s_b (q_b - z_b)) / s_y)), in
 * float, in exactly this order (docs/format.md; crisp_qs8_add_one). */
void crisp_qs8_add__ref(size_t n, const int8_t *a, const int8_t *b, int8_t *y,
                        const crisp_qs8_add_params *p) {
    for (size_t i = 0; i < n; i++) y[i] = crisp_qs8_add_one(a[i], b[i], p);
}

void crisp_qs8_clamp__ref(size_t n, const int8_t *x, int8_t *y, const crisp_qs8_clamp_params *p) {
    for (size_t i = 0; i < n; i++) {
        int32_t v = x[i];
        v = v < p->output_min ? p->output_min : v;
        y[i] = (int8_t)(v > p->output_max ? p->output_max : v);
    }
}
