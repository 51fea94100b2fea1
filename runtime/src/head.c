/* The classifier head: the LINEAR op whose output reaches the graph output
 * only through RESHAPE / SOFTMAX / DEQUANTIZE ops (crisp_model_get_head). */
#include <string.h>

#include "format.h"
#include "head.h"
#include "names.h"
#include "status.h"

static int is_tail_kind(uint32_t kind) {
    return kind == CRISP_OP_RESHAPE || kind == CRISP_OP_SOFTMAX || kind == CRISP_OP_DEQUANTIZE;
}

/* The first op other than `except` that reads value v, or CRISP_NO_ID. */
static uint32_t other_reader(const crisp_model *m, uint32_t v, uint32_t except) {
    for (uint32_t k = 0; k < m->op_count; k++) {
        const crisp_op *op = &m->ops[k];
        if (k == except) continue;
        for (uint32_t i = 0; i < op->input_count; i++)
            if (op->inputs[i] == v) return k;
    }
    return CRISP_NO_ID;
}

crisp_status crisp_find_head(const crisp_model *m, crisp_head *out) {
    uint32_t tail[CRISP_MAX_HEAD_TAIL], n = 0;
    uint32_t v = m->output_value, next = CRISP_NO_ID; /* next: the chain op reading v */
    for (;;) {
        const uint32_t p = m->values[v].producer;
        if (p == CRISP_NO_ID)
            return crisp_error(CRISP_ERR_UNSUPPORTED,
                               "model has no linear classifier head (the graph output is the "
                               "graph input)");
        const uint32_t reader = other_reader(m, v, next);
        if (reader != CRISP_NO_ID)
            return crisp_error(CRISP_ERR_UNSUPPORTED,
                               "model has no linear classifier head that can be replaced: value "
                               "%u between op %u (%s) and the graph output is also read by op "
                               "%u (%s)",
                               (unsigned)v, (unsigned)p, crisp_op_kind_name(m->ops[p].kind),
                               (unsigned)reader, crisp_op_kind_name(m->ops[reader].kind));
        const uint32_t kind = m->ops[p].kind;
        if (kind == CRISP_OP_LINEAR) {
            out->op = p;
            out->tail_count = n;
            for (uint32_t i = 0; i < n; i++) out->tail[i] = tail[n - 1 - i];
            return CRISP_OK;
        }
        if (!is_tail_kind(kind))
            return crisp_error(CRISP_ERR_UNSUPPORTED,
                               "model has no linear classifier head (op %u (%s) %s; a head is a "
                               "LINEAR op followed only by RESHAPE, SOFTMAX or DEQUANTIZE)",
                               (unsigned)p, crisp_op_kind_name(kind),
                               n == 0 ? "produces the graph output" : "leads to the graph output");
        if (n == CRISP_MAX_HEAD_TAIL)
            return crisp_error(CRISP_ERR_UNSUPPORTED,
                               "model has no linear classifier head (more than %u RESHAPE / "
                               "SOFTMAX / DEQUANTIZE ops before the graph output)",
                               CRISP_MAX_HEAD_TAIL);
        tail[n++] = p;
        next = p;
        v = m->ops[p].inputs[0];
    }
}

crisp_status crisp_model_get_head(const crisp_model *m, crisp_head_info *out) {
    if (m == NULL || out == NULL)
        return crisp_error(CRISP_ERR_ARGUMENT, "crisp_model_get_head: %s is NULL",
                           m == NULL ? "model" : "out");
    crisp_head h;
    const crisp_status s = crisp_find_head(m, &h);
    if (s != CRISP_OK) return s;
    const crisp_op *op = &m->ops[h.op];
    memset(out, 0, sizeof *out);
    out->op = h.op;
    out->feature_value = op->inputs[0];
    out->features = (uint32_t)m->values[op->inputs[0]].elements;
    out->classes = m->tensors[op->weight].dims[0];
    out->has_bias = op->bias != CRISP_NO_ID;
    out->dtype = op->dtype == CRISP_DTYPE_I8 ? 2u : 1u;
    return CRISP_OK;
}
