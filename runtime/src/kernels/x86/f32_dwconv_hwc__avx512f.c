/* Depthwise 3 x 3, channels in the lanes, AVX-512F: the walk of
 * generic/f32_dwconv_hwc_body.h with 16 channels per call, 16 x 16
 * transposes, and partial rows through lane masks (masked-off lanes touch no
 * memory). max/min return their second operand when either is NaN: NaN
 * survives, as in the reference clamp. */
#include <immintrin.h>

static inline __m512 lo_pd(__m512 a, __m512 b) {
    return _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)));
}
static inline __m512 hi_pd(__m512 a, __m512 b) {
    return _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)));
}

/* r[i][j] -> r[j][i] for a 16 x 16 block of floats. */
static inline __attribute__((always_inline)) void transpose16(__m512 *r) {
    __m512 t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        u[i] = lo_pd(t[i], t[i + 2]);
        u[i + 1] = hi_pd(t[i], t[i + 2]);
        u[i + 2] = lo_pd(t[i + 1], t[i + 3]);
        u[i + 3] = hi_pd(t[i + 1], t[i + 3]);
    }
    for (int h = 0; h < 16; h += 8)
        for (int i = 0; i < 4; i++) {
            t[h + i] = _mm512_shuffle_f32x4(u[h + i], u[h + i + 4], 0x88);
            t[h + i + 4] = _mm512_shuffle_f32x4(u[h + i], u[h + i + 4], 0xdd);
        }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    }
}

static inline __mmask16 first_lanes(size_t n) {
    return (__mmask16)(n >= 16 ? 0xFFFF : (1u << n) - 1);
}

#define CRISP_DWCONV_HWC_NAME crisp_f32_dwconv_hwc_ukernel__avx512f
#define VEC __m512
#define VL ((size_t)16)
#define VZERO() _mm512_setzero_ps()
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps(p, v)
#define VSET1(x) _mm512_set1_ps(x)
#define VFMA(acc, w, x) _mm512_fmadd_ps(w, x, acc)
#define VCLAMP(v, lo, hi) _mm512_min_ps(hi, _mm512_max_ps(lo, v))
#define VLOAD_N(p, n) _mm512_maskz_loadu_ps(first_lanes(n), p)
#define VSTORE_N(p, v, n) _mm512_mask_storeu_ps(p, first_lanes(n), v)
#define TRANSPOSE(r) transpose16(r)
#include "kernels/generic/f32_dwconv_hwc_body.h"
