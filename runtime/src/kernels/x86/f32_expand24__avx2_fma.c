/* 2:4 expansion, AVX2 (f32_expand24.inc): a stream byte (two groups) picks
 * from a table which of the groups' 4 values each of its 8 floats takes, or
 * a zero: one permute and one blend. */
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/expand24_tables.h"
#include "kernels/ukernels.h"

static const uint8_t sources[256][8] = {CRISP_E24_REP256(CRISP_E24_SRC_ROW)};

static void one_group(unsigned nibble, const float *values, float *out) {
    out[0] = out[1] = out[2] = out[3] = 0.0f;
    out[CRISP_E24_POS(nibble, 0)] = values[0];
    out[CRISP_E24_POS(nibble, 1)] = values[1];
}

/* The 8 floats of a byte's two groups from their 4 values. */
static inline void two_groups(uint8_t byte, const float *values, float *out) {
    const __m256i idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)sources[byte]));
    const __m256 v = _mm256_castps128_ps256(_mm_loadu_ps(values));
    const __m256 picked = _mm256_permutevar8x32_ps(v, idx);
    /* 0x80 << 24 sets the sign bit of the lanes that take a zero. */
    const __m256 zeros = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 24));
    _mm256_storeu_ps(out, _mm256_blendv_ps(picked, _mm256_setzero_ps(), zeros));
}

static inline void expand_groups(size_t groups, const float *values, const uint8_t *stream,
                                 uint64_t first, float *out) {
    const uint8_t *p = CRISP_E24_START(stream, first);
    size_t g = 0;
    if (CRISP_E24_SHIFT(first) != 0 && groups > 0) {
        one_group((unsigned)(*p++ >> 4), values, out);
        g = 1, values += 2, out += 4;
    }
    for (; g + 2 <= groups; g += 2) {
        two_groups(*p, values, out);
        p++, values += 4, out += 8;
    }
    if (g < groups) one_group((unsigned)(*p & 0xF), values, out);
}

static inline void expand16(const uint8_t *bytes, const float *values, float *out) {
    two_groups(bytes[0], values, out);
    two_groups(bytes[1], values + 4, out + 8);
}

static inline void zero(float *out, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_setzero_ps());
    for (; i < n; i++) out[i] = 0.0f;
}
#define CRISP_EXPAND24_NAME crisp_f32_expand24_ukernel__avx2_fma
#define EXPAND_GROUPS expand_groups
#define ZERO zero
#define EXPAND16 expand16
#include "kernels/generic/f32_expand24_body.h"
