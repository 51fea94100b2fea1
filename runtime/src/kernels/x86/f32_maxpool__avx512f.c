/* Max-pooling microkernel, AVX-512: the depthwise body (f32_maxpool.inc) with
 * a NaN-sticky max: a lane that is already NaN stays NaN, a NaN input wins. */
#include <immintrin.h>

static inline __m512 max_nan(__m512 acc, __m512 x) {
    const __m512 m = _mm512_max_ps(acc, x); /* x when either is NaN */
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(acc, acc, _CMP_UNORD_Q), m, acc);
}

#define CRISP_DWCONV_NAME crisp_f32_maxpool_ukernel__avx512f
#define VEC __m512
#define VL ((size_t)16)
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSET1(x) _mm512_set1_ps(x)
#define VFMA(acc, w, x) ((void)(w), max_nan(acc, x))
#define VCLAMP(v, lo, hi) ((void)(lo), (void)(hi), (v))
#define VSTORE_N(p, v, n) _mm512_mask_storeu_ps(p, (__mmask16)((1u << (n)) - 1), v)
#include "kernels/generic/f32_dwconv_body.h"
