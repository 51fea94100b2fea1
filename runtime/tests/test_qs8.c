/* int8 reference kernels against naive_qs8.c, exactly (the formulas are the
 * spec): dense conv (groups, depthwise, stride 2, dilation, padding reading
 * a non-zero zero point, relu/relu6), linear, add, relu/relu6, pools,
 * quantize/dequantize; plus hand-computed cases. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernels/ref.h"
#include "naive_qs8.h"

CHECK_DEFINE_COUNTERS;

static int8_t *random_q(unsigned *rng, size_t n, int lo) {
    int8_t *p = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++) p[i] = (int8_t)check_rand_int(rng, lo, 127);
    return p;
}

static naive_q random_scale(unsigned *rng, float base) {
    return (naive_q){base * (0.5f + (float)(check_rand(rng) % 1000) / 1000.0f),
                     check_rand_int(rng, -40, 40)};
}

static crisp_qs8_requant requant(int act, naive_q xq, naive_q yq, const int32_t *b, const float *m) {
    crisp_qs8_requant q = {xq.zero_point, yq.zero_point, 0, 0, b, m, NULL, 0};
    naive_qs8_range(act, yq, &q.output_min, &q.output_max);
    return q;
}

static void test_conv(void) {
    unsigned rng = 8088;
    for (int ran = 0; ran < 400;) {
        naive_conv n;
        n.groups = check_rand_int(&rng, 1, 3);
        n.cin = n.groups * check_rand_int(&rng, 1, 3);
        if (check_rand_int(&rng, 0, 3) == 0) n.groups = n.cin; /* depthwise */
        n.cout = n.groups * check_rand_int(&rng, 1, 3);
        n.h = check_rand_int(&rng, 1, 11), n.w = check_rand_int(&rng, 1, 80);
        n.kh = check_rand_int(&rng, 1, 5), n.kw = check_rand_int(&rng, 1, 5);
        n.sh = check_rand_int(&rng, 1, 2), n.sw = check_rand_int(&rng, 1, 2);
        n.dh = check_rand_int(&rng, 1, 2), n.dw = check_rand_int(&rng, 1, 2);
        n.pt = check_rand_int(&rng, 0, 2), n.pl = check_rand_int(&rng, 0, 2);
        n.pb = check_rand_int(&rng, 0, 2), n.pr = check_rand_int(&rng, 0, 2);
        n.act = check_rand_int(&rng, 0, 2);
        if (n.h + n.pt + n.pb < n.dh * (n.kh - 1) + 1 || n.w + n.pl + n.pr < n.dw * (n.kw - 1) + 1)
            continue;
        ran++;
        const int oh = naive_conv_out(n.h, n.kh, n.sh, n.pt + n.pb, n.dh);
        const int ow = naive_conv_out(n.w, n.kw, n.sw, n.pl + n.pr, n.dw);
        const size_t nx = (size_t)n.cin * n.h * n.w, ny = (size_t)n.cout * oh * ow;
        const size_t nw = (size_t)n.cout * n.kh * n.kw * (n.cin / n.groups);
        int8_t *x = random_q(&rng, nx, -128), *w = random_q(&rng, nw, -127);
        int8_t *got = malloc(ny), *want = malloc(ny);
        const naive_q xq = random_scale(&rng, 0.05f), yq = random_scale(&rng, 0.5f);
        float ws[32], bias[32], mult[32];
        int32_t bq[32];
        for (int c = 0; c < n.cout; c++)
            ws[c] = 0.002f + 0.001f * (float)c, bias[c] = check_rand_float(&rng) * 3;
        naive_qs8_channel(xq, yq, bias, ws, n.cout, bq, mult);
        const crisp_qs8_conv2d_params p = {
            {(size_t)n.cin, (size_t)n.h, (size_t)n.w, (size_t)n.cout, (size_t)oh, (size_t)ow,
             (size_t)n.kh, (size_t)n.kw, (size_t)n.sh, (size_t)n.sw, (size_t)n.pt, (size_t)n.pl,
             (size_t)n.dh, (size_t)n.dw, (size_t)n.groups, {0, 0}},
            requant(n.act, xq, yq, bq, mult)};
        /* Two ranges, as two threads would. */
        const size_t items = (size_t)n.cout * oh, mid = items / 3;
        crisp_qs8_conv2d__ref(&p, x, w, got, 0, mid);
        crisp_qs8_conv2d__ref(&p, x, w, got, mid, items);
        naive_qs8_conv2d(&n, xq, yq, x, w, bq, mult, want);
        CHECK(memcmp(got, want, ny) == 0,
              "qs8 conv cin %d %dx%d cout %d k %dx%d s %d,%d pad %d,%d,%d,%d dil %d,%d g %d act %d",
              n.cin, n.h, n.w, n.cout, n.kh, n.kw, n.sh, n.sw, n.pt, n.pl, n.pb, n.pr, n.dh, n.dw,
              n.groups, n.act);
        free(x), free(w), free(got), free(want);
    }
}

static void test_linear_add_clamp(void) {
    unsigned rng = 99;
    for (int t = 0; t < 200; t++) {
        const int cin = check_rand_int(&rng, 1, 300), cout = check_rand_int(&rng, 1, 16);
        const int act = check_rand_int(&rng, 0, 2);
        int8_t *x = random_q(&rng, (size_t)cin, -128), *w = random_q(&rng, (size_t)cin * cout, -127);
        int8_t got[16], want[16];
        const naive_q xq = random_scale(&rng, 0.05f), yq = random_scale(&rng, 1.0f);
        float ws[16], mult[16], bias[16];
        int32_t bq[16];
        for (int c = 0; c < cout; c++) ws[c] = 0.004f, bias[c] = check_rand_float(&rng);
        naive_qs8_channel(xq, yq, bias, ws, cout, bq, mult);
        const crisp_qs8_linear_params p = {(size_t)cin, (size_t)cout, requant(act, xq, yq, bq, mult)};
        crisp_qs8_linear__ref(&p, x, w, got, 0, (size_t)cout);
        naive_qs8_linear(cin, cout, act, xq, yq, x, w, bq, mult, want);
        CHECK(memcmp(got, want, (size_t)cout) == 0, "qs8 linear %d->%d act %d", cin, cout, act);
        free(x), free(w);

        const int n = check_rand_int(&rng, 1, 64);
        int8_t *a = random_q(&rng, (size_t)n, -128), *b = random_q(&rng, (size_t)n, -128);
        int8_t *ya = malloc((size_t)n), *yb = malloc((size_t)n);
        const naive_q aq = random_scale(&rng, 0.1f), bq2 = random_scale(&rng, 0.05f);
        crisp_qs8_add_params ap = {aq.scale, bq2.scale, yq.scale, aq.zero_point, bq2.zero_point,
                                   yq.zero_point, 0, 0, 0.0f, 0};
        naive_qs8_range(act, yq, &ap.output_min, &ap.output_max);
        crisp_qs8_add__ref((size_t)n, a, b, ya, &ap);
        naive_qs8_add(n, act, aq, bq2, yq, a, b, yb);
        CHECK(memcmp(ya, yb, (size_t)n) == 0, "qs8 add n %d act %d", n, act);
        /* relu/relu6 standalone: clamp to z and z + nearbyint(6/s). */
        crisp_qs8_clamp_params cp;
        naive_qs8_range(act, aq, &cp.output_min, &cp.output_max);
        crisp_qs8_clamp__ref((size_t)n, a, ya, &cp);
        int ok = 1;
        for (int i = 0; i < n; i++) {
            const double real = aq.scale * (a[i] - aq.zero_point);
            const double want_real = act == 0 ? real : act == 1 ? fmax(real, 0) : fmin(fmax(real, 0), 6);
            ok &= fabs(aq.scale * (ya[i] - aq.zero_point) - want_real) <= aq.scale * 0.5 + 1e-6;
        }
        CHECK(ok, "qs8 clamp act %d scale %g zp %d", act, aq.scale, aq.zero_point);
        free(a), free(b), free(ya), free(yb);
    }
}

static void test_pools(void) {
    unsigned rng = 5150;
    for (int ran = 0; ran < 400;) {
        const int kind = ran % 4;
        naive_pool n = {0};
        n.c = check_rand_int(&rng, 1, 3), n.h = check_rand_int(&rng, 1, 12), n.w = check_rand_int(&rng, 1, 12);
        n.kh = check_rand_int(&rng, 1, 5), n.kw = check_rand_int(&rng, 1, 5);
        n.sh = check_rand_int(&rng, 1, 3), n.sw = check_rand_int(&rng, 1, 3);
        n.ph = check_rand_int(&rng, 0, n.kh / 2), n.pw = check_rand_int(&rng, 0, n.kw / 2);
        n.dh = kind == 0 ? check_rand_int(&rng, 1, 2) : 1, n.dw = kind == 0 ? check_rand_int(&rng, 1, 2) : 1;
        n.ceil_mode = check_rand_int(&rng, 0, 1);
        n.count_include_pad = check_rand_int(&rng, 0, 1);
        n.divisor_override = check_rand_int(&rng, 0, 3) == 0 ? check_rand_int(&rng, 1, 9) : 0;
        int oh = naive_pool_out(n.h, n.kh, n.sh, n.ph, n.dh, n.ceil_mode);
        int ow = naive_pool_out(n.w, n.kw, n.sw, n.pw, n.dw, n.ceil_mode);
        if (kind == 2) oh = n.kh, ow = n.kw; /* adaptive: kh/kw are the output size */
        if (kind == 3) oh = ow = 1;
        if (oh < 1 || ow < 1) continue;
        ran++;
        const size_t nx = (size_t)n.c * n.h * n.w, ny = (size_t)n.c * oh * ow;
        int8_t *x = random_q(&rng, nx, -128), *got = malloc(ny), *want = malloc(ny);
        const naive_q xq = random_scale(&rng, 0.1f), yq = kind == 0 ? xq : random_scale(&rng, 0.08f);
        crisp_qs8_pool2d_params p = {
            {(size_t)n.c, (size_t)n.h, (size_t)n.w, (size_t)oh, (size_t)ow, (size_t)n.kh,
             (size_t)n.kw, (size_t)n.sh, (size_t)n.sw, (size_t)n.ph, (size_t)n.pw, (size_t)n.dh,
             (size_t)n.dw, n.count_include_pad, (size_t)n.divisor_override},
            xq.scale, yq.scale, xq.zero_point, yq.zero_point};
        if (kind == 0) crisp_qs8_maxpool2d__ref(&p.pool, x, got);
        else if (kind == 1) crisp_qs8_avgpool2d__ref(&p, x, got);
        else if (kind == 2) crisp_qs8_adaptive_avgpool2d__ref(&p, x, got);
        else crisp_qs8_global_avgpool__ref(&p, x, got);
        naive_qs8_pool(kind, &n, xq, yq, x, want);
        CHECK(memcmp(got, want, ny) == 0, "qs8 pool kind %d %dx%d k %dx%d s %d,%d p %d,%d ceil %d cip %d div %d",
              kind, n.h, n.w, n.kh, n.kw, n.sh, n.sw, n.ph, n.pw, n.ceil_mode, n.count_include_pad,
              n.divisor_override);
        free(x), free(got), free(want);
    }
}

static void test_hand(void) {
    /* quantize: half to even, clamp, NaN to -128; dequantize. */
    const float x[6] = {0.25f, 0.75f, -0.25f, 1000, -1000, NAN};
    int8_t q[6];
    const crisp_qs8_quantize_params qp = {0.5f, 3};
    crisp_f32_quantize__ref(6, x, q, &qp);
    CHECK(q[0] == 3 && q[1] == 5 && q[2] == 3 && q[3] == 127 && q[4] == -128 && q[5] == -128,
          "quantize %d %d %d %d %d %d", q[0], q[1], q[2], q[3], q[4], q[5]);
    float y[2];
    const int8_t qq[2] = {-128, 127};
    crisp_f32_dequantize__ref(2, qq, y, &qp);
    CHECK(y[0] == -65.5f && y[1] == 62, "dequantize %g %g", y[0], y[1]);
    /* 1x1 conv, zero points 10 / -5: acc = (14-10)*2 + (6-10)*(-3) + 7 = 27; * 0.5 = 13.5 -> 14; -5+14 = 9. */
    const int8_t cx[2] = {14, 6}, cw[2] = {2, -3};
    int8_t cy[1];
    const int32_t b[1] = {7};
    const float m[1] = {0.5f};
    crisp_qs8_conv2d_params cp = {{2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, {0, 0}},
                                  {10, -5, -128, 127, b, m, NULL, 0}};
    crisp_qs8_conv2d__ref(&cp, cx, cw, cy, 0, 1);
    CHECK(cy[0] == 9, "hand qs8 conv %d", cy[0]);
    /* Padding reads the zero point: a 3x3 kernel of ones on a 1x1 input 12 with z 10, pad 1. */
    const int8_t px[1] = {12}, pw[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    const int32_t zb[1] = {0};
    const float one[1] = {1};
    cp = (crisp_qs8_conv2d_params){{1, 1, 1, 1, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, {0, 0}},
                                   {10, 0, -128, 127, zb, one, NULL, 0}};
    crisp_qs8_conv2d__ref(&cp, px, pw, cy, 0, 1);
    CHECK(cy[0] == 2, "padding must read the zero point: %d, expected 2", cy[0]);
}

int main(void) {
    test_conv();
    test_linear_add_clamp();
    test_pools();
    test_hand();
    return check_report();
}
