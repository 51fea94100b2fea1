/* Dense GEMV microkernel, NEON (generic/f32_gemv_body.h): 4 lanes of K per
 * row accumulator. */
#include <arm_neon.h>

#define CRISP_GEMV_NAME crisp_f32_gemv_ukernel_4__neon
#define VEC float32x4_t
#define VL ((size_t)4)
#define VZERO() vdupq_n_f32(0.0f)
#define VLOAD(p) vld1q_f32(p)
#define VFMA(acc, w, x) vfmaq_f32(acc, w, x)
#define VSUM(v) vaddvq_f32(v)
#include "kernels/generic/f32_gemv_body.h"
