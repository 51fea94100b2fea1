/* Optimised float32 and int8 microkernels: pure functions over caller-owned buffers
 * (no allocation, no globals), one file per kernel named like the function:
 * crisp_<datatype>_<op>_ukernel_<tile>__<isa>. Each family has one list file
 * (*.inc) that declares the prototypes here, registers the variants for
 * run-time selection (src/kernels/select.c), and drives the tests
 * (tests/test_fast.c) and the microbenchmark (tools/ukernel_bench.c,
 * crisp-ukernel-bench), so adding a variant is one line.
 *
 * Operand layout shared by the conv and linear drivers (src/conv_fast.c):
 * activations are K rows x pixels ("B", row stride b_stride), weights are
 * output rows x K ("A" dense, row stride a_stride; the OHWI order of the
 * file, so no repacking) or the packed hybrid runs of src/pack.c, outputs are
 * output rows x pixels ("C", row stride c_stride). A call computes nc <= NR
 * pixels of its rows completely: bias, every k in increasing order with a
 * fused multiply-add, then the clamp of the fused activation. So each output
 * element is the same sequence of operations whatever the tiling and thread
 * count, and results are bitwise identical across thread counts. */
#ifndef CRISP_KERNELS_UKERNELS_H
#define CRISP_KERNELS_UKERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/params.h"

/* C[0..mr, 0..nc) = clamp(bias + A[0..mr, 0..kc) x B[0..kc, 0..nc)), for
 * 1 <= mr <= MR and 1 <= nc <= NR of the kernel's tile. bias may be NULL. */
typedef void (*crisp_f32_gemm_ukernel_fn)(size_t mr, size_t nc, size_t kc, const float *a,
                                          size_t a_stride, const float *b, size_t b_stride,
                                          float *c, size_t c_stride, const float *bias,
                                          const crisp_minmax_params *params);

/* One hybrid run (rows sharing their kept columns, src/pack.c): for row r of
 * `rows` and pixel n < nc <= NR,
 *   C[r, n] = clamp(bias[r] + sum_e w[e * rows + r] * B[column[e], n]).
 * rows >= 1 is any count (a kernel walks it in register-sized chunks). */
typedef void (*crisp_f32_spmm_ukernel_fn)(size_t rows, size_t nc, size_t entries,
                                          const uint32_t *column, const float *w,
                                          const float *b, size_t b_stride, float *c,
                                          size_t c_stride, const float *bias,
                                          const crisp_minmax_params *params);

/* Dense linear at batch 1: for r < mr <= MR,
 *   y[r] = clamp(bias[r] + sum_k W[r, k] x[k]), W rows w_stride apart.
 * bias may be NULL. */
typedef void (*crisp_f32_gemv_ukernel_fn)(size_t mr, size_t kc, const float *w, size_t w_stride,
                                          const float *x, float *y, const float *bias,
                                          const crisp_minmax_params *params);

/* Rows of a 2:4 hybrid layer's encoding read in place (docs/format.md;
 * src/expand.h builds it, crisp_expand24_block_rows), what the expansion
 * kernels turn into dense rows and the in-place linear kernels multiply
 * (f32_nmv24.inc, which ignore out_stride): rows row0 .. row0 + rows - 1 of one
 * block-row, row t in run t / v. The block-row keeps `blocks` blocks, at
 * block columns block_col[b] (u32, little-endian, increasing). Block b
 * covers columns c0 = block_col[b] * block_cols .. c0 + w - 1 (w =
 * min(block_cols, cols - c0), a multiple of 4: only the last block may be
 * partial); its w / 4 groups of 2 values for row t start at values +
 * b * value_stride + t * w / 2, their 2-bit positions at the stream's
 * position first + b * index_stride + (t / v) * w / 2 (even: a group's 4 bits
 * sit in one byte). The kernel writes all `cols` floats of each row, row t
 * at out + (t - row0) * out_stride:
 *   [c0 + 4g + pos(group g's position k)] = the group's value k (k = 0, 1),
 *   and 0 everywhere else (removed blocks included).
 * Block-major, so the rows' values of a block are read as one stream.
 * Positions within a group strictly increase (the loader checks it). It
 * reads only the stream bytes holding those positions and those values: the
 * data sits in the mapped file, whose end may follow them. */
typedef struct crisp_expand24_rows {
    size_t blocks;
    const uint8_t *block_col;
    size_t block_cols, cols;
    size_t row0, rows, v;
    const float *values;
    size_t value_stride;
    const uint8_t *stream;
    uint64_t first, index_stride;
    size_t out_stride;
} crisp_expand24_rows;

typedef void (*crisp_f32_expand24_ukernel_fn)(const crisp_expand24_rows *p, float *out);

/* A float32 2:4 hybrid linear at batch 1 read in place from the file
 * (kernels/f32_nmv24.inc): rows [row0, row0 + rows) of one block-row (rows at
 * most CRISP_NMV24_MAX_ROWS; t = row0 + i) as crisp_expand24_rows lays them
 * out (out_stride unused):
 *   y[i] = clamp(bias[i] + sum over blocks b and groups g of
 *                 value(t, b, g, k) * x[c0 + 4g + pos(t, b, g, k)], k = 0, 1)
 * to rounding (the kernels' order: lanes, then a fixed reduction). bias may
 * be NULL. It reads x only inside the kept blocks, and the values and stream
 * bytes of its rows only. */
#define CRISP_NMV24_MAX_ROWS 16
typedef void (*crisp_f32_nmv24_ukernel_fn)(const crisp_expand24_rows *p, const float *x, float *y,
                                           const float *bias, const crisp_minmax_params *params);

/* Depthwise conv (and max pool) of one channel: a band of output rows, one
 * call. The driver copies the band's padded input rows into sh x sw stride
 * phases: phase (a, b) holds padded rows a, a + sh, ... and columns b, b + sw,
 * ... as a plane of phase_size floats, rows phase_stride (ps) apart, at
 * phases + (a * sw + b) * phase_size; zero (max pool: -inf) outside the image.
 * Output pixel (oy, ox) is then "wide" position p = oy * ps + ox, and tap
 * (ky, kx) reads phases[offset(ky, kx) + p] with
 *   offset = ((ry % sh) * sw + rx % sw) * phase_size + (ry / sh) * ps + rx / sw,
 *   ry = ky * dh, rx = kx * dw,
 * the same offset for every pixel. So a kernel walks the band's pixels as one
 * flat stream - vectors cross row ends, 7- and 14-pixel rows fill them - and
 * stores only the columns ox < output_width:
 *   out[oy * ow + ox] = clamp(bias + sum_{ky,kx} w[ky * kw + kx] * phases[offset + p]).
 * Reads may run up to CRISP_DWCONV_SLACK floats past the last phase (lanes the
 * kernel never stores); the driver pads the phases with that many floats. */
#define CRISP_DWCONV_SLACK 64

typedef struct crisp_dwconv_plane {
    const float *phases;
    size_t phase_size, phase_stride;
    size_t stride_height, stride_width, dilation_height, dilation_width;
    size_t kernel_height, kernel_width, output_height, output_width;
} crisp_dwconv_plane;

typedef void (*crisp_f32_dwconv_ukernel_fn)(const crisp_dwconv_plane *plane, const float *w,
                                            float bias, float *out,
                                            const crisp_minmax_params *params);

/* Depthwise conv of one channel, stride s = 1 or 2 in both directions,
 * read in place ("direct": no copy): wide positions p = oy * iw + ox (iw the
 * input row length; output_width <= iw),
 * and tap (ky, kx) reads x[s * p + off(ky, kx)] with the fixed offset
 *   off = (ky * dh - padding_top) * iw + kx * dw - padding_left,
 * the same flat stream as the phases above (stride 2 keeps only half of each
 * wide row: the columns ox < output_width). A read that wraps into a
 * neighbouring row is a padding column: the kernel zeroes it with
 * column_mask (row kx, iw + CRISP_DWCONV_MAX_CHUNK entries: entry i is all
 * ones where s * (i mod iw) + kx * dw - padding_left lies in [0, iw), else
 * 0; crisp_dwconv_column_masks builds it). A read above the first or below
 * the last input row leaves the plane: reads within zeros_before floats
 * before it and zeros_after after it (zeros the driver put there, when it
 * copies a small plane; else 0) are taken as they are; a chunk that reads
 * further copies its window into `edge` (crisp_dwconv_edge_floats floats)
 * with zeros outside the plane. So padding reads 0 as in the phases and the
 * sum order is the same (bias, then taps in (ky, kx) order): every output is
 * bitwise the phase kernel's. */
#define CRISP_DWCONV_MAX_CHUNK 64

typedef struct crisp_dwconv_image {
    const float *x; /* the channel's input plane, input_height x input_width */
    size_t zeros_before, zeros_after;
    const uint32_t *column_mask;
    float *edge;
    size_t input_height, input_width, padding_top, padding_left, stride;
    size_t dilation_height, dilation_width, kernel_height, kernel_width;
    size_t output_height, output_width;
    /* 1: a 3 x 3 window with padding 1 at top and left and dilation 1 may be
     * walked a pair of output rows at a time, in whole vectors of a row (the
     * driver asks where the tier's list entry says it pays; a kernel without
     * that walk, or another geometry, ignores it). */
    int rows;
    /* The row walks also take a band (a conv fused with the 1 x 1 conv
     * before it, src/conv_fast.c "Expand fusion"): they compute output rows
     * [row_begin, row_end) only (row_end 0: every row), and x holds the input
     * rows from x_row on (x = the plane's row x_row; rows above it are not
     * there, and the walk reads none: the driver passes every row the band's
     * windows reach). The other walks take the whole plane: 0, 0, 0. */
    size_t row_begin, row_end, x_row;
} crisp_dwconv_image;

typedef void (*crisp_f32_dwconv_direct_ukernel_fn)(const crisp_dwconv_image *im,
                                                   const float *w, float bias, float *out,
                                                   const crisp_minmax_params *params);

/* Fills column_mask (kernel_width * (input_width + CRISP_DWCONV_MAX_CHUNK)
 * entries) for im's geometry. */
void crisp_dwconv_column_masks(const crisp_dwconv_image *im, uint32_t *column_mask);
static inline size_t crisp_dwconv_mask_entries(size_t kernel_width, size_t input_width) {
    return kernel_width * (input_width + CRISP_DWCONV_MAX_CHUNK);
}
/* One chunk's window: up to 2 * CRISP_DWCONV_MAX_CHUNK positions' worth
 * at stride 2, plus the window's reach. */
static inline size_t crisp_dwconv_edge_floats(size_t kernel_height, size_t kernel_width,
                                              size_t dilation_height, size_t dilation_width,
                                              size_t input_width) {
    return 2 * CRISP_DWCONV_MAX_CHUNK + (kernel_height - 1) * dilation_height * input_width +
           (kernel_width - 1) * dilation_width;
}

/* One int8 hybrid run (src/pack.c; int8 weights in groups of four entries,
 * kernels/common.h): for row r < rows and pixel n < nc <= NR,
 *   acc     = q->bias[r] + sum_e w[crisp_qs8_weight_index(e, r, rows)] *
 *             (B[column[e], n] - q->input_zero_point)
 *   C[r, n] = crisp_qs8_requantize((float)acc * q->multiplier[r], z_y, min, max)
 * exactly as the reference kernels (int32 sums are exact, and the kernels do
 * the requantisation's float operations in the reference's order), so the
 * outputs are bitwise the reference's. q's per-channel arrays (bias,
 * multiplier, weight_sum) start at the run's first row. Kernels read no B
 * byte at or past nc in a row. */
typedef void (*crisp_qs8_spmm_ukernel_fn)(size_t rows, size_t nc, size_t entries,
                                          const uint32_t *column, const int8_t *w,
                                          const int8_t *b, size_t b_stride, int8_t *c,
                                          size_t c_stride, const crisp_qs8_requant *q);

/* int8 dense linear at batch 1: for r < mr <= MR,
 *   acc  = q->bias[r] + sum_k W[r, k] (x[k] - q->input_zero_point)
 *   y[r] = crisp_qs8_requantize((float)acc * q->multiplier[r], z_y, min, max),
 * W rows w_stride bytes apart, bitwise the reference (kernels/qs8_gemv.inc).
 * q's per-channel arrays (bias, multiplier, weight_sum) start at the call's
 * first row. Kernels read exactly kc bytes of x and of each row. */
typedef void (*crisp_qs8_gemv_ukernel_fn)(size_t mr, size_t kc, const int8_t *w,
                                          size_t w_stride, const int8_t *x, int8_t *y,
                                          const crisp_qs8_requant *q);

/* One int8 hybrid run of a linear layer at batch 1 (src/pack.c's run
 * layout, kernels/common.h): for row r < rows,
 *   acc  = q->bias[r] + sum_e w[crisp_qs8_weight_index(e, r, rows)] *
 *          (x[column[e]] - q->input_zero_point)
 *   y[r] = crisp_qs8_requantize((float)acc * q->multiplier[r], z_y, min, max),
 * bitwise the reference (kernels/qs8_spmv.inc). q's per-channel arrays
 * (bias, multiplier, weight_sum) start at the run's first row. Kernels may
 * read the CRISP_QS8_SPMV_SLACK bytes x[column[e] + 1 ..] too (a 32-bit
 * gather of one byte): the driver copies x into scratch with that slack. */
#define CRISP_QS8_SPMV_SLACK 4

typedef void (*crisp_qs8_spmv_ukernel_fn)(size_t rows, size_t entries, const uint32_t *column,
                                          const int8_t *w, const int8_t *x, int8_t *y,
                                          const crisp_qs8_requant *q);

/* Decides p->by_inverse for an ADD's parameters (kernels/generic/
 * qs8_add__scalar.c): the spec divides by the output scale, a division per
 * element that bounds the vector kernels (vdivps: 13 % of an int8 ResNet-50
 * @90 %); a multiply by the reciprocal rounds differently in the last bit
 * now and then, which the rounding to int8 almost always hides. An ADD has
 * only 65536 distinct inputs, so the multiply is allowed exactly when it
 * matches the division on all of them: outputs stay bitwise the spec's. */
void crisp_qs8_add_prepare(crisp_qs8_add_params *p);

/* int8 addition of n elements, bitwise the reference (kernels/qs8_add.inc). */
typedef void (*crisp_qs8_add_ukernel_fn)(size_t n, const int8_t *a, const int8_t *b, int8_t *y,
                                         const crisp_qs8_add_params *p);

/* int8 max pooling of one channel (p->channels is ignored): bitwise the
 * reference (kernels/qs8_maxpool.inc). */
typedef void (*crisp_qs8_maxpool_ukernel_fn)(const crisp_pool2d_params *p, const int8_t *x,
                                             int8_t *y);

/* int8 depthwise conv of one channel, every output row, from a padded copy
 * split into column phases as crisp_dwconv_plane's (phase q holds padded
 * columns q, q + s, ...), holding q_x - z_x as int16 (padding 0):
 *   out[oy][ox] = crisp_qs8_requantize((float)(bias + sum_{ky,kx} w[ky*kw+kx] *
 *                 phase[(kx*d) % s][(oy*sh + ky*dh) * phase_stride + ox + (kx*d) / s])
 *                 * multiplier, z_y, min, max)  (q's zero point and range).
 * Kernels read up to CRISP_QS8_DWCONV_SLACK elements past a phase row's last
 * used column; the driver pads the planes' end with that many. */
#define CRISP_QS8_DWCONV_SLACK 32

typedef struct crisp_qs8_dwconv_plane {
    const int16_t *phases;
    size_t phase_size, phase_stride;
    size_t stride_height, stride_width, dilation_height, dilation_width;
    size_t kernel_height, kernel_width, output_height, output_width;
} crisp_qs8_dwconv_plane;

typedef void (*crisp_qs8_dwconv_ukernel_fn)(const crisp_qs8_dwconv_plane *pl, const int8_t *w,
                                            int32_t bias, float multiplier, int8_t *out,
                                            const crisp_qs8_requant *q);

/* int8 depthwise conv of one channel, stride s = 1 or 2 in both directions,
 * kernel_width <= 4 and dilation_width 1, read in place (no copy; the float
 * path's crisp_dwconv_image geometry): wide positions p = oy * iw + ox (iw
 * the input row length, output_width <= iw). Tap (ky, kx) of position p
 * reads x[s * p + (ky * dh - padding_top) * iw + kx - padding_left], so the
 * taps of one window row are adjacent bytes: the kernels take them as one
 * 4-byte "quad" per position and row (bytes kx = 0 .. 3, weight 0 past
 * kernel_width), one dot product of four bytes (vpdpbusd, sdot) or two
 * pairs (vpmaddwd, vmull + pairwise adds). A chunk's positions are split
 * into P = 4 / s phases: lane j of phase f is position p0 + P j + f, whose
 * quad starts at s p0 + 4 j + s f + offset - so each phase of a window row
 * is one contiguous load, whatever the stride (no deinterleaving).
 *
 * Padding reads the input zero point z_x: a quad byte whose column falls
 * left or right of the image (it wrapped into a neighbouring row) is
 * replaced by z_x through quad_mask (crisp_qs8_dwconv_quad_masks: entry i,
 * lane j is the 4-byte mask, 0xff = keep, of position i + P j's quad, for
 * i < iw + CRISP_QS8_DWCONV_MAX_CHUNK and 16 lanes; bytes past kernel_width
 * are 0x00). A read above the first or below the last input row leaves the
 * plane: reads within zeros_before bytes before it and zeros_after after it
 * (bytes equal to z_x that the driver put there when it copies a small
 * plane; else 0) are taken as they are; a chunk that reads further copies
 * its window into `edge` (crisp_qs8_dwconv_edge_bytes) with z_x outside
 * the plane. So every padding tap contributes w (z_x - z_x) = 0 and the
 * kernels sum w q_x from bias - z_x sum(w) (int32 sums are exact, so the
 * order does not matter): out[oy * ow + ox] is
 *   crisp_qs8_requantize((float)(bias + sum_{valid taps} w (q_x - z_x)) * multiplier,
 *                        z_y, min, max),
 * bitwise the reference (kernels/qs8_dwconv_direct.inc). */
#define CRISP_QS8_DWCONV_MAX_CHUNK 64
#define CRISP_QS8_DWCONV_QUAD_LANES 16

typedef struct crisp_qs8_dwconv_image {
    const int8_t *x; /* the channel's input plane, input_height x input_width */
    size_t zeros_before, zeros_after;
    const uint32_t *quad_mask;
    int8_t *edge;
    size_t input_height, input_width, padding_top, padding_left, stride;
    size_t dilation_height, kernel_height, kernel_width;
    size_t output_height, output_width;
} crisp_qs8_dwconv_image;

/* weight_sum: the channel's sum of w (crisp_qs8_requant.weight_sum, computed
 * at load), which the kernels fold into the bias with z_x. */
typedef void (*crisp_qs8_dwconv_direct_ukernel_fn)(const crisp_qs8_dwconv_image *im,
                                                   const int8_t *w, int32_t bias,
                                                   int32_t weight_sum, float multiplier,
                                                   int8_t *out, const crisp_qs8_requant *q);

/* Whether a conv's geometry fits the in-place int8 kernels. */
#define CRISP_QS8_DWCONV_MAX_KH 16
static inline int crisp_qs8_dwconv_direct_fits(size_t stride_height, size_t stride_width,
                                               size_t kernel_height, size_t kernel_width,
                                               size_t dilation_width,
                                               size_t output_width, size_t input_width) {
    return stride_height == stride_width && stride_width >= 1 && stride_width <= 2 &&
           kernel_width <= 4 && dilation_width == 1 && output_width <= input_width &&
           kernel_height <= CRISP_QS8_DWCONV_MAX_KH;
}
/* Fills quad_mask (crisp_qs8_dwconv_mask_entries uint32) for im's geometry. */
void crisp_qs8_dwconv_quad_masks(const crisp_qs8_dwconv_image *im, uint32_t *quad_mask);
static inline size_t crisp_qs8_dwconv_mask_entries(size_t input_width) {
    return (input_width + CRISP_QS8_DWCONV_MAX_CHUNK) * CRISP_QS8_DWCONV_QUAD_LANES;
}
/* The edge window (ukernels.h above): the bytes a chunk at position p0
 * reads from s p0 - padding_top iw - padding_left on, its positions' quads
 * (s (CHUNK - 1) + 4) and the window's rows. */
static inline size_t crisp_qs8_dwconv_edge_bytes(size_t stride, size_t kernel_height,
                                                 size_t dilation_height, size_t input_width) {
    return stride * (CRISP_QS8_DWCONV_MAX_CHUNK - 1) + 4 +
           (kernel_height - 1) * dilation_height * input_width;
}

/* A block of `channels` (1 .. the variant's block) channels of a depthwise
 * 3 x 3 conv, dilation 1, stride 1 or 2 both ways (kernels/f32_dwconv_hwc.inc):
 * for channel c, output pixel (oy, ox),
 *   y[c * oh * ow + oy * ow + ox] = clamp(bias[c] + sum_{ky,kx} w[c * 9 + ky * 3 + kx] *
 *       x[c * ih * iw + (oy s + ky - pt) * iw + ox s + kx - pl])
 * (0 outside the image; bias may be NULL), the taps in order from bias up,
 * as the plane kernels add them. `tile`: crisp_dwconv_hwc_tile_floats. */
typedef struct crisp_dwconv_hwc_block {
    const float *x, *w, *bias; /* the block's first channel's plane, weights, bias */
    float *y, *tile;
    size_t channels, input_height, input_width, padding_top, padding_left, stride;
    size_t output_height, output_width;
} crisp_dwconv_hwc_block;

typedef void (*crisp_f32_dwconv_hwc_ukernel_fn)(const crisp_dwconv_hwc_block *b,
                                                const crisp_minmax_params *params);

static inline size_t crisp_dwconv_hwc_tile_floats(size_t output_height, size_t output_width,
                                                  size_t stride, size_t block) {
    return ((output_height - 1) * stride + 3) * ((output_width - 1) * stride + 3) * block;
}

/* A block of `channels` (1 .. the variant's block) channels of an int8
 * depthwise 3 x 3 conv, dilation 1, stride 1 or 2 both ways, padding_top
 * and padding_left at most 2 (kernels/qs8_dwconv_hwc.inc): for channel c,
 * output pixel (oy, ox),
 *   y[c * oh * ow + oy * ow + ox] = crisp_qs8_requantize((float)(bias[c] +
 *       sum_{ky,kx inside the image} w[c * 9 + ky * 3 + kx] (x[c * ih * iw +
 *       (oy s + ky - pt) * iw + ox s + kx - pl] - z_x)) * multiplier[c], z_y, min, max)
 * with q's arrays (bias, multiplier, weight_sum) starting at the block's
 * first channel. `tile`: crisp_qs8_dwconv_hwc_tile_bytes, 64-byte aligned. */
typedef struct crisp_qs8_dwconv_hwc_block {
    const int8_t *x, *w; /* the block's first channel's plane and weights */
    int8_t *y;
    void *tile;
    size_t channels, input_height, input_width, padding_top, padding_left, stride;
    size_t output_height, output_width;
} crisp_qs8_dwconv_hwc_block;

typedef void (*crisp_qs8_dwconv_hwc_ukernel_fn)(const crisp_qs8_dwconv_hwc_block *b,
                                                const crisp_qs8_requant *q);

/* The tile: (oh - 1) s + 3 rows of cells, each row (ow - 1) s + 4 cells
 * rounded up to 4 (a 4-cell load at every output), 16 bytes per cell; at
 * stride 1 then the same rows of ow quads (64 bytes: the 16 channels'
 * window-row quads of the output columns). */
static inline size_t crisp_qs8_dwconv_hwc_tile_bytes(size_t output_height, size_t output_width,
                                                     size_t stride) {
    const size_t cells = ((output_width - 1) * stride + 4 + 3) / 4 * 4;
    return ((output_height - 1) * stride + 3) * (cells * 16 + (stride == 1 ? output_width * 64 : 0));
}

/* One float32 hybrid run of a linear layer at batch 1 (src/pack.c's run
 * layout): for row r < rows,
 *   y[r] = clamp(bias[r] + sum_e w[e * rows + r] * x[column[e]])
 * to rounding (the sum's order is the kernel's, kernels/f32_spmv.inc). bias
 * may be NULL. Kernels read x only at the run's columns. */
typedef void (*crisp_f32_spmv_ukernel_fn)(size_t rows, size_t entries, const uint32_t *column,
                                          const float *w, const float *x, float *y,
                                          const float *bias, const crisp_minmax_params *params);

/* dst[j] = src[2 j] for j < n (kernels/qs8_stride2.inc); reads no byte past
 * src[2 (n - 1)]. */
typedef void (*crisp_qs8_stride2_ukernel_fn)(size_t n, const int8_t *restrict src,
                                             int8_t *restrict dst);

/* dst[j] = src[2 j] for j < n (kernels/f32_stride2.inc); reads no float past
 * src[2 (n - 1)]. */
typedef void (*crisp_f32_stride2_ukernel_fn)(size_t n, const float *restrict src,
                                             float *restrict dst);

/* y[i] = clamp(a[i] + b[i]) for i < n: a float32 ADD and its fused clamp
 * (kernels/f32_add.inc). */
typedef void (*crisp_f32_add_ukernel_fn)(size_t n, const float *a, const float *b, float *y,
                                         const crisp_minmax_params *params);

/* float32 -> int8 of n elements (QUANTIZE), bitwise the reference
 * (kernels/f32_quantize.inc). */
typedef void (*crisp_f32_quantize_ukernel_fn)(size_t n, const float *x, int8_t *y,
                                              const crisp_qs8_quantize_params *p);

/* Prototypes of every variant compiled for this architecture. */
#define CRISP_GEMM(isa, name, mr, nr)                                                      \
    void name(size_t, size_t, size_t, const float *, size_t, const float *, size_t, float *, \
              size_t, const float *, const crisp_minmax_params *);
#define CRISP_SPMM(isa, name, nr)                                                          \
    void name(size_t, size_t, size_t, const uint32_t *, const float *, const float *, size_t, \
              float *, size_t, const float *, const crisp_minmax_params *);
#define CRISP_DWCONV(isa, name)                                                            \
    void name(const crisp_dwconv_plane *, const float *, float, float *,                   \
              const crisp_minmax_params *);
#define CRISP_MAXPOOL(isa, name) CRISP_DWCONV(isa, name)
#define CRISP_DWCONV_DIRECT(isa, name, rows)                                                  \
    void name(const crisp_dwconv_image *, const float *, float, float *,                 \
              const crisp_minmax_params *);
#define CRISP_GEMV(isa, name, mr)                                                           \
    void name(size_t, size_t, const float *, size_t, const float *, float *, const float *, \
              const crisp_minmax_params *);
#define CRISP_EXPAND24(isa, name) \
    void name(const crisp_expand24_rows *, float *);
#include "kernels/f32_expand24.inc"
#undef CRISP_EXPAND24
#define CRISP_F32_NMV24(isa, name) \
    void name(const crisp_expand24_rows *, const float *, float *, const float *, \
              const crisp_minmax_params *);
#include "kernels/f32_nmv24.inc"
#undef CRISP_F32_NMV24
#include "kernels/f32_gemv.inc"
#include "kernels/f32_gemm.inc"
#include "kernels/f32_spmm.inc"
#include "kernels/f32_dwconv.inc"
#include "kernels/f32_maxpool.inc"
#include "kernels/f32_dwconv_direct.inc"
#define CRISP_QS8_SPMM(isa, name, nr)                                                     \
    void name(size_t, size_t, size_t, const uint32_t *, const int8_t *, const int8_t *,   \
              size_t, int8_t *, size_t, const crisp_qs8_requant *);
#include "kernels/qs8_spmm.inc"
#undef CRISP_QS8_SPMM
#define CRISP_QS8_GEMV(isa, name, mr)                                                   \
    void name(size_t, size_t, const int8_t *, size_t, const int8_t *, int8_t *, \
              const crisp_qs8_requant *);
#include "kernels/qs8_gemv.inc"
#undef CRISP_QS8_GEMV
#define CRISP_QS8_SPMV(isa, name)                                                         \
    void name(size_t, size_t, const uint32_t *, const int8_t *, const int8_t *, int8_t *, \
              const crisp_qs8_requant *);
#include "kernels/qs8_spmv.inc"
#undef CRISP_QS8_SPMV
#define CRISP_QS8_ADD(isa, name) \
    void name(size_t, const int8_t *, const int8_t *, int8_t *, const crisp_qs8_add_params *);
#include "kernels/qs8_add.inc"
#undef CRISP_QS8_ADD
#define CRISP_QS8_MAXPOOL(isa, name) void name(const crisp_pool2d_params *, const int8_t *, int8_t *);
#include "kernels/qs8_maxpool.inc"
#undef CRISP_QS8_MAXPOOL
#define CRISP_QS8_DWCONV(isa, name)                                                  \
    void name(const crisp_qs8_dwconv_plane *, const int8_t *, int32_t, float, int8_t *, \
              const crisp_qs8_requant *);
#include "kernels/qs8_dwconv.inc"
#undef CRISP_QS8_DWCONV
#define CRISP_QS8_DWCONV_DIRECT(isa, name)                                             \
    void name(const crisp_qs8_dwconv_image *, const int8_t *, int32_t, int32_t, float, \
              int8_t *, const crisp_qs8_requant *);
#include "kernels/qs8_dwconv_direct.inc"
#undef CRISP_QS8_DWCONV_DIRECT
#define CRISP_DWCONV_HWC(isa, name, block) \
    void name(const crisp_dwconv_hwc_block *, const crisp_minmax_params *);
#include "kernels/f32_dwconv_hwc.inc"
#undef CRISP_DWCONV_HWC
#define CRISP_QS8_DWCONV_HWC(isa, name, block) \
    void name(const crisp_qs8_dwconv_hwc_block *, const crisp_qs8_requant *);
#include "kernels/qs8_dwconv_hwc.inc"
#undef CRISP_QS8_DWCONV_HWC
#define CRISP_F32_SPMV(isa, name)                                                           \
    void name(size_t, size_t, const uint32_t *, const float *, const float *, float *, \
              const float *, const crisp_minmax_params *);
#include "kernels/f32_spmv.inc"
#undef CRISP_F32_SPMV
#define CRISP_QS8_STRIDE2(isa, name) void name(size_t, const int8_t *restrict, int8_t *restrict);
#include "kernels/qs8_stride2.inc"
#undef CRISP_QS8_STRIDE2
#define CRISP_F32_STRIDE2(isa, name) void name(size_t, const float *restrict, float *restrict);
#include "kernels/f32_stride2.inc"
#undef CRISP_F32_STRIDE2
#define CRISP_F32_ADD(isa, name) \
    void name(size_t, const float *, const float *, float *, const crisp_minmax_params *);
#include "kernels/f32_add.inc"
#undef CRISP_F32_ADD
#define CRISP_F32_QUANTIZE(isa, name) \
    void name(size_t, const float *, int8_t *, const crisp_qs8_quantize_params *);
#include "kernels/f32_quantize.inc"
#undef CRISP_F32_QUANTIZE
#undef CRISP_GEMM
#undef CRISP_SPMM
#undef CRISP_DWCONV
#undef CRISP_MAXPOOL
#undef CRISP_DWCONV_DIRECT
#undef CRISP_GEMV

/* The kernels a session runs: the best variant of each family this CPU
 * supports (src/kernels/select.c). */
typedef struct crisp_f32_kernels {
    const char *isa; /* "scalar", "avx2_fma", "avx512f", "neon" */
    crisp_f32_gemm_ukernel_fn gemm;
    size_t gemm_mr, gemm_nr;
    crisp_f32_spmm_ukernel_fn spmm;
    size_t spmm_nr;
    crisp_f32_dwconv_ukernel_fn dwconv;
    crisp_f32_dwconv_ukernel_fn maxpool; /* same plane; w NULL, bias -inf */
    crisp_f32_dwconv_direct_ukernel_fn dwconv_direct;
    size_t dwconv_direct_rows; /* f32_dwconv_direct.inc: its row walk from this output width */
    crisp_f32_gemv_ukernel_fn gemv;
    size_t gemv_mr;
    crisp_f32_expand24_ukernel_fn expand24; /* 2:4 weights to dense (src/expand.c) */
    crisp_f32_add_ukernel_fn add;
    crisp_f32_stride2_ukernel_fn stride2; /* im2col rows of stride-2 convs */
    crisp_f32_spmv_ukernel_fn spmv;       /* hybrid linears at batch 1 */
    crisp_f32_nmv24_ukernel_fn nmv24;     /* 2:4 hybrid linears read from the file */
    crisp_f32_dwconv_hwc_ukernel_fn dwconv_hwc; /* NULL: depthwise on the plane kernels */
    size_t dwconv_hwc_block;
} crisp_f32_kernels;

/* Best kernels for the running CPU (honours CRISP_MAX_ISA, src/cpu.h). */
const crisp_f32_kernels *crisp_f32_kernels_best(void);

/* The int8 kernels a session runs, chosen the same way. */
typedef struct crisp_qs8_kernels {
    const char *isa; /* "scalar", "avx2_fma", "avxvnni", "avx512vnni", "neon", "neon_dotprod" */
    crisp_qs8_spmm_ukernel_fn spmm;
    size_t spmm_nr;
    crisp_qs8_add_ukernel_fn add;
    crisp_qs8_maxpool_ukernel_fn maxpool;
    crisp_qs8_dwconv_ukernel_fn dwconv;
    crisp_qs8_dwconv_direct_ukernel_fn dwconv_direct; /* stride 1 or 2, in place */
    crisp_qs8_dwconv_hwc_ukernel_fn dwconv_hwc;       /* small 3 x 3 planes, channels in lanes */
    size_t dwconv_hwc_block;
    crisp_qs8_gemv_ukernel_fn gemv;
    size_t gemv_mr;
    crisp_qs8_spmv_ukernel_fn spmv; /* hybrid linears at batch 1 */
    crisp_f32_quantize_ukernel_fn quantize; /* QUANTIZE: float32 -> int8 */
    crisp_qs8_stride2_ukernel_fn stride2;   /* im2col rows of stride-2 convs */
} crisp_qs8_kernels;

const crisp_qs8_kernels *crisp_qs8_kernels_best(void);

/* Whether this CPU runs kernels of `isa` (one of the names above). */
int crisp_isa_supported(const char *isa);

#endif
