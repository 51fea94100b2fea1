/* crisp_tune_biases: TinyTL-style bias tuning of the last stage (src/stage.c)
 * together with the head (runtime/README.md, "Personalisation").
 *
 * The frozen part of the network runs once per image (the caller passes the
 * stage's input, from crisp_session_run_to); each step then runs the stage
 * forward per sample from that cached input, keeping its activations, and
 * backward only through the stage (src/backward.c), stopping at its input.
 * Objective, as crisp_fit_head's, now also over the tuned conv biases beta:
 *
 *   L(W, b, beta) = mean_i CE(W f_i(beta) + b, y_i) + l2/2 ||W||_F^2
 *
 * Adam (beta1 0.9, beta2 0.999, eps 1e-8, bias-corrected; state and master
 * parameters in double) on mini-batches of `batch` samples, each epoch in an
 * order drawn by Fisher-Yates from a xorshift seeded with `seed`; the head in
 * double, activations in float. Single-threaded, every sum in a fixed order:
 * the result depends only on the inputs and the options. The loss is
 * evaluated over all samples before and after; if it rose, the start is
 * returned (so tuning never ends worse on its training objective than the
 * head it started from). */
#include "tune.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backward.h"
#include "format.h"
#include "head.h"
#include "stage.h"
#include "status.h"

#define DEFAULT_EPOCHS 10u
#define DEFAULT_LR 1e-3
#define DEFAULT_BATCH 8u
#define DEFAULT_L2 1e-3
#define MAX_EPOCHS 100000u

typedef struct net_op {
    const crisp_op *op;
    int in0, in1, out; /* slots; in1 -1 for one-input ops */
    crisp_bw_conv conv;
    const float *bias; /* CONV2D: what the forward adds (tuned: inside net->biases) */
    size_t tuned_at;   /* tuned CONV2D: offset in net->biases; else SIZE_MAX */
} net_op;

struct crisp_stage_net {
    const crisp_model *m;
    crisp_stage st;
    uint32_t count; /* ops first .. head - 1 */
    net_op *ops;
    int32_t *slot_of; /* value id -> slot, -1 outside the stage */
    uint32_t slots;
    size_t *slot_n;
    float **act, **grad;
    float *memory; /* activations and gradients of every slot */
    int input_slot, feature_slot;
    float *col; /* im2col scratch, the largest conv's */
    float *biases;
    size_t bias_count;
    size_t features;
    double *dfeatures; /* the features' gradient before it is rounded to float */
};

static crisp_status nomem(void) { return crisp_error(CRISP_ERR_NOMEM, "bias tuning: out of memory"); }

void crisp_stage_net_free(crisp_stage_net *n) {
    if (n == NULL) return;
    for (uint32_t k = 0; n->ops != NULL && k < n->count; k++) crisp_bw_conv_free(&n->ops[k].conv);
    free(n->ops), free(n->slot_of), free(n->slot_n), free(n->act), free(n->grad);
    free(n->memory), free(n->col), free(n->biases), free(n->dfeatures);
    crisp_stage_free(&n->st);
    free(n);
}

/* The conv's weights decoded (dense OHWI; a hybrid tensor expanded into a
 * temporary dense copy, freed once the kept values are taken). */
static crisp_status init_conv(const crisp_model *m, uint32_t k, net_op *o) {
    const crisp_op *op = &m->ops[k];
    const crisp_tensor *t = &m->tensors[op->weight];
    if (t->encoding == CRISP_ENCODING_DENSE_F32)
        return crisp_bw_conv_init(&o->conv, &op->k.conv, t->data);
    if (t->encoding != CRISP_ENCODING_HYBRID_F32)
        return crisp_error(CRISP_ERR_UNSUPPORTED,
                           "bias tuning: op %u (CONV2D) has int8 weights; bias tuning needs a "
                           "float32 model",
                           (unsigned)k);
    float *dense = malloc((size_t)t->elements * sizeof *dense);
    if (dense == NULL) return nomem();
    crisp_hybrid_expand(t, dense);
    const crisp_status s = crisp_bw_conv_init(&o->conv, &op->k.conv, dense);
    free(dense);
    return s;
}

crisp_status crisp_stage_net_create(const crisp_model *m, crisp_stage_net **out) {
    *out = NULL;
    crisp_stage_net *n = calloc(1, sizeof *n);
    if (n == NULL) return nomem();
    crisp_status s = crisp_find_stage(m, &n->st);
    if (s != CRISP_OK) {
        free(n);
        return s;
    }
    n->m = m;
    const crisp_stage *st = &n->st;
    n->count = st->head - st->first;
    n->ops = calloc(n->count, sizeof *n->ops);
    n->slot_of = malloc((size_t)m->value_count * sizeof *n->slot_of);
    n->slot_n = calloc(n->count + 1, sizeof *n->slot_n);
    n->act = calloc(n->count + 1, sizeof *n->act);
    n->grad = calloc(n->count + 1, sizeof *n->grad);
    n->bias_count = (size_t)st->tuned_elements;
    n->biases = malloc((n->bias_count ? n->bias_count : 1) * sizeof *n->biases);
    if (n->ops == NULL || n->slot_of == NULL || n->slot_n == NULL || n->act == NULL ||
        n->grad == NULL || n->biases == NULL) {
        crisp_stage_net_free(n);
        return nomem();
    }
    for (uint32_t v = 0; v < m->value_count; v++) n->slot_of[v] = -1;
    n->slot_of[st->input_value] = 0;
    n->slot_n[0] = (size_t)m->values[st->input_value].elements;
    n->slots = 1;
    size_t total = n->slot_n[0], col = 0, tuned_at = 0;
    uint32_t next_tuned = 0;
    for (uint32_t i = 0; i < n->count; i++) {
        const uint32_t k = st->first + i;
        const crisp_op *op = &m->ops[k];
        net_op *o = &n->ops[i];
        o->op = op;
        o->in0 = n->slot_of[op->inputs[0]];
        o->in1 = op->input_count == 2 ? n->slot_of[op->inputs[1]] : -1;
        o->out = (int)n->slots;
        o->tuned_at = SIZE_MAX;
        n->slot_of[op->output] = (int32_t)n->slots;
        n->slot_n[n->slots++] = (size_t)m->values[op->output].elements;
        total += (size_t)m->values[op->output].elements;
        if (op->kind != CRISP_OP_CONV2D) continue;
        if ((s = init_conv(m, k, o)) != CRISP_OK) {
            crisp_stage_net_free(n);
            return s;
        }
        const size_t scratch = crisp_bw_conv_scratch(&o->conv);
        if (scratch > col) col = scratch;
        if (op->bias == CRISP_NO_ID) continue;
        const crisp_tensor *b = &m->tensors[op->bias];
        if (next_tuned < st->tuned_count && st->tuned[next_tuned] == k) {
            o->tuned_at = tuned_at;
            memcpy(n->biases + tuned_at, b->data, (size_t)b->elements * sizeof(float));
            o->bias = n->biases + tuned_at;
            tuned_at += (size_t)b->elements;
            next_tuned++;
        } else {
            o->bias = b->data;
        }
    }
    n->input_slot = 0;
    n->feature_slot = n->slot_of[m->ops[st->head].inputs[0]];
    n->features = (size_t)m->values[m->ops[st->head].inputs[0]].elements;
    n->memory = malloc(2 * (total ? total : 1) * sizeof *n->memory);
    n->col = malloc((col ? col : 1) * sizeof *n->col);
    n->dfeatures = malloc((n->features ? n->features : 1) * sizeof *n->dfeatures);
    if (n->memory == NULL || n->col == NULL || n->dfeatures == NULL) {
        crisp_stage_net_free(n);
        return nomem();
    }
    float *p = n->memory;
    for (uint32_t i = 0; i < n->slots; i++) n->act[i] = p, p += n->slot_n[i];
    for (uint32_t i = 0; i < n->slots; i++) n->grad[i] = p, p += n->slot_n[i];
    *out = n;
    return CRISP_OK;
}

size_t crisp_stage_net_input_size(const crisp_stage_net *n) { return n->slot_n[0]; }
size_t crisp_stage_net_features(const crisp_stage_net *n) { return n->features; }
size_t crisp_stage_net_bias_count(const crisp_stage_net *n) { return n->bias_count; }
void crisp_stage_net_get_biases(const crisp_stage_net *n, float *out) {
    if (n->bias_count) memcpy(out, n->biases, n->bias_count * sizeof *out);
}
void crisp_stage_net_set_biases(crisp_stage_net *n, const float *b) {
    if (n->bias_count) memcpy(n->biases, b, n->bias_count * sizeof *b);
}

/* (C, H, W) of a slot's value. */
static const crisp_value *value_in(const crisp_stage_net *n, const crisp_op *op, int which) {
    return &n->m->values[op->inputs[which]];
}

static void forward(crisp_stage_net *n) {
    for (uint32_t i = 0; i < n->count; i++) {
        const net_op *o = &n->ops[i];
        const crisp_op *op = o->op;
        const float *x = n->act[o->in0];
        float *y = n->act[o->out];
        const size_t len = n->slot_n[o->out];
        switch ((enum crisp_op_kind)op->kind) {
        case CRISP_OP_CONV2D: crisp_bw_conv_forward(&o->conv, x, o->bias, y, n->col); break;
        case CRISP_OP_ADD: crisp_bw_add_forward(len, x, n->act[o->in1], y, op->k.minmax); break;
        case CRISP_OP_RELU:
        case CRISP_OP_RELU6: crisp_bw_clamp_forward(len, x, y, op->k.minmax); break;
        case CRISP_OP_MAX_POOL2D: crisp_bw_maxpool_forward(&op->k.pool, x, y); break;
        case CRISP_OP_AVG_POOL2D: crisp_bw_avgpool_forward(&op->k.pool, x, y); break;
        case CRISP_OP_ADAPTIVE_AVG_POOL2D: crisp_bw_adaptive_avgpool_forward(&op->k.pool, x, y); break;
        case CRISP_OP_GLOBAL_AVG_POOL: {
            const crisp_value *in = value_in(n, op, 0);
            crisp_bw_global_avgpool_forward(in->dims[0], (size_t)in->dims[1] * in->dims[2], x, y);
            break;
        }
        default: memcpy(y, x, len * sizeof *y); break; /* RESHAPE (crisp_find_stage) */
        }
    }
}

/* From the features' gradient back to the stage input (not computed). */
static void backward(crisp_stage_net *n, double *dbiases) {
    for (uint32_t i = n->count; i-- > 0;) {
        net_op *o = &n->ops[i];
        const crisp_op *op = o->op;
        float *dy = n->grad[o->out];
        float *dx = o->in0 == n->input_slot ? NULL : n->grad[o->in0];
        const size_t len = n->slot_n[o->out];
        switch ((enum crisp_op_kind)op->kind) {
        case CRISP_OP_CONV2D:
            crisp_bw_conv_backward(&o->conv, n->act[o->out], dy,
                                   o->tuned_at == SIZE_MAX ? NULL : dbiases + o->tuned_at, dx,
                                   n->col);
            break;
        case CRISP_OP_ADD: {
            crisp_bw_clamp_mask(len, n->act[o->out], dy, op->k.minmax);
            float *dx2 = o->in1 == n->input_slot ? NULL : n->grad[o->in1];
            for (size_t k = 0; dx != NULL && k < len; k++) dx[k] += dy[k];
            for (size_t k = 0; dx2 != NULL && k < len; k++) dx2[k] += dy[k];
            break;
        }
        case CRISP_OP_RELU:
        case CRISP_OP_RELU6:
            crisp_bw_clamp_mask(len, n->act[o->out], dy, op->k.minmax);
            for (size_t k = 0; dx != NULL && k < len; k++) dx[k] += dy[k];
            break;
        default:
            if (dx == NULL) break;
            switch ((enum crisp_op_kind)op->kind) {
            case CRISP_OP_MAX_POOL2D:
                crisp_bw_maxpool_backward(&op->k.pool, n->act[o->in0], dy, dx);
                break;
            case CRISP_OP_AVG_POOL2D: crisp_bw_avgpool_backward(&op->k.pool, dy, dx); break;
            case CRISP_OP_ADAPTIVE_AVG_POOL2D:
                crisp_bw_adaptive_avgpool_backward(&op->k.pool, dy, dx);
                break;
            case CRISP_OP_GLOBAL_AVG_POOL: {
                const crisp_value *in = value_in(n, op, 0);
                crisp_bw_global_avgpool_backward(in->dims[0], (size_t)in->dims[1] * in->dims[2],
                                                 dy, dx);
                break;
            }
            default:
                for (size_t k = 0; k < len; k++) dx[k] += dy[k]; /* RESHAPE */
                break;
            }
            break;
        }
    }
}

double crisp_stage_net_sample(crisp_stage_net *n, const float *x, int32_t y,
                              const double *w, const double *b, uint32_t classes, double *dw,
                              double *db, double *dbiases, int *correct, double *logits) {
    memcpy(n->act[n->input_slot], x, n->slot_n[0] * sizeof *x);
    forward(n);
    const float *f = n->act[n->feature_slot];
    const size_t F = n->features;
    double mx = -INFINITY, z_local[64];
    double *z = logits != NULL ? logits : classes <= 64 ? z_local : NULL;
    double *z_heap = NULL;
    if (z == NULL) z = z_heap = malloc(classes * sizeof *z);
    if (z == NULL) return NAN; /* reported by the caller as out of memory */
    uint32_t best = 0;
    for (uint32_t c = 0; c < classes; c++) {
        double s = b[c];
        for (size_t j = 0; j < F; j++) s += w[c * F + j] * f[j];
        z[c] = s;
        if (s > mx) mx = s, best = c;
    }
    double sum = 0;
    for (uint32_t c = 0; c < classes; c++) sum += exp(z[c] - mx);
    const double lse = mx + log(sum);
    const double loss = lse - z[y];
    *correct = best == (uint32_t)y;
    if (dw != NULL) {
        for (uint32_t s = 0; s < n->slots; s++) memset(n->grad[s], 0, n->slot_n[s] * sizeof(float));
        float *df = n->grad[n->feature_slot];
        double *dfd = n->dfeatures;
        memset(dfd, 0, F * sizeof *dfd);
        for (uint32_t c = 0; c < classes; c++) {
            const double g = exp(z[c] - lse) - (c == (uint32_t)y ? 1.0 : 0.0);
            db[c] += g;
            for (size_t j = 0; j < F; j++) {
                dw[c * F + j] += g * f[j];
                dfd[j] += g * w[c * F + j];
            }
        }
        for (size_t j = 0; j < F; j++) df[j] = (float)dfd[j];
        backward(n, dbiases);
    }
    free(z_heap);
    return loss;
}

/* xorshift32, as the tests' generator: a fixed stream per seed. */
static uint32_t next_random(uint32_t *state) {
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

/* Mean loss and accuracy over every sample at the net's biases and head (w, b). */
static crisp_status evaluate(crisp_stage_net *n, const float *x, const int32_t *y, size_t count,
                             const double *w, const double *b, uint32_t classes, double l2,
                             double *loss, double *accuracy) {
    const size_t in_n = n->slot_n[0], F = n->features;
    double ce = 0;
    size_t right = 0;
    for (size_t i = 0; i < count; i++) {
        int ok;
        const double l = crisp_stage_net_sample(n, x + i * in_n, y[i], w, b, classes, NULL, NULL,
                                                NULL, &ok, NULL);
        if (isnan(l)) return nomem();
        ce += l;
        right += (size_t)ok;
    }
    double pen = 0;
    for (size_t k = 0; k < (size_t)classes * F; k++) pen += w[k] * w[k];
    *loss = ce / (double)count + 0.5 * l2 * pen;
    *accuracy = (double)right / (double)count;
    return CRISP_OK;
}

/* CRISP_TUNE_FIT_HEAD: crisp_fit_head on the stage's features at the file's biases. */
static crisp_status fit_start(crisp_stage_net *n, const float *x, const int32_t *labels,
                              size_t count, uint32_t classes, const crisp_tune_options *o,
                              float *weight, float *bias) {
    const size_t in_n = n->slot_n[0], F = n->features;
    if (F > SIZE_MAX / sizeof(float) / count) return nomem();
    float *features = malloc(count * F * sizeof *features);
    double *zero = calloc((size_t)classes * F + classes, sizeof *zero);
    if (features == NULL || zero == NULL) {
        free(features), free(zero);
        return nomem();
    }
    for (size_t i = 0; i < count; i++) {
        int ok;
        crisp_stage_net_sample(n, x + i * in_n, 0, zero, zero + (size_t)classes * F, classes,
                               NULL, NULL, NULL, &ok, NULL);
        memcpy(features + i * F, n->act[n->feature_slot], F * sizeof *features);
    }
    const crisp_fit_options fo = {0, o->l2, o->seed, 0};
    const crisp_status s =
        crisp_fit_head(features, labels, count, (uint32_t)F, classes, &fo, weight, bias, NULL);
    free(features), free(zero);
    return s;
}

static int all_finite(const float *p, size_t n, size_t *at) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i])) {
            *at = i;
            return 0;
        }
    return 1;
}

crisp_status crisp_tune_biases(const crisp_model *m, const float *x, const int32_t *labels,
                               size_t count, uint32_t classes, const crisp_tune_options *options,
                               float *weight, float *bias, float *stage_biases,
                               size_t stage_bias_count, crisp_tune_report *report) {
    if (m == NULL || x == NULL || labels == NULL || weight == NULL || bias == NULL)
        return crisp_error(CRISP_ERR_ARGUMENT, "crisp_tune_biases: %s is NULL",
                           m == NULL ? "model" : x == NULL ? "stage_inputs"
                                             : labels == NULL ? "labels"
                                             : weight == NULL ? "weight" : "bias");
    const crisp_tune_options defaults = {0, 0, 0, 0, 0, 0};
    const crisp_tune_options *o = options != NULL ? options : &defaults;
    if ((o->flags & ~CRISP_TUNE_FIT_HEAD) != 0 || o->epochs > MAX_EPOCHS || !(o->lr >= 0) || !isfinite(o->lr) ||
        !isfinite(o->l2))
        return crisp_error(CRISP_ERR_ARGUMENT,
                           "crisp_tune_biases: options: epochs %u (at most %u), lr %g (>= 0, "
                           "finite), l2 %g (finite), flags 0x%X (known: CRISP_TUNE_FIT_HEAD = 0x1)",
                           (unsigned)o->epochs, MAX_EPOCHS, (double)o->lr, (double)o->l2,
                           (unsigned)o->flags);
    if (count == 0 || classes == 0)
        return crisp_error(CRISP_ERR_ARGUMENT, "crisp_tune_biases: %s is 0",
                           count == 0 ? "n" : "classes");
    for (size_t i = 0; i < count; i++)
        if (labels[i] < 0 || (uint32_t)labels[i] >= classes)
            return crisp_error(CRISP_ERR_ARGUMENT,
                               "crisp_tune_biases: labels[%zu] is %d, expected 0..%u", i,
                               (int)labels[i], (unsigned)classes - 1);
    crisp_stage_net *n;
    crisp_status s = crisp_stage_net_create(m, &n);
    if (s != CRISP_OK) return s;
    const size_t in_n = n->slot_n[0], F = n->features, T = n->bias_count;
    const size_t CF = (size_t)classes * F, P = CF + classes + T;
    double *mem = NULL;
    size_t bad;
    if (stage_bias_count != T || (T > 0 && stage_biases == NULL)) {
        s = crisp_error(CRISP_ERR_ARGUMENT,
                        "crisp_tune_biases: stage_bias_count is %zu%s, the stage tunes %zu bias "
                        "elements",
                        stage_bias_count, stage_biases == NULL ? " (stage_biases NULL)" : "", T);
        goto done;
    }
    if (in_n > SIZE_MAX / count) {
        s = crisp_error(CRISP_ERR_ARGUMENT, "crisp_tune_biases: n is too large");
        goto done;
    }
    if (!all_finite(x, count * in_n, &bad)) {
        s = crisp_error(CRISP_ERR_ARGUMENT,
                        "crisp_tune_biases: stage_inputs[%zu] (sample %zu) is not finite", bad,
                        bad / in_n);
        goto done;
    }
    if ((o->flags & CRISP_TUNE_FIT_HEAD) && (s = fit_start(n, x, labels, count, classes, o, weight,
                                                          bias)) != CRISP_OK)
        goto done;
    if (!all_finite(weight, CF, &bad) || !all_finite(bias, classes, &bad)) {
        s = crisp_error(CRISP_ERR_ARGUMENT, "crisp_tune_biases: the start head is not finite");
        goto done;
    }
    const uint32_t epochs = o->epochs ? o->epochs : DEFAULT_EPOCHS;
    const double lr = o->lr > 0 ? o->lr : DEFAULT_LR;
    const double l2 = o->l2 == 0 ? DEFAULT_L2 : o->l2 < 0 ? 0 : o->l2;
    const size_t batch = o->batch ? o->batch : DEFAULT_BATCH;
    /* theta (the master copy: W, b, biases), its gradient, Adam's moments, the start. */
    mem = calloc(5 * P + 1, sizeof *mem);
    size_t *order = malloc(count * sizeof *order);
    float *fb = malloc((T ? T : 1) * sizeof *fb);
    if (mem == NULL || order == NULL || fb == NULL) {
        free(order), free(fb);
        s = nomem();
        goto done;
    }
    double *theta = mem, *grad = theta + P, *m1 = grad + P, *m2 = m1 + P, *start = m2 + P;
    for (size_t k = 0; k < CF; k++) theta[k] = weight[k];
    for (uint32_t c = 0; c < classes; c++) theta[CF + c] = bias[c];
    for (size_t k = 0; k < T; k++) theta[CF + classes + k] = n->biases[k];
    memcpy(start, theta, P * sizeof *theta);
    double loss0, acc0, loss1, acc1;
    if ((s = evaluate(n, x, labels, count, theta, theta + CF, classes, l2, &loss0, &acc0)) !=
        CRISP_OK) {
        free(order), free(fb);
        goto done;
    }
    uint32_t rng = o->seed * 2654435761u + 0x9E3779B9u;
    if (rng == 0) rng = 1;
    for (size_t i = 0; i < count; i++) order[i] = i;
    uint64_t step = 0;
    double pow1 = 1, pow2 = 1;
    for (uint32_t e = 0; e < epochs && s == CRISP_OK; e++) {
        for (size_t i = count; i > 1; i--) {
            const size_t j = next_random(&rng) % i;
            const size_t t = order[i - 1];
            order[i - 1] = order[j], order[j] = t;
        }
        for (size_t at = 0; at < count && s == CRISP_OK; at += batch) {
            const size_t bs = count - at < batch ? count - at : batch;
            memset(grad, 0, P * sizeof *grad);
            for (size_t i = at; i < at + bs; i++) {
                int ok;
                const size_t k = order[i];
                if (isnan(crisp_stage_net_sample(n, x + k * in_n, labels[k], theta, theta + CF,
                                                 classes, grad, grad + CF, grad + CF + classes,
                                                 &ok, NULL)))
                    s = nomem();
            }
            const double inv = 1.0 / (double)bs;
            for (size_t k = 0; k < P; k++) grad[k] *= inv;
            for (size_t k = 0; k < CF; k++) grad[k] += l2 * theta[k];
            step++;
            pow1 *= 0.9, pow2 *= 0.999;
            for (size_t k = 0; k < P; k++) {
                m1[k] = 0.9 * m1[k] + 0.1 * grad[k];
                m2[k] = 0.999 * m2[k] + 0.001 * grad[k] * grad[k];
                const double mhat = m1[k] / (1 - pow1), vhat = m2[k] / (1 - pow2);
                theta[k] -= lr * mhat / (sqrt(vhat) + 1e-8);
            }
            for (size_t k = 0; k < T; k++) fb[k] = (float)theta[CF + classes + k];
            crisp_stage_net_set_biases(n, fb);
        }
    }
    if (s == CRISP_OK)
        s = evaluate(n, x, labels, count, theta, theta + CF, classes, l2, &loss1, &acc1);
    int kept_start = 0;
    if (s == CRISP_OK && !(loss1 <= loss0)) {
        kept_start = 1;
        memcpy(theta, start, P * sizeof *theta);
    }
    if (s == CRISP_OK) {
        for (size_t k = 0; k < CF; k++) weight[k] = (float)theta[k];
        for (uint32_t c = 0; c < classes; c++) bias[c] = (float)theta[CF + c];
        for (size_t k = 0; k < T; k++) stage_biases[k] = (float)theta[CF + classes + k];
        if (report != NULL)
            *report = (crisp_tune_report){epochs, (uint32_t)step, (float)loss0,
                                          (float)(kept_start ? loss0 : loss1), (float)acc0,
                                          (float)(kept_start ? acc0 : acc1), (uint32_t)kept_start};
    }
    free(order), free(fb);
done:
    free(mem);
    crisp_stage_net_free(n);
    return s;
}
