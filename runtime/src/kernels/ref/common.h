/* Internal to the reference kernels: the int8 conv accumulator tile, the
 * average-pooling window and the int8 requantisation step. Helpers the
 * optimised kernels share are kernels/common.h. */
#ifndef CRISP_KERNELS_REF_COMMON_H
#define CRISP_KERNELS_REF_COMMON_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/common.h"
#include "kernels/params.h"

/* Output pixels per int32 accumulator tile of the int8 conv kernels (on the stack). */
#define CRISP_QS8_TILE 64

/* One average-pooling window as torch.nn.AvgPool2d defines it: rows [y0, y1)
 * and columns [x0, x1) of the image that it covers (empty when y0 >= y1 or
 * x0 >= x1) and its divisor: with count_include_pad the window clipped to the
 * padded extent (so a ceil_mode window hanging past the padding counts only
 * what lies inside it), else the covered image area; divisor_override wins.
 * Shared by the float and int8 kernels, so both follow the same spec. */
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

/* The one rounding and clamping step of every int8 output: zero + nearbyintf
 * of an already scaled float, clamped to [lo, hi] (NaN gives lo), computed in
 * float so no out-of-range conversion to int can happen. */
static inline int8_t crisp_qs8_requantize(float scaled, int32_t zero, int32_t lo, int32_t hi) {
    float v = (float)zero + nearbyintf(scaled);
    v = v > (float)lo ? v : (float)lo;
    v = v < (float)hi ? v : (float)hi;
    return (int8_t)(int32_t)v;
}

#endif
