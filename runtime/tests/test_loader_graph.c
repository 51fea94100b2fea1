/* Malformed GRPH, LABL and PROV content with every CRC recomputed, so the
 * validator itself (not the checksum) must catch each one. */
#include <stdlib.h>
#include <string.h>

#include "loader_check.h"
#include "model_builder.h"

#define KIND(s) ((uint32_t)(s)[0] | (uint32_t)(s)[1] << 8 | (uint32_t)(s)[2] << 16 | (uint32_t)(s)[3] << 24)

uint8_t *bad_fresh(size_t *size);
void test_graph_records(void);

/* WEIGHT: the tensor's data in WGHT (field: byte offset in it). */
typedef enum { GRAPH_HEADER, VALUE, TENSOR, OP, LABEL, WEIGHT } where;

typedef struct patch {
    where at;
    uint32_t index;  /* record index */
    size_t field;    /* byte offset in the record */
    int width;       /* 4 or 8 */
    uint64_t value;
    crisp_status status;
    const char *needle;
} patch;

static const patch cases[] = {
    {GRAPH_HEADER, 0, 0, 4, 0, CRISP_ERR_FORMAT, "GRPH: value_count is 0"},
    {GRAPH_HEADER, 0, 0, 4, 65536, CRISP_ERR_FORMAT, "GRPH: 65536 values, 7 tensors and 14 ops need"},
    {GRAPH_HEADER, 0, 0, 4, 70000, CRISP_ERR_FORMAT, "GRPH: value_count is 70000"},
    {GRAPH_HEADER, 0, 16, 4, 0, CRISP_ERR_FORMAT, "GRPH: op_count is 0"},
    {GRAPH_HEADER, 0, 20, 4, 95, CRISP_ERR_FORMAT, "GRPH: op_record_size is 95"},
    {GRAPH_HEADER, 0, 12, 4, 1u << 20, CRISP_ERR_FORMAT, "GRPH: tensor_record_size"},
    {GRAPH_HEADER, 0, 24, 4, 15, CRISP_ERR_FORMAT, "GRPH: input_value is 15"},
    {GRAPH_HEADER, 0, 28, 4, 99, CRISP_ERR_FORMAT, "GRPH: output_value is 99"},
    {GRAPH_HEADER, 0, 28, 4, 0, CRISP_ERR_FORMAT, "GRPH: output_value 0 is the input value"},
    {VALUE, 3, 0, 4, 3, CRISP_ERR_UNSUPPORTED, "GRPH: value 3: dtype 3 is not supported"},
    {VALUE, 3, 0, 4, 2, CRISP_ERR_FORMAT, "GRPH: value 3 (int8): scale is 0, expected finite and > 0"},
    {VALUE, 3, 4, 4, 5, CRISP_ERR_FORMAT, "GRPH: value 3: rank is 5"},
    {VALUE, 3, 4, 4, 0, CRISP_ERR_FORMAT, "GRPH: value 3: rank is 0"},
    {VALUE, 3, 12, 4, 0, CRISP_ERR_FORMAT, "GRPH: value 3: dim 1 is 0"},
    {VALUE, 3, 20, 4, 1, CRISP_ERR_FORMAT, "GRPH: value 3: unused dim 3 is 1"},
    {VALUE, 3, 8, 4, 1u << 25, CRISP_ERR_FORMAT, "GRPH: value 3: more than 268435456 elements"},
    {VALUE, 3, 24, 4, 1, CRISP_ERR_FORMAT, "GRPH: value 3: flags"},
    {VALUE, 1, 16, 4, 7, CRISP_ERR_FORMAT,
     "GRPH: op 0 (CONV2D): output value 1 has shape (8,8,7), expected (8,8,8)"},
    {TENSOR, 2, 0, 4, 5, CRISP_ERR_UNSUPPORTED, "GRPH: tensor 2: encoding 5 is not supported"},
    {TENSOR, 2, 0, 4, 0, CRISP_ERR_UNSUPPORTED, "GRPH: tensor 2: encoding 0 is not supported"},
    {TENSOR, 2, 0, 4, 3, CRISP_ERR_FORMAT, "GRPH: tensor 2 (DENSE_I8): size is 288 bytes, expected 4 x 8 scales + 72 values = 104"},
    {TENSOR, 2, 32, 8, 12, CRISP_ERR_FORMAT, "GRPH: tensor 2: size is 12 bytes"},
    {TENSOR, 2, 24, 8, 32, CRISP_ERR_FORMAT, "GRPH: tensor 2: offset 32 is not a multiple of 64"},
    {TENSOR, 2, 24, 8, 1u << 20, CRISP_ERR_FORMAT, "GRPH: tensor 2: data at offset 1048576"},
    {TENSOR, 2, 24, 8, UINT64_MAX - 63, CRISP_ERR_FORMAT, "lies outside the"},
    {TENSOR, 2, 8, 4, 0x7FFFFFFF, CRISP_ERR_FORMAT, "GRPH: tensor 2: size is"},
    {TENSOR, 2, 40, 4, 1, CRISP_ERR_FORMAT, "GRPH: tensor 2: flags"},
    {OP, 5, 0, 4, 99, CRISP_ERR_UNSUPPORTED, "GRPH: op 5: kind 99 is not supported"},
    {OP, 5, 0, 4, 0, CRISP_ERR_UNSUPPORTED, "GRPH: op 5: kind 0 is not supported"},
    {OP, 0, 4, 4, 7, CRISP_ERR_UNSUPPORTED, "GRPH: op 0 (CONV2D): activation 7 is not supported by this runtime (it knows 0..6); upgrade crisp-edge"},
    {OP, 1, 4, 4, 1, CRISP_ERR_FORMAT, "GRPH: op 1 (MAX_POOL2D): activation is 1, but only"},
    {OP, 0, 8, 4, 2, CRISP_ERR_FORMAT, "GRPH: op 0 (CONV2D): input_count is 2, expected 1"},
    {OP, 0, 16, 4, 0, CRISP_ERR_FORMAT, "GRPH: op 0 (CONV2D): unused input slot 1 is 0"},
    {OP, 0, 12, 4, 40, CRISP_ERR_FORMAT, "GRPH: op 0 (CONV2D): input 0 is value 40, but there are 15"},
    {OP, 1, 12, 4, 2, CRISP_ERR_FORMAT, "GRPH: op 1 (MAX_POOL2D): input 0 reads value 2 before"},
    {OP, 1, 20, 4, 1, CRISP_ERR_FORMAT, "GRPH: op 1 (MAX_POOL2D): output value 1 is already produced by op 0"},
    {OP, 1, 20, 4, 0, CRISP_ERR_FORMAT, "the graph input"},
    {OP, 1, 20, 4, 99, CRISP_ERR_FORMAT, "GRPH: op 1 (MAX_POOL2D): output is value 99"},
    {OP, 0, 24, 4, 7, CRISP_ERR_FORMAT, "GRPH: op 0 (CONV2D): weight is tensor 7, but there are 7"},
    {OP, 0, 28, 4, 9, CRISP_ERR_FORMAT, "GRPH: op 0 (CONV2D): bias is tensor 9"},
    {OP, 0, 28, 4, 0, CRISP_ERR_FORMAT, "GRPH: op 0 (CONV2D): bias tensor 0 has dims (8,3,3,3), expected (8)"},
    {OP, 1, 24, 4, 0, CRISP_ERR_FORMAT, "GRPH: op 1 (MAX_POOL2D): weight/bias are 0/4294967295"},
    {OP, 0, 32, 4, 1, CRISP_ERR_FORMAT,
     "GRPH: op 0 (CONV2D): weight tensor 0 has dims (8,3,3,3), expected (8,1,3,3)"},
    {OP, 0, 40, 4, 0, CRISP_ERR_FORMAT, "GRPH: op 0 (CONV2D): param 2 (stride_h) is 0, expected 1..1024"},
    {OP, 0, 48, 4, 2000, CRISP_ERR_FORMAT, "param 4 (pad_top) is 2000"},
    {OP, 0, 48, 4, 0xFFFFFFFF, CRISP_ERR_FORMAT, "param 4 (pad_top) is -1"},
    {OP, 0, 72, 4, 3, CRISP_ERR_FORMAT,
     "GRPH: op 0 (CONV2D): weight tensor 0 has dims (8,3,3,3), expected (8,3,3,1)"},
    {OP, 0, 72, 4, 2, CRISP_ERR_FORMAT, "GRPH: op 0 (CONV2D): groups 2 does not divide the 3 input"},
    {OP, 0, 64, 4, 9, CRISP_ERR_FORMAT, "GRPH: op 0 (CONV2D): the dilated 3x3 kernel is larger"},
    {OP, 0, 76, 4, 1, CRISP_ERR_FORMAT, "GRPH: op 0 (CONV2D): unused param 11 is 1"},
    {OP, 1, 48, 4, 2, CRISP_ERR_FORMAT, "GRPH: op 1 (MAX_POOL2D): param 4 (pad_h) is 2, expected 0..1"},
    {OP, 1, 64, 4, 2, CRISP_ERR_FORMAT, "param 8 (ceil_mode) is 2, expected 0..1"},
    {OP, 1, 32, 4, 1025, CRISP_ERR_FORMAT, "param 0 (kh) is 1025"},
    {OP, 1, 32, 4, 16, CRISP_ERR_FORMAT, "GRPH: op 1 (MAX_POOL2D): the output would be"},
    {OP, 5, 60, 4, 2, CRISP_ERR_FORMAT, "GRPH: op 5 (AVG_POOL2D): param 7 (count_include_pad) is 2"},
    {OP, 5, 64, 4, 0xFFFFFFFF, CRISP_ERR_FORMAT, "param 8 (divisor_override) is -1"},
    {OP, 6, 32, 4, 0, CRISP_ERR_FORMAT, "GRPH: op 6 (ADAPTIVE_AVG_POOL2D): param 0 (oh) is 0"},
    {OP, 6, 32, 4, 4, CRISP_ERR_FORMAT, "output value 7 has shape (12,3,3), expected (12,4,3)"},
    {OP, 3, 16, 4, 1, CRISP_ERR_FORMAT, "GRPH: op 3 (ADD): inputs have shapes (8,4,4) and (8,8,8)"},
    {OP, 3, 8, 4, 1, CRISP_ERR_FORMAT, "GRPH: op 3 (ADD): input_count is 1, expected 2"},
    {OP, 13, 32, 4, 1, CRISP_ERR_FORMAT, "GRPH: op 13 (SOFTMAX): param 0 (axis) is 1, expected 0..0"},
    {OP, 9, 12, 4, 7, CRISP_ERR_FORMAT, "GRPH: op 9 (RESHAPE): output value 10 has 12 elements, the input has 108"},
    {OP, 10, 24, 4, 6, CRISP_ERR_FORMAT, "GRPH: op 10 (LINEAR): weight tensor 6 has dims (10), expected (10,12)"},
    {VALUE, 9, 8, 4, 13, CRISP_ERR_FORMAT,
     "GRPH: op 8 (GLOBAL_AVG_POOL): output value 9 has shape (13,1,1), expected (12,1,1)"},
    {LABEL, 0, 0, 4, 9, CRISP_ERR_FORMAT, "LABL: count is 9, but the model has 10 outputs"},
    {LABEL, 0, 4, 4, 8, CRISP_ERR_FORMAT, "LABL: record_size is 8"},
    {LABEL, 0, 8, 4, 1u << 30, CRISP_ERR_FORMAT, "LABL: 10 records of 16 bytes"},
    {LABEL, 3, 4, 4, 1000, CRISP_ERR_FORMAT, "LABL: label 2: name at 1000"},
    {LABEL, 3, 8, 4, 2000, CRISP_ERR_FORMAT, "LABL: label 2: name_length is 2000"},
    {WEIGHT, 0, 8, 4, 0x7FC00000, CRISP_ERR_FORMAT,
     "GRPH: tensor 0 (DENSE_F32): value 2 is nan, expected finite (the model holds a NaN"},
    {WEIGHT, 1, 0, 4, 0xFF800000, CRISP_ERR_FORMAT, "GRPH: tensor 1 (DENSE_F32): value 0 is -inf"},
};

static size_t record_offset(const uint8_t *f, where at, uint32_t index) {
    switch (at) {
    case GRAPH_HEADER: return mb_section_offset(f, KIND("GRPH"));
    case VALUE: return mb_value_at(f, index);
    case TENSOR: return mb_tensor_at(f, index);
    case OP: return mb_op_at(f, index);
    case LABEL: /* index 0: the LABL header; k > 0: record k - 1 */
        return mb_section_offset(f, KIND("LABL")) + (index ? 16 * (size_t)index : 0);
    case WEIGHT: return mb_tensor_data_at(f, index);
    }
    return 0;
}

static void test_label_text(void) {
    size_t n;
    uint8_t *f = bad_fresh(&n);
    const size_t labl = mb_section_offset(f, KIND("LABL"));
    const size_t strings = labl + 16 + 16 * 10;
    f[strings + 1] = 0; /* "cat" -> "c\0t" */
    mb_fix_crcs(f, n);
    EXPECT_LOAD(f, n, CRISP_ERR_FORMAT, "LABL: label 0: name has a NUL at byte 1", "NUL in name");
    f = bad_fresh(&n);
    f[strings + 1] = (char)0xC3; /* a lead byte followed by 't' */
    mb_fix_crcs(f, n);
    EXPECT_LOAD(f, n, CRISP_ERR_FORMAT, "LABL: label 0: name has invalid UTF-8", "bad UTF-8 name");
    f = bad_fresh(&n);
    const size_t prov = mb_section_offset(f, KIND("PROV"));
    f[prov + 3] = (char)0xFF;
    mb_fix_crcs(f, n);
    EXPECT_LOAD(f, n, CRISP_ERR_FORMAT, "PROV: invalid UTF-8 at byte 3", "bad UTF-8 provenance");
}

static void test_unproduced_value(void) {
    mb_model mb;
    mb_sample_cnn(&mb);
    mb_value(&mb, 1, 5, 0, 0, 0);
    size_t n;
    uint8_t *f = mb_build(&mb, &n);
    EXPECT_LOAD(f, n, CRISP_ERR_FORMAT, "GRPH: value 15 is produced by no op", "orphan value");
    free(f);
    mb_free(&mb);
    /* A conv whose weight has the wrong Cin/groups, as the format doc's example. */
    mb_sample_cnn(&mb);
    mb.ops[2].params[10] = 4; /* depthwise conv with groups 4: weight should be (8,3,3,2) */
    f = mb_build(&mb, &n);
    EXPECT_LOAD(f, n, CRISP_ERR_FORMAT,
                "GRPH: op 2 (CONV2D): weight tensor 2 has dims (8,3,3,1), expected (8,3,3,2)",
                "groups vs weight");
    free(f);
    mb_free(&mb);
}

void test_graph_records(void) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const patch *p = &cases[i];
        size_t n;
        uint8_t *f = bad_fresh(&n);
        const size_t at = record_offset(f, p->at, p->index) + p->field;
        if (p->width == 8) mb_put_u64(f + at, p->value);
        else mb_put_u32(f + at, (uint32_t)p->value);
        mb_fix_crcs(f, n);
        EXPECT_LOAD(f, n, p->status, p->needle, p->needle);
    }
    test_label_text();
    test_unproduced_value();
}
