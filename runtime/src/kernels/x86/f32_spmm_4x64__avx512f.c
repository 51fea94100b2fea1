/* Hybrid-sparse run microkernel, AVX-512: up to 4 rows of a run x 64 pixels
 * (4 zmm per row). Per kept column the run's B row is loaded once (nv
 * vectors) and each row of the chunk broadcasts its weight into nv FMAs, so
 * rows sharing their N:M selection share every load (runtime/README.md,
 * "Optimised kernels"). A lone row
 * (the paper's per-row N:M) alternates two accumulator sets over even and
 * odd entries, summed at the end: eight independent FMA chains instead of
 * four, enough to hide the FMA latency. The vector count nv (1..4, from nc)
 * and the chunk's row count rr (1..4) are compile-time constants of each
 * specialised loop; the accumulators are named variables so they stay in
 * registers. */
#include <immintrin.h>

#include "kernels/ukernels.h"

static inline __mmask16 mask_of(size_t nc, int v) {
    const size_t lo = (size_t)v * 16;
    if (nc >= lo + 16) return (__mmask16)0xFFFF;
    return nc > lo ? (__mmask16)((1u << (nc - lo)) - 1) : (__mmask16)0;
}

#define VECS(X, i) X(i, 0) X(i, 1) X(i, 2) X(i, 3)
#define ROWS(X) X(0) X(1) X(2) X(3)

static inline __attribute__((always_inline)) void chunk(size_t rows, size_t nc, size_t entries,
                                                        const uint32_t *column, const float *w,
                                                        const float *b, size_t b_stride,
                                                        float *c, size_t c_stride,
                                                        const float *bias,
                                                        const crisp_minmax_params *p,
                                                        const int rr, const int nv) {
    const __mmask16 m0 = mask_of(nc, 0), m1 = mask_of(nc, 1), m2 = mask_of(nc, 2),
                    m3 = mask_of(nc, 3);
    const int full = nc == (size_t)(16 * nv);
#define DECL(i, v) __m512 c##i##v = _mm512_setzero_ps();
#define DECL_ROW(i) VECS(DECL, i)
    ROWS(DECL_ROW)
    /* The second set of a lone row's accumulators lives in row 1's registers. */
#define INIT(i, v) if (rr > i && nv > v) c##i##v = _mm512_set1_ps(bias != NULL ? bias[i] : 0.0f);
#define INIT_ROW(i) VECS(INIT, i)
    ROWS(INIT_ROW)
/* Full chunks load without a mask (no dependency on the mask register). */
#define LOAD(v)                                                                      \
    const __m512 b##v = nv <= v ? _mm512_setzero_ps()                                \
                        : full  ? _mm512_loadu_ps(be + 16 * v)                       \
                                : _mm512_maskz_loadu_ps(m##v, be + 16 * v);
    size_t e = 0;
    if (rr == 1) {
        for (; e + 2 <= entries; e += 2) {
            {
                const float *be = b + (size_t)column[e] * b_stride;
                LOAD(0) LOAD(1) LOAD(2) LOAD(3)
                const __m512 wv = _mm512_set1_ps(w[e * rows]);
                if (nv > 0) c00 = _mm512_fmadd_ps(wv, b0, c00);
                if (nv > 1) c01 = _mm512_fmadd_ps(wv, b1, c01);
                if (nv > 2) c02 = _mm512_fmadd_ps(wv, b2, c02);
                if (nv > 3) c03 = _mm512_fmadd_ps(wv, b3, c03);
            }
            {
                const float *be = b + (size_t)column[e + 1] * b_stride;
                LOAD(0) LOAD(1) LOAD(2) LOAD(3)
                const __m512 wv = _mm512_set1_ps(w[(e + 1) * rows]);
                if (nv > 0) c10 = _mm512_fmadd_ps(wv, b0, c10);
                if (nv > 1) c11 = _mm512_fmadd_ps(wv, b1, c11);
                if (nv > 2) c12 = _mm512_fmadd_ps(wv, b2, c12);
                if (nv > 3) c13 = _mm512_fmadd_ps(wv, b3, c13);
            }
        }
    }
    for (; e < entries; e++) {
        const float *be = b + (size_t)column[e] * b_stride;
        const float *we = w + e * rows;
        LOAD(0) LOAD(1) LOAD(2) LOAD(3)
#define ROW_FMA(i)                                                                     \
    if (rr > i) {                                                                      \
        const __m512 wv = _mm512_set1_ps(we[i]);                                       \
        if (nv > 0) c##i##0 = _mm512_fmadd_ps(wv, b0, c##i##0);                        \
        if (nv > 1) c##i##1 = _mm512_fmadd_ps(wv, b1, c##i##1);                        \
        if (nv > 2) c##i##2 = _mm512_fmadd_ps(wv, b2, c##i##2);                        \
        if (nv > 3) c##i##3 = _mm512_fmadd_ps(wv, b3, c##i##3);                        \
    }
        ROWS(ROW_FMA)
    }
    if (rr == 1) {
        c00 = _mm512_add_ps(c00, c10), c01 = _mm512_add_ps(c01, c11);
        c02 = _mm512_add_ps(c02, c12), c03 = _mm512_add_ps(c03, c13);
    }
    /* max/min return their second operand when either is NaN: NaN survives. */
    const __m512 lo = _mm512_set1_ps(p->output_min), hi = _mm512_set1_ps(p->output_max);
#define STORE(i, v)                                                                        \
    if (rr > i && nv > v)                                                                  \
        _mm512_mask_storeu_ps(c + i * c_stride + 16 * v, m##v,                             \
                              _mm512_min_ps(hi, _mm512_max_ps(lo, c##i##v)));
#define STORE_ROW(i) VECS(STORE, i)
    ROWS(STORE_ROW)
}

#define CHUNK(rr, nv) chunk(rows, nc, entries, column, w + r0, b, b_stride, \
                            c + r0 * c_stride, c_stride, bias != NULL ? bias + r0 : NULL, \
                            params, rr, nv)
#define BY_ROWS(nv)                          \
    switch (rows - r0 < 4 ? rows - r0 : 4) { \
    case 1: CHUNK(1, nv); break;             \
    case 2: CHUNK(2, nv); break;             \
    case 3: CHUNK(3, nv); break;             \
    default: CHUNK(4, nv); break;            \
    }

void crisp_f32_spmm_ukernel_4x64__avx512f(size_t rows, size_t nc, size_t entries,
                                          const uint32_t *column, const float *w,
                                          const float *b, size_t b_stride, float *c,
                                          size_t c_stride, const float *bias,
                                          const crisp_minmax_params *params) {
    for (size_t r0 = 0; r0 < rows; r0 += 4) {
        switch ((nc + 15) / 16) {
        case 1: BY_ROWS(1) break;
        case 2: BY_ROWS(2) break;
        case 3: BY_ROWS(3) break;
        default: BY_ROWS(4) break;
        }
    }
}
