#include <stddef.h>
#include <stdint.h>

#include "kernels/ref.h"
#include "kernels/ref/common.h"

/* int8 y = W x over outputs [begin, end): int32 sum of (q_x - z_x) * q_w plus
 * the int32 bias, requantised per output channel. */
void crisp_qs8_linear__ref(const crisp_qs8_linear_params *p, const int8_t *input,
                           const int8_t *weight, int8_t *output, size_t begin, size_t end) {
    const crisp_qs8_requant *q = &p->q;
    const size_t n = p->input_features;
    for (size_t o = begin; o < end; o++) {
        const int8_t *w = weight + o * n;
        int32_t acc = q->bias[o];
        for (size_t i = 0; i < n; i++) acc += ((int32_t)input[i] - q->input_zero_point) * w[i];
        output[o] = crisp_qs8_requantize((float)acc * q->multiplier[o], q->output_zero_point,
                                         q->output_min, q->output_max);
    }
}
