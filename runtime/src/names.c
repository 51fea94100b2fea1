/* Enum-to-text helpers, all in one place (declarations in names.h). */
#include "names.h"

#include <stdio.h>

#include "crisp.h"
#include "format.h"
#include "hybrid_form.h"
#include "model.h"

static const char *const kind_names[] = {
    "?",         "CONV2D",          "LINEAR",
    "ADD",       "RELU",            "RELU6",
    "MAX_POOL2D", "AVG_POOL2D",     "GLOBAL_AVG_POOL",
    "ADAPTIVE_AVG_POOL2D", "RESHAPE", "SOFTMAX",
    "QUANTIZE",  "DEQUANTIZE",     "SILU",
    "SIGMOID",   "HARDSWISH",       "HARDSIGMOID",
    "MUL_CHANNELS"};

const char *crisp_op_kind_name(uint32_t kind) {
    return kind >= 1 && kind <= CRISP_OP_KIND_MAX ? kind_names[kind] : "unknown";
}

/* Parameter names by kind (docs/format.md, "Op record"). */
static const char *const conv_params[] = {"kh", "kw", "stride_h", "stride_w", "pad_top",
                                          "pad_left", "pad_bottom", "pad_right", "dilation_h",
                                          "dilation_w", "groups"};
static const char *const maxpool_params[] = {"kh", "kw", "stride_h", "stride_w", "pad_h",
                                             "pad_w", "dilation_h", "dilation_w", "ceil_mode"};
static const char *const avgpool_params[] = {"kh", "kw", "stride_h", "stride_w", "pad_h",
                                             "pad_w", "ceil_mode", "count_include_pad",
                                             "divisor_override"};
static const char *const adaptive_params[] = {"oh", "ow"};
static const char *const softmax_params[] = {"axis"};

const char *const *crisp_op_param_names(uint32_t kind, int *count) {
    switch (kind) {
    case CRISP_OP_CONV2D: *count = 11; return conv_params;
    case CRISP_OP_MAX_POOL2D: *count = 9; return maxpool_params;
    case CRISP_OP_AVG_POOL2D: *count = 9; return avgpool_params;
    case CRISP_OP_ADAPTIVE_AVG_POOL2D: *count = 2; return adaptive_params;
    case CRISP_OP_SOFTMAX: *count = 1; return softmax_params;
    default: *count = 0; return NULL;
    }
}

const char *crisp_activation_name(uint32_t activation) {
    static const char *const names[] = {"none", "relu", "relu6", "silu",
                                        "sigmoid", "hardswish", "hardsigmoid"};
    return activation <= CRISP_ACT_MAX ? names[activation] : "unknown";
}

const char *crisp_encoding_name(uint32_t encoding) {
    switch (encoding) {
    case CRISP_ENCODING_DENSE_F32: return "DENSE_F32";
    case CRISP_ENCODING_HYBRID_F32: return "HYBRID_F32";
    case CRISP_ENCODING_DENSE_I8: return "DENSE_I8";
    case CRISP_ENCODING_HYBRID_I8: return "HYBRID_I8";
    default: return "?";
    }
}

const char *crisp_dtype_name(uint32_t dtype) {
    return dtype == CRISP_DTYPE_I8 ? "int8" : "float32";
}

const char *crisp_section_kind_name(uint32_t kind, char buf[16]) {
    char c[4];
    for (int i = 0; i < 4; i++) {
        c[i] = (char)(kind >> (8 * i));
        if (c[i] <= 0x20 || c[i] > 0x7E) {
            snprintf(buf, 16, "0x%08X", (unsigned)kind);
            return buf;
        }
    }
    snprintf(buf, 16, "%c%c%c%c", c[0], c[1], c[2], c[3]);
    return buf;
}

const char *crisp_fast_path_name(uint32_t path, uint32_t choice) {
    if (choice == CRISP_HYBRID_DENSE && path == CRISP_FAST_GEMM) return "gemm (expanded)";
    if (choice == CRISP_HYBRID_DENSE && path == CRISP_FAST_GEMV) return "gemv (expanded)";
    if (choice == CRISP_HYBRID_DENSE_COPY && path == CRISP_FAST_GEMM) return "gemm (dense copy)";
    if (choice == CRISP_HYBRID_DENSE_COPY && path == CRISP_FAST_GEMV) return "gemv (dense copy)";
    if (choice == CRISP_HYBRID_DENSE_COPY && path == CRISP_FAST_QS8_GEMV)
        return "qs8_gemv (dense copy)";
    if (choice == CRISP_HYBRID_FILLED && path == CRISP_FAST_SPMM) return "spmm (filled)";
    if (choice == CRISP_HYBRID_FILLED && path == CRISP_FAST_QS8_SPMM) return "qs8_spmm (filled)";
    switch (path) {
    case CRISP_FAST_GEMM: return "gemm";
    case CRISP_FAST_SPMM: return "spmm";
    case CRISP_FAST_DWCONV: return "dwconv";
    case CRISP_FAST_MAXPOOL: return "maxpool";
    case CRISP_FAST_GEMV: return "gemv";
    case CRISP_FAST_QS8_SPMM: return "qs8_spmm";
    case CRISP_FAST_QS8_GEMM: return "qs8_gemm";
    case CRISP_FAST_QS8_DWCONV: return "qs8_dwconv";
    case CRISP_FAST_QS8_GEMV: return "qs8_gemv";
    case CRISP_FAST_QS8_SPMV: return "qs8_spmv";
    case CRISP_FAST_SPMV: return "spmv";
    case CRISP_FAST_NMV24: return "nmv24";
    default: return "reference";
    }
}

const char *crisp_fused_path_name(uint32_t path, uint32_t choice) {
    if (path == CRISP_FAST_GEMM)
        return choice == CRISP_HYBRID_DENSE        ? "gemm (expanded, fused into next)"
               : choice == CRISP_HYBRID_DENSE_COPY ? "gemm (dense copy, fused into next)"
                                                   : "gemm (fused into next)";
    if (path == CRISP_FAST_SPMM)
        return choice == CRISP_HYBRID_FILLED ? "spmm (filled, fused into next)"
                                             : "spmm (fused into next)";
    return "fused into next";
}

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

const char *crisp_status_name(crisp_status status) {
    switch (status) {
    case CRISP_OK: return "CRISP_OK";
    case CRISP_ERR_ARGUMENT: return "CRISP_ERR_ARGUMENT";
    case CRISP_ERR_IO: return "CRISP_ERR_IO";
    case CRISP_ERR_FORMAT: return "CRISP_ERR_FORMAT";
    case CRISP_ERR_CHECKSUM: return "CRISP_ERR_CHECKSUM";
    case CRISP_ERR_VERSION: return "CRISP_ERR_VERSION";
    case CRISP_ERR_UNSUPPORTED: return "CRISP_ERR_UNSUPPORTED";
    case CRISP_ERR_SHAPE: return "CRISP_ERR_SHAPE";
    case CRISP_ERR_NOMEM: return "CRISP_ERR_NOMEM";
    case CRISP_ERR_INTERNAL: return "CRISP_ERR_INTERNAL";
    case CRISP_ERR_LIMIT: return "CRISP_ERR_LIMIT";
    }
    return "CRISP_ERR_UNKNOWN";
}
