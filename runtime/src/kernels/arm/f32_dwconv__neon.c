/* Depthwise conv microkernels (phases and in place), NEON: 4 q registers
 * per chunk (16 output pixels), the shared body in generic/f32_dwconv_body.h;
 * column masks are ANDed, vld2q deinterleaves stride 2. */
#include <arm_neon.h>

#include "kernels/arm/neon_tail.h"

#define CRISP_DWCONV_NAME crisp_f32_dwconv_ukernel__neon
#define VEC float32x4_t
#define VL ((size_t)4)
#define VLOAD(p) vld1q_f32(p)
#define VSET1(x) vdupq_n_f32(x)
#define VFMA(acc, w, x) vfmaq_f32(acc, w, x)
/* NEON fmax/fmin return NaN when either operand is NaN: NaN survives. */
#define VCLAMP(v, lo, hi) vminq_f32(vmaxq_f32(v, lo), hi)
#define VSTORE_N(p, v, n) crisp_neon_store_n(p, v, n)
#define CRISP_DWCONV_DIRECT_NAME crisp_f32_dwconv_direct_ukernel__neon
#define VMASK uint32x4_t
#define VMASK_LOAD(p) vld1q_u32(p)
#define VLOADZ(p, m) vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(vld1q_f32(p)), m))
#define VLOAD2(p) (vld2q_f32(p).val[0])
#define VLOAD2Z(p, m) vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(VLOAD2(p)), m))
/* The row walks (generic/f32_dwconv_body.h): ext for the neighbours, uzp
 * for the even and odd columns. */
#define VZERO vdupq_n_f32(0.0f)
#define ROWS_LOAD_N(p, n) crisp_neon_load_n(p, n)
#define ROWS_PREV(cur, prev) vextq_f32(prev, cur, 3)
#define ROWS_NEXT(cur, next) vextq_f32(cur, next, 1)
#define ROWS_EVEN_ODD(a, b, even, odd) \
    do {                               \
        even = vuzp1q_f32(a, b);       \
        odd = vuzp2q_f32(a, b);        \
    } while (0)
#include "kernels/generic/f32_dwconv_body.h"
