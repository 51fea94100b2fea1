/* Op dtype signatures (docs/format.md, "Dtypes") and the int8 kernel params
 * that follow from the values' scales and zero points. Runs after shape
 * inference, which filled the float params this replaces for int8 ops. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "format.h"
#include "kernels/ukernels.h"
#include "model.h"
#include "names.h"
#include "status.h"

typedef struct ctx {
    const crisp_model *m;
    uint32_t index;
    crisp_op *op;
} ctx;

__attribute__((format(printf, 2, 3))) static crisp_status fail(const ctx *c, const char *fmt,
                                                               ...) {
    char detail[CRISP_ERROR_CAPACITY];
    va_list args;
    va_start(args, fmt);
    vsnprintf(detail, sizeof detail, fmt, args);
    va_end(args);
    return crisp_error(CRISP_ERR_FORMAT, "GRPH: op %u (%s): %s", (unsigned)c->index,
                       crisp_op_kind_name(c->op->kind), detail);
}

static const crisp_value *in_value(const ctx *c, int k) {
    return &c->m->values[c->op->inputs[k]];
}
static const crisp_value *out_value(const ctx *c) { return &c->m->values[c->op->output]; }

static crisp_status want_dtype(const ctx *c, const char *role, uint32_t id, uint32_t got,
                               uint32_t want, const char *why) {
    if (got == want) return CRISP_OK;
    return fail(c, "%s value %u is %s, expected %s (%s)", role, (unsigned)id,
                crisp_dtype_name(got), crisp_dtype_name(want), why);
}

/* (-128, 127) narrowed by relu (>= z) or relu6 (<= z + nearbyint(6 / s)). */
static void activation_range(uint32_t act, const crisp_value *y, int32_t *lo, int32_t *hi) {
    *lo = -128;
    *hi = 127;
    if (act == CRISP_ACT_NONE) return;
    *lo = y->zero_point;
    if (act == CRISP_ACT_RELU6) {
        const double six = nearbyint(6.0 / (double)y->scale); /* > 0; maybe huge */
        if (six < 255.0 && y->zero_point + (int32_t)six < *hi) *hi = y->zero_point + (int32_t)six;
    }
}

static crisp_status check_weighted(const ctx *c, uint32_t dtype) {
    const crisp_tensor *w = &c->m->tensors[c->op->weight];
    const int w_i8 = w->encoding == CRISP_ENCODING_DENSE_I8 ||
                     w->encoding == CRISP_ENCODING_HYBRID_I8;
    if (w_i8 != (dtype == CRISP_DTYPE_I8))
        return fail(c, "input value %u is %s but weight tensor %u is %s; %s needs %s weights",
                    (unsigned)c->op->inputs[0], crisp_dtype_name(dtype), (unsigned)c->op->weight,
                    crisp_encoding_name(w->encoding), crisp_dtype_name(dtype),
                    w_i8 ? "DENSE_F32 or HYBRID_F32" : "DENSE_I8 or HYBRID_I8");
    crisp_status s = want_dtype(c, "output", c->op->output, out_value(c)->dtype, dtype,
                                "conv and linear keep the input's dtype");
    if (s != CRISP_OK || dtype != CRISP_DTYPE_I8) return s;
    const crisp_value *x = in_value(c, 0), *y = out_value(c);
    crisp_qs8_requant q = {.input_zero_point = x->zero_point, .output_zero_point = y->zero_point};
    activation_range(c->op->activation, y, &q.output_min, &q.output_max);
    if (c->op->kind == CRISP_OP_CONV2D) {
        const crisp_conv2d_params geometry = c->op->k.conv;
        c->op->k.qconv = (crisp_qs8_conv2d_params){.conv = geometry, .q = q};
    } else {
        const crisp_linear_params l = c->op->k.linear;
        c->op->k.qlinear = (crisp_qs8_linear_params){
            .input_features = l.input_features, .output_features = l.output_features, .q = q};
    }
    return CRISP_OK; /* bias and multipliers: crisp_pack_op */
}

/* MAX_POOL2D, RESHAPE, RELU, RELU6 on int8 pass q through: same scale and zero point. */
static crisp_status check_passthrough(const ctx *c) {
    const crisp_value *x = in_value(c, 0), *y = out_value(c);
    if (x->scale != y->scale || x->zero_point != y->zero_point)
        return fail(c, "output value %u has scale %g and zero_point %d, but the input value %u "
                    "has %g and %d; this op keeps the input's quantisation",
                    (unsigned)c->op->output, (double)y->scale, (int)y->zero_point,
                    (unsigned)c->op->inputs[0], (double)x->scale, (int)x->zero_point);
    if (c->op->kind == CRISP_OP_RELU || c->op->kind == CRISP_OP_RELU6) {
        crisp_qs8_clamp_params *k = &c->op->k.qclamp;
        activation_range(c->op->kind == CRISP_OP_RELU ? CRISP_ACT_RELU : CRISP_ACT_RELU6, y,
                         &k->output_min, &k->output_max);
    }
    return CRISP_OK;
}

static crisp_status check_int8_op(const ctx *c) {
    const crisp_value *x = in_value(c, 0), *y = out_value(c);
    switch (c->op->kind) {
    case CRISP_OP_ADD: {
        const crisp_value *b = in_value(c, 1);
        crisp_qs8_add_params *k = &c->op->k.qadd;
        *k = (crisp_qs8_add_params){x->scale,      b->scale,      y->scale, x->zero_point,
                                    b->zero_point, y->zero_point, -128,     127, 0.0f, 0};
        activation_range(c->op->activation, y, &k->output_min, &k->output_max);
        crisp_qs8_add_prepare(k);
        return CRISP_OK;
    }
    case CRISP_OP_RELU:
    case CRISP_OP_RELU6:
    case CRISP_OP_MAX_POOL2D:
    case CRISP_OP_RESHAPE: return check_passthrough(c);
    case CRISP_OP_AVG_POOL2D:
    case CRISP_OP_GLOBAL_AVG_POOL:
    case CRISP_OP_ADAPTIVE_AVG_POOL2D: {
        crisp_pool2d_params pool = c->op->k.pool;
        if (c->op->kind == CRISP_OP_GLOBAL_AVG_POOL)
            pool = (crisp_pool2d_params){.channels = x->dims[0], .input_height = x->dims[1],
                                         .input_width = x->dims[2], .output_height = 1,
                                         .output_width = 1};
        c->op->k.qpool = (crisp_qs8_pool2d_params){pool, x->scale, y->scale, x->zero_point,
                                                   y->zero_point};
        return CRISP_OK;
    }
    default: return CRISP_OK;
    }
}

crisp_status crisp_check_op_dtypes(crisp_model *m, uint32_t op_index) {
    const ctx c = {m, op_index, &m->ops[op_index]};
    crisp_op *op = c.op;
    const uint32_t dtype = in_value(&c, 0)->dtype;
    op->dtype = dtype;
    crisp_status s;
    if (op->kind >= CRISP_OP_SILU || op->activation > CRISP_ACT_RELU6) {
        /* 1.2's activations and MUL_CHANNELS have float32 kernels only. */
        if ((s = want_dtype(&c, "input", op->inputs[0], dtype, CRISP_DTYPE_F32,
                            op->kind >= CRISP_OP_SILU
                                ? "this op is float32 only"
                                : "silu, sigmoid, hardswish and hardsigmoid are float32 only"))
            != CRISP_OK)
            return s;
    }
    switch (op->kind) {
    case CRISP_OP_CONV2D:
    case CRISP_OP_LINEAR: return check_weighted(&c, dtype);
    case CRISP_OP_SOFTMAX:
        if ((s = want_dtype(&c, "input", op->inputs[0], dtype, CRISP_DTYPE_F32,
                            "SOFTMAX is float32 only; DEQUANTIZE before it")) != CRISP_OK)
            return s;
        return want_dtype(&c, "output", op->output, out_value(&c)->dtype, CRISP_DTYPE_F32,
                          "SOFTMAX is float32 only");
    case CRISP_OP_QUANTIZE:
        if ((s = want_dtype(&c, "input", op->inputs[0], dtype, CRISP_DTYPE_F32,
                            "QUANTIZE converts float32 to int8")) != CRISP_OK ||
            (s = want_dtype(&c, "output", op->output, out_value(&c)->dtype, CRISP_DTYPE_I8,
                            "QUANTIZE converts float32 to int8")) != CRISP_OK)
            return s;
        op->k.quant = (crisp_qs8_quantize_params){out_value(&c)->scale, out_value(&c)->zero_point};
        return CRISP_OK;
    case CRISP_OP_DEQUANTIZE:
        if ((s = want_dtype(&c, "input", op->inputs[0], dtype, CRISP_DTYPE_I8,
                            "DEQUANTIZE converts int8 to float32")) != CRISP_OK ||
            (s = want_dtype(&c, "output", op->output, out_value(&c)->dtype, CRISP_DTYPE_F32,
                            "DEQUANTIZE converts int8 to float32")) != CRISP_OK)
            return s;
        op->k.quant = (crisp_qs8_quantize_params){in_value(&c, 0)->scale,
                                                  in_value(&c, 0)->zero_point};
        return CRISP_OK;
    default: break;
    }
    if (op->input_count == 2 &&
        (s = want_dtype(&c, "second input", op->inputs[1], in_value(&c, 1)->dtype, dtype,
                        "both inputs have one dtype")) != CRISP_OK)
        return s;
    if ((s = want_dtype(&c, "output", op->output, out_value(&c)->dtype, dtype,
                        "this op keeps its input's dtype")) != CRISP_OK)
        return s;
    return dtype == CRISP_DTYPE_I8 ? check_int8_op(&c) : CRISP_OK;
}
