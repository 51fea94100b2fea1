/* crisp-bench --profile: the session times every op (CRISP_SESSION_PROFILE);
 * ops are summed per (kind, kernel) so a table says, e.g., that the depthwise
 * convs take a third of MobileNetV2 on this board. */
#include "bench_profile.h"

#include <stdlib.h>
#include <string.h>

static bench_profile_row *row_of(bench_profile *p, const char *kind, const char *kernel) {
    for (size_t i = 0; i < p->count; i++)
        if (strcmp(p->rows[i].kind, kind) == 0 && strcmp(p->rows[i].kernel, kernel) == 0)
            return &p->rows[i];
    if (p->count == BENCH_PROFILE_MAX_ROWS) return NULL;
    bench_profile_row *r = &p->rows[p->count++];
    memset(r, 0, sizeof *r);
    r->kind = kind, r->kernel = kernel;
    return r;
}

static int by_time_desc(const void *a, const void *b) {
    const bench_profile_row *x = a, *y = b;
    return x->ms < y->ms ? 1 : x->ms > y->ms ? -1 : 0;
}

int bench_profile_run(const crisp_model *model, const crisp_model_info *info, const float *x,
                      float *y, unsigned threads, long runs, bench_profile *p, FILE *err) {
    memset(p, 0, sizeof *p);
    crisp_session *s = NULL;
    const crisp_session_options so = {threads, CRISP_SESSION_PROFILE};
    if (crisp_session_create_with_options(model, &so, &s) != CRISP_OK) {
        fprintf(err, "crisp-bench: error: profile, %u threads: %s\n", threads, crisp_last_error());
        return 0;
    }
    const size_t nx = (size_t)info->input_elements, ny = (size_t)info->output_elements;
    /* One warm-up run, then reset the counts by reading them as the baseline. */
    int ok = crisp_session_run(s, x, nx, y, ny) == CRISP_OK;
    double *base = calloc(info->op_count ? info->op_count : 1, sizeof *base);
    ok = ok && base != NULL;
    for (uint32_t k = 0; ok && k < info->op_count; k++) {
        crisp_op_profile op;
        ok = crisp_session_get_op_profile(s, k, &op) == CRISP_OK;
        if (ok) base[k] = op.seconds;
    }
    for (long i = 0; ok && i < runs; i++) ok = crisp_session_run(s, x, nx, y, ny) == CRISP_OK;
    for (uint32_t k = 0; ok && k < info->op_count; k++) {
        crisp_op_profile op;
        ok = crisp_session_get_op_profile(s, k, &op) == CRISP_OK;
        bench_profile_row *r = ok ? row_of(p, op.kind, op.kernel) : NULL;
        const double ms = 1e3 * (op.seconds - base[k]) / (double)runs;
        p->total_ms += ms;
        if (r == NULL) continue;
        r->ops++;
        r->macs += op.macs, r->effective_macs += op.effective_macs;
        r->ms += ms;
    }
    if (!ok) fprintf(err, "crisp-bench: error: profile: %s\n", crisp_last_error());
    free(base);
    crisp_session_free(s);
    qsort(p->rows, p->count, sizeof p->rows[0], by_time_desc);
    return ok;
}

void bench_profile_print(FILE *out, const bench_profile *p, int json) {
    if (json) {
        fputc('[', out);
        for (size_t i = 0; i < p->count; i++) {
            const bench_profile_row *r = &p->rows[i];
            fprintf(out,
                    "%s{\"kind\": \"%s\", \"kernel\": \"%s\", \"ops\": %u, \"ms\": %.6f, "
                    "\"share\": %.4f, \"macs\": %llu, \"effective_macs\": %llu}",
                    i ? ", " : "", r->kind, r->kernel, r->ops, r->ms,
                    p->total_ms > 0 ? r->ms / p->total_ms : 0.0, (unsigned long long)r->macs,
                    (unsigned long long)r->effective_macs);
        }
        fputc(']', out);
        return;
    }
    fprintf(out, "    %-16s %-16s %4s %10s %7s %14s\n", "op", "kernel", "ops", "ms/sample",
            "share", "eff. GFLOP/s");
    for (size_t i = 0; i < p->count; i++) {
        const bench_profile_row *r = &p->rows[i];
        const double gflops = r->ms > 0 ? 2.0 * (double)r->effective_macs / (r->ms * 1e6) : 0;
        fprintf(out, "    %-16s %-16s %4u %10.3f %6.1f%% ", r->kind, r->kernel, r->ops, r->ms,
                p->total_ms > 0 ? 100.0 * r->ms / p->total_ms : 0.0);
        if (r->effective_macs > 0) fprintf(out, "%14.1f\n", gflops);
        else fputs("             -\n", out);
    }
}
