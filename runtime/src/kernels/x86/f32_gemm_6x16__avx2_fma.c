/* Dense GEMM microkernel, AVX2+FMA: 6 rows x 16 pixels (12 ymm accumulators,
 * two B vectors, one broadcast: 15 of 16 registers), named variables so the
 * compiler keeps them in registers. Pixel tails use vmaskmovps (masked-off
 * lanes never touch memory); a tile of at most 8 pixels takes a one-vector
 * loop. Rows past mr repeat the last row and are not stored. */
#include <immintrin.h>

#include "kernels/ukernels.h"

#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)

static inline __m256i lane_mask(size_t n) { /* first min(n, 8) lanes */
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n < 8 ? n : 8)), idx);
}

void crisp_f32_gemm_ukernel_6x16__avx2_fma(size_t mr, size_t nc, size_t kc, const float *a,
                                           size_t a_stride, const float *b, size_t b_stride,
                                           float *c, size_t c_stride, const float *bias,
                                           const crisp_minmax_params *params) {
#define ROW_PTR(i) const float *a##i = a + ((i) < mr ? (i) : mr - 1) * a_stride;
    ROWS(ROW_PTR)
#define BIAS(i) (bias != NULL ? bias[(i) < mr ? (i) : mr - 1] : 0.0f)
    const __m256i m0 = lane_mask(nc), m1 = lane_mask(nc > 8 ? nc - 8 : 0);
    /* max/min return their second operand when either is NaN: NaN survives. */
    const __m256 lo = _mm256_set1_ps(params->output_min), hi = _mm256_set1_ps(params->output_max);
#define CLAMP(v) _mm256_min_ps(hi, _mm256_max_ps(lo, v))
    if (nc > 8) {
#define INIT2(i) __m256 c##i##0 = _mm256_set1_ps(BIAS(i)), c##i##1 = c##i##0;
        ROWS(INIT2)
        const int full = nc == 16;
        for (size_t k = 0; k < kc; k++) {
            const float *bk = b + k * b_stride;
            const __m256 b0 = _mm256_loadu_ps(bk);
            const __m256 b1 = full ? _mm256_loadu_ps(bk + 8) : _mm256_maskload_ps(bk + 8, m1);
#define STEP2(i)                                      \
    {                                                 \
        const __m256 w = _mm256_broadcast_ss(a##i + k); \
        c##i##0 = _mm256_fmadd_ps(w, b0, c##i##0);    \
        c##i##1 = _mm256_fmadd_ps(w, b1, c##i##1);    \
    }
            ROWS(STEP2)
        }
#define STORE2(i)                                                               \
    if ((i) < mr) {                                                             \
        _mm256_storeu_ps(c + (i) * c_stride, CLAMP(c##i##0));                   \
        _mm256_maskstore_ps(c + (i) * c_stride + 8, m1, CLAMP(c##i##1));        \
    }
        ROWS(STORE2)
    } else {
#define INIT1(i) __m256 c##i##0 = _mm256_set1_ps(BIAS(i));
        ROWS(INIT1)
        for (size_t k = 0; k < kc; k++) {
            const __m256 b0 = _mm256_maskload_ps(b + k * b_stride, m0);
#define STEP1(i) c##i##0 = _mm256_fmadd_ps(_mm256_broadcast_ss(a##i + k), b0, c##i##0);
            ROWS(STEP1)
        }
#define STORE1(i) \
    if ((i) < mr) _mm256_maskstore_ps(c + (i) * c_stride, m0, CLAMP(c##i##0));
        ROWS(STORE1)
    }
}
