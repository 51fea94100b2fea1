/* The row walk shared by the 2:4 expansion microkernels (f32_expand24.inc):
 * each ISA file defines EXPAND_GROUPS(groups, values, stream, first, out),
 * the groups of one block, and ZERO(out, n), then includes this, so the walk
 * over a row's kept blocks runs without a call per block. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/ukernels.h"

void CRISP_EXPAND24_NAME(const crisp_expand24_rows *p, float *out) {
    size_t done = 0; /* columns written in every row */
    for (size_t b = 0; b < p->blocks; b++) {
        uint32_t column; /* little-endian, as every target of this runtime */
        memcpy(&column, p->block_col + 4 * b, sizeof column);
        const size_t c0 = (size_t)column * p->block_cols;
        const size_t width = p->cols - c0 < p->block_cols ? p->cols - c0 : p->block_cols;
        const float *values = p->values + b * p->value_stride;
        const uint64_t first = p->first + b * p->index_stride;
        /* Row t's run t / v, counted without a division per row. */
        size_t run = p->row0 / p->v, in_run = p->row0 % p->v;
        for (size_t i = 0; i < p->rows; i++) {
            float *o = out + i * p->out_stride;
            ZERO(o + done, c0 - done); /* removed blocks */
            EXPAND_GROUPS(width / 4, values + (p->row0 + i) * (width / 2), p->stream,
                          first + run * (width / 2), o + c0);
            if (++in_run == p->v) in_run = 0, run++;
        }
        done = c0 + width;
    }
    for (size_t i = 0; i < p->rows; i++) ZERO(out + i * p->out_stride + done, p->cols - done);
}
