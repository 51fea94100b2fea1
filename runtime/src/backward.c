/* Forward and backward of the last stage's ops for bias tuning (contracts in
 * backward.h). The convolution goes through an im2col matrix (input channels x
 * taps rows, output pixels columns): forward, each kept weight adds its scaled
 * im2col row into its output channel's row; backward, each kept weight adds
 * its scaled output-gradient row into its im2col row, which col2im then
 * scatters back onto the input (the transposed convolution). Rows are whole
 * output maps (16 pixels for a 4x4 stage), so the inner loops are contiguous. */
#include "backward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/common.h"
#include "status.h"

crisp_status crisp_bw_conv_init(crisp_bw_conv *c, const crisp_conv2d_params *p,
                                const float *w) {
    memset(c, 0, sizeof *c);
    c->p = *p;
    const size_t kh = p->kernel_height, kw = p->kernel_width, cout = p->output_channels;
    const size_t cin_g = p->input_channels / p->groups, cout_g = cout / p->groups;
    const size_t per_oc = kh * kw * cin_g;
    c->col_rows = p->input_channels * kh * kw;
    c->pixels = p->output_height * p->output_width;
    size_t kept = 0;
    for (size_t i = 0; i < cout * per_oc; i++) kept += w[i] != 0.0f;
    c->row_start = malloc((cout + 1) * sizeof *c->row_start);
    c->entry_row = malloc((kept ? kept : 1) * sizeof *c->entry_row);
    c->entry_w = malloc((kept ? kept : 1) * sizeof *c->entry_w);
    if (c->row_start == NULL || c->entry_row == NULL || c->entry_w == NULL) {
        crisp_bw_conv_free(c);
        return crisp_error(CRISP_ERR_NOMEM, "bias tuning: out of memory for %zu conv weights",
                           kept);
    }
    size_t e = 0;
    for (size_t oc = 0; oc < cout; oc++) {
        c->row_start[oc] = (uint32_t)e;
        const size_t g = oc / cout_g;
        for (size_t ky = 0; ky < kh; ky++)
            for (size_t kx = 0; kx < kw; kx++)
                for (size_t ic = 0; ic < cin_g; ic++) {
                    const float v = w[oc * per_oc + (ky * kw + kx) * cin_g + ic];
                    if (v == 0.0f) continue;
                    c->entry_row[e] = (uint32_t)(((g * cin_g + ic) * kh + ky) * kw + kx);
                    c->entry_w[e++] = v;
                }
    }
    c->row_start[cout] = (uint32_t)e;
    return CRISP_OK;
}

void crisp_bw_conv_free(crisp_bw_conv *c) {
    free(c->row_start), free(c->entry_row), free(c->entry_w);
    c->row_start = c->entry_row = NULL;
    c->entry_w = NULL;
}

size_t crisp_bw_conv_scratch(const crisp_bw_conv *c) { return c->col_rows * c->pixels; }

/* For im2col row (ci, ky, kx) and output row oy: the input row, or -1 (padding). */
static ptrdiff_t in_row(const crisp_conv2d_params *p, size_t oy, size_t ky) {
    return crisp_conv_input_row(oy, ky, p->stride_height, p->padding_top, p->dilation_height,
                                p->input_height);
}
static ptrdiff_t in_col(const crisp_conv2d_params *p, size_t ox, size_t kx) {
    const ptrdiff_t ix = (ptrdiff_t)(ox * p->stride_width) - (ptrdiff_t)p->padding_left +
                         (ptrdiff_t)(kx * p->dilation_width);
    return ix < 0 || ix >= (ptrdiff_t)p->input_width ? -1 : ix;
}

static void im2col(const crisp_conv2d_params *p, const float *x, float *col) {
    const size_t kh = p->kernel_height, kw = p->kernel_width;
    const size_t ih = p->input_height, iw = p->input_width;
    const size_t oh = p->output_height, ow = p->output_width;
    for (size_t ci = 0; ci < p->input_channels; ci++)
        for (size_t ky = 0; ky < kh; ky++)
            for (size_t kx = 0; kx < kw; kx++) {
                float *row = col + ((ci * kh + ky) * kw + kx) * oh * ow;
                for (size_t oy = 0; oy < oh; oy++) {
                    const ptrdiff_t iy = in_row(p, oy, ky);
                    for (size_t ox = 0; ox < ow; ox++) {
                        const ptrdiff_t ix = iy < 0 ? -1 : in_col(p, ox, kx);
                        row[oy * ow + ox] = ix < 0 ? 0.0f : x[(ci * ih + (size_t)iy) * iw + (size_t)ix];
                    }
                }
            }
}

static void col2im_add(const crisp_conv2d_params *p, const float *col, float *dx) {
    const size_t kh = p->kernel_height, kw = p->kernel_width;
    const size_t ih = p->input_height, iw = p->input_width;
    const size_t oh = p->output_height, ow = p->output_width;
    for (size_t ci = 0; ci < p->input_channels; ci++)
        for (size_t ky = 0; ky < kh; ky++)
            for (size_t kx = 0; kx < kw; kx++) {
                const float *row = col + ((ci * kh + ky) * kw + kx) * oh * ow;
                for (size_t oy = 0; oy < oh; oy++) {
                    const ptrdiff_t iy = in_row(p, oy, ky);
                    if (iy < 0) continue;
                    for (size_t ox = 0; ox < ow; ox++) {
                        const ptrdiff_t ix = in_col(p, ox, kx);
                        if (ix >= 0) dx[(ci * ih + (size_t)iy) * iw + (size_t)ix] += row[oy * ow + ox];
                    }
                }
            }
}

/* Output pixels per accumulator chunk: a 4x4 stage's whole map, kept in registers. */
#define CHUNK 16

void crisp_bw_conv_forward(const crisp_bw_conv *c, const float *x, const float *bias, float *y,
                           float *col) {
    const size_t P = c->pixels;
    im2col(&c->p, x, col);
    for (size_t oc = 0; oc < c->p.output_channels; oc++) {
        float *restrict out = y + oc * P;
        const float b = bias != NULL ? bias[oc] : 0.0f;
        const uint32_t e0 = c->row_start[oc], e1 = c->row_start[oc + 1];
        for (size_t p0 = 0; p0 < P; p0 += CHUNK) {
            float acc[CHUNK];
            for (size_t k = 0; k < CHUNK; k++) acc[k] = b;
            if (P - p0 >= CHUNK) {
                for (uint32_t e = e0; e < e1; e++) {
                    const float w = c->entry_w[e];
                    const float *restrict in = col + (size_t)c->entry_row[e] * P + p0;
                    for (size_t k = 0; k < CHUNK; k++) acc[k] += w * in[k];
                }
            } else {
                for (uint32_t e = e0; e < e1; e++) {
                    const float w = c->entry_w[e];
                    const float *restrict in = col + (size_t)c->entry_row[e] * P + p0;
                    for (size_t k = 0; k < P - p0; k++) acc[k] += w * in[k];
                }
            }
            for (size_t k = 0; k < CHUNK && p0 + k < P; k++)
                out[p0 + k] = crisp_clampf(acc[k], c->p.minmax.output_min, c->p.minmax.output_max);
        }
    }
}

void crisp_bw_conv_backward(const crisp_bw_conv *c, const float *y, float *dy, double *dbias,
                            float *dx, float *col) {
    const size_t P = c->pixels, cout = c->p.output_channels;
    crisp_bw_clamp_mask(cout * P, y, dy, c->p.minmax);
    if (dbias != NULL)
        for (size_t oc = 0; oc < cout; oc++) {
            double s = 0;
            for (size_t k = 0; k < P; k++) s += dy[oc * P + k];
            dbias[oc] += s;
        }
    if (dx == NULL) return;
    memset(col, 0, c->col_rows * P * sizeof *col);
    for (size_t oc = 0; oc < cout; oc++) {
        const float *restrict g = dy + oc * P;
        for (uint32_t e = c->row_start[oc]; e < c->row_start[oc + 1]; e++) {
            const float w = c->entry_w[e];
            float *restrict out = col + (size_t)c->entry_row[e] * P;
            for (size_t k = 0; k < P; k++) out[k] += w * g[k];
        }
    }
    col2im_add(&c->p, col, dx);
}

void crisp_bw_clamp_mask(size_t n, const float *y, float *dy, crisp_minmax_params mm) {
    const float lo = mm.output_min, hi = mm.output_max;
    if (isinf(lo) && lo < 0 && isinf(hi) && hi > 0) return; /* no activation */
    for (size_t i = 0; i < n; i++)
        if (!(y[i] > lo && y[i] < hi)) dy[i] = 0.0f;
}

void crisp_bw_add_forward(size_t n, const float *a, const float *b, float *y,
                          crisp_minmax_params mm) {
    for (size_t i = 0; i < n; i++) y[i] = crisp_clampf(a[i] + b[i], mm.output_min, mm.output_max);
}

void crisp_bw_clamp_forward(size_t n, const float *x, float *y, crisp_minmax_params mm) {
    for (size_t i = 0; i < n; i++) y[i] = crisp_clampf(x[i], mm.output_min, mm.output_max);
}

void crisp_bw_global_avgpool_forward(size_t channels, size_t pixels, const float *x, float *y) {
    for (size_t c = 0; c < channels; c++) {
        float s = 0.0f;
        for (size_t i = 0; i < pixels; i++) s += x[c * pixels + i];
        y[c] = s / (float)pixels;
    }
}

void crisp_bw_global_avgpool_backward(size_t channels, size_t pixels, const float *dy,
                                      float *dx) {
    for (size_t c = 0; c < channels; c++) {
        const float g = dy[c] / (float)pixels;
        for (size_t i = 0; i < pixels; i++) dx[c * pixels + i] += g;
    }
}

/* torch's adaptive bins: [floor(i*in/out), ceil((i+1)*in/out)). */
static void bin(size_t i, size_t in, size_t out, size_t *b, size_t *e) {
    *b = i * in / out;
    *e = ((i + 1) * in + out - 1) / out;
}

void crisp_bw_adaptive_avgpool_forward(const crisp_pool2d_params *p, const float *x, float *y) {
    const size_t ih = p->input_height, iw = p->input_width;
    for (size_t c = 0; c < p->channels; c++)
        for (size_t oy = 0; oy < p->output_height; oy++)
            for (size_t ox = 0; ox < p->output_width; ox++) {
                size_t y0, y1, x0, x1;
                bin(oy, ih, p->output_height, &y0, &y1);
                bin(ox, iw, p->output_width, &x0, &x1);
                float s = 0.0f;
                for (size_t yy = y0; yy < y1; yy++)
                    for (size_t xx = x0; xx < x1; xx++) s += x[(c * ih + yy) * iw + xx];
                *y++ = s / (float)((y1 - y0) * (x1 - x0));
            }
}

void crisp_bw_adaptive_avgpool_backward(const crisp_pool2d_params *p, const float *dy,
                                        float *dx) {
    const size_t ih = p->input_height, iw = p->input_width;
    for (size_t c = 0; c < p->channels; c++)
        for (size_t oy = 0; oy < p->output_height; oy++)
            for (size_t ox = 0; ox < p->output_width; ox++) {
                size_t y0, y1, x0, x1;
                bin(oy, ih, p->output_height, &y0, &y1);
                bin(ox, iw, p->output_width, &x0, &x1);
                const float g = *dy++ / (float)((y1 - y0) * (x1 - x0));
                for (size_t yy = y0; yy < y1; yy++)
                    for (size_t xx = x0; xx < x1; xx++) dx[(c * ih + yy) * iw + xx] += g;
            }
}

void crisp_bw_avgpool_forward(const crisp_pool2d_params *p, const float *x, float *y) {
    const ptrdiff_t iw = (ptrdiff_t)p->input_width;
    for (size_t c = 0; c < p->channels; c++) {
        const float *plane = x + c * p->input_height * p->input_width;
        for (size_t oy = 0; oy < p->output_height; oy++)
            for (size_t ox = 0; ox < p->output_width; ox++) {
                const crisp_avgpool_window w = crisp_avgpool_window_at(p, oy, ox);
                float s = 0.0f;
                for (ptrdiff_t yy = w.y0; yy < w.y1; yy++)
                    for (ptrdiff_t xx = w.x0; xx < w.x1; xx++) s += plane[yy * iw + xx];
                *y++ = w.y0 >= w.y1 || w.x0 >= w.x1 ? 0.0f : s / (float)w.divisor;
            }
    }
}

void crisp_bw_avgpool_backward(const crisp_pool2d_params *p, const float *dy, float *dx) {
    const ptrdiff_t iw = (ptrdiff_t)p->input_width;
    for (size_t c = 0; c < p->channels; c++) {
        float *plane = dx + c * p->input_height * p->input_width;
        for (size_t oy = 0; oy < p->output_height; oy++)
            for (size_t ox = 0; ox < p->output_width; ox++) {
                const crisp_avgpool_window w = crisp_avgpool_window_at(p, oy, ox);
                const float g = *dy++;
                if (w.y0 >= w.y1 || w.x0 >= w.x1) continue;
                const float share = g / (float)w.divisor;
                for (ptrdiff_t yy = w.y0; yy < w.y1; yy++)
                    for (ptrdiff_t xx = w.x0; xx < w.x1; xx++) plane[yy * iw + xx] += share;
            }
    }
}

/* Index in the plane of the first maximum of window (oy, ox), or -1 (all padding). */
static ptrdiff_t max_at(const crisp_pool2d_params *p, const float *plane, size_t oy, size_t ox,
                        float *value) {
    const ptrdiff_t ih = (ptrdiff_t)p->input_height, iw = (ptrdiff_t)p->input_width;
    const ptrdiff_t y0 = (ptrdiff_t)(oy * p->stride_height) - (ptrdiff_t)p->padding_height;
    const ptrdiff_t x0 = (ptrdiff_t)(ox * p->stride_width) - (ptrdiff_t)p->padding_width;
    float m = -INFINITY;
    ptrdiff_t at = -1;
    for (size_t ky = 0; ky < p->kernel_height; ky++) {
        const ptrdiff_t yy = y0 + (ptrdiff_t)(ky * p->dilation_height);
        if (yy < 0 || yy >= ih) continue;
        for (size_t kx = 0; kx < p->kernel_width; kx++) {
            const ptrdiff_t xx = x0 + (ptrdiff_t)(kx * p->dilation_width);
            if (xx < 0 || xx >= iw) continue;
            const float v = plane[yy * iw + xx];
            if (at < 0 || v > m || (isnan(v) && !isnan(m))) m = v, at = yy * iw + xx;
        }
    }
    *value = m;
    return at;
}

void crisp_bw_maxpool_forward(const crisp_pool2d_params *p, const float *x, float *y) {
    for (size_t c = 0; c < p->channels; c++) {
        const float *plane = x + c * p->input_height * p->input_width;
        for (size_t oy = 0; oy < p->output_height; oy++)
            for (size_t ox = 0; ox < p->output_width; ox++) {
                float v;
                max_at(p, plane, oy, ox, &v);
                *y++ = v;
            }
    }
}

void crisp_bw_maxpool_backward(const crisp_pool2d_params *p, const float *x, const float *dy,
                               float *dx) {
    const size_t plane_n = p->input_height * p->input_width;
    for (size_t c = 0; c < p->channels; c++)
        for (size_t oy = 0; oy < p->output_height; oy++)
            for (size_t ox = 0; ox < p->output_width; ox++) {
                float v;
                const ptrdiff_t at = max_at(p, x + c * plane_n, oy, ox, &v);
                const float g = *dy++;
                if (at >= 0) dx[c * plane_n + (size_t)at] += g;
            }
}
