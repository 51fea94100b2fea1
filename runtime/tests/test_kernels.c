/* Reference kernels against the naive formulas of naive.c over many random
 * shapes, plus hand-computed cases. Pools are in test_kernels_pool.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernels/ref.h"
#include "naive.h"

CHECK_DEFINE_COUNTERS;

void test_pools(void);

static float *random_buffer(unsigned *rng, size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = check_rand_float(rng);
    return p;
}

/* Largest error relative to max(1, |expected|), element-wise. */
static double max_rel_error(const float *got, const float *want, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        const double scale = fabs(want[i]) > 1 ? fabs(want[i]) : 1;
        const double e = isnan(got[i]) != isnan(want[i]) ? INFINITY : fabs(got[i] - want[i]) / scale;
        if (!(isnan(got[i]) && isnan(want[i])) && e > worst) worst = e;
    }
    return worst;
}

static const crisp_minmax_params act_minmax[3] = {{-INFINITY, INFINITY}, {0, INFINITY}, {0, 6}};

static void run_conv_case(const naive_conv *n, unsigned *rng, int with_bias) {
    const int oh = naive_conv_out(n->h, n->kh, n->sh, n->pt + n->pb, n->dh);
    const int ow = naive_conv_out(n->w, n->kw, n->sw, n->pl + n->pr, n->dw);
    const size_t nx = (size_t)n->cin * n->h * n->w, ny = (size_t)n->cout * oh * ow;
    const size_t nw = (size_t)n->cout * n->kh * n->kw * (n->cin / n->groups);
    float *x = random_buffer(rng, nx), *w = random_buffer(rng, nw);
    float *b = with_bias ? random_buffer(rng, (size_t)n->cout) : NULL;
    float *got = malloc(ny * sizeof *got), *want = malloc(ny * sizeof *want);
    for (size_t i = 0; i < nx; i++) x[i] *= 4; /* so relu6 clamps somewhere */
    const crisp_conv2d_params p = {
        .input_channels = (size_t)n->cin, .input_height = (size_t)n->h, .input_width = (size_t)n->w,
        .output_channels = (size_t)n->cout, .output_height = (size_t)oh, .output_width = (size_t)ow,
        .kernel_height = (size_t)n->kh, .kernel_width = (size_t)n->kw,
        .stride_height = (size_t)n->sh, .stride_width = (size_t)n->sw,
        .padding_top = (size_t)n->pt, .padding_left = (size_t)n->pl,
        .dilation_height = (size_t)n->dh, .dilation_width = (size_t)n->dw,
        .groups = (size_t)n->groups, .minmax = act_minmax[n->act]};
    crisp_f32_conv2d__ref(&p, x, w, b, got, 0, (size_t)n->cout * oh);
    naive_conv2d(n, x, w, b, want);
    const double err = max_rel_error(got, want, ny);
    /* Up to 16*9 float products summed in a different order than in double. */
    CHECK(err < 1e-4,
          "conv cin %d %dx%d cout %d k %dx%d s %d,%d pad %d,%d,%d,%d dil %d,%d groups %d act %d: "
          "error %g",
          n->cin, n->h, n->w, n->cout, n->kh, n->kw, n->sh, n->sw, n->pt, n->pl, n->pb, n->pr,
          n->dh, n->dw, n->groups, n->act, err);
    free(x), free(w), free(b), free(got), free(want);
}

static void test_conv_random(void) {
    unsigned rng = 12345;
    int ran = 0;
    while (ran < 600) {
        naive_conv n;
        n.groups = check_rand_int(&rng, 1, 3);
        const int depthwise = check_rand_int(&rng, 0, 3) == 0;
        n.cin = n.groups * check_rand_int(&rng, 1, 3);
        if (depthwise) n.groups = n.cin;
        n.cout = n.groups * check_rand_int(&rng, 1, 3);
        n.h = check_rand_int(&rng, 1, 11);
        n.w = check_rand_int(&rng, 1, 11);
        n.kh = check_rand_int(&rng, 1, 4);
        n.kw = check_rand_int(&rng, 1, 4);
        n.sh = check_rand_int(&rng, 1, 3);
        n.sw = check_rand_int(&rng, 1, 3);
        n.dh = check_rand_int(&rng, 1, 3);
        n.dw = check_rand_int(&rng, 1, 3);
        n.pt = check_rand_int(&rng, 0, 3);
        n.pl = check_rand_int(&rng, 0, 3);
        n.pb = check_rand_int(&rng, 0, 3);
        n.pr = check_rand_int(&rng, 0, 3);
        n.act = check_rand_int(&rng, 0, 2);
        if (n.h + n.pt + n.pb < n.dh * (n.kh - 1) + 1) continue;
        if (n.w + n.pl + n.pr < n.dw * (n.kw - 1) + 1) continue;
        run_conv_case(&n, &rng, check_rand_int(&rng, 0, 1));
        ran++;
    }
    /* A wide row exercises the vectorised inner loop and its tails. */
    naive_conv wide = {16, 9, 61, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    run_conv_case(&wide, &rng, 1);
    wide.sw = 2;
    run_conv_case(&wide, &rng, 1);
}

static void test_conv_hand(void) {
    /* 1x3x3 input 1..9, 2x2 kernel of ones, pad 0: window sums. */
    const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w[4] = {1, 1, 1, 1}, b[1] = {0.5f};
    float y[4];
    crisp_conv2d_params p = {1, 3, 3, 1, 2, 2, 2, 2, 1, 1, 0, 0, 1, 1, 1, act_minmax[0]};
    crisp_f32_conv2d__ref(&p, x, w, b, y, 0, 2);
    CHECK(y[0] == 12.5f && y[1] == 16.5f && y[2] == 24.5f && y[3] == 28.5f,
          "conv sums %g %g %g %g", y[0], y[1], y[2], y[3]);
    /* Pad 1 top/left only, stride 2: windows at (-1,-1) and (1,1) corners. */
    p = (crisp_conv2d_params){1, 3, 3, 1, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, act_minmax[0]};
    crisp_f32_conv2d__ref(&p, x, w, NULL, y, 0, 2);
    CHECK(y[0] == 1 && y[1] == 2 + 3 && y[2] == 4 + 7 && y[3] == 5 + 6 + 8 + 9,
          "padded strided conv %g %g %g %g", y[0], y[1], y[2], y[3]);
    /* relu6 epilogue clamps both ends. */
    const float wneg[4] = {-1, -1, -1, -1};
    p = (crisp_conv2d_params){1, 3, 3, 1, 2, 2, 2, 2, 1, 1, 0, 0, 1, 1, 1, act_minmax[2]};
    crisp_f32_conv2d__ref(&p, x, w, NULL, y, 0, 2);
    CHECK(y[0] == 6 && y[3] == 6, "relu6 upper clamp %g %g", y[0], y[3]);
    crisp_f32_conv2d__ref(&p, x, wneg, NULL, y, 0, 2);
    CHECK(y[0] == 0 && y[3] == 0, "relu6 lower clamp %g %g", y[0], y[3]);
}

static void test_linear(void) {
    unsigned rng = 777;
    for (int t = 0; t < 200; t++) {
        const int cin = check_rand_int(&rng, 1, 70), cout = check_rand_int(&rng, 1, 20);
        const int act = check_rand_int(&rng, 0, 2), with_bias = check_rand_int(&rng, 0, 1);
        float *x = random_buffer(&rng, (size_t)cin), *w = random_buffer(&rng, (size_t)cin * cout);
        float *b = with_bias ? random_buffer(&rng, (size_t)cout) : NULL;
        float got[20], want[20];
        const crisp_linear_params p = {(size_t)cin, (size_t)cout, act_minmax[act]};
        crisp_f32_linear__ref(&p, x, w, b, got, 0, (size_t)cout);
        naive_linear(cin, cout, act, x, w, b, want);
        const double err = max_rel_error(got, want, (size_t)cout);
        CHECK(err < 1e-5, "linear %d->%d act %d: error %g", cin, cout, act, err);
        free(x), free(w), free(b);
    }
    const float x[3] = {1, 2, 3}, w[6] = {1, 0, -1, 0.5f, 0.5f, 0.5f}, b[2] = {10, -10};
    float y[2];
    const crisp_linear_params p = {3, 2, act_minmax[1]};
    crisp_f32_linear__ref(&p, x, w, b, y, 0, 2);
    CHECK(y[0] == 8 && y[1] == 0, "linear hand case %g %g", y[0], y[1]);
}

static void test_elementwise(void) {
    const float a[5] = {-7, -0.5f, 0, 3, 9}, b[5] = {1, 1, 1, 1, 1};
    float y[5];
    crisp_f32_add__ref(5, a, b, y, &act_minmax[0]);
    CHECK(y[0] == -6 && y[1] == 0.5f && y[4] == 10, "add %g %g %g", y[0], y[1], y[4]);
    crisp_f32_add__ref(5, a, b, y, &act_minmax[2]);
    CHECK(y[0] == 0 && y[3] == 4 && y[4] == 6, "add relu6 %g %g %g", y[0], y[3], y[4]);
    crisp_f32_clamp__ref(5, a, y, &act_minmax[1]);
    CHECK(y[0] == 0 && y[1] == 0 && y[3] == 3 && y[4] == 9, "relu %g %g %g", y[0], y[1], y[4]);
    crisp_f32_clamp__ref(5, a, y, &act_minmax[2]);
    CHECK(y[4] == 6 && y[3] == 3, "relu6 %g %g", y[3], y[4]);
    const float nan_in[1] = {NAN};
    crisp_f32_clamp__ref(1, nan_in, y, &act_minmax[1]);
    CHECK(isnan(y[0]), "relu(NaN) must stay NaN as in torch, got %g", y[0]);
}

/* silu, sigmoid, hardswish, hardsigmoid (codes 3..6) against the double formulas, over
 * random values, the hard ones' corners, saturation and non-finite inputs; in place too. */
static void test_activations(void) {
    unsigned rng = 7;
    enum { N = 4096 };
    static float x[N + 12], got[N + 12], want[N + 12];
    const float special[12] = {0, -3, 3, -2.9999998f, 100, -100, -88.8f, 89, INFINITY,
                               -INFINITY, NAN, -0.0f};
    for (int i = 0; i < N; i++) x[i] = 12 * check_rand_float(&rng);
    memcpy(x + N, special, sizeof special);
    for (int act = 3; act <= 6; act++) {
        crisp_f32_activation__ref(N + 12, x, got, (uint32_t)act);
        for (int i = 0; i < N + 12; i++) want[i] = naive_act(x[i], act);
        const double err = max_rel_error(got, want, N + 12);
        CHECK(err < 4e-7, "activation %d: error %g", act, err);
        memcpy(want, x, sizeof x);
        crisp_f32_activation__ref(N + 12, want, want, (uint32_t)act);
        CHECK(memcmp(want, got, sizeof got) == 0, "activation %d in place differs", act);
    }
    /* Around the exp's overflow, every float of x in [-88.8, -88.3]: silu and
     * sigmoid are finite and within 1e-30 of the formula (up to 88.72, e^-x
     * is finite but 2^128 is not: the exp's scale overflowed to inf and gave
     * NaN, which the fuzzer found as silu(-88.5)). */
    {
        int bad = 0;
        for (float v = -88.8f; v <= -88.3f && bad < 3; v = nextafterf(v, 0.0f)) {
            for (int act = 3; act <= 4; act++) {
                float out;
                crisp_f32_activation__ref(1, &v, &out, (uint32_t)act);
                const float ref = naive_act(v, act);
                if (!isfinite(out) || fabsf(out - ref) > 1e-30f) {
                    CHECK(0, "activation %d(%.9g) = %.9g, want %.9g", act, v, out, ref);
                    bad++;
                }
            }
        }
    }
    /* Hand values (torch 2.x, float32). */
    const float h[4] = {-1, 0, 1, 4};
    float y[4];
    crisp_f32_activation__ref(4, h, y, 3);
    CHECK(fabsf(y[0] + 0.26894143f) < 1e-7f && y[1] == 0 && fabsf(y[2] - 0.7310586f) < 1e-7f,
          "silu %.9g %.9g %.9g", y[0], y[1], y[2]);
    crisp_f32_activation__ref(4, h, y, 4);
    CHECK(y[1] == 0.5f && fabsf(y[3] - 0.98201376f) < 1e-7f, "sigmoid %.9g %.9g", y[1], y[3]);
    crisp_f32_activation__ref(4, h, y, 5);
    CHECK(fabsf(y[0] + 0.33333334f) < 1e-7f && y[1] == 0 && y[3] == 4,
          "hardswish %.9g %.9g %.9g", y[0], y[1], y[3]);
    crisp_f32_activation__ref(4, h, y, 6);
    CHECK(fabsf(y[0] - 0.33333334f) < 1e-7f && y[1] == 0.5f && y[3] == 1,
          "hardsigmoid %.9g %.9g %.9g", y[0], y[1], y[3]);
    crisp_f32_activation__ref(1, special + 5, y, 3);
    CHECK(y[0] == 0 && signbit(y[0]), "silu(-100) must be -0 as in torch, got %g", y[0]);
}

/* MUL_CHANNELS over random shapes, whole and split at random element ranges. */
static void test_mul_channels(void) {
    unsigned rng = 11;
    for (int t = 0; t < 50; t++) {
        const int c = check_rand_int(&rng, 1, 20), plane = check_rand_int(&rng, 1, 50);
        const size_t n = (size_t)c * plane;
        float *x = random_buffer(&rng, n), *s = random_buffer(&rng, (size_t)c);
        float *got = malloc(n * sizeof *got), *want = malloc(n * sizeof *want);
        const crisp_channels_params p = {(size_t)c, (size_t)plane};
        const size_t cut = (size_t)check_rand_int(&rng, 0, (int)n);
        crisp_f32_mul_channels__ref(&p, x, s, got, 0, cut);
        crisp_f32_mul_channels__ref(&p, x, s, got, cut, n);
        naive_mul_channels(c, plane, x, s, want);
        CHECK(memcmp(got, want, n * sizeof *got) == 0, "mul_channels %dx%d split at %zu", c,
              plane, cut);
        free(x), free(s), free(got), free(want);
    }
}

static void test_softmax(void) {
    unsigned rng = 99;
    for (int t = 0; t < 100; t++) {
        const int outer = check_rand_int(&rng, 1, 4), len = check_rand_int(&rng, 1, 9);
        const int inner = check_rand_int(&rng, 1, 5);
        const size_t n = (size_t)outer * len * inner;
        float *x = random_buffer(&rng, n), *got = malloc(n * sizeof *got);
        float *want = malloc(n * sizeof *want);
        for (size_t i = 0; i < n; i++) x[i] *= 30; /* large logits: max must be subtracted */
        const crisp_softmax_params p = {(size_t)outer, (size_t)len, (size_t)inner};
        crisp_f32_softmax__ref(&p, x, got);
        naive_softmax(outer, len, inner, x, want);
        const double err = max_rel_error(got, want, n);
        CHECK(err < 1e-6, "softmax %dx%dx%d: error %g", outer, len, inner, err);
        free(x), free(got), free(want);
    }
    const float big[3] = {1000, 1000, 1000};
    float y[3];
    const crisp_softmax_params p = {1, 3, 1};
    crisp_f32_softmax__ref(&p, big, y);
    CHECK(fabsf(y[0] - 1.0f / 3) < 1e-7f && fabsf(y[2] - 1.0f / 3) < 1e-7f,
          "softmax of large equal logits %g %g", y[0], y[2]);
}

int main(void) {
    test_conv_random();
    test_conv_hand();
    test_linear();
    test_elementwise();
    test_activations();
    test_mul_channels();
    test_softmax();
    test_pools();
    return check_report();
}
