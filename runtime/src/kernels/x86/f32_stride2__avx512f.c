/* Every second float, AVX-512F (kernels/f32_stride2.inc): 16 outputs from two
 * loads and one vpermt2ps. The loads are masked so nothing past src[2 (n -
 * 1)] is read (the last odd float of a row may be the end of a buffer). */
#include <immintrin.h>

#include "kernels/ukernels.h"

void crisp_f32_stride2_ukernel__avx512f(size_t n, const float *restrict src, float *restrict dst) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    size_t j = 0;
    for (; j + 16 <= n; j += 16) {
        const __m512 lo = _mm512_loadu_ps(src + 2 * j);
        const __m512 hi = _mm512_maskz_loadu_ps((__mmask16)0x7FFF, src + 2 * j + 16);
        _mm512_storeu_ps(dst + j, _mm512_permutex2var_ps(lo, even, hi));
    }
    if (j < n) { /* r < 16 outputs read 2 r - 1 floats */
        const size_t r = n - j, reads = 2 * r - 1;
        const __mmask16 m_lo = (__mmask16)(reads >= 16 ? 0xFFFF : (1u << reads) - 1);
        const __mmask16 m_hi = (__mmask16)(reads > 16 ? (1u << (reads - 16)) - 1 : 0);
        const __m512 lo = _mm512_maskz_loadu_ps(m_lo, src + 2 * j);
        const __m512 hi = _mm512_maskz_loadu_ps(m_hi, src + 2 * j + 16);
        _mm512_mask_storeu_ps(dst + j, (__mmask16)((1u << r) - 1),
                              _mm512_permutex2var_ps(lo, even, hi));
    }
}
