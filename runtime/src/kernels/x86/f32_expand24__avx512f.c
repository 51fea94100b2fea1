/* 2:4 expansion, AVX-512 (f32_expand24.inc): two stream bytes (four groups)
 * give a 16-bit mask through a byte table, and vexpandps spreads the groups'
 * 8 values over their 16 floats, zeros elsewhere. The values are loaded first
 * (vexpandps from memory is microcoded on some cores). */
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/expand24_tables.h"
#include "kernels/ukernels.h"

static const uint8_t masks[256] = {CRISP_E24_REP256(CRISP_E24_MASK)};

static inline void expand_groups(size_t groups, const float *values, const uint8_t *stream,
                                 uint64_t first, float *out) {
    const uint8_t *p = CRISP_E24_START(stream, first);
    size_t g = 0;
    if (CRISP_E24_SHIFT(first) != 0 && groups > 0) {
        /* The first group is the high nibble of its byte. */
        const __mmask16 m = (__mmask16)(masks[*p++ >> 4] & 0xF);
        const __m512 v = _mm512_maskz_loadu_ps(0x3, values);
        _mm512_mask_storeu_ps(out, 0xF, _mm512_maskz_expand_ps(m, v));
        g = 1, values += 2, out += 4;
    }
    for (; g + 4 <= groups; g += 4) {
        const __mmask16 m = (__mmask16)(masks[p[0]] | (unsigned)masks[p[1]] << 8);
        const __m512 v = _mm512_castps256_ps512(_mm256_loadu_ps(values));
        _mm512_storeu_ps(out, _mm512_maskz_expand_ps(m, v));
        p += 2, values += 8, out += 16;
    }
    const size_t rest = groups - g; /* 0 .. 3 groups: their bytes only */
    if (rest > 0) {
        unsigned m = masks[p[0]];
        if (rest > 2) m |= (unsigned)masks[p[1]] << 8;
        const __mmask16 lanes = (__mmask16)((1u << (4 * rest)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps((__mmask16)((1u << (2 * rest)) - 1), values);
        _mm512_mask_storeu_ps(out, lanes, _mm512_maskz_expand_ps((__mmask16)(m & lanes), v));
    }
}

static inline void zero(float *out, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, _mm512_setzero_ps());
    if (i < n) _mm512_mask_storeu_ps(out + i, (__mmask16)((1u << (n - i)) - 1), _mm512_setzero_ps());
}

/* The walk of generic/f32_expand24_body.h, with the common block of 16
 * columns (4 groups, one vexpandps per row) taken without a loop. The
 * fields are read once: stores through `out` could alias *p for the
 * compiler, which would reload them in every row otherwise. */
void crisp_f32_expand24_ukernel__avx512f(const crisp_expand24_rows *p, float *out) {
    const size_t blocks = p->blocks, block_cols = p->block_cols, cols = p->cols;
    const size_t row0 = p->row0, rows = p->rows, v = p->v, stride = p->out_stride;
    const size_t value_stride = p->value_stride;
    const uint64_t index_stride = p->index_stride;
    const uint8_t *stream = p->stream;
    size_t done = 0;
    for (size_t b = 0; b < blocks; b++) {
        uint32_t column; /* little-endian, as every target of this runtime */
        memcpy(&column, p->block_col + 4 * b, sizeof column);
        const size_t c0 = (size_t)column * block_cols;
        const size_t width = cols - c0 < block_cols ? cols - c0 : block_cols;
        const float *values = p->values + b * value_stride;
        const uint64_t first = p->first + b * index_stride;
        if (c0 > done)
            for (size_t i = 0; i < rows; i++) zero(out + i * stride + done, c0 - done);
        /* Row t's run t / v, counted without a division per row. */
        size_t run = row0 / v, in_run = row0 % v;
        float *o = out + c0;
        if (width == 16 && first % 4 == 0) { /* a run's 16 positions: 2 whole bytes */
            const uint8_t *bytes = stream + first / 4;
            const float *x = values + row0 * 8;
            for (size_t i = 0; i < rows; i++, o += stride, x += 8) {
                const uint8_t *q = bytes + 2 * run;
                const __mmask16 m = (__mmask16)(masks[q[0]] | (unsigned)masks[q[1]] << 8);
                const __m512 vx = _mm512_castps256_ps512(_mm256_loadu_ps(x));
                _mm512_storeu_ps(o, _mm512_maskz_expand_ps(m, vx));
                if (++in_run == v) in_run = 0, run++;
            }
        } else {
            for (size_t i = 0; i < rows; i++, o += stride) {
                expand_groups(width / 4, values + (row0 + i) * (width / 2), stream,
                              first + run * (width / 2), o);
                if (++in_run == v) in_run = 0, run++;
            }
        }
        done = c0 + width;
    }
    if (done < cols)
        for (size_t i = 0; i < rows; i++) zero(out + i * stride + done, cols - done);
}
