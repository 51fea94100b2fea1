#include <stddef.h>

#include "kernels/ref.h"
#include "kernels/ref/common.h"

/* y = W x + b with W (out, in) row-major, as torch, for outputs [begin, end).
 * Eight partial sums break the add dependency chain (a 25088-wide VGG row
 * would otherwise run at one add per FP latency); the order differs from a
 * plain loop only by rounding. */
void crisp_f32_linear__ref(const crisp_linear_params *p, const float *input,
                           const float *weight, const float *bias, float *output, size_t begin,
                           size_t end) {
    const size_t n = p->input_features;
    for (size_t o = begin; o < end; o++) {
        const float *restrict w = weight + o * n;
        float acc[8] = {0};
        size_t i = 0;
        for (; i + 8 <= n; i += 8)
            for (size_t k = 0; k < 8; k++) acc[k] += w[i + k] * input[i + k];
        float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        for (; i < n; i++) sum += w[i] * input[i];
        if (bias != NULL) sum += bias[o];
        output[o] = crisp_clampf(sum, p->minmax.output_min, p->minmax.output_max);
    }
}
