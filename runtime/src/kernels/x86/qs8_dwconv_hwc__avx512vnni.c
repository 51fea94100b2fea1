/* int8 depthwise 3 x 3 with the channels in the vector lanes, AVX-512 VNNI
 * (kernels/qs8_dwconv_hwc.inc): 16 channels per call, one int32 lane each.
 * 1. The tile: (oh - 1) s + 3 rows of cells, a cell being one padded input
 *    pixel's 16 channel bytes, q_x + 128 (vpdpbusd takes unsigned bytes;
 *    padding z_x + 128, so it adds w (z_x - z_x) = 0). Each input row goes
 *    in 16 pixels at a time: 16 channel rows of 16 bytes, transposed by two
 *    in-lane byte shuffles, a dword permute and four dword unpacks.
 * 2. The quads: for a tile row and output column ox, the four cells from
 *    (row, ox s), one 64-byte load, through a dword permute and a byte
 *    shuffle, so that each channel's lane holds its three taps and the
 *    fourth cell (weight 0). At stride 1 built once per row and column
 *    (each serves three output rows: the shuffles, not the dot products,
 *    bound the kernel); at stride 2, where a row serves one or two output
 *    rows and odd columns none, as each output needs them (measured faster).
 * 3. Output pixel (oy, ox): per window row ky the quad of (oy s + ky, ox)
 *    and one vpdpbusd for all 16 channels, from bias - (z_x + 128) sum(w)
 *    per channel.
 * 4. Four pixels' sums are requantised as the other int8 kernels do
 *    (qs8_requant_x86.h, crisp_qs8_finish: the product rounded to int32
 *    where the op's products fit, else the clamp first) and packed to bytes;
 *    a byte shuffle and four dword unpacks per 16 pixels put each channel's
 *    16 outputs in one 128-bit lane, stored to its plane.
 * The int32 sums are exact, so the outputs are bitwise the reference's. */
#include <immintrin.h>
#include <string.h>

#include "kernels/common.h"
#include "kernels/ukernels.h"
#include "qs8_requant_x86.h"

/* Per 128-bit lane, a 4 x 4 byte transpose: position 4 a + b <- 4 b + a. */
static inline __m512i bytes4x4(__m512i v) {
    const __m512i t = _mm512_broadcast_i32x4(
        _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
    return _mm512_shuffle_epi8(v, t);
}

/* Across the four 128-bit lanes, a 4 x 4 dword transpose: dword 4 a + b <- 4 b + a. */
static inline __m512i dwords4x4(__m512i v) {
    const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_epi32(idx, v);
}

/* Per 128-bit lane, dword g of a, b, c, d -> lane's dword (0, 1, 2, 3) of
 * out[g]: a 4 x 4 dword transpose across four registers. */
static inline void transpose4(__m512i a, __m512i b, __m512i c, __m512i d, __m512i out[4]) {
    const __m512i t0 = _mm512_unpacklo_epi32(a, b), t1 = _mm512_unpackhi_epi32(a, b);
    const __m512i t2 = _mm512_unpacklo_epi32(c, d), t3 = _mm512_unpackhi_epi32(c, d);
    out[0] = _mm512_unpacklo_epi64(t0, t2), out[1] = _mm512_unpackhi_epi64(t0, t2);
    out[2] = _mm512_unpacklo_epi64(t1, t3), out[3] = _mm512_unpackhi_epi64(t1, t3);
}

/* The channels' 16 input pixels x[c * plane + 0 .. m) (m <= 16) as the m
 * cells from `cells` on, flipped to q_x + 128. */
static void tile_pixels(const int8_t *x, size_t plane, size_t n, size_t m, int8_t *cells) {
    const __mmask64 cols = m >= 16 ? 0xFFFF : ((__mmask64)1 << m) - 1;
    __m512i z[4];
    for (size_t k = 0; k < 4; k++) {
        __m512i v = _mm512_setzero_si512();
        for (size_t i = 0; i < 4; i++)
            if (4 * k + i < n) {
                /* 512-bit masked loads (no AVX-512VL): bytes past m are not read */
                const __m128i r = _mm512_castsi512_si128(
                    _mm512_maskz_loadu_epi8(cols, x + (4 * k + i) * plane));
                switch (i) {
                case 0: v = _mm512_inserti32x4(v, r, 0); break;
                case 1: v = _mm512_inserti32x4(v, r, 1); break;
                case 2: v = _mm512_inserti32x4(v, r, 2); break;
                default: v = _mm512_inserti32x4(v, r, 3); break;
                }
            }
        /* lane i = channel 4 k + i's pixels; after: lane j dword g = its
         * pixel 4 g + j's channels 4 k .. 4 k + 3 */
        z[k] = bytes4x4(dwords4x4(bytes4x4(v)));
    }
    __m512i o[4];
    transpose4(z[0], z[1], z[2], z[3], o); /* o[g] lane j = pixel 4 g + j */
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    for (size_t g = 0; g < 4 && 4 * g < m; g++) {
        const size_t lanes = m - 4 * g >= 4 ? 4 : m - 4 * g;
        const __mmask64 keep = lanes == 4 ? ~(__mmask64)0 : ((__mmask64)1 << (16 * lanes)) - 1;
        _mm512_mask_storeu_epi8(cells + 64 * g, keep, _mm512_xor_si512(o[g], flip));
    }
}

#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline __m512i requant(__m512i acc, __m512 mult, __m512 lo_z, __m512 hi_z, int finish) {
    if (finish != CRISP_QS8_CLAMPED) return crisp_qs8_requant_fit_avx512(acc, mult);
    return crisp_qs8_requant_unzeroed_avx512(acc, mult, lo_z, hi_z);
}

#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void outputs(const crisp_qs8_dwconv_hwc_block *b, const crisp_qs8_requant *q,
                           const __m512i w[3], __m512i bias, __m512 mult, const int8_t *quads,
                           size_t wt, int finish) {
    const size_t n = b->channels, s = b->stride, ow = b->output_width;
    const size_t oplane = b->output_height * ow;
    const __m512 lo_z = _mm512_set1_ps((float)(q->output_min - q->output_zero_point));
    const __m512 hi_z = _mm512_set1_ps((float)(q->output_max - q->output_zero_point));
    const __m512i zy = _mm512_set1_epi16((short)q->output_zero_point);
    const __m512i lo8 = _mm512_set1_epi8((char)q->output_min);
    const __m512i hi8 = _mm512_set1_epi8((char)q->output_max);
    const size_t row = s == 1 ? 64 * ow : 16 * wt;
    const int8_t *tile = b->tile;
    size_t oy = 0, ox = 0; /* the next pixel; past the last, the last again */
    for (size_t p0 = 0; p0 < oplane; p0 += 16) {
        __m512i pg[4];
        for (size_t g = 0; g < 4; g++) {
            __m512i r[4];
            for (size_t j = 0; j < 4; j++) {
                const int8_t *cell = s == 1 ? quads + oy * row + 64 * ox
                                            : tile + 2 * oy * row + 32 * ox;
                if (++ox == ow) {
                    ox = 0;
                    if (++oy == b->output_height) oy--, ox = ow - 1; /* computed, not stored */
                }
                __m512i acc = bias;
                for (size_t ky = 0; ky < 3; ky++) {
                    const __m512i v = _mm512_loadu_si512((const void *)(cell + ky * row));
                    acc = _mm512_dpbusd_epi32(acc, s == 1 ? v : bytes4x4(dwords4x4(v)), w[ky]);
                }
                r[j] = requant(acc, mult, lo_z, hi_z, finish);
            }
            /* lane l: [pixel j: channels 4 l .. 4 l + 3] -> dword i = channel
             * 4 l + i's four pixels */
            pg[g] = bytes4x4(
                crisp_qs8_pack_avx512(r[0], r[1], r[2], r[3], zy, lo8, hi8, finish == CRISP_QS8_FIT));
        }
        __m512i o[4];
        transpose4(pg[0], pg[1], pg[2], pg[3], o); /* o[i] lane l = channel 4 l + i */
        const size_t m = oplane - p0 < 16 ? oplane - p0 : 16;
        const __mmask64 keep = m >= 16 ? 0xFFFF : ((__mmask64)1 << m) - 1;
        int8_t *y = b->y + p0;
        for (size_t c = 0; c < n; c++) {
            const __m512i v = o[c % 4];
            __m128i lane;
            switch (c / 4) {
            case 0: lane = _mm512_castsi512_si128(v); break;
            case 1: lane = _mm512_extracti32x4_epi32(v, 1); break;
            case 2: lane = _mm512_extracti32x4_epi32(v, 2); break;
            default: lane = _mm512_extracti32x4_epi32(v, 3); break;
            }
            _mm512_mask_storeu_epi8(y + c * oplane, keep, _mm512_castsi128_si512(lane));
        }
    }
}

void crisp_qs8_dwconv_hwc_ukernel__avx512vnni(const crisp_qs8_dwconv_hwc_block *b,
                                              const crisp_qs8_requant *q) {
    const size_t n = b->channels, ih = b->input_height, iw = b->input_width, s = b->stride;
    const size_t oh = b->output_height, ow = b->output_width;
    const size_t pt = b->padding_top, pl = b->padding_left, plane = ih * iw;
    const size_t hp = (oh - 1) * s + 3, wt = ((ow - 1) * s + 4 + 3) / 4 * 4;
    int8_t *tile = b->tile;
    /* Every cell the padding: z_x + 128; then the image's pixels. */
    memset(tile, (int)(uint8_t)((uint8_t)q->input_zero_point ^ 0x80u), hp * wt * 16);
    for (size_t iy = 0; iy < ih && iy + pt < hp; iy++)
        for (size_t ix = 0; ix < iw && ix + pl < wt; ix += 16) {
            const size_t m = iw - ix < 16 ? iw - ix : 16, fit = wt - (ix + pl);
            tile_pixels(b->x + iy * iw + ix, plane, n, m < fit ? m : fit,
                        tile + ((iy + pt) * wt + ix + pl) * 16);
        }
    /* Stride 1: the quads of every row's output columns, after the cells. */
    int8_t *quads = tile + hp * wt * 16;
    if (s == 1)
        for (size_t ty = 0; ty < hp; ty++)
            for (size_t ox = 0; ox < ow; ox++)
                _mm512_store_si512((void *)(quads + (ty * ow + ox) * 64),
                                   bytes4x4(dwords4x4(_mm512_loadu_si512(
                                       (const void *)(tile + (ty * wt + ox) * 16)))));
    /* Per channel lane: the window rows' weight quads, the folded bias, the
     * multiplier (0 past n: those lanes are computed and never stored). */
    int32_t wq[3][16] = {{0}}, fb[16] = {0};
    float mu[16] = {0};
    const int32_t z = q->input_zero_point + 128;
    for (size_t c = 0; c < n; c++) {
        for (size_t ky = 0; ky < 3; ky++) wq[ky][c] = crisp_qs8_quad(b->w + 9 * c + 3 * ky, 3);
        fb[c] = (int32_t)((int64_t)q->bias[c] - (int64_t)z * q->weight_sum[c]);
        mu[c] = q->multiplier[c];
    }
    const __m512i w[3] = {_mm512_loadu_si512((const void *)wq[0]),
                          _mm512_loadu_si512((const void *)wq[1]),
                          _mm512_loadu_si512((const void *)wq[2])};
    const __m512i bias = _mm512_loadu_si512((const void *)fb);
    const __m512 mult = _mm512_loadu_ps(mu);
    switch (crisp_qs8_finish(q)) {
    case CRISP_QS8_FIT_FULL: outputs(b, q, w, bias, mult, quads, wt, CRISP_QS8_FIT_FULL); break;
    case CRISP_QS8_FIT: outputs(b, q, w, bias, mult, quads, wt, CRISP_QS8_FIT); break;
    default: outputs(b, q, w, bias, mult, quads, wt, CRISP_QS8_CLAMPED); break;
    }
}
