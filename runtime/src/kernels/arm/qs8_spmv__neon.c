/* int8 hybrid linear run microkernel, NEON (generic/qs8_spmv_body.h): s8 x
 * s8 products into int16 (|q_w q_x| <= 127 x 128 fits), pairs added into
 * int32 (sadalp). A group's four inputs are one 32-bit duplicate; rows 0-1
 * of a four-row chunk go to one accumulator, rows 2-3 to the other. */
#include <arm_neon.h>
#include <stdint.h>

#define CRISP_QS8_SPMV_NAME crisp_qs8_spmv_ukernel__neon
#define XB int8_t
#define X_OFFSET 0
#define ACC int32x4x2_t

static inline int32x4x2_t acc_zero(void) {
    int32x4x2_t a = {{vdupq_n_s32(0), vdupq_n_s32(0)}};
    return a;
}
static inline int32x4x2_t mac(int32x4x2_t a, int8x16_t w, int8x16_t xv) {
    a.val[0] = vpadalq_s16(a.val[0], vmull_s8(vget_low_s8(w), vget_low_s8(xv)));
    a.val[1] = vpadalq_s16(a.val[1], vmull_high_s8(w, xv));
    return a;
}
static inline int32x4x2_t dot16(int32x4x2_t a, const int8_t *w, const int8_t *xb) {
    return mac(a, vld1q_s8(w), vld1q_s8(xb));
}
static inline int32x4x2_t dotg(int32x4x2_t a, const int8_t *w, const int8_t *xb) {
    int32_t v;
    __builtin_memcpy(&v, xb, 4);
    return mac(a, vld1q_s8(w), vreinterpretq_s8_s32(vdupq_n_s32(v)));
}
/* val[0] lanes 0-1 row 0, 2-3 row 1; val[1] rows 2 and 3. */
static inline void rows4(int32x4x2_t a, int32_t out[4]) {
    vst1q_s32(out, vpaddq_s32(a.val[0], a.val[1]));
}
#define ACC_ZERO() acc_zero()
#define DOT16(acc, w, xb) dot16(acc, w, xb)
#define DOTG(acc, w, xb) dotg(acc, w, xb)
#define HSUM(acc) vaddvq_s32(vaddq_s32((acc).val[0], (acc).val[1]))
#define ROWS4(acc, out) rows4(acc, out)
#include "kernels/generic/qs8_spmv_body.h"
