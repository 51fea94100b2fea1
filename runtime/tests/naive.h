/* Test-only naive references, written from the torch definitions and
 * independent of src/kernels: textbook loops in double precision. */
#ifndef CRISP_TEST_NAIVE_H
#define CRISP_TEST_NAIVE_H

typedef struct naive_conv {
    int cin, h, w, cout, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw, groups;
    int act; /* enum crisp_activation: 0 none, 1 relu, 2 relu6, 3 silu, 4 sigmoid, 5 hardswish,
                6 hardsigmoid */
} naive_conv;

typedef struct naive_pool {
    int c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, ceil_mode;
    int count_include_pad, divisor_override; /* avg only */
} naive_pool;

int naive_conv_out(int in, int k, int stride, int pad_sum, int dil);
/* torch.nn.MaxPool2d / AvgPool2d output length. */
int naive_pool_out(int in, int k, int stride, int pad, int dil, int ceil_mode);

float naive_act(double v, int act);
/* y = x * s[c] over c planes of plane elements (squeeze-excite). */
void naive_mul_channels(int c, int plane, const float *x, const float *s, float *y);
/* weight in OHWI, bias may be NULL; y is (cout, oh, ow). */
void naive_conv2d(const naive_conv *p, const float *x, const float *w, const float *b, float *y);
void naive_linear(int cin, int cout, int act, const float *x, const float *w, const float *b,
                  float *y);
void naive_maxpool2d(const naive_pool *p, const float *x, float *y);
void naive_avgpool2d(const naive_pool *p, const float *x, float *y);
void naive_adaptive_avgpool2d(int c, int h, int w, int oh, int ow, const float *x, float *y);
void naive_softmax(int outer, int len, int inner, const float *x, float *y);

#endif
