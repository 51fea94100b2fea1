/* Internal: the .crisp v1.1 on-disk layout (docs/format.md, field by field)
 * and little-endian readers. Mirrors crisp_edge/format/spec.py: change together. */
#ifndef CRISP_FORMAT_H
#define CRISP_FORMAT_H

#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
/* Weights are used in place as float32, which the file stores little-endian. */
#error "crisp-edge runs on little-endian CPUs only"
#endif

#define CRISP_MAGIC "\x89" "CRISP\r\n"
#define CRISP_MAGIC_SIZE 8
#define CRISP_ALIGN 64u

/* Header (64 bytes). */
#define CRISP_HEADER_SIZE 64u
#define CRISP_HDR_MAGIC 0
#define CRISP_HDR_VERSION_MAJOR 8
#define CRISP_HDR_VERSION_MINOR 10
#define CRISP_HDR_HEADER_SIZE 12
#define CRISP_HDR_FILE_SIZE 16
#define CRISP_HDR_TABLE_OFFSET 24
#define CRISP_HDR_SECTION_COUNT 32
#define CRISP_HDR_ENTRY_SIZE 36
#define CRISP_HDR_FLAGS 40
#define CRISP_HDR_TABLE_CRC 44
#define CRISP_HDR_CRC 60
#define CRISP_MAX_SECTIONS 64u
/* A later minor version may grow entries; a bound keeps a hostile stride
 * from turning the table into gigabytes of reads. */
#define CRISP_MAX_ENTRY_SIZE 4096u

/* Section table entry (32 bytes). */
#define CRISP_ENTRY_SIZE 32u
#define CRISP_ENT_KIND 0
#define CRISP_ENT_FLAGS 4
#define CRISP_ENT_OFFSET 8
#define CRISP_ENT_SIZE 16
#define CRISP_ENT_CRC 24
#define CRISP_SECTION_REQUIRED 1u

#define CRISP_FOURCC(a, b, c, d) \
    ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
#define CRISP_KIND_GRPH CRISP_FOURCC('G', 'R', 'P', 'H')
#define CRISP_KIND_WGHT CRISP_FOURCC('W', 'G', 'H', 'T')
#define CRISP_KIND_LABL CRISP_FOURCC('L', 'A', 'B', 'L')
#define CRISP_KIND_PROV CRISP_FOURCC('P', 'R', 'O', 'V')
#define CRISP_KIND_SALY CRISP_FOURCC('S', 'A', 'L', 'Y')
#define CRISP_KIND_PREP CRISP_FOURCC('P', 'R', 'E', 'P')

/* GRPH header (32 bytes) and records. */
#define CRISP_GRAPH_HEADER_SIZE 32u
#define CRISP_VALUE_RECORD_SIZE 48u
/* 1.0 value records: no quantisation fields, every value float32. */
#define CRISP_VALUE_RECORD_SIZE_1_0 32u
#define CRISP_TENSOR_RECORD_SIZE 48u
#define CRISP_OP_RECORD_SIZE 96u
#define CRISP_MAX_RECORD_SIZE 4096u
#define CRISP_MAX_VALUES 65536u
#define CRISP_MAX_TENSORS 65536u
#define CRISP_MAX_OPS 65536u
#define CRISP_MAX_RANK 4u
#define CRISP_MAX_VALUE_ELEMENTS (1u << 28)
#define CRISP_NO_ID 0xFFFFFFFFu

#define CRISP_DTYPE_F32 1u
#define CRISP_DTYPE_I8 2u

enum crisp_encoding {
    CRISP_ENCODING_DENSE_F32 = 1,
    CRISP_ENCODING_HYBRID_F32 = 2,
    CRISP_ENCODING_DENSE_I8 = 3,
    CRISP_ENCODING_HYBRID_I8 = 4,
    CRISP_ENCODING_MAX = 4
};

/* Hybrid-sparse layout: u32[8] header, then block_row_ptr, block_col,
 * (int8: scales), values, index bit stream. */
#define CRISP_HYBRID_HEADER_SIZE 32u
#define CRISP_HYBRID_MAX_M 64u

/* Value record field offsets. */
#define CRISP_VAL_DTYPE 0
#define CRISP_VAL_RANK 4
#define CRISP_VAL_DIMS 8
#define CRISP_VAL_FLAGS 24
#define CRISP_VAL_SCALE 32
#define CRISP_VAL_ZERO_POINT 36
/* Tensor record field offsets. */
#define CRISP_TEN_ENCODING 0
#define CRISP_TEN_RANK 4
#define CRISP_TEN_DIMS 8
#define CRISP_TEN_OFFSET 24
#define CRISP_TEN_SIZE 32
#define CRISP_TEN_FLAGS 40
/* Op record field offsets. */
#define CRISP_OP_KIND 0
#define CRISP_OP_ACTIVATION 4
#define CRISP_OP_INPUT_COUNT 8
#define CRISP_OP_INPUTS 12
#define CRISP_OP_OUTPUT 20
#define CRISP_OP_WEIGHT 24
#define CRISP_OP_BIAS 28
#define CRISP_OP_PARAMS 32
#define CRISP_OP_PARAM_COUNT 16

enum crisp_op_kind {
    CRISP_OP_CONV2D = 1,
    CRISP_OP_LINEAR = 2,
    CRISP_OP_ADD = 3,
    CRISP_OP_RELU = 4,
    CRISP_OP_RELU6 = 5,
    CRISP_OP_MAX_POOL2D = 6,
    CRISP_OP_AVG_POOL2D = 7,
    CRISP_OP_GLOBAL_AVG_POOL = 8,
    CRISP_OP_ADAPTIVE_AVG_POOL2D = 9,
    CRISP_OP_RESHAPE = 10,
    CRISP_OP_SOFTMAX = 11,
    CRISP_OP_QUANTIZE = 12,
    CRISP_OP_DEQUANTIZE = 13,
    /* 1.2: the activations of timm's mobile networks, and the squeeze-excite product. */
    CRISP_OP_SILU = 14,
    CRISP_OP_SIGMOID = 15,
    CRISP_OP_HARDSWISH = 16,
    CRISP_OP_HARDSIGMOID = 17,
    CRISP_OP_MUL_CHANNELS = 18,
    CRISP_OP_KIND_MAX = 18
};

/* relu and relu6 are clamps, which every kernel applies in its epilogue; the
 * others (1.2) are a pass over the op's output after its kernel. */
enum crisp_activation {
    CRISP_ACT_NONE = 0,
    CRISP_ACT_RELU = 1,
    CRISP_ACT_RELU6 = 2,
    CRISP_ACT_SILU = 3,
    CRISP_ACT_SIGMOID = 4,
    CRISP_ACT_HARDSWISH = 5,
    CRISP_ACT_HARDSIGMOID = 6,
    CRISP_ACT_MAX = 6
};

/* LABL. */
#define CRISP_LABEL_HEADER_SIZE 16u
#define CRISP_LABEL_RECORD_SIZE 16u
#define CRISP_MAX_LABEL_NAME 1024u

/* PREP (one record; later minor versions may append fields). The resize
 * policies and channel orders are CRISP_RESIZE_* / CRISP_CHANNELS_* of crisp.h. */
#define CRISP_PREP_RECORD_SIZE 64u
#define CRISP_PREP_RECORD_SIZE_OFS 0
#define CRISP_PREP_CHANNELS 4
#define CRISP_PREP_HEIGHT 8
#define CRISP_PREP_WIDTH 12
#define CRISP_PREP_RESIZE 16
#define CRISP_PREP_RESIZE_SIZE 20
#define CRISP_PREP_CHANNEL_ORDER 24
#define CRISP_PREP_SCALE 28
#define CRISP_PREP_MEAN 32
#define CRISP_PREP_STD 44
/* shorter_side: max(H, W) <= resize_size <= this. */
#define CRISP_PREP_MAX_RESIZE_SIZE 16384u

/* Byte assembly: no alignment or aliasing assumptions about the file. The
 * caller has bounds-checked [p, p + width). */
static inline uint16_t crisp_rd_u16(const uint8_t *p) {
    return (uint16_t)(p[0] | (unsigned)p[1] << 8);
}
static inline uint32_t crisp_rd_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t crisp_rd_u64(const uint8_t *p) {
    return (uint64_t)crisp_rd_u32(p) | (uint64_t)crisp_rd_u32(p + 4) << 32;
}
static inline int32_t crisp_rd_i32(const uint8_t *p) {
    uint32_t u = crisp_rd_u32(p);
    /* Two's complement conversion without implementation-defined casts. */
    return u <= 0x7FFFFFFFu ? (int32_t)u : -(int32_t)(~u) - 1;
}

static inline float crisp_rd_f32(const uint8_t *p) {
    const uint32_t u = crisp_rd_u32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

#endif
