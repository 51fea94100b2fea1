/* int8 dense GEMV microkernel, AVX-VNNI (the VEX vpdpbusd on YMM: client
 * cores without AVX-512; generic/qs8_gemv_body.h): 32 bytes of K per step,
 * x made unsigned (q_x + 128, one xor) for vpdpbusd's u8 x s8 products,
 * which it adds four at a time into int32 lanes without saturation (the
 * AVX2 kernel widens to 16 bits and takes 16 bytes per step). No masked
 * byte loads below AVX-512: K's last kc % 32 bytes go through the body's
 * scalar loop. */
#include <immintrin.h>
#include <stdint.h>

#include "qs8_requant_x86.h"


#define CRISP_QS8_GEMV_NAME crisp_qs8_gemv_ukernel_4__avxvnni
#define XVEC __m256i
#define VL ((size_t)32)
#define ACC __m256i
#define ACC_ZERO() _mm256_setzero_si256()
#define XLOAD(p) \
    _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(p)), \
                     _mm256_set1_epi8((char)0x80))
#define DOT(acc, w, xv) \
    _mm256_dpbusd_avx_epi32(acc, xv, _mm256_loadu_si256((const __m256i *)(const void *)(w)))
#define HSUM(acc) crisp_qs8_hsum_avx2(acc)
#define X_OFFSET 128
#include "kernels/generic/qs8_gemv_body.h"
