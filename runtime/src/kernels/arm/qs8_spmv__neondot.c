/* int8 hybrid linear run microkernel, NEON with the Armv8.2 dot product
 * (sdot; compiled with +dotprod and selected only where the CPU reports it;
 * generic/qs8_spmv_body.h): four s8 x s8 products per int32 lane; with a
 * group's four inputs duplicated in every lane, lane k of a four-row chunk's
 * accumulator is row k. */
#include <arm_neon.h>
#include <stdint.h>

#define CRISP_QS8_SPMV_NAME crisp_qs8_spmv_ukernel__neondot
#define XB int8_t
#define X_OFFSET 0
#define ACC int32x4_t
#define ACC_ZERO() vdupq_n_s32(0)

static inline int32x4_t dotg(int32x4_t a, const int8_t *w, const int8_t *xb) {
    int32_t v;
    __builtin_memcpy(&v, xb, 4);
    return vdotq_s32(a, vld1q_s8(w), vreinterpretq_s8_s32(vdupq_n_s32(v)));
}
#define DOT16(acc, w, xb) vdotq_s32(acc, vld1q_s8(w), vld1q_s8(xb))
#define DOTG(acc, w, xb) dotg(acc, w, xb)
#define HSUM(acc) vaddvq_s32(acc)
#define ROWS4(acc, out) vst1q_s32(out, acc)
#include "kernels/generic/qs8_spmv_body.h"
