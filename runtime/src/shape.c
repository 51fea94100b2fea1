/* Shape inference of one op whose record src/graph.c has checked: params in
 * range, weight/bias dims, the derived output shape against the stored one,
 * MACs. Fills the op's float kernel params (src/dtype.c replaces them with
 * the int8 ones for int8 ops). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "format.h"
#include "model.h"
#include "names.h"
#include "status.h"

#define MAX_PARAM 1024

typedef struct ctx {
    crisp_model *m;
    uint32_t index;
    crisp_op *op;
} ctx;

__attribute__((format(printf, 3, 4))) static crisp_status fail(const ctx *c, crisp_status status,
                                                               const char *fmt, ...) {
    char detail[CRISP_ERROR_CAPACITY];
    va_list args;
    va_start(args, fmt);
    vsnprintf(detail, sizeof detail, fmt, args);
    va_end(args);
    return crisp_error(status, "GRPH: op %u (%s): %s", (unsigned)c->index,
                       crisp_op_kind_name(c->op->kind), detail);
}

/* Reads param k into *out after checking lo <= value <= hi. */
static crisp_status param(const ctx *c, int k, int64_t lo, int64_t hi, int64_t *out) {
    int n;
    const char *const *names = crisp_op_param_names(c->op->kind, &n);
    const int32_t v = c->op->params[k];
    if (v < lo || v > hi)
        return fail(c, CRISP_ERR_FORMAT, "param %d (%s) is %d, expected %lld..%lld", k,
                    names[k], (int)v, (long long)lo, (long long)hi);
    *out = v;
    return CRISP_OK;
}

static const crisp_value *input(const ctx *c, int k) { return &c->m->values[c->op->inputs[k]]; }

static crisp_status want_rank3(const ctx *c) {
    const crisp_value *in = input(c, 0);
    char d[64];
    if (in->rank != 3)
        return fail(c, CRISP_ERR_FORMAT, "input value %u has shape (%s), expected rank 3 (C,H,W)",
                    (unsigned)c->op->inputs[0], crisp_format_dims(d, sizeof d, in->rank, in->dims));
    return CRISP_OK;
}

static crisp_status check_tensor(const ctx *c, const char *role, uint32_t id, uint32_t rank,
                                 const uint32_t *dims) {
    const crisp_tensor *t = &c->m->tensors[id];
    if (t->rank == rank && memcmp(t->dims, dims, rank * sizeof *dims) == 0) return CRISP_OK;
    char got[64], want[64];
    return fail(c, CRISP_ERR_FORMAT, "%s tensor %u has dims (%s), expected (%s)", role,
                (unsigned)id, crisp_format_dims(got, sizeof got, t->rank, t->dims),
                crisp_format_dims(want, sizeof want, rank, dims));
}

static crisp_status check_bias(const ctx *c, uint32_t cout) {
    if (c->op->bias == CRISP_NO_ID) return CRISP_OK;
    const uint32_t encoding = c->m->tensors[c->op->bias].encoding;
    if (encoding != CRISP_ENCODING_DENSE_F32)
        return fail(c, CRISP_ERR_FORMAT, "bias tensor %u is %s, expected DENSE_F32",
                    (unsigned)c->op->bias, crisp_encoding_name(encoding));
    return check_tensor(c, "bias", c->op->bias, 1, &cout);
}

static uint64_t sat_mul(uint64_t a, uint64_t b) {
    uint64_t r;
    return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

static uint64_t sat_add(uint64_t a, uint64_t b) { return a + b < a ? UINT64_MAX : a + b; }

/* Dense MACs, and those executed: a hybrid layer does one per stored value
 * (zeros at unused N:M positions included) per output pixel. */
static void add_macs(const ctx *c, uint64_t pixels, uint64_t dense) {
    const crisp_tensor *w = &c->m->tensors[c->op->weight];
    const int hybrid = w->encoding == CRISP_ENCODING_HYBRID_F32 ||
                       w->encoding == CRISP_ENCODING_HYBRID_I8;
    c->op->effective_macs = hybrid ? sat_mul(pixels, w->stored_values) : dense;
    c->op->macs = dense;
    c->m->macs = sat_add(c->m->macs, dense);
    c->m->effective_macs = sat_add(c->m->effective_macs, c->op->effective_macs);
}

/* torch's pooling_output_shape, with the ceil_mode rule that drops a last
 * window starting in the bottom/right padding. Returns < 1 when empty. */
static int64_t pool_out(int64_t in, int64_t k, int64_t pad, int64_t stride, int64_t dil,
                        int ceil_mode) {
    int64_t num = in + 2 * pad - dil * (k - 1) - 1 + (ceil_mode ? stride - 1 : 0);
    int64_t q = num >= 0 ? num / stride : -((-num + stride - 1) / stride);
    int64_t out = q + 1;
    if (ceil_mode && (out - 1) * stride >= in + pad) out--;
    return out;
}

static crisp_status infer_conv(const ctx *c, uint32_t out[4], uint32_t *rank) {
    crisp_status s;
    int64_t p[11];
    static const int64_t lo[11] = {1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1};
    for (int k = 0; k < 11; k++) {
        int64_t hi = k == 10 ? INT32_MAX : MAX_PARAM;
        if ((s = param(c, k, lo[k], hi, &p[k])) != CRISP_OK) return s;
    }
    if ((s = want_rank3(c)) != CRISP_OK) return s;
    const crisp_value *in = input(c, 0);
    const uint32_t cin = in->dims[0], groups = (uint32_t)p[10];
    if (cin % groups != 0)
        return fail(c, CRISP_ERR_FORMAT, "groups %u does not divide the %u input channels",
                    (unsigned)groups, (unsigned)cin);
    const crisp_tensor *w = &c->m->tensors[c->op->weight];
    const uint32_t cout = w->dims[0];
    const uint32_t want_w[4] = {cout, (uint32_t)p[0], (uint32_t)p[1], cin / groups};
    if ((s = check_tensor(c, "weight", c->op->weight, 4, want_w)) != CRISP_OK) return s;
    if (cout % groups != 0)
        return fail(c, CRISP_ERR_FORMAT,
                    "groups %u does not divide the %u output channels of weight tensor %u",
                    (unsigned)groups, (unsigned)cout, (unsigned)c->op->weight);
    if ((s = check_bias(c, cout)) != CRISP_OK) return s;
    if (in->dims[1] + p[4] + p[6] < p[8] * (p[0] - 1) + 1 ||
        in->dims[2] + p[5] + p[7] < p[9] * (p[1] - 1) + 1)
        return fail(c, CRISP_ERR_FORMAT,
                    "the dilated %lldx%lld kernel is larger than the padded %ux%u input",
                    (long long)p[0], (long long)p[1], (unsigned)in->dims[1], (unsigned)in->dims[2]);
    const int64_t ho = (in->dims[1] + p[4] + p[6] - p[8] * (p[0] - 1) - 1) / p[2] + 1;
    const int64_t wo = (in->dims[2] + p[5] + p[7] - p[9] * (p[1] - 1) - 1) / p[3] + 1;
    *rank = 3;
    out[0] = cout;
    out[1] = (uint32_t)ho;
    out[2] = (uint32_t)wo;
    crisp_conv2d_params *k = &c->op->k.conv;
    *k = (crisp_conv2d_params){
        .input_channels = cin, .input_height = in->dims[1], .input_width = in->dims[2],
        .output_channels = cout, .output_height = (size_t)ho, .output_width = (size_t)wo,
        .kernel_height = (size_t)p[0], .kernel_width = (size_t)p[1],
        .stride_height = (size_t)p[2], .stride_width = (size_t)p[3],
        .padding_top = (size_t)p[4], .padding_left = (size_t)p[5],
        .dilation_height = (size_t)p[8], .dilation_width = (size_t)p[9], .groups = groups};
    add_macs(c, (uint64_t)ho * (uint64_t)wo,
             sat_mul((uint64_t)cout * (uint64_t)ho * (uint64_t)wo,
                     (uint64_t)p[0] * (uint64_t)p[1] * (cin / groups)));
    return CRISP_OK;
}

static crisp_status infer_linear(const ctx *c, uint32_t out[4], uint32_t *rank) {
    const uint64_t cin = input(c, 0)->elements; /* <= 2^28 */
    const crisp_tensor *w = &c->m->tensors[c->op->weight];
    const uint32_t want_w[2] = {w->dims[0], (uint32_t)cin};
    crisp_status s = check_tensor(c, "weight", c->op->weight, 2, want_w);
    if (s != CRISP_OK || (s = check_bias(c, w->dims[0])) != CRISP_OK) return s;
    *rank = 1;
    out[0] = w->dims[0];
    c->op->k.linear = (crisp_linear_params){.input_features = cin, .output_features = w->dims[0]};
    add_macs(c, 1, w->elements);
    return CRISP_OK;
}

static crisp_status infer_pool(const ctx *c, uint32_t out[4], uint32_t *rank) {
    const int is_max = c->op->kind == CRISP_OP_MAX_POOL2D;
    int64_t p[9];
    crisp_status s;
    for (int k = 0; k < 4; k++)
        if ((s = param(c, k, 1, MAX_PARAM, &p[k])) != CRISP_OK) return s;
    /* torch: padding at most half the kernel. */
    for (int k = 4; k < 6; k++)
        if ((s = param(c, k, 0, p[k - 4] / 2, &p[k])) != CRISP_OK) return s;
    if (is_max) {
        if ((s = param(c, 6, 1, MAX_PARAM, &p[6])) != CRISP_OK ||
            (s = param(c, 7, 1, MAX_PARAM, &p[7])) != CRISP_OK ||
            (s = param(c, 8, 0, 1, &p[8])) != CRISP_OK)
            return s;
    } else {
        if ((s = param(c, 6, 0, 1, &p[6])) != CRISP_OK ||
            (s = param(c, 7, 0, 1, &p[7])) != CRISP_OK ||
            (s = param(c, 8, 0, INT32_MAX, &p[8])) != CRISP_OK)
            return s;
    }
    if ((s = want_rank3(c)) != CRISP_OK) return s;
    const crisp_value *in = input(c, 0);
    const int64_t dil_h = is_max ? p[6] : 1, dil_w = is_max ? p[7] : 1;
    const int ceil_mode = (int)(is_max ? p[8] : p[6]);
    const int64_t ho = pool_out(in->dims[1], p[0], p[4], p[2], dil_h, ceil_mode);
    const int64_t wo = pool_out(in->dims[2], p[1], p[5], p[3], dil_w, ceil_mode);
    if (ho < 1 || wo < 1)
        return fail(c, CRISP_ERR_FORMAT, "the output would be %lldx%lld: the window is larger "
                    "than the padded %ux%u input",
                    (long long)ho, (long long)wo, (unsigned)in->dims[1], (unsigned)in->dims[2]);
    *rank = 3;
    out[0] = in->dims[0];
    out[1] = (uint32_t)ho;
    out[2] = (uint32_t)wo;
    c->op->k.pool = (crisp_pool2d_params){
        .channels = in->dims[0], .input_height = in->dims[1], .input_width = in->dims[2],
        .output_height = (size_t)ho, .output_width = (size_t)wo,
        .kernel_height = (size_t)p[0], .kernel_width = (size_t)p[1],
        .stride_height = (size_t)p[2], .stride_width = (size_t)p[3],
        .padding_height = (size_t)p[4], .padding_width = (size_t)p[5],
        .dilation_height = (size_t)dil_h, .dilation_width = (size_t)dil_w,
        .count_include_pad = is_max ? 0 : (int)p[7],
        .divisor_override = is_max ? 0 : (size_t)p[8]};
    return CRISP_OK;
}

static crisp_status infer_shape(const ctx *c, uint32_t out[4], uint32_t *rank) {
    const crisp_value *in = input(c, 0);
    const crisp_value *stored = &c->m->values[c->op->output];
    crisp_status s;
    memcpy(out, in->dims, sizeof in->dims);
    *rank = in->rank;
    switch (c->op->kind) {
    case CRISP_OP_CONV2D: return infer_conv(c, out, rank);
    case CRISP_OP_LINEAR: return infer_linear(c, out, rank);
    case CRISP_OP_MAX_POOL2D:
    case CRISP_OP_AVG_POOL2D: return infer_pool(c, out, rank);
    case CRISP_OP_ADD: {
        const crisp_value *b = input(c, 1);
        char d0[64], d1[64];
        if (b->rank != in->rank || memcmp(b->dims, in->dims, sizeof in->dims) != 0)
            return fail(c, CRISP_ERR_FORMAT,
                        "inputs have shapes (%s) and (%s); ADD needs identical shapes",
                        crisp_format_dims(d0, sizeof d0, in->rank, in->dims),
                        crisp_format_dims(d1, sizeof d1, b->rank, b->dims));
        return CRISP_OK;
    }
    case CRISP_OP_MUL_CHANNELS: {
        /* The squeeze-excite product: x (C,H,W) times s (C,1,1) or (C), s broadcast over
         * H x W. Any other broadcast is refused (the lowering names the torch op). */
        const crisp_value *sc = input(c, 1);
        char d0[64], d1[64];
        if ((s = want_rank3(c)) != CRISP_OK) return s;
        const int per_channel =
            (sc->rank == 3 && sc->dims[0] == in->dims[0] && sc->dims[1] == 1 &&
             sc->dims[2] == 1) ||
            (sc->rank == 1 && sc->dims[0] == in->dims[0]);
        if (!per_channel)
            return fail(c, CRISP_ERR_FORMAT,
                        "inputs have shapes (%s) and (%s); MUL_CHANNELS needs (C,H,W) and "
                        "(C,1,1) or (C)",
                        crisp_format_dims(d0, sizeof d0, in->rank, in->dims),
                        crisp_format_dims(d1, sizeof d1, sc->rank, sc->dims));
        c->op->k.channels = (crisp_channels_params){in->dims[0], (size_t)in->dims[1] * in->dims[2]};
        return CRISP_OK;
    }
    case CRISP_OP_RELU:
    case CRISP_OP_RELU6:
    case CRISP_OP_SILU:
    case CRISP_OP_SIGMOID:
    case CRISP_OP_HARDSWISH:
    case CRISP_OP_HARDSIGMOID:
    case CRISP_OP_QUANTIZE:
    case CRISP_OP_DEQUANTIZE: return CRISP_OK;
    case CRISP_OP_GLOBAL_AVG_POOL:
        if ((s = want_rank3(c)) != CRISP_OK) return s;
        /* Both (C,1,1) and flattened (C) are valid outputs; follow the file. */
        *rank = stored->rank == 1 ? 1 : 3;
        out[1] = out[2] = *rank == 1 ? 0 : 1;
        return CRISP_OK;
    case CRISP_OP_ADAPTIVE_AVG_POOL2D: {
        int64_t oh = 0, ow = 0;
        if ((s = param(c, 0, 1, CRISP_MAX_VALUE_ELEMENTS, &oh)) != CRISP_OK ||
            (s = param(c, 1, 1, CRISP_MAX_VALUE_ELEMENTS, &ow)) != CRISP_OK ||
            (s = want_rank3(c)) != CRISP_OK)
            return s;
        out[1] = (uint32_t)oh;
        out[2] = (uint32_t)ow;
        c->op->k.pool = (crisp_pool2d_params){
            .channels = in->dims[0], .input_height = in->dims[1], .input_width = in->dims[2],
            .output_height = (size_t)oh, .output_width = (size_t)ow};
        return CRISP_OK;
    }
    case CRISP_OP_RESHAPE:
        if (stored->elements != in->elements)
            return fail(c, CRISP_ERR_FORMAT,
                        "output value %u has %llu elements, the input has %llu",
                        (unsigned)c->op->output, (unsigned long long)stored->elements,
                        (unsigned long long)in->elements);
        *rank = stored->rank;
        memcpy(out, stored->dims, sizeof stored->dims);
        return CRISP_OK;
    case CRISP_OP_SOFTMAX: {
        int64_t axis = 0;
        if ((s = param(c, 0, 0, (int64_t)in->rank - 1, &axis)) != CRISP_OK) return s;
        crisp_softmax_params *k = &c->op->k.softmax;
        k->outer = k->inner = 1;
        k->axis_length = in->dims[axis];
        for (int64_t d = 0; d < axis; d++) k->outer *= in->dims[d];
        for (uint32_t d = (uint32_t)axis + 1; d < in->rank; d++) k->inner *= in->dims[d];
        return CRISP_OK;
    }
    }
    return fail(c, CRISP_ERR_INTERNAL, "no shape rule for this kind");
}

crisp_status crisp_infer_op(crisp_model *m, uint32_t op_index) {
    const ctx c = {m, op_index, &m->ops[op_index]};
    crisp_op *op = c.op;
    uint32_t dims[4] = {0, 0, 0, 0}, rank = 0;
    crisp_status s = infer_shape(&c, dims, &rank);
    if (s != CRISP_OK) return s;
    const crisp_value *out = &m->values[op->output];
    if (out->rank != rank || memcmp(out->dims, dims, sizeof dims) != 0) {
        char got[64], want[64];
        return fail(&c, CRISP_ERR_FORMAT, "output value %u has shape (%s), expected (%s)",
                    (unsigned)op->output, crisp_format_dims(got, sizeof got, out->rank, out->dims),
                    crisp_format_dims(want, sizeof want, rank, dims));
    }
    uint32_t act = op->activation;
    if (op->kind == CRISP_OP_RELU) act = CRISP_ACT_RELU;
    if (op->kind == CRISP_OP_RELU6) act = CRISP_ACT_RELU6;
    /* The other activations are no clamp: the kernel's epilogue leaves the result as is
     * and src/dispatch.c applies them in a pass over the output. */
    const int clamps = act == CRISP_ACT_RELU || act == CRISP_ACT_RELU6;
    op->pointwise = clamps ? CRISP_ACT_NONE : act;
    if (op->kind == CRISP_OP_SILU) op->pointwise = CRISP_ACT_SILU;
    if (op->kind == CRISP_OP_SIGMOID) op->pointwise = CRISP_ACT_SIGMOID;
    if (op->kind == CRISP_OP_HARDSWISH) op->pointwise = CRISP_ACT_HARDSWISH;
    if (op->kind == CRISP_OP_HARDSIGMOID) op->pointwise = CRISP_ACT_HARDSIGMOID;
    const crisp_minmax_params mm = {clamps ? 0.0f : -INFINITY,
                                    act == CRISP_ACT_RELU6 ? 6.0f : INFINITY};
    if (op->kind == CRISP_OP_CONV2D) op->k.conv.minmax = mm;
    else if (op->kind == CRISP_OP_LINEAR) op->k.linear.minmax = mm;
    else if (op->kind == CRISP_OP_ADD || op->kind == CRISP_OP_RELU || op->kind == CRISP_OP_RELU6)
        op->k.minmax = mm;
    return CRISP_OK;
}
