/* float32 2:4 in-place linear, AVX2 (f32_nmv24.inc). A whole block is
 * walked in 16-column segments, each loading its 16 inputs as two vectors;
 * each row shifts its 16-bit record's 8 positions over the lanes, gathers lanes 0-3
 * (columns 0-7) from the low vector and 4-7 from the high one (vpermps uses
 * the index's low 3 bits, so the same indices serve both) and takes one FMA
 * with its 8 values. Rows in passes of 8, one register each; other blocks
 * add into a per-row scalar tail. */
#include <immintrin.h>

#include "kernels/generic/f32_nmv24_body.h"

static inline float hsum(__m256 v) {
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

void crisp_f32_nmv24_ukernel__avx2_fma(const crisp_expand24_rows *p, const float *x, float *y,
                                       const float *bias, const crisp_minmax_params *params) {
    const __m256i shift = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    const __m256i base = _mm256_setr_epi32(0, 0, 4, 4, 8, 8, 12, 12);
    const __m256i three = _mm256_set1_epi32(3);
    for (size_t r0 = 0; r0 < p->rows; r0 += 8) {
        const size_t rows = p->rows - r0 < 8 ? p->rows - r0 : 8;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
               a7 = a0;
        float tail[8] = {0};
        for (size_t b = 0; b < p->blocks; b++) {
            const size_t c0 = crisp_nmv24_c0(p, b), w = crisp_nmv24_width(p, c0);
            if (crisp_nmv24_portable(p, x, b, c0, w, r0, rows, tail)) continue;
            /* Row by row, each along its segments: a wide block (an N:M-only
             * row) then reads each row's values as one forward stream, the
             * next row's prefetched (short streams the hardware prefetchers
             * barely ramp up on; a prefetch past the data does not fault). */
#define ROW(k, A)                                                                                \
    if (rows > (k)) {                                                                            \
        for (size_t s = 0; s < w / 16; s++) {                                                    \
            const float *v = crisp_nmv24_values(p, b, w, s, r0 + (k));                           \
            if (w > 16) _mm_prefetch((const char *)(v + w / 2), _MM_HINT_T0);                   \
            const uint32_t word = crisp_nmv24_record(p, b, w, s, r0 + (k));                      \
            const __m256i at = _mm256_add_epi32(                                                 \
                base, _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)word), shift), three)); \
            const __m256 g = _mm256_blend_ps(_mm256_permutevar8x32_ps(_mm256_loadu_ps(x + c0 + 16 * s), at), \
                                             _mm256_permutevar8x32_ps(_mm256_loadu_ps(x + c0 + 16 * s + 8), at), \
                                             0xF0);                                              \
            A = _mm256_fmadd_ps(_mm256_loadu_ps(v), g, A);                                       \
        }                                                                                        \
    }
            ROW(0, a0) ROW(1, a1) ROW(2, a2) ROW(3, a3)
            ROW(4, a4) ROW(5, a5) ROW(6, a6) ROW(7, a7)
#undef ROW
        }
        const __m256 acc[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
        for (size_t i = 0; i < rows; i++) {
            y[r0 + i] = crisp_nmv24_output(hsum(acc[i]) + tail[i], bias, r0 + i, params);
        }
    }
}
