#include <math.h>
#include <stddef.h>

#include "kernels/ref.h"

/* Max subtracted so exp never overflows; the output buffer holds the
 * exponentials between the passes, so no scratch is needed. */
void crisp_f32_softmax__ref(const crisp_softmax_params *p, const float *input, float *output) {
    const size_t len = p->axis_length, inner = p->inner;
    for (size_t o = 0; o < p->outer; o++) {
        const float *x = input + o * len * inner;
        float *y = output + o * len * inner;
        for (size_t i = 0; i < inner; i++) {
            float m = -INFINITY;
            for (size_t a = 0; a < len; a++) m = x[a * inner + i] > m ? x[a * inner + i] : m;
            float sum = 0.0f;
            for (size_t a = 0; a < len; a++) {
                const float e = expf(x[a * inner + i] - m);
                y[a * inner + i] = e;
                sum += e;
            }
            for (size_t a = 0; a < len; a++) y[a * inner + i] /= sum;
        }
    }
}
