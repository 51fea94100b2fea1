/* Test-only int8 references written from docs/format.md "Int8 semantics",
 * independent of src/: plain loops, int64 accumulation, padding read
 * literally as the zero point. */
#ifndef CRISP_TEST_NAIVE_QS8_H
#define CRISP_TEST_NAIVE_QS8_H

#include <stdint.h>

#include "naive.h"

typedef struct naive_q {
    float scale;
    int32_t zero_point;
} naive_q;

int8_t naive_quantize(float x, naive_q q);
float naive_dequantize(int8_t v, naive_q q);
/* (lo, hi) for a fused activation act (0 none, 1 relu, 2 relu6) on output y. */
void naive_qs8_range(int act, naive_q y, int32_t *lo, int32_t *hi);
/* bias_q[c] and multiplier[c] from the float bias (may be NULL) and weight scales. */
void naive_qs8_channel(naive_q x, naive_q y, const float *bias, const float *w_scales, int cout,
                       int32_t *bias_q, float *multiplier);
/* w is q in OHWI; bias_q / multiplier per output channel; y is (cout, oh, ow). */
void naive_qs8_conv2d(const naive_conv *p, naive_q xq, naive_q yq, const int8_t *x,
                      const int8_t *w, const int32_t *bias_q, const float *multiplier, int8_t *y);
void naive_qs8_linear(int cin, int cout, int act, naive_q xq, naive_q yq, const int8_t *x,
                      const int8_t *w, const int32_t *bias_q, const float *multiplier, int8_t *y);
void naive_qs8_add(int n, int act, naive_q aq, naive_q bq, naive_q yq, const int8_t *a,
                   const int8_t *b, int8_t *y);
/* kind 0 max, 1 avg, 2 adaptive (p->kh/kw = oh/ow), 3 global. */
void naive_qs8_pool(int kind, const naive_pool *p, naive_q xq, naive_q yq, const int8_t *x,
                    int8_t *y);

#endif
