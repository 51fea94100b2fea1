/* Dense GEMM microkernel, AVX-512: 12 rows x 32 pixels (24 zmm accumulators,
 * two B vectors, one broadcast weight: 27 of 32 registers). Each k step loads
 * two 16-pixel vectors of B once and feeds them to 24 FMAs. The accumulators
 * are named variables, not an array, so the compiler keeps all of them in
 * registers. Pixel tails use masked loads and stores (masked-off lanes never
 * touch memory); a tile of at most 16 pixels takes a one-vector loop, a
 * panel of at most 8 (4) rows an 8-row (4-row) loop, so tails waste little.
 * Rows past mr inside a tile repeat the last row and are not stored. */
#include <immintrin.h>

#include "kernels/ukernels.h"

#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

/* One tile shape: `rows` (4, 8 or 12: the smallest that covers mr, so a
 * short last panel wastes at most 3 rows) x nv vectors; both compile-time
 * constants of each inlined copy, so unused accumulators vanish. */
static inline __attribute__((always_inline)) void tile(size_t mr, size_t nc, size_t kc,
                                                       const float *a, size_t a_stride,
                                                       const float *b, size_t b_stride,
                                                       float *c, size_t c_stride,
                                                       const float *bias,
                                                       const crisp_minmax_params *params,
                                                       const size_t rows, const int nv) {
#define ROW_PTR(i) const float *a##i = a + ((i) < mr ? (i) : mr - 1) * a_stride;
    ROWS(ROW_PTR)
#define BIAS(i) (bias != NULL ? bias[(i) < mr ? (i) : mr - 1] : 0.0f)
    const __mmask16 m0 = nc >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nc) - 1);
    const __mmask16 m1 = nc >= 32   ? (__mmask16)0xFFFF
                         : nc > 16 ? (__mmask16)((1u << (nc - 16)) - 1)
                                   : (__mmask16)0;
#define INIT(i) __m512 c##i##0 = _mm512_set1_ps(BIAS(i)), c##i##1 = c##i##0;
    ROWS(INIT)
    for (size_t k = 0; k < kc; k++) {
        const float *bk = b + k * b_stride;
        const __m512 b0 = _mm512_maskz_loadu_ps(m0, bk);
        const __m512 b1 = nv > 1 ? _mm512_maskz_loadu_ps(m1, bk + 16) : b0;
#define STEP(i)                                                      \
    if (rows > (i)) {                                                \
        const __m512 w = _mm512_set1_ps(a##i[k]);                    \
        c##i##0 = _mm512_fmadd_ps(w, b0, c##i##0);                   \
        if (nv > 1) c##i##1 = _mm512_fmadd_ps(w, b1, c##i##1);       \
    }
        ROWS(STEP)
    }
    /* max/min return their second operand when either is NaN: NaN survives,
     * as in the reference clamp. */
    const __m512 lo = _mm512_set1_ps(params->output_min), hi = _mm512_set1_ps(params->output_max);
#define CLAMP(v) _mm512_min_ps(hi, _mm512_max_ps(lo, v))
#define STORE(i)                                                                         \
    if (rows > (i) && (i) < mr) {                                                        \
        _mm512_mask_storeu_ps(c + (i) * c_stride, m0, CLAMP(c##i##0));                   \
        if (nv > 1) _mm512_mask_storeu_ps(c + (i) * c_stride + 16, m1, CLAMP(c##i##1));  \
    }
    ROWS(STORE)
}

#define TILE(rows, nv) tile(mr, nc, kc, a, a_stride, b, b_stride, c, c_stride, bias, params, rows, nv)

void crisp_f32_gemm_ukernel_12x32__avx512f(size_t mr, size_t nc, size_t kc, const float *a,
                                           size_t a_stride, const float *b, size_t b_stride,
                                           float *c, size_t c_stride, const float *bias,
                                           const crisp_minmax_params *params) {
    if (nc > 16) {
        if (mr > 8) TILE(12, 2);
        else if (mr > 4) TILE(8, 2);
        else TILE(4, 2);
    } else {
        if (mr > 8) TILE(12, 1);
        else if (mr > 4) TILE(8, 1);
        else TILE(4, 1);
    }
}
