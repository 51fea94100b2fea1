#include "naive_qs8.h"

#include <math.h>

static int8_t clamp_q(float v, int32_t lo, int32_t hi) {
    if (!(v > (float)lo)) return (int8_t)lo;
    if (v > (float)hi) return (int8_t)hi;
    return (int8_t)(int32_t)v;
}

int8_t naive_quantize(float x, naive_q q) {
    return clamp_q((float)q.zero_point + nearbyintf(x / q.scale), -128, 127);
}

float naive_dequantize(int8_t v, naive_q q) { return q.scale * (float)(v - q.zero_point); }

void naive_qs8_range(int act, naive_q y, int32_t *lo, int32_t *hi) {
    *lo = act ? (y.zero_point > -128 ? y.zero_point : -128) : -128;
    *hi = 127;
    if (act == 2) {
        const double top = y.zero_point + nearbyint(6.0 / y.scale);
        if (top < 127) *hi = (int32_t)top;
    }
}

void naive_qs8_channel(naive_q x, naive_q y, const float *bias, const float *w_scales, int cout,
                       int32_t *bias_q, float *multiplier) {
    for (int c = 0; c < cout; c++) {
        const double sxw = (double)x.scale * w_scales[c];
        bias_q[c] = bias ? (int32_t)nearbyint(bias[c] / sxw) : 0;
        multiplier[c] = (float)(sxw / y.scale);
    }
}

static int8_t requant(int64_t acc, float m, naive_q y, int32_t lo, int32_t hi) {
    return clamp_q((float)y.zero_point + nearbyintf((float)acc * m), lo, hi);
}

void naive_qs8_conv2d(const naive_conv *p, naive_q xq, naive_q yq, const int8_t *x,
                      const int8_t *w, const int32_t *bias_q, const float *multiplier, int8_t *y) {
    const int oh = naive_conv_out(p->h, p->kh, p->sh, p->pt + p->pb, p->dh);
    const int ow = naive_conv_out(p->w, p->kw, p->sw, p->pl + p->pr, p->dw);
    const int cin_g = p->cin / p->groups, cout_g = p->cout / p->groups;
    int32_t lo, hi;
    naive_qs8_range(p->act, yq, &lo, &hi);
    for (int o = 0; o < p->cout; o++)
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++) {
                int64_t acc = bias_q[o];
                const int g = o / cout_g;
                for (int ky = 0; ky < p->kh; ky++)
                    for (int kx = 0; kx < p->kw; kx++)
                        for (int c = 0; c < cin_g; c++) {
                            const int yy = i * p->sh - p->pt + ky * p->dh;
                            const int xx = j * p->sw - p->pl + kx * p->dw;
                            const int inside = yy >= 0 && yy < p->h && xx >= 0 && xx < p->w;
                            const int32_t qx =
                                inside ? x[((g * cin_g + c) * p->h + yy) * p->w + xx] : xq.zero_point;
                            acc += (int64_t)(qx - xq.zero_point) *
                                   w[((o * p->kh + ky) * p->kw + kx) * cin_g + c];
                        }
                y[(o * oh + i) * ow + j] = requant(acc, multiplier[o], yq, lo, hi);
            }
}

void naive_qs8_linear(int cin, int cout, int act, naive_q xq, naive_q yq, const int8_t *x,
                      const int8_t *w, const int32_t *bias_q, const float *multiplier, int8_t *y) {
    int32_t lo, hi;
    naive_qs8_range(act, yq, &lo, &hi);
    for (int o = 0; o < cout; o++) {
        int64_t acc = bias_q[o];
        for (int i = 0; i < cin; i++) acc += (int64_t)(x[i] - xq.zero_point) * w[o * cin + i];
        y[o] = requant(acc, multiplier[o], yq, lo, hi);
    }
}

void naive_qs8_add(int n, int act, naive_q aq, naive_q bq, naive_q yq, const int8_t *a,
                   const int8_t *b, int8_t *y) {
    int32_t lo, hi;
    naive_qs8_range(act, yq, &lo, &hi);
    for (int i = 0; i < n; i++) {
        const float ra = aq.scale * (float)(a[i] - aq.zero_point);
        const float rb = bq.scale * (float)(b[i] - bq.zero_point);
        y[i] = clamp_q((float)yq.zero_point + nearbyintf((ra + rb) / yq.scale), lo, hi);
    }
}

static int8_t average(int64_t sum, int count, int divisor, naive_q xq, naive_q yq) {
    const float centred = (float)(sum - (int64_t)count * xq.zero_point);
    return clamp_q((float)yq.zero_point + nearbyintf(centred * xq.scale / ((float)divisor * yq.scale)),
                   -128, 127);
}

void naive_qs8_pool(int kind, const naive_pool *p, naive_q xq, naive_q yq, const int8_t *x,
                    int8_t *y) {
    if (kind == 2 || kind == 3) {
        const int oh = kind == 3 ? 1 : p->kh, ow = kind == 3 ? 1 : p->kw;
        for (int c = 0; c < p->c; c++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++) {
                    const int y0 = i * p->h / oh, y1 = ((i + 1) * p->h + oh - 1) / oh;
                    const int x0 = j * p->w / ow, x1 = ((j + 1) * p->w + ow - 1) / ow;
                    int64_t sum = 0;
                    for (int yy = y0; yy < y1; yy++)
                        for (int xx = x0; xx < x1; xx++) sum += x[(c * p->h + yy) * p->w + xx];
                    const int count = (y1 - y0) * (x1 - x0);
                    *y++ = average(sum, count, count, xq, yq);
                }
        return;
    }
    const int oh = naive_pool_out(p->h, p->kh, p->sh, p->ph, kind ? 1 : p->dh, p->ceil_mode);
    const int ow = naive_pool_out(p->w, p->kw, p->sw, p->pw, kind ? 1 : p->dw, p->ceil_mode);
    for (int c = 0; c < p->c; c++)
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++) {
                int m = -128, in_image = 0, in_padded = 0;
                int64_t sum = 0;
                for (int ky = 0; ky < p->kh; ky++)
                    for (int kx = 0; kx < p->kw; kx++) {
                        const int yy = i * p->sh - p->ph + ky * (kind ? 1 : p->dh);
                        const int xx = j * p->sw - p->pw + kx * (kind ? 1 : p->dw);
                        if (yy < p->h + p->ph && xx < p->w + p->pw) in_padded++;
                        if (yy < 0 || yy >= p->h || xx < 0 || xx >= p->w) continue;
                        const int v = x[(c * p->h + yy) * p->w + xx];
                        in_image++;
                        sum += v;
                        if (v > m) m = v;
                    }
                if (kind == 0) {
                    *y++ = (int8_t)m;
                } else if (in_image == 0) {
                    *y++ = (int8_t)yq.zero_point;
                } else {
                    const int divisor = p->divisor_override ? p->divisor_override
                                        : p->count_include_pad ? in_padded
                                                               : in_image;
                    *y++ = average(sum, in_image, divisor, xq, yq);
                }
            }
}
