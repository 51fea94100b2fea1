/* Pool kernels against naive.c: random shapes and hand-computed torch cases. */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "kernels/ref.h"
#include "naive.h"

void test_pools(void);

static crisp_pool2d_params to_params(const naive_pool *n, int oh, int ow) {
    return (crisp_pool2d_params){
        .channels = (size_t)n->c, .input_height = (size_t)n->h, .input_width = (size_t)n->w,
        .output_height = (size_t)oh, .output_width = (size_t)ow,
        .kernel_height = (size_t)n->kh, .kernel_width = (size_t)n->kw,
        .stride_height = (size_t)n->sh, .stride_width = (size_t)n->sw,
        .padding_height = (size_t)n->ph, .padding_width = (size_t)n->pw,
        .dilation_height = (size_t)n->dh, .dilation_width = (size_t)n->dw,
        .count_include_pad = n->count_include_pad,
        .divisor_override = (size_t)n->divisor_override};
}

static int compare(const float *got, const float *want, size_t n, double tol) {
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i] && /* equal infinities: a window all in padding */
            !(fabs(got[i] - want[i]) <= tol * (fabs(want[i]) > 1 ? fabs(want[i]) : 1)))
            return 0;
    return 1;
}

static void random_pools(int is_max) {
    unsigned rng = is_max ? 4242 : 2424;
    int ran = 0;
    while (ran < 500) {
        naive_pool n = {0};
        n.c = check_rand_int(&rng, 1, 3);
        n.h = check_rand_int(&rng, 1, 12);
        n.w = check_rand_int(&rng, 1, 12);
        n.kh = check_rand_int(&rng, 1, 5);
        n.kw = check_rand_int(&rng, 1, 5);
        n.sh = check_rand_int(&rng, 1, 4);
        n.sw = check_rand_int(&rng, 1, 4);
        n.ph = check_rand_int(&rng, 0, n.kh / 2);
        n.pw = check_rand_int(&rng, 0, n.kw / 2);
        n.dh = is_max ? check_rand_int(&rng, 1, 3) : 1;
        n.dw = is_max ? check_rand_int(&rng, 1, 3) : 1;
        n.ceil_mode = check_rand_int(&rng, 0, 1);
        n.count_include_pad = is_max ? 0 : check_rand_int(&rng, 0, 1);
        n.divisor_override = !is_max && check_rand_int(&rng, 0, 4) == 0 ? check_rand_int(&rng, 1, 7) : 0;
        const int oh = naive_pool_out(n.h, n.kh, n.sh, n.ph, n.dh, n.ceil_mode);
        const int ow = naive_pool_out(n.w, n.kw, n.sw, n.pw, n.dw, n.ceil_mode);
        if (oh < 1 || ow < 1) continue;
        const size_t nx = (size_t)n.c * n.h * n.w, ny = (size_t)n.c * oh * ow;
        float *x = malloc(nx * sizeof *x), *got = malloc(ny * sizeof *got);
        float *want = malloc(ny * sizeof *want);
        for (size_t i = 0; i < nx; i++) x[i] = check_rand_float(&rng);
        const crisp_pool2d_params p = to_params(&n, oh, ow);
        if (is_max) {
            crisp_f32_maxpool2d__ref(&p, x, got);
            naive_maxpool2d(&n, x, want);
        } else {
            crisp_f32_avgpool2d__ref(&p, x, got);
            naive_avgpool2d(&n, x, want);
        }
        CHECK(compare(got, want, ny, is_max ? 0 : 1e-6),
              "%s pool %dx%d k %dx%d s %d,%d p %d,%d d %d,%d ceil %d cip %d div %d",
              is_max ? "max" : "avg", n.h, n.w, n.kh, n.kw, n.sh, n.sw, n.ph, n.pw, n.dh, n.dw,
              n.ceil_mode, n.count_include_pad, n.divisor_override);
        free(x), free(got), free(want);
        ran++;
    }
}

static void hand_cases(void) {
    /* torch.nn.AvgPool2d(3, 2, 1, ceil_mode=True) on ones(1,1,4,4), where the
     * divisor rule matters: (0,0) = 4/9 with count_include_pad (1 without);
     * (0,2) = 2/6 and (2,2) = 1/4, windows clipped to the padded 5x5 extent. */
    float ones[16], y[9];
    for (int i = 0; i < 16; i++) ones[i] = 1;
    naive_pool n = {1, 4, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0};
    const int oh = naive_pool_out(4, 3, 2, 1, 1, 1);
    CHECK(oh == 3, "ceil_mode output size %d, expected 3", oh);
    crisp_pool2d_params p = to_params(&n, 3, 3);
    crisp_f32_avgpool2d__ref(&p, ones, y);
    CHECK(fabsf(y[0] - 4.0f / 9) < 1e-7f && fabsf(y[8] - 0.25f) < 1e-7f && fabsf(y[2] - 2.0f / 6) < 1e-7f,
          "avg include_pad corners %g %g %g", y[0], y[2], y[8]);
    p.count_include_pad = 0;
    crisp_f32_avgpool2d__ref(&p, ones, y);
    CHECK(y[0] == 1 && y[8] == 1 && y[4] == 1, "avg exclude_pad %g %g", y[0], y[8]);
    p.divisor_override = 2;
    crisp_f32_avgpool2d__ref(&p, ones, y);
    CHECK(y[0] == 2 && y[8] == 0.5f, "divisor_override %g %g", y[0], y[8]);

    /* torch drops a ceil_mode window that would start in the padding:
     * MaxPool2d(2, 2, padding=1, ceil_mode=True) on 5 gives 3, not 4. */
    CHECK(naive_pool_out(5, 2, 2, 1, 1, 1) == 3, "ceil drop rule");
    CHECK(naive_pool_out(6, 3, 2, 0, 1, 1) == 3 && naive_pool_out(6, 3, 2, 0, 1, 0) == 2,
          "ceil vs floor");

    /* Max pool: padding is -inf, so an all-negative edge stays negative. */
    const float neg[4] = {-4, -3, -2, -1};
    float m[4];
    naive_pool mp = {1, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0, 0};
    p = to_params(&mp, 3, 3);
    p.output_height = p.output_width = 3;
    float m9[9];
    crisp_f32_maxpool2d__ref(&p, neg, m9);
    CHECK(m9[0] == -4 && m9[4] == -1 && m9[8] == -1, "max pool -inf padding %g %g %g", m9[0],
          m9[4], m9[8]);
    const float with_nan[4] = {1, NAN, 3, 2};
    mp = (naive_pool){1, 2, 2, 2, 2, 2, 2, 0, 0, 1, 1, 0, 0, 0};
    p = to_params(&mp, 1, 1);
    crisp_f32_maxpool2d__ref(&p, with_nan, m);
    CHECK(isnan(m[0]), "max pool propagates NaN like torch, got %g", m[0]);

    /* Adaptive bins overlap when H is not a multiple: H=5 -> 3 bins [0,2) [1,4) [3,5). */
    const float r[5] = {1, 2, 3, 4, 5};
    float a[3];
    const crisp_pool2d_params ap = {.channels = 1, .input_height = 1, .input_width = 5,
                                    .output_height = 1, .output_width = 3};
    crisp_f32_adaptive_avgpool2d__ref(&ap, r, a);
    CHECK(a[0] == 1.5f && a[1] == 3 && a[2] == 4.5f, "adaptive bins %g %g %g", a[0], a[1], a[2]);

    float g[2];
    const float gx[6] = {1, 2, 3, 10, 20, 30};
    crisp_f32_global_avgpool__ref(2, 3, gx, g);
    CHECK(g[0] == 2 && g[1] == 20, "global avg %g %g", g[0], g[1]);
}

static void random_adaptive(void) {
    unsigned rng = 31337;
    for (int t = 0; t < 200; t++) {
        const int c = check_rand_int(&rng, 1, 3), h = check_rand_int(&rng, 1, 13);
        const int w = check_rand_int(&rng, 1, 13), oh = check_rand_int(&rng, 1, 8);
        const int ow = check_rand_int(&rng, 1, 8);
        const size_t nx = (size_t)c * h * w, ny = (size_t)c * oh * ow;
        float *x = malloc(nx * sizeof *x), *got = malloc(ny * sizeof *got);
        float *want = malloc(ny * sizeof *want);
        for (size_t i = 0; i < nx; i++) x[i] = check_rand_float(&rng);
        const crisp_pool2d_params p = {.channels = (size_t)c, .input_height = (size_t)h,
                                       .input_width = (size_t)w, .output_height = (size_t)oh,
                                       .output_width = (size_t)ow};
        crisp_f32_adaptive_avgpool2d__ref(&p, x, got);
        naive_adaptive_avgpool2d(c, h, w, oh, ow, x, want);
        CHECK(compare(got, want, ny, 1e-6), "adaptive %dx%d -> %dx%d", h, w, oh, ow);
        if (oh == 1 && ow == 1) {
            float *gl = malloc((size_t)c * sizeof *gl);
            crisp_f32_global_avgpool__ref((size_t)c, (size_t)h * w, x, gl);
            CHECK(compare(gl, want, (size_t)c, 1e-6), "global avg %dx%d", h, w);
            free(gl);
        }
        free(x), free(got), free(want);
    }
}

void test_pools(void) {
    random_pools(1);
    random_pools(0);
    hand_cases();
    random_adaptive();
}
