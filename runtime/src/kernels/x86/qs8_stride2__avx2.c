/* Every second byte, AVX2 (kernels/qs8_stride2.inc): 32 outputs from two
 * 32-byte loads, the even bytes packed from the masked 16-bit words and the
 * two 128-bit lanes put back in order; the last 32 outputs and the tail go
 * through the portable loop, so nothing past src[2 (n - 1)] is read. */
#include <immintrin.h>

#include "kernels/ukernels.h"

void crisp_qs8_stride2_ukernel__avx2(size_t n, const int8_t *restrict src, int8_t *restrict dst) {
    const __m256i low = _mm256_set1_epi16(0x00FF);
    size_t j = 0;
    for (; j + 33 <= n; j += 32) { /* reads src[2 j .. 2 j + 63] <= src[2 (n - 1)] */
        const __m256i lo = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(const void *)(src + 2 * j)), low);
        const __m256i hi = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(const void *)(src + 2 * j + 32)), low);
        const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi16(lo, hi), 0xD8);
        _mm256_storeu_si256((__m256i *)(void *)(dst + j), packed);
    }
    crisp_qs8_stride2_ukernel__scalar(n - j, src + 2 * j, dst + j);
}
