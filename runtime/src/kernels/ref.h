/* Reference (scalar) f32 kernels: the executable spec every optimised kernel
 * is tested against. Pure functions over caller-owned buffers: no allocation,
 * no globals, no error paths (the loader has validated every parameter).
 * Layout is CHW per sample; weights are OHWI (docs/format.md). */
#ifndef CRISP_KERNELS_REF_H
#define CRISP_KERNELS_REF_H

#include <stddef.h>

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

typedef struct crisp_softmax_params {
    size_t outer, axis_length, inner; /* dims before, along and after the axis */
} crisp_softmax_params;

/* bias may be NULL. */
void crisp_f32_conv2d__ref(const crisp_conv2d_params *params, const float *input,
                           const float *weight, const float *bias, float *output);
void crisp_f32_linear__ref(const crisp_linear_params *params, const float *input,
                           const float *weight, const float *bias, float *output);
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

#endif
