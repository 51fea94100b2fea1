/* Depthwise conv microkernel, AVX2+FMA: 4 ymm per chunk (32 output pixels),
 * the shared body in generic/f32_dwconv_body.h. */
#include <immintrin.h>
#include <string.h>

static inline void store_n(float *p, __m256 v, size_t n) {
    if (n == 8) {
        _mm256_storeu_ps(p, v);
    } else {
        float tmp[8];
        _mm256_storeu_ps(tmp, v);
        memcpy(p, tmp, n * sizeof(float));
    }
}

#define CRISP_DWCONV_NAME crisp_f32_dwconv_ukernel__avx2_fma
#define VEC __m256
#define VL ((size_t)8)
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSET1(x) _mm256_set1_ps(x)
#define VFMA(acc, w, x) _mm256_fmadd_ps(w, x, acc)
/* max/min return their second operand when either is NaN: NaN survives. */
#define VCLAMP(v, lo, hi) _mm256_min_ps(hi, _mm256_max_ps(lo, v))
#define VSTORE_N(p, v, n) store_n(p, v, n)
#include "kernels/generic/f32_dwconv_body.h"
