/* Reference (scalar) kernels: the executable spec every optimised kernel is
 * tested against. Pure functions over caller-owned buffers: no allocation,
 * no globals, no error paths (the loader has validated every parameter).
 * Layout is CHW per sample; weights are OHWI (docs/format.md).
 *
 * Work splitting: conv kernels compute the output rows [begin, end) of a
 * flat space of (unit, output row) pairs, item = unit * output_height + oy,
 * where a unit is an output channel (dense) or a run of rows sharing one
 * N:M selection (hybrid); linear kernels compute outputs (dense) or runs
 * (hybrid) [begin, end). Every output element is computed by the same
 * sequence of operations whatever the split, so any thread count gives
 * bitwise identical results. */
#ifndef CRISP_KERNELS_REF_H
#define CRISP_KERNELS_REF_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* Fused activation as a clamp: none = (-inf, +inf), relu = (0, +inf),
 * relu6 = (0, 6). Comparisons keep NaN as NaN, as torch does. */
typedef struct crisp_minmax_params {
    float output_min;
    float output_max;
} crisp_minmax_params;

typedef struct crisp_conv2d_params {
    size_t input_channels, input_height, input_width;
    size_t output_channels, output_height, output_width;
    size_t kernel_height, kernel_width;
    size_t stride_height, stride_width;
    size_t padding_top, padding_left; /* bottom/right only shape the output size */
    size_t dilation_height, dilation_width;
    size_t groups;
    crisp_minmax_params minmax;
} crisp_conv2d_params;

typedef struct crisp_linear_params {
    size_t input_features, output_features;
    crisp_minmax_params minmax;
} crisp_linear_params;

typedef struct crisp_pool2d_params {
    size_t channels, input_height, input_width, output_height, output_width;
    size_t kernel_height, kernel_width;
    size_t stride_height, stride_width;
    size_t padding_height, padding_width;
    size_t dilation_height, dilation_width; /* max pool only */
    int count_include_pad;                  /* avg pool only */
    size_t divisor_override;                /* avg pool only; 0 = none */
} crisp_pool2d_params;

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

typedef struct crisp_softmax_params {
    size_t outer, axis_length, inner; /* dims before, along and after the axis */
} crisp_softmax_params;

/* Hybrid-sparse weights repacked at load; the numbered layout is documented
 * in src/pack.c. Rows are grouped into runs (consecutive rows of one
 * block-row and one conv group sharing the kept column positions: one row
 * each for the paper's per-row N:M, up to V rows for the row-shared
 * variant). A run's kept columns are split into segments of one kernel tap. */
typedef struct crisp_sparse_weights {
    size_t run_count;
    const uint32_t *run_row;      /* [run_count + 1]: run r is rows run_row[r] .. run_row[r+1]-1 */
    const uint32_t *run_segment;  /* [run_count + 1]: its segments */
    const uint32_t *segment_tap;  /* [segments]: ky * kw + kx (0 for linear) */
    const uint32_t *segment_entry; /* [segments + 1]: its kept columns */
    const uint32_t *entry_column; /* [entries]: the column, (ky * kw + kx) * Cin/groups + ci (so
                                     its input channel is column % (Cin/groups)), or the feature;
                                     also its row in an im2col tile */
    const size_t *run_weight;     /* [run_count]: index of the run's first weight */
    const float *weight_f32;      /* per run: entries x rows, the rows of one entry adjacent */
    const int8_t *weight_qs8;     /* same layout, int8 */
} crisp_sparse_weights;

/* int8 requantisation shared by conv and linear (docs/format.md):
 * y = clamp(z_y + nearbyintf((float)acc * multiplier[c]), output_min, output_max). */
typedef struct crisp_qs8_requant {
    int32_t input_zero_point, output_zero_point;
    int32_t output_min, output_max; /* (-128, 127) narrowed by the fused activation */
    const int32_t *bias;            /* [channels]: round(bias / (s_x * s_w[c])) */
    const float *multiplier;        /* [channels]: (float)(s_x * s_w[c] / s_y) */
} crisp_qs8_requant;

typedef struct crisp_qs8_conv2d_params {
    crisp_conv2d_params conv; /* geometry; minmax unused */
    crisp_qs8_requant q;
} crisp_qs8_conv2d_params;

typedef struct crisp_qs8_linear_params {
    size_t input_features, output_features;
    crisp_qs8_requant q;
} crisp_qs8_linear_params;

typedef struct crisp_qs8_pool2d_params {
    crisp_pool2d_params pool;
    float input_scale, output_scale;
    int32_t input_zero_point, output_zero_point;
} crisp_qs8_pool2d_params;

typedef struct crisp_qs8_add_params {
    float a_scale, b_scale, output_scale;
    int32_t a_zero_point, b_zero_point, output_zero_point;
    int32_t output_min, output_max;
} crisp_qs8_add_params;

typedef struct crisp_qs8_clamp_params {
    int32_t output_min, output_max;
} crisp_qs8_clamp_params;

typedef struct crisp_qs8_quantize_params {
    float scale;
    int32_t zero_point;
} crisp_qs8_quantize_params;

/* ---- float32 ---- bias may be NULL. */
void crisp_f32_conv2d__ref(const crisp_conv2d_params *params, const float *input,
                           const float *weight, const float *bias, float *output, size_t begin,
                           size_t end);
void crisp_f32_conv2d_hybrid__ref(const crisp_conv2d_params *params,
                                  const crisp_sparse_weights *weights, const float *input,
                                  const float *bias, float *output, size_t begin, size_t end);
void crisp_f32_linear__ref(const crisp_linear_params *params, const float *input,
                           const float *weight, const float *bias, float *output, size_t begin,
                           size_t end);
void crisp_f32_linear_hybrid__ref(const crisp_linear_params *params,
                                  const crisp_sparse_weights *weights, const float *input,
                                  const float *bias, float *output, size_t begin, size_t end);
void crisp_f32_add__ref(size_t n, const float *a, const float *b, float *y,
                        const crisp_minmax_params *params);
/* relu and relu6 as standalone ops. */
void crisp_f32_clamp__ref(size_t n, const float *x, float *y, const crisp_minmax_params *params);
void crisp_f32_maxpool2d__ref(const crisp_pool2d_params *params, const float *input,
                              float *output);
void crisp_f32_avgpool2d__ref(const crisp_pool2d_params *params, const float *input,
                              float *output);
/* Uses channels, input_height/width, output_height/width only. */
void crisp_f32_adaptive_avgpool2d__ref(const crisp_pool2d_params *params, const float *input,
                                       float *output);
void crisp_f32_global_avgpool__ref(size_t channels, size_t pixels, const float *input,
                                   float *output);
void crisp_f32_softmax__ref(const crisp_softmax_params *params, const float *input,
                            float *output);
/* q = clamp(z + nearbyintf(x / s), -128, 127); NaN maps to -128. */
void crisp_f32_quantize__ref(size_t n, const float *x, int8_t *y,
                             const crisp_qs8_quantize_params *params);
/* y = s * (q - z). */
void crisp_f32_dequantize__ref(size_t n, const int8_t *x, float *y,
                               const crisp_qs8_quantize_params *params);

/* ---- int8 (asymmetric per-tensor activations, symmetric per-channel weights) ---- */
void crisp_qs8_conv2d__ref(const crisp_qs8_conv2d_params *params, const int8_t *input,
                           const int8_t *weight, int8_t *output, size_t begin, size_t end);
void crisp_qs8_conv2d_hybrid__ref(const crisp_qs8_conv2d_params *params,
                                  const crisp_sparse_weights *weights, const int8_t *input,
                                  int8_t *output, size_t begin, size_t end);
void crisp_qs8_linear__ref(const crisp_qs8_linear_params *params, const int8_t *input,
                           const int8_t *weight, int8_t *output, size_t begin, size_t end);
void crisp_qs8_linear_hybrid__ref(const crisp_qs8_linear_params *params,
                                  const crisp_sparse_weights *weights, const int8_t *input,
                                  int8_t *output, size_t begin, size_t end);
void crisp_qs8_add__ref(size_t n, const int8_t *a, const int8_t *b, int8_t *y,
                        const crisp_qs8_add_params *params);
/* relu / relu6 on int8: a clamp to (output_min, output_max). */
void crisp_qs8_clamp__ref(size_t n, const int8_t *x, int8_t *y,
                          const crisp_qs8_clamp_params *params);
/* Padding never wins; a window entirely in padding gives -128. */
void crisp_qs8_maxpool2d__ref(const crisp_pool2d_params *params, const int8_t *input,
                              int8_t *output);
void crisp_qs8_avgpool2d__ref(const crisp_qs8_pool2d_params *params, const int8_t *input,
                              int8_t *output);
void crisp_qs8_adaptive_avgpool2d__ref(const crisp_qs8_pool2d_params *params,
                                       const int8_t *input, int8_t *output);
/* Uses pool.channels and pool.input_height/width. */
void crisp_qs8_global_avgpool__ref(const crisp_qs8_pool2d_params *params, const int8_t *input,
                                   int8_t *output);

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
