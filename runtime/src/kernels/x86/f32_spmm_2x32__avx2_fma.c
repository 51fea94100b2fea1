/* Hybrid-sparse run microkernel, AVX2+FMA: up to 2 rows of a run x 32 pixels
 * (4 ymm per row; 16 registers leave room for no more rows). Per kept column
 * the run's B row is loaded once and feeds every row of the chunk
 * (runtime/README.md, "Optimised kernels": rows of a run share every B
 * load). A lone row (the paper's per-row N:M) alternates two accumulator sets
 * over even and odd entries, summed at the end, for eight independent FMA
 * chains. Vector count (1..4) and rows (1..2) are compile-time constants of
 * each specialised loop; accumulators are named variables. */
#include <immintrin.h>

#include "kernels/ukernels.h"

static inline __m256i lane_mask(size_t nc, int v) { /* lanes of vector v below nc */
    const size_t lo = (size_t)v * 8, n = nc > lo ? (nc - lo < 8 ? nc - lo : 8) : 0;
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), idx);
}

#define VECS(X, i) X(i, 0) X(i, 1) X(i, 2) X(i, 3)
#define ROWS(X) X(0) X(1)

static inline __attribute__((always_inline)) void chunk(size_t rows, size_t nc, size_t entries,
                                                        const uint32_t *column, const float *w,
                                                        const float *b, size_t b_stride,
                                                        float *c, size_t c_stride,
                                                        const float *bias,
                                                        const crisp_minmax_params *p,
                                                        const int rr, const int nv) {
    const __m256i m0 = lane_mask(nc, 0), m1 = lane_mask(nc, 1), m2 = lane_mask(nc, 2),
                  m3 = lane_mask(nc, 3);
    const int full = nc == (size_t)(8 * nv);
#define DECL(i, v) __m256 c##i##v = _mm256_setzero_ps();
#define DECL_ROW(i) VECS(DECL, i)
    ROWS(DECL_ROW)
    /* The second set of a lone row's accumulators lives in row 1's registers. */
#define INIT(i, v) if (rr > i && nv > v) c##i##v = _mm256_set1_ps(bias != NULL ? bias[i] : 0.0f);
#define INIT_ROW(i) VECS(INIT, i)
    ROWS(INIT_ROW)
#define LOAD(v)                                                                           \
    const __m256 b##v = nv <= v ? _mm256_setzero_ps()                                     \
                        : full  ? _mm256_loadu_ps(be + 8 * v)                             \
                                : _mm256_maskload_ps(be + 8 * v, m##v);
    size_t e = 0;
    if (rr == 1) {
        for (; e + 2 <= entries; e += 2) {
            {
                const float *be = b + (size_t)column[e] * b_stride;
                LOAD(0) LOAD(1) LOAD(2) LOAD(3)
                const __m256 wv = _mm256_broadcast_ss(w + e * rows);
                if (nv > 0) c00 = _mm256_fmadd_ps(wv, b0, c00);
                if (nv > 1) c01 = _mm256_fmadd_ps(wv, b1, c01);
                if (nv > 2) c02 = _mm256_fmadd_ps(wv, b2, c02);
                if (nv > 3) c03 = _mm256_fmadd_ps(wv, b3, c03);
            }
            {
                const float *be = b + (size_t)column[e + 1] * b_stride;
                LOAD(0) LOAD(1) LOAD(2) LOAD(3)
                const __m256 wv = _mm256_broadcast_ss(w + (e + 1) * rows);
                if (nv > 0) c10 = _mm256_fmadd_ps(wv, b0, c10);
                if (nv > 1) c11 = _mm256_fmadd_ps(wv, b1, c11);
                if (nv > 2) c12 = _mm256_fmadd_ps(wv, b2, c12);
                if (nv > 3) c13 = _mm256_fmadd_ps(wv, b3, c13);
            }
        }
    }
    for (; e < entries; e++) {
        const float *be = b + (size_t)column[e] * b_stride;
        const float *we = w + e * rows;
        LOAD(0) LOAD(1) LOAD(2) LOAD(3)
#define ROW_FMA(i)                                                                     \
    if (rr > i) {                                                                      \
        const __m256 wv = _mm256_broadcast_ss(we + i);                                 \
        if (nv > 0) c##i##0 = _mm256_fmadd_ps(wv, b0, c##i##0);                        \
        if (nv > 1) c##i##1 = _mm256_fmadd_ps(wv, b1, c##i##1);                        \
        if (nv > 2) c##i##2 = _mm256_fmadd_ps(wv, b2, c##i##2);                        \
        if (nv > 3) c##i##3 = _mm256_fmadd_ps(wv, b3, c##i##3);                        \
    }
        ROWS(ROW_FMA)
    }
    if (rr == 1) {
        c00 = _mm256_add_ps(c00, c10), c01 = _mm256_add_ps(c01, c11);
        c02 = _mm256_add_ps(c02, c12), c03 = _mm256_add_ps(c03, c13);
    }
    /* max/min return their second operand when either is NaN: NaN survives. */
    const __m256 lo = _mm256_set1_ps(p->output_min), hi = _mm256_set1_ps(p->output_max);
#define STORE(i, v)                                                                        \
    if (rr > i && nv > v)                                                                  \
        _mm256_maskstore_ps(c + i * c_stride + 8 * v, m##v,                                \
                            _mm256_min_ps(hi, _mm256_max_ps(lo, c##i##v)));
#define STORE_ROW(i) VECS(STORE, i)
    ROWS(STORE_ROW)
}

#define CHUNK(rr, nv) chunk(rows, nc, entries, column, w + r0, b, b_stride, \
                            c + r0 * c_stride, c_stride, bias != NULL ? bias + r0 : NULL, \
                            params, rr, nv)
#define BY_ROWS(nv)                   \
    if (rows - r0 >= 2) CHUNK(2, nv); \
    else CHUNK(1, nv);

void crisp_f32_spmm_ukernel_2x32__avx2_fma(size_t rows, size_t nc, size_t entries,
                                           const uint32_t *column, const float *w,
                                           const float *b, size_t b_stride, float *c,
                                           size_t c_stride, const float *bias,
                                           const crisp_minmax_params *params) {
    for (size_t r0 = 0; r0 < rows; r0 += 2) {
        switch ((nc + 7) / 8) {
        case 1: BY_ROWS(1) break;
        case 2: BY_ROWS(2) break;
        case 3: BY_ROWS(3) break;
        default: BY_ROWS(4) break;
        }
    }
}
