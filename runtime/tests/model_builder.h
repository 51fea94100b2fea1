/* Test-only writer of .crisp files, straight from docs/format.md, so the
 * tests can build valid models and then break them one field at a time. */
#ifndef CRISP_TEST_MODEL_BUILDER_H
#define CRISP_TEST_MODEL_BUILDER_H

#include <stddef.h>
#include <stdint.h>

#define MB_MAX 64
#define MB_NONE 0xFFFFFFFFu

typedef struct mb_value {
    uint32_t dtype; /* 1 float32 (default), 2 int8 */
    uint32_t rank, dims[4];
    float scale;
    int32_t zero_point;
} mb_value_rec;

typedef struct mb_tensor {
    uint32_t encoding; /* 1 DENSE_F32 (default); others carry raw bytes */
    uint32_t rank, dims[4];
    float *data;
    size_t count;
    uint8_t *raw; /* encoded bytes for encodings 2..4 (NULL: data as DENSE_F32) */
    size_t raw_size;
} mb_tensor_rec;

typedef struct mb_op {
    uint32_t kind, activation, input_count, inputs[2], output, weight, bias;
    int32_t params[16];
} mb_op_rec;

typedef struct mb_model {
    uint16_t version_major, version_minor; /* 1.1 by default; minor 0 writes 32-byte values */
    mb_value_rec values[MB_MAX];
    mb_tensor_rec tensors[MB_MAX];
    mb_op_rec ops[MB_MAX];
    uint32_t value_count, tensor_count, op_count, input, output;
    int label_count; /* -1: no LABL section */
    int32_t label_ids[MB_MAX];
    const char *label_names[MB_MAX];
    const char *provenance; /* NULL: no PROV section */
    struct {
        uint32_t kind, flags;
        const void *data;
        size_t size;
    } extra[4];
    int extra_count;
    unsigned rng;
} mb_model;

void mb_init(mb_model *m);
void mb_free(mb_model *m);
uint32_t mb_value(mb_model *m, uint32_t rank, uint32_t d0, uint32_t d1, uint32_t d2, uint32_t d3);
/* An int8 value: real = scale * (q - zero_point). */
uint32_t mb_qvalue(mb_model *m, uint32_t rank, uint32_t d0, uint32_t d1, uint32_t d2, uint32_t d3,
                   float scale, int32_t zero_point);
/* A tensor of encoding 2..4 from its encoded bytes (copied). */
uint32_t mb_tensor_raw(mb_model *m, uint32_t encoding, uint32_t rank, const uint32_t dims[4],
                       const void *bytes, size_t size);
/* DENSE_I8: f32 scales[dims[0]] then q (copied). */
uint32_t mb_tensor_i8(mb_model *m, uint32_t rank, const uint32_t dims[4], const float *scales,
                      const int8_t *q);
/* data NULL: deterministic pseudo-random values in [-0.5, 0.5]. */
uint32_t mb_tensor(mb_model *m, uint32_t rank, uint32_t d0, uint32_t d1, uint32_t d2, uint32_t d3,
                   const float *data);
/* params may be NULL (all zero); in1 MB_NONE for one-input ops. */
uint32_t mb_op(mb_model *m, uint32_t kind, uint32_t activation, uint32_t in0, uint32_t in1,
               uint32_t out, uint32_t weight, uint32_t bias, const int32_t *params);
void mb_add_section(mb_model *m, uint32_t kind, uint32_t flags, const void *data, size_t size);

/* A graph too large for mb_model (up to 65536 values): value_count float32
 * values of shape (elements), value 0 the input, the last op's output the
 * output, no tensors; ops[i] = {kind, input 0, input 1 or MB_NONE, output}.
 * Sections GRPH and WGHT (64 zero bytes), every CRC right. */
uint8_t *mb_build_graph(uint32_t value_count, uint32_t elements, uint32_t op_count,
                        const uint32_t (*ops)[4], size_t *size);

/* The file in a malloc'd buffer with every CRC right. */
uint8_t *mb_build(const mb_model *m, size_t *size);
/* Recompute section, table and header CRCs after editing a field, so a test
 * reaches the validator rather than the checksum. */
void mb_fix_crcs(uint8_t *file, size_t size);

/* File offsets of things inside a built file (found through its table). */
size_t mb_section_offset(const uint8_t *file, uint32_t kind);
size_t mb_section_entry(const uint8_t *file, uint32_t kind); /* its table entry */
size_t mb_value_at(const uint8_t *file, uint32_t index);
size_t mb_tensor_at(const uint8_t *file, uint32_t index);
size_t mb_op_at(const uint8_t *file, uint32_t index);
/* File offset of a tensor's data (inside WGHT). */
size_t mb_tensor_data_at(const uint8_t *file, uint32_t index);

void mb_put_u16(uint8_t *p, uint16_t v);
void mb_put_u32(uint8_t *p, uint32_t v);
void mb_put_u64(uint8_t *p, uint64_t v);
uint32_t mb_get_u32(const uint8_t *p);
uint64_t mb_get_u64(const uint8_t *p);

/* A small CNN using every op kind (3x8x8 in, 10 classes out, labels, PROV):
 * conv+relu, max pool, depthwise conv, residual add+relu, asymmetric-pad
 * dilated conv+relu6, avg pool (ceil, no pad count), adaptive avg pool,
 * global avg pool, reshape, relu, relu6, linear, softmax. */
void mb_sample_cnn(mb_model *m);

#endif
