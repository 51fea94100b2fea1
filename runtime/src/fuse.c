/* Residual fusion: a float32 ADD whose one input is a conv's output, read by
 * nothing else, runs inside that conv (runtime/README.md, "Residual
 * fusion"). The conv writes the ADD's output value; its drivers add the
 * ADD's other input (the residual) and apply the ADD's clamp to each tile
 * right after the kernels wrote it, while the tile is still in L1/L2, so the
 * conv's result never makes a round trip through memory for a separate ADD
 * pass. Every output is the same two roundings as before (the conv's sum,
 * then the add; IEEE addition commutes), so results are bitwise those of the
 * unfused graph for every kernel set and thread count.
 *
 * The graph itself is left as the file has it (the stage finder, bias tuning
 * and crisp_session_run_to walk it): the fusion is two op fields, which the
 * arena planner reads (the ADD's output lives from the conv on; the conv's
 * own output takes no space), the op loop (the ADD is skipped) and the
 * drivers. */
#include <stdlib.h>
#include <string.h>

#include "conv_fast.h"
#include "model.h"

/* readers[v]: how many op inputs are value v (malloc'd; NULL when out of memory). */
static uint32_t *count_readers(const crisp_model *m) {
    uint32_t *readers = calloc(m->value_count, sizeof *readers);
    if (readers == NULL) return NULL;
    for (uint32_t i = 0; i < m->op_count; i++)
        for (uint32_t k = 0; k < m->ops[i].input_count; k++) readers[m->ops[i].inputs[k]]++;
    return readers;
}

/* The conv producing v may take the ADD reading v: a float32
 * conv without a non-clamp activation or a clamp of its own (the ADD's
 * clamp comes after the add), whose output nothing else reads, and the
 * residual r ready before it runs. */
static int fusable(const crisp_model *m, uint32_t v, uint32_t r, const uint32_t *readers) {
    const crisp_value *val = &m->values[v];
    const uint32_t p = val->producer;
    if (p == CRISP_NO_ID || v == m->output_value || readers[v] != 1) return 0;
    const crisp_op *conv = &m->ops[p];
    if (conv->kind != CRISP_OP_CONV2D || conv->dtype != CRISP_DTYPE_F32 ||
        conv->pointwise != CRISP_ACT_NONE || conv->activation != CRISP_ACT_NONE ||
        conv->fused_add != CRISP_NO_ID)
        return 0;
    const uint32_t rp = m->values[r].producer;
    return r != v && (r == m->input_value || (rp != CRISP_NO_ID && rp < p));
}

void crisp_fuse_residual_adds(crisp_model *m) {
    for (uint32_t i = 0; i < m->op_count; i++)
        m->ops[i].fused_add = m->ops[i].fused_into = CRISP_NO_ID;
    const char *env = getenv("CRISP_FUSE_ADD"); /* 0: every ADD on its own, to compare */
    if (env != NULL && strcmp(env, "0") == 0) return;
    uint32_t *readers = count_readers(m);
    if (readers == NULL) return; /* unfused runs the same graph, only slower */
    for (uint32_t a = 0; a < m->op_count; a++) {
        crisp_op *add = &m->ops[a];
        if (add->kind != CRISP_OP_ADD || add->dtype != CRISP_DTYPE_F32 ||
            add->pointwise != CRISP_ACT_NONE || add->input_count != 2)
            continue;
        /* Of two fusable convs (a downsampling block's two branches), the later:
         * the other's output is then ready. */
        uint32_t conv = CRISP_NO_ID;
        for (uint32_t k = 0; k < 2; k++) {
            const uint32_t v = add->inputs[k], p = m->values[v].producer;
            if (fusable(m, v, add->inputs[1 - k], readers) && (conv == CRISP_NO_ID || p > conv))
                conv = p;
        }
        if (conv == CRISP_NO_ID) continue;
        m->ops[conv].fused_add = a;
        add->fused_into = conv;
    }
    free(readers);
}

/* Expand fusion: a 1 x 1 conv whose output only the depthwise conv right
 * after it reads (MobileNet's expand conv, 6 x the block's channels wide)
 * is computed by that depthwise conv, one band of input rows at a time into
 * the thread's scratch, so the wide tensor stays in L2 instead of a round
 * trip through memory (runtime/README.md, "Expand fusion"). The geometry and
 * kernel rules are crisp_fast_fuses_expand's. Every output is the same
 * operations as unfused, so results are bitwise those of the unfused graph. */
void crisp_fuse_expands(crisp_model *m) {
    for (uint32_t i = 0; i < m->op_count; i++) m->ops[i].fuses_prev = m->ops[i].fused_by_next = 0;
    const char *env = getenv("CRISP_FUSE_EXPAND"); /* 0: unfused, to compare */
    if (env != NULL && strcmp(env, "0") == 0) return;
    uint32_t *readers = count_readers(m);
    if (readers == NULL) return; /* unfused runs the same graph, only slower */
    for (uint32_t i = 0; i + 1 < m->op_count; i++) {
        crisp_op *conv = &m->ops[i], *dw = &m->ops[i + 1];
        const uint32_t v = conv->output;
        if (conv->fused_by_next || conv->fuses_prev || dw->input_count != 1 ||
            dw->inputs[0] != v || readers[v] != 1 || v == m->output_value ||
            !crisp_fast_fuses_expand(m, conv, dw))
            continue;
        conv->fused_by_next = 1;
        dw->fuses_prev = 1;
    }
    free(readers);
}
