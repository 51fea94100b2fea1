/* Test-only models with a classifier head, for the personalisation tests:
 * a small CNN whose head is a dense or hybrid LINEAR followed by chosen
 * RESHAPE / SOFTMAX ops, an int8 one, and a SALY section encoder. */
#ifndef CRISP_TEST_HEAD_MODELS_H
#define CRISP_TEST_HEAD_MODELS_H

#include <stddef.h>
#include <stdint.h>

#include "model_builder.h"

typedef struct hm_options {
    uint32_t classes;   /* head Cout (>= 1) */
    uint32_t features;  /* conv channels = head Cin */
    int bias;           /* the head has a bias */
    int hybrid_conv;    /* the conv is HYBRID_F32 (block-pruned), else dense */
    int hybrid_head;    /* the head is HYBRID_F32 (2:4 in 2x4 blocks), else DENSE_F32 */
    uint32_t head_v;    /* hybrid head: rows sharing an N:M selection (0 = 1) */
    const char *tail;   /* ops after the head: "" or e.g. "s" softmax, "rs" reshape to (1,C) +
                           softmax axis 1, "r" reshape only */
    int labels;         /* write LABL: ids 100 + 3i, names "c<i>" */
    const char *provenance; /* PROV text or NULL */
} hm_options;

/* Input (3,6,6) -> conv 3x3 pad 1 + relu -> global avg pool -> reshape (F)
 * -> head LINEAR (F -> C) -> tail. Value ids: 0 input, 1 conv, 2 pool,
 * 3 features, 4 head output. The head weight is tensor hm_head_weight(m). */
void hm_cnn(mb_model *m, const hm_options *o);
/* The conv's weight tensor id (SALY's tensor) and the head's weight tensor id. */
uint32_t hm_conv_weight(void);
uint32_t hm_head_weight(const mb_model *m);

/* Float input (8) -> QUANTIZE -> int8 LINEAR (8 -> 5) -> DEQUANTIZE -> SOFTMAX. */
void hm_int8(mb_model *m);

/* One SALY layer: weight tensor id, nbr x nbc blocks, `classes` rows of data. */
typedef struct hm_saly_layer {
    uint32_t tensor, classes, nbr, nbc;
    const char *name;
    const uint16_t *data; /* classes * nbr * nbc halves */
} hm_saly_layer;
/* The encoded SALY section (malloc'd, *size bytes). */
uint8_t *hm_saly(const hm_saly_layer *layers, uint32_t count, size_t *size);
/* float -> IEEE half (round to nearest even), for test data. */
uint16_t hm_half(float f);

/* Loads a built model from memory (NULL and a CHECK failure on error). */
struct crisp_model;
struct crisp_model *hm_load(const mb_model *mb);

#endif
