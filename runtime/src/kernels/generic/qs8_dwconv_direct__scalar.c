/* int8 depthwise conv reading the input in place, portable C: the shared
 * walk (generic/qs8_dwconv_direct_body.h) with each position's quads summed
 * one byte at a time, masked bytes read as z_x, then crisp_qs8_requantize.
 * The reference of the family's layout: each SIMD tier computes the same
 * sums with wider steps. */
#include "kernels/common.h"
#include "kernels/ukernels.h"

#define CHUNK ((size_t)64)
#define GRAIN(s) ((size_t)1)
#define U8_OPERANDS 0
#define USES_FIT 0
#define KERNEL_NAME crisp_qs8_dwconv_direct_ukernel__scalar

typedef struct state {
    int8_t w[CRISP_QS8_DWCONV_MAX_KH][4]; /* each window row's quad, 0 past kw */
    size_t kh, row;                       /* window rows, dh * iw bytes apart */
    int32_t bias;                         /* bias - z_x sum(w) */
    float multiplier;
    int32_t zy, lo, hi;
    int8_t zx;
} STATE;

static void state_init(STATE *st, const crisp_qs8_dwconv_image *im, const int8_t *w,
                       int32_t bias, float multiplier, const crisp_qs8_requant *q) {
    const size_t kw = im->kernel_width;
    for (size_t ky = 0; ky < im->kernel_height; ky++)
        for (size_t b = 0; b < 4; b++) st->w[ky][b] = b < kw ? w[ky * kw + b] : 0;
    st->kh = im->kernel_height, st->row = im->dilation_height * im->input_width;
    st->bias = bias, st->multiplier = multiplier;
    st->zy = q->output_zero_point, st->lo = q->output_min, st->hi = q->output_max;
    st->zx = (int8_t)q->input_zero_point;
}

/* Position k's quads start at x + s k; its mask is entry r + k, lane 0. */
static inline void chunk(const STATE *st, const int8_t *x, const uint32_t *m, size_t n,
                         int8_t *res, size_t s, size_t kh_const, int finish) {
    const size_t kh = kh_const ? kh_const : st->kh;
    (void)finish;
    for (size_t k = 0; k < n; k++) {
        const uint32_t mask = m[k * CRISP_QS8_DWCONV_QUAD_LANES];
        int32_t acc = st->bias;
        for (size_t ky = 0; ky < kh; ky++) {
            const int8_t *quad = x + s * k + ky * st->row;
            for (size_t b = 0; b < 4; b++) {
                /* quad mask byte b (little-endian: the byte at quad[b]) */
                const int keep = (mask >> (8 * b)) & 1;
                acc += st->w[ky][b] * (keep ? quad[b] : st->zx);
            }
        }
        res[k] = crisp_qs8_requantize((float)acc * st->multiplier, st->zy, st->lo, st->hi);
    }
}

#include "kernels/generic/qs8_dwconv_direct_body.h"
