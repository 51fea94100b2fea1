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

#include <stddef.h>
#include <stdint.h>

#include "kernels/params.h"

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
/* The non-clamp activations (enum crisp_activation: silu, sigmoid, hardswish,
 * hardsigmoid), fused or standalone; y may be x. */
void crisp_f32_activation__ref(size_t n, const float *x, float *y, uint32_t activation);
/* Elements [begin, end) of MUL_CHANNELS: x (C, plane) times s (C). */
void crisp_f32_mul_channels__ref(const crisp_channels_params *params, const float *x,
                                 const float *s, float *y, size_t begin, size_t end);
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

#endif
