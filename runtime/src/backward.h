/* Internal: forward and backward of the ops of the last stage, one sample at
 * a time, for bias tuning (src/tune.c; runtime/README.md, "Personalisation").
 * Scalar, single-threaded, float32 activations in CHW, every loop in a fixed
 * order, so the same inputs give the same bits. Backward functions ADD into
 * the input gradients (a value read twice, as by a residual ADD, accumulates)
 * and never need the gradient of anything they do not write. */
#ifndef CRISP_BACKWARD_H
#define CRISP_BACKWARD_H

#include <stddef.h>
#include <stdint.h>

#include "crisp.h"
#include "kernels/params.h"

/* A conv's kept weights, per output channel: the non-zero weights and their
 * row in the im2col matrix (row = (input channel * kh + ky) * kw + kx, input
 * channel counted over all groups). Zeros (removed blocks, N:M positions)
 * are never stored, so a pruned conv costs its kept weights only: 8 bytes
 * each (float + u32 row). */
typedef struct crisp_bw_conv {
    crisp_conv2d_params p;
    uint32_t *row_start; /* [Cout + 1] */
    uint32_t *entry_row; /* [kept] */
    float *entry_w;      /* [kept] */
    size_t col_rows;     /* Cin * kh * kw */
    size_t pixels;       /* Ho * Wo */
} crisp_bw_conv;

/* From dense OHWI weights (Cout, kh, kw, Cin/groups), as the file stores a
 * DENSE_F32 conv and as a hybrid one expands. CRISP_ERR_NOMEM on failure. */
crisp_status crisp_bw_conv_init(crisp_bw_conv *c, const crisp_conv2d_params *p,
                                const float *weight_ohwi);
void crisp_bw_conv_free(crisp_bw_conv *c);
/* Floats of the im2col scratch a conv needs (col_rows x pixels). */
size_t crisp_bw_conv_scratch(const crisp_bw_conv *c);

/* y = clamp(conv(x) + bias): bias may be NULL; col is scratch. */
void crisp_bw_conv_forward(const crisp_bw_conv *c, const float *x, const float *bias, float *y,
                           float *col);
/* Given y (the forward output) and dy (its gradient, masked in place by the
 * fused activation): dbias[oc] += sum over pixels of dy (if dbias != NULL),
 * dx += the transposed convolution of dy with the kept weights (if dx !=
 * NULL); col is scratch. */
void crisp_bw_conv_backward(const crisp_bw_conv *c, const float *y, float *dy, double *dbias,
                            float *dx, float *col);

/* The fused or standalone activation clamp (lo, hi) (RELU: (0, inf), RELU6:
 * (0, 6), none: (-inf, inf)): torch's relu/hardtanh backward, the gradient
 * passes where lo < y < hi. In place on dy. */
void crisp_bw_clamp_mask(size_t n, const float *y, float *dy, crisp_minmax_params mm);

/* ADD: y = clamp(a + b). */
void crisp_bw_add_forward(size_t n, const float *a, const float *b, float *y,
                          crisp_minmax_params mm);
/* RELU / RELU6 op: y = clamp(x). */
void crisp_bw_clamp_forward(size_t n, const float *x, float *y, crisp_minmax_params mm);

/* Global average pool over `pixels` per channel. */
void crisp_bw_global_avgpool_forward(size_t channels, size_t pixels, const float *x, float *y);
void crisp_bw_global_avgpool_backward(size_t channels, size_t pixels, const float *dy, float *dx);
/* torch AdaptiveAvgPool2d (bins may overlap). */
void crisp_bw_adaptive_avgpool_forward(const crisp_pool2d_params *p, const float *x, float *y);
void crisp_bw_adaptive_avgpool_backward(const crisp_pool2d_params *p, const float *dy, float *dx);
/* torch AvgPool2d (crisp_avgpool_window_at: padding, ceil mode, count_include_pad,
 * divisor_override). */
void crisp_bw_avgpool_forward(const crisp_pool2d_params *p, const float *x, float *y);
void crisp_bw_avgpool_backward(const crisp_pool2d_params *p, const float *dy, float *dx);
/* torch MaxPool2d: the gradient goes to the first maximum of each window in
 * window order (a NaN wins, as in the forward); padding is -inf. */
void crisp_bw_maxpool_forward(const crisp_pool2d_params *p, const float *x, float *y);
void crisp_bw_maxpool_backward(const crisp_pool2d_params *p, const float *x, const float *dy,
                               float *dx);

#endif
