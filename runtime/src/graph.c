/* GRPH: graph header, value/tensor/op records, ids and execution order. */
#include <stdio.h>
#include <stdlib.h>

#include "format.h"
#include "model.h"
#include "status.h"

const char *crisp_format_dims(char *buf, size_t size, uint32_t rank, const uint32_t *dims) {
    size_t used = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < rank && i < CRISP_MAX_RANK && used < size; i++) {
        int n = snprintf(buf + used, size - used, i ? ",%u" : "%u", (unsigned)dims[i]);
        if (n < 0) break;
        used += (size_t)n;
    }
    return buf;
}

/* Shared by values and tensors: rank 1..4, used dims >= 1, unused dims 0.
 * Returns the element count, or 0 after reporting. */
static uint64_t read_dims(const uint8_t *p, const char *what, uint32_t id, uint32_t *rank,
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

static crisp_status read_values(crisp_model *m, const uint8_t *p, uint32_t stride) {
    for (uint32_t i = 0; i < m->value_count; i++, p += stride) {
        crisp_value *v = &m->values[i];
        const uint32_t dtype = crisp_rd_u32(p + CRISP_VAL_DTYPE);
        if (dtype != CRISP_DTYPE_F32)
            return crisp_error(CRISP_ERR_UNSUPPORTED,
                               "GRPH: value %u: dtype %u is not supported (1.0 knows 1 = float32)",
                               (unsigned)i, (unsigned)dtype);
        v->elements = read_dims(p + CRISP_VAL_RANK, "value", i, &v->rank, v->dims,
                                CRISP_MAX_VALUE_ELEMENTS);
        if (v->elements == 0) return CRISP_ERR_FORMAT;
        const uint32_t flags = crisp_rd_u32(p + CRISP_VAL_FLAGS);
        if (flags != 0)
            return crisp_error(CRISP_ERR_FORMAT, "GRPH: value %u: flags are 0x%08X, expected 0",
                               (unsigned)i, (unsigned)flags);
        v->producer = CRISP_NO_ID;
        v->last_use = 0;
    }
    return CRISP_OK;
}

static crisp_status read_tensors(crisp_model *m, const uint8_t *p, uint32_t stride) {
    for (uint32_t i = 0; i < m->tensor_count; i++, p += stride) {
        crisp_tensor *t = &m->tensors[i];
        t->encoding = crisp_rd_u32(p + CRISP_TEN_ENCODING);
        if (t->encoding != CRISP_ENCODING_DENSE_F32)
            return crisp_error(CRISP_ERR_UNSUPPORTED,
                               "GRPH: tensor %u: encoding %u is not supported by this runtime "
                               "(it knows 1 = DENSE_F32); upgrade crisp-edge",
                               (unsigned)i, (unsigned)t->encoding);
        /* Bounded by WGHT below; this limit only keeps the arithmetic exact. */
        t->elements = read_dims(p + CRISP_TEN_RANK, "tensor", i, &t->rank, t->dims,
                                (uint64_t)1 << 40);
        if (t->elements == 0) return CRISP_ERR_FORMAT;
        const uint64_t offset = crisp_rd_u64(p + CRISP_TEN_OFFSET);
        const uint64_t size = crisp_rd_u64(p + CRISP_TEN_SIZE);
        const uint32_t flags = crisp_rd_u32(p + CRISP_TEN_FLAGS);
        if (size != 4 * t->elements)
            return crisp_error(CRISP_ERR_FORMAT,
                               "GRPH: tensor %u: size is %llu bytes, expected 4 x %llu elements "
                               "= %llu",
                               (unsigned)i, (unsigned long long)size,
                               (unsigned long long)t->elements,
                               (unsigned long long)(4 * t->elements));
        if (offset % CRISP_ALIGN != 0)
            return crisp_error(CRISP_ERR_FORMAT,
                               "GRPH: tensor %u: offset %llu is not a multiple of %u",
                               (unsigned)i, (unsigned long long)offset, CRISP_ALIGN);
        if (offset > m->wght.size || size > m->wght.size - offset)
            return crisp_error(CRISP_ERR_FORMAT,
                               "GRPH: tensor %u: data at offset %llu (%llu bytes) lies outside "
                               "the %llu-byte WGHT section",
                               (unsigned)i, (unsigned long long)offset, (unsigned long long)size,
                               (unsigned long long)m->wght.size);
        if (flags != 0)
            return crisp_error(CRISP_ERR_FORMAT, "GRPH: tensor %u: flags are 0x%08X, expected 0",
                               (unsigned)i, (unsigned)flags);
        /* WGHT is 64-aligned in an aligned mapping/buffer, offset too: aligned floats. */
        t->data = (const float *)(const void *)(m->wght.data + offset);
    }
    return CRISP_OK;
}

/* Record fields and ids; shape and params are crisp_infer_op's. */
static crisp_status read_op(crisp_model *m, uint32_t i, const uint8_t *p) {
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

    const uint32_t want_inputs = op->kind == CRISP_OP_ADD ? 2 : 1;
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
    return crisp_infer_op(m, i);
}

crisp_status crisp_parse_graph(crisp_model *m) {
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
    static const uint32_t sizes[3] = {CRISP_VALUE_RECORD_SIZE, CRISP_TENSOR_RECORD_SIZE,
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

    const uint8_t *p = g + CRISP_GRAPH_HEADER_SIZE;
    crisp_status s = read_values(m, p, strides[0]);
    if (s != CRISP_OK) return s;
    p += (uint64_t)counts[0] * strides[0];
    if ((s = read_tensors(m, p, strides[1])) != CRISP_OK) return s;
    p += (uint64_t)counts[1] * strides[1];
    for (uint32_t i = 0; i < m->op_count; i++, p += strides[2])
        if ((s = read_op(m, i, p)) != CRISP_OK) return s;

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
