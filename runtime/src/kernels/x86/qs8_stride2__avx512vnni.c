/* Every second byte, AVX-512BW (kernels/qs8_stride2.inc): 64 outputs from two
 * 64-byte loads; the even bytes are the low halves of the 16-bit words, which
 * vpackuswb packs without saturating once masked to 0..255 (per 128-bit
 * lane: a qword permute restores the order). Loads are masked so nothing past
 * src[2 (n - 1)] is read. */
#include <immintrin.h>

#include "kernels/ukernels.h"

static inline __m512i even_bytes(__m512i lo, __m512i hi) {
    const __m512i low = _mm512_set1_epi16(0x00FF);
    const __m512i packed = _mm512_packus_epi16(_mm512_and_si512(lo, low), _mm512_and_si512(hi, low));
    return _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7), packed);
}

void crisp_qs8_stride2_ukernel__avx512vnni(size_t n, const int8_t *restrict src,
                                           int8_t *restrict dst) {
    size_t j = 0;
    for (; j + 64 <= n; j += 64) {
        const __m512i lo = _mm512_loadu_si512(src + 2 * j);
        const __m512i hi = _mm512_maskz_loadu_epi8(~(__mmask64)0 >> 1, src + 2 * j + 64);
        _mm512_storeu_si512(dst + j, even_bytes(lo, hi));
    }
    if (j < n) { /* r < 64 outputs read 2 r - 1 bytes */
        const size_t r = n - j, reads = 2 * r - 1;
        const __mmask64 m_lo = reads >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << reads) - 1;
        const __mmask64 m_hi = reads > 64 ? ((__mmask64)1 << (reads - 64)) - 1 : 0;
        const __m512i lo = _mm512_maskz_loadu_epi8(m_lo, src + 2 * j);
        const __m512i hi = _mm512_maskz_loadu_epi8(m_hi, src + 2 * j + 64);
        _mm512_mask_storeu_epi8(dst + j, ((__mmask64)1 << r) - 1, even_bytes(lo, hi));
    }
}
