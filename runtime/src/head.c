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

void crisp_hybrid_expand(const crisp_tensor *t, float *out) {
    const crisp_hybrid *h = &t->hybrid;
    const int is_i8 = t->encoding == CRISP_ENCODING_HYBRID_I8;
    const uint64_t R = h->rows, K = h->cols;
    memset(out, 0, (size_t)(R * K) * sizeof *out);
    uint64_t value = 0, index = 0;
    for (uint64_t r = 0; r < h->nbr; r++) {
        const uint32_t lo = crisp_rd_u32(h->block_row_ptr + 4 * r);
        const uint32_t hi = crisp_rd_u32(h->block_row_ptr + 4 * (r + 1));
        const uint64_t row0 = r * h->block_rows;
        const uint64_t height = R - row0 < h->block_rows ? R - row0 : h->block_rows;
        for (uint32_t blk = lo; blk < hi; blk++) {
            const uint64_t c = crisp_rd_u32(h->block_col + 4 * (uint64_t)blk);
            const uint64_t col0 = c * h->block_cols;
            const uint64_t width = K - col0 < h->block_cols ? K - col0 : h->block_cols;
            const uint64_t groups = h->n == h->m ? 1 : width / h->m;
            const uint64_t per_group = h->n == h->m ? width : h->n;
            for (uint64_t rr = 0; rr < height; rr++) {
                const uint64_t run = rr / h->v;
                for (uint64_t g = 0; g < groups; g++) {
                    for (uint64_t k = 0; k < per_group; k++, value++) {
                        uint64_t col = col0 + k;
                        if (h->n < h->m) {
                            const uint64_t i = index + (run * groups + g) * h->n + k;
                            col = col0 + g * h->m + crisp_hybrid_index(h->indices, i, h->index_bits);
                        }
                        const uint64_t row = row0 + rr;
                        const float v = is_i8 ? h->scales[row] * (float)((const int8_t *)h->values)[value]
                                              : crisp_rd_f32((const uint8_t *)h->values + 4 * value);
                        out[row * K + col] = v;
                    }
                }
            }
            if (h->n < h->m) index += ((height + h->v - 1) / h->v) * groups * h->n;
        }
    }
}

crisp_status crisp_model_get_head_weights(const crisp_model *m, float *weight,
                                          size_t weight_count, float *bias, size_t bias_count) {
    if (m == NULL || weight == NULL || bias == NULL)
        return crisp_error(CRISP_ERR_ARGUMENT, "crisp_model_get_head_weights: %s is NULL",
                           m == NULL ? "model" : weight == NULL ? "weight" : "bias");
    crisp_head h;
    const crisp_status s = crisp_find_head(m, &h);
    if (s != CRISP_OK) return s;
    const crisp_op *op = &m->ops[h.op];
    const crisp_tensor *t = &m->tensors[op->weight];
    const uint64_t classes = t->dims[0], features = t->dims[1];
    if (weight_count != classes * features || bias_count != classes)
        return crisp_error(CRISP_ERR_SHAPE,
                           "crisp_model_get_head_weights: weight_count %zu and bias_count %zu, "
                           "the head needs %llu x %llu and %llu",
                           weight_count, bias_count, (unsigned long long)classes,
                           (unsigned long long)features, (unsigned long long)classes);
    if (t->encoding == CRISP_ENCODING_DENSE_F32) {
        memcpy(weight, t->raw, weight_count * sizeof *weight);
    } else if (t->encoding == CRISP_ENCODING_DENSE_I8) {
        for (size_t i = 0; i < weight_count; i++)
            weight[i] = t->scales[i / features] * (float)t->q[i];
    } else {
        crisp_hybrid_expand(t, weight);
    }
    if (op->bias == CRISP_NO_ID) memset(bias, 0, bias_count * sizeof *bias);
    else memcpy(bias, m->tensors[op->bias].raw, bias_count * sizeof *bias);
    return CRISP_OK;
}
