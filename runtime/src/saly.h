/* Internal: the optional SALY section (per-class block saliency, docs/format.md),
 * parsed and validated on use: by crisp_model_class_coverage and the head
 * writer, which re-orders its class rows (src/saly.c). */
#ifndef CRISP_SALY_H
#define CRISP_SALY_H

#include <stdint.h>

#include "model.h"

typedef struct crisp_saly_layer {
    uint32_t tensor, classes, nbr, nbc;
    const uint8_t *name; /* name_length bytes, not NUL-terminated */
    uint32_t name_length;
    const uint8_t *data; /* classes x nbr x nbc little-endian halves */
} crisp_saly_layer;

typedef struct crisp_saly {
    uint32_t layer_count;
    crisp_saly_layer *layers; /* malloc'd */
} crisp_saly;

/* Parses model->saly (which must be present): every record in bounds, its
 * tensor a weight tensor of the file, `classes` equal to the model's output
 * count (the label order), nbr x nbc the tensor's block grid when it is
 * hybrid. CRISP_ERR_FORMAT naming the record otherwise. */
crisp_status crisp_saly_parse(const crisp_model *model, crisp_saly *out);
void crisp_saly_free(crisp_saly *saly);

/* IEEE 754 binary16 to float, exactly (subnormals, infinities, NaN). */
float crisp_f16_to_f32(uint16_t h);

#endif
