/* The portable walk of the 2:4 in-place linear kernels (f32_nmv24.inc):
 * one block's contribution to one row, group by group, and whether a block
 * takes a tier's vector path. */
#ifndef CRISP_F32_NMV24_BODY_H
#define CRISP_F32_NMV24_BODY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/common.h"
#include "kernels/ukernels.h"

/* Block b's first column (block_col is little-endian u32, as every target
 * of this runtime; memcpy: the file gives it no alignment). */
static inline size_t crisp_nmv24_c0(const crisp_expand24_rows *p, size_t b) {
    uint32_t column;
    memcpy(&column, p->block_col + 4 * b, sizeof column);
    return (size_t)column * p->block_cols;
}

static inline size_t crisp_nmv24_width(const crisp_expand24_rows *p, size_t c0) {
    return p->cols - c0 < p->block_cols ? p->cols - c0 : p->block_cols;
}

/* Row t (of the block-row) of block b with first column c0 and width w:
 * its groups' two products, summed in group order. */
static inline float crisp_nmv24_block_row(const crisp_expand24_rows *p, const float *x, size_t b,
                                          size_t c0, size_t w, size_t t) {
    const float *values = p->values + b * p->value_stride + t * (w / 2);
    const uint64_t first = p->first + b * p->index_stride + (t / p->v) * (w / 2);
    float sum = 0.0f;
    for (size_t g = 0; g < w / 4; g++) {
        const uint64_t i = first + 2 * g;
        const unsigned nibble = (unsigned)(p->stream[i / 4] >> ((i % 4) * 2)) & 0xF;
        sum += values[2 * g] * x[c0 + 4 * g + (nibble & 3)];
        sum += values[2 * g + 1] * x[c0 + 4 * g + (nibble >> 2)];
    }
    return sum;
}

/* A block the vector paths take: whole 16-column segments (a 16 x 16 block,
 * or an N:M-only block-row as wide as K) whose runs' positions start on a
 * byte, so each run's 8 positions in a segment are one 16-bit record. */
static inline int crisp_nmv24_whole(const crisp_expand24_rows *p, size_t b, size_t w) {
    return w % 16 == 0 && (p->first + b * p->index_stride) % 4 == 0;
}

/* Where row i's records in block b (width w, a whole block) start: segment
 * s's 16 bits at bytes 2 s and 2 s + 1. */
static inline const uint8_t *crisp_nmv24_records(const crisp_expand24_rows *p, size_t b, size_t w,
                                                 size_t i) {
    return p->stream + (p->first + b * p->index_stride) / 4 + ((p->row0 + i) / p->v) * (w / 8);
}

static inline uint32_t crisp_nmv24_segment(const uint8_t *records, size_t s) {
    return (uint32_t)records[2 * s] | (uint32_t)records[2 * s + 1] << 8;
}

/* Row i's 16-bit record in segment s of block b (width w, a whole block). */
static inline uint32_t crisp_nmv24_record(const crisp_expand24_rows *p, size_t b, size_t w,
                                          size_t s, size_t i) {
    return crisp_nmv24_segment(crisp_nmv24_records(p, b, w, i), s);
}

/* A block the vector paths do not take (crisp_nmv24_whole) added into
 * rows [r0, r0 + rows)'s tail sums by the portable loop; 0 for a whole one. */
static inline int crisp_nmv24_portable(const crisp_expand24_rows *p, const float *x, size_t b,
                                       size_t c0, size_t w, size_t r0, size_t rows, float *tail) {
    if (crisp_nmv24_whole(p, b, w)) return 0;
    for (size_t i = 0; i < rows; i++)
        tail[i] += crisp_nmv24_block_row(p, x, b, c0, w, p->row0 + r0 + i);
    return 1;
}

/* A row's output from its sum: bias, then the clamp. */
static inline float crisp_nmv24_output(float sum, const float *bias, size_t i,
                                       const crisp_minmax_params *params) {
    if (bias != NULL) sum += bias[i];
    return crisp_clampf(sum, params->output_min, params->output_max);
}

/* Row i's 8 values in segment s of block b (width w). */
static inline const float *crisp_nmv24_values(const crisp_expand24_rows *p, size_t b, size_t w,
                                              size_t s, size_t i) {
    return p->values + b * p->value_stride + (p->row0 + i) * (w / 2) + 8 * s;
}

#endif
