/* Kernel parameters: the structs the loader fills once per op (src/shape.c,
 * src/dtype.c, src/pack.c) and every kernel reads, reference
 * (kernels/ref.h) and optimised (kernels/ukernels.h) alike. Plain data: no
 * functions here (shared helpers are kernels/common.h). */
#ifndef CRISP_KERNELS_PARAMS_H
#define CRISP_KERNELS_PARAMS_H

#include <stddef.h>
#include <stdint.h>

/* Fused activation as a clamp: none = (-inf, +inf), relu = (0, +inf),
 * relu6 = (0, 6). Comparisons keep NaN as NaN, as torch does. */
typedef struct crisp_minmax_params {
    float output_min;
    float output_max;
} crisp_minmax_params;

/* MUL_CHANNELS: y[c][i] = x[c][i] * s[c] over channels planes of plane elements. */
typedef struct crisp_channels_params {
    size_t channels, plane;
} crisp_channels_params;

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
    const int8_t *weight_qs8;     /* int8: entries in groups of four, each row's four
                                     adjacent (kernels/common.h, crisp_qs8_weight_index) */
} crisp_sparse_weights;

/* int8 requantisation shared by conv and linear (docs/format.md):
 * y = clamp(z_y + nearbyintf((float)acc * multiplier[c]), output_min, output_max). */
typedef struct crisp_qs8_requant {
    int32_t input_zero_point, output_zero_point;
    int32_t output_min, output_max; /* (-128, 127) narrowed by the fused activation */
    const int32_t *bias;            /* [channels]: round(bias / (s_x * s_w[c])) */
    const float *multiplier;        /* [channels]: (float)(s_x * s_w[c] / s_y) */
    const int32_t *weight_sum;      /* [channels]: sum of the channel's q_w (the optimised
                                       kernels fold -z_x * weight_sum into the bias) */
    int32_t fits_int32;             /* 1 when every channel's sums times its multiplier stay
                                       within +-2^30 (crisp_qs8_channel_fits_int32, set by
                                       src/pack.c): kernels may round the products to int32
                                       and leave the clamp to int8 saturation and a byte
                                       clamp (x86/qs8_requant_x86.h); 0 asks for the clamp
                                       in float first */
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
    /* Set by crisp_qs8_add_prepare (kernels/ukernels.h): by_inverse = 1 when
     * multiplying by output_inverse (= 1 / output_scale) gives every one of
     * the 65536 (a, b) pairs the reference's output, so the vector kernels
     * may skip the division; 0 (as zero-initialised) keeps the division. */
    float output_inverse;
    int32_t by_inverse;
} crisp_qs8_add_params;

typedef struct crisp_qs8_clamp_params {
    int32_t output_min, output_max;
} crisp_qs8_clamp_params;

typedef struct crisp_qs8_quantize_params {
    float scale;
    int32_t zero_point;
} crisp_qs8_quantize_params;

#endif
