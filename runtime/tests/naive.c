#include "naive.h"

#include <math.h>

int naive_conv_out(int in, int k, int stride, int pad_sum, int dil) {
    return (in + pad_sum - dil * (k - 1) - 1) / stride + 1;
}

int naive_pool_out(int in, int k, int stride, int pad, int dil, int ceil_mode) {
    double span = (double)(in + 2 * pad - dil * (k - 1) - 1) / stride;
    int out = (int)(ceil_mode ? ceil(span) : floor(span)) + 1;
    /* torch: the last window must start inside the image or the left padding. */
    if (ceil_mode && (out - 1) * stride >= in + pad) out--;
    return out;
}

float naive_act(double v, int act) {
    /* torch.nn.SiLU, Sigmoid, Hardswish, Hardsigmoid, by their definitions. */
    const double hard = v + 3 < 0 ? 0 : v + 3 > 6 ? 6 : v + 3;
    switch (act) {
    case 3: return (float)(v / (1 + exp(-v)));
    case 4: return (float)(1 / (1 + exp(-v)));
    case 5: return (float)(v * hard / 6);
    case 6: return (float)(hard / 6);
    default: break;
    }
    if (act >= 1 && v < 0) v = 0;
    if (act == 2 && v > 6) v = 6;
    return (float)v;
}

void naive_mul_channels(int c, int plane, const float *x, const float *s, float *y) {
    for (int k = 0; k < c; k++)
        for (int i = 0; i < plane; i++) y[k * plane + i] = (float)((double)x[k * plane + i] * s[k]);
}

void naive_conv2d(const naive_conv *p, const float *x, const float *w, const float *b, float *y) {
    const int oh = naive_conv_out(p->h, p->kh, p->sh, p->pt + p->pb, p->dh);
    const int ow = naive_conv_out(p->w, p->kw, p->sw, p->pl + p->pr, p->dw);
    const int cin_g = p->cin / p->groups, cout_g = p->cout / p->groups;
    for (int o = 0; o < p->cout; o++)
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++) {
                double acc = b ? b[o] : 0.0;
                const int g = o / cout_g;
                for (int ky = 0; ky < p->kh; ky++)
                    for (int kx = 0; kx < p->kw; kx++)
                        for (int c = 0; c < cin_g; c++) {
                            const int yy = i * p->sh - p->pt + ky * p->dh;
                            const int xx = j * p->sw - p->pl + kx * p->dw;
                            if (yy < 0 || yy >= p->h || xx < 0 || xx >= p->w) continue;
                            const double wv = w[((o * p->kh + ky) * p->kw + kx) * cin_g + c];
                            acc += wv * x[((g * cin_g + c) * p->h + yy) * p->w + xx];
                        }
                y[(o * oh + i) * ow + j] = naive_act(acc, p->act);
            }
}

void naive_linear(int cin, int cout, int act, const float *x, const float *w, const float *b,
                  float *y) {
    for (int o = 0; o < cout; o++) {
        double acc = b ? b[o] : 0.0;
        for (int i = 0; i < cin; i++) acc += (double)w[o * cin + i] * x[i];
        y[o] = naive_act(acc, act);
    }
}

void naive_maxpool2d(const naive_pool *p, const float *x, float *y) {
    const int oh = naive_pool_out(p->h, p->kh, p->sh, p->ph, p->dh, p->ceil_mode);
    const int ow = naive_pool_out(p->w, p->kw, p->sw, p->pw, p->dw, p->ceil_mode);
    for (int c = 0; c < p->c; c++)
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++) {
                float m = -INFINITY; /* padding is -inf */
                for (int ky = 0; ky < p->kh; ky++)
                    for (int kx = 0; kx < p->kw; kx++) {
                        const int yy = i * p->sh - p->ph + ky * p->dh;
                        const int xx = j * p->sw - p->pw + kx * p->dw;
                        const float v = (yy < 0 || yy >= p->h || xx < 0 || xx >= p->w)
                                            ? -INFINITY
                                            : x[(c * p->h + yy) * p->w + xx];
                        m = fmaxf(m, v);
                    }
                *y++ = m;
            }
}

void naive_avgpool2d(const naive_pool *p, const float *x, float *y) {
    const int oh = naive_pool_out(p->h, p->kh, p->sh, p->ph, 1, p->ceil_mode);
    const int ow = naive_pool_out(p->w, p->kw, p->sw, p->pw, 1, p->ceil_mode);
    for (int c = 0; c < p->c; c++)
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++) {
                double sum = 0;
                int in_image = 0, in_padded = 0;
                /* Walk every tap; classify it as image, padding, or past the
                 * padding (only ceil_mode windows reach there). */
                for (int ky = 0; ky < p->kh; ky++)
                    for (int kx = 0; kx < p->kw; kx++) {
                        const int yy = i * p->sh - p->ph + ky;
                        const int xx = j * p->sw - p->pw + kx;
                        if (yy < p->h + p->ph && xx < p->w + p->pw) in_padded++;
                        if (yy < 0 || yy >= p->h || xx < 0 || xx >= p->w) continue;
                        in_image++;
                        sum += x[(c * p->h + yy) * p->w + xx];
                    }
                const int divisor = p->divisor_override ? p->divisor_override
                                    : p->count_include_pad ? in_padded
                                                           : in_image;
                *y++ = in_image ? (float)(sum / divisor) : 0.0f;
            }
}

void naive_adaptive_avgpool2d(int c, int h, int w, int oh, int ow, const float *x, float *y) {
    for (int k = 0; k < c; k++)
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++) {
                const int y0 = (int)floor((double)i * h / oh);
                const int y1 = (int)ceil((double)(i + 1) * h / oh);
                const int x0 = (int)floor((double)j * w / ow);
                const int x1 = (int)ceil((double)(j + 1) * w / ow);
                double sum = 0;
                for (int yy = y0; yy < y1; yy++)
                    for (int xx = x0; xx < x1; xx++) sum += x[(k * h + yy) * w + xx];
                *y++ = (float)(sum / ((y1 - y0) * (x1 - x0)));
            }
}

void naive_softmax(int outer, int len, int inner, const float *x, float *y) {
    for (int o = 0; o < outer; o++)
        for (int i = 0; i < inner; i++) {
            double m = -INFINITY, sum = 0;
            /* A plain compare: aarch64 gcc 12.2 -O3 hits an internal compiler
             * error vectorising a fmax reduction here. */
            for (int a = 0; a < len; a++)
                if (x[(o * len + a) * inner + i] > m) m = x[(o * len + a) * inner + i];
            for (int a = 0; a < len; a++) sum += exp(x[(o * len + a) * inner + i] - m);
            for (int a = 0; a < len; a++)
                y[(o * len + a) * inner + i] = (float)(exp(x[(o * len + a) * inner + i] - m) / sum);
        }
}
