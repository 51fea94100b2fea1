/* The row walk shared by the 2:4 expansion microkernels (f32_expand24.inc):
 * each ISA file defines EXPAND_GROUPS(groups, values, stream, first, out),
 * the groups of one block, and ZERO(out, n), optionally EXPAND16(bytes,
 * values, out) for the common 16-column block (two index bytes, 8 values),
 * then includes this, so the walk over the kept blocks runs without a call
 * per block. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/ukernels.h"

/* The fields are read once: stores through `out` could alias *p for the
 * compiler, which would reload them in every row otherwise. */
void CRISP_EXPAND24_NAME(const crisp_expand24_rows *p, float *out) {
    const size_t blocks = p->blocks, block_cols = p->block_cols, cols = p->cols;
    const size_t row0 = p->row0, rows = p->rows, v = p->v, stride = p->out_stride;
    const size_t value_stride = p->value_stride;
    const uint64_t index_stride = p->index_stride;
    const uint8_t *stream = p->stream;
    size_t done = 0; /* columns written in every row */
    for (size_t b = 0; b < blocks; b++) {
        uint32_t column; /* little-endian, as every target of this runtime */
        memcpy(&column, p->block_col + 4 * b, sizeof column);
        const size_t c0 = (size_t)column * block_cols;
        const size_t width = cols - c0 < block_cols ? cols - c0 : block_cols;
        const float *values = p->values + b * value_stride;
        const uint64_t first = p->first + b * index_stride;
        /* Row t's run t / v, counted without a division per row. */
        size_t run = row0 / v, in_run = row0 % v;
        float *o = out;
#ifdef EXPAND16
        /* The common block of 16 columns: a run's positions are 2 whole bytes. */
        if (width == 16 && first % 4 == 0) {
            const uint8_t *bytes = stream + first / 4;
            const float *x = values + row0 * 8;
            for (size_t i = 0; i < rows; i++, o += stride, x += 8) {
                ZERO(o + done, c0 - done); /* removed blocks */
                EXPAND16(bytes + 2 * run, x, o + c0);
                if (++in_run == v) in_run = 0, run++;
            }
            done = c0 + width;
            continue;
        }
#endif
        for (size_t i = 0; i < rows; i++, o += stride) {
            ZERO(o + done, c0 - done); /* removed blocks */
            EXPAND_GROUPS(width / 4, values + (row0 + i) * (width / 2), stream,
                          first + run * (width / 2), o + c0);
            if (++in_run == v) in_run = 0, run++;
        }
        done = c0 + width;
    }
    for (size_t i = 0; i < rows; i++) ZERO(out + i * stride + done, cols - done);
}
