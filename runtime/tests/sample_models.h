/* Test-only sample models using the 1.1 encodings, for whole-model tests
 * and as fuzzer seeds. */
#ifndef CRISP_TEST_SAMPLE_MODELS_H
#define CRISP_TEST_SAMPLE_MODELS_H

#include "model_builder.h"

/* Float32 CNN (3x8x8 -> 10): hybrid conv 2:4 per row, hybrid conv 2:8
 * shared by 4 rows, dense depthwise, block-only hybrid linear, softmax. */
void mb_sample_hybrid_cnn(mb_model *m);

/* int8 CNN (3x8x8 -> 10) using every int8 op: quantize, dense int8 conv +
 * relu, max pool, hybrid int8 conv + relu6 (V 2), depthwise stride 2,
 * 1x1 hybrid conv, add + relu, avg pool, adaptive and global avg pool,
 * reshape, hybrid int8 linear, relu, relu6, dequantize, softmax. */
void mb_sample_qcnn(mb_model *m);

#endif
