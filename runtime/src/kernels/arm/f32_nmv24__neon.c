/* float32 2:4 in-place linear, NEON (f32_nmv24.inc). A whole block is walked
 * row by row in 16-column segments (a wide block's row is then one forward
 * stream of values): each byte of a row's 16-bit record (two groups: four
 * positions among 8 columns) selects, through a 256-entry table of tbl byte
 * indices, the row's 4 inputs from the segment's low or high 8 columns (two
 * registers each, from L1), which take one FMA with 4 of the row's 8 values.
 * One accumulator per row; other blocks add into a scalar tail. */
#include <arm_neon.h>

#include "kernels/expand24_tables.h"
#include "kernels/generic/f32_nmv24_body.h"

/* Byte j of the 4 floats a record byte b selects from 8 columns (32 bytes):
 * float l = j / 4 is column 4 (l / 2) + position l of the byte. */
#define NMV_BYTE(b, j) (uint8_t)((4 * ((j) >> 3) + CRISP_E24_POS(b, (j) >> 2)) * 4 + ((j) & 3))
#define NMV_ROW(b)                                                                           \
    {NMV_BYTE(b, 0),  NMV_BYTE(b, 1),  NMV_BYTE(b, 2),  NMV_BYTE(b, 3),  NMV_BYTE(b, 4),      \
     NMV_BYTE(b, 5),  NMV_BYTE(b, 6),  NMV_BYTE(b, 7),  NMV_BYTE(b, 8),  NMV_BYTE(b, 9),      \
     NMV_BYTE(b, 10), NMV_BYTE(b, 11), NMV_BYTE(b, 12), NMV_BYTE(b, 13), NMV_BYTE(b, 14),     \
     NMV_BYTE(b, 15)}
static const uint8_t select_bytes[256][16] = {CRISP_E24_REP256(NMV_ROW)};

void crisp_f32_nmv24_ukernel__neon(const crisp_expand24_rows *p, const float *x, float *y,
                                   const float *bias, const crisp_minmax_params *params) {
    const size_t rows = p->rows;
    float32x4_t acc[CRISP_NMV24_MAX_ROWS];
    float tail[CRISP_NMV24_MAX_ROWS];
    for (size_t i = 0; i < rows; i++) acc[i] = vdupq_n_f32(0.0f), tail[i] = 0.0f;
    for (size_t b = 0; b < p->blocks; b++) {
        const size_t c0 = crisp_nmv24_c0(p, b), w = crisp_nmv24_width(p, c0);
        if (crisp_nmv24_portable(p, x, b, c0, w, 0, rows, tail)) continue;
        /* Row by row, each along its segments: a wide block (an N:M-only
         * row) then reads each row's values as one forward stream. */
        for (size_t i = 0; i < rows; i++)
            for (size_t s = 0; s < w / 16; s++) {
                const float *xs = x + c0 + 16 * s, *v = crisp_nmv24_values(p, b, w, s, i);
                const uint8x16x2_t lo = {{vreinterpretq_u8_f32(vld1q_f32(xs)),
                                          vreinterpretq_u8_f32(vld1q_f32(xs + 4))}};
                const uint8x16x2_t hi = {{vreinterpretq_u8_f32(vld1q_f32(xs + 8)),
                                          vreinterpretq_u8_f32(vld1q_f32(xs + 12))}};
                const uint32_t word = crisp_nmv24_record(p, b, w, s, i);
                const float32x4_t g0 =
                    vreinterpretq_f32_u8(vqtbl2q_u8(lo, vld1q_u8(select_bytes[word & 0xFF])));
                const float32x4_t g1 =
                    vreinterpretq_f32_u8(vqtbl2q_u8(hi, vld1q_u8(select_bytes[word >> 8])));
                acc[i] = vfmaq_f32(acc[i], vld1q_f32(v), g0);
                acc[i] = vfmaq_f32(acc[i], vld1q_f32(v + 4), g1);
            }
    }
    for (size_t i = 0; i < rows; i++) {
        y[i] = crisp_nmv24_output(vaddvq_f32(acc[i]) + tail[i], bias, i, params);
    }
}
