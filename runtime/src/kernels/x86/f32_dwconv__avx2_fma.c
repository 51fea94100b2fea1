/* Depthwise conv microkernel, AVX2+FMA: 4 ymm per chunk (32 output pixels),
 * the shared body in generic/f32_dwconv_body.h. */
#include <immintrin.h>

#include "kernels/x86/avx2_tail.h"

#define CRISP_DWCONV_NAME crisp_f32_dwconv_ukernel__avx2_fma
#define VEC __m256
#define VL ((size_t)8)
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSET1(x) _mm256_set1_ps(x)
#define VFMA(acc, w, x) _mm256_fmadd_ps(w, x, acc)
/* max/min return their second operand when either is NaN: NaN survives. */
#define VCLAMP(v, lo, hi) _mm256_min_ps(hi, _mm256_max_ps(lo, v))
#define VSTORE_N(p, v, n) crisp_avx2_store_n(p, v, n)
#define CRISP_DWCONV_S1_NAME crisp_f32_dwconv_s1_ukernel__avx2_fma
#define VMASK __m256
#define VMASK_LOAD(p) _mm256_loadu_ps((const float *)(const void *)(p))
#define VLOADZ(p, m) _mm256_and_ps(_mm256_loadu_ps(p), m)
#include "kernels/generic/f32_dwconv_body.h"
