/* int8 hybrid run microkernel, AVX-VNNI (the VEX vpdpbusd on YMM: client
 * cores without AVX-512, e.g. Alder Lake, the N100): up to 4 rows of a run x
 * 32 pixels. The AVX-512 VNNI kernel's design at half the width
 * (qs8_spmm_4x64__avx512vnni.c): per group of four kept columns the four B
 * rows are loaded, made unsigned (q_x + 128) and interleaved so each 32-bit
 * lane holds one pixel's four bytes; each row's four weights (one 32-bit
 * broadcast, the packed layout of src/pack.c) meet them in one vpdpbusd per
 * 8 pixels, so with V = 4 rows sharing their kept columns one interleave
 * feeds 16 of them. The 128 and z_x come out of the bias once per row
 * (weight_sum). vpdpbusd adds u8 x s8 products in int32 without saturation
 * and the exact sum is in int32 range (src/pack.c), so it is exact.
 * The unpacks work within 128-bit lanes: dword l of 128-bit lane L of
 * accumulator j holds pixel 16 L + 4 j + l; the two packs of the epilogue
 * work the same way and give the 32 bytes in pixel order. The requantisation
 * is the AVX2 kernels' (qs8_requant_x86.h), bitwise the reference's. No
 * masked byte loads below AVX-512: a partial tile (nc < 32) assembles its
 * rows from two overlapping loads (load_row). */
#include <immintrin.h>
#include <string.h>

#include "kernels/ukernels.h"
#include "qs8_requant_x86.h"

#define VECS(X, i) X(i, 0) X(i, 1) X(i, 2) X(i, 3)
#define ROWS(X) X(0) X(1) X(2) X(3)

static inline int32_t load32(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Byte shuffle indices for the upper half of a partial row (load_row). */
static const int8_t slide[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                                 -128, -128, -128, -128, -128, -128, -128, -128,
                                 -128, -128, -128, -128, -128, -128, -128, -128};

/* 32 bytes of a B row, zero past nc (bytes there are never read: the row may
 * end the buffer). A partial row of 16 or more bytes takes two overlapping
 * 16-byte loads ending at nc and one byte shuffle: byte j of the upper half
 * is byte nc - 16 + (32 - nc) + j of the second load, where that index is
 * below 16, else zero. Shorter rows: crisp_qs8_load_partial_avx2. */
static inline __attribute__((always_inline)) __m256i load_row(const int8_t *p, size_t nc,
                                                               const int full) {
    if (full) return _mm256_loadu_si256((const __m256i *)(const void *)p);
    if (nc >= 16) {
        const __m128i lo = _mm_loadu_si128((const __m128i *)(const void *)p);
        const __m128i end = _mm_loadu_si128((const __m128i *)(const void *)(p + nc - 16));
        const __m128i idx = _mm_loadu_si128((const __m128i *)(const void *)(slide + 32 - nc));
        return _mm256_inserti128_si256(_mm256_castsi128_si256(lo), _mm_shuffle_epi8(end, idx), 1);
    }
    return _mm256_inserti128_si256(_mm256_setzero_si256(), crisp_qs8_load_partial_avx2(p, nc), 0);
}

static inline __attribute__((always_inline)) void chunk(size_t rows, size_t nc, size_t entries,
                                                        const uint32_t *column, const int8_t *w,
                                                        const int8_t *b, size_t b_stride,
                                                        int8_t *c, size_t c_stride,
                                                        const crisp_qs8_requant *q,
                                                        const int rr, const int full) {
    const int32_t z = q->input_zero_point + 128;
#define DECL(i, v) __m256i c##i##v = _mm256_setzero_si256();
#define DECL_ROW(i) VECS(DECL, i)
    ROWS(DECL_ROW)
#define INIT(i, v) if (rr > i) c##i##v = _mm256_set1_epi32(crisp_qs8_folded_bias(q, i, z));
#define INIT_ROW(i) VECS(INIT, i)
    ROWS(INIT_ROW)
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    const size_t groups = (entries + 3) / 4;
    for (size_t g = 0; g < groups; g++) {
        const size_t e = 4 * g;
        uint32_t k[4];
        crisp_qs8_group_columns(column, e, entries, k);
        const __m256i x0 = _mm256_xor_si256(load_row(b + k[0] * b_stride, nc, full), flip);
        const __m256i x1 = _mm256_xor_si256(load_row(b + k[1] * b_stride, nc, full), flip);
        const __m256i x2 = _mm256_xor_si256(load_row(b + k[2] * b_stride, nc, full), flip);
        const __m256i x3 = _mm256_xor_si256(load_row(b + k[3] * b_stride, nc, full), flip);
        const __m256i t0 = _mm256_unpacklo_epi8(x0, x1), t1 = _mm256_unpackhi_epi8(x0, x1);
        const __m256i t2 = _mm256_unpacklo_epi8(x2, x3), t3 = _mm256_unpackhi_epi8(x2, x3);
        const __m256i p0 = _mm256_unpacklo_epi16(t0, t2), p1 = _mm256_unpackhi_epi16(t0, t2);
        const __m256i p2 = _mm256_unpacklo_epi16(t1, t3), p3 = _mm256_unpackhi_epi16(t1, t3);
        const int8_t *wg = w + e * rows;
#define DOT(i, v) c##i##v = _mm256_dpbusd_avx_epi32(c##i##v, p##v, w##i);
#define ROW(i)                                                      \
    if (rr > i) {                                                   \
        const __m256i w##i = _mm256_set1_epi32(load32(wg + 4 * i)); \
        VECS(DOT, i)                                                \
    }
        ROWS(ROW)
#undef ROW
#undef DOT
    }
#define RQ(i, v) crisp_qs8_requant_avx2(c##i##v, mult, q)
#define STORE(i)                                                                          \
    if (rr > i) {                                                                         \
        const float mult = q->multiplier[i];                                              \
        const __m256i r01 = _mm256_packs_epi32(RQ(i, 0), RQ(i, 1));                       \
        const __m256i r23 = _mm256_packs_epi32(RQ(i, 2), RQ(i, 3));                       \
        const __m256i r8 = _mm256_packs_epi16(r01, r23);                                  \
        if (full) {                                                                       \
            _mm256_storeu_si256((__m256i *)(void *)(c + i * c_stride), r8);               \
        } else {                                                                          \
            int8_t tmp[32];                                                               \
            _mm256_storeu_si256((__m256i *)(void *)tmp, r8);                              \
            memcpy(c + i * c_stride, tmp, nc);                                            \
        }                                                                                 \
    }
    ROWS(STORE)
#undef STORE
#undef RQ
}

void crisp_qs8_spmm_ukernel_4x32__avxvnni(size_t rows, size_t nc, size_t entries,
                                          const uint32_t *column, const int8_t *w,
                                          const int8_t *b, size_t b_stride, int8_t *c,
                                          size_t c_stride, const crisp_qs8_requant *q) {
    /* Rows in chunks of four: each row's weights are 4 bytes per group at w +
     * group * 4 * rows + row * 4. Four rows' 16 accumulators fill the 16 YMM
     * registers, so some spill; two rows per chunk (no spills, the interleave
     * done twice for a V = 4 run) measured slower at V = 4 (runtime/README.md,
     * "int8"). Full tiles get a loop without partial-row code. */
    for (size_t r0 = 0; r0 < rows; r0 += 4) {
        crisp_qs8_requant qr = *q;
        qr.bias += r0, qr.multiplier += r0, qr.weight_sum += r0;
        const int8_t *wr = w + 4 * r0;
        int8_t *cr = c + r0 * c_stride;
        const size_t rr = rows - r0 < 4 ? rows - r0 : 4;
#define CALL(n, nn, f) chunk(rows, nn, entries, column, wr, b, b_stride, cr, c_stride, &qr, n, f)
        if (nc == 32) {
            switch (rr) { case 1: CALL(1, 32, 1); break; case 2: CALL(2, 32, 1); break;
                          case 3: CALL(3, 32, 1); break; default: CALL(4, 32, 1); break; }
        } else {
            switch (rr) { case 1: CALL(1, nc, 0); break; case 2: CALL(2, nc, 0); break;
                          case 3: CALL(3, nc, 0); break; default: CALL(4, nc, 0); break; }
        }
#undef CALL
    }
}
