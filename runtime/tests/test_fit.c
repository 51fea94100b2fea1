/* crisp_fit_head: separable data is fitted to 100 % train accuracy; on
 * overlapping data the result is the optimum of the documented objective
 * (its gradient, computed here in the raw variables, vanishes; the reported
 * loss is that objective); the same inputs give bitwise the same head,
 * whatever the seed and however often; imprint-only gives the scaled,
 * normalised class means; bad input is an error naming the class, sample or
 * option. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "crisp.h"

CHECK_DEFINE_COUNTERS;

enum { D = 16, C = 4, PER = 12, N = C * PER };

/* Class c: mean m_c (entries in [-spread, spread]) plus uniform noise. */
static void make_data(float *f, int32_t *y, float spread, float noise, unsigned seed) {
    unsigned rng = seed;
    float means[C][D];
    for (int c = 0; c < C; c++)
        for (int j = 0; j < D; j++) means[c][j] = spread * check_rand_float(&rng);
    for (int i = 0; i < N; i++) {
        y[i] = i % C;
        for (int j = 0; j < D; j++) f[i * D + j] = 2.0f + means[y[i]][j] + noise * check_rand_float(&rng);
    }
}

/* The objective and its gradient's largest entry, in double, raw variables. */
static double objective(const float *f, const int32_t *y, const float *w, const float *b,
                        double l2, double *gmax) {
    double gw[C * D] = {0}, gb[C] = {0}, ce = 0, pen = 0;
    for (int i = 0; i < N; i++) {
        double z[C], mx = -INFINITY, sum = 0;
        for (int c = 0; c < C; c++) {
            z[c] = b[c];
            for (int j = 0; j < D; j++) z[c] += (double)w[c * D + j] * f[i * D + j];
            mx = fmax(mx, z[c]);
        }
        for (int c = 0; c < C; c++) sum += exp(z[c] - mx);
        ce += mx + log(sum) - z[y[i]];
        for (int c = 0; c < C; c++) {
            const double g = exp(z[c] - mx) / sum - (c == y[i]);
            gb[c] += g / N;
            for (int j = 0; j < D; j++) gw[c * D + j] += g * f[i * D + j] / N;
        }
    }
    *gmax = 0;
    for (int k = 0; k < C * D; k++) {
        pen += (double)w[k] * w[k];
        *gmax = fmax(*gmax, fabs(gw[k] + l2 * w[k]));
    }
    for (int c = 0; c < C; c++) *gmax = fmax(*gmax, fabs(gb[c]));
    return ce / N + 0.5 * l2 * pen;
}

static void test_separable(void) {
    float f[N * D], w[C * D], b[C];
    int32_t y[N];
    make_data(f, y, 3.0f, 0.5f, 11);
    crisp_fit_report r;
    CHECK(crisp_fit_head(f, y, N, D, C, NULL, w, b, &r) == CRISP_OK, "%s", crisp_last_error());
    CHECK(r.train_accuracy == 1.0f, "separable: train accuracy %g", r.train_accuracy);
    CHECK(r.iterations >= 1 && r.iterations <= 100, "iterations %u", r.iterations);
    double gmax;
    const double loss = objective(f, y, w, b, 1e-3, &gmax);
    CHECK(fabs(loss - r.loss) <= 1e-4 * fmax(1, loss), "reported loss %g, objective %g", r.loss,
          loss);
}

static void test_optimum(void) {
    float f[N * D], w[C * D], b[C], w2[C * D], b2[C];
    int32_t y[N];
    make_data(f, y, 0.6f, 1.0f, 12); /* overlapping classes */
    crisp_fit_report r, r2;
    const crisp_fit_options o = {300, 1e-2f, 1, 0};
    CHECK(crisp_fit_head(f, y, N, D, C, &o, w, b, &r) == CRISP_OK, "%s", crisp_last_error());
    double gmax;
    const double loss = objective(f, y, w, b, 1e-2, &gmax);
    CHECK(gmax < 1e-4, "gradient at the result: max %g (loss %g, %u iterations)", gmax, loss,
          r.iterations);
    CHECK(fabs(loss - r.loss) <= 1e-5 * fmax(1, loss), "reported loss %g, objective %g", r.loss,
          loss);
    CHECK(r.train_accuracy > 0.5f, "accuracy %g", r.train_accuracy);
    /* Determinism: the same inputs, again and with other seeds, bitwise. */
    for (uint32_t seed = 1; seed <= 3; seed++) {
        const crisp_fit_options o2 = {300, 1e-2f, seed * 7919u, 0};
        CHECK(crisp_fit_head(f, y, N, D, C, &o2, w2, b2, &r2) == CRISP_OK, "%s",
              crisp_last_error());
        CHECK(memcmp(w, w2, sizeof w) == 0 && memcmp(b, b2, sizeof b) == 0 &&
                  r.iterations == r2.iterations && r.loss == r2.loss,
              "seed %u: a different head", seed);
    }
    /* l2 < 0: no penalty; the reported loss has none either. */
    const crisp_fit_options none = {50, -1.0f, 0, 0};
    CHECK(crisp_fit_head(f, y, N, D, C, &none, w2, b2, &r2) == CRISP_OK, "%s", crisp_last_error());
    CHECK(fabs(objective(f, y, w2, b2, 0, &gmax) - r2.loss) < 1e-5, "l2 none: loss %g", r2.loss);
    /* Report may be NULL; epochs = 1 does one iteration. */
    const crisp_fit_options one = {1, 0, 0, 0};
    CHECK(crisp_fit_head(f, y, N, D, C, &one, w2, b2, NULL) == CRISP_OK, "%s", crisp_last_error());
    CHECK(crisp_fit_head(f, y, N, D, C, &one, w2, b2, &r2) == CRISP_OK && r2.iterations == 1,
          "epochs 1: %u iterations", r2.iterations);
}

static void test_imprint(void) {
    float f[N * D], w[C * D], b[C];
    int32_t y[N];
    make_data(f, y, 1.0f, 1.0f, 13);
    crisp_fit_report r;
    const crisp_fit_options o = {0, 0, 0, CRISP_FIT_IMPRINT_ONLY};
    CHECK(crisp_fit_head(f, y, N, D, C, &o, w, b, &r) == CRISP_OK, "%s", crisp_last_error());
    CHECK(r.iterations == 0, "imprint only: %u iterations", r.iterations);
    double mean_norm = 0;
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int j = 0; j < D; j++) s += (double)f[i * D + j] * f[i * D + j];
        mean_norm += sqrt(s) / N;
    }
    for (int c = 0; c < C; c++) {
        double m[D] = {0}, mn = 0;
        for (int i = 0; i < N; i++) {
            if (y[i] != c) continue;
            double s = 0;
            for (int j = 0; j < D; j++) s += (double)f[i * D + j] * f[i * D + j];
            for (int j = 0; j < D; j++) m[j] += f[i * D + j] / sqrt(s);
        }
        for (int j = 0; j < D; j++) mn += m[j] * m[j];
        for (int j = 0; j < D; j++) {
            const double want = 10.0 / mean_norm * m[j] / sqrt(mn);
            CHECK(fabs(w[c * D + j] - want) <= 1e-6 * fabs(want) + 1e-7,
                  "class %d weight %d: %g, expected %g", c, j, w[c * D + j], want);
        }
        CHECK(b[c] == 0.0f, "imprint bias %g", b[c]);
    }
    double gmax;
    CHECK(fabs(objective(f, y, w, b, 1e-3, &gmax) - r.loss) < 1e-5, "imprint loss %g", r.loss);
}

static void test_errors(void) {
    float f[N * D], w[C * D], b[C];
    int32_t y[N];
    make_data(f, y, 1.0f, 1.0f, 14);
    y[2] = 0, y[6] = 0, y[10] = 1; /* class 2 keeps samples 14, 18, ...: 10 left */
    int32_t few[N];
    for (int i = 0; i < N; i++) few[i] = i == 5 ? 3 : i % 3; /* class 3: one sample */
    CHECK(crisp_fit_head(f, few, N, D, C, NULL, w, b, NULL) == CRISP_ERR_ARGUMENT &&
              strstr(crisp_last_error(), "class 3 has 1 sample; every class needs at least 2"),
          "got %s", crisp_last_error());
    for (int i = 0; i < N; i++) few[i] = i % 3; /* class 3: none */
    CHECK(crisp_fit_head(f, few, N, D, C, NULL, w, b, NULL) == CRISP_ERR_ARGUMENT &&
              strstr(crisp_last_error(), "class 3 has 0 samples"),
          "got %s", crisp_last_error());
    few[7] = 4;
    CHECK(crisp_fit_head(f, few, N, D, C, NULL, w, b, NULL) == CRISP_ERR_ARGUMENT &&
              strstr(crisp_last_error(), "sample 7 has label 4, expected 0..3"),
          "got %s", crisp_last_error());
    few[7] = -1;
    CHECK(crisp_fit_head(f, few, N, D, C, NULL, w, b, NULL) == CRISP_ERR_ARGUMENT,
          "negative label");
    f[3 * D + 5] = NAN;
    CHECK(crisp_fit_head(f, y, N, D, C, NULL, w, b, NULL) == CRISP_ERR_ARGUMENT &&
              strstr(crisp_last_error(), "feature 5 of sample 3 is not finite"),
          "got %s", crisp_last_error());
    f[3 * D + 5] = 0;
    const crisp_fit_options bad = {0, 0, 0, 0x10};
    CHECK(crisp_fit_head(f, y, N, D, C, &bad, w, b, NULL) == CRISP_ERR_ARGUMENT &&
              strstr(crisp_last_error(), "options.flags"),
          "got %s", crisp_last_error());
    const crisp_fit_options nan_l2 = {0, NAN, 0, 0};
    CHECK(crisp_fit_head(f, y, N, D, C, &nan_l2, w, b, NULL) == CRISP_ERR_ARGUMENT, "NaN l2");
    CHECK(crisp_fit_head(NULL, y, N, D, C, NULL, w, b, NULL) == CRISP_ERR_ARGUMENT, "NULL f");
    CHECK(crisp_fit_head(f, y, 0, D, C, NULL, w, b, NULL) == CRISP_ERR_ARGUMENT, "n 0");
    CHECK(crisp_fit_head(f, y, N, D, C, NULL, w, NULL, NULL) == CRISP_ERR_ARGUMENT, "NULL bias");
}

int main(void) {
    test_separable();
    test_optimum();
    test_imprint();
    test_errors();
    return check_report();
}
