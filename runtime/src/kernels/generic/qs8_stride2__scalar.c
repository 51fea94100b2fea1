/* Every second byte, portable C (kernels/qs8_stride2.inc). */
#include "kernels/ukernels.h"

void crisp_qs8_stride2_ukernel__scalar(size_t n, const int8_t *restrict src,
                                       int8_t *restrict dst) {
    for (size_t j = 0; j < n; j++) dst[j] = src[2 * j];
}
