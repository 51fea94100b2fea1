/* int8 addition, portable C: the reference's formula (the tail of every
 * vector variant), and the exhaustive check that lets the vector variants
 * multiply by the output scale's reciprocal (crisp_qs8_add_prepare). Built
 * without multiply-add contraction (CMakeLists.txt), like the kernels, so
 * the check computes exactly what they compute. */
#include "kernels/common.h"
#include "kernels/ukernels.h"

void crisp_qs8_add_ukernel__scalar(size_t n, const int8_t *a, const int8_t *b, int8_t *y,
                                   const crisp_qs8_add_params *p) {
    for (size_t i = 0; i < n; i++)
        y[i] = crisp_qs8_add_one(a[i], b[i], p);
}

void crisp_qs8_add_prepare(crisp_qs8_add_params *p) {
    p->by_inverse = 0;
    p->output_inverse = 1.0f / p->output_scale;
    for (int32_t a = -128; a <= 127; a++) {
        const float ra = p->a_scale * (float)(a - p->a_zero_point);
        for (int32_t b = -128; b <= 127; b++) {
            const float real = ra + p->b_scale * (float)(b - p->b_zero_point);
            const int8_t fast = crisp_qs8_requantize(real * p->output_inverse, p->output_zero_point,
                                                     p->output_min, p->output_max);
            if (fast != crisp_qs8_add_one((int8_t)a, (int8_t)b, p)) return;
        }
    }
    p->by_inverse = 1;
}
