/* Epilogue fusion, decided at load (runtime/README.md, "Epilogue fusion"):
 * a float32 ADD that sums the output of a conv on the optimised GEMM or
 * sparse-run path with a value that is already computed when that conv runs
 * is done by the conv itself: it writes the ADD's output,
 * clamp(conv + residual) with the ADD's activation, on each tile right after
 * the microkernel wrote it, while the tile is in L1. This saves the ADD's
 * pass over memory and its fork/join (4 % of ResNet-50 at 90 %).
 *
 * Conditions: the conv has no activation of its own, its output is read by
 * that ADD only and is not the graph output, and the ADD's other input is the
 * graph input or produced before the conv. Of an ADD whose inputs both
 * qualify, the later conv takes it (in a ResNet downsampling block the
 * shortcut conv runs after the main branch's last conv).
 *
 * The graph is not rewritten: the ops keep their values and reference
 * sessions run them as written. What changes is the arena plan, which must
 * hold for both: the ADD's output is written from the conv on, so it is live
 * from there (crisp_value_first_write). The conv's own output keeps its
 * buffer (a reference session and crisp_session_run_to of that value still
 * write it). */
#include <stdlib.h>

#include "model.h"
#include "status.h"

/* Whether op c runs on the GEMM or sparse-run path (src/conv_fast.c) with no
 * activation of its own. */
static int fusable_conv(const crisp_model *m, const crisp_op *c) {
    if (c->kind != CRISP_OP_CONV2D || c->dtype != CRISP_DTYPE_F32 || c->k.conv.groups != 1 ||
        c->activation != CRISP_ACT_NONE || c->fused_with != CRISP_NO_ID)
        return 0;
    const uint32_t enc = m->tensors[c->weight].encoding;
    return enc == CRISP_ENCODING_DENSE_F32 || enc == CRISP_ENCODING_HYBRID_F32;
}

/* The conv that can absorb ADD op a through its input k, or CRISP_NO_ID. */
static uint32_t absorber(const crisp_model *m, const uint32_t *readers, uint32_t a, uint32_t k) {
    const crisp_op *add = &m->ops[a];
    const uint32_t u = add->inputs[k], other = add->inputs[1 - k];
    const uint32_t c = m->values[u].producer;
    if (c == CRISP_NO_ID || !fusable_conv(m, &m->ops[c])) return CRISP_NO_ID;
    if (u == m->output_value || readers[u] != 1) return CRISP_NO_ID;
    const uint32_t ready = m->values[other].producer;
    if (other != m->input_value && (ready == CRISP_NO_ID || ready >= c)) return CRISP_NO_ID;
    return c;
}

crisp_status crisp_fuse_model(crisp_model *m) {
    for (uint32_t i = 0; i < m->op_count; i++) {
        m->ops[i].fused_with = CRISP_NO_ID;
        m->ops[i].residual = CRISP_NO_ID;
    }
    /* Readers per value (an ADD reading a value twice counts twice). */
    uint32_t *readers = calloc(m->value_count ? m->value_count : 1, sizeof *readers);
    if (readers == NULL)
        return crisp_error(CRISP_ERR_NOMEM, "fusion: out of memory for %u values",
                           (unsigned)m->value_count);
    for (uint32_t i = 0; i < m->op_count; i++)
        for (uint32_t k = 0; k < m->ops[i].input_count; k++) readers[m->ops[i].inputs[k]]++;
    for (uint32_t a = 0; a < m->op_count; a++) {
        crisp_op *add = &m->ops[a];
        if (add->kind != CRISP_OP_ADD || add->dtype != CRISP_DTYPE_F32) continue;
        const uint32_t c0 = absorber(m, readers, a, 0), c1 = absorber(m, readers, a, 1);
        if (c0 == CRISP_NO_ID && c1 == CRISP_NO_ID) continue;
        const uint32_t k = c1 != CRISP_NO_ID && (c0 == CRISP_NO_ID || c1 > c0) ? 1 : 0;
        const uint32_t c = k ? c1 : c0;
        m->ops[c].fused_with = a;
        m->ops[c].residual = add->inputs[1 - k];
        add->fused_with = c;
    }
    free(readers);
    return CRISP_OK;
}
