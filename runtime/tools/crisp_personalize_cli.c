/* crisp-personalize: on-device re-personalisation (runtime/README.md,
 * "Personalisation").
 *
 *   --npy X.npy --labels Y.npy [--names a,b,c]  features of X (model inputs) at the head's
 *       input, a new head fitted on them (crisp_fit_head), labels 0..k-1 named by --names
 *       (default: the label value); a name the file's label map has keeps its class id,
 *       other names get ids after the largest id there.
 *   --classes LIST  re-select classes the full head already has (names or ids of the label
 *       map): the head rows are copied, coverage from SALY printed and stored.
 *   --images DIR [--skip-bad]  one sub-folder of PNG/JPEG/BMP images per class, named by the
 *       class: decoded and preprocessed with the file's PREP, then fitted as --npy.
 *
 * Exit codes as crisp-run: 0 ok, 1 error, 2 usage. */
#define _POSIX_C_SOURCE 200809L
#include "crisp_personalize_cli.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crisp.h"
#include "image_folder.h"
#include "npy.h"

#define USAGE                                                                                   \
    "usage: crisp-personalize MODEL.crisp (--images DIR [--skip-bad] |\n"                      \
    "                         --npy X.npy --labels Y.npy [--names a,b,c] |\n"                    \
    "                         --classes LIST) --out NEW.crisp [--tune head|bias] [--epochs E]\n" \
    "                         [--lr R] [--l2 L] [--threads T] [--seed S] [--min-coverage F]\n"   \
    "                         [--imprint-only]\n"

#define ME "crisp-personalize"

typedef struct options {
    const char *model, *npy, *labels, *names, *classes, *images, *out;
    long epochs, threads;
    unsigned long seed;
    double l2, min_coverage, lr;
    int imprint_only, skip_bad;
    int tune_bias; /* --tune bias */
} options;

typedef struct text {
    char *data;
    size_t size, cap;
    int failed;
} text;

static void add(text *t, const char *s, size_t n) {
    if (t->failed) return;
    if (t->size + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->size + n + 1) cap *= 2;
        char *g = realloc(t->data, cap);
        if (g == NULL) {
            t->failed = 1;
            return;
        }
        t->data = g, t->cap = cap;
    }
    memcpy(t->data + t->size, s, n);
    t->size += n;
    t->data[t->size] = '\0';
}
static void adds(text *t, const char *s) { add(t, s, strlen(s)); }
static void addf(text *t, const char *fmt, double v) {
    char b[64];
    snprintf(b, sizeof b, fmt, v);
    adds(t, b);
}
static void add_json_string(text *t, const char *s) {
    adds(t, "\"");
    for (; *s; s++) {
        const unsigned char c = (unsigned char)*s;
        char e[8];
        if (c == '"' || c == '\\') snprintf(e, sizeof e, "\\%c", c);
        else if (c < 0x20) snprintf(e, sizeof e, "\\u%04x", c);
        else e[0] = (char)c, e[1] = '\0';
        adds(t, e);
    }
    adds(t, "\"");
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    const long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || errno != 0 || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}
static int parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    const double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno != 0 || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

/* Returns -1 to continue, or an exit code. */
static int parse_args(int argc, char **argv, options *o, FILE *out, FILE *err) {
    memset(o, 0, sizeof *o);
    o->threads = 1;
    o->min_coverage = 0.5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(USAGE, out);
            return 0;
        }
        if (strcmp(a, "--imprint-only") == 0) {
            o->imprint_only = 1;
            continue;
        }
        if (strcmp(a, "--skip-bad") == 0) {
            o->skip_bad = 1;
            continue;
        }
        static const char *const valued[] = {"--npy", "--labels", "--names", "--classes",
                                              "--images", "--out", "--epochs", "--l2",
                                              "--threads", "--seed", "--min-coverage", "--tune",
                                              "--lr"};
        int known = -1;
        for (int k = 0; k < (int)(sizeof valued / sizeof valued[0]); k++)
            if (strcmp(a, valued[k]) == 0) known = k;
        if (known >= 0) {
            if (i + 1 >= argc) {
                fprintf(err, ME ": error: %s needs a value\n" USAGE, a);
                return 2;
            }
            const char *v = argv[++i];
            long n;
            double d;
            int ok = 1;
            switch (known) {
            case 0: o->npy = v; break;
            case 1: o->labels = v; break;
            case 2: o->names = v; break;
            case 3: o->classes = v; break;
            case 4: o->images = v; break;
            case 5: o->out = v; break;
            case 6: ok = parse_long(v, 1, 100000, &o->epochs); break;
            case 7: ok = parse_double(v, &d); o->l2 = d; break;
            case 8: ok = parse_long(v, 1, 256, &o->threads); break;
            case 9: ok = parse_long(v, 0, 4294967295L, &n); o->seed = (unsigned long)n; break;
            case 10: ok = parse_double(v, &d) && d >= 0 && d <= 1; o->min_coverage = d; break;
            case 11:
                ok = strcmp(v, "head") == 0 || strcmp(v, "bias") == 0;
                o->tune_bias = strcmp(v, "bias") == 0;
                break;
            default: ok = parse_double(v, &d) && d > 0; o->lr = d; break;
            }
            if (!ok) {
                fprintf(err, ME ": error: %s: bad value '%s'%s\n" USAGE, a, v,
                        known == 6   ? " (a whole number 1..100000)"
                        : known == 8 ? " (a whole number 1..256)"
                        : known == 9 ? " (a whole number 0..4294967295)"
                        : known == 10 ? " (a number 0..1)"
                        : known == 11 ? " (head or bias)"
                        : known == 12 ? " (a number > 0)"
                                      : " (a finite number)");
                return 2;
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(err, ME ": error: unknown option '%s'\n" USAGE, a);
            return 2;
        } else if (o->model == NULL) {
            o->model = a;
        } else {
            fprintf(err, ME ": error: unexpected argument '%s'\n" USAGE, a);
            return 2;
        }
    }
    const int modes = (o->npy != NULL || o->labels != NULL) + (o->classes != NULL) +
                      (o->images != NULL);
    const char *problem = o->model == NULL ? "need MODEL.crisp"
                          : o->out == NULL ? "need --out NEW.crisp"
                          : modes != 1     ? "need exactly one of --npy/--labels, --classes, --images"
                          : (o->npy != NULL) != (o->labels != NULL) ? "--npy and --labels go together"
                          : o->names != NULL && o->npy == NULL ? "--names goes with --npy"
                          : o->skip_bad && o->images == NULL ? "--skip-bad goes with --images"
                          : o->tune_bias && o->classes != NULL
                              ? "--tune bias learns from --images or --npy, not --classes"
                          : o->tune_bias && o->imprint_only ? "--imprint-only goes with --tune head"
                          : o->lr != 0 && !o->tune_bias ? "--lr goes with --tune bias"
                                                               : NULL;
    if (problem != NULL) {
        fprintf(err, ME ": error: %s\n" USAGE, problem);
        return 2;
    }
    return -1;
}

/* Splits a comma-separated list in place; returns the count (items point into s).
 * items NULL: only counts, s unchanged. */
static size_t split(char *s, char **items, size_t cap) {
    size_t n = 0;
    if (items == NULL) {
        for (n = 1; *s; s++) n += *s == ',';
        return n;
    }
    for (char *p = s;; p++) {
        char *start = p;
        while (*p && *p != ',') p++;
        if (n < cap) items[n] = start;
        n++;
        if (*p == '\0') break;
        *p = '\0';
    }
    return n;
}

/* The label map's index of `name`, or -1. */
static long find_name(const crisp_model *m, uint32_t labels, const char *name) {
    for (uint32_t i = 0; i < labels; i++) {
        int32_t id;
        const char *n;
        if (crisp_model_get_label(m, i, &id, &n) == CRISP_OK && strcmp(n, name) == 0) return i;
    }
    return -1;
}

/* PROV says the head was reduced to the user's classes ("head": {"reduced": true}) or the
 * file is already personalised: re-selection needs the full head. A light scan, not a
 * JSON parser: the packer writes these keys. */
static const char *not_full_head(const char *prov) {
    const char *h = strstr(prov, "\"head\"");
    if (h != NULL) {
        h += 6;
        while (*h == ' ' || *h == '\n' || *h == '\t' || *h == '\r' || *h == ':') h++;
        if (*h == '{') {
            const char *end = strchr(h, '}');
            const char *r = strstr(h, "\"reduced\"");
            if (r != NULL && (end == NULL || r < end)) {
                r += 9;
                while (*r == ' ' || *r == ':' || *r == '\n' || *r == '\t') r++;
                if (strncmp(r, "true", 4) == 0)
                    return "its provenance says the head was reduced to the user's classes";
            }
        }
    }
    if (strstr(prov, "\"personalized\"") != NULL)
        return "it is already personalised (its head holds only the user's classes)";
    return NULL;
}

static void list_some_classes(FILE *err, const crisp_model *m, uint32_t labels) {
    for (uint32_t i = 0; i < labels && i < 5; i++) {
        int32_t id;
        const char *n;
        crisp_model_get_label(m, i, &id, &n);
        fprintf(err, "%s'%s' (%d)", i ? ", " : "", n, (int)id);
    }
    if (labels > 5) fprintf(err, ", ... (%u classes)", (unsigned)labels);
}

typedef struct plan {
    uint32_t classes;
    float *weight, *bias;
    float *stage_biases; /* --tune bias: the tuned conv biases (crisp_model_get_stage_op order) */
    uint32_t tuned_ops, stage_first, stage_pool;
    int32_t *ids;
    char **names;   /* each malloc'd */
    text prov;
} plan;

static void plan_free(plan *p) {
    for (uint32_t i = 0; p->names && i < p->classes; i++) free(p->names[i]);
    free(p->names), free(p->ids), free(p->weight), free(p->bias), free(p->prov.data);
    free(p->stage_biases);
}

static void prov_classes(plan *p, const float *coverage) {
    adds(&p->prov, "\"classes\": [");
    for (uint32_t i = 0; i < p->classes; i++) {
        adds(&p->prov, i ? ", {\"id\": " : "{\"id\": ");
        addf(&p->prov, "%.0f", (double)p->ids[i]);
        adds(&p->prov, ", \"name\": ");
        add_json_string(&p->prov, p->names[i]);
        if (coverage != NULL && coverage[i] >= 0) {
            adds(&p->prov, ", \"coverage\": ");
            addf(&p->prov, "%.6g", (double)coverage[i]);
        }
        adds(&p->prov, "}");
    }
    adds(&p->prov, "]");
}

/* --classes: copy the rows of the full head. */
static int reselect(const options *o, const crisp_model *m, const crisp_head_info *h, plan *p,
                    FILE *out, FILE *err) {
    const char *prov;
    crisp_model_get_provenance(m, &prov, NULL);
    const char *why = not_full_head(prov);
    if (why != NULL) {
        fprintf(err, ME ": error: %s: --classes re-selects from the full classifier head, but %s; "
                "repack the base model with --keep-head\n", o->model, why);
        return 1;
    }
    crisp_model_info info;
    crisp_model_get_info(m, &info);
    const uint32_t labels = info.label_count;
    char *list = strdup(o->classes);
    const size_t n = list ? split(list, NULL, 0) : 0;
    char **items = calloc(n ? n : 1, sizeof *items);
    long *rows = calloc(n ? n : 1, sizeof *rows);
    float *coverage = calloc(n ? n : 1, sizeof *coverage);
    float *full_w = malloc((size_t)h->classes * h->features * sizeof *full_w);
    float *full_b = malloc((size_t)h->classes * sizeof *full_b);
    int rc = 1;
    if (list == NULL || items == NULL || rows == NULL || coverage == NULL || full_w == NULL ||
        full_b == NULL) {
        fprintf(err, ME ": error: out of memory\n");
        goto done;
    }
    split(list, items, n);
    for (size_t i = 0; i < n; i++) {
        long row = labels ? find_name(m, labels, items[i]) : -1;
        long id;
        if (row < 0 && parse_long(items[i], INT32_MIN, INT32_MAX, &id)) {
            for (uint32_t k = 0; k < labels && row < 0; k++) {
                int32_t cid;
                const char *nm;
                crisp_model_get_label(m, k, &cid, &nm);
                if (cid == id) row = k;
            }
            if (labels == 0 && id >= 0 && id < (long)h->classes) row = id;
        }
        if (row < 0) {
            fprintf(err, ME ": error: %s: unknown class '%s' in --classes; the full head has ",
                    o->model, items[i]);
            if (labels) list_some_classes(err, m, labels);
            else fprintf(err, "classes 0..%u (no label map)", (unsigned)h->classes - 1);
            fputc('\n', err);
            goto done;
        }
        for (size_t k = 0; k < i; k++)
            if (rows[k] == row) {
                fprintf(err, ME ": error: --classes names class '%s' twice ('%s' and '%s')\n",
                        items[k], items[k], items[i]);
                goto done;
            }
        rows[i] = row;
    }
    if (crisp_model_get_head_weights(m, full_w, (size_t)h->classes * h->features, full_b,
                                     h->classes) != CRISP_OK) {
        fprintf(err, ME ": error: %s\n", crisp_last_error());
        goto done;
    }
    p->classes = (uint32_t)n;
    p->weight = malloc(n * h->features * sizeof *p->weight);
    p->bias = malloc(n * sizeof *p->bias);
    p->ids = malloc(n * sizeof *p->ids);
    p->names = calloc(n, sizeof *p->names);
    if (!p->weight || !p->bias || !p->ids || !p->names) {
        fprintf(err, ME ": error: out of memory\n");
        goto done;
    }
    int has_saly = 1;
    for (size_t i = 0; i < n; i++) {
        memcpy(p->weight + i * h->features, full_w + (size_t)rows[i] * h->features,
               h->features * sizeof *full_w);
        p->bias[i] = full_b[rows[i]];
        char idtext[16];
        const char *name = idtext;
        if (labels) {
            crisp_model_get_label(m, (uint32_t)rows[i], &p->ids[i], &name);
        } else {
            p->ids[i] = (int32_t)rows[i];
            snprintf(idtext, sizeof idtext, "%ld", rows[i]);
        }
        p->names[i] = strdup(name);
        coverage[i] = -1;
        if (has_saly) {
            const crisp_status s = crisp_model_class_coverage(m, p->ids[i], &coverage[i]);
            if (s != CRISP_OK && strstr(crisp_last_error(), "no SALY") != NULL) {
                has_saly = 0;
                coverage[i] = -1;
            } else if (s != CRISP_OK) {
                fprintf(err, ME ": error: %s: %s\n", o->model, crisp_last_error());
                goto done;
            }
        }
        if (has_saly) {
            fprintf(out, "class '%s' (%d): coverage %.3f\n", p->names[i], (int)p->ids[i],
                    (double)coverage[i]);
            if (coverage[i] < o->min_coverage)
                fprintf(err, ME ": warning: class '%s' (%d): only %.1f %% of its block saliency "
                        "survived pruning (below --min-coverage %.2f); expect lower accuracy "
                        "on it\n", p->names[i], (int)p->ids[i], 100.0 * coverage[i],
                        o->min_coverage);
        }
    }
    if (!has_saly) fprintf(out, "coverage: not available (the file has no SALY section)\n");
    adds(&p->prov, "{\"mode\": \"reselect\", ");
    prov_classes(p, has_saly ? coverage : NULL);
    adds(&p->prov, ", \"min_coverage\": ");
    addf(&p->prov, "%.6g", o->min_coverage);
    adds(&p->prov, "}");
    rc = 0;
done:
    free(list), free(items), free(rows), free(coverage), free(full_w), free(full_b);
    return rc;
}

/* What the frozen part of the network computes per input: value id and elements. */
typedef struct target {
    uint32_t value, elements;
} target;

/* The value t (the head's features, or the stage's input for --tune bias) of X, in
 * batches of 16. */
static float *compute_features(const options *o, const crisp_model *m, const target *h,
                               const npy_array *x, uint64_t n, uint64_t in_n, FILE *err) {
    float *f = malloc((size_t)(n * h->elements) * sizeof *f);
    crisp_session *s = NULL;
    if (f == NULL) {
        fprintf(err, ME ": error: out of memory for %llu x %u features\n",
                (unsigned long long)n, (unsigned)h->elements);
        return NULL;
    }
    if (crisp_session_create_with_options(
            m, &(crisp_session_options){(uint32_t)o->threads, 0}, &s) != CRISP_OK) {
        fprintf(err, ME ": error: %s\n", crisp_last_error());
        free(f);
        return NULL;
    }
    for (uint64_t i = 0; i < n; i += 16) {
        const uint64_t b = n - i < 16 ? n - i : 16;
        if (crisp_session_run_to(s, h->value, x->data + i * in_n, (size_t)(b * in_n),
                                 f + i * h->elements, (size_t)(b * h->elements)) != CRISP_OK) {
            fprintf(err, ME ": error: %s\n", crisp_last_error());
            free(f);
            f = NULL;
            break;
        }
    }
    crisp_session_free(s);
    return f;
}

/* What a fit learns from: the features (n x head features) of n inputs, their labels
 * 0..k-1 (k = p->classes, named by p->names) and how many inputs were skipped. */
typedef struct samples {
    float *features;
    int32_t *labels;
    uint64_t n, skipped;
} samples;

static void samples_free(samples *s) {
    free(s->features), free(s->labels);
    *s = (samples){0};
}

/* Every class named, no name twice, and at least 2 inputs a class. */
static int check_classes(const plan *p, const samples *s, const char *where, FILE *err) {
    size_t *count = calloc(p->classes, sizeof *count);
    if (count == NULL) {
        fprintf(err, ME ": error: out of memory\n");
        return 1;
    }
    for (uint64_t i = 0; i < s->n; i++) count[s->labels[i]]++;
    int rc = 0;
    for (uint32_t c = 0; c < p->classes && rc == 0; c++) {
        if (p->names[c] == NULL || p->names[c][0] == '\0') {
            fprintf(err, ME ": error: %s: class %u has an empty name\n", where, (unsigned)c);
            rc = 1;
        }
        for (uint32_t d = 0; d < c && rc == 0; d++)
            if (strcmp(p->names[c], p->names[d]) == 0) {
                fprintf(err, ME ": error: %s: '%s' names classes %u and %u\n", where,
                        p->names[c], (unsigned)d, (unsigned)c);
                rc = 1;
            }
        if (rc == 0 && count[c] < 2) {
            fprintf(err, ME ": error: %s: class '%s' has %zu usable image%s; every class needs "
                    "at least 2\n", where, p->names[c], count[c], count[c] == 1 ? "" : "s");
            rc = 1;
        }
    }
    free(count);
    return rc;
}

/* --npy X.npy --labels Y.npy [--names]: X's rows are model inputs. */
static int from_npy(const options *o, const crisp_model *m, const target *h,
                    const crisp_model_info *in, plan *p, samples *s, double *t_features,
                    FILE *err) {
    const crisp_model_info info = *in;
    char msg[600], shape[128];
    npy_array x = {0};
    npy_int_array y = {0};
    char *name_list = NULL;
    int rc = 1;
    if (npy_read(o->npy, &x, msg, sizeof msg) != 0 ||
        npy_read_ints(o->labels, &y, msg, sizeof msg) != 0) {
        fprintf(err, ME ": error: %s\n", msg);
        goto done;
    }
    /* X: (n, input dims...) or (n, input_elements). */
    uint64_t per = 1;
    for (uint32_t i = 1; i < x.rank; i++) per *= x.dims[i];
    int fits = x.rank >= 2 && per == info.input_elements &&
               (x.rank == 2 || x.rank == info.input_rank + 1);
    for (uint32_t i = 0; fits && x.rank == info.input_rank + 1 && x.rank > 2 && i < info.input_rank; i++)
        fits = x.dims[i + 1] == info.input_dims[i];
    if (!fits || x.dims[0] == 0) {
        fprintf(err, ME ": error: %s: shape %s does not fit the model: expected (n, ", o->npy,
                npy_shape_text(shape, sizeof shape, x.rank, x.dims));
        for (uint32_t i = 0; i < info.input_rank; i++)
            fprintf(err, i ? ",%u" : "%u", (unsigned)info.input_dims[i]);
        fprintf(err, ") or (n, %llu) float32 model inputs, n >= 1\n",
                (unsigned long long)info.input_elements);
        goto done;
    }
    const uint64_t n = x.dims[0];
    if (y.rank != 1 || y.dims[0] != n) {
        fprintf(err, ME ": error: %s: shape %s, expected (%llu,): one label per row of %s\n",
                o->labels, npy_shape_text(shape, sizeof shape, y.rank, y.dims),
                (unsigned long long)n, o->npy);
        goto done;
    }
    int64_t k = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (y.data[i] < 0 || y.data[i] > 65535) {
            fprintf(err, ME ": error: %s: label %lld at index %llu; labels are 0..k-1\n",
                    o->labels, (long long)y.data[i], (unsigned long long)i);
            goto done;
        }
        if (y.data[i] + 1 > k) k = y.data[i] + 1;
    }
    /* Names: --names or the label values. */
    p->classes = (uint32_t)k;
    p->names = calloc((size_t)k, sizeof *p->names);
    p->ids = malloc((size_t)k * sizeof *p->ids);
    s->labels = malloc((size_t)n * sizeof *s->labels);
    if (p->names == NULL || p->ids == NULL || s->labels == NULL) {
        fprintf(err, ME ": error: out of memory\n");
        goto done;
    }
    s->n = n;
    for (uint64_t i = 0; i < n; i++) s->labels[i] = (int32_t)y.data[i];
    if (o->names != NULL) {
        name_list = strdup(o->names);
        const size_t given = name_list ? split(name_list, NULL, 0) : 0;
        if (given != (size_t)k) {
            fprintf(err, ME ": error: --names has %zu names, but %s has %lld classes (labels "
                    "0..%lld)\n", given, o->labels, (long long)k, (long long)k - 1);
            goto done;
        }
        char **items = calloc((size_t)k, sizeof *items);
        if (items != NULL) split(name_list, items, (size_t)k);
        for (int64_t c = 0; items != NULL && c < k; c++) p->names[c] = strdup(items[c]);
        free(items);
    } else {
        for (int64_t c = 0; c < k; c++) {
            char t[24];
            snprintf(t, sizeof t, "%lld", (long long)c);
            p->names[c] = strdup(t);
        }
    }
    if (check_classes(p, s, o->names != NULL ? "--names" : o->labels, err) != 0) goto done;
    const double t0 = now_s();
    s->features = compute_features(o, m, h, &x, n, info.input_elements, err);
    *t_features = now_s() - t0;
    rc = s->features == NULL;
done:
    npy_free(&x);
    free(y.data), free(name_list);
    return rc;
}

/* --images DIR: decode and preprocess each image with the file's PREP, 16 at a time, into
 * features; a bad image stops the run, or is skipped and named with --skip-bad. Only one
 * batch of inputs is held at a time, so memory grows with the features, not the images. */
static int from_images(const options *o, const crisp_model *m, const target *h,
                       const crisp_model_info *info, plan *p, samples *s, double *t_features,
                       FILE *err) {
    enum { BATCH = 16 };
    crisp_preprocess prep;
    if (crisp_model_get_preprocess(m, &prep) != CRISP_OK || !prep.present) {
        fprintf(err, ME ": error: %s: the file stores no image preprocessing (PREP), so images "
                "cannot be turned into its inputs; repack it with `crisp-edge pack ... --mean "
                "R,G,B --std R,G,B` (or pass preprocessed inputs with --npy/--labels)\n",
                o->model);
        return 1;
    }
    char msg[600];
    image_folder folder;
    if (image_folder_read(o->images, &folder, msg, sizeof msg) != 0) {
        fprintf(err, ME ": error: %s\n", msg);
        return 1;
    }
    const uint64_t in_n = info->input_elements;
    uint64_t total = 0;
    for (size_t c = 0; c < folder.count; c++) total += folder.classes[c].count;
    float *batch = malloc((size_t)(BATCH * in_n) * sizeof *batch);
    crisp_session *session = NULL;
    int rc = 1;
    p->classes = (uint32_t)folder.count;
    p->names = calloc(folder.count, sizeof *p->names);
    p->ids = malloc(folder.count * sizeof *p->ids);
    s->features = malloc((size_t)((total ? total : 1) * h->elements) * sizeof *s->features);
    s->labels = malloc((size_t)(total ? total : 1) * sizeof *s->labels);
    if (batch == NULL || p->names == NULL || p->ids == NULL || s->features == NULL ||
        s->labels == NULL) {
        fprintf(err, ME ": error: out of memory for %llu images\n", (unsigned long long)total);
        goto done;
    }
    if (crisp_session_create_with_options(
            m, &(crisp_session_options){(uint32_t)o->threads, 0}, &session) != CRISP_OK) {
        fprintf(err, ME ": error: %s\n", crisp_last_error());
        goto done;
    }
    const double t0 = now_s();
    uint64_t filled = 0;
    for (size_t c = 0; c <= folder.count; c++) {
        const image_class *ic = c < folder.count ? &folder.classes[c] : NULL;
        if (ic != NULL && (p->names[c] = strdup(ic->name)) == NULL) {
            fprintf(err, ME ": error: out of memory\n");
            goto done;
        }
        for (size_t i = 0; ic != NULL && i < ic->count; i++) {
            if (crisp_image_load(m, ic->files[i], batch + filled * in_n, (size_t)in_n) !=
                CRISP_OK) {
                if (!o->skip_bad) {
                    fprintf(err, ME ": error: %s; fix or remove the file, or pass --skip-bad "
                            "to continue without it\n", crisp_last_error());
                    goto done;
                }
                fprintf(err, ME ": skipped %s\n", crisp_last_error());
                s->skipped++;
                continue;
            }
            s->labels[s->n + filled] = (int32_t)c;
            if (++filled < BATCH) continue;
            if (crisp_session_run_to(session, h->value, batch, (size_t)(filled * in_n),
                                     s->features + s->n * h->elements,
                                     (size_t)(filled * h->elements)) != CRISP_OK) {
                fprintf(err, ME ": error: %s\n", crisp_last_error());
                goto done;
            }
            s->n += filled, filled = 0;
        }
        if (ic == NULL && filled > 0) { /* the last, partial batch */
            if (crisp_session_run_to(session, h->value, batch, (size_t)(filled * in_n),
                                     s->features + s->n * h->elements,
                                     (size_t)(filled * h->elements)) != CRISP_OK) {
                fprintf(err, ME ": error: %s\n", crisp_last_error());
                goto done;
            }
            s->n += filled, filled = 0;
        }
    }
    *t_features = now_s() - t0;
    rc = check_classes(p, s, o->images, err);
done:
    crisp_session_free(session);
    free(batch);
    image_folder_free(&folder);
    return rc;
}

/* --npy/--labels or --images: fit a new head on the features. */
static int fit(const options *o, const crisp_model *m, const crisp_head_info *h, plan *p,
               double *t_features, double *t_fit, FILE *out, FILE *err) {
    crisp_model_info info;
    crisp_model_get_info(m, &info);
    samples s = {0};
    int rc = 1;
    const int tune = o->tune_bias;
    crisp_stage_info st = {0};
    if (tune && crisp_model_get_stage(m, &st) != CRISP_OK) {
        fprintf(err, ME ": error: %s: --tune bias: %s\n", o->model, crisp_last_error());
        return 1;
    }
    /* Head-only: the head's features; --tune bias: the stage's input (the frozen part runs
     * once per image). */
    const target t = tune ? (target){st.input_value, st.input_elements}
                          : (target){h->feature_value, h->features};
    if ((o->images != NULL ? from_images(o, m, &t, &info, p, &s, t_features, err)
                           : from_npy(o, m, &t, &info, p, &s, t_features, err)) != 0)
        goto done;
    const uint32_t k = p->classes;
    /* Ids: a name the file's label map has keeps its class id; the others get ids after
     * the largest id there. */
    int64_t next = (int64_t)h->classes - 1;
    for (uint32_t i = 0; i < info.label_count; i++) {
        int32_t id;
        const char *nm;
        crisp_model_get_label(m, i, &id, &nm);
        if (i == 0 || id > next) next = id;
    }
    for (uint32_t c = 0; c < k; c++) {
        const long row = find_name(m, info.label_count, p->names[c]);
        if (row >= 0) {
            const char *nm;
            crisp_model_get_label(m, (uint32_t)row, &p->ids[c], &nm);
        } else {
            if (next >= INT32_MAX) {
                fprintf(err, ME ": error: no class id left after %lld\n", (long long)next);
                goto done;
            }
            p->ids[c] = (int32_t)++next;
        }
    }
    p->weight = malloc((size_t)k * h->features * sizeof *p->weight);
    p->bias = malloc((size_t)k * sizeof *p->bias);
    if (p->weight == NULL || p->bias == NULL) {
        fprintf(err, ME ": error: out of memory\n");
        goto done;
    }
    crisp_fit_report r = {0};
    crisp_tune_report tr = {0};
    const double t0 = now_s();
    if (tune) {
        p->stage_biases = malloc((size_t)(st.tuned_biases ? st.tuned_biases : 1) * sizeof(float));
        if (p->stage_biases == NULL) {
            fprintf(err, ME ": error: out of memory\n");
            goto done;
        }
        p->tuned_ops = st.tuned_ops;
        p->stage_first = st.first_op;
        p->stage_pool = st.pool_op;
        const crisp_tune_options to = {(uint32_t)o->epochs, (float)o->lr, (float)o->l2, 0,
                                       (uint32_t)o->seed, CRISP_TUNE_FIT_HEAD};
        if (crisp_tune_biases(m, s.features, s.labels, (size_t)s.n, k, &to, p->weight, p->bias,
                              p->stage_biases, (size_t)st.tuned_biases, &tr) != CRISP_OK) {
            fprintf(err, ME ": error: %s\n", crisp_last_error());
            goto done;
        }
        *t_fit = now_s() - t0;
        fprintf(out, "tune bias: ops %u..%u (%ux%u), %u conv biases (%llu values) + head "
                "(%llu values)\n", (unsigned)st.first_op, (unsigned)st.head_op,
                (unsigned)st.height, (unsigned)st.width, (unsigned)st.tuned_ops,
                (unsigned long long)st.tuned_biases,
                (unsigned long long)k * h->features + k);
        fprintf(out, "tune: %llu images, %u epochs, %u steps, loss %.4f -> %.4f, train accuracy "
                "%.1f %% -> %.1f %%%s\n", (unsigned long long)s.n, (unsigned)tr.epochs,
                (unsigned)tr.steps, (double)tr.loss_before, (double)tr.loss_after,
                100.0 * tr.accuracy_before, 100.0 * tr.accuracy_after,
                tr.kept_start ? " (the tuned loss was higher: kept the head-only start)" : "");
    } else {
        const crisp_fit_options fo = {(uint32_t)o->epochs, (float)o->l2, (uint32_t)o->seed,
                                      o->imprint_only ? CRISP_FIT_IMPRINT_ONLY : 0u};
        if (crisp_fit_head(s.features, s.labels, (size_t)s.n, h->features, k, &fo, p->weight,
                           p->bias, &r) != CRISP_OK) {
            fprintf(err, ME ": error: %s\n", crisp_last_error());
            goto done;
        }
        *t_fit = now_s() - t0;
        fprintf(out, "fit: %llu images, %u iterations, loss %.4f, train accuracy %.1f %%\n",
                (unsigned long long)s.n, (unsigned)r.iterations, (double)r.loss,
                100.0 * r.train_accuracy);
    }
    adds(&p->prov, "{\"mode\": \"fit\", ");
    prov_classes(p, NULL);
    addf(&p->prov, ", \"images\": %.0f", (double)s.n);
    if (o->images != NULL) addf(&p->prov, ", \"skipped\": %.0f", (double)s.skipped);
    addf(&p->prov, ", \"l2\": %.6g", o->l2 == 0 ? 1e-3 : o->l2 < 0 ? 0 : o->l2);
    addf(&p->prov, ", \"seed\": %.0f", (double)o->seed);
    if (tune) {
        adds(&p->prov, ", \"tune\": \"bias\", \"stage\": {\"first_op\": ");
        addf(&p->prov, "%.0f", (double)st.first_op);
        addf(&p->prov, ", \"pool_op\": %.0f", (double)st.pool_op);
        addf(&p->prov, ", \"head_op\": %.0f", (double)st.head_op);
        adds(&p->prov, ", \"tuned_ops\": [");
        for (uint32_t i = 0; i < st.tuned_ops; i++) {
            uint32_t op, ch;
            crisp_model_get_stage_op(m, i, &op, &ch);
            addf(&p->prov, i ? ", %.0f" : "%.0f", (double)op);
        }
        addf(&p->prov, "], \"tuned_biases\": %.0f}", (double)st.tuned_biases);
        addf(&p->prov, ", \"epochs\": %.0f", (double)tr.epochs);
        addf(&p->prov, ", \"lr\": %.6g", o->lr > 0 ? o->lr : 1e-3);
        addf(&p->prov, ", \"steps\": %.0f", (double)tr.steps);
        addf(&p->prov, ", \"loss_before\": %.6g", (double)tr.loss_before);
        addf(&p->prov, ", \"loss\": %.6g", (double)tr.loss_after);
        addf(&p->prov, ", \"train_accuracy_before\": %.6g", (double)tr.accuracy_before);
        addf(&p->prov, ", \"train_accuracy\": %.6g", (double)tr.accuracy_after);
        adds(&p->prov, tr.kept_start ? ", \"kept_start\": true}" : "}");
    } else {
        adds(&p->prov, ", \"tune\": \"head\"");
        addf(&p->prov, ", \"epochs\": %.0f", (double)(o->epochs ? o->epochs : 100));
        adds(&p->prov, o->imprint_only ? ", \"imprint_only\": true" : "");
        addf(&p->prov, ", \"iterations\": %.0f", (double)r.iterations);
        addf(&p->prov, ", \"loss\": %.6g", (double)r.loss);
        addf(&p->prov, ", \"train_accuracy\": %.6g}", (double)r.train_accuracy);
    }
    rc = 0;
done:
    samples_free(&s);
    return rc;
}

int crisp_personalize_main(int argc, char **argv, FILE *out, FILE *err) {
    options o;
    const int parsed = parse_args(argc, argv, &o, out, err);
    if (parsed >= 0) return parsed;
    const double t_start = now_s();
    crisp_model *m;
    if (crisp_model_load_file(o.model, &m) != CRISP_OK) {
        fprintf(err, ME ": error: %s\n", crisp_last_error());
        return 1;
    }
    crisp_head_info h;
    if (crisp_model_get_head(m, &h) != CRISP_OK) {
        fprintf(err, ME ": error: %s: %s\n", o.model, crisp_last_error());
        crisp_model_free(m);
        return 1;
    }
    if (h.dtype == 2) {
        fprintf(err, ME ": error: %s: the head (op %u) is int8: personalisation of int8 models is "
                "not supported yet; personalise the float32 model\n", o.model, (unsigned)h.op);
        crisp_model_free(m);
        return 1;
    }
    plan p = {0};
    double t_features = 0, t_fit = 0;
    int rc = o.classes != NULL ? reselect(&o, m, &h, &p, out, err)
                               : fit(&o, m, &h, &p, &t_features, &t_fit, out, err);
    if (rc == 0 && p.prov.failed) {
        fprintf(err, ME ": error: out of memory\n");
        rc = 1;
    }
    if (rc == 0) {
        const double t0 = now_s();
        const crisp_new_head nh = {p.classes, p.weight, p.bias, p.ids,
                                   (const char *const *)p.names, p.prov.data};
        crisp_new_bias *nb = calloc(p.tuned_ops ? p.tuned_ops : 1, sizeof *nb);
        uint64_t at = 0;
        for (uint32_t i = 0; nb != NULL && i < p.tuned_ops; i++) {
            crisp_model_get_stage_op(m, i, &nb[i].op, &nb[i].count);
            nb[i].values = p.stage_biases + at;
            at += nb[i].count;
        }
        if (nb == NULL || crisp_model_write_tuned(m, &nh, nb, p.tuned_ops, o.out) != CRISP_OK) {
            fprintf(err, ME ": error: %s\n", nb == NULL ? "out of memory" : crisp_last_error());
            rc = 1;
        } else {
            fprintf(out, "wrote %s: %u classes (", o.out, (unsigned)p.classes);
            for (uint32_t i = 0; i < p.classes && i < 8; i++)
                fprintf(out, "%s%s", i ? ", " : "", p.names[i]);
            fprintf(out, "%s)%s; seconds: features %.3f, %s %.3f, write %.3f, total %.3f\n",
                    p.classes > 8 ? ", ..." : "", o.classes ? ", rows copied (no fit)" : "",
                    t_features, o.tune_bias ? "tune" : "fit", t_fit, now_s() - t0, now_s() - t_start);
        }
        free(nb);
    }
    plan_free(&p);
    crisp_model_free(m);
    return rc;
}
