/* Internal to the int8 NEON kernels: partial B rows, the folded bias and the
 * requantisation, the vector form of crisp_qs8_requantize (kernels/common.h)
 * with the same IEEE operations in the same order: int32 -> float (round
 * to nearest), one multiply, round to nearest even (frintn), add of the
 * zero point, clamp. The sums are finite, so no NaN reaches the clamp and
 * max/min act as its comparisons; the clamped value is integral and in
 * range, so the conversion and the saturating narrows are exact. Where an
 * op's products fit int32, a shorter form (crisp_qs8_requant_fit_neon). */
#ifndef CRISP_KERNELS_ARM_QS8_NEON_H
#define CRISP_KERNELS_ARM_QS8_NEON_H

#include <arm_neon.h>
#include <stdint.h>
#include <string.h>

#include "kernels/common.h"
#include "kernels/params.h"

/* 16 bytes of a B row; past nc zero (never read from the row). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "crisp_qs8_load16 packs bytes into 64-bit lanes in little-endian order"
#endif
static inline int8x16_t crisp_qs8_load16(const int8_t *p, size_t nc) {
    if (nc == 16) return vld1q_s8(p);
    /* nc < 16 bytes in 8-, 4-, 2- and 1-byte pieces by the bits of nc, read
     * nothing past them: a memcpy into a stack tile here, per load in the
     * kernels' k loop, was a library call (the int8 AVX2 kernel measured such
     * partial tiles at half their speed before the same change). Fixed-size
     * memcpys compile to plain unaligned loads. */
    uint64_t half[2] = {0, 0}, piece = 0;
    size_t at = 0, shift = 0;
    if (nc & 8) {
        memcpy(&half[0], p, 8);
        at = 8;
    }
    if (nc & 4) {
        uint32_t u;
        memcpy(&u, p + at, 4);
        piece = u, shift = 32;
    }
    if (nc & 2) {
        uint16_t u;
        memcpy(&u, p + at + shift / 8, 2);
        piece |= (uint64_t)u << shift, shift += 16;
    }
    if (nc & 1) piece |= (uint64_t)(uint8_t)p[at + shift / 8] << shift;
    half[at / 8] = piece;
    return vreinterpretq_s8_u64(vcombine_u64(vcreate_u64(half[0]), vcreate_u64(half[1])));
}

/* bias - z_x * weight_sum: the kernels sum q_w * q_x. In range: src/pack.c
 * guarantees |bias| + 255 * sum |q_w| <= INT32_MAX. */
static inline int32_t crisp_qs8_folded_bias_neon(const crisp_qs8_requant *q, size_t r) {
    return (int32_t)((int64_t)q->bias[r] - (int64_t)q->input_zero_point * q->weight_sum[r]);
}

static inline int16x4_t crisp_qs8_requant_neon(int32x4_t acc, float multiplier,
                                               const crisp_qs8_requant *q) {
    float32x4_t v = vmulq_f32(vcvtq_f32_s32(acc), vdupq_n_f32(multiplier));
    v = vrndnq_f32(v);
    v = vaddq_f32(vdupq_n_f32((float)q->output_zero_point), v);
    v = vmaxq_f32(v, vdupq_n_f32((float)q->output_min));
    v = vminq_f32(v, vdupq_n_f32((float)q->output_max));
    return vqmovn_s32(vcvtq_s32_f32(v));
}

/* Where the op's products fit int32 (crisp_qs8_finish, kernels/common.h):
 * rint(v) by one conversion (fcvtns: to nearest, ties to even), narrowed to
 * int16 with saturation; z_y and the clamp follow (crisp_qs8_bytes_neon). */
static inline int16x4_t crisp_qs8_requant_fit_neon(int32x4_t acc, float multiplier) {
    return vqmovn_s32(vcvtnq_s32_f32(vmulq_f32(vcvtq_f32_s32(acc), vdupq_n_f32(multiplier))));
}

/* 16 outputs from four accumulators, in their order, finished as
 * crisp_qs8_finish says (`finish`). */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline int8x16_t crisp_qs8_bytes_neon(int32x4_t a0, int32x4_t a1, int32x4_t a2,
                                             int32x4_t a3, float multiplier,
                                             const crisp_qs8_requant *q, int finish) {
    if (finish == CRISP_QS8_CLAMPED) {
        const int16x8_t lo = vcombine_s16(crisp_qs8_requant_neon(a0, multiplier, q),
                                          crisp_qs8_requant_neon(a1, multiplier, q));
        const int16x8_t hi = vcombine_s16(crisp_qs8_requant_neon(a2, multiplier, q),
                                          crisp_qs8_requant_neon(a3, multiplier, q));
        return vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi));
    }
    const int16x8_t zy = vdupq_n_s16((int16_t)q->output_zero_point);
    const int16x8_t lo = vqaddq_s16(vcombine_s16(crisp_qs8_requant_fit_neon(a0, multiplier),
                                                 crisp_qs8_requant_fit_neon(a1, multiplier)),
                                    zy);
    const int16x8_t hi = vqaddq_s16(vcombine_s16(crisp_qs8_requant_fit_neon(a2, multiplier),
                                                 crisp_qs8_requant_fit_neon(a3, multiplier)),
                                    zy);
    const int8x16_t r = vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi));
    if (finish == CRISP_QS8_FIT_FULL) return r;
    return vminq_s8(vmaxq_s8(r, vdupq_n_s8((int8_t)q->output_min)),
                    vdupq_n_s8((int8_t)q->output_max));
}

/* Row i's 16 outputs from its four accumulators (pixels 0-3, 4-7, ...). */
static inline void crisp_qs8_store_row_neon(int8_t *c, size_t nc, int32x4_t a0, int32x4_t a1,
                                            int32x4_t a2, int32x4_t a3, float multiplier,
                                            const crisp_qs8_requant *q) {
    const int8x16_t r = crisp_qs8_bytes_neon(a0, a1, a2, a3, multiplier, q, crisp_qs8_finish(q));
    if (nc == 16) {
        vst1q_s8(c, r);
    } else {
        int8_t tmp[16];
        vst1q_s8(tmp, r);
        memcpy(c, tmp, nc);
    }
}

#endif
