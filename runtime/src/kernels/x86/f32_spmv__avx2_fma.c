/* float32 hybrid linear runs at batch 1, AVX2 (kernels/f32_spmv.inc): per 8
 * kept columns one vgatherdps, then per weight vector (8 / rows columns x
 * rows rows) a vpermps into its rows' lanes and one FMA; lane l accumulates
 * row l % rows (rows 1, 2, 4, 8; others the portable loop). The tail's
 * columns are read under a mask; its weights through a zero-padded copy. */
#include <immintrin.h>
#include <string.h>

#include "kernels/common.h"
#include "kernels/ukernels.h"

static inline __attribute__((always_inline)) void run(size_t rows, size_t entries,
                                                       const uint32_t *column, const float *w,
                                                       const float *x, float *y,
                                                       const float *bias,
                                                       const crisp_minmax_params *p,
                                                       const size_t R) {
    const size_t per = 8 / R;
    __m256i perm[8];
    for (size_t j = 0; j < R; j++) {
        int32_t idx[8];
        for (int l = 0; l < 8; l++) idx[l] = (int32_t)(j * per + (size_t)l / R);
        perm[j] = _mm256_loadu_si256((const __m256i *)(const void *)idx);
    }
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    size_t e = 0;
    for (; e + 8 <= entries; e += 8) {
        const __m256i idx = _mm256_loadu_si256((const __m256i *)(const void *)(column + e));
        const __m256 xg = _mm256_i32gather_ps(x, idx, 4);
        const float *we = w + e * R;
        for (size_t j = 0; j < R; j += 2) {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(we + 8 * j), _mm256_permutevar8x32_ps(xg, perm[j]),
                                   acc0);
            if (j + 1 < R)
                acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(we + 8 * (j + 1)),
                                       _mm256_permutevar8x32_ps(xg, perm[j + 1]), acc1);
        }
    }
    if (e < entries) {
        const size_t t = entries - e;
        uint32_t cols[8] = {0};
        float wt[64] = {0};
        memcpy(cols, column + e, t * sizeof *cols);
        memcpy(wt, w + e * R, t * R * sizeof *wt);
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)t), lane);
        const __m256 xg = _mm256_mask_i32gather_ps(
            _mm256_setzero_ps(), x, _mm256_loadu_si256((const __m256i *)(const void *)cols),
            _mm256_castsi256_ps(m), 4);
        for (size_t j = 0; j < R && j * per < t; j++)
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(wt + 8 * j), _mm256_permutevar8x32_ps(xg, perm[j]),
                                   acc0);
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, _mm256_add_ps(acc0, acc1));
    for (size_t r = 0; r < rows; r++) {
        float s = bias != NULL ? bias[r] : 0.0f;
        for (size_t l = r; l < 8; l += R) s += lanes[l];
        y[r] = crisp_clampf(s, p->output_min, p->output_max);
    }
}

void crisp_f32_spmv_ukernel__avx2_fma(size_t rows, size_t entries, const uint32_t *column,
                                      const float *w, const float *x, float *y, const float *bias,
                                      const crisp_minmax_params *p) {
    switch (rows) {
    case 1: run(rows, entries, column, w, x, y, bias, p, 1); break;
    case 2: run(rows, entries, column, w, x, y, bias, p, 2); break;
    case 4: run(rows, entries, column, w, x, y, bias, p, 4); break;
    case 8: run(rows, entries, column, w, x, y, bias, p, 8); break;
    default: crisp_f32_spmv_ukernel__scalar(rows, entries, column, w, x, y, bias, p); break;
    }
}
