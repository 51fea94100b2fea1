/* Internal to the AVX2 kernels: store the first n <= 8 lanes of a vector
 * (a partial row end; vmaskmovps needs a mask vector, a copy is simpler). */
#ifndef CRISP_KERNELS_X86_AVX2_TAIL_H
#define CRISP_KERNELS_X86_AVX2_TAIL_H

#include <immintrin.h>
#include <stddef.h>
#include <string.h>

static inline void crisp_avx2_store_n(float *p, __m256 v, size_t n) {
    if (n == 8) {
        _mm256_storeu_ps(p, v);
    } else {
        float tmp[8];
        _mm256_storeu_ps(tmp, v);
        memcpy(p, tmp, n * sizeof(float));
    }
}

#endif
