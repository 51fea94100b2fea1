/* The in-place int8 depthwise kernel for NEON, with and without the dot
 * product (QDW_DOT): a chunk is 16 positions in four int32x4 accumulators,
 * each lane one position's quads (ukernels.h): stride 1, phase f holds
 * positions 4 j + f, each window row one 16-byte load at x + f; stride 2,
 * half h and phase f hold positions 8 h + 2 j + f, one load at x + 16 h +
 * 2 f. The column masks select z_x into the masked bytes (vbsl); z_x sum(w)
 * is folded into the bias. A row's quad of weights then multiplies each
 * lane's quad: sdot (s8 x s8, four products into int32), or vmull_s8 and
 * two pairwise adds (|-128 * 127| * 2 fits int16: weights are -127 .. 127).
 * The requantisation is the reference's float operations in its order, or
 * where the op's products fit int32 the shorter exact form (arm/qs8_neon.h,
 * crisp_qs8_bytes_neon), then one table lookup puts the outputs back in
 * position order. */
#include <arm_neon.h>

#include "kernels/arm/qs8_neon.h"

#define CHUNK ((size_t)16)
#define GRAIN(s) ((size_t)16 / (s))
#define U8_OPERANDS 0
#define USES_FIT 1

#include "kernels/common.h"
#include "kernels/ukernels.h"

typedef struct state {
    int32_t w[CRISP_QS8_DWCONV_MAX_KH]; /* each window row's quad of weights, 0 past kw */
    size_t kh, row;
    int32_t bias; /* bias - z_x sum(w) */
    float multiplier;
    crisp_qs8_requant q;
    int8_t zx;
} STATE;

static void state_init(STATE *st, const crisp_qs8_dwconv_image *im, const int8_t *w,
                       int32_t bias, float multiplier, const crisp_qs8_requant *q) {
    const size_t kw = im->kernel_width;
    for (size_t ky = 0; ky < im->kernel_height; ky++) st->w[ky] = crisp_qs8_quad(w + ky * kw, kw);
    st->kh = im->kernel_height, st->row = im->dilation_height * im->input_width;
    st->bias = bias, st->multiplier = multiplier, st->q = *q;
    st->zx = (int8_t)q->input_zero_point;
}

#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline int32x4_t phase(const STATE *st, const int8_t *x, const uint32_t *m, int8x16_t zx,
                              size_t kh) {
    const uint8x16_t keep = vld1q_u8((const uint8_t *)(const void *)m);
    int32x4_t acc = vdupq_n_s32(st->bias);
    for (size_t ky = 0; ky < kh; ky++) {
        const int8x16_t v = vbslq_s8(keep, vld1q_s8(x + ky * st->row), zx);
        const int8x16_t wq = vreinterpretq_s8_s32(vdupq_n_s32(st->w[ky]));
#if QDW_DOT
        acc = vdotq_s32(acc, v, wq);
#else
        const int16x8_t lo = vmull_s8(vget_low_s8(v), vget_low_s8(wq));
        const int16x8_t hi = vmull_high_s8(v, wq);
        acc = vpadalq_s16(acc, vpaddq_s16(lo, hi));
#endif
    }
    return acc;
}

#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void chunk(const STATE *st, const int8_t *x, const uint32_t *m, size_t n,
                         int8_t *res, size_t s, size_t kh_const, int finish) {
    const size_t kh = kh_const ? kh_const : st->kh, L = CRISP_QS8_DWCONV_QUAD_LANES;
    const int8x16_t zx = vdupq_n_s8(st->zx);
    int32x4_t a0, a1, a2, a3;
    (void)n;
    if (s == 1) { /* a_f: positions 4 j + f */
        a0 = phase(st, x, m, zx, kh);
        a1 = phase(st, x + 1, m + L, zx, kh);
        a2 = phase(st, x + 2, m + 2 * L, zx, kh);
        a3 = phase(st, x + 3, m + 3 * L, zx, kh);
    } else { /* a0, a1: positions 2 j + f; a2, a3: 8 + 2 j + f */
        a0 = phase(st, x, m, zx, kh);
        a1 = phase(st, x + 2, m + L, zx, kh);
        a2 = phase(st, x + 16, m + 8 * L, zx, kh);
        a3 = phase(st, x + 18, m + 9 * L, zx, kh);
    }
    /* [a0 j, a1 j, a2 j, a3 j] */
    const int8x16_t b = crisp_qs8_bytes_neon(a0, a1, a2, a3, st->multiplier, &st->q, finish);
    static const uint8_t t1[16] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};
    static const uint8_t t2[16] = {0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15};
    vst1q_s8(res, vqtbl1q_s8(b, vld1q_u8(s == 1 ? t1 : t2)));
}

#include "kernels/generic/qs8_dwconv_direct_body.h"
