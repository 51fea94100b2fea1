/* Max-pooling microkernel, NEON: the depthwise body (f32_maxpool.inc); NEON's
 * fmax returns NaN when either operand is NaN, which is torch's rule. */
#include <arm_neon.h>

#include "kernels/arm/neon_tail.h"

#define CRISP_DWCONV_NAME crisp_f32_maxpool_ukernel__neon
#define VEC float32x4_t
#define VL ((size_t)4)
#define VLOAD(p) vld1q_f32(p)
#define VSET1(x) vdupq_n_f32(x)
#define VFMA(acc, w, x) ((void)(w), vmaxq_f32(acc, x))
#define VCLAMP(v, lo, hi) ((void)(lo), (void)(hi), (v))
#define VSTORE_N(p, v, n) crisp_neon_store_n(p, v, n)
#include "kernels/generic/f32_dwconv_body.h"
