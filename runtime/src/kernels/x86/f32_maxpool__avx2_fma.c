/* Max-pooling microkernel, AVX2: the depthwise body (f32_maxpool.inc) with a
 * NaN-sticky max: a lane that is already NaN stays NaN, a NaN input wins. */
#include <immintrin.h>

#include "kernels/x86/avx2_tail.h"

static inline __m256 max_nan(__m256 acc, __m256 x) {
    const __m256 m = _mm256_max_ps(acc, x); /* x when either is NaN */
    return _mm256_blendv_ps(m, acc, _mm256_cmp_ps(acc, acc, _CMP_UNORD_Q));
}

#define CRISP_DWCONV_NAME crisp_f32_maxpool_ukernel__avx2_fma
#define VEC __m256
#define VL ((size_t)8)
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSET1(x) _mm256_set1_ps(x)
#define VFMA(acc, w, x) ((void)(w), max_nan(acc, x))
#define VCLAMP(v, lo, hi) ((void)(lo), (void)(hi), (v))
#define VSTORE_N(p, v, n) crisp_avx2_store_n(p, v, n)
#include "kernels/generic/f32_dwconv_body.h"
