/* Memory limits (runtime/README.md, "Memory limits"): everything a model
 * makes the runtime allocate is counted against one limit before it is
 * allocated, so a small file cannot ask for gigabytes. Packed weights and
 * label names are charged by their stages just before their allocation
 * (crisp_limits_charge); the last loader stage, crisp_check_limits, adds
 * the graph records, the provenance copy and what one single-threaded
 * session will need (the activation arena and the optimised kernels'
 * scratch); each session checks again with its own thread count. */
#include "memlimit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "status.h"

#define MIB ((uint64_t)1 << 20)
#define RAISE_HINT \
    "raise it with CRISP_MAX_MEMORY_MB (MiB) in the environment or crisp_load_options.max_memory_mb"

void crisp_format_bytes(char *buf, size_t size, uint64_t bytes) {
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024) {
        snprintf(buf, size, "%llu B", (unsigned long long)bytes);
        return;
    }
    double v = (double)bytes / 1024.0;
    int u = 0;
    uint64_t unit = 1024;
    while (v >= 1024.0 && u < 5) v /= 1024.0, u++, unit *= 1024;
    if (bytes % unit == 0) /* a whole number of units, as limits are: "512 MiB" */
        snprintf(buf, size, "%llu %s", (unsigned long long)(bytes / unit), units[u]);
    else
        snprintf(buf, size, v >= 100.0 ? "%.0f %s" : "%.1f %s", v, units[u]);
}

crisp_status crisp_limits_resolve(const crisp_load_options *o, uint64_t *bytes) {
    if (o != NULL && o->flags != 0)
        return crisp_error(CRISP_ERR_ARGUMENT,
                           "crisp_model_load: options.flags is 0x%08X, expected 0",
                           (unsigned)o->flags);
    uint64_t mb = CRISP_DEFAULT_MAX_MEMORY_MB;
    if (o != NULL && o->max_memory_mb != 0) {
        mb = o->max_memory_mb;
    } else {
        const char *env = getenv("CRISP_MAX_MEMORY_MB");
        if (env != NULL && env[0] != '\0') {
            char *end = NULL;
            errno = 0;
            const unsigned long long v = env[0] >= '0' && env[0] <= '9' ? strtoull(env, &end, 10) : 0;
            if (end == NULL || *end != '\0' || errno != 0 || v == 0 || v > UINT32_MAX)
                return crisp_error(CRISP_ERR_ARGUMENT,
                                   "CRISP_MAX_MEMORY_MB is '%.40s': expected a whole number of "
                                   "MiB from 1 to 4294967295",
                                   env);
            mb = v;
        }
    }
    *bytes = mb * MIB;
    return CRISP_OK;
}

int crisp_limits_room(const crisp_model *m, uint64_t bytes) {
    return bytes <= m->max_memory_bytes && m->resident_bytes <= m->max_memory_bytes - bytes;
}

crisp_status crisp_limits_charge(crisp_model *m, uint64_t bytes, const char *what) {
    const uint64_t limit = m->max_memory_bytes;
    if (crisp_limits_room(m, bytes)) {
        m->resident_bytes += bytes;
        return CRISP_OK;
    }
    char need[32], before[32], lim[32];
    crisp_format_bytes(need, sizeof need, bytes);
    crisp_format_bytes(before, sizeof before, m->resident_bytes);
    crisp_format_bytes(lim, sizeof lim, limit);
    return crisp_error(CRISP_ERR_LIMIT,
                       "memory limit: %s need %s (after %s already counted), over the %s "
                       "limit; " RAISE_HINT,
                       what, need, before, lim);
}

/* What op `i`'s per-thread scratch is, for the message. */
static void describe_scratch(char *buf, size_t size, const crisp_model *m, uint32_t i) {
    const crisp_op *op = &m->ops[i];
    const crisp_fast_plan *f = &op->fast;
    const char *kind = crisp_op_kind_name(op->kind);
    if (op->fuses_prev && f->path == CRISP_FAST_DWCONV) {
        snprintf(buf, size,
                 "op %u (%s): bands of %zu output rows, each with the input rows it reads of "
                 "all %zu channels of the 1 x 1 conv before it (expand fusion)",
                 (unsigned)i, kind, f->tile_pixels, op->k.conv.input_channels);
    } else if (f->band_offset != NULL) {
        const crisp_conv2d_params *p = &op->k.conv;
        snprintf(buf, size,
                 "op %u (%s): a band of %zu padded input rows x %zu elements x %zu input "
                 "channels and its wide output rows",
                 (unsigned)i, kind, f->band_plane / f->band_width, f->band_width,
                 p->input_channels);
    } else if (f->path == CRISP_FAST_GEMM || f->path == CRISP_FAST_SPMM ||
               f->path == CRISP_FAST_QS8_SPMM || f->path == CRISP_FAST_QS8_GEMM) {
        const crisp_conv2d_params *p = &op->k.conv;
        snprintf(buf, size,
                 "op %u (%s): an im2col tile of K = %zu x %zu x %zu (kernel height x width x "
                 "input channels) = %zu rows x %zu pixels",
                 (unsigned)i, kind, p->kernel_height, p->kernel_width, p->input_channels, f->k,
                 f->tile_pixels);
    } else if (f->path == CRISP_FAST_DWCONV && f->channel_block > 0) {
        snprintf(buf, size, "op %u (%s): a zero-bordered tile of %zu floats (%zu channels per call)",
                 (unsigned)i, kind, f->scratch_floats, f->channel_block);
    } else if (f->path == CRISP_FAST_QS8_DWCONV && f->channel_block > 0) {
        snprintf(buf, size, "op %u (%s): a tile of %zu bytes (%zu channels per call)", (unsigned)i,
                 kind, 4 * f->scratch_floats, f->channel_block);
    } else if (f->path == CRISP_FAST_QS8_SPMV) {
        snprintf(buf, size, "op %u (%s): a copy of the %zu input features", (unsigned)i, kind,
                 f->k);
    } else {
        snprintf(buf, size,
                 "op %u (%s): padded input rows of %zu floats (kernel %zu x %zu, dilation "
                 "%zu x %zu, stride %zu x %zu)",
                 (unsigned)i, kind, f->scratch_floats, op->k.conv.kernel_height,
                 op->k.conv.kernel_width, op->k.conv.dilation_height, op->k.conv.dilation_width,
                 op->k.conv.stride_height, op->k.conv.stride_width);
    }
}

/* Floats of one thread's scratch as a session lays it out (a multiple of 16). */
static uint64_t stride_floats(size_t scratch_floats) {
    return ((uint64_t)scratch_floats + 15) / 16 * 16;
}

uint64_t crisp_limits_graph_bytes(const crisp_model *m) {
    return (uint64_t)m->value_count * sizeof(crisp_value) +
           (uint64_t)m->tensor_count * sizeof(crisp_tensor) +
           (uint64_t)m->op_count * sizeof(crisp_op) + (uint64_t)m->provenance_length + 1;
}

crisp_status crisp_check_limits(crisp_model *m) {
    const uint64_t limit = m->max_memory_bytes;
    const uint64_t graph = crisp_limits_graph_bytes(m);
    m->own_bytes = m->resident_bytes + graph;
    /* scratch_floats <= 2^57 (K <= 2^48 rows x 512 pixels), arena <= 2^46: no overflow. */
    const uint64_t scratch = stride_floats(m->scratch_floats) * sizeof(float);
    const uint64_t total = m->own_bytes + m->arena_bytes + scratch;
    if (total <= limit) return CRISP_OK;
    char need[32], lim[32], arena[32], scr[32], packed[32], labels[32], own[32], what[320];
    crisp_format_bytes(need, sizeof need, total);
    crisp_format_bytes(lim, sizeof lim, limit);
    crisp_format_bytes(arena, sizeof arena, m->arena_bytes);
    crisp_format_bytes(scr, sizeof scr, scratch);
    crisp_format_bytes(packed, sizeof packed, m->packed_bytes);
    crisp_format_bytes(labels, sizeof labels, m->label_bytes);
    crisp_format_bytes(own, sizeof own, graph);
    what[0] = '\0';
    if (scratch > 0) {
        uint32_t widest = 0;
        for (uint32_t i = 0; i < m->op_count; i++)
            if (m->ops[i].fast.scratch_floats > m->ops[widest].fast.scratch_floats) widest = i;
        describe_scratch(what, sizeof what, m, widest);
    }
    if (scratch >= m->arena_bytes && scratch > 0)
        return crisp_error(CRISP_ERR_LIMIT,
                           "memory limit: the model needs %s: %s of convolution scratch per "
                           "thread (%s), activation arena %s, packed weights %s, label names "
                           "%s, graph records %s; over the %s limit; " RAISE_HINT,
                           need, scr, what, arena, packed, labels, own, lim);
    char naive[32];
    crisp_format_bytes(naive, sizeof naive, m->naive_bytes);
    return crisp_error(CRISP_ERR_LIMIT,
                       "memory limit: the model needs %s: an activation arena of %s (%u values, "
                       "%s if none shared memory), convolution scratch %s per thread%s%s%s, "
                       "packed weights %s, label names %s, graph records %s; over the %s limit; "
                       RAISE_HINT,
                       need, arena, (unsigned)m->value_count, naive, scr, what[0] ? " (" : "",
                       what, what[0] ? ")" : "", packed, labels, own, lim);
}

crisp_status crisp_limits_check_session(const crisp_model *m, size_t threads,
                                        size_t scratch_floats, uint64_t copy_bytes,
                                        uint64_t expand_bytes) {
    const uint64_t limit = m->max_memory_bytes;
    const uint64_t per_thread = stride_floats(scratch_floats) * sizeof(float);
    /* copy_bytes <= the arena and expand_bytes <= one value, each <= 2^46: no
     * overflow. */
    const uint64_t base = m->own_bytes + m->arena_bytes + copy_bytes + expand_bytes;
    const int over = base > limit || (threads > 0 && per_thread > (limit - base) / threads);
    if (!over) return CRISP_OK;
    char need[32], lim[32], arena[32], scr[32], own[32], copy[128] = "";
    const uint64_t total = threads > 0 && per_thread > (UINT64_MAX - base) / threads
                               ? UINT64_MAX
                               : base + (uint64_t)threads * per_thread;
    crisp_format_bytes(need, sizeof need, total);
    crisp_format_bytes(lim, sizeof lim, limit);
    crisp_format_bytes(arena, sizeof arena, m->arena_bytes);
    crisp_format_bytes(scr, sizeof scr, per_thread);
    crisp_format_bytes(own, sizeof own, m->own_bytes);
    if (copy_bytes > 0 || expand_bytes > 0) {
        char b[32], e[32];
        crisp_format_bytes(b, sizeof b, copy_bytes);
        crisp_format_bytes(e, sizeof e, expand_bytes);
        snprintf(copy, sizeof copy, "%s%s%s%s", copy_bytes > 0 ? ", a residual copy " : "",
                 copy_bytes > 0 ? b : "", expand_bytes > 0 ? ", an expand buffer " : "",
                 expand_bytes > 0 ? e : "");
    }
    return crisp_error(CRISP_ERR_LIMIT,
                       "memory limit: a session with %zu threads needs %s: activation arena %s, "
                       "%zu x %s of convolution scratch%s, the model's own %s; over the %s limit "
                       "the model was loaded with; use fewer threads, or " RAISE_HINT,
                       threads, need, arena, threads, scr, copy, own, lim);
}
