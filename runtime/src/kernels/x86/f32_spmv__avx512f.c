/* float32 hybrid linear runs at batch 1, AVX-512F (kernels/f32_spmv.inc). Per
 * 16 kept columns: one vgatherdps of their inputs, then for each of the
 * run's `rows` weight vectors (16 / rows columns x rows rows, the packed
 * order) a vpermps puts each column's input in its rows' lanes and one FMA
 * adds them up. Lane l accumulates row l % rows; the rows' sums are the
 * lanes added in a fixed order. A tail of t < 16 columns gathers and loads
 * under masks (no read past the run). Two accumulators hide the FMA
 * latency. */
#include <immintrin.h>

#include "kernels/common.h"
#include "kernels/ukernels.h"

static inline __attribute__((always_inline)) void run(size_t rows, size_t entries,
                                                       const uint32_t *column, const float *w,
                                                       const float *x, float *y,
                                                       const float *bias,
                                                       const crisp_minmax_params *p,
                                                       const size_t R) {
    const size_t per = 16 / R; /* columns per weight vector */
    __m512i perm[16];
    for (size_t j = 0; j < R; j++) {
        int32_t idx[16];
        for (int l = 0; l < 16; l++) idx[l] = (int32_t)(j * per + (size_t)l / R);
        perm[j] = _mm512_loadu_si512(idx);
    }
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    size_t e = 0;
    for (; e + 16 <= entries; e += 16) {
        const __m512 xg = _mm512_i32gather_ps(_mm512_loadu_si512(column + e), x, 4);
        const float *we = w + e * R;
        for (size_t j = 0; j < R; j += 2) {
            acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(we + 16 * j),
                                   _mm512_permutexvar_ps(perm[j], xg), acc0);
            if (j + 1 < R)
                acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(we + 16 * (j + 1)),
                                       _mm512_permutexvar_ps(perm[j + 1], xg), acc1);
        }
    }
    if (e < entries) {
        const size_t t = entries - e;
        const __mmask16 m = (__mmask16)((1u << t) - 1);
        const __m512i idx = _mm512_maskz_loadu_epi32(m, column + e);
        const __m512 xg = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, x, 4);
        const float *we = w + e * R;
        for (size_t j = 0; j < R && j * per < t; j++) {
            const size_t floats = (t - j * per < per ? t - j * per : per) * R;
            const __mmask16 mw = (__mmask16)(floats >= 16 ? 0xFFFF : (1u << floats) - 1);
            acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mw, we + 16 * j),
                                   _mm512_permutexvar_ps(perm[j], xg), acc0);
        }
    }
    float lanes[16];
    _mm512_storeu_ps(lanes, _mm512_add_ps(acc0, acc1));
    for (size_t r = 0; r < rows; r++) {
        float s = bias != NULL ? bias[r] : 0.0f;
        for (size_t l = r; l < 16; l += R) s += lanes[l];
        y[r] = crisp_clampf(s, p->output_min, p->output_max);
    }
}

void crisp_f32_spmv_ukernel__avx512f(size_t rows, size_t entries, const uint32_t *column,
                                     const float *w, const float *x, float *y, const float *bias,
                                     const crisp_minmax_params *p) {
    switch (rows) {
    case 1: run(rows, entries, column, w, x, y, bias, p, 1); break;
    case 2: run(rows, entries, column, w, x, y, bias, p, 2); break;
    case 4: run(rows, entries, column, w, x, y, bias, p, 4); break;
    case 8: run(rows, entries, column, w, x, y, bias, p, 8); break;
    case 16: run(rows, entries, column, w, x, y, bias, p, 16); break;
    default: crisp_f32_spmv_ukernel__scalar(rows, entries, column, w, x, y, bias, p); break;
    }
}
