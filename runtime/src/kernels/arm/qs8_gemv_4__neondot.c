/* int8 dense GEMV microkernel, NEON with the Armv8.2 dot product (sdot;
 * compiled with +dotprod and selected only where the CPU reports it;
 * generic/qs8_gemv_body.h): 16 bytes of K per step, s8 x s8 products added
 * four at a time into int32 lanes. */
#include <arm_neon.h>

#define CRISP_QS8_GEMV_NAME crisp_qs8_gemv_ukernel_4__neondot
#define XVEC int8x16_t
#define VL ((size_t)16)
#define ACC int32x4_t
#define ACC_ZERO() vdupq_n_s32(0)
#define XLOAD(p) vld1q_s8(p)
#define DOT(acc, w, xv) vdotq_s32(acc, vld1q_s8(w), xv)
#define HSUM(acc) vaddvq_s32(acc)
#define X_OFFSET 0
#include "kernels/generic/qs8_gemv_body.h"
