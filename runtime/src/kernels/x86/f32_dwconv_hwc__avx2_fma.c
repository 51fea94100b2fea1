/* Depthwise 3 x 3, channels in the lanes, AVX2: the walk of
 * generic/f32_dwconv_hwc_body.h with 8 channels per call, 8 x 8 transposes
 * and partial rows through an 8-float buffer. */
#include <immintrin.h>
#include <string.h>

/* r[i][j] -> r[j][i] for an 8 x 8 block of floats. */
static inline __attribute__((always_inline)) void transpose8(__m256 *r) {
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

static inline __m256 load_n(const float *p, size_t n) {
    if (n == 8) return _mm256_loadu_ps(p);
    float b[8] = {0};
    memcpy(b, p, n * sizeof *b);
    return _mm256_loadu_ps(b);
}

static inline void store_n(float *p, __m256 v, size_t n) {
    if (n == 8) {
        _mm256_storeu_ps(p, v);
        return;
    }
    float b[8];
    _mm256_storeu_ps(b, v);
    memcpy(p, b, n * sizeof *b);
}

#define CRISP_DWCONV_HWC_NAME crisp_f32_dwconv_hwc_ukernel__avx2_fma
#define VEC __m256
#define VL ((size_t)8)
#define VZERO() _mm256_setzero_ps()
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps(p, v)
#define VSET1(x) _mm256_set1_ps(x)
#define VFMA(acc, w, x) _mm256_fmadd_ps(w, x, acc)
#define VCLAMP(v, lo, hi) _mm256_min_ps(hi, _mm256_max_ps(lo, v))
#define VLOAD_N(p, n) load_n(p, n)
#define VSTORE_N(p, v, n) store_n(p, v, n)
#define TRANSPOSE(r) transpose8(r)
#include "kernels/generic/f32_dwconv_hwc_body.h"
