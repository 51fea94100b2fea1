/* The activations that are no clamp (1.2), in torch's CPU formulas, and the
 * squeeze-excite product. Pure per-element functions, so a split into chunks
 * and an in-place pass (y == x) change no bit. Compiled with
 * -ffp-contract=off (runtime/CMakeLists.txt): the vectorised loop body and
 * its scalar tail then round alike, whatever the split; and with
 * -fno-trapping-math, without which GCC keeps the clamps and selects of
 * exp_approx as branches and vectorises nothing (it changes no result). */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "format.h"
#include "kernels/ref.h"
#include "kernels/ref/common.h"

/* e^z for silu and sigmoid, in straight-line float arithmetic the compiler
 * vectorises (libm's expf is a call per element: it made EfficientNet-B0
 * 1.6x slower than with relu). Cody-Waite reduction z = n ln2 + r, |r| <=
 * ln2/2, a degree-5 polynomial for e^r (XNNPACK's rr2-p5 coefficients, about
 * 2 ulp), 2^n built in the exponent bits (the 127 bias rides in the rounding
 * constant, so no float-to-int conversion). Below -87.3 it is 0 (libm gives
 * a denormal: 1 + e^z rounds to 1 either way), above 127.5 ln2 = 88.376 +inf
 * (the true value, at most FLT_MAX from there to 88.72, only moves silu and
 * sigmoid of x below -88.376 from about -4e-37 and 4e-39 to -0 and 0; up to
 * 88.72 round(z / ln2) is 128, whose 2^128 scale is inf, and r < 0 made
 * (r inf) p + inf a NaN: the fuzzer found silu(-88.5) = NaN), NaN stays NaN. */
static inline float exp_approx(float z) {
    const float lo = -87.33654f, hi = 88.37626f;
    const float zc = crisp_clampf(z, lo, hi);
    float n = zc * 0x1.715476p+0f + 0x1.8000FEp23f; /* round(z / ln2) + 127, in the low bits */
    uint32_t bits;
    memcpy(&bits, &n, sizeof bits);
    bits <<= 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale); /* 2^round(z / ln2) */
    n -= 0x1.8000FEp23f;
    float r = zc - n * 0x1.62E400p-1f; /* ln2's high part: n * it is exact */
    r = r - n * 0x1.7F7D1Cp-20f;
    float p = 0x1.0F9F9Cp-7f;
    p = p * r + 0x1.573A1Ap-5f;
    p = p * r + 0x1.555A80p-3f;
    p = p * r + 0x1.FFFDC6p-2f;
    p = p * r + 0x1.FFFFF6p-1f;
    float e = (r * scale) * p + scale;
    e = z > hi ? INFINITY : e;
    e = z < lo ? 0.0f : e;
    return e;
}

void crisp_f32_activation__ref(size_t n, const float *x, float *y, uint32_t activation) {
    switch (activation) {
    case CRISP_ACT_SILU: /* x / (1 + e^-x): e^-x is inf for x < -88.7, giving -0 */
        for (size_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + exp_approx(-x[i]));
        break;
    case CRISP_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + exp_approx(-x[i]));
        break;
    case CRISP_ACT_HARDSWISH: /* x · min(max(x + 3, 0), 6) / 6 */
        for (size_t i = 0; i < n; i++) y[i] = x[i] * crisp_clampf(x[i] + 3.0f, 0.0f, 6.0f) / 6.0f;
        break;
    case CRISP_ACT_HARDSIGMOID: /* min(max(x + 3, 0), 6) / 6 */
        for (size_t i = 0; i < n; i++) y[i] = crisp_clampf(x[i] + 3.0f, 0.0f, 6.0f) / 6.0f;
        break;
    default:
        for (size_t i = 0; i < n && y != x; i++) y[i] = x[i];
        break;
    }
}

void crisp_f32_mul_channels__ref(const crisp_channels_params *p, const float *x, const float *s,
                                 float *y, size_t begin, size_t end) {
    for (size_t i = begin; i < end; i++) y[i] = x[i] * s[i / p->plane];
}
