/* Every second float, portable C (kernels/f32_stride2.inc). */
#include "kernels/ukernels.h"

void crisp_f32_stride2_ukernel__scalar(size_t n, const float *restrict src, float *restrict dst) {
    for (size_t j = 0; j < n; j++) dst[j] = src[2 * j];
}
