/* Internal: the validated, immutable model shared by all sessions. */
#ifndef CRISP_MODEL_H
#define CRISP_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "crisp.h"
#include "format.h"
#include "kernels/ref.h"

typedef struct crisp_value {
    uint32_t rank;
    uint32_t dims[CRISP_MAX_RANK];
    uint64_t elements;
    uint32_t producer; /* op index, or CRISP_NO_ID for the graph input */
    uint32_t last_use; /* last op index reading it; op_count for the graph output */
    uint64_t arena_offset;
} crisp_value;

typedef struct crisp_tensor {
    uint32_t encoding;
    uint32_t rank;
    uint32_t dims[CRISP_MAX_RANK];
    uint64_t elements;
    const float *data; /* in place inside WGHT */
} crisp_tensor;

typedef struct crisp_op {
    uint32_t kind;
    uint32_t activation;
    uint32_t input_count;
    uint32_t inputs[2];
    uint32_t output;
    uint32_t weight; /* tensor id or CRISP_NO_ID */
    uint32_t bias;
    int32_t params[CRISP_OP_PARAM_COUNT];
    /* Kernel parameters derived once by shape inference. */
    union {
        crisp_conv2d_params conv;
        crisp_linear_params linear;
        crisp_pool2d_params pool;
        crisp_softmax_params softmax;
        crisp_minmax_params minmax; /* add, relu, relu6 */
    } k;
} crisp_op;

/* A located section after the container checks. */
typedef struct crisp_section {
    const uint8_t *data;
    uint64_t size;
} crisp_section;

struct crisp_model {
    /* Exactly one of these owns the bytes. */
    void *mapping;
    size_t mapping_size;
    void *owned;

    const uint8_t *bytes;
    uint64_t size;
    uint32_t format_major, format_minor;
    crisp_section grph, wght, labl, prov;

    uint32_t value_count, tensor_count, op_count;
    uint32_t input_value, output_value;
    crisp_value *values;
    crisp_tensor *tensors;
    crisp_op *ops;

    uint32_t label_count;
    int32_t *label_ids;
    char **label_names; /* pointers into label_text */
    char *label_text;

    char *provenance; /* NUL-terminated copy */
    size_t provenance_length;

    uint64_t arena_bytes, naive_bytes, macs;
};

/* Each stage validates what it reads and reports with crisp_error. */
crisp_status crisp_parse_container(crisp_model *model);
crisp_status crisp_parse_graph(crisp_model *model);
crisp_status crisp_infer_op(crisp_model *model, uint32_t op_index);
crisp_status crisp_parse_labels(crisp_model *model);
crisp_status crisp_parse_provenance(crisp_model *model);
crisp_status crisp_plan_model(crisp_model *model);

/* Formats "a,b,c" into buf for messages. */
const char *crisp_format_dims(char *buf, size_t size, uint32_t rank, const uint32_t *dims);

#endif
