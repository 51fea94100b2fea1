/* Lookup tables of the 2:4 expansion microkernels (f32_expand24.inc), built
 * by the preprocessor. A byte of the index stream holds two groups' positions,
 * 2 bits each, least-significant first: group 0 = (i0, i1) in bits 0-3,
 * group 1 = (i2, i3) in bits 4-7; positions within a group strictly increase
 * (the loader checks it), so each group selects exactly two of its 4 floats. */
#ifndef CRISP_KERNELS_EXPAND24_TABLES_H
#define CRISP_KERNELS_EXPAND24_TABLES_H

#include <stdint.h>

#define CRISP_E24_POS(byte, k) (((byte) >> (2 * (k))) & 3)

/* The 8 output floats of a byte's two groups: bit l set where output l takes
 * a value (AVX-512 vexpandps mask). */
#define CRISP_E24_MASK(b)                                                        \
    (uint8_t)((1u << CRISP_E24_POS(b, 0)) | (1u << CRISP_E24_POS(b, 1)) |       \
              (1u << (4 + CRISP_E24_POS(b, 2))) | (1u << (4 + CRISP_E24_POS(b, 3))))

/* For output float l (0..7) of a byte's two groups: which of the 4 loaded
 * values it takes, or 0x80 for a zero (AVX2 permute + blend). */
#define CRISP_E24_SRC(b, l)                                                       \
    (uint8_t)(((l) & 3) == CRISP_E24_POS(b, 2 * ((l) >> 2))       ? 2 * ((l) >> 2) \
              : ((l) & 3) == CRISP_E24_POS(b, 2 * ((l) >> 2) + 1) ? 2 * ((l) >> 2) + 1 \
                                                                   : 0x80)

/* For output byte j (0..15) of one group (4 floats) with positions in nibble
 * n: the byte of its two values (8 bytes) it takes, or 0xFF for a zero (NEON
 * tbl gives 0 for an out-of-range index). */
#define CRISP_E24_BYTE(n, j)                                                              \
    (uint8_t)(((j) >> 2) == CRISP_E24_POS(n, 0)   ? ((j) & 3)                              \
              : ((j) >> 2) == CRISP_E24_POS(n, 1) ? 4 + ((j) & 3)                          \
                                                  : 0xFF)

#define CRISP_E24_REP4(F, b) F(b), F((b) + 1), F((b) + 2), F((b) + 3)
#define CRISP_E24_REP16(F, b)                                                     \
    CRISP_E24_REP4(F, b), CRISP_E24_REP4(F, (b) + 4), CRISP_E24_REP4(F, (b) + 8), \
        CRISP_E24_REP4(F, (b) + 12)
#define CRISP_E24_REP64(F, b)                                                        \
    CRISP_E24_REP16(F, b), CRISP_E24_REP16(F, (b) + 16), CRISP_E24_REP16(F, (b) + 32), \
        CRISP_E24_REP16(F, (b) + 48)
#define CRISP_E24_REP256(F)                                                              \
    CRISP_E24_REP64(F, 0), CRISP_E24_REP64(F, 64), CRISP_E24_REP64(F, 128),             \
        CRISP_E24_REP64(F, 192)

#define CRISP_E24_SRC_ROW(b)                                                             \
    {CRISP_E24_SRC(b, 0), CRISP_E24_SRC(b, 1), CRISP_E24_SRC(b, 2), CRISP_E24_SRC(b, 3),    \
     CRISP_E24_SRC(b, 4), CRISP_E24_SRC(b, 5), CRISP_E24_SRC(b, 6), CRISP_E24_SRC(b, 7)}
#define CRISP_E24_BYTE_ROW(n)                                                              \
    {CRISP_E24_BYTE(n, 0),  CRISP_E24_BYTE(n, 1),  CRISP_E24_BYTE(n, 2),  CRISP_E24_BYTE(n, 3),  \
     CRISP_E24_BYTE(n, 4),  CRISP_E24_BYTE(n, 5),  CRISP_E24_BYTE(n, 6),  CRISP_E24_BYTE(n, 7),  \
     CRISP_E24_BYTE(n, 8),  CRISP_E24_BYTE(n, 9),  CRISP_E24_BYTE(n, 10), CRISP_E24_BYTE(n, 11), \
     CRISP_E24_BYTE(n, 12), CRISP_E24_BYTE(n, 13), CRISP_E24_BYTE(n, 14), CRISP_E24_BYTE(n, 15)}

/* The stream byte of position `first` (even: a group starts there) and its
 * shift within the byte, 0 or 4. */
#define CRISP_E24_START(stream, first) ((stream) + (first) / 4)
#define CRISP_E24_SHIFT(first) ((unsigned)((first) % 4) * 2)

#endif
