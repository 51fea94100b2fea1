/* 2:4 expansion, NEON (f32_expand24.inc): a group's two values (8 bytes)
 * spread over its 4 floats by one table lookup whose indices come from the
 * group's nibble; out-of-range indices (0xFF) give the zeros. */
#include <arm_neon.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/expand24_tables.h"
#include "kernels/ukernels.h"

static const uint8_t bytes[16][16] = {CRISP_E24_REP16(CRISP_E24_BYTE_ROW, 0)};

static void one_group(unsigned nibble, const float *values, float *out) {
    const uint8x8_t v = vld1_u8((const uint8_t *)values);
    vst1q_u8((uint8_t *)out, vqtbl1q_u8(vcombine_u8(v, v), vld1q_u8(bytes[nibble])));
}

static inline void expand_groups(size_t groups, const float *values, const uint8_t *stream,
                                 uint64_t first, float *out) {
    const uint8_t *p = CRISP_E24_START(stream, first);
    size_t g = 0;
    if (CRISP_E24_SHIFT(first) != 0 && groups > 0) {
        one_group((unsigned)(*p++ >> 4), values, out);
        g = 1, values += 2, out += 4;
    }
    for (; g + 2 <= groups; g += 2) {
        one_group((unsigned)(*p & 0xF), values, out);
        one_group((unsigned)(*p >> 4), values + 2, out + 4);
        p++, values += 4, out += 8;
    }
    if (g < groups) one_group((unsigned)(*p & 0xF), values, out);
}

static inline void zero(float *out, size_t n) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(out + i, vdupq_n_f32(0.0f));
    for (; i < n; i++) out[i] = 0.0f;
}
#define CRISP_EXPAND24_NAME crisp_f32_expand24_ukernel__neon
#define EXPAND_GROUPS expand_groups
#define ZERO zero
#include "kernels/generic/f32_expand24_body.h"
