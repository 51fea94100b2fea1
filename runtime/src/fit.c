/* crisp_fit_head: a linear classifier head from features and labels, for
 * on-device re-personalisation (runtime/README.md, "Personalisation").
 *
 * Objective, minimised over W (classes x dim) and b (classes):
 *
 *   L(W, b) = (1/n) sum_i [ logsumexp_c (W f_i + b)_c - (W f_i + b)_{y_i} ] + (l2/2) ||W||_F^2
 *
 * i.e. torch: F.cross_entropy(f @ W.T + b, y) + l2 / 2 * (W ** 2).sum() (no penalty on b).
 *
 * 1. Weight imprinting: w_c = s * normalize(mean_{i: y_i = c} normalize(f_i)), b = 0, with
 *    s = 10 / mean_i ||f_i|| (so the logits are about 10 x the cosine to the class mean);
 *    CRISP_FIT_IMPRINT_ONLY stops here.
 * 2. L-BFGS (history 10, backtracking Armijo line search) from there, on standardised
 *    features z = (f - mu) / sd with the same objective rewritten exactly in the
 *    reparametrised variables (W' = W diag(sd), b' = b + W mu; the penalty becomes
 *    (l2/2) sum (W'_cj / sd_j)^2), so the optimum is the same and the conditioning better;
 *    W and b are folded back at the end (the runtime computes W f + b on raw features).
 *    Stops after `epochs` iterations, when max |gradient| < 1e-7, or when the loss
 *    changes by less than 1e-12 (relative).
 *
 * Single-threaded, double precision, a fixed order of every operation: the result
 * depends on the inputs only (full batch: nothing random, so not on the seed either). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crisp.h"
#include "status.h"

#define HISTORY 10
#define DEFAULT_EPOCHS 100u
#define MAX_EPOCHS 100000u
#define DEFAULT_L2 1e-3

typedef struct problem {
    const double *z;     /* n x dim standardised features */
    const int32_t *y;
    size_t n;
    size_t dim, classes;
    double l2;
    const double *inv_sd2; /* dim: 1 / sd_j^2 (penalty weights of W') */
    double *p;           /* classes: scratch (probabilities of one sample) */
} problem;

/* Loss and gradient at theta = [W' (classes x dim), b' (classes)]. */
static double loss_grad(const problem *pr, const double *theta, double *grad) {
    const size_t C = pr->classes, D = pr->dim;
    const double *w = theta, *b = theta + C * D;
    double *gw = grad, *gb = grad + C * D;
    memset(grad, 0, (C * D + C) * sizeof *grad);
    double ce = 0;
    for (size_t i = 0; i < pr->n; i++) {
        const double *zi = pr->z + i * D;
        double mx = -INFINITY;
        for (size_t c = 0; c < C; c++) {
            double s = b[c];
            const double *wc = w + c * D;
            for (size_t j = 0; j < D; j++) s += wc[j] * zi[j];
            pr->p[c] = s;
            if (s > mx) mx = s;
        }
        double sum = 0;
        for (size_t c = 0; c < C; c++) sum += exp(pr->p[c] - mx);
        const double lse = mx + log(sum);
        ce += lse - pr->p[pr->y[i]];
        for (size_t c = 0; c < C; c++) {
            const double g = exp(pr->p[c] - lse) - (c == (size_t)pr->y[i] ? 1.0 : 0.0);
            gb[c] += g;
            double *gwc = gw + c * D;
            for (size_t j = 0; j < D; j++) gwc[j] += g * zi[j];
        }
    }
    const double inv_n = 1.0 / (double)pr->n;
    double pen = 0;
    for (size_t c = 0; c < C; c++) {
        gb[c] *= inv_n;
        for (size_t j = 0; j < D; j++) {
            const double v = w[c * D + j];
            gw[c * D + j] = gw[c * D + j] * inv_n + pr->l2 * v * pr->inv_sd2[j];
            pen += v * v * pr->inv_sd2[j];
        }
    }
    return ce * inv_n + 0.5 * pr->l2 * pen;
}

static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* L-BFGS from theta (in place); returns the iterations done, *loss the final loss. */
static uint32_t lbfgs(const problem *pr, double *theta, uint32_t max_iter, double *loss,
                      double *work) {
    const size_t P = pr->classes * pr->dim + pr->classes;
    double *g = work, *d = g + P, *trial = d + P, *g2 = trial + P;
    double *s_hist = g2 + P, *y_hist = s_hist + HISTORY * P;
    double rho[HISTORY], alpha[HISTORY];
    int count = 0, head = 0; /* ring buffer of (s, y) pairs */
    double f = loss_grad(pr, theta, g);
    uint32_t it = 0;
    for (; it < max_iter; it++) {
        double gmax = 0;
        for (size_t k = 0; k < P; k++) gmax = fmax(gmax, fabs(g[k]));
        if (gmax < 1e-7) break;
        /* Two-loop recursion: d = -H g. */
        for (size_t k = 0; k < P; k++) d[k] = -g[k];
        for (int h = 0; h < count; h++) {
            const int idx = (head - 1 - h + HISTORY) % HISTORY;
            alpha[idx] = rho[idx] * dot(s_hist + idx * P, d, P);
            const double *yk = y_hist + idx * P;
            for (size_t k = 0; k < P; k++) d[k] -= alpha[idx] * yk[k];
        }
        double step = 1.0;
        if (count > 0) {
            const int last = (head - 1 + HISTORY) % HISTORY;
            const double *yk = y_hist + last * P;
            const double gamma = 1.0 / (rho[last] * dot(yk, yk, P));
            for (size_t k = 0; k < P; k++) d[k] *= gamma;
            for (int h = count - 1; h >= 0; h--) {
                const int idx = (head - 1 - h + HISTORY) % HISTORY;
                const double beta = rho[idx] * dot(y_hist + idx * P, d, P);
                const double *sk = s_hist + idx * P;
                for (size_t k = 0; k < P; k++) d[k] += (alpha[idx] - beta) * sk[k];
            }
        } else {
            step = 1.0 / fmax(1.0, sqrt(dot(g, g, P)));
        }
        double slope = dot(g, d, P);
        if (!(slope < 0)) { /* not a descent direction: restart from the gradient */
            count = 0;
            for (size_t k = 0; k < P; k++) d[k] = -g[k];
            slope = -dot(g, g, P);
            step = 1.0 / fmax(1.0, sqrt(-slope));
        }
        /* Backtracking Armijo line search. */
        double f2 = f;
        int accepted = 0;
        for (int tries = 0; tries < 40; tries++, step *= 0.5) {
            for (size_t k = 0; k < P; k++) trial[k] = theta[k] + step * d[k];
            f2 = loss_grad(pr, trial, g2);
            if (isfinite(f2) && f2 <= f + 1e-4 * step * slope) {
                accepted = 1;
                break;
            }
        }
        if (!accepted) break;
        double *sk = s_hist + head * P, *yk = y_hist + head * P;
        for (size_t k = 0; k < P; k++) {
            sk[k] = trial[k] - theta[k];
            yk[k] = g2[k] - g[k];
        }
        const double sy = dot(sk, yk, P);
        if (sy > 1e-10 * dot(yk, yk, P)) { /* keep the pair only if it is curved */
            rho[head] = 1.0 / sy;
            head = (head + 1) % HISTORY;
            if (count < HISTORY) count++;
        }
        memcpy(theta, trial, P * sizeof *theta);
        memcpy(g, g2, P * sizeof *g);
        const double change = fabs(f - f2);
        f = f2;
        if (change <= 1e-12 * fmax(1.0, fabs(f))) {
            it++;
            break;
        }
    }
    *loss = f;
    return it;
}

static crisp_status check_args(const float *features, const int32_t *labels, size_t n,
                               uint32_t dim, uint32_t classes, const crisp_fit_options *o,
                               const float *weight, const float *bias, size_t *counts) {
    if (features == NULL || labels == NULL || weight == NULL || bias == NULL)
        return crisp_error(CRISP_ERR_ARGUMENT, "crisp_fit_head: %s is NULL",
                           features == NULL ? "features"
                           : labels == NULL ? "labels"
                           : weight == NULL ? "weight"
                                            : "bias");
    if (n == 0 || dim == 0 || classes == 0)
        return crisp_error(CRISP_ERR_ARGUMENT, "crisp_fit_head: %s is 0",
                           n == 0 ? "n (samples)" : dim == 0 ? "dim" : "classes");
    if (o != NULL && (o->flags & ~CRISP_FIT_IMPRINT_ONLY))
        return crisp_error(CRISP_ERR_ARGUMENT,
                           "crisp_fit_head: options.flags 0x%08X has unknown bits (known: "
                           "CRISP_FIT_IMPRINT_ONLY = 0x1)",
                           (unsigned)o->flags);
    if (o != NULL && (o->l2 != o->l2 || isinf(o->l2)))
        return crisp_error(CRISP_ERR_ARGUMENT, "crisp_fit_head: options.l2 is not finite");
    if (o != NULL && o->epochs > MAX_EPOCHS)
        return crisp_error(CRISP_ERR_ARGUMENT, "crisp_fit_head: options.epochs is %u, at most %u",
                           (unsigned)o->epochs, MAX_EPOCHS);
    if ((size_t)dim > SIZE_MAX / sizeof(double) / n / 2 || (size_t)classes > SIZE_MAX / dim / 32)
        return crisp_error(CRISP_ERR_NOMEM, "crisp_fit_head: %zu x %u features are too many", n,
                           (unsigned)dim);
    for (size_t i = 0; i < n; i++) {
        if (labels[i] < 0 || (uint32_t)labels[i] >= classes)
            return crisp_error(CRISP_ERR_ARGUMENT,
                               "crisp_fit_head: sample %zu has label %d, expected 0..%u", i,
                               (int)labels[i], (unsigned)classes - 1);
        counts[labels[i]]++;
    }
    for (uint32_t c = 0; c < classes; c++)
        if (counts[c] < 2)
            return crisp_error(CRISP_ERR_ARGUMENT,
                               "crisp_fit_head: class %u has %zu sample%s; every class needs at "
                               "least 2",
                               (unsigned)c, counts[c], counts[c] == 1 ? "" : "s");
    for (size_t i = 0; i < n * dim; i++)
        if (!isfinite(features[i]))
            return crisp_error(CRISP_ERR_ARGUMENT,
                               "crisp_fit_head: feature %zu of sample %zu is not finite", i % dim,
                               i / dim);
    return CRISP_OK;
}

/* Weight imprinting into w (classes x dim, double); b = 0. */
static void imprint(const float *f, const int32_t *y, size_t n, size_t D, size_t C, double *w) {
    memset(w, 0, C * D * sizeof *w);
    double norm_sum = 0;
    for (size_t i = 0; i < n; i++) {
        const float *fi = f + i * D;
        double nn = 0;
        for (size_t j = 0; j < D; j++) nn += (double)fi[j] * fi[j];
        nn = sqrt(nn);
        norm_sum += nn;
        if (nn == 0) continue;
        double *wc = w + (size_t)y[i] * D;
        for (size_t j = 0; j < D; j++) wc[j] += fi[j] / nn;
    }
    const double mean_norm = norm_sum / (double)n;
    const double scale = mean_norm > 0 ? 10.0 / mean_norm : 1.0;
    for (size_t c = 0; c < C; c++) {
        double *wc = w + c * D;
        const double nn = sqrt(dot(wc, wc, D));
        for (size_t j = 0; j < D; j++) wc[j] = nn > 0 ? scale * wc[j] / nn : 0;
    }
}

crisp_status crisp_fit_head(const float *features, const int32_t *labels, size_t n, uint32_t dim,
                            uint32_t classes, const crisp_fit_options *options, float *weight,
                            float *bias, crisp_fit_report *report) {
    const crisp_fit_options defaults = {0, 0, 0, 0};
    const crisp_fit_options *o = options != NULL ? options : &defaults;
    size_t *counts = calloc(classes ? classes : 1, sizeof *counts);
    if (counts == NULL) return crisp_error(CRISP_ERR_NOMEM, "crisp_fit_head: out of memory");
    crisp_status st = check_args(features, labels, n, dim, classes, o, weight, bias, counts);
    free(counts);
    if (st != CRISP_OK) return st;
    const size_t D = dim, C = classes, P = C * D + C;
    const double l2 = o->l2 == 0 ? DEFAULT_L2 : o->l2 < 0 ? 0.0 : (double)o->l2;
    const uint32_t epochs = o->epochs == 0 ? DEFAULT_EPOCHS : o->epochs;
    const int imprint_only = (o->flags & CRISP_FIT_IMPRINT_ONLY) != 0;

    double *w = malloc(C * D * sizeof *w);
    double *z = imprint_only ? NULL : malloc(n * D * sizeof *z);
    double *mu = calloc(D, sizeof *mu), *sd = calloc(D, sizeof *sd);
    double *inv_sd2 = malloc(D * sizeof *inv_sd2), *theta = malloc(P * sizeof *theta);
    double *work = imprint_only ? NULL : malloc((4 + 2 * HISTORY) * P * sizeof *work);
    double *p = malloc(C * sizeof *p);
    if (w == NULL || (!imprint_only && (z == NULL || work == NULL)) || mu == NULL ||
        sd == NULL || inv_sd2 == NULL || theta == NULL || p == NULL) {
        st = crisp_error(CRISP_ERR_NOMEM,
                         "crisp_fit_head: out of memory for %zu x %zu features and %zu "
                         "parameters",
                         n, D, P);
        goto done;
    }
    imprint(features, labels, n, D, C, w);
    for (size_t j = 0; j < D; j++) {
        for (size_t i = 0; i < n; i++) mu[j] += features[i * D + j];
        mu[j] /= (double)n;
        for (size_t i = 0; i < n; i++) {
            const double e = features[i * D + j] - mu[j];
            sd[j] += e * e;
        }
        sd[j] = sqrt(sd[j] / (double)n);
        if (!(sd[j] > 1e-12 * fmax(1.0, fabs(mu[j])))) sd[j] = 1.0; /* a constant feature */
        inv_sd2[j] = 1.0 / (sd[j] * sd[j]);
    }
    /* Into the standardised variables: W' = W diag(sd), b' = b + W mu (b = 0). */
    for (size_t c = 0; c < C; c++) {
        double bc = 0;
        for (size_t j = 0; j < D; j++) {
            theta[c * D + j] = w[c * D + j] * sd[j];
            bc += w[c * D + j] * mu[j];
        }
        theta[C * D + c] = bc;
    }
    uint32_t iterations = 0;
    double loss = 0;
    if (!imprint_only) {
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < D; j++) z[i * D + j] = (features[i * D + j] - mu[j]) / sd[j];
        const problem pr = {z, labels, n, D, C, l2, inv_sd2, p};
        iterations = lbfgs(&pr, theta, epochs, &loss, work);
    }
    /* Back to raw features: W = W' / sd, b = b' - W mu. */
    for (size_t c = 0; c < C; c++) {
        double bc = theta[C * D + c];
        for (size_t j = 0; j < D; j++) {
            const double wj = theta[c * D + j] / sd[j];
            w[c * D + j] = wj;
            bc -= wj * mu[j];
        }
        for (size_t j = 0; j < D; j++) weight[c * D + j] = (float)w[c * D + j];
        bias[c] = imprint_only ? 0.0f : (float)bc;
    }
    /* Loss (imprint only: computed here) and accuracy of the float head as written. */
    size_t correct = 0;
    double ce = 0, pen = 0;
    for (size_t i = 0; i < n; i++) {
        size_t best = 0;
        double mx = -INFINITY;
        for (size_t c = 0; c < C; c++) {
            double s = bias[c];
            for (size_t j = 0; j < D; j++) s += (double)weight[c * D + j] * features[i * D + j];
            p[c] = s;
            if (s > mx) mx = s, best = c;
        }
        double sum = 0;
        for (size_t c = 0; c < C; c++) sum += exp(p[c] - mx);
        ce += mx + log(sum) - p[labels[i]];
        correct += best == (size_t)labels[i];
    }
    for (size_t k = 0; k < C * D; k++) pen += (double)weight[k] * weight[k];
    if (imprint_only) loss = ce / (double)n + 0.5 * l2 * pen;
    if (report != NULL) {
        report->iterations = iterations;
        report->loss = (float)loss;
        report->train_accuracy = (float)((double)correct / (double)n);
    }
done:
    free(w), free(z), free(mu), free(sd), free(inv_sd2), free(theta), free(work), free(p);
    return st;
}
