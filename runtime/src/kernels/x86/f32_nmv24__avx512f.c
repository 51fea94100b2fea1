/* float32 2:4 in-place linear, AVX-512 (f32_nmv24.inc). A whole block is
 * walked in 16-column segments, each loading its 16 inputs once; each pair of
 * rows takes its two 16-bit records as one 32-bit word, and a variable shift
 * spreads its 16 positions over the lanes (lanes 0-7 the first row's, 8-15
 * the second's), so one vpermps gathers both rows' inputs and one FMA takes
 * the pair's 16 values (8 per row). Pair k accumulates in its own register
 * over the blocks; the lanes are summed once at the end. Other blocks add
 * into a per-row scalar tail. */
#include <immintrin.h>

#include "kernels/generic/f32_nmv24_body.h"

/* Rows i and i + 1's 8 values each (lanes 0-7, 8-15), or row i's alone. */
static inline __m512 pair_values(const float *a, const float *b) {
    const __m512 lo = _mm512_castps256_ps512(_mm256_loadu_ps(a));
    if (b == NULL) return lo;
    return _mm512_castpd_ps(
        _mm512_insertf64x4(_mm512_castps_pd(lo), _mm256_castps_pd(_mm256_loadu_ps(b)), 1));
}

void crisp_f32_nmv24_ukernel__avx512f(const crisp_expand24_rows *p, const float *x, float *y,
                                      const float *bias, const crisp_minmax_params *params) {
    const size_t rows = p->rows, pairs = (rows + 1) / 2;
    const __m512i shift = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i base = _mm512_setr_epi32(0, 0, 4, 4, 8, 8, 12, 12, 0, 0, 4, 4, 8, 8, 12, 12);
    const __m512i three = _mm512_set1_epi32(3);
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    float tail[CRISP_NMV24_MAX_ROWS] = {0};
    for (size_t b = 0; b < p->blocks; b++) {
        const size_t c0 = crisp_nmv24_c0(p, b), w = crisp_nmv24_width(p, c0);
        if (crisp_nmv24_portable(p, x, b, c0, w, 0, rows, tail)) continue;
        if (w > 16) {
            /* A wide block (an N:M-only row): pair by pair along its rows, so
             * each pair reads its two rows' values as two forward streams
             * (rows w / 2 floats apart; block-major, every row of the block
             * would be a stream of its own). */
            for (size_t k = 0; k < pairs; k++) {
                const int lone = 2 * k + 1 == rows;
                const float *va = crisp_nmv24_values(p, b, w, 0, 2 * k);
                const float *vc = lone ? NULL : crisp_nmv24_values(p, b, w, 0, 2 * k + 1);
                const uint8_t *ra = crisp_nmv24_records(p, b, w, 2 * k);
                const uint8_t *rc = crisp_nmv24_records(p, b, w, 2 * k + (lone ? 0 : 1));
                __m512 acc = _mm512_setzero_ps();
                for (size_t s = 0; s < w / 16; s++) {
                    /* The next pair's rows, one pair ahead: short streams
                     * (w / 2 floats a row) that the hardware prefetchers
                     * barely ramp up on (a prefetch past the data does
                     * not fault). MobileNetV2's classifier from memory:
                     * 0.35 ms without, 0.24 with. */
                    _mm_prefetch((const char *)(va + w + 8 * s), _MM_HINT_T0);
                    _mm_prefetch((const char *)(va + w + w / 2 + 8 * s), _MM_HINT_T0);
                    const uint32_t word = crisp_nmv24_segment(ra, s) |
                                          (lone ? 0u : crisp_nmv24_segment(rc, s) << 16);
                    const __m512i at = _mm512_add_epi32(
                        base, _mm512_and_si512(_mm512_srlv_epi32(_mm512_set1_epi32((int)word), shift), three));
                    const __m512 v = pair_values(va + 8 * s, lone ? NULL : vc + 8 * s);
                    acc = _mm512_fmadd_ps(v, _mm512_permutexvar_ps(at, _mm512_loadu_ps(x + c0 + 16 * s)), acc);
                }
                tail[2 * k] += _mm512_mask_reduce_add_ps((__mmask16)0x00FF, acc);
                if (!lone) tail[2 * k + 1] += _mm512_mask_reduce_add_ps((__mmask16)0xFF00, acc);
            }
            continue;
        }
        for (size_t s = 0; s < w / 16; s++) {
            const __m512 xs = _mm512_loadu_ps(x + c0 + 16 * s);
#define PAIR(k, A)                                                                               \
    if (pairs > (k)) {                                                                           \
        const int lone = 2 * (k) + 1 == rows;                                                    \
        const uint32_t word = crisp_nmv24_record(p, b, w, s, 2 * (k)) |                          \
                              (lone ? 0u : crisp_nmv24_record(p, b, w, s, 2 * (k) + 1) << 16);   \
        const __m512i at = _mm512_add_epi32(                                                     \
            base, _mm512_and_si512(_mm512_srlv_epi32(_mm512_set1_epi32((int)word), shift), three)); \
        const __m512 v = pair_values(crisp_nmv24_values(p, b, w, s, 2 * (k)),                    \
                                     lone ? NULL : crisp_nmv24_values(p, b, w, s, 2 * (k) + 1)); \
        A = _mm512_fmadd_ps(v, _mm512_permutexvar_ps(at, xs), A);                                \
    }
            PAIR(0, a0) PAIR(1, a1) PAIR(2, a2) PAIR(3, a3)
            PAIR(4, a4) PAIR(5, a5) PAIR(6, a6) PAIR(7, a7)
#undef PAIR
        }
    }
    const __m512 acc[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
    for (size_t i = 0; i < rows; i++) {
        const float sum = _mm512_mask_reduce_add_ps(i % 2 ? (__mmask16)0xFF00 : (__mmask16)0x00FF,
                                                    acc[i / 2]) + tail[i];
        y[i] = crisp_nmv24_output(sum, bias, i, params);
    }
}
