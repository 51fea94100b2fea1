/* The backward ops of bias tuning (src/backward.c) against finite
 * differences of their own forward, on small random shapes: conv (stride,
 * padding incl. asymmetric, dilation, groups, depthwise, pruned weights,
 * fused relu/relu6), add (+ relu), relu, relu6, global / adaptive / avg /
 * max pool. L = sum_k r_k y_k for random r, so dL/dy = r; every op is
 * piecewise linear, so a one-sided difference is exact up to rounding unless
 * a kink lies within eps: each derivative must match the difference on one
 * side at least. The conv forward is also checked against a textbook loop. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backward.h"
#include "check.h"

CHECK_DEFINE_COUNTERS;

#define EPS 1e-2f

/* Uniform in [-1, 1) with full float resolution (no ties in max pools). */
static float urand(unsigned *rng) {
    return (float)((double)check_rand(rng) / 4294967296.0 * 2.0 - 1.0);
}

typedef struct fd_case {
    const char *name;
    size_t nx, nb, ny;
    crisp_bw_conv conv;
    crisp_pool2d_params pool;
    crisp_minmax_params mm;
    size_t channels, pixels;
    int kind; /* 0 conv, 1 add, 2 clamp, 3 global, 4 adaptive, 5 avg, 6 max */
    float *col;
    float xscale; /* inputs in [-xscale, xscale); 0 = 1 */
} fd_case;

static void forward(const fd_case *c, const float *x, const float *b, float *y) {
    switch (c->kind) {
    case 0: crisp_bw_conv_forward(&c->conv, x, b, y, c->col); break;
    case 1: crisp_bw_add_forward(c->ny, x, x + c->ny, y, c->mm); break;
    case 2: crisp_bw_clamp_forward(c->ny, x, y, c->mm); break;
    case 3: crisp_bw_global_avgpool_forward(c->channels, c->pixels, x, y); break;
    case 4: crisp_bw_adaptive_avgpool_forward(&c->pool, x, y); break;
    case 5: crisp_bw_avgpool_forward(&c->pool, x, y); break;
    default: crisp_bw_maxpool_forward(&c->pool, x, y); break;
    }
}

/* dy is r on entry (masked in place where the op masks). */
static void backward(const fd_case *c, const float *x, const float *y, float *dy, float *dx,
                     double *db) {
    switch (c->kind) {
    case 0: crisp_bw_conv_backward(&c->conv, y, dy, db, dx, c->col); break;
    case 1:
        crisp_bw_clamp_mask(c->ny, y, dy, c->mm);
        for (size_t k = 0; k < c->ny; k++) dx[k] += dy[k], dx[c->ny + k] += dy[k];
        break;
    case 2:
        crisp_bw_clamp_mask(c->ny, y, dy, c->mm);
        for (size_t k = 0; k < c->ny; k++) dx[k] += dy[k];
        break;
    case 3: crisp_bw_global_avgpool_backward(c->channels, c->pixels, dy, dx); break;
    case 4: crisp_bw_adaptive_avgpool_backward(&c->pool, dy, dx); break;
    case 5: crisp_bw_avgpool_backward(&c->pool, dy, dx); break;
    default: crisp_bw_maxpool_backward(&c->pool, x, dy, dx); break;
    }
}

static double loss(const fd_case *c, const float *x, const float *b, const float *r, float *y) {
    forward(c, x, b, y);
    double s = 0;
    for (size_t k = 0; k < c->ny; k++) s += (double)r[k] * y[k];
    return s;
}

/* One derivative against the one-sided differences at p (x or b entry). */
static int matches(const fd_case *c, float *x, float *b, const float *r, float *y, float *p,
                   double analytic, double base) {
    const float keep = *p;
    *p = keep + EPS;
    const double up = (loss(c, x, b, r, y) - base) / EPS;
    *p = keep - EPS;
    const double down = (base - loss(c, x, b, r, y)) / EPS;
    *p = keep;
    const double tol = 2e-3 * (1 + fabs(analytic));
    return fabs(up - analytic) <= tol || fabs(down - analytic) <= tol;
}

static void check_case(fd_case *c, unsigned seed) {
    unsigned rng = seed;
    float *x = malloc(c->nx * sizeof *x), *b = malloc((c->nb ? c->nb : 1) * sizeof *b);
    float *r = malloc(c->ny * sizeof *r), *y = malloc(c->ny * sizeof *y);
    float *dy = malloc(c->ny * sizeof *dy), *dx = calloc(c->nx, sizeof *dx);
    double *db = calloc(c->nb ? c->nb : 1, sizeof *db);
    for (size_t i = 0; i < c->nx; i++) x[i] = (c->xscale ? c->xscale : 1) * urand(&rng);
    for (size_t i = 0; i < c->nb; i++) b[i] = 0.3f * urand(&rng);
    for (size_t i = 0; i < c->ny; i++) r[i] = urand(&rng);
    const double base = loss(c, x, c->nb ? b : NULL, r, y);
    memcpy(dy, r, c->ny * sizeof *dy);
    backward(c, x, y, dy, dx, c->nb ? db : NULL);
    int bad = 0;
    for (size_t i = 0; i < c->nx; i++)
        if (!matches(c, x, c->nb ? b : NULL, r, y, &x[i], dx[i], base) && bad++ < 3)
            CHECK(0, "%s: d/dx[%zu] = %g disagrees with finite differences", c->name, i,
                  (double)dx[i]);
    for (size_t i = 0; i < c->nb; i++)
        if (!matches(c, x, b, r, y, &b[i], db[i], base) && bad++ < 3)
            CHECK(0, "%s: d/dbias[%zu] = %g disagrees with finite differences", c->name, i,
                  db[i]);
    CHECK(bad == 0, "%s: %d derivatives off", c->name, bad);
    free(x), free(b), free(r), free(y), free(dy), free(dx), free(db);
}

/* Textbook conv (OHWI weights, padding top/left, output size given). */
static void naive_conv(const crisp_conv2d_params *p, const float *x, const float *w,
                       const float *b, float *y) {
    const size_t cin_g = p->input_channels / p->groups, cout_g = p->output_channels / p->groups;
    for (size_t oc = 0; oc < p->output_channels; oc++)
        for (size_t oy = 0; oy < p->output_height; oy++)
            for (size_t ox = 0; ox < p->output_width; ox++) {
                double s = b ? b[oc] : 0;
                for (size_t ky = 0; ky < p->kernel_height; ky++)
                    for (size_t kx = 0; kx < p->kernel_width; kx++)
                        for (size_t ic = 0; ic < cin_g; ic++) {
                            const long iy = (long)(oy * p->stride_height + ky * p->dilation_height) - (long)p->padding_top;
                            const long ix = (long)(ox * p->stride_width + kx * p->dilation_width) - (long)p->padding_left;
                            if (iy < 0 || ix < 0 || iy >= (long)p->input_height || ix >= (long)p->input_width) continue;
                            const size_t ci = oc / cout_g * cin_g + ic;
                            s += (double)w[((oc * p->kernel_height + ky) * p->kernel_width + kx) * cin_g + ic] *
                                 x[(ci * p->input_height + (size_t)iy) * p->input_width + (size_t)ix];
                        }
                s = s < p->minmax.output_min ? p->minmax.output_min : s;
                s = s > p->minmax.output_max ? p->minmax.output_max : s;
                y[(oc * p->output_height + oy) * p->output_width + ox] = (float)s;
            }
}

typedef struct conv_spec {
    const char *name;
    size_t cin, cout, h, w, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw, groups;
    float lo, hi;
    int sparse; /* zero about half the weights */
} conv_spec;

static void test_conv(const conv_spec *s, unsigned seed) {
    crisp_conv2d_params p = {0};
    p.input_channels = s->cin, p.input_height = s->h, p.input_width = s->w;
    p.output_channels = s->cout;
    p.kernel_height = s->kh, p.kernel_width = s->kw, p.stride_height = s->sh, p.stride_width = s->sw;
    p.padding_top = s->pt, p.padding_left = s->pl, p.dilation_height = s->dh, p.dilation_width = s->dw;
    p.groups = s->groups;
    p.output_height = (s->h + s->pt + s->pb - s->dh * (s->kh - 1) - 1) / s->sh + 1;
    p.output_width = (s->w + s->pl + s->pr - s->dw * (s->kw - 1) - 1) / s->sw + 1;
    p.minmax = (crisp_minmax_params){s->lo, s->hi};
    const size_t nw = s->cout * s->kh * s->kw * (s->cin / s->groups);
    float *w = malloc(nw * sizeof *w);
    unsigned rng = seed * 7 + 1;
    size_t zeros = 0;
    for (size_t i = 0; i < nw; i++) {
        w[i] = urand(&rng);
        if (s->sparse && (check_rand(&rng) & 1)) w[i] = 0.0f, zeros++;
    }
    fd_case c = {.name = s->name, .nx = s->cin * s->h * s->w, .nb = s->cout,
                 .ny = s->cout * p.output_height * p.output_width};
    c.kind = 0;
    CHECK(crisp_bw_conv_init(&c.conv, &p, w) == CRISP_OK, "%s: init", s->name);
    CHECK(c.conv.row_start[s->cout] == nw - zeros, "%s: %u kept weights, expected %zu", s->name,
          (unsigned)c.conv.row_start[s->cout], nw - zeros);
    c.col = malloc(crisp_bw_conv_scratch(&c.conv) * sizeof *c.col);
    /* Forward against the textbook loop. */
    float *x = malloc(c.nx * sizeof *x), *b = malloc(s->cout * sizeof *b);
    float *y = malloc(c.ny * sizeof *y), *yr = malloc(c.ny * sizeof *yr);
    for (size_t i = 0; i < c.nx; i++) x[i] = urand(&rng);
    for (size_t i = 0; i < s->cout; i++) b[i] = urand(&rng);
    crisp_bw_conv_forward(&c.conv, x, b, y, c.col);
    naive_conv(&p, x, w, b, yr);
    double worst = 0;
    for (size_t i = 0; i < c.ny; i++) worst = fmax(worst, fabs((double)y[i] - yr[i]));
    CHECK(worst < 1e-4, "%s: forward off the textbook conv by %g", s->name, worst);
    check_case(&c, seed);
    crisp_bw_conv_free(&c.conv);
    free(c.col), free(w), free(x), free(b), free(y), free(yr);
}

static void test_convs(void) {
    const float inf = INFINITY;
    const conv_spec specs[] = {
        {"conv 3x3 pad 1", 3, 4, 5, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, -inf, inf, 0},
        {"conv stride 2 + relu", 4, 6, 7, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0, inf, 0},
        {"conv 1x1 stride 2", 5, 3, 6, 6, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1, -inf, inf, 0},
        {"conv dilation 2, asymmetric pad", 3, 4, 7, 7, 3, 3, 1, 1, 2, 1, 0, 2, 2, 2, 1, -inf, inf, 0},
        {"conv groups 2 + relu6", 4, 6, 5, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2, 0, 6, 0},
        {"depthwise stride 2", 5, 5, 6, 7, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 5, -inf, inf, 0},
        {"depthwise + relu6", 6, 6, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 6, 0, 6, 0},
        {"pruned conv (half the weights zero) + relu", 8, 8, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, inf, 1},
        {"conv 2x3 kernel stride (2,1)", 3, 2, 6, 5, 2, 3, 2, 1, 0, 1, 0, 1, 1, 1, 1, -inf, inf, 0},
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) test_conv(&specs[i], 100 + (unsigned)i);
}

static void test_elementwise(void) {
    const float inf = INFINITY;
    fd_case add = {.name = "add", .nx = 2 * 40, .nb = 0, .ny = 40};
    add.kind = 1, add.mm = (crisp_minmax_params){-inf, inf};
    check_case(&add, 1);
    fd_case add_relu = {.name = "add + relu", .nx = 2 * 40, .nb = 0, .ny = 40};
    add_relu.kind = 1, add_relu.mm = (crisp_minmax_params){0, inf};
    check_case(&add_relu, 2);
    fd_case relu = {.name = "relu", .nx = 50, .nb = 0, .ny = 50};
    relu.kind = 2, relu.mm = (crisp_minmax_params){0, inf};
    check_case(&relu, 3);
    /* relu6 on inputs spread over both kinks. */
    fd_case relu6 = {.name = "relu6", .nx = 50, .nb = 0, .ny = 50};
    relu6.kind = 2, relu6.mm = (crisp_minmax_params){0, 6}, relu6.xscale = 8;
    check_case(&relu6, 4);
}

static void test_pools(void) {
    fd_case g = {.name = "global avg pool", .nx = 3 * 20, .nb = 0, .ny = 3};
    g.kind = 3, g.channels = 3, g.pixels = 20;
    check_case(&g, 5);
    fd_case a = {.name = "adaptive avg pool 5x7 -> 2x3", .nx = 2 * 35, .nb = 0, .ny = 2 * 6};
    a.kind = 4;
    a.pool = (crisp_pool2d_params){.channels = 2, .input_height = 5, .input_width = 7,
                                   .output_height = 2, .output_width = 3};
    check_case(&a, 6);
    fd_case v = {.name = "avg pool 3x3 s1 p1 (no pad count)", .nx = 2 * 25, .nb = 0, .ny = 2 * 25};
    v.kind = 5;
    v.pool = (crisp_pool2d_params){.channels = 2, .input_height = 5, .input_width = 5,
                                   .output_height = 5, .output_width = 5, .kernel_height = 3,
                                   .kernel_width = 3, .stride_height = 1, .stride_width = 1,
                                   .padding_height = 1, .padding_width = 1};
    check_case(&v, 7);
    fd_case v2 = {.name = "avg pool 2x2 s2 ceil, pad counted", .nx = 2 * 25, .nb = 0, .ny = 2 * 9};
    v2.kind = 5;
    v2.pool = (crisp_pool2d_params){.channels = 2, .input_height = 5, .input_width = 5,
                                    .output_height = 3, .output_width = 3, .kernel_height = 2,
                                    .kernel_width = 2, .stride_height = 2, .stride_width = 2,
                                    .count_include_pad = 1};
    check_case(&v2, 8);
    fd_case mx = {.name = "max pool 3x3 s2 p1", .nx = 2 * 36, .nb = 0, .ny = 2 * 9};
    mx.kind = 6;
    mx.pool = (crisp_pool2d_params){.channels = 2, .input_height = 6, .input_width = 6,
                                    .output_height = 3, .output_width = 3, .kernel_height = 3,
                                    .kernel_width = 3, .stride_height = 2, .stride_width = 2,
                                    .padding_height = 1, .padding_width = 1,
                                    .dilation_height = 1, .dilation_width = 1};
    check_case(&mx, 9);
}

int main(void) {
    test_convs();
    test_elementwise();
    test_pools();
    return check_report();
}
