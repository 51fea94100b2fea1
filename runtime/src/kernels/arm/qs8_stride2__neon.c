/* Every second byte, NEON (kernels/qs8_stride2.inc): vld2q_s8 splits 32 bytes
 * into even and odd ones; the last 16 outputs and the tail go through the
 * portable loop, so nothing past src[2 (n - 1)] is read. */
#include <arm_neon.h>

#include "kernels/ukernels.h"

void crisp_qs8_stride2_ukernel__neon(size_t n, const int8_t *restrict src, int8_t *restrict dst) {
    size_t j = 0;
    for (; j + 17 <= n; j += 16) /* reads src[2 j .. 2 j + 31] <= src[2 (n - 1)] */
        vst1q_s8(dst + j, vld2q_s8(src + 2 * j).val[0]);
    crisp_qs8_stride2_ukernel__scalar(n - j, src + 2 * j, dst + j);
}
