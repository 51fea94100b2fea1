/* Helpers shared by the reference kernels, the optimised microkernels and
 * their drivers (src/conv_fast.c): the int8 requantisation step and packed
 * int8 weight index, conv window geometry, the float clamp of fused
 * activations, and the average-pooling window (also read by the
 * stage backward pass, src/backward.c). */
#ifndef CRISP_KERNELS_COMMON_H
#define CRISP_KERNELS_COMMON_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/params.h"

/* The one rounding and clamping step of every int8 output: zero + nearbyintf
 * of an already scaled float, clamped to [lo, hi] (NaN gives lo), computed in
 * float so no out-of-range conversion to int can happen. The int8
 * microkernels do exactly these float operations (vectorised: the same IEEE
 * multiply, round-to-nearest-even and add), so their outputs are bitwise the
 * reference's. */
static inline int8_t crisp_qs8_requantize(float scaled, int32_t zero, int32_t lo, int32_t hi) {
    float v = (float)zero + nearbyintf(scaled);
    v = v > (float)lo ? v : (float)lo;
    v = v < (float)hi ? v : (float)hi;
    return (int8_t)(int32_t)v;
}

/* Whether a channel's requantised products stay within +-2^30 whatever its
 * input (crisp_qs8_requant.fits_int32): its int32 sums are at most |bias| +
 * 255 sum |q_w| in magnitude (|q_x - z_x| <= 255), and the float conversion
 * and multiply add at most 2^-23 to that bound, so rounding the product to
 * int32 cannot overflow. Counted in double, exact for these integers. */
static inline int crisp_qs8_channel_fits_int32(int32_t bias, uint64_t abs_weight_sum,
                                               float multiplier) {
    const double b = bias < 0 ? -(double)bias : (double)bias;
    return (b + 255.0 * (double)abs_weight_sum) * (double)multiplier <= 1073741824.0;
}

/* How the vector kernels may finish an op's sums:
 * - CRISP_QS8_CLAMPED: crisp_qs8_requantize's float operations (or the
 *   clamp-first form of x86/qs8_requant_x86.h), for every op;
 * - CRISP_QS8_FIT, where the op's products fit int32 (fits_int32): r =
 *   rint(v) by one conversion (|v| < 2^31), narrowed to int16 with
 *   saturation, z_y added with saturation, narrowed to int8 with saturation,
 *   the bytes clamped to [lo, hi]. Exact: sat8(sat16(sat16(r) + z_y)) =
 *   sat8(r + z_y) because |z_y| <= 128 (a half saturated at +-32767 stays
 *   past the int8 bound on its side after the add), and clamping that to
 *   [lo, hi] within [-128, 127] is clamp(r + z_y, lo, hi), the reference's
 *   value: its float add z_y + rint(v) rounds only where |rint(v)| >= 2^24 -
 *   128, past both bounds on the same side;
 * - CRISP_QS8_FIT_FULL: the same where [lo, hi] is all of int8 (no fused
 *   activation narrows it), so the saturation is the clamp. */
enum { CRISP_QS8_CLAMPED = 0, CRISP_QS8_FIT = 1, CRISP_QS8_FIT_FULL = 2 };
static inline int crisp_qs8_finish(const crisp_qs8_requant *q) {
    if (!q->fits_int32) return CRISP_QS8_CLAMPED;
    return q->output_min == -128 && q->output_max == 127 ? CRISP_QS8_FIT_FULL : CRISP_QS8_FIT;
}

/* One int8 addition: y = clamp(z_y + nearbyintf((s_a (q_a - z_a) + s_b (q_b -
 * z_b)) / s_y)), in float, in exactly this order (docs/format.md). */
static inline int8_t crisp_qs8_add_one(int8_t a, int8_t b, const crisp_qs8_add_params *p) {
    const float real = p->a_scale * (float)((int32_t)a - p->a_zero_point) +
                       p->b_scale * (float)((int32_t)b - p->b_zero_point);
    return crisp_qs8_requantize(real / p->output_scale, p->output_zero_point, p->output_min,
                                p->output_max);
}

/* Bytes w[0 .. n) (n <= 4) as one little-endian 32-bit word, zero above:
 * a depthwise window row's quad of weights (ukernels.h). Unrolled: it runs
 * once per window row and channel. */
static inline int32_t crisp_qs8_quad(const int8_t *w, size_t n) {
    uint32_t v = 0;
    switch (n) {
    case 4: v |= (uint32_t)(uint8_t)w[3] << 24; /* fall through */
    case 3: v |= (uint32_t)(uint8_t)w[2] << 16; /* fall through */
    case 2: v |= (uint32_t)(uint8_t)w[1] << 8;  /* fall through */
    case 1: v |= (uint32_t)(uint8_t)w[0]; break;
    default: break;
    }
    return (int32_t)v;
}

/* Index of the int8 weight of kept column (entry) e, row r of a packed
 * hybrid run of `rows` rows (src/pack.c): entries are in groups of four, and
 * each row's four weights of a group are adjacent, so one 32-bit load gives
 * a dot-product instruction (vpdpbusd, sdot) its four weights. */
static inline size_t crisp_qs8_weight_index(size_t e, size_t r, size_t rows) {
    return (e & ~(size_t)3) * rows + r * 4 + (e & 3);
}

/* The four kept columns of the group of entries e .. e + 3 (e a multiple of
 * four) of a packed int8 run. Entries past the run's last repeat its first
 * column: the packing gives them zero weights (crisp_qs8_weight_index's
 * zero-padded groups, src/pack.c), so any valid B row adds nothing there,
 * and this one the group loads anyway. */
static inline void crisp_qs8_group_columns(const uint32_t *column, size_t e, size_t entries,
                                           uint32_t k[4]) {
    k[0] = column[e];
    k[1] = column[e + 1 < entries ? e + 1 : e];
    k[2] = column[e + 2 < entries ? e + 2 : e];
    k[3] = column[e + 3 < entries ? e + 3 : e];
}

/* Output pixels ox in [lo, hi) read input column ox*stride + offset inside
 * [0, width); the rest of the row reads padding and contributes nothing
 * (zero for float, the zero point - so again nothing - for int8). */
static inline void crisp_conv_valid_range(size_t out_size, size_t in_size, size_t stride,
                                          ptrdiff_t offset, size_t *lo, size_t *hi) {
    const ptrdiff_t s = (ptrdiff_t)stride;
    ptrdiff_t first = offset >= 0 ? 0 : (-offset + s - 1) / s;
    const ptrdiff_t last_in = (ptrdiff_t)in_size - 1 - offset; /* ox*stride <= last_in */
    ptrdiff_t end = last_in < 0 ? 0 : last_in / s + 1;
    if (end > (ptrdiff_t)out_size) end = (ptrdiff_t)out_size;
    if (first > end) first = end;
    *lo = (size_t)first;
    *hi = (size_t)end;
}

/* Input row of output row oy for kernel row ky, or -1 when it is padding. */
static inline ptrdiff_t crisp_conv_input_row(size_t oy, size_t ky, size_t stride, size_t pad,
                                             size_t dilation, size_t in_height) {
    const ptrdiff_t iy = (ptrdiff_t)(oy * stride) - (ptrdiff_t)pad + (ptrdiff_t)(ky * dilation);
    return iy < 0 || iy >= (ptrdiff_t)in_height ? -1 : iy;
}

static inline float crisp_clampf(float v, float lo, float hi) {
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

/* One average-pooling window as torch.nn.AvgPool2d defines it: rows [y0, y1)
 * and columns [x0, x1) of the image that it covers (empty when y0 >= y1 or
 * x0 >= x1) and its divisor: with count_include_pad the window clipped to the
 * padded extent (so a ceil_mode window hanging past the padding counts only
 * what lies inside it), else the covered image area; divisor_override wins.
 * Shared by the float and int8 kernels and the backward pass, so all follow
 * the same spec. */
typedef struct crisp_avgpool_window {
    ptrdiff_t y0, y1, x0, x1, divisor;
} crisp_avgpool_window;

static inline crisp_avgpool_window crisp_avgpool_window_at(const crisp_pool2d_params *p,
                                                           size_t oy, size_t ox) {
    const ptrdiff_t ih = (ptrdiff_t)p->input_height, iw = (ptrdiff_t)p->input_width;
    const ptrdiff_t ph = (ptrdiff_t)p->padding_height, pw = (ptrdiff_t)p->padding_width;
    crisp_avgpool_window w;
    w.y0 = (ptrdiff_t)(oy * p->stride_height) - ph;
    w.x0 = (ptrdiff_t)(ox * p->stride_width) - pw;
    w.y1 = w.y0 + (ptrdiff_t)p->kernel_height;
    w.x1 = w.x0 + (ptrdiff_t)p->kernel_width;
    if (w.y1 > ih + ph) w.y1 = ih + ph;
    if (w.x1 > iw + pw) w.x1 = iw + pw;
    const ptrdiff_t padded_area = (w.y1 - w.y0) * (w.x1 - w.x0);
    if (w.y0 < 0) w.y0 = 0;
    if (w.x0 < 0) w.x0 = 0;
    if (w.y1 > ih) w.y1 = ih;
    if (w.x1 > iw) w.x1 = iw;
    if (p->divisor_override != 0)
        w.divisor = (ptrdiff_t)p->divisor_override;
    else if (p->count_include_pad)
        w.divisor = padded_area;
    else
        w.divisor = (w.y1 - w.y0) * (w.x1 - w.x0);
    return w;
}

#endif
