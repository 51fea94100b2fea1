/* int8 ops on the optimised microkernels: hybrid-sparse convs (groups = 1)
 * on the int8 sparse-run kernels (src/kernels/qs8_spmm.inc), hybrid
 * linears at batch 1 on the run-at-a-time kernels (src/kernels/qs8_spmv.inc),
 * dense linears (and hybrid ones run dense, src/pack.c densify_linear) on
 * the int8 GEMV kernels (src/kernels/qs8_gemv.inc), and dense convs
 * (groups = 1) on the sparse-run kernels as runs of four rows that
 * keep every column (the weight panels of src/pack.c),
 * with the float path's structure (src/conv_fast.c): output pixels cut into
 * tiles whose int8 patch matrix (im2col, built per thread in scratch; a 1x1
 * stride-1 unpadded conv and a dense linear read their input in place, a
 * hybrid linear a copy with the gather's slack) every run
 * sweeps in NR-pixel calls. Padding is the input zero point, which adds
 * nothing, as in the reference. Every output element gets the reference's
 * exact int32 sum and requantisation, so results are bitwise the
 * reference's for any tiling and thread count. Activations stay int8. */
#include <stdlib.h>
#include <string.h>

#include "conv_fast.h"
#include "format.h"
#include "kernels/common.h"

/* An int8 patch tile of 256 KiB, as the float path's in bytes would be 1 MiB:
 * int8 B rows are 4x shorter, so the same bytes hold 4x the pixels. */
#define TILE_BUDGET_BYTES ((size_t)256 * 1024)

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* Depthwise: the whole padded channel as int16 column phases (ukernels.h,
 * crisp_qs8_dwconv_plane), plus the kernels' read slack. */
static size_t dw_phase_stride(const crisp_conv2d_params *p) {
    const size_t s = p->stride_width;
    const size_t cols = (p->output_width - 1) * s + (p->kernel_width - 1) * p->dilation_width + 1;
    return (cols + s - 1) / s;
}
static size_t dw_padded_rows(const crisp_conv2d_params *p) {
    return (p->output_height - 1) * p->stride_height +
           (p->kernel_height - 1) * p->dilation_height + 1;
}
static size_t dw_plane_elements(const crisp_conv2d_params *p) {
    return p->stride_width * dw_padded_rows(p) * dw_phase_stride(p) + CRISP_QS8_DWCONV_SLACK;
}

/* Stride 1 or 2 with a window at most 4 wide (undilated), output rows no
 * longer than the input's (MobileNet's 3 x 3 layers): read in place
 * (ukernels.h, crisp_qs8_dwconv_image); others build the phases below. */
static int dw_in_place(const crisp_conv2d_params *p) {
    return crisp_qs8_dwconv_direct_fits(p->stride_height, p->stride_width, p->kernel_height,
                                        p->kernel_width, p->dilation_width, p->output_width,
                                        p->input_width);
}
/* Planes up to this many bytes are copied whole (one memcpy) between
 * margins of z_x, as the float path copies planes of up to 1024 floats
 * (src/conv_fast.c): most chunks of a 28 x 28 or smaller plane reach a
 * padding row, and the copy costs less than their edge windows. */
#define DW_COPY_PLANE_BYTES ((size_t)1024)
static int dw_copies_plane(const crisp_conv2d_params *p) {
    return p->input_height * p->input_width <= DW_COPY_PLANE_BYTES;
}
/* The bytes before and after the plane that every chunk's window stays
 * within (the kernel's edge test, ukernels.h). */
static void dw_margins(const crisp_conv2d_params *p, size_t *before, size_t *after) {
    const size_t iw = p->input_width, plane = p->input_height * iw;
    const size_t end = (p->output_height - 1) * iw + p->output_width;
    *before = p->padding_top * iw + p->padding_left;
    /* The last chunk starts before `end` and reads its window from s p0 - before. */
    const size_t reach = p->stride_width * (end - 1) +
                         crisp_qs8_dwconv_edge_bytes(p->stride_width, p->kernel_height,
                                                     p->dilation_height, iw);
    *after = reach > plane + *before ? reach - plane - *before : 0;
}
/* Depthwise convs that run a block of channels per call, channels in the
 * vector lanes (qs8_dwconv_hwc.inc): 3 x 3, dilation 1, stride 1 or 2 both
 * ways, padding at most 2 above and left, output planes up to DW_HWC_MAX_WIDTH
 * wide (measured in runtime/README.md, "int8"). CRISP_DWCONV_PLANES=1 keeps
 * the plane kernels, to compare. */
#define DW_HWC_MAX_WIDTH ((size_t)14)
static int dw_hwc(const crisp_qs8_kernels *k, const crisp_conv2d_params *p) {
    const char *env = getenv("CRISP_DWCONV_PLANES");
    if (env != NULL && strcmp(env, "1") == 0) return 0;
    return k->dwconv_hwc != NULL && p->kernel_height == 3 && p->kernel_width == 3 &&
           p->dilation_height == 1 && p->dilation_width == 1 &&
           p->stride_height == p->stride_width && p->stride_width <= 2 && p->padding_top <= 2 &&
           p->padding_left <= 2 && p->output_width <= DW_HWC_MAX_WIDTH &&
           p->output_height <= DW_HWC_MAX_WIDTH;
}
/* Its scratch: the quad masks, the edge window, the margined plane. */
static size_t dw_in_place_bytes(const crisp_conv2d_params *p) {
    size_t before, after;
    dw_margins(p, &before, &after);
    return crisp_qs8_dwconv_mask_entries(p->input_width) * sizeof(uint32_t) +
           crisp_qs8_dwconv_edge_bytes(p->stride_width, p->kernel_height, p->dilation_height,
                                       p->input_width) +
           (dw_copies_plane(p) ? before + p->input_height * p->input_width + after : 0);
}

/* Fills the phases of one channel with q_x - z_x, padding 0. */
static crisp_qs8_dwconv_plane dw_phases(const crisp_conv2d_params *p, const int8_t *x,
                                        int32_t zx, int16_t *buf) {
    const size_t s = p->stride_width, iw = p->input_width, pl = p->padding_left;
    const size_t stride = dw_phase_stride(p), rows = dw_padded_rows(p);
    const crisp_qs8_dwconv_plane plane = {buf, rows * stride, stride, p->stride_height, s,
                                          p->dilation_height, p->dilation_width,
                                          p->kernel_height, p->kernel_width, p->output_height,
                                          p->output_width};
    for (size_t q = 0; q < s; q++) {
        /* Phase column j is padded column q + s*j, image column q + s*j - pl. */
        const size_t j_lo = pl > q ? (pl - q + s - 1) / s : 0;
        const size_t j_end = iw + pl > q ? (iw + pl - q - 1) / s + 1 : 0;
        const size_t j_hi = min_size(j_end, stride);
        for (size_t r = 0; r < rows; r++) {
            int16_t *dst = buf + q * plane.phase_size + r * stride;
            const ptrdiff_t iy = (ptrdiff_t)r - (ptrdiff_t)p->padding_top;
            if (iy < 0 || iy >= (ptrdiff_t)p->input_height || j_lo >= j_hi) {
                memset(dst, 0, stride * sizeof *dst);
                continue;
            }
            memset(dst, 0, j_lo * sizeof *dst);
            const int8_t *src = x + (size_t)iy * iw + (q + s * j_lo - pl);
            int16_t *to = dst + j_lo;
            const size_t n = j_hi - j_lo;
            if (s == 1) { /* constant strides: these loops vectorise */
                for (size_t j = 0; j < n; j++) to[j] = (int16_t)(src[j] - zx);
            } else if (s == 2) {
                for (size_t j = 0; j < n; j++) to[j] = (int16_t)(src[2 * j] - zx);
            } else {
                for (size_t j = 0; j < n; j++) to[j] = (int16_t)(src[j * s] - zx);
            }
            memset(dst + j_hi, 0, (stride - j_hi) * sizeof *dst);
        }
    }
    memset(buf + s * plane.phase_size, 0, CRISP_QS8_DWCONV_SLACK * sizeof *buf);
    return plane;
}

/* The mask of the quad of wide position pos: byte b kept when b < kw and its
 * column s (pos mod iw) + b - padding_left lies in the image. */
static uint32_t quad_mask_of(const crisp_qs8_dwconv_image *im, size_t pos) {
    const size_t iw = im->input_width, ox = pos % iw;
    uint32_t m = 0;
    for (size_t b = 0; b < 4 && b < im->kernel_width; b++) {
        const ptrdiff_t c = (ptrdiff_t)(im->stride * ox + b) - (ptrdiff_t)im->padding_left;
        if (c >= 0 && c < (ptrdiff_t)iw) m |= (uint32_t)0xff << (8 * b);
    }
    return m;
}

void crisp_qs8_dwconv_quad_masks(const crisp_qs8_dwconv_image *im, uint32_t *quad_mask) {
    const size_t P = 4 / im->stride, L = CRISP_QS8_DWCONV_QUAD_LANES;
    const size_t n = im->input_width + CRISP_QS8_DWCONV_MAX_CHUNK;
    /* Entry i lane j is position i + P j's mask: entry i + P is entry i
     * moved down one lane, plus one new last lane. Built per op and thread,
     * so one mask computation per entry, not per lane. */
    for (size_t i = 0; i < n; i++) {
        uint32_t *e = quad_mask + i * L;
        if (i < P) {
            for (size_t j = 0; j < L; j++) e[j] = quad_mask_of(im, i + P * j);
        } else {
            memcpy(e, e - P * L + 1, (L - 1) * sizeof *e);
            e[L - 1] = quad_mask_of(im, i + P * (L - 1));
        }
    }
}

crisp_fast_plan crisp_fast_plan_qs8(const crisp_model *m, const crisp_op *op, int bands) {
    const crisp_qs8_kernels *k = crisp_qs8_kernels_best();
    crisp_fast_plan f;
    memset(&f, 0, sizeof f);
    if (op->kind != CRISP_OP_CONV2D && op->kind != CRISP_OP_LINEAR) return f;
    const crisp_conv2d_params *c = &op->k.qconv.conv;
    if (op->kind == CRISP_OP_CONV2D && c->groups > 1 && c->groups == c->input_channels &&
        c->groups == c->output_channels &&
        m->tensors[op->weight].encoding == CRISP_ENCODING_DENSE_I8) {
        f.path = CRISP_FAST_QS8_DWCONV;
        f.units = c->output_channels;
        f.tiles = 1;
        if (dw_hwc(k, c)) {
            f.channel_block = k->dwconv_hwc_block;
            f.units = (c->output_channels + f.channel_block - 1) / f.channel_block;
            f.scratch_floats = (crisp_qs8_dwconv_hwc_tile_bytes(c->output_height, c->output_width,
                                                                c->stride_width) + 3) / 4;
            return f;
        }
        f.direct = k->dwconv_direct != NULL && dw_in_place(c);
        f.scratch_floats = f.direct ? (dw_in_place_bytes(c) + 3) / 4
                                    : (dw_plane_elements(c) * sizeof(int16_t) + 3) / 4;
        return f;
    }
    if (op->kind == CRISP_OP_LINEAR &&
        (m->tensors[op->weight].encoding == CRISP_ENCODING_DENSE_I8 ||
         op->packed.dense_qs8 != NULL)) {
        /* Batch 1: a GEMV over the file's row-major weights, in place (no
         * packed copy), or a hybrid layer's dense copy (src/pack.c,
         * densify_linear); a work item is one call's MR rows. */
        f.path = CRISP_FAST_QS8_GEMV;
        f.units = (op->k.qlinear.output_features + k->gemv_mr - 1) / k->gemv_mr;
        f.tiles = f.tile_pixels = 1;
        f.k = op->k.qlinear.input_features;
        return f;
    }
    if (m->tensors[op->weight].encoding == CRISP_ENCODING_HYBRID_I8) {
        f.path = CRISP_FAST_QS8_SPMM;
        f.units = op->packed.sparse.run_count;
    } else if (op->packed.panel_qs8 != NULL) { /* dense conv, groups 1 (src/pack.c) */
        f.path = CRISP_FAST_QS8_GEMM;
        f.units = (op->k.qconv.conv.output_channels + 3) / 4;
    } else {
        return f;
    }
    if (op->kind == CRISP_OP_LINEAR) { /* batch 1: a one-pixel image read in place */
        f.direct = 1;
        f.tiles = f.tile_pixels = 1;
        f.k = op->k.qlinear.input_features;
        /* Hybrid runs (qs8_spmv) gather from a copy of x with the kernels' read slack. */
        if (f.path == CRISP_FAST_QS8_SPMM) {
            f.path = CRISP_FAST_QS8_SPMV;
            f.scratch_floats = (f.k + CRISP_QS8_SPMV_SLACK + 3) / 4;
        }
        return f;
    }
    const crisp_conv2d_params *p = &op->k.qconv.conv;
    if (p->groups != 1) {
        f.path = CRISP_FAST_NONE;
        return f;
    }
    const size_t nr = k->spmm_nr, pixels = p->output_height * p->output_width;
    f.k = p->kernel_height * p->kernel_width * p->input_channels;
    f.direct = p->kernel_height == 1 && p->kernel_width == 1 && p->stride_height == 1 &&
               p->stride_width == 1 && p->padding_top == 0 && p->padding_left == 0 &&
               p->output_height == p->input_height && p->output_width == p->input_width;
    size_t nt = TILE_BUDGET_BYTES / f.k / nr * nr;
    nt = min_size(nt < nr ? nr : nt, CRISP_FAST_MAX_TILE_PIXELS / nr * nr);
    f.tile_pixels = min_size(nt, (pixels + nr - 1) / nr * nr);
    f.tiles = (pixels + f.tile_pixels - 1) / f.tile_pixels;
    f.scratch_floats = f.direct ? 0 : (f.k * f.tile_pixels + 3) / 4;
    if (bands && !f.direct)
        crisp_fast_choose_band(
            p, f.path == CRISP_FAST_QS8_GEMM ? f.units : op->packed.sparse.run_count,
            f.path == CRISP_FAST_QS8_GEMM || op->macs == 0 ? 1.0 : crisp_fast_executed_density(m, op),
            1, TILE_BUDGET_BYTES, 1, nr, &f);
    return f;
}

/* Copies a segment of a stride-1 row. Segments are short (7 to 56 bytes in
 * ResNet), where a memcpy call or a byte loop costs more than the copy:
 * fixed-size memcpys (single loads and stores) in 16-byte steps, the last
 * one overlapping, never reading or writing outside [0, n). */
static inline void copy_bytes(int8_t *restrict dst, const int8_t *restrict src, size_t n) {
    if (n >= 16) {
        size_t j = 0;
        for (; j + 16 <= n; j += 16) memcpy(dst + j, src + j, 16);
        if (j < n) memcpy(dst + n - 16, src + n - 16, 16);
    } else if (n >= 8) {
        memcpy(dst, src, 8);
        memcpy(dst + n - 8, src + n - 8, 8);
    } else if (n >= 4) {
        memcpy(dst, src, 4);
        memcpy(dst + n - 4, src + n - 4, 4);
    } else {
        for (size_t j = 0; j < n; j++) dst[j] = src[j];
    }
}

/* Fills a padding segment with the zero point; short as the copies. */
static inline void fill_bytes(int8_t *dst, int8_t z, size_t n) {
    if (n >= 16) {
        int8_t v[16];
        memset(v, z, sizeof v);
        size_t j = 0;
        for (; j + 16 <= n; j += 16) memcpy(dst + j, v, 16);
        if (j < n) memcpy(dst + n - 16, v, 16);
    } else {
        for (size_t j = 0; j < n; j++) dst[j] = z;
    }
}

/* The K x np int8 patch matrix of pixels [p0, p0 + np), row k = tap * Cin +
 * ci, row stride nt; padding reads the zero point z. */
static void im2col(const crisp_conv2d_params *p, const int8_t *x, int8_t *buf, size_t p0,
                   size_t np, size_t nt, int8_t z, crisp_qs8_stride2_ukernel_fn stride2) {
    const size_t cin = p->input_channels, plane = p->input_height * p->input_width;
    const size_t sw = p->stride_width;
    crisp_tap_segment segs[3 * (CRISP_FAST_MAX_TILE_PIXELS + 1)];
    for (size_t ky = 0; ky < p->kernel_height; ky++)
        for (size_t kx = 0; kx < p->kernel_width; kx++) {
            const size_t count = crisp_fast_tap_segments(p, ky, kx, p0, np, segs);
            int8_t *rows = buf + (ky * p->kernel_width + kx) * cin * nt;
            for (size_t ci = 0; ci < cin; ci++) {
                int8_t *dst = rows + ci * nt;
                const int8_t *src = x + ci * plane;
                for (size_t i = 0; i < count; i++) {
                    const crisp_tap_segment *s = &segs[i];
                    if (s->src < 0) {
                        fill_bytes(dst + s->dst, z, s->len);
                    } else if (sw == 1) {
                        copy_bytes(dst + s->dst, src + s->src, s->len);
                    } else if (sw == 2) {
                        stride2(s->len, src + s->src, dst + s->dst);
                    } else {
                        const int8_t *from = src + s->src;
                        int8_t *to = dst + s->dst;
                        for (size_t j = 0; j < s->len; j++) to[j] = from[j * sw];
                    }
                }
            }
        }
}

/* Units [u0, u1) of a conv tile over n B columns, NR at a time: B row of
 * kept column e at b + column[e] * b_stride, the units' rows written from c
 * (the first unit's first row) c_stride apart. Dense 4-row panels go
 * panel-major (a panel's weights stay in L1 while it sweeps the tile),
 * sparse runs chunk-major as the float path (consecutive runs share a
 * block-row's kept columns while they are in L1). */
static void sweep(const crisp_qs8_kernels *k, const crisp_op *op, size_t u0, size_t u1,
                  size_t n, const uint32_t *column, const int8_t *b, size_t b_stride, int8_t *c,
                  size_t c_stride) {
    const crisp_qs8_requant *q = &op->k.qconv.q;
    const size_t nr = k->spmm_nr, cout = op->k.qconv.conv.output_channels;
    if (op->fast.path == CRISP_FAST_QS8_GEMM) {
        const size_t k4 = (op->fast.k + 3) / 4 * 4;
        for (size_t unit = u0; unit < u1; unit++) {
            const size_t row0 = 4 * unit, rows = min_size(4, cout - row0);
            crisp_qs8_requant qr = *q;
            qr.bias += row0, qr.multiplier += row0, qr.weight_sum += row0;
            for (size_t n0 = 0; n0 < n; n0 += nr)
                k->spmm(rows, min_size(nr, n - n0), op->fast.k, column,
                        op->packed.panel_qs8 + row0 * k4, b + n0, b_stride,
                        c + (row0 - 4 * u0) * c_stride + n0, c_stride, &qr);
        }
        return;
    }
    const crisp_sparse_weights *s = &op->packed.sparse;
    const size_t first = s->run_row[u0];
    for (size_t n0 = 0; n0 < n; n0 += nr)
        for (size_t unit = u0; unit < u1; unit++) {
            const size_t row0 = s->run_row[unit];
            const size_t e0 = s->segment_entry[s->run_segment[unit]];
            const size_t e1 = s->segment_entry[s->run_segment[unit + 1]];
            crisp_qs8_requant qr = *q;
            qr.bias += row0, qr.multiplier += row0, qr.weight_sum += row0;
            k->spmm(s->run_row[unit + 1] - row0, min_size(nr, n - n0), e1 - e0, column + e0,
                    s->weight_qs8 + s->run_weight[unit], b + n0, b_stride,
                    c + (row0 - first) * c_stride + n0, c_stride, &qr);
        }
}

/* The band of output rows [oy0, oy0 + rows) (src/conv_fast.c, "Bands"): per
 * input channel, rows + dh (kh - 1) input rows of band_width bytes, padded
 * with the zero point z. */
static void build_band(const crisp_conv2d_params *p, const crisp_fast_plan *f, const int8_t *x,
                       int8_t *band, size_t oy0, size_t rows, int8_t z) {
    const size_t ih = p->input_height, iw = p->input_width, width = f->band_width;
    const size_t brows = rows + p->dilation_height * (p->kernel_height - 1);
    const size_t pl = p->padding_left, plane = ih * iw;
    /* Band columns [lo, hi) hold image columns lo - pl ..; the rest is padding. */
    const size_t lo = min_size(pl, width), hi = min_size(width, pl + iw);
    for (size_t ci = 0; ci < p->input_channels; ci++) {
        int8_t *dst = band + ci * f->band_plane;
        for (size_t j = 0; j < brows; j++, dst += width) {
            const ptrdiff_t iy = (ptrdiff_t)(oy0 + j) - (ptrdiff_t)p->padding_top;
            if (iy < 0 || iy >= (ptrdiff_t)ih || lo >= hi) {
                fill_bytes(dst, z, width);
                continue;
            }
            fill_bytes(dst, z, lo);
            copy_bytes(dst + lo, x + ci * plane + (size_t)iy * iw + (lo - pl), hi - lo);
            fill_bytes(dst + hi, z, width - hi);
        }
    }
}

/* Runs [u0, u1) (or 4-row panels of a dense conv) over the tile of whole
 * output rows at pixel p0, from the band (built when `build`): NR wide
 * positions at a time, then the wide output rows copied into the output
 * plane without the positions past each row's end (src/conv_fast.c). */
static void band_tile(const crisp_qs8_kernels *k, const crisp_op *op, const int8_t *x,
                      int8_t *y, size_t p0, size_t np, size_t u0, size_t u1, int8_t *scratch,
                      int build) {
    const crisp_conv2d_params *p = &op->k.qconv.conv;
    const crisp_qs8_requant *q = &op->k.qconv.q;
    const crisp_fast_plan *f = &op->fast;
    const crisp_sparse_weights *s = &op->packed.sparse;
    const int dense = f->path == CRISP_FAST_QS8_GEMM;
    const size_t ow = p->output_width, pixels = p->output_height * ow, rows = np / ow;
    const size_t width = f->band_width, stride = f->band_out_stride;
    if (build) build_band(p, f, x, scratch, p0 / ow, rows, (int8_t)q->input_zero_point);
    int8_t *wide = scratch + crisp_fast_band_elements(p, f);
    const size_t first = dense ? 4 * u0 : s->run_row[u0];
    const size_t last = dense ? min_size(4 * u1, p->output_channels) : s->run_row[u1];
    sweep(k, op, u0, u1, (rows - 1) * width + ow, f->band_offset, scratch, 1, wide, stride);
    for (size_t r = first; r < last; r++)
        for (size_t oy = 0; oy < rows; oy++)
            copy_bytes(y + r * pixels + p0 + oy * ow, wide + (r - first) * stride + oy * width, ow);
}

void crisp_fast_run_qs8(const crisp_model *m, const crisp_op *op, const int8_t *x, int8_t *y,
                        size_t begin, size_t end, size_t tile_pixels, float *scratch,
                        size_t *held_tile) {
    const crisp_qs8_kernels *k = crisp_qs8_kernels_best();
    const crisp_fast_plan *f = &op->fast;
    const int linear = op->kind == CRISP_OP_LINEAR;
    const crisp_conv2d_params *p = &op->k.qconv.conv;
    const crisp_qs8_requant *q = linear ? &op->k.qlinear.q : &op->k.qconv.q;
    const size_t pixels = linear ? 1 : p->output_height * p->output_width;
    const size_t nt = tile_pixels;
    if (f->path == CRISP_FAST_QS8_DWCONV) {
        const size_t taps = p->kernel_height * p->kernel_width;
        const size_t plane = p->input_height * p->input_width;
        const int8_t *w = m->tensors[op->weight].q;
        if (f->channel_block > 0) {
            for (size_t unit = begin; unit < end; unit++) {
                const size_t c0 = unit * f->channel_block;
                const crisp_qs8_dwconv_hwc_block blk = {
                    x + c0 * plane, w + c0 * taps, y + c0 * pixels, scratch,
                    min_size(f->channel_block, p->output_channels - c0), p->input_height,
                    p->input_width, p->padding_top, p->padding_left, p->stride_width,
                    p->output_height, p->output_width};
                crisp_qs8_requant qr = *q;
                qr.bias += c0, qr.multiplier += c0, qr.weight_sum += c0;
                k->dwconv_hwc(&blk, &qr);
            }
            return;
        }
        if (f->direct) {
            uint32_t *masks = (uint32_t *)(void *)scratch;
            int8_t *edge = (int8_t *)(void *)(masks + crisp_qs8_dwconv_mask_entries(p->input_width));
            int8_t *copy = edge + crisp_qs8_dwconv_edge_bytes(p->stride_width, p->kernel_height,
                                                              p->dilation_height, p->input_width);
            crisp_qs8_dwconv_image im = {.quad_mask = masks,
                                         .edge = edge,
                                         .input_height = p->input_height,
                                         .input_width = p->input_width,
                                         .padding_top = p->padding_top,
                                         .padding_left = p->padding_left,
                                         .stride = p->stride_width,
                                         .dilation_height = p->dilation_height,
                                         .kernel_height = p->kernel_height,
                                         .kernel_width = p->kernel_width,
                                         .output_height = p->output_height,
                                         .output_width = p->output_width};
            crisp_qs8_dwconv_quad_masks(&im, masks);
            const int copies = dw_copies_plane(p);
            if (copies) { /* the margins stay z_x; each channel fills the middle */
                dw_margins(p, &im.zeros_before, &im.zeros_after);
                memset(copy, (int8_t)q->input_zero_point, im.zeros_before + plane + im.zeros_after);
            }
            for (size_t c = begin; c < end; c++) {
                im.x = x + c * plane;
                if (copies) {
                    memcpy(copy + im.zeros_before, im.x, plane);
                    im.x = copy + im.zeros_before;
                }
                k->dwconv_direct(&im, w + c * taps, q->bias[c], q->weight_sum[c], q->multiplier[c],
                                 y + c * pixels, q);
            }
            return;
        }
        for (size_t c = begin; c < end; c++) {
            const crisp_qs8_dwconv_plane pl =
                dw_phases(p, x + c * plane, q->input_zero_point, (int16_t *)(void *)scratch);
            k->dwconv(&pl, w + c * taps, q->bias[c], q->multiplier[c],
                      y + c * pixels, q);
        }
        return;
    }
    if (f->path == CRISP_FAST_QS8_GEMV) {
        const size_t mr = k->gemv_mr, rows = op->k.qlinear.output_features;
        const int8_t *w = op->packed.dense_qs8 != NULL ? op->packed.dense_qs8
                                                       : m->tensors[op->weight].q;
        for (size_t unit = begin; unit < end; unit++) {
            const size_t r0 = unit * mr;
            crisp_qs8_requant qr = *q;
            qr.bias += r0, qr.multiplier += r0, qr.weight_sum += r0;
            k->gemv(min_size(mr, rows - r0), f->k, w + r0 * f->k, f->k, x, y + r0, &qr);
        }
        return;
    }
    const crisp_sparse_weights *s = &op->packed.sparse;
    if (f->path == CRISP_FAST_QS8_SPMV) {
        /* One run per call (qs8_spmv): lanes along its weight stream, as a
         * one-pixel product leaves no pixels to put in them. x is copied once
         * per op and thread (the held tile 0: every chunk of the op reads the
         * same x) into scratch, which gives the kernels' gather its slack. */
        int8_t *xs = (int8_t *)(void *)scratch;
        if (*held_tile != 0) {
            memcpy(xs, x, f->k);
            memset(xs + f->k, 0, CRISP_QS8_SPMV_SLACK);
            *held_tile = 0;
        }
        for (size_t unit = begin; unit < end; unit++) {
            const size_t row0 = s->run_row[unit];
            const size_t e0 = s->segment_entry[s->run_segment[unit]];
            const size_t e1 = s->segment_entry[s->run_segment[unit + 1]];
            crisp_qs8_requant qr = *q;
            qr.bias += row0, qr.multiplier += row0, qr.weight_sum += row0;
            k->spmv(s->run_row[unit + 1] - row0, e1 - e0, s->entry_column + e0,
                    s->weight_qs8 + s->run_weight[unit], xs, y + row0, &qr);
        }
        return;
    }
    int8_t *tile = (int8_t *)(void *)scratch;
    for (size_t item = begin; item < end;) {
        /* The items of one tile: [item, stop). */
        const size_t t = item / f->units, u0 = item % f->units;
        const size_t stop = min_size(end, (t + 1) * f->units), u1 = u0 + (stop - item);
        const size_t p0 = t * nt, np = min_size(nt, pixels - p0);
        if (f->band_offset != NULL) {
            band_tile(k, op, x, y, p0, np, u0, u1, tile, *held_tile != t);
            *held_tile = t;
            item = stop;
            continue;
        }
        /* With several threads an op is cut into more chunks than it has tiles,
         * and a thread often runs several chunks of one tile: build it once. */
        if (!f->direct && *held_tile != t) {
            im2col(p, x, tile, p0, np, nt, (int8_t)q->input_zero_point, k->stride2);
            *held_tile = t;
        }
        const int8_t *b = f->direct ? x + p0 : tile;
        const size_t b_stride = f->direct ? pixels : nt;
        const int dense = f->path == CRISP_FAST_QS8_GEMM;
        const size_t first = dense ? 4 * u0 : s->run_row[u0];
        sweep(k, op, u0, u1, np, dense ? op->packed.panel_column : s->entry_column, b, b_stride,
              y + first * pixels + p0, pixels);
        item = stop;
    }
}
