/* int8 depthwise conv reading the input in place, AVX2: a chunk is 32
 * positions in four int32 accumulators of 8 lanes, each lane one position's
 * quads (ukernels.h): stride 1, phase f holds positions 4 j + f, each window
 * row one 32-byte load at x + f; stride 2, half h and phase f hold
 * positions 16 h + 2 j + f, one load at x + 32 h + 2 f. The column masks
 * blend z_x into the masked bytes; two shifts split each quad into its even
 * and odd bytes as int16 pairs (no shuffles), and two vpmaddwd multiply them
 * by the row's weight pairs (w0, w2) and (w1, w3) in int32, exact; z_x sum(w)
 * is folded into the bias. The requantisation is the reference's float
 * operations in its order (x86/qs8_requant_x86.h), then one byte shuffle
 * puts the outputs back in position order. */
#include <immintrin.h>

#include "qs8_requant_x86.h"

#define CHUNK ((size_t)32)
#define GRAIN(s) ((size_t)32 / (s))
#define U8_OPERANDS 0
#define USES_FIT 0
#define KERNEL_NAME crisp_qs8_dwconv_direct_ukernel__avx2

#include "kernels/common.h"
#include "kernels/ukernels.h"

typedef struct state {
    int32_t even[CRISP_QS8_DWCONV_MAX_KH], odd[CRISP_QS8_DWCONV_MAX_KH]; /* (w0, w2), (w1, w3) */
    size_t kh, row;
    int32_t bias; /* bias - z_x sum(w) */
    float multiplier;
    crisp_qs8_requant q;
    int8_t zx;
} STATE;

static inline int32_t pair(int8_t lo, int8_t hi) {
    return (int32_t)((uint32_t)(uint16_t)(int16_t)lo | ((uint32_t)(uint16_t)(int16_t)hi << 16));
}

static void state_init(STATE *st, const crisp_qs8_dwconv_image *im, const int8_t *w,
                       int32_t bias, float multiplier, const crisp_qs8_requant *q) {
    const size_t kw = im->kernel_width;
    for (size_t ky = 0; ky < im->kernel_height; ky++) {
        int8_t r[4] = {0, 0, 0, 0};
        for (size_t b = 0; b < kw; b++) r[b] = w[ky * kw + b];
        st->even[ky] = pair(r[0], r[2]), st->odd[ky] = pair(r[1], r[3]);
    }
    st->kh = im->kernel_height, st->row = im->dilation_height * im->input_width;
    st->bias = bias, st->multiplier = multiplier, st->q = *q;
    st->zx = (int8_t)q->input_zero_point;
}

#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline __m256i phase(const STATE *st, const int8_t *x, const uint32_t *m, __m256i zx,
                            size_t kh) {
    const __m256i keep = _mm256_loadu_si256((const __m256i *)(const void *)m);
    __m256i acc = _mm256_set1_epi32(st->bias);
    for (size_t ky = 0; ky < kh; ky++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(x + ky * st->row));
        v = _mm256_blendv_epi8(zx, v, keep);
        const __m256i even = _mm256_srai_epi16(_mm256_slli_epi16(v, 8), 8); /* bytes 0, 2 */
        const __m256i odd = _mm256_srai_epi16(v, 8);                        /* bytes 1, 3 */
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(even, _mm256_set1_epi32(st->even[ky])));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(odd, _mm256_set1_epi32(st->odd[ky])));
    }
    return acc;
}

#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void chunk(const STATE *st, const int8_t *x, const uint32_t *m, size_t n,
                         int8_t *res, size_t s, size_t kh_const, int finish) {
    const size_t kh = kh_const ? kh_const : st->kh, L = CRISP_QS8_DWCONV_QUAD_LANES;
    (void)finish;
    const __m256i zx = _mm256_set1_epi8(st->zx);
    const float mul = st->multiplier;
    __m256i a0, a1, a2, a3;
    (void)n;
    if (s == 1) { /* a_f: positions 4 j + f */
        a0 = phase(st, x, m, zx, kh);
        a1 = phase(st, x + 1, m + L, zx, kh);
        a2 = phase(st, x + 2, m + 2 * L, zx, kh);
        a3 = phase(st, x + 3, m + 3 * L, zx, kh);
    } else { /* a0, a1: positions 2 j + f; a2, a3: 16 + 2 j + f */
        a0 = phase(st, x, m, zx, kh);
        a1 = phase(st, x + 2, m + L, zx, kh);
        a2 = phase(st, x + 32, m + 16 * L, zx, kh);
        a3 = phase(st, x + 34, m + 17 * L, zx, kh);
    }
    /* Per 128-bit lane l (j = 4 l .. 4 l + 3): bytes [a0 j, a1 j, a2 j, a3 j]
     * (4 each; the packs saturate nothing: the values are in range). */
    const __m256i b = _mm256_packs_epi16(
        _mm256_packs_epi32(crisp_qs8_requant_avx2(a0, mul, &st->q),
                           crisp_qs8_requant_avx2(a1, mul, &st->q)),
        _mm256_packs_epi32(crisp_qs8_requant_avx2(a2, mul, &st->q),
                           crisp_qs8_requant_avx2(a3, mul, &st->q)));
    __m256i o;
    if (s == 1) { /* position 4 j + f = byte 4 f + j of its lane */
        const __m256i t = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,
                                           0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
        o = _mm256_shuffle_epi8(b, t);
    } else { /* half h, position 2 j + f: lane qword h holds j = 4 l .. 4 l + 3 */
        const __m256i t = _mm256_setr_epi8(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15,
                                           0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15);
        o = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(b, t), 0xD8);
    }
    _mm256_storeu_si256((__m256i *)(void *)res, o);
}

#include "kernels/generic/qs8_dwconv_direct_body.h"
