/* GRPH: the graph header, the value records, the op records (fields, ids,
 * execution order, single production) and the graph-wide value checks.
 * Tensor records are src/tensor.c's; what an op computes is src/shape.c's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "format.h"
#include "model.h"
#include "names.h"
#include "status.h"

/* Shared by values and tensors (src/tensor.c): rank 1..4, used dims >= 1,
 * unused dims 0. Returns the element count, or 0 after reporting. */
uint64_t crisp_read_dims(const uint8_t *p, const char *what, uint32_t id, uint32_t *rank,
                         uint32_t dims[CRISP_MAX_RANK], uint64_t limit) {
    *rank = crisp_rd_u32(p);
    if (*rank < 1 || *rank > CRISP_MAX_RANK) {
        crisp_error(CRISP_ERR_FORMAT, "GRPH: %s %u: rank is %u, expected 1..%u", what,
                    (unsigned)id, (unsigned)*rank, CRISP_MAX_RANK);
        return 0;
    }
    uint64_t elements = 1;
    for (uint32_t d = 0; d < CRISP_MAX_RANK; d++) {
        dims[d] = crisp_rd_u32(p + 4 + 4 * d);
        if (d >= *rank && dims[d] != 0) {
            crisp_error(CRISP_ERR_FORMAT, "GRPH: %s %u: unused dim %u is %u, expected 0", what,
                        (unsigned)id, (unsigned)d, (unsigned)dims[d]);
            return 0;
        }
        if (d >= *rank) continue;
        if (dims[d] == 0) {
            crisp_error(CRISP_ERR_FORMAT, "GRPH: %s %u: dim %u is 0", what, (unsigned)id,
                        (unsigned)d);
            return 0;
        }
        /* elements <= limit <= 2^40 and dims[d] < 2^32: the product fits. */
        elements *= dims[d];
        if (elements > limit) {
            crisp_error(CRISP_ERR_FORMAT, "GRPH: %s %u: more than %llu elements", what,
                        (unsigned)id, (unsigned long long)limit);
            return 0;
        }
    }
    return elements;
}

/* dtype 1 float32 (scale and zero point 0) or 2 int8 (scale finite > 0,
 * zero point -128..127); 1.0's 32-byte records have no quantisation fields. */
static crisp_status read_quantisation(const crisp_model *m, uint32_t i, const uint8_t *p,
                                      crisp_value *v) {
    const int has_fields = m->value_record_size >= CRISP_VALUE_RECORD_SIZE;
    v->scale = has_fields ? crisp_rd_f32(p + CRISP_VAL_SCALE) : 0.0f;
    v->zero_point = has_fields ? crisp_rd_i32(p + CRISP_VAL_ZERO_POINT) : 0;
    if (v->dtype == CRISP_DTYPE_F32) {
        if (v->scale != 0.0f || v->zero_point != 0)
            return crisp_error(CRISP_ERR_FORMAT,
                               "GRPH: value %u (float32): scale %g and zero_point %d, expected 0 "
                               "and 0",
                               (unsigned)i, (double)v->scale, (int)v->zero_point);
        return CRISP_OK;
    }
    if (!has_fields)
        return crisp_error(CRISP_ERR_FORMAT,
                           "GRPH: value %u: dtype int8 needs the %u-byte value record with scale "
                           "and zero_point, but value_record_size is %u",
                           (unsigned)i, CRISP_VALUE_RECORD_SIZE, (unsigned)m->value_record_size);
    if (!(v->scale > 0.0f) || !isfinite(v->scale))
        return crisp_error(CRISP_ERR_FORMAT,
                           "GRPH: value %u (int8): scale is %g, expected finite and > 0",
                           (unsigned)i, (double)v->scale);
    if (v->zero_point < -128 || v->zero_point > 127)
        return crisp_error(CRISP_ERR_FORMAT,
                           "GRPH: value %u (int8): zero_point is %d, expected -128..127",
                           (unsigned)i, (int)v->zero_point);
    return CRISP_OK;
}

crisp_status crisp_parse_values(crisp_model *m) {
    const uint8_t *p = m->value_records;
    for (uint32_t i = 0; i < m->value_count; i++, p += m->value_record_size) {
        crisp_value *v = &m->values[i];
        v->dtype = crisp_rd_u32(p + CRISP_VAL_DTYPE);
        if (v->dtype != CRISP_DTYPE_F32 && v->dtype != CRISP_DTYPE_I8)
            return crisp_error(CRISP_ERR_UNSUPPORTED,
                               "GRPH: value %u: dtype %u is not supported (this runtime knows 1 = "
                               "float32, 2 = int8); upgrade crisp-edge",
                               (unsigned)i, (unsigned)v->dtype);
        v->elements = crisp_read_dims(p + CRISP_VAL_RANK, "value", i, &v->rank, v->dims,
                                      CRISP_MAX_VALUE_ELEMENTS);
        if (v->elements == 0) return CRISP_ERR_FORMAT;
        const uint32_t flags = crisp_rd_u32(p + CRISP_VAL_FLAGS);
        if (flags != 0)
            return crisp_error(CRISP_ERR_FORMAT, "GRPH: value %u: flags are 0x%08X, expected 0",
                               (unsigned)i, (unsigned)flags);
        crisp_status s = read_quantisation(m, i, p, v);
        if (s != CRISP_OK) return s;
        v->producer = CRISP_NO_ID;
        v->last_use = 0;
    }
    if (m->values[m->input_value].dtype != CRISP_DTYPE_F32 ||
        m->values[m->output_value].dtype != CRISP_DTYPE_F32)
        return crisp_error(CRISP_ERR_FORMAT,
                           "GRPH: the graph %s value %u is int8; graph input and output are "
                           "float32 (QUANTIZE and DEQUANTIZE convert)",
                           m->values[m->input_value].dtype != CRISP_DTYPE_F32 ? "input"
                                                                              : "output",
                           (unsigned)(m->values[m->input_value].dtype != CRISP_DTYPE_F32
                                          ? m->input_value
                                          : m->output_value));
    return CRISP_OK;
}

/* The fused activation, the weight/bias ids and the unused params: what the
 * record says before any shape is looked at. */
static crisp_status check_record(const crisp_model *m, uint32_t i, const char *name) {
    const crisp_op *op = &m->ops[i];
    const int takes_weights = op->kind == CRISP_OP_CONV2D || op->kind == CRISP_OP_LINEAR;
    if (op->activation > CRISP_ACT_MAX)
        return crisp_error(CRISP_ERR_UNSUPPORTED,
                           "GRPH: op %u (%s): activation %u is not supported by this runtime (it "
                           "knows 0..%d); upgrade crisp-edge",
                           (unsigned)i, name, (unsigned)op->activation, CRISP_ACT_MAX);
    if (op->activation != CRISP_ACT_NONE && !takes_weights && op->kind != CRISP_OP_ADD)
        return crisp_error(CRISP_ERR_FORMAT,
                           "GRPH: op %u (%s): activation is %u, but only CONV2D, LINEAR and ADD "
                           "carry a fused activation",
                           (unsigned)i, name, (unsigned)op->activation);
    if (takes_weights) {
        if (op->weight >= m->tensor_count)
            return crisp_error(CRISP_ERR_FORMAT,
                               "GRPH: op %u (%s): weight is tensor %u, but there are %u tensors",
                               (unsigned)i, name, (unsigned)op->weight,
                               (unsigned)m->tensor_count);
        if (op->bias != CRISP_NO_ID && op->bias >= m->tensor_count)
            return crisp_error(CRISP_ERR_FORMAT,
                               "GRPH: op %u (%s): bias is tensor %u, but there are %u tensors",
                               (unsigned)i, name, (unsigned)op->bias, (unsigned)m->tensor_count);
    } else if (op->weight != CRISP_NO_ID || op->bias != CRISP_NO_ID) {
        return crisp_error(CRISP_ERR_FORMAT,
                           "GRPH: op %u (%s): weight/bias are %u/%u, expected 0xFFFFFFFF (this "
                           "kind has no tensors)",
                           (unsigned)i, name, (unsigned)op->weight, (unsigned)op->bias);
    }
    int used;
    crisp_op_param_names(op->kind, &used);
    for (int k = used; k < CRISP_OP_PARAM_COUNT; k++)
        if (op->params[k] != 0)
            return crisp_error(CRISP_ERR_FORMAT,
                               "GRPH: op %u (%s): unused param %d is %d, expected 0", (unsigned)i,
                               name, k, (int)op->params[k]);
    return CRISP_OK;
}

crisp_status crisp_parse_op(crisp_model *m, uint32_t i) {
    const uint8_t *p = m->op_records + (uint64_t)i * m->op_record_size;
    crisp_op *op = &m->ops[i];
    op->kind = crisp_rd_u32(p + CRISP_OP_KIND);
    if (op->kind < 1 || op->kind > CRISP_OP_KIND_MAX)
        return crisp_error(CRISP_ERR_UNSUPPORTED,
                           "GRPH: op %u: kind %u is not supported by this runtime (it knows "
                           "1..%d); upgrade crisp-edge",
                           (unsigned)i, (unsigned)op->kind, CRISP_OP_KIND_MAX);
    const char *name = crisp_op_kind_name(op->kind);
    op->activation = crisp_rd_u32(p + CRISP_OP_ACTIVATION);
    op->input_count = crisp_rd_u32(p + CRISP_OP_INPUT_COUNT);
    op->inputs[0] = crisp_rd_u32(p + CRISP_OP_INPUTS);
    op->inputs[1] = crisp_rd_u32(p + CRISP_OP_INPUTS + 4);
    op->output = crisp_rd_u32(p + CRISP_OP_OUTPUT);
    op->weight = crisp_rd_u32(p + CRISP_OP_WEIGHT);
    op->bias = crisp_rd_u32(p + CRISP_OP_BIAS);
    for (int k = 0; k < CRISP_OP_PARAM_COUNT; k++)
        op->params[k] = crisp_rd_i32(p + CRISP_OP_PARAMS + 4 * k);

    const uint32_t want_inputs =
        op->kind == CRISP_OP_ADD || op->kind == CRISP_OP_MUL_CHANNELS ? 2 : 1;
    if (op->input_count != want_inputs)
        return crisp_error(CRISP_ERR_FORMAT, "GRPH: op %u (%s): input_count is %u, expected %u",
                           (unsigned)i, name, (unsigned)op->input_count, (unsigned)want_inputs);
    for (uint32_t k = 0; k < 2; k++) {
        const uint32_t id = op->inputs[k];
        if (k >= want_inputs) {
            if (id != CRISP_NO_ID)
                return crisp_error(CRISP_ERR_FORMAT,
                                   "GRPH: op %u (%s): unused input slot %u is %u, expected "
                                   "0xFFFFFFFF",
                                   (unsigned)i, name, (unsigned)k, (unsigned)id);
            continue;
        }
        if (id >= m->value_count)
            return crisp_error(CRISP_ERR_FORMAT,
                               "GRPH: op %u (%s): input %u is value %u, but there are %u values",
                               (unsigned)i, name, (unsigned)k, (unsigned)id,
                               (unsigned)m->value_count);
        if (id != m->input_value && m->values[id].producer == CRISP_NO_ID)
            return crisp_error(CRISP_ERR_FORMAT,
                               "GRPH: op %u (%s): input %u reads value %u before any earlier op "
                               "produces it (ops must be in execution order)",
                               (unsigned)i, name, (unsigned)k, (unsigned)id);
        m->values[id].last_use = i;
    }
    if (op->output >= m->value_count)
        return crisp_error(CRISP_ERR_FORMAT,
                           "GRPH: op %u (%s): output is value %u, but there are %u values",
                           (unsigned)i, name, (unsigned)op->output, (unsigned)m->value_count);
    if (op->output == m->input_value)
        return crisp_error(CRISP_ERR_FORMAT,
                           "GRPH: op %u (%s): output is value %u, the graph input", (unsigned)i,
                           name, (unsigned)op->output);
    crisp_value *out = &m->values[op->output];
    if (out->producer != CRISP_NO_ID)
        return crisp_error(CRISP_ERR_FORMAT,
                           "GRPH: op %u (%s): output value %u is already produced by op %u",
                           (unsigned)i, name, (unsigned)op->output, (unsigned)out->producer);
    out->producer = i;
    out->last_use = i;
    return check_record(m, i, name);
}

crisp_status crisp_parse_graph_header(crisp_model *m) {
    const uint8_t *g = m->grph.data;
    if (m->grph.size < CRISP_GRAPH_HEADER_SIZE)
        return crisp_error(CRISP_ERR_FORMAT,
                           "GRPH: section is %llu bytes, smaller than the %u-byte graph header",
                           (unsigned long long)m->grph.size, CRISP_GRAPH_HEADER_SIZE);
    const uint32_t counts[3] = {crisp_rd_u32(g), crisp_rd_u32(g + 8), crisp_rd_u32(g + 16)};
    const uint32_t strides[3] = {crisp_rd_u32(g + 4), crisp_rd_u32(g + 12), crisp_rd_u32(g + 20)};
    static const char *const names[3] = {"value", "tensor", "op"};
    static const uint32_t mins[3] = {1, 0, 1};
    static const uint32_t maxs[3] = {CRISP_MAX_VALUES, CRISP_MAX_TENSORS, CRISP_MAX_OPS};
    static const uint32_t sizes[3] = {CRISP_VALUE_RECORD_SIZE_1_0, CRISP_TENSOR_RECORD_SIZE,
                                      CRISP_OP_RECORD_SIZE};
    uint64_t need = CRISP_GRAPH_HEADER_SIZE;
    for (int t = 0; t < 3; t++) {
        if (counts[t] < mins[t] || counts[t] > maxs[t])
            return crisp_error(CRISP_ERR_FORMAT, "GRPH: %s_count is %u, expected %u..%u",
                               names[t], (unsigned)counts[t], (unsigned)mins[t],
                               (unsigned)maxs[t]);
        if (strides[t] < sizes[t] || strides[t] > CRISP_MAX_RECORD_SIZE)
            return crisp_error(CRISP_ERR_FORMAT,
                               "GRPH: %s_record_size is %u, expected %u (or up to %u in a later "
                               "minor version)",
                               names[t], (unsigned)strides[t], (unsigned)sizes[t],
                               CRISP_MAX_RECORD_SIZE);
        if (t == 0 && strides[0] != CRISP_VALUE_RECORD_SIZE_1_0 &&
            strides[0] < CRISP_VALUE_RECORD_SIZE)
            return crisp_error(CRISP_ERR_FORMAT,
                               "GRPH: value_record_size is %u, expected %u (or %u in 1.0 files)",
                               (unsigned)strides[0], CRISP_VALUE_RECORD_SIZE,
                               CRISP_VALUE_RECORD_SIZE_1_0);
        need += (uint64_t)counts[t] * strides[t]; /* <= 3 * 2^16 * 2^12: exact */
    }
    if (need > m->grph.size)
        return crisp_error(CRISP_ERR_FORMAT,
                           "GRPH: %u values, %u tensors and %u ops need %llu bytes, but the "
                           "section is %llu bytes",
                           (unsigned)counts[0], (unsigned)counts[1], (unsigned)counts[2],
                           (unsigned long long)need, (unsigned long long)m->grph.size);
    m->value_count = counts[0];
    m->tensor_count = counts[1];
    m->op_count = counts[2];
    m->input_value = crisp_rd_u32(g + 24);
    m->output_value = crisp_rd_u32(g + 28);
    if (m->input_value >= m->value_count)
        return crisp_error(CRISP_ERR_FORMAT, "GRPH: input_value is %u, but there are %u values",
                           (unsigned)m->input_value, (unsigned)m->value_count);
    if (m->output_value >= m->value_count)
        return crisp_error(CRISP_ERR_FORMAT, "GRPH: output_value is %u, but there are %u values",
                           (unsigned)m->output_value, (unsigned)m->value_count);
    if (m->output_value == m->input_value)
        return crisp_error(CRISP_ERR_FORMAT,
                           "GRPH: output_value %u is the input value; the output must be an "
                           "op's result",
                           (unsigned)m->output_value);

    m->values = calloc(m->value_count, sizeof *m->values);
    m->tensors = calloc(m->tensor_count ? m->tensor_count : 1, sizeof *m->tensors);
    m->ops = calloc(m->op_count, sizeof *m->ops);
    if (m->values == NULL || m->tensors == NULL || m->ops == NULL)
        return crisp_error(CRISP_ERR_NOMEM, "GRPH: out of memory for %u values and %u ops",
                           (unsigned)m->value_count, (unsigned)m->op_count);

    m->value_record_size = strides[0];
    m->tensor_record_size = strides[1];
    m->op_record_size = strides[2];
    m->value_records = g + CRISP_GRAPH_HEADER_SIZE;
    m->tensor_records = m->value_records + (uint64_t)counts[0] * strides[0];
    m->op_records = m->tensor_records + (uint64_t)counts[1] * strides[1];
    return CRISP_OK;
}

crisp_status crisp_check_graph_values(crisp_model *m) {
    for (uint32_t v = 0; v < m->value_count; v++)
        if (v != m->input_value && m->values[v].producer == CRISP_NO_ID)
            return crisp_error(CRISP_ERR_FORMAT,
                               "GRPH: value %u is produced by no op (every value but the input "
                               "must be an op's output)",
                               (unsigned)v);
    /* The output must survive to the end of the run. */
    m->values[m->output_value].last_use = m->op_count;
    return CRISP_OK;
}
