/* int8 dense GEMV microkernel, NEON (generic/qs8_gemv_body.h): 16 bytes of
 * K per step, multiplied into int16 (|product| <= 2^14, exact) and added in
 * pairs into int32 lanes (sadalp). */
#include <arm_neon.h>
#include <stdint.h>

static inline int32x4_t dot16(int32x4_t acc, const int8_t *w, int8x16_t x) {
    const int8x16_t wv = vld1q_s8(w);
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(wv), vget_low_s8(x)));
    return vpadalq_s16(acc, vmull_high_s8(wv, x));
}

#define CRISP_QS8_GEMV_NAME crisp_qs8_gemv_ukernel_4__neon
#define XVEC int8x16_t
#define VL ((size_t)16)
#define ACC int32x4_t
#define ACC_ZERO() vdupq_n_s32(0)
#define XLOAD(p) vld1q_s8(p)
#define DOT(acc, w, xv) dot16(acc, w, xv)
#define HSUM(acc) vaddvq_s32(acc)
#define X_OFFSET 0
#include "kernels/generic/qs8_gemv_body.h"
