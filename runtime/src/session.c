/* Sessions: one arena per caller; runs ops in file order with the
 * reference kernels, one sample at a time. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "model.h"
#include "status.h"

struct crisp_session {
    const crisp_model *model;
    float *arena;
};

crisp_status crisp_session_create(const crisp_model *model, crisp_session **out) {
    if (out == NULL) return crisp_error(CRISP_ERR_ARGUMENT, "crisp_session_create: out is NULL");
    *out = NULL;
    if (model == NULL)
        return crisp_error(CRISP_ERR_ARGUMENT, "crisp_session_create: model is NULL");
    if (model->arena_bytes > SIZE_MAX)
        return crisp_error(CRISP_ERR_NOMEM, "session: a %llu-byte arena does not fit in memory",
                           (unsigned long long)model->arena_bytes);
    crisp_session *s = calloc(1, sizeof *s);
    /* arena_bytes is a non-zero multiple of 64, as aligned_alloc wants. */
    float *arena = aligned_alloc(CRISP_ALIGN, (size_t)model->arena_bytes);
    if (s == NULL || arena == NULL) {
        free(s);
        free(arena);
        return crisp_error(CRISP_ERR_NOMEM, "session: out of memory for a %llu-byte arena",
                           (unsigned long long)model->arena_bytes);
    }
    s->model = model;
    s->arena = arena;
    *out = s;
    return CRISP_OK;
}

void crisp_session_free(crisp_session *s) {
    if (s == NULL) return;
    free(s->arena);
    free(s);
}

static float *buffer(const crisp_session *s, uint32_t value) {
    return s->arena + s->model->values[value].arena_offset / sizeof(float);
}

static void run_op(const crisp_session *s, const crisp_op *op) {
    const crisp_model *m = s->model;
    const float *x = buffer(s, op->inputs[0]);
    float *y = buffer(s, op->output);
    const float *w = op->weight != CRISP_NO_ID ? m->tensors[op->weight].data : NULL;
    const float *b = op->bias != CRISP_NO_ID ? m->tensors[op->bias].data : NULL;
    const size_t n = (size_t)m->values[op->output].elements;
    switch ((enum crisp_op_kind)op->kind) {
    case CRISP_OP_CONV2D: crisp_f32_conv2d__ref(&op->k.conv, x, w, b, y); break;
    case CRISP_OP_LINEAR: crisp_f32_linear__ref(&op->k.linear, x, w, b, y); break;
    case CRISP_OP_ADD: crisp_f32_add__ref(n, x, buffer(s, op->inputs[1]), y, &op->k.minmax); break;
    case CRISP_OP_RELU:
    case CRISP_OP_RELU6: crisp_f32_clamp__ref(n, x, y, &op->k.minmax); break;
    case CRISP_OP_MAX_POOL2D: crisp_f32_maxpool2d__ref(&op->k.pool, x, y); break;
    case CRISP_OP_AVG_POOL2D: crisp_f32_avgpool2d__ref(&op->k.pool, x, y); break;
    case CRISP_OP_GLOBAL_AVG_POOL: {
        const crisp_value *in = &m->values[op->inputs[0]];
        crisp_f32_global_avgpool__ref(in->dims[0], (size_t)in->dims[1] * in->dims[2], x, y);
        break;
    }
    case CRISP_OP_ADAPTIVE_AVG_POOL2D: crisp_f32_adaptive_avgpool2d__ref(&op->k.pool, x, y); break;
    case CRISP_OP_RESHAPE: memcpy(y, x, n * sizeof *y); break;
    case CRISP_OP_SOFTMAX: crisp_f32_softmax__ref(&op->k.softmax, x, y); break;
    }
}

static void shape_text(char *buf, size_t size, const crisp_value *v) {
    char dims[64];
    crisp_format_dims(dims, sizeof dims, v->rank, v->dims);
    snprintf(buf, size, "(%s)", dims);
}

crisp_status crisp_session_run(crisp_session *s, const float *input, size_t input_count,
                               float *output, size_t output_count) {
    if (s == NULL || input == NULL || output == NULL)
        return crisp_error(CRISP_ERR_ARGUMENT, "crisp_session_run: %s is NULL",
                           s == NULL ? "session" : input == NULL ? "input" : "output");
    const crisp_model *m = s->model;
    const crisp_value *in = &m->values[m->input_value], *out = &m->values[m->output_value];
    const size_t in_n = (size_t)in->elements, out_n = (size_t)out->elements;
    char shape[80];
    if (input_count == 0 || input_count % in_n != 0) {
        shape_text(shape, sizeof shape, in);
        return crisp_error(CRISP_ERR_SHAPE,
                           "input has %zu floats; the model takes a multiple of %zu = %s per "
                           "sample",
                           input_count, in_n, shape);
    }
    const size_t batch = input_count / in_n;
    if (output_count / out_n != batch || output_count % out_n != 0) {
        shape_text(shape, sizeof shape, out);
        return crisp_error(CRISP_ERR_SHAPE,
                           "output has %zu floats; a batch of %zu needs %zu x %zu = %s per "
                           "sample",
                           output_count, batch, batch, out_n, shape);
    }
    float *x = buffer(s, m->input_value);
    const float *y = buffer(s, m->output_value);
    for (size_t i = 0; i < batch; i++) {
        memcpy(x, input + i * in_n, in_n * sizeof *x);
        for (uint32_t k = 0; k < m->op_count; k++) run_op(s, &m->ops[k]);
        memcpy(output + i * out_n, y, out_n * sizeof *y);
    }
    return CRISP_OK;
}
