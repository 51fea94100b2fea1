/* Internal: a session (arena + thread pool) and its op dispatch. */
#ifndef CRISP_SESSION_H
#define CRISP_SESSION_H

#include <stdint.h>

#include "kernels/ukernels.h"
#include "model.h"
#include "thread_pool.h"

struct crisp_session {
    const crisp_model *model;
    uint8_t *arena; /* 64-aligned; every value at its planned offset */
    crisp_pool *pool; /* NULL when single-threaded */
    const crisp_f32_kernels *fast; /* NULL: reference kernels only */
    float *scratch;               /* [threads][scratch_stride], 64-aligned */
    size_t scratch_stride;        /* floats per thread, a multiple of 16 */
    size_t *held_tile; /* [threads * CRISP_HELD_TILE_STRIDE]: the patch tile in each thread's
                          scratch during an op (src/conv_fast.c), or CRISP_NO_TILE */
    double *op_seconds;           /* CRISP_SESSION_PROFILE: [op_count], else NULL */
    uint64_t *op_calls;
    /* Only QUANTIZE ops read the graph input (an int8 model): crisp_session_run
     * then skips copying the caller's floats into the arena and points
     * `input` at them for the sample it runs (src/session.c). */
    int quantize_from_caller;
    const float *input; /* the caller's sample while it runs, else NULL */
    /* A residual an in-place ADD shares its buffer with, copied before a
     * conv that does not add it per tile overwrites it (src/dispatch.c);
     * NULL when no op of this session needs one. */
    uint8_t *residual_copy;
    /* Where this session writes the values that have no arena slot (the
     * outputs of 1 x 1 convs fused into the depthwise conv after them,
     * src/planner.c) when it runs such a conv alone: allocated with the
     * session where its ops do so (reference kernels), by
     * crisp_session_run_to when it reads one; else NULL. One buffer serves
     * them all: each lives only from its conv to the depthwise conv right
     * after it. */
    uint8_t *expand_buffer;
    uint64_t expand_buffer_bytes; /* its size; 0 with none */
};

/* A value's bytes in this session: its arena slot or the expand buffer. */
static inline uint8_t *crisp_value_data(const crisp_session *s, const crisp_value *v) {
    return v->arena_offset == CRISP_NO_SLOT ? s->expand_buffer : s->arena + v->arena_offset;
}

/* One cache line per thread: each thread writes its own. */
#define CRISP_HELD_TILE_STRIDE 8
#define CRISP_NO_TILE SIZE_MAX

/* Runs one op, split over the session's threads (src/dispatch.c). */
void crisp_run_op(const crisp_session *session, const crisp_op *op);
/* The same; with fuse 0 a conv that fused an ADD (src/fuse.c) computes only
 * its own output, into the arena slot of the ADD's output (for
 * crisp_session_run_to). */
void crisp_run_op_fused(const crisp_session *session, const crisp_op *op, int fuse);

/* The residual copy a session of this model needs, in bytes: the largest
 * residual whose fused ADD's output shares its buffer (src/planner.c) and
 * whose conv runs without adding it per tile (`fast` 0: reference
 * kernels, every such conv); 0 when none. */
uint64_t crisp_residual_copy_bytes(const crisp_model *m, int fast);

/* The expand buffer a session of this model allocates with it, in bytes:
 * the largest value without an arena slot that its ops write (`fast` 0:
 * reference kernels, every such value; optimised kernels, those whose
 * conv was left unfused after the arena plan); 0 when none. */
uint64_t crisp_expand_buffer_bytes(const crisp_model *m, int fast);

#endif
