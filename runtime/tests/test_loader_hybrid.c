/* Malformed 1.1 content (hybrid fields, N:M indices, int8 scales and
 * values, dtype signatures, quantisation fields) with every CRC recomputed,
 * so the validator must catch each one with the right status and a message
 * naming the section and the field; and 1.0 files still load. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hybrid_builder.h"
#include "loader_check.h"
#include "model_builder.h"

void test_loader_hybrid(void);

/* x (24) -> LINEAR (16 x 24, hybrid 2:6, Br 8, Bc 12, V 2, both blocks of
 * each block-row kept) -> y, float32 or int8 between QUANTIZE/DEQUANTIZE.
 * Tensor 0 is the weight, 1 the bias; the int8 model's values are x 0,
 * q 1, r 2, y 3. `odd` is 15 x 24, one block per block-row, V 1: 60
 * indices of 3 bits, so the stream ends in 4 padding bits. */
static const mb_hybrid shape = {16, 24, 8, 12, 2, 6, 2, 2, 0, 0};
static const mb_hybrid odd = {15, 24, 8, 12, 2, 6, 1, 1, 0, 0};

static uint8_t *build_shape(const mb_hybrid *s, int int8, int dense_i8, size_t *n,
                            mb_hybrid_layout *layout) {
    mb_model mb;
    mb_init(&mb);
    unsigned rng = 77;
    mb_hybrid h = *s;
    const uint32_t R = h.rows;
    h.int8 = int8;
    float dense[16 * 24], scales[16];
    (void)R;
    size_t wsize;
    uint64_t kept;
    uint8_t *w = mb_hybrid_encode(&h, &rng, dense, scales, &wsize, &kept);
    *layout = mb_hybrid_parts(&h, w, wsize);
    const uint32_t x = mb_value(&mb, 1, 24, 0, 0, 0), dims[4] = {R, 24, 0, 0};
    uint32_t wt;
    if (dense_i8) {
        int8_t q[16 * 24];
        for (uint32_t i = 0; i < R * 24; i++) q[i] = (int8_t)dense[i];
        wt = mb_tensor_i8(&mb, 2, dims, scales, q);
    } else {
        wt = mb_tensor_raw(&mb, int8 ? 4 : 2, 2, dims, w, wsize);
    }
    const uint32_t bt = mb_tensor(&mb, 1, R, 0, 0, 0, NULL);
    if (int8) {
        const uint32_t q = mb_qvalue(&mb, 1, 24, 0, 0, 0, 0.02f, 3);
        const uint32_t r = mb_qvalue(&mb, 1, R, 0, 0, 0, 0.05f, -2);
        const uint32_t y = mb_value(&mb, 1, R, 0, 0, 0);
        mb_op(&mb, 12, 0, x, MB_NONE, q, MB_NONE, MB_NONE, NULL);
        mb_op(&mb, 2, 1, q, MB_NONE, r, wt, bt, NULL);
        mb_op(&mb, 13, 0, r, MB_NONE, y, MB_NONE, MB_NONE, NULL);
        mb.input = x, mb.output = y;
    } else {
        const uint32_t y = mb_value(&mb, 1, R, 0, 0, 0);
        mb_op(&mb, 2, 0, x, MB_NONE, y, wt, bt, NULL);
        mb.input = x, mb.output = y;
    }
    uint8_t *f = mb_build(&mb, n);
    mb_free(&mb);
    free(w);
    return f;
}

static uint8_t *build(int int8, int dense_i8, size_t *n, mb_hybrid_layout *layout) {
    return build_shape(&shape, int8, dense_i8, n, layout);
}

typedef struct hpatch {
    int int8, dense_i8;
    int part; /* 0 header, 1 ptr, 2 col, 3 scales, 4 values, 5 3-bit index, 6 ptr[1] = 3 and ptr[2],
               * 7 a float32 value */
    size_t at; /* u32 index within the part (header/ptr/col/scales), byte for values */
    uint32_t value;
    crisp_status status;
    const char *needle;
} hpatch;

static const hpatch cases[] = {
    {0, 0, 0, 0, 15, CRISP_ERR_FORMAT, "GRPH: tensor 0 (HYBRID_F32): header R x K is 15 x 24, expected 16 x 24"},
    {0, 0, 0, 1, 25, CRISP_ERR_FORMAT, "header R x K is 16 x 25"},
    {0, 0, 0, 2, 0, CRISP_ERR_FORMAT, "block shape Br x Bc is 0 x 12"},
    {0, 0, 0, 3, 0, CRISP_ERR_FORMAT, "block shape Br x Bc is 8 x 0"},
    {0, 0, 0, 4, 7, CRISP_ERR_FORMAT, "N:M is 7:6, expected 1 <= N <= M <= 64"},
    {0, 0, 0, 4, 0, CRISP_ERR_FORMAT, "N:M is 0:6"},
    {0, 0, 0, 5, 65, CRISP_ERR_FORMAT, "N:M is 2:65"},
    {0, 0, 0, 6, 3, CRISP_ERR_FORMAT, "V is 3, expected >= 1 and dividing Br = 8"},
    {0, 0, 0, 6, 0, CRISP_ERR_FORMAT, "V is 0"},
    {0, 0, 0, 3, 10, CRISP_ERR_FORMAT, "Bc = 10 is not a multiple of M = 6"},
    {0, 0, 0, 5, 16, CRISP_ERR_FORMAT, "Bc = 12 is not a multiple of M = 16"},
    {0, 0, 0, 7, 5, CRISP_ERR_FORMAT, "kept_blocks is 5, more than the 2 x 2 blocks"},
    {0, 0, 0, 7, 1, CRISP_ERR_FORMAT, "block_row_ptr[1] = 2, more than kept_blocks = 1"},
    {0, 0, 0, 7, 0xFFFFFFFF, CRISP_ERR_FORMAT, "kept_blocks is 4294967295"},
    {0, 0, 1, 0, 1, CRISP_ERR_FORMAT, "GRPH: tensor 0 (HYBRID_F32): block_row_ptr[0] = 1, expected 0"},
    {0, 0, 1, 1, 5, CRISP_ERR_FORMAT, "block_row_ptr[1] = 5, more than kept_blocks = 4"},
    {0, 0, 1, 2, 3, CRISP_ERR_FORMAT, "block_row_ptr[2] = 3, expected kept_blocks = 4"},
    {0, 0, 6, 0, 2, CRISP_ERR_FORMAT, "GRPH: tensor 0 (HYBRID_F32): block_row_ptr[2] = 2 < block_row_ptr[1] = 3"},
    {0, 0, 1, 1, 3, CRISP_ERR_FORMAT,
     "block_col[2] = 0 is not greater than block_col[1] = 1 (block-row 0)"},
    {0, 0, 2, 0, 2, CRISP_ERR_FORMAT, "block_col[0] = 2 (block-row 0), expected < 2 block-columns"},
    {0, 0, 2, 3, 0xFFFFFFFF, CRISP_ERR_FORMAT, "block_col[3] = 4294967295 (block-row 1)"},
    {0, 0, 5, 0, 7, CRISP_ERR_FORMAT, "GRPH: tensor 0 (HYBRID_F32): index 0 (group 0) is 7, expected < M = 6"},
    {0, 0, 5, 1, 0, CRISP_ERR_FORMAT, "index 1 (group 0) is 0, not greater than the previous"},
    {0, 0, 7, 3, 0x7FC00000, CRISP_ERR_FORMAT, "GRPH: tensor 0 (HYBRID_F32): value 3 is nan, expected finite"},
    {0, 0, 7, 0, 0x7F800000, CRISP_ERR_FORMAT, "GRPH: tensor 0 (HYBRID_F32): value 0 is inf"},
    {1, 0, 3, 0, 0, CRISP_ERR_FORMAT, "GRPH: tensor 0 (HYBRID_I8): scales[0] is 0, expected finite and > 0"},
    {1, 0, 3, 5, 0xBF800000, CRISP_ERR_FORMAT, "scales[5] is -1"},
    {1, 0, 3, 15, 0x7FC00000, CRISP_ERR_FORMAT, "scales[15] is nan"},
    {1, 0, 3, 1, 0x7F800000, CRISP_ERR_FORMAT, "scales[1] is inf"},
    {1, 0, 4, 3, 0x80, CRISP_ERR_FORMAT, "GRPH: tensor 0 (HYBRID_I8): value 3 is -128, expected -127..127"},
    {1, 1, 3, 2, 0, CRISP_ERR_FORMAT, "GRPH: tensor 0 (DENSE_I8): scales[2] is 0"},
    {1, 1, 4, 64 + 17, 0x80, CRISP_ERR_FORMAT, "GRPH: tensor 0 (DENSE_I8): value 17 is -128"},
};

static void patch_tensor(uint8_t *f, const hpatch *p, const mb_hybrid_layout *l) {
    uint8_t *d = f + mb_tensor_data_at(f, 0);
    if (p->dense_i8) {
        if (p->part == 3) mb_put_u32(d + 4 * p->at, p->value);
        else d[p->at] = (uint8_t)p->value;
        return;
    }
    switch (p->part) {
    case 0: mb_put_u32(d + 4 * p->at, p->value); break;
    case 1: mb_put_u32(d + l->ptr + 4 * p->at, p->value); break;
    case 6:
        mb_put_u32(d + l->ptr + 4, 3);
        mb_put_u32(d + l->ptr + 8, p->value);
        break;
    case 2: mb_put_u32(d + l->col + 4 * p->at, p->value); break;
    case 3: mb_put_u32(d + l->scales + 4 * p->at, p->value); break;
    case 4: d[l->values + p->at] = (uint8_t)p->value; break;
    case 7: mb_put_u32(d + l->values + 4 * p->at, p->value); break; /* a float32 value */
    case 5: { /* 3-bit index p->at of the stream */
        const size_t bit = 3 * p->at;
        uint32_t word = mb_get_u32(d + l->indices) & ~(7u << bit);
        mb_put_u32(d + l->indices, word | p->value << bit);
        if (p->at == 1) { /* index 0 := 1 so index 1 = 0 does not increase */
            word = mb_get_u32(d + l->indices) & ~7u;
            mb_put_u32(d + l->indices, word | 1u);
        }
        break;
    }
    }
}

static void test_fields(void) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const hpatch *p = &cases[i];
        size_t n;
        mb_hybrid_layout l;
        uint8_t *f = build(p->int8, p->dense_i8, &n, &l);
        patch_tensor(f, p, &l);
        mb_fix_crcs(f, n);
        EXPECT_LOAD(f, n, p->status, p->needle, p->needle);
        free(f);
    }
    /* The exact size: one byte more in the record (and the section) is refused. */
    size_t n;
    mb_hybrid_layout l;
    uint8_t *f = build(0, 0, &n, &l);
    const size_t rec = mb_tensor_at(f, 0);
    mb_put_u64(f + rec + 32, mb_get_u64(f + rec + 32) + 1);
    mb_fix_crcs(f, n);
    EXPECT_LOAD(f, n, CRISP_ERR_FORMAT, "GRPH: tensor 0 (HYBRID_F32): size is", "hybrid size + 1");
    mb_put_u64(f + rec + 32, 20);
    mb_fix_crcs(f, n);
    EXPECT_LOAD(f, n, CRISP_ERR_FORMAT, "size is 20 bytes, smaller than the 32-byte header", "tiny");
    mb_put_u32(f + rec, 5);
    mb_fix_crcs(f, n);
    EXPECT_LOAD(f, n, CRISP_ERR_UNSUPPORTED, "GRPH: tensor 0: encoding 5 is not supported", "enc 5");
    free(f);
    /* Non-zero padding bits after the last index; the shape loads without them. */
    f = build_shape(&odd, 0, 0, &n, &l);
    EXPECT_LOAD(f, n, CRISP_OK, NULL, "odd index stream");
    const size_t data = mb_tensor_data_at(f, 0), size = (size_t)mb_get_u64(f + rec + 32);
    f[data + size - 1] |= 0x80;
    mb_fix_crcs(f, n);
    EXPECT_LOAD(f, n, CRISP_ERR_FORMAT, "padding bits after the last index are not zero", "pad bits");
    free(f);
}

/* Patches the op/value records of the int8 model. */
static void test_dtypes(void) {
    static const struct {
        int int8, op;      /* op record, -1 a value record, -2 the graph header */
        uint32_t index;    /* op or value index */
        size_t field;
        uint32_t value;
        crisp_status status;
        const char *needle;
    } dc[] = {
        {1, -1, 1, 32, 0, CRISP_ERR_FORMAT, "GRPH: value 1 (int8): scale is 0, expected finite and > 0"},
        {1, -1, 1, 32, 0x7F800000, CRISP_ERR_FORMAT, "GRPH: value 1 (int8): scale is inf"},
        {1, -1, 1, 36, 128, CRISP_ERR_FORMAT, "GRPH: value 1 (int8): zero_point is 128, expected -128..127"},
        {1, -1, 1, 36, (uint32_t)-129, CRISP_ERR_FORMAT, "zero_point is -129"},
        {1, -1, 0, 32, 0x3F800000, CRISP_ERR_FORMAT, "GRPH: value 0 (float32): scale 1 and zero_point 0, expected 0"},
        {1, -1, 1, 0, 3, CRISP_ERR_UNSUPPORTED, "GRPH: value 1: dtype 3 is not supported"},
        {1, -2, 0, 24, 1, CRISP_ERR_FORMAT, "GRPH: the graph input value 1 is int8"},
        {1, -2, 0, 28, 2, CRISP_ERR_FORMAT, "GRPH: the graph output value 2 is int8"},
        {1, -1, 1, 0, 1, CRISP_ERR_FORMAT, "GRPH: value 1 (float32): scale"},
        {1, -1, 2, 32, 0x00000001, CRISP_ERR_FORMAT, "requantisation multiplier"},
        {1, 1, 1, 12, 0, CRISP_ERR_FORMAT,
         "GRPH: op 1 (LINEAR): input value 0 is float32 but weight tensor 0 is HYBRID_I8; float32 needs DENSE_F32 or HYBRID_F32 weights"},
        {0, 0, 0, 28, 0, CRISP_ERR_FORMAT, "GRPH: op 0 (LINEAR): bias tensor 0 is HYBRID_F32, expected DENSE_F32"},
        {1, 0, 0, 0, 13, CRISP_ERR_FORMAT, "GRPH: op 0 (DEQUANTIZE): input value 0 is float32, expected int8"},
        {1, 2, 2, 0, 12, CRISP_ERR_FORMAT, "GRPH: op 2 (QUANTIZE): input value 2 is int8, expected float32"},
        {1, 2, 2, 0, 4, CRISP_ERR_FORMAT, "GRPH: op 2 (RELU): output value 3 is float32, expected int8"},
        {1, 2, 2, 0, 11, CRISP_ERR_FORMAT, "GRPH: op 2 (SOFTMAX): input value 2 is int8, expected float32"},
    };
    for (size_t i = 0; i < sizeof dc / sizeof dc[0]; i++) {
        size_t n;
        mb_hybrid_layout l;
        uint8_t *f = build(dc[i].int8, 0, &n, &l);
        const size_t at = dc[i].op == -2   ? mb_section_offset(f, mb_get_u32(f + 64))
                          : dc[i].op == -1 ? mb_value_at(f, dc[i].index)
                                           : mb_op_at(f, dc[i].index);
        mb_put_u32(f + at + dc[i].field, dc[i].value);
        mb_fix_crcs(f, n);
        EXPECT_LOAD(f, n, dc[i].status, dc[i].needle, dc[i].needle);
        free(f);
    }
}

/* int8 ops that keep the input's quantisation, accumulator overflow, 1.0 files. */
static void test_int8_graph_rules(void) {
    mb_model mb;
    mb_init(&mb);
    const uint32_t x = mb_value(&mb, 3, 2, 4, 4, 0);
    const uint32_t q = mb_qvalue(&mb, 3, 2, 4, 4, 0, 0.1f, 0);
    const uint32_t r = mb_qvalue(&mb, 3, 2, 4, 4, 0, 0.2f, 0); /* relu with another scale */
    const uint32_t y = mb_value(&mb, 3, 2, 4, 4, 0);
    mb_op(&mb, 12, 0, x, MB_NONE, q, MB_NONE, MB_NONE, NULL);
    mb_op(&mb, 4, 0, q, MB_NONE, r, MB_NONE, MB_NONE, NULL);
    mb_op(&mb, 13, 0, r, MB_NONE, y, MB_NONE, MB_NONE, NULL);
    mb.input = x, mb.output = y;
    size_t n;
    uint8_t *f = mb_build(&mb, &n);
    EXPECT_LOAD(f, n, CRISP_ERR_FORMAT,
                "GRPH: op 1 (RELU): output value 2 has scale 0.2 and zero_point 0, but the input "
                "value 1 has 0.1 and 0", "relu int8 rescale");
    free(f);
    mb.values[r].scale = 0.1f;
    f = mb_build(&mb, &n);
    EXPECT_LOAD(f, n, CRISP_OK, NULL, "relu int8 same quantisation");
    free(f);
    mb.version_minor = 0; /* 32-byte value records cannot hold int8 */
    f = mb_build(&mb, &n);
    EXPECT_LOAD(f, n, CRISP_ERR_FORMAT, "GRPH: value 1: dtype int8 needs the 48-byte value record",
                "int8 in a 1.0 record");
    free(f);
    mb_free(&mb);

    /* A 1.0 file (32-byte value records) loads and runs. */
    mb_sample_cnn(&mb);
    mb.version_minor = 0;
    f = mb_build(&mb, &n);
    EXPECT_LOAD(f, n, CRISP_OK, NULL, "1.0 file");
    mb_put_u32(f + mb_section_offset(f, mb_get_u32(f + 64)) + 4, 40);
    mb_fix_crcs(f, n);
    EXPECT_LOAD(f, n, CRISP_ERR_FORMAT, "GRPH: value_record_size is 40, expected 48 (or 32 in 1.0 files)",
                "value record 40");
    free(f);
    mb_free(&mb);

    /* A bias too large for the int32 accumulator. */
    mb_hybrid_layout l;
    f = build(1, 1, &n, &l);
    const size_t bias = mb_tensor_data_at(f, 1);
    mb_put_u32(f + bias + 8, 0x7E967699); /* 1e38 */
    mb_fix_crcs(f, n);
    EXPECT_LOAD(f, n, CRISP_ERR_FORMAT,
                "GRPH: op 1 (LINEAR): output channel 2: the int32 accumulator could overflow",
                "bias overflow");
    free(f);
}

/* A conv whose K = 3*3*4 is a multiple of M = 6 but whose taps of 4 are not. */
static void test_taps(void) {
    mb_model mb;
    mb_init(&mb);
    unsigned rng = 5;
    const mb_hybrid h = {8, 36, 8, 12, 2, 6, 1, 0, 0, 0};
    float dense[8 * 36];
    size_t wsize, n;
    uint64_t kept;
    uint8_t *w = mb_hybrid_encode(&h, &rng, dense, NULL, &wsize, &kept);
    const uint32_t x = mb_value(&mb, 3, 4, 3, 3, 0), y = mb_value(&mb, 3, 8, 1, 1, 0);
    const uint32_t dims[4] = {8, 3, 3, 4};
    const uint32_t wt = mb_tensor_raw(&mb, 2, 4, dims, w, wsize);
    const int32_t params[16] = {3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1};
    mb_op(&mb, 1, 0, x, MB_NONE, y, wt, MB_NONE, params);
    mb.input = x, mb.output = y;
    uint8_t *f = mb_build(&mb, &n);
    EXPECT_LOAD(f, n, CRISP_ERR_FORMAT,
                "GRPH: tensor 0 (HYBRID_F32): K = 36 has taps of 4 columns (the last weight dim), "
                "not a multiple of M = 6", "taps");
    free(f), free(w);
    mb_free(&mb);
}

void test_loader_hybrid(void) {
    test_taps();
    test_fields();
    test_dtypes();
    test_int8_graph_rules();
}
