/* int8 hybrid linear run microkernel, AVX-512 VNNI, for runs of R = 1, 2, 4,
 * 8 or 16 rows (the portable tier takes other heights). The weight stream
 * of a run is 32-bit words d = group * R + row (kernels/common.h), so with R
 * dividing 16 the word in lane j of every 64-byte vector belongs to row
 * j % R, and one accumulator serves every row. Per 64 entries (16 groups):
 * four vpgatherdd fetch the inputs' bytes (each lane reads 4 bytes at
 * x + column: the driver's slack, CRISP_QS8_SPMV_SLACK), vpmovdb packs them
 * to 16 group words, made unsigned (q_x + 128, one xor) for vpdpbusd's u8
 * operand; then each of the R weight vectors takes its groups' words into
 * its rows' lanes with one vpermd (lane j of vector v: group (16 v + j) / R)
 * and one vpdpbusd. vpdpbusd adds u8 x s8 products in int32 without
 * saturation; the 128 and z_x come out of the bias once per row
 * (weight_sum), and every partial sum is bounded by 255 sum |q_w| (src/pack.c
 * bounds the total), so the sums are exact. Rows are the lanes j = r mod R
 * added at the end; the requantisation is crisp_qs8_requantize's. */
#include <immintrin.h>

#include "kernels/common.h"
#include "kernels/ukernels.h"

/* Bytes x[column[i]] for i < n <= 16 (0 past n) in the 16 bytes. */
static inline __m128i gather16(const uint32_t *column, size_t n, const int8_t *x) {
    const __mmask16 m = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
    const __m512i cols = _mm512_maskz_loadu_epi32(m, column);
    const __m512i g = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, cols, x, 1);
    return _mm512_cvtepi32_epi8(g);
}

void crisp_qs8_spmv_ukernel__avx512vnni(size_t rows, size_t entries, const uint32_t *column,
                                        const int8_t *w, const int8_t *x, int8_t *y,
                                        const crisp_qs8_requant *q) {
    if (rows > 16 || 16 % rows != 0) {
        crisp_qs8_spmv_ukernel__scalar(rows, entries, column, w, x, y, q);
        return;
    }
    const unsigned shift = rows == 1 ? 0 : rows == 2 ? 1 : rows == 4 ? 2 : rows == 8 ? 3 : 4;
    const __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i idx0 = _mm512_srl_epi32(iota, _mm_cvtsi32_si128((int)shift));
    const __m512i step = _mm512_set1_epi32(16 >> shift);
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
    for (size_t e = 0; e < entries; e += 64) {
        const size_t n = entries - e < 64 ? entries - e : 64;
        __m512i xg = _mm512_zextsi128_si512(gather16(column + e, n, x));
        if (n > 16) xg = _mm512_inserti32x4(xg, gather16(column + e + 16, n - 16, x), 1);
        if (n > 32) xg = _mm512_inserti32x4(xg, gather16(column + e + 32, n - 32, x), 2);
        if (n > 48) xg = _mm512_inserti32x4(xg, gather16(column + e + 48, n - 48, x), 3);
        /* Lanes past n hold 0x80 now: their weights are the zero padding of the last
         * group, or no vector reads them. */
        xg = _mm512_xor_si512(xg, flip);
        const size_t words = (n + 3) / 4 * rows;
        __m512i idx = idx0;
        size_t d = 0;
        for (; d + 32 <= words; d += 32) { /* two chains hide vpdpbusd's latency */
            acc0 = _mm512_dpbusd_epi32(acc0, _mm512_permutexvar_epi32(idx, xg),
                                       _mm512_loadu_si512(w));
            idx = _mm512_add_epi32(idx, step);
            acc1 = _mm512_dpbusd_epi32(acc1, _mm512_permutexvar_epi32(idx, xg),
                                       _mm512_loadu_si512(w + 64));
            idx = _mm512_add_epi32(idx, step);
            w += 128;
        }
        for (; d < words; d += 16) {
            const size_t left = words - d;
            const __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
            acc0 = _mm512_dpbusd_epi32(acc0, _mm512_permutexvar_epi32(idx, xg),
                                       _mm512_maskz_loadu_epi32(m, w));
            idx = _mm512_add_epi32(idx, step);
            w += left >= 16 ? 64 : 4 * left;
        }
    }
    int32_t lane[16];
    _mm512_storeu_si512(lane, _mm512_add_epi32(acc0, acc1));
    const int64_t z = (int64_t)q->input_zero_point + 128;
    for (size_t r = 0; r < rows; r++) {
        int32_t s = 0;
        for (size_t j = r; j < 16; j += rows) s += lane[j];
        const int32_t acc = (int32_t)((int64_t)q->bias[r] - z * q->weight_sum[r] + s);
        y[r] = crisp_qs8_requantize((float)acc * q->multiplier[r], q->output_zero_point,
                                    q->output_min, q->output_max);
    }
}
