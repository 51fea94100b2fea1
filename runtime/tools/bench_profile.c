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
    const size_t slots = info->op_count ? info->op_count : 1;
    double *base = calloc(slots, sizeof *base);
    p->op_ms = calloc(slots, sizeof *p->op_ms);
    p->op_kind = calloc(slots, sizeof *p->op_kind);
    p->op_kernel = calloc(slots, sizeof *p->op_kernel);
    p->op_macs = calloc(slots, sizeof *p->op_macs);
    p->op_effective_macs = calloc(slots, sizeof *p->op_effective_macs);
    ok = ok && base != NULL && p->op_ms != NULL && p->op_kind != NULL && p->op_kernel != NULL &&
         p->op_macs != NULL && p->op_effective_macs != NULL;
    if (ok) p->op_count = info->op_count;
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
        if (ok) {
            p->op_ms[k] = ms, p->op_macs[k] = op.macs;
            p->op_effective_macs[k] = op.effective_macs;
            p->op_kind[k] = op.kind, p->op_kernel[k] = op.kernel;
        }
        if (r == NULL) continue;
        r->ops++;
        r->macs += op.macs, r->effective_macs += op.effective_macs;
        r->ms += ms;
    }
    if (!ok) {
        fprintf(err, "crisp-bench: error: profile: %s\n", crisp_last_error());
        bench_profile_free(p);
    }
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

void bench_profile_print_ops(FILE *out, const bench_profile *const *p, const unsigned *threads,
                             size_t n) {
    if (n == 0) return;
    /* Effective MACs and GFLOP/s (at the first thread count) per op: where a
     * model's time goes against what each op executes. */
    fprintf(out, "  per op, ms per sample%s:\n    %4s %-16s %-18s %8s %9s %8s",
            n > 1 ? " (x: the first thread count's time over this one's)" : "", "op", "kind",
            "kernel", "MMACs", "eff MMACs", "GFLOP/s");
    for (size_t i = 0; i < n; i++) {
        char label[24];
        snprintf(label, sizeof label, "%u thr", threads[i]);
        fprintf(out, " %10s", label);
        if (i > 0) fprintf(out, " %6s", "x");
    }
    fputc('\n', out);
    for (uint32_t k = 0; k < p[0]->op_count; k++) {
        int shown = 0;
        for (size_t i = 0; i < n; i++) shown |= k < p[i]->op_count && p[i]->op_ms[k] >= 1e-3;
        if (!shown) continue;
        const double eff = (double)p[0]->op_effective_macs[k], first = p[0]->op_ms[k];
        fprintf(out, "    %4u %-16s %-18s %8.1f %9.2f", k, p[0]->op_kind[k], p[0]->op_kernel[k],
                (double)p[0]->op_macs[k] / 1e6, eff / 1e6);
        if (eff > 0 && first > 0) fprintf(out, " %8.1f", 2.0 * eff / (first * 1e6));
        else fprintf(out, " %8s", "-");
        for (size_t i = 0; i < n; i++) {
            const double ms = k < p[i]->op_count ? p[i]->op_ms[k] : 0.0;
            fprintf(out, " %10.3f", ms);
            if (i > 0) {
                if (ms > 0) fprintf(out, " %5.2fx", p[0]->op_ms[k] / ms);
                else fputs("      -", out);
            }
        }
        fputc('\n', out);
    }
}

void bench_profile_free(bench_profile *p) {
    free(p->op_ms);
    free(p->op_kind);
    free(p->op_kernel);
    free(p->op_macs);
    free(p->op_effective_macs);
    p->op_ms = NULL, p->op_kind = p->op_kernel = NULL, p->op_macs = p->op_effective_macs = NULL;
    p->op_count = 0;
}
