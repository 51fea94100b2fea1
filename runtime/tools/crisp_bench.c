/*
 * crisp-bench MODEL.crisp [MODEL.crisp ...] [--threads LIST] [--warmup N] [--runs N]
 *             [--input zeros|random] [--seed N] [--cold MIB] [--json] [--profile]
 *             [--profile-ops]
 *
 * Measures each model at each thread count on this machine: warm-up runs, then
 * --runs timed single-sample inferences on the same input, reported as median,
 * p90 and p99 latency, throughput and the process's peak resident memory.
 * `crisp-edge bench` runs it on a board (through SSH) and reads the --json
 * output; a person reads the table. --profile adds, per thread count, where the
 * time goes by op kind and kernel (bench_profile.c), from separate runs so the
 * timed ones carry no profiling overhead; --profile-ops also each op's time at
 * every thread count side by side, with the speedup over the first (which ops
 * gain from more threads). --cold MIB writes a byte to every cache line of a
 * MIB-MiB buffer before each run, so each inference starts with the model's
 * weights and activations out of the caches, as when other work shares the
 * core between frames or `make bench` interleaves the peers (its peak RSS
 * then includes that buffer). Needs nothing but libcrisp, libc and libm.
 */
/* clock_gettime and getrusage are POSIX, not C11. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_profile.h"
#include "bench_stats.h"
#include "crisp.h"

#define USAGE                                                                             \
    "usage: crisp-bench MODEL.crisp [MODEL.crisp ...] [--threads LIST] [--warmup N]\n"     \
    "                   [--runs N] [--input zeros|random] [--seed N] [--cold MIB] [--json]\n" \
    "                   [--profile] [--profile-ops]\n"                                        \
    "  LIST: thread counts, e.g. 1,2,4 or 1..4 (default 1); --runs >= 10 (default 20);\n" \
    "  --warmup default 3; --input default random (deterministic for a --seed);\n"         \
    "  --cold: MiB written between runs to evict the caches (default 0: warm runs)\n"

#define MAX_MODELS 64

#if defined(__aarch64__)
#define BENCH_ARCH "aarch64"
#elif defined(__x86_64__)
#define BENCH_ARCH "x86_64"
#else
#define BENCH_ARCH "other"
#endif

typedef struct options {
    const char *models[MAX_MODELS];
    size_t model_count;
    unsigned threads[BENCH_MAX_THREAD_COUNTS];
    size_t thread_count;
    long warmup, runs, cold_mib;
    unsigned long seed;
    int random_input, json, profile, profile_ops;
} options;

static int parse_long(const char *text, long lo, long hi, long *out) {
    char *end;
    const long v = strtol(text, &end, 10);
    if (end == text || *end != '\0' || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

static int usage_error(FILE *err, const char *what, const char *arg) {
    fprintf(err, "crisp-bench: error: %s%s%s\n" USAGE, what, arg ? arg : "", arg ? "'" : "");
    return 2;
}

/* Returns -1 to continue, or an exit code. */
static int parse_args(int argc, char **argv, options *o, FILE *out, FILE *err) {
    memset(o, 0, sizeof *o);
    o->threads[0] = 1;
    o->thread_count = 1;
    o->warmup = 3;
    o->runs = 20;
    o->seed = 1;
    o->random_input = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(USAGE, out);
            return 0;
        }
        if (strcmp(a, "--json") == 0) {
            o->json = 1;
            continue;
        }
        if (strcmp(a, "--profile") == 0) {
            o->profile = 1;
            continue;
        }
        if (strcmp(a, "--profile-ops") == 0) {
            o->profile = o->profile_ops = 1;
            continue;
        }
        const int takes_value = strcmp(a, "--threads") == 0 || strcmp(a, "--warmup") == 0 ||
                                strcmp(a, "--runs") == 0 || strcmp(a, "--input") == 0 ||
                                strcmp(a, "--seed") == 0 || strcmp(a, "--cold") == 0;
        if (takes_value) {
            if (i + 1 >= argc) {
                fprintf(err, "crisp-bench: error: %s needs a value\n" USAGE, a);
                return 2;
            }
            const char *v = argv[++i];
            long n;
            if (strcmp(a, "--threads") == 0) {
                const char *why;
                o->thread_count = bench_parse_threads(v, o->threads, BENCH_MAX_THREAD_COUNTS, &why);
                if (o->thread_count == 0) {
                    fprintf(err, "crisp-bench: error: --threads '%s': %s\n" USAGE, v, why);
                    return 2;
                }
            } else if (strcmp(a, "--warmup") == 0) {
                if (!parse_long(v, 0, 1000000, &o->warmup))
                    return usage_error(err, "--warmup wants a whole number 0..1000000, got '", v);
            } else if (strcmp(a, "--runs") == 0) {
                /* runtime/README.md, "Measuring": at least ten timed runs, or p90/p99
                 * mean nothing. */
                if (!parse_long(v, 10, 1000000, &o->runs))
                    return usage_error(err, "--runs wants a whole number 10..1000000, got '", v);
            } else if (strcmp(a, "--cold") == 0) {
                if (!parse_long(v, 0, 65536, &o->cold_mib))
                    return usage_error(err, "--cold wants MiB 0..65536, got '", v);
            } else if (strcmp(a, "--seed") == 0) {
                if (!parse_long(v, 0, 2147483647L, &n))
                    return usage_error(err, "--seed wants a whole number 0..2147483647, got '", v);
                o->seed = (unsigned long)n;
            } else if (strcmp(v, "zeros") == 0 || strcmp(v, "random") == 0) {
                o->random_input = strcmp(v, "random") == 0;
            } else {
                return usage_error(err, "--input is 'zeros' or 'random', got '", v);
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            return usage_error(err, "unknown option '", a);
        } else if (o->model_count < MAX_MODELS) {
            o->models[o->model_count++] = a;
        } else {
            return usage_error(err, "at most 64 models per run; this one is one too many: '", a);
        }
    }
    if (o->model_count == 0) return usage_error(err, "give at least one MODEL.crisp", NULL);
    return -1;
}

/* Uniform in [-1, 1) from a 64-bit LCG (Knuth's MMIX constants): the same
 * input on every machine for the same seed, so boards are compared fairly. */
static void fill_input(float *x, uint64_t n, int random_input, unsigned long seed) {
    uint64_t state = 0x9E3779B97F4A7C15ull ^ (uint64_t)seed;
    for (uint64_t i = 0; i < n; i++) {
        if (!random_input) {
            x[i] = 0.0f;
            continue;
        }
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(state >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
    }
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Peak resident set of this process so far, in KiB. VmHWM belongs to this
 * program's own address space; getrusage's ru_maxrss also remembers the
 * address space before exec (a fork of a large parent such as Python would
 * count as ours), so it is only the fallback where /proc is missing. */
static long peak_rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (f != NULL) {
        char line[256];
        long kb = -1;
        while (fgets(line, sizeof line, f) != NULL)
            if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
        fclose(f);
        if (kb >= 0) return kb;
    }
    struct rusage u;
    return getrusage(RUSAGE_SELF, &u) == 0 ? u.ru_maxrss : -1;
}

static void print_json_string(FILE *out, const char *s) {
    fputc('"', out);
    for (; *s; s++) {
        const unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
        else if (c < 0x20) fprintf(out, "\\u%04x", c);
        else fputc(c, out);
    }
    fputc('"', out);
}

static void print_dims(FILE *out, const uint32_t *dims, uint32_t rank) {
    fputc('[', out);
    for (uint32_t i = 0; i < rank; i++) fprintf(out, i ? ",%u" : "%u", (unsigned)dims[i]);
    fputc(']', out);
}

typedef struct run_result {
    unsigned threads;
    bench_stats stats;
    double throughput;
    long rss_kb;
    int profiled;
    bench_profile profile;
} run_result;

/* Dirties every cache line of `junk` (bytes long): what the model had in the
 * caches is evicted, and written back first where the model wrote it. */
static void evict(volatile unsigned char *junk, size_t bytes) {
    for (size_t i = 0; i < bytes; i += 64) junk[i]++;
}

/* Times o->runs single-sample inferences of `model` with `threads` threads
 * (each after `junk` is dirtied, when there is one). */
static int measure(const options *o, const crisp_model *model, const crisp_model_info *info,
                   const float *x, float *y, double *ms, unsigned threads,
                   unsigned char *junk, run_result *r, FILE *err) {
    crisp_session *s = NULL;
    const crisp_session_options so = {threads, 0};
    if (crisp_session_create_with_options(model, &so, &s) != CRISP_OK) {
        fprintf(err, "crisp-bench: error: %u threads: %s\n", threads, crisp_last_error());
        return 0;
    }
    const size_t nx = (size_t)info->input_elements, ny = (size_t)info->output_elements;
    for (long i = 0; i < o->warmup + o->runs; i++) {
        if (junk != NULL) evict(junk, (size_t)o->cold_mib << 20);
        const double t0 = now_ms();
        if (crisp_session_run(s, x, nx, y, ny) != CRISP_OK) {
            fprintf(err, "crisp-bench: error: %u threads: %s\n", threads, crisp_last_error());
            crisp_session_free(s);
            return 0;
        }
        if (i >= o->warmup) ms[i - o->warmup] = now_ms() - t0;
    }
    crisp_session_free(s);
    r->threads = threads;
    bench_summarise(ms, (size_t)o->runs, &r->stats);
    r->throughput = r->stats.total_ms > 0 ? 1e3 * (double)o->runs / r->stats.total_ms : 0;
    r->rss_kb = peak_rss_kb();
    return 1;
}

static void report_model(FILE *out, const options *o, const char *path,
                         const crisp_model_info *info, double load_ms, const run_result *rs,
                         size_t n, int first) {
    if (!o->json) {
        fprintf(out, "%s: %.1f KiB, %llu MACs (%llu effective), loaded in %.2f ms\n", path,
                (double)info->file_bytes / 1024.0, (unsigned long long)info->macs,
                (unsigned long long)info->effective_macs, load_ms);
        fprintf(out, "  threads  median ms     p90 ms     p99 ms   inferences/s  peak RSS KiB\n");
        for (size_t i = 0; i < n; i++)
            fprintf(out, "  %7u %10.3f %10.3f %10.3f %14.1f %13ld\n", rs[i].threads,
                    rs[i].stats.median_ms, rs[i].stats.p90_ms, rs[i].stats.p99_ms,
                    rs[i].throughput, rs[i].rss_kb);
        for (size_t i = 0; i < n; i++) {
            if (!rs[i].profiled) continue;
            fprintf(out, "  profile, %u thread%s (%.3f ms per sample in ops):\n", rs[i].threads,
                    rs[i].threads == 1 ? "" : "s", rs[i].profile.total_ms);
            bench_profile_print(out, &rs[i].profile, 0);
        }
        if (o->profile_ops && n > 0 && rs[0].profiled) {
            const bench_profile *p[BENCH_MAX_THREAD_COUNTS];
            unsigned threads[BENCH_MAX_THREAD_COUNTS];
            for (size_t i = 0; i < n; i++) p[i] = &rs[i].profile, threads[i] = rs[i].threads;
            bench_profile_print_ops(out, p, threads, n);
        }
        return;
    }
    fprintf(out, "%s\n    {\"path\": ", first ? "" : ",");
    print_json_string(out, path);
    fprintf(out,
            ", \"file_bytes\": %llu, \"weight_bytes\": %llu, \"arena_bytes\": %llu, "
            "\"macs\": %llu, \"effective_macs\": %llu, \"load_ms\": %.4f, \"input_shape\": ",
            (unsigned long long)info->file_bytes, (unsigned long long)info->weight_bytes,
            (unsigned long long)info->arena_bytes, (unsigned long long)info->macs,
            (unsigned long long)info->effective_macs, load_ms);
    print_dims(out, info->input_dims, info->input_rank);
    fputs(", \"output_shape\": ", out);
    print_dims(out, info->output_dims, info->output_rank);
    fputs(", \"results\": [", out);
    for (size_t i = 0; i < n; i++) {
        fprintf(out,
                "%s\n      {\"threads\": %u, \"median_ms\": %.6f, \"p90_ms\": %.6f, "
                "\"p99_ms\": %.6f, \"min_ms\": %.6f, \"mean_ms\": %.6f, "
                "\"throughput_ips\": %.4f, \"peak_rss_kb\": %ld",
                i ? "," : "", rs[i].threads, rs[i].stats.median_ms, rs[i].stats.p90_ms,
                rs[i].stats.p99_ms, rs[i].stats.min_ms, rs[i].stats.mean_ms, rs[i].throughput,
                rs[i].rss_kb);
        if (rs[i].profiled) {
            fprintf(out, ", \"kernel_isa\": \"%s\", \"profile\": ", crisp_kernel_isa());
            bench_profile_print(out, &rs[i].profile, 1);
            if (o->profile_ops) {
                fputs(", \"op_ms\": [", out);
                for (uint32_t k = 0; k < rs[i].profile.op_count; k++)
                    fprintf(out, "%s%.6f", k ? ", " : "", rs[i].profile.op_ms[k]);
                fputs("], \"op_effective_macs\": [", out);
                for (uint32_t k = 0; k < rs[i].profile.op_count; k++)
                    fprintf(out, "%s%llu", k ? ", " : "",
                            (unsigned long long)rs[i].profile.op_effective_macs[k]);
                fputc(']', out);
            }
        }
        fputc('}', out);
    }
    fputs("]}", out);
}

static int bench_model(const options *o, const char *path, int first, FILE *out, FILE *err) {
    crisp_model *model;
    const double t0 = now_ms();
    if (crisp_model_load_file(path, &model) != CRISP_OK) {
        fprintf(err, "crisp-bench: error: %s\n", crisp_last_error());
        return 0;
    }
    const double load_ms = now_ms() - t0;
    crisp_model_info info;
    crisp_model_get_info(model, &info);
    float *x = malloc((size_t)info.input_elements * sizeof *x);
    float *y = malloc((size_t)info.output_elements * sizeof *y);
    double *ms = malloc((size_t)o->runs * sizeof *ms);
    unsigned char *junk = o->cold_mib > 0 ? calloc((size_t)o->cold_mib << 20, 1) : NULL;
    run_result rs[BENCH_MAX_THREAD_COUNTS];
    memset(rs, 0, sizeof rs); /* profiled = 0 past a failed thread count */
    int ok = x != NULL && y != NULL && ms != NULL && (o->cold_mib == 0 || junk != NULL);
    if (!ok) fprintf(err, "crisp-bench: error: %s: out of memory for the buffers\n", path);
    if (ok) fill_input(x, info.input_elements, o->random_input, o->seed);
    for (size_t i = 0; ok && i < o->thread_count; i++) {
        ok = measure(o, model, &info, x, y, ms, o->threads[i], junk, &rs[i], err);
        rs[i].profiled = 0;
        if (ok && o->profile)
            ok = rs[i].profiled = bench_profile_run(model, &info, x, y, o->threads[i], o->runs,
                                                    &rs[i].profile, err);
    }
    if (ok) report_model(out, o, path, &info, load_ms, rs, o->thread_count, first);
    for (size_t i = 0; i < o->thread_count; i++)
        if (rs[i].profiled) bench_profile_free(&rs[i].profile);
    free(junk);
    free(ms);
    free(y);
    free(x);
    crisp_model_free(model);
    return ok;
}

int main(int argc, char **argv) {
    options o;
    const int parsed = parse_args(argc, argv, &o, stdout, stderr);
    if (parsed >= 0) return parsed;
    if (o.json) {
        fprintf(stdout,
                "{\"tool\": \"crisp-bench\", \"runtime_version\": \"%s\", \"arch\": \"%s\", "
                "\"input\": \"%s\", \"seed\": %lu, \"warmup\": %ld, \"runs\": %ld, "
                "\"cold_mib\": %ld, \"models\": [",
                crisp_version(), BENCH_ARCH, o.random_input ? "random" : "zeros", o.seed,
                o.warmup, o.runs, o.cold_mib);
    }
    for (size_t i = 0; i < o.model_count; i++)
        if (!bench_model(&o, o.models[i], i == 0, stdout, stderr))
            return 1; /* the exit status says the JSON on stdout is incomplete */
    if (o.json) fputs("\n  ]}\n", stdout);
    return 0;
}
