/* The last stage (crisp_find_stage, crisp_model_get_stage): what bias tuning
 * trains. From the head LINEAR op back through RESHAPE ops to a global
 * average pool (GLOBAL_AVG_POOL, or ADAPTIVE_AVG_POOL2D to 1x1); the pool's
 * input is a (C, H, W) map, and the stage's body is the longest run of
 * consecutive ops (file order = execution order) ending at the pool whose
 * outputs are float32 maps of that H x W. For a CIFAR ResNet-18 that is
 * layer4 (its first conv, stride 2, and the downsample conv output 4x4 and
 * read layer3's output, the stage input); for MobileNetV2 the inverted
 * residual blocks at the last resolution (from the depthwise conv of the
 * first one, its expansion conv runs at the resolution before) and the last
 * 1x1 conv. The body must read exactly one value from before it.
 *
 * Tuned: the bias of every CONV2D of the body that has a bias tensor no other
 * op uses (the packer folds BatchNorm into conv biases, so these are the BN
 * shifts), plus the head's weight and bias (src/tune.c). */
#include "stage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "head.h"
#include "names.h"
#include "status.h"

static int body_kind(uint32_t kind) {
    switch (kind) {
    case CRISP_OP_CONV2D:
    case CRISP_OP_ADD:
    case CRISP_OP_RELU:
    case CRISP_OP_RELU6:
    case CRISP_OP_MAX_POOL2D:
    case CRISP_OP_AVG_POOL2D:
    case CRISP_OP_ADAPTIVE_AVG_POOL2D:
    case CRISP_OP_RESHAPE: return 1;
    default: return 0;
    }
}

/* Op k's output is a float32 (C, h, w) map. */
static int is_map(const crisp_model *m, uint32_t k, uint32_t h, uint32_t w) {
    const crisp_value *v = &m->values[m->ops[k].output];
    return v->dtype == CRISP_DTYPE_F32 && v->rank == 3 && v->dims[1] == h && v->dims[2] == w;
}

/* Tensor t is used by an op other than k (as weight or bias). */
static int shared(const crisp_model *m, uint32_t t, uint32_t k) {
    for (uint32_t i = 0; i < m->op_count; i++)
        if (i != k && (m->ops[i].weight == t || m->ops[i].bias == t)) return 1;
    return 0;
}

static int is_global_pool(const crisp_model *m, const crisp_op *op) {
    if (op->kind == CRISP_OP_GLOBAL_AVG_POOL) return 1;
    return op->kind == CRISP_OP_ADAPTIVE_AVG_POOL2D && op->k.pool.output_height == 1 &&
           op->k.pool.output_width == 1 && m->values[op->inputs[0]].rank == 3;
}

crisp_status crisp_find_stage(const crisp_model *m, crisp_stage *out) {
    memset(out, 0, sizeof *out);
    crisp_head head;
    crisp_status s = crisp_find_head(m, &head);
    if (s != CRISP_OK) return s;
    const crisp_op *h = &m->ops[head.op];
    if (h->dtype != CRISP_DTYPE_F32)
        return crisp_error(CRISP_ERR_UNSUPPORTED,
                           "bias tuning: the head (op %u) is int8; bias tuning needs a float32 "
                           "model (tune the float32 model, then quantise)",
                           (unsigned)head.op);
    /* Back from the head through RESHAPE ops to the global pool. */
    uint32_t v = h->inputs[0], p = m->values[v].producer;
    while (p != CRISP_NO_ID && m->ops[p].kind == CRISP_OP_RESHAPE) {
        v = m->ops[p].inputs[0];
        p = m->values[v].producer;
    }
    if (p == CRISP_NO_ID || !is_global_pool(m, &m->ops[p]) || m->ops[p].dtype != CRISP_DTYPE_F32) {
        char from[64];
        if (p == CRISP_NO_ID) snprintf(from, sizeof from, "the graph input");
        else snprintf(from, sizeof from, "op %u (%s)", (unsigned)p, crisp_op_kind_name(m->ops[p].kind));
        return crisp_error(CRISP_ERR_UNSUPPORTED,
                           "bias tuning: no last stage found: the head's features (value %u) "
                           "come from %s, not from a float32 global average pool "
                           "(GLOBAL_AVG_POOL or ADAPTIVE_AVG_POOL2D to 1x1) through RESHAPE ops",
                           (unsigned)h->inputs[0], from);
    }
    for (uint32_t k = p + 1; k < head.op; k++)
        if (m->ops[k].kind != CRISP_OP_RESHAPE)
            return crisp_error(CRISP_ERR_UNSUPPORTED,
                               "bias tuning: op %u (%s) runs between the global pool (op %u) and "
                               "the head (op %u); only RESHAPE ops may",
                               (unsigned)k, crisp_op_kind_name(m->ops[k].kind), (unsigned)p,
                               (unsigned)head.op);
    const crisp_value *pin = &m->values[m->ops[p].inputs[0]];
    const uint32_t H = pin->dims[1], W = pin->dims[2];
    uint32_t first = p;
    while (first > 0 && is_map(m, first - 1, H, W)) first--;
    if (first == p && m->values[m->ops[p].inputs[0]].producer == CRISP_NO_ID)
        return crisp_error(CRISP_ERR_UNSUPPORTED,
                           "bias tuning: no last stage found: the global pool (op %u) reads the "
                           "graph input",
                           (unsigned)p);
    uint32_t input = CRISP_NO_ID;
    for (uint32_t k = first; k <= p; k++) {
        const crisp_op *op = &m->ops[k];
        if (k < p && op->pointwise != CRISP_ACT_NONE && body_kind(op->kind))
            return crisp_error(CRISP_ERR_UNSUPPORTED,
                               "bias tuning: op %u (%s) of the last stage (ops %u..%u) has a "
                               "fused %s, which has no backward pass here (supported: none, "
                               "relu, relu6)",
                               (unsigned)k, crisp_op_kind_name(op->kind), (unsigned)first,
                               (unsigned)p, crisp_activation_name(op->pointwise));
        if (k < p && (!body_kind(op->kind) || op->dtype != CRISP_DTYPE_F32))
            return crisp_error(CRISP_ERR_UNSUPPORTED,
                               "bias tuning: op %u (%s%s) of the last stage (ops %u..%u, %ux%u) "
                               "has no backward pass here (supported: CONV2D, ADD, RELU, RELU6, "
                               "MAX/AVG/ADAPTIVE_AVG_POOL2D, RESHAPE, float32)",
                               (unsigned)k, crisp_op_kind_name(op->kind),
                               op->dtype == CRISP_DTYPE_F32 ? "" : ", int8", (unsigned)first,
                               (unsigned)p, (unsigned)H, (unsigned)W);
        for (uint32_t i = 0; i < op->input_count; i++) {
            const uint32_t u = op->inputs[i], q = m->values[u].producer;
            if (q != CRISP_NO_ID && q >= first) continue;
            if (input != CRISP_NO_ID && input != u)
                return crisp_error(CRISP_ERR_UNSUPPORTED,
                                   "bias tuning: the last stage (ops %u..%u, %ux%u) reads two "
                                   "values from before it (%u and %u); it needs exactly one",
                                   (unsigned)first, (unsigned)p, (unsigned)H, (unsigned)W,
                                   (unsigned)input, (unsigned)u);
            input = u;
        }
    }
    /* Nothing after the head may read the body's values (the tail reads the head's chain). */
    for (uint32_t k = p + 1; k < m->op_count; k++)
        for (uint32_t i = 0; i < m->ops[k].input_count; i++) {
            const uint32_t q = m->values[m->ops[k].inputs[i]].producer;
            if (q != CRISP_NO_ID && q >= first && q < p)
                return crisp_error(CRISP_ERR_UNSUPPORTED,
                                   "bias tuning: op %u (%s) after the global pool reads value "
                                   "%u of the last stage",
                                   (unsigned)k, crisp_op_kind_name(m->ops[k].kind),
                                   (unsigned)m->ops[k].inputs[i]);
        }
    uint32_t count = 0;
    for (uint32_t k = first; k < p; k++) {
        const crisp_op *op = &m->ops[k];
        count += op->kind == CRISP_OP_CONV2D && op->bias != CRISP_NO_ID && !shared(m, op->bias, k);
    }
    out->tuned = malloc((count ? count : 1) * sizeof *out->tuned);
    if (out->tuned == NULL) return crisp_error(CRISP_ERR_NOMEM, "bias tuning: out of memory");
    for (uint32_t k = first; k < p; k++) {
        const crisp_op *op = &m->ops[k];
        if (op->kind == CRISP_OP_CONV2D && op->bias != CRISP_NO_ID && !shared(m, op->bias, k)) {
            out->tuned[out->tuned_count++] = k;
            out->tuned_elements += m->tensors[op->bias].elements;
        }
    }
    out->first = first, out->pool = p, out->head = head.op;
    out->input_value = input, out->height = H, out->width = W;
    return CRISP_OK;
}

void crisp_stage_free(crisp_stage *s) {
    free(s->tuned);
    s->tuned = NULL;
}

crisp_status crisp_model_get_stage(const crisp_model *m, crisp_stage_info *out) {
    if (m == NULL || out == NULL)
        return crisp_error(CRISP_ERR_ARGUMENT, "crisp_model_get_stage: %s is NULL",
                           m == NULL ? "model" : "out");
    crisp_stage st;
    const crisp_status s = crisp_find_stage(m, &st);
    if (s != CRISP_OK) return s;
    memset(out, 0, sizeof *out);
    out->first_op = st.first, out->pool_op = st.pool, out->head_op = st.head;
    out->input_value = st.input_value;
    out->input_elements = (uint32_t)m->values[st.input_value].elements;
    out->height = st.height, out->width = st.width;
    out->tuned_ops = st.tuned_count;
    out->tuned_biases = st.tuned_elements;
    crisp_stage_free(&st);
    return CRISP_OK;
}

crisp_status crisp_model_get_stage_op(const crisp_model *m, uint32_t index, uint32_t *op,
                                      uint32_t *channels) {
    if (m == NULL || op == NULL || channels == NULL)
        return crisp_error(CRISP_ERR_ARGUMENT, "crisp_model_get_stage_op: %s is NULL",
                           m == NULL ? "model" : op == NULL ? "op" : "channels");
    crisp_stage st;
    const crisp_status s = crisp_find_stage(m, &st);
    if (s != CRISP_OK) return s;
    if (index >= st.tuned_count) {
        const uint32_t n = st.tuned_count;
        crisp_stage_free(&st);
        return crisp_error(CRISP_ERR_ARGUMENT,
                           "crisp_model_get_stage_op: index %u, the stage tunes %u ops",
                           (unsigned)index, (unsigned)n);
    }
    *op = st.tuned[index];
    *channels = (uint32_t)m->tensors[m->ops[*op].bias].elements;
    crisp_stage_free(&st);
    return CRISP_OK;
}
