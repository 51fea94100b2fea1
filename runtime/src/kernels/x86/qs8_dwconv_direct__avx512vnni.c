/* int8 depthwise conv reading the input in place, AVX-512 VNNI: one
 * vpdpbusd per window row adds a whole row of taps (a position's quad,
 * ukernels.h) for 16 positions. A chunk is 64 positions in four int32
 * accumulators: stride 1, phase f holds positions 4 j + f, each window row
 * one 64-byte load at x + f; stride 2, half h and phase f hold positions
 * 32 h + 2 j + f, one load at x + 64 h + 2 f - whole loads at both strides,
 * no deinterleaving. vpdpbusd takes unsigned bytes: q_x + 128 (an add of
 * 0x80 on the loaded bytes), 128 sum(w) folded into the bias with z_x; the
 * column masks merge z_x into the masked bytes (a masked load, which also
 * skips reading them). The requantisation is the reference's value by the
 * product rounded to int32 where the op's products fit, else the
 * clamp-first form of x86/qs8_requant_x86.h (z_y added after the first
 * pack), then two packs and a byte shuffle (and at stride 2 a qword
 * permute) put the four vectors' bytes back in position order. */
#include <immintrin.h>

#define CHUNK ((size_t)64)
#define GRAIN(s) ((size_t)64 / (s))
#define U8_OPERANDS 1
#define USES_FIT 1
#define KERNEL_NAME crisp_qs8_dwconv_direct_ukernel__avx512vnni

#include "kernels/common.h"
#include "kernels/ukernels.h"
#include "qs8_requant_x86.h"

/* The chunk's bytes to a row stream: one masked store (a short memcpy is a
 * call, as long as a small plane's whole chunk). */
#define STORE_N(dst, res, n)                                                              \
    _mm512_mask_storeu_epi8(dst, (n) >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (n)) - 1), \
                            _mm512_loadu_si512((const void *)(res)))

typedef struct state {
    int32_t w[CRISP_QS8_DWCONV_MAX_KH]; /* each window row's quad of weights, 0 past kw */
    size_t kh, row;                     /* window rows, dh * iw bytes apart */
    int32_t bias;                       /* bias - (z_x + 128) sum(w) */
    float multiplier, lo_z, hi_z; /* the clamp's bounds less z_y (qs8_requant_x86.h) */
    int16_t zy;
    int8_t zx, lo, hi;
} STATE;

static void state_init(STATE *st, const crisp_qs8_dwconv_image *im, const int8_t *w,
                       int32_t bias, float multiplier, const crisp_qs8_requant *q) {
    const size_t kw = im->kernel_width;
    for (size_t ky = 0; ky < im->kernel_height; ky++) st->w[ky] = crisp_qs8_quad(w + ky * kw, kw);
    st->kh = im->kernel_height, st->row = im->dilation_height * im->input_width;
    st->bias = bias, st->multiplier = multiplier;
    st->zy = (int16_t)q->output_zero_point;
    st->lo_z = (float)(q->output_min - q->output_zero_point);
    st->hi_z = (float)(q->output_max - q->output_zero_point);
    st->zx = (int8_t)q->input_zero_point;
    st->lo = (int8_t)q->output_min, st->hi = (int8_t)q->output_max;
}

/* 16 int32 sums -> 16 int32: rint of the product where the op's products
 * fit int32, else crisp_qs8_requantize's value less z_y (qs8_requant_x86.h;
 * pack4 adds z_y and clamps). */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline __m512i requant(__m512i acc, const STATE *st, int finish) {
    if (finish != CRISP_QS8_CLAMPED)
        return crisp_qs8_requant_fit_avx512(acc, _mm512_set1_ps(st->multiplier));
    return crisp_qs8_requant_unzeroed_avx512(acc, _mm512_set1_ps(st->multiplier),
                                             _mm512_set1_ps(st->lo_z), _mm512_set1_ps(st->hi_z));
}

/* Four requantised vectors as bytes, z_y added: per 128-bit lane l, [a j, b
 * j, c j, d j] for j = 4 l .. 4 l + 3 (the packs work within lanes). */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline __m512i pack4(__m512i a, __m512i b, __m512i c, __m512i d, const STATE *st,
                            int finish) {
    return crisp_qs8_pack_avx512(a, b, c, d, _mm512_set1_epi16(st->zy), _mm512_set1_epi8(st->lo),
                                 _mm512_set1_epi8(st->hi), finish == CRISP_QS8_FIT);
}

/* The mask of a phase: 64 bytes of the table (16 lanes' quads), as lanes. */
static inline __mmask64 lane_mask(const uint32_t *m) {
    return _mm512_movepi8_mask(_mm512_loadu_si512((const void *)m));
}

/* One phase's 16 positions, all window rows: masked bytes read z_x. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline __m512i phase(const STATE *st, const int8_t *x, __mmask64 k, __m512i zx,
                            size_t kh) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    __m512i acc = _mm512_set1_epi32(st->bias);
    for (size_t ky = 0; ky < kh; ky++) {
        const __m512i v = _mm512_mask_loadu_epi8(zx, k, x + ky * st->row);
        acc = _mm512_dpbusd_epi32(acc, _mm512_xor_si512(v, flip), _mm512_set1_epi32(st->w[ky]));
    }
    return acc;
}

#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void chunk(const STATE *st, const int8_t *x, const uint32_t *m, size_t n,
                         int8_t *res, size_t s, size_t kh_const, int finish) {
    const size_t kh = kh_const ? kh_const : st->kh, L = CRISP_QS8_DWCONV_QUAD_LANES;
    const __m512i zx = _mm512_set1_epi8(st->zx);
    if (s == 1) {
        /* positions 4 j + f; entry r + f of the table holds their masks */
        const __m512i b = pack4(requant(phase(st, x, lane_mask(m), zx, kh), st, finish),
                                requant(phase(st, x + 1, lane_mask(m + L), zx, kh), st, finish),
                                requant(phase(st, x + 2, lane_mask(m + 2 * L), zx, kh), st, finish),
                                requant(phase(st, x + 3, lane_mask(m + 3 * L), zx, kh), st, finish),
                                st, finish);
        /* position 16 l + 4 i + f is byte 4 f + i of lane l */
        const __m512i t = _mm512_broadcast_i32x4(
            _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
        /* One 64-byte store: the copy to the output rows that loads it back
         * then forwards from the store (narrower stores would not). */
        _mm512_storeu_si512((void *)res, _mm512_shuffle_epi8(b, t));
        return;
    }
    /* stride 2: half h, phase f = positions 32 h + 2 j + f, masks at entry r + 32 h + f */
    const __m512i r0 = requant(phase(st, x, lane_mask(m), zx, kh), st, finish);
    const __m512i r1 = requant(phase(st, x + 2, lane_mask(m + L), zx, kh), st, finish);
    __m512i r2 = r0, r3 = r1;
    if (n > 32) {
        r2 = requant(phase(st, x + 64, lane_mask(m + 32 * L), zx, kh), st, finish);
        r3 = requant(phase(st, x + 66, lane_mask(m + 33 * L), zx, kh), st, finish);
    }
    /* lane l: [r0 i, r1 i | r2 i, r3 i] (j = 4 l + i) -> positions 8 l + 2 i + f in
     * qword 0, 32 + 8 l + 2 i + f in qword 1; then the qwords in order. */
    const __m512i t = _mm512_broadcast_i32x4(
        _mm_setr_epi8(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15));
    const __m512i order = _mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7);
    _mm512_storeu_si512((void *)res, _mm512_permutexvar_epi64(
                                         order, _mm512_shuffle_epi8(pack4(r0, r1, r2, r3, st, finish), t)));
}

#include "kernels/generic/qs8_dwconv_direct_body.h"
