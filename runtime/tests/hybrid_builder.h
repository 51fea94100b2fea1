/* Test-only encoder of the hybrid-sparse tensor layout of docs/format.md:
 * draws a random balanced block pattern with N:M (per row or shared by V
 * rows) and writes the encoded bytes plus the dense expansion the tests
 * compare against (the runtime never sees the dense form). */
#ifndef CRISP_TEST_HYBRID_BUILDER_H
#define CRISP_TEST_HYBRID_BUILDER_H

#include <stddef.h>
#include <stdint.h>

typedef struct mb_hybrid {
    uint32_t rows, cols;       /* R, K */
    uint32_t br, bc, n, m, v;  /* block shape, N:M, rows sharing a selection */
    uint32_t kept_per_row;     /* blocks kept in every block-row (capped at nbc); 0 = all */
    int int8;                  /* HYBRID_I8 (q in -127..127, scales) else HYBRID_F32 */
    int empty_odd_rows;        /* odd block-rows keep no block (unbalanced, still valid) */
} mb_hybrid;

/* Returns the malloc'd encoding (*size bytes). dense[rows * cols] receives
 * the expansion (int8: q as floats); scales[rows] the int8 weight scales
 * (may be NULL for f32). *kept_values counts the stored values. */
uint8_t *mb_hybrid_encode(const mb_hybrid *h, unsigned *rng, float *dense, float *scales,
                          size_t *size, uint64_t *kept_values);

/* Byte offsets of the parts inside an encoding made by mb_hybrid_encode. */
typedef struct mb_hybrid_layout {
    size_t ptr, col, scales, values, indices;
    uint32_t nbr, nbc, kept_blocks, bits;
} mb_hybrid_layout;
mb_hybrid_layout mb_hybrid_parts(const mb_hybrid *h, const uint8_t *bytes, size_t size);

#endif
