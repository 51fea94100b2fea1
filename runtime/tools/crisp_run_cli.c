/* clock_gettime is POSIX, not C11. */
#define _POSIX_C_SOURCE 200809L
#include "crisp_run_cli.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crisp.h"
#include "npy.h"

#define USAGE \
    "usage: crisp-run MODEL INPUT.npy [--top-k K] [--output OUT.npy] [--repeat N] [--threads N]\n" \
    "       crisp-run MODEL --image FILE [--image FILE ...] [--skip-bad] [options as above]\n"

#define MAX_IMAGES 1024

typedef struct options {
    const char *model, *input, *output;
    long top_k, repeat, threads;
    const char *images[MAX_IMAGES]; /* --image: PNG/JPEG/BMP through the model's PREP */
    int image_count, skip_bad;
} options;

static int parse_count(const char *text, long *out) {
    char *end;
    long v = strtol(text, &end, 10);
    if (end == text || *end != '\0' || v < 1 || v > 1000000) return 0;
    *out = v;
    return 1;
}

/* Returns -1 to continue, or an exit code. */
static int parse_args(int argc, char **argv, options *o, FILE *out, FILE *err) {
    int positional = 0;
    memset(o, 0, sizeof *o);
    o->top_k = 5;
    o->threads = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(USAGE, out);
            return 0;
        }
        if (strcmp(a, "--skip-bad") == 0) {
            o->skip_bad = 1;
            continue;
        }
        if (strcmp(a, "--image") == 0) {
            if (i + 1 >= argc) {
                fprintf(err, "crisp-run: error: --image needs a value\n" USAGE);
                return 2;
            }
            if (o->image_count == MAX_IMAGES) {
                fprintf(err, "crisp-run: error: at most %d --image files\n", MAX_IMAGES);
                return 2;
            }
            o->images[o->image_count++] = argv[++i];
            continue;
        }
        if (strcmp(a, "--top-k") == 0 || strcmp(a, "--repeat") == 0 ||
            strcmp(a, "--output") == 0 || strcmp(a, "--threads") == 0) {
            if (i + 1 >= argc) {
                fprintf(err, "crisp-run: error: %s needs a value\n" USAGE, a);
                return 2;
            }
            const char *v = argv[++i];
            long *target = strcmp(a, "--top-k") == 0    ? &o->top_k
                           : strcmp(a, "--threads") == 0 ? &o->threads
                                                          : &o->repeat;
            if (strcmp(a, "--output") == 0) {
                o->output = v;
            } else if (!parse_count(v, target)) {
                fprintf(err, "crisp-run: error: %s wants a whole number 1..1000000, got '%s'\n" USAGE,
                        a, v);
                return 2;
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(err, "crisp-run: error: unknown option '%s'\n" USAGE, a);
            return 2;
        } else if (positional < 2) {
            *(positional++ == 0 ? &o->model : &o->input) = a;
        } else {
            fprintf(err, "crisp-run: error: unexpected argument '%s'\n" USAGE, a);
            return 2;
        }
    }
    if (o->image_count > 0 && positional == 2) {
        fprintf(err, "crisp-run: error: give INPUT.npy or --image, not both\n" USAGE);
        return 2;
    }
    if (o->skip_bad && o->image_count == 0) {
        fprintf(err, "crisp-run: error: --skip-bad goes with --image\n" USAGE);
        return 2;
    }
    if (positional < (o->image_count > 0 ? 1 : 2)) {
        fprintf(err, "crisp-run: error: need MODEL and INPUT.npy (or --image FILE)\n" USAGE);
        return 2;
    }
    return -1;
}

/* Batch size if the array is (per-sample shape) or (N, per-sample shape), else 0. */
static uint64_t batch_of(const npy_array *a, const crisp_model_info *info) {
    const uint32_t r = info->input_rank;
    int lead = a->rank == r + 1;
    if (a->rank != r && !lead) return 0;
    for (uint32_t i = 0; i < r; i++)
        if (a->dims[i + (uint32_t)lead] != info->input_dims[i]) return 0;
    return lead ? a->dims[0] : 1;
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int by_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void print_name(FILE *out, const char *s) {
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(out, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(out, "\\x%02x", (unsigned)(unsigned char)*s);
        else fputc(*s, out);
    }
    fputc('"', out);
}

typedef struct scored {
    float score;
    uint64_t index;
} scored;

/* Score descending, NaN last, ties to the lower index: a total order. */
static int by_score(const void *a, const void *b) {
    const scored *x = a, *y = b;
    const int xn = x->score != x->score, yn = y->score != y->score;
    if (xn != yn) return xn - yn;
    if (!xn && x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int print_top_k(FILE *out, const crisp_model *model, const crisp_model_info *info,
                       const float *scores, uint64_t sample, const char *image, long k) {
    const uint64_t n = info->output_elements;
    scored *order = malloc((size_t)n * sizeof *order);
    if (order == NULL) return 0;
    for (uint64_t i = 0; i < n; i++) order[i] = (scored){scores[i], i};
    qsort(order, (size_t)n, sizeof *order, by_score);
    if ((uint64_t)k > n) k = (long)n;
    for (long r = 0; r < k; r++) {
        const uint64_t i = order[r].index;
        if (image != NULL)
            fprintf(out, "image %s: #%ld index %llu", image, r + 1, (unsigned long long)i);
        else
            fprintf(out, "sample %llu: #%ld index %llu", (unsigned long long)sample, r + 1,
                    (unsigned long long)i);
        int32_t class_id;
        const char *name;
        if (info->label_count > 0 &&
            crisp_model_get_label(model, (uint32_t)i, &class_id, &name) == CRISP_OK) {
            fprintf(out, " class %d ", (int)class_id);
            print_name(out, name);
        } else {
            fprintf(out, " class %llu", (unsigned long long)i);
        }
        fprintf(out, " score %.4f\n", (double)order[r].score);
    }
    free(order);
    return 1;
}

/* "(3,32,32) or (N,3,32,32)" */
static const char *expected_text(char *buf, size_t size, const crisp_model_info *info) {
    char dims[96] = "";
    size_t used = 0;
    for (uint32_t i = 0; i < info->input_rank && used < sizeof dims; i++)
        used += (size_t)snprintf(dims + used, sizeof dims - used, i ? ",%u" : "%u",
                                 (unsigned)info->input_dims[i]);
    snprintf(buf, size, "(%s%s) or (N,%s)", dims, info->input_rank == 1 ? "," : "", dims);
    return buf;
}

/* The --image files through the model's PREP into one batch; a file that
 * cannot be read is an error, or with --skip-bad a warning. names[i] is the
 * file of sample i. Returns 0 or the exit code. */
static int read_images(const options *o, crisp_model *model, const crisp_model_info *info,
                       npy_array *a, const char **names, FILE *err) {
    const size_t per = (size_t)info->input_elements;
    memset(a, 0, sizeof *a);
    a->data = malloc((size_t)o->image_count * per * sizeof *a->data);
    if (a->data == NULL) {
        fprintf(err, "crisp-run: error: out of memory for %d images\n", o->image_count);
        return 1;
    }
    uint64_t n = 0;
    for (int i = 0; i < o->image_count; i++) {
        if (crisp_image_load(model, o->images[i], a->data + n * per, per) == CRISP_OK) {
            names[n++] = o->images[i];
        } else if (o->skip_bad) {
            fprintf(err, "crisp-run: warning: skipped: %s\n", crisp_last_error());
        } else {
            fprintf(err, "crisp-run: error: %s%s\n", crisp_last_error(),
                    o->image_count > 1 ? " (--skip-bad to go on without it)" : "");
            npy_free(a);
            return 1;
        }
    }
    if (n == 0) {
        fprintf(err, "crisp-run: error: none of the %d images could be read\n", o->image_count);
        npy_free(a);
        return 1;
    }
    a->rank = info->input_rank + 1;
    a->dims[0] = n;
    for (uint32_t i = 0; i < info->input_rank; i++) a->dims[i + 1] = info->input_dims[i];
    a->count = n * per;
    return 0;
}

static int run(const options *o, crisp_model *model, FILE *out, FILE *err) {
    crisp_model_info info;
    crisp_model_get_info(model, &info);
    char msg[512], want[256], got[128];
    uint64_t out_dims[5];
    npy_array a;
    static const char *names[MAX_IMAGES];
    expected_text(want, sizeof want, &info);
    if (o->image_count > 0) {
        const int rc = read_images(o, model, &info, &a, names, err);
        if (rc != 0) return rc;
    } else if (npy_read(o->input, &a, msg, sizeof msg) != 0) {
        fprintf(err, "crisp-run: error: %s (the model takes '<f4' of shape %s)\n", msg, want);
        return 1;
    }
    const uint64_t batch = batch_of(&a, &info);
    if (batch == 0) {
        fprintf(err, "crisp-run: error: %s: shape %s does not fit the model: expected %s\n",
                o->input, npy_shape_text(got, sizeof got, a.rank, a.dims), want);
        npy_free(&a);
        return 1;
    }
    const size_t out_count = (size_t)(batch * info.output_elements);
    float *y = malloc(out_count * sizeof *y);
    crisp_session *s = NULL;
    int rc = 1;
    if (y == NULL) {
        fprintf(err, "crisp-run: error: out of memory for %zu outputs\n", out_count);
    } else if (crisp_session_create_with_options(
                   model, &(crisp_session_options){(uint32_t)o->threads, 0}, &s) != CRISP_OK ||
               crisp_session_run(s, a.data, (size_t)a.count, y, out_count) != CRISP_OK) {
        fprintf(err, "crisp-run: error: %s\n", crisp_last_error());
    } else {
        rc = 0;
    }
    if (rc == 0 && o->repeat > 0) {
        double *ms = malloc((size_t)o->repeat * sizeof *ms);
        for (long r = 0; ms != NULL && r < o->repeat; r++) {
            const double t0 = now_ms();
            crisp_session_run(s, a.data, (size_t)a.count, y, out_count);
            ms[r] = now_ms() - t0;
        }
        if (ms != NULL) {
            qsort(ms, (size_t)o->repeat, sizeof *ms, by_double);
            const long h = o->repeat / 2;
            const double median = o->repeat % 2 ? ms[h] : (ms[h - 1] + ms[h]) / 2;
            fprintf(out, "median latency: %.3f ms per batch of %llu (%ld runs)\n", median,
                    (unsigned long long)batch, o->repeat);
        }
        free(ms);
    }
    for (uint64_t i = 0; rc == 0 && i < batch; i++)
        if (!print_top_k(out, model, &info, y + i * info.output_elements, i,
                         o->image_count > 0 ? names[i] : NULL, o->top_k)) {
            fprintf(err, "crisp-run: error: out of memory ranking %llu outputs\n",
                    (unsigned long long)info.output_elements);
            rc = 1;
        }
    if (rc == 0 && o->output != NULL) {
        out_dims[0] = batch;
        for (uint32_t i = 0; i < info.output_rank; i++) out_dims[i + 1] = info.output_dims[i];
        if (npy_write(o->output, y, info.output_rank + 1, out_dims, msg, sizeof msg) != 0) {
            fprintf(err, "crisp-run: error: %s\n", msg);
            rc = 1;
        }
    }
    crisp_session_free(s);
    free(y);
    npy_free(&a);
    return rc;
}

int crisp_run_main(int argc, char **argv, FILE *out, FILE *err) {
    options o;
    const int parsed = parse_args(argc, argv, &o, out, err);
    if (parsed >= 0) return parsed;
    crisp_model *model;
    if (crisp_model_load_file(o.model, &model) != CRISP_OK) {
        fprintf(err, "crisp-run: error: %s\n", crisp_last_error());
        return 1;
    }
    const int rc = run(&o, model, out, err);
    crisp_model_free(model);
    return rc;
}
