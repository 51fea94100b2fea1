/* Dense GEMV microkernel, AVX-512 (generic/f32_gemv_body.h): 16 lanes of K
 * per row accumulator. */
#include <immintrin.h>

#define CRISP_GEMV_NAME crisp_f32_gemv_ukernel_4__avx512f
#define VEC __m512
#define VL ((size_t)16)
#define VZERO() _mm512_setzero_ps()
#define VLOAD(p) _mm512_loadu_ps(p)
#define VFMA(acc, w, x) _mm512_fmadd_ps(w, x, acc)
#define VSUM(v) _mm512_reduce_add_ps(v)
#include "kernels/generic/f32_gemv_body.h"
