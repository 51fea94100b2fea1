/* The dense GEMV microkernel's body, shared by every tier: included once per
 * ISA by a file that defines the operations below and is compiled with that
 * ISA's flags. For each of mr <= 4 rows, y[r] = clamp(bias[r] + W[r, :] . x):
 * four row accumulators of VL lanes walk K together (x is loaded once for
 * four rows), a scalar tail finishes K, and each row sums its lanes last.
 * The order is fixed by K and the tier alone, never by the thread split.
 *
 *   VEC, VL, VZERO(), VLOAD(p), VFMA(acc, w, x) = acc + w * x, VSUM(v) -> float */
#include "kernels/common.h"
#include "kernels/ukernels.h"

void CRISP_GEMV_NAME(size_t mr, size_t kc, const float *w, size_t w_stride, const float *x,
                     float *y, const float *bias, const crisp_minmax_params *params) {
    const float *w0 = w, *w1 = w + (mr > 1 ? 1 : 0) * w_stride;
    const float *w2 = w + (mr > 2 ? 2 : 0) * w_stride, *w3 = w + (mr > 3 ? 3 : 0) * w_stride;
    VEC a0 = VZERO(), a1 = VZERO(), a2 = VZERO(), a3 = VZERO();
    size_t k = 0;
    for (; k + VL <= kc; k += VL) {
        const VEC xv = VLOAD(x + k);
        a0 = VFMA(a0, VLOAD(w0 + k), xv);
        a1 = VFMA(a1, VLOAD(w1 + k), xv);
        a2 = VFMA(a2, VLOAD(w2 + k), xv);
        a3 = VFMA(a3, VLOAD(w3 + k), xv);
    }
    float s[4] = {VSUM(a0), VSUM(a1), VSUM(a2), VSUM(a3)};
    for (; k < kc; k++) {
        s[0] += w0[k] * x[k], s[1] += w1[k] * x[k];
        s[2] += w2[k] * x[k], s[3] += w3[k] * x[k];
    }
    for (size_t r = 0; r < mr; r++)
        y[r] = crisp_clampf((bias != NULL ? bias[r] : 0.0f) + s[r], params->output_min,
                            params->output_max);
}
