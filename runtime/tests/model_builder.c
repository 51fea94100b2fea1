#include "model_builder.h"

#include <stdlib.h>
#include <string.h>

#include "crc32.h"

#define FOURCC(a, b, c, d) \
    ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)

void mb_put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
void mb_put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
void mb_put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
uint32_t mb_get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
uint64_t mb_get_u64(const uint8_t *p) { return mb_get_u32(p) | (uint64_t)mb_get_u32(p + 4) << 32; }

void mb_init(mb_model *m) {
    memset(m, 0, sizeof *m);
    m->version_major = 1;
    m->version_minor = 1;
    m->label_count = -1;
    m->rng = 2463534242u;
}

void mb_free(mb_model *m) {
    for (uint32_t i = 0; i < m->tensor_count; i++) {
        free(m->tensors[i].data);
        free(m->tensors[i].raw);
    }
    m->tensor_count = 0;
}

uint32_t mb_value(mb_model *m, uint32_t rank, uint32_t d0, uint32_t d1, uint32_t d2, uint32_t d3) {
    mb_value_rec *v = &m->values[m->value_count];
    memset(v, 0, sizeof *v);
    v->dtype = 1;
    v->rank = rank;
    v->dims[0] = d0, v->dims[1] = d1, v->dims[2] = d2, v->dims[3] = d3;
    return m->value_count++;
}

uint32_t mb_qvalue(mb_model *m, uint32_t rank, uint32_t d0, uint32_t d1, uint32_t d2, uint32_t d3,
                   float scale, int32_t zero_point) {
    const uint32_t id = mb_value(m, rank, d0, d1, d2, d3);
    m->values[id].dtype = 2;
    m->values[id].scale = scale;
    m->values[id].zero_point = zero_point;
    return id;
}

uint32_t mb_tensor_raw(mb_model *m, uint32_t encoding, uint32_t rank, const uint32_t dims[4],
                       const void *bytes, size_t size) {
    mb_tensor_rec *t = &m->tensors[m->tensor_count];
    memset(t, 0, sizeof *t);
    t->encoding = encoding;
    t->rank = rank;
    memcpy(t->dims, dims, sizeof t->dims);
    t->raw = malloc(size ? size : 1);
    memcpy(t->raw, bytes, size);
    t->raw_size = size;
    return m->tensor_count++;
}

uint32_t mb_tensor_i8(mb_model *m, uint32_t rank, const uint32_t dims[4], const float *scales,
                      const int8_t *q) {
    size_t count = 1;
    for (uint32_t i = 0; i < rank; i++) count *= dims[i];
    const size_t size = 4 * (size_t)dims[0] + count;
    uint8_t *bytes = malloc(size);
    memcpy(bytes, scales, 4 * (size_t)dims[0]);
    memcpy(bytes + 4 * (size_t)dims[0], q, count);
    const uint32_t id = mb_tensor_raw(m, 3, rank, dims, bytes, size);
    free(bytes);
    return id;
}

uint32_t mb_tensor(mb_model *m, uint32_t rank, uint32_t d0, uint32_t d1, uint32_t d2, uint32_t d3,
                   const float *data) {
    mb_tensor_rec *t = &m->tensors[m->tensor_count];
    const uint32_t dims[4] = {d0, d1, d2, d3};
    memset(t, 0, sizeof *t);
    t->encoding = 1;
    t->rank = rank;
    t->count = 1;
    for (uint32_t i = 0; i < 4; i++) {
        t->dims[i] = dims[i];
        if (i < rank) t->count *= dims[i];
    }
    t->data = malloc(t->count * sizeof *t->data);
    for (size_t i = 0; i < t->count; i++) {
        if (data != NULL) {
            t->data[i] = data[i];
        } else {
            m->rng ^= m->rng << 13, m->rng ^= m->rng >> 17, m->rng ^= m->rng << 5;
            t->data[i] = (float)(m->rng % 10001u) / 10000.0f - 0.5f;
        }
    }
    return m->tensor_count++;
}

uint32_t mb_op(mb_model *m, uint32_t kind, uint32_t activation, uint32_t in0, uint32_t in1,
               uint32_t out, uint32_t weight, uint32_t bias, const int32_t *params) {
    mb_op_rec *op = &m->ops[m->op_count];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->activation = activation;
    op->input_count = in1 == MB_NONE ? 1 : 2;
    op->inputs[0] = in0;
    op->inputs[1] = in1;
    op->output = out;
    op->weight = weight;
    op->bias = bias;
    if (params != NULL) memcpy(op->params, params, sizeof op->params);
    return m->op_count++;
}

void mb_add_section(mb_model *m, uint32_t kind, uint32_t flags, const void *data, size_t size) {
    m->extra[m->extra_count].kind = kind;
    m->extra[m->extra_count].flags = flags;
    m->extra[m->extra_count].data = data;
    m->extra[m->extra_count].size = size;
    m->extra_count++;
}

static size_t align64(size_t n) { return (n + 63) / 64 * 64; }

typedef struct blob {
    uint32_t kind, flags;
    uint8_t *data;
    size_t size;
} blob;

static size_t tensor_bytes(const mb_tensor_rec *t) { return t->raw ? t->raw_size : 4 * t->count; }

static blob graph_blob(const mb_model *m, size_t *tensor_offsets) {
    blob b = {FOURCC('G', 'R', 'P', 'H'), 1, NULL, 0};
    const size_t vsize = m->version_minor == 0 ? 32 : 48;
    b.size = 32 + vsize * (size_t)m->value_count + 48 * (size_t)m->tensor_count + 96 * (size_t)m->op_count;
    uint8_t *p = b.data = calloc(1, b.size);
    mb_put_u32(p, m->value_count), mb_put_u32(p + 4, (uint32_t)vsize);
    mb_put_u32(p + 8, m->tensor_count), mb_put_u32(p + 12, 48);
    mb_put_u32(p + 16, m->op_count), mb_put_u32(p + 20, 96);
    mb_put_u32(p + 24, m->input), mb_put_u32(p + 28, m->output);
    p += 32;
    for (uint32_t i = 0; i < m->value_count; i++, p += vsize) {
        const mb_value_rec *v = &m->values[i];
        mb_put_u32(p, v->dtype);
        mb_put_u32(p + 4, v->rank);
        for (int d = 0; d < 4; d++) mb_put_u32(p + 8 + 4 * d, v->dims[d]);
        if (vsize == 48) {
            uint32_t bits;
            memcpy(&bits, &v->scale, 4);
            mb_put_u32(p + 32, bits);
            mb_put_u32(p + 36, (uint32_t)v->zero_point);
        }
    }
    for (uint32_t i = 0; i < m->tensor_count; i++, p += 48) {
        mb_put_u32(p, m->tensors[i].encoding);
        mb_put_u32(p + 4, m->tensors[i].rank);
        for (int d = 0; d < 4; d++) mb_put_u32(p + 8 + 4 * d, m->tensors[i].dims[d]);
        mb_put_u64(p + 24, tensor_offsets[i]);
        mb_put_u64(p + 32, tensor_bytes(&m->tensors[i]));
    }
    for (uint32_t i = 0; i < m->op_count; i++, p += 96) {
        const mb_op_rec *op = &m->ops[i];
        mb_put_u32(p, op->kind), mb_put_u32(p + 4, op->activation);
        mb_put_u32(p + 8, op->input_count);
        mb_put_u32(p + 12, op->inputs[0]), mb_put_u32(p + 16, op->inputs[1]);
        mb_put_u32(p + 20, op->output), mb_put_u32(p + 24, op->weight);
        mb_put_u32(p + 28, op->bias);
        for (int k = 0; k < 16; k++) mb_put_u32(p + 32 + 4 * k, (uint32_t)op->params[k]);
    }
    return b;
}

static blob weight_blob(const mb_model *m, size_t *tensor_offsets) {
    blob b = {FOURCC('W', 'G', 'H', 'T'), 1, NULL, 0};
    for (uint32_t i = 0; i < m->tensor_count; i++) {
        tensor_offsets[i] = b.size;
        b.size += align64(tensor_bytes(&m->tensors[i]));
    }
    b.data = calloc(1, b.size ? b.size : 1);
    for (uint32_t i = 0; i < m->tensor_count; i++) { /* little-endian host: bytes as-is */
        const mb_tensor_rec *t = &m->tensors[i];
        memcpy(b.data + tensor_offsets[i], t->raw ? (const void *)t->raw : (const void *)t->data,
               tensor_bytes(t));
    }
    return b;
}

static blob label_blob(const mb_model *m) {
    blob b = {FOURCC('L', 'A', 'B', 'L'), 0, NULL, 0};
    size_t strings = 0;
    for (int i = 0; i < m->label_count; i++) strings += strlen(m->label_names[i]);
    b.size = 16 + 16 * (size_t)m->label_count + strings;
    uint8_t *p = b.data = calloc(1, b.size);
    mb_put_u32(p, (uint32_t)m->label_count), mb_put_u32(p + 4, 16);
    mb_put_u32(p + 8, (uint32_t)strings);
    uint8_t *s = p + 16 + 16 * (size_t)m->label_count;
    size_t at = 0;
    for (int i = 0; i < m->label_count; i++) {
        const size_t len = strlen(m->label_names[i]);
        uint8_t *r = p + 16 + 16 * (size_t)i;
        mb_put_u32(r, (uint32_t)m->label_ids[i]);
        mb_put_u32(r + 4, (uint32_t)at), mb_put_u32(r + 8, (uint32_t)len);
        memcpy(s + at, m->label_names[i], len);
        at += len;
    }
    return b;
}

uint8_t *mb_build(const mb_model *m, size_t *size) {
    size_t tensor_offsets[MB_MAX];
    blob blobs[8];
    int n = 0;
    blob w = weight_blob(m, tensor_offsets);
    blobs[n++] = graph_blob(m, tensor_offsets);
    blobs[n++] = w;
    if (m->label_count >= 0) blobs[n++] = label_blob(m);
    if (m->provenance != NULL) {
        blob b = {FOURCC('P', 'R', 'O', 'V'), 0, NULL, strlen(m->provenance)};
        b.data = malloc(b.size + 1);
        memcpy(b.data, m->provenance, b.size);
        blobs[n++] = b;
    }
    for (int i = 0; i < m->extra_count; i++) {
        blob b = {m->extra[i].kind, m->extra[i].flags, malloc(m->extra[i].size + 1),
                  m->extra[i].size};
        memcpy(b.data, m->extra[i].data, m->extra[i].size);
        blobs[n++] = b;
    }
    size_t offsets[8], total = align64(64 + 32 * (size_t)n);
    for (int i = 0; i < n; i++) {
        offsets[i] = total;
        total = align64(total + blobs[i].size);
    }
    /* The last section ends the file: no trailing padding required. */
    total = offsets[n - 1] + blobs[n - 1].size;
    uint8_t *f = calloc(1, total);
    memcpy(f, "\x89" "CRISP\r\n", 8);
    mb_put_u16(f + 8, m->version_major), mb_put_u16(f + 10, m->version_minor);
    mb_put_u32(f + 12, 64), mb_put_u64(f + 16, total), mb_put_u64(f + 24, 64);
    mb_put_u32(f + 32, (uint32_t)n), mb_put_u32(f + 36, 32);
    for (int i = 0; i < n; i++) {
        uint8_t *e = f + 64 + 32 * i;
        mb_put_u32(e, blobs[i].kind), mb_put_u32(e + 4, blobs[i].flags);
        mb_put_u64(e + 8, offsets[i]), mb_put_u64(e + 16, blobs[i].size);
        memcpy(f + offsets[i], blobs[i].data, blobs[i].size);
        free(blobs[i].data);
    }
    mb_fix_crcs(f, total);
    *size = total;
    return f;
}

uint8_t *mb_build_graph(uint32_t value_count, uint32_t elements, uint32_t op_count,
                        const uint32_t (*ops)[4], size_t *size) {
    const size_t grph = 32 + 48 * (size_t)value_count + 96 * (size_t)op_count;
    const size_t g_at = 128, w_at = align64(g_at + grph), total = w_at + 64;
    uint8_t *f = calloc(1, total);
    if (f == NULL) return NULL;
    memcpy(f, "\x89" "CRISP\r\n", 8);
    mb_put_u16(f + 8, 1), mb_put_u16(f + 10, 1);
    mb_put_u32(f + 12, 64), mb_put_u64(f + 16, total), mb_put_u64(f + 24, 64);
    mb_put_u32(f + 32, 2), mb_put_u32(f + 36, 32);
    mb_put_u32(f + 64, FOURCC('G', 'R', 'P', 'H')), mb_put_u32(f + 68, 1);
    mb_put_u64(f + 72, g_at), mb_put_u64(f + 80, grph);
    mb_put_u32(f + 96, FOURCC('W', 'G', 'H', 'T')), mb_put_u32(f + 100, 1);
    mb_put_u64(f + 104, w_at), mb_put_u64(f + 112, 64);
    uint8_t *p = f + g_at;
    mb_put_u32(p, value_count), mb_put_u32(p + 4, 48);
    mb_put_u32(p + 8, 0), mb_put_u32(p + 12, 48);
    mb_put_u32(p + 16, op_count), mb_put_u32(p + 20, 96);
    mb_put_u32(p + 24, 0), mb_put_u32(p + 28, op_count ? ops[op_count - 1][3] : 0);
    p += 32;
    for (uint32_t i = 0; i < value_count; i++, p += 48) {
        mb_put_u32(p, 1), mb_put_u32(p + 4, 1), mb_put_u32(p + 8, elements);
    }
    for (uint32_t i = 0; i < op_count; i++, p += 96) {
        mb_put_u32(p, ops[i][0]);
        mb_put_u32(p + 8, ops[i][2] == MB_NONE ? 1 : 2);
        mb_put_u32(p + 12, ops[i][1]), mb_put_u32(p + 16, ops[i][2]);
        mb_put_u32(p + 20, ops[i][3]);
        mb_put_u32(p + 24, MB_NONE), mb_put_u32(p + 28, MB_NONE);
    }
    mb_fix_crcs(f, total);
    *size = total;
    return f;
}

void mb_fix_crcs(uint8_t *f, size_t size) {
    const uint32_t count = mb_get_u32(f + 32), stride = mb_get_u32(f + 36);
    const uint64_t table = mb_get_u64(f + 24);
    for (uint32_t i = 0; i < count && table + (uint64_t)(i + 1) * stride <= size; i++) {
        uint8_t *e = f + table + (uint64_t)i * stride;
        const uint64_t off = mb_get_u64(e + 8), len = mb_get_u64(e + 16);
        if (off <= size && len <= size - off)
            mb_put_u32(e + 24, crisp_crc32(0, f + off, (size_t)len));
    }
    if (table + (uint64_t)count * stride <= size)
        mb_put_u32(f + 44, crisp_crc32(0, f + table, (size_t)count * stride));
    mb_put_u32(f + 60, crisp_crc32(0, f, 60));
}

size_t mb_section_entry(const uint8_t *f, uint32_t kind) {
    const uint32_t count = mb_get_u32(f + 32);
    for (uint32_t i = 0; i < count; i++)
        if (mb_get_u32(f + 64 + 32 * i) == kind) return 64 + 32 * (size_t)i;
    return 0;
}

size_t mb_section_offset(const uint8_t *f, uint32_t kind) {
    const size_t e = mb_section_entry(f, kind);
    return e ? (size_t)mb_get_u64(f + e + 8) : 0;
}

size_t mb_value_at(const uint8_t *f, uint32_t index) {
    const size_t g = mb_section_offset(f, FOURCC('G', 'R', 'P', 'H'));
    return g + 32 + mb_get_u32(f + g + 4) * (size_t)index;
}

size_t mb_tensor_at(const uint8_t *f, uint32_t index) {
    const size_t g = mb_section_offset(f, FOURCC('G', 'R', 'P', 'H'));
    return g + 32 + mb_get_u32(f + g + 4) * (size_t)mb_get_u32(f + g) + 48 * (size_t)index;
}

size_t mb_op_at(const uint8_t *f, uint32_t index) {
    const size_t g = mb_section_offset(f, FOURCC('G', 'R', 'P', 'H'));
    return g + 32 + mb_get_u32(f + g + 4) * (size_t)mb_get_u32(f + g) +
           48 * (size_t)mb_get_u32(f + g + 8) + 96 * (size_t)index;
}

size_t mb_tensor_data_at(const uint8_t *f, uint32_t index) {
    return mb_section_offset(f, FOURCC('W', 'G', 'H', 'T')) +
           (size_t)mb_get_u64(f + mb_tensor_at(f, index) + 24);
}

void mb_sample_cnn(mb_model *m) {
    mb_init(m);
    const uint32_t x = mb_value(m, 3, 3, 8, 8, 0);
    const uint32_t c1 = mb_value(m, 3, 8, 8, 8, 0), p1 = mb_value(m, 3, 8, 4, 4, 0);
    const uint32_t dw = mb_value(m, 3, 8, 4, 4, 0), res = mb_value(m, 3, 8, 4, 4, 0);
    const uint32_t c2 = mb_value(m, 3, 12, 3, 2, 0), ap = mb_value(m, 3, 12, 2, 2, 0);
    const uint32_t ad = mb_value(m, 3, 12, 3, 3, 0), mp = mb_value(m, 3, 12, 2, 2, 0);
    const uint32_t gp = mb_value(m, 3, 12, 1, 1, 0), fl = mb_value(m, 1, 12, 0, 0, 0);
    const uint32_t fc = mb_value(m, 1, 10, 0, 0, 0), r = mb_value(m, 1, 10, 0, 0, 0);
    const uint32_t r6 = mb_value(m, 1, 10, 0, 0, 0), sm = mb_value(m, 1, 10, 0, 0, 0);
    m->input = x;
    m->output = sm;
    const int32_t conv1[16] = {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    /* Tensors in separate statements: argument evaluation order is unspecified. */
    uint32_t w = mb_tensor(m, 4, 8, 3, 3, 3, NULL), b = mb_tensor(m, 1, 8, 0, 0, 0, NULL);
    mb_op(m, 1, 1, x, MB_NONE, c1, w, b, conv1);
    const int32_t pool1[16] = {2, 2, 2, 2, 0, 0, 1, 1, 0};
    mb_op(m, 6, 0, c1, MB_NONE, p1, MB_NONE, MB_NONE, pool1);
    const int32_t dwconv[16] = {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 8};
    w = mb_tensor(m, 4, 8, 3, 3, 1, NULL);
    b = mb_tensor(m, 1, 8, 0, 0, 0, NULL);
    mb_op(m, 1, 0, p1, MB_NONE, dw, w, b, dwconv);
    mb_op(m, 3, 1, dw, p1, res, MB_NONE, MB_NONE, NULL);
    /* Asymmetric pads, stride (1,2), dilation (2,1), 2 groups, no bias. */
    const int32_t conv2[16] = {2, 3, 1, 2, 0, 1, 1, 0, 2, 1, 2};
    mb_op(m, 1, 2, res, MB_NONE, c2, mb_tensor(m, 4, 12, 2, 3, 4, NULL), MB_NONE, conv2);
    /* ceil_mode whose last window would start in the padding: dropped. */
    const int32_t avg[16] = {2, 2, 2, 2, 1, 1, 1, 0, 0};
    mb_op(m, 7, 0, c2, MB_NONE, ap, MB_NONE, MB_NONE, avg);
    const int32_t adaptive[16] = {3, 3};
    mb_op(m, 9, 0, ap, MB_NONE, ad, MB_NONE, MB_NONE, adaptive);
    const int32_t pool2[16] = {2, 2, 2, 2, 1, 1, 1, 1, 1};
    mb_op(m, 6, 0, ad, MB_NONE, mp, MB_NONE, MB_NONE, pool2);
    mb_op(m, 8, 0, mp, MB_NONE, gp, MB_NONE, MB_NONE, NULL);
    mb_op(m, 10, 0, gp, MB_NONE, fl, MB_NONE, MB_NONE, NULL);
    w = mb_tensor(m, 2, 10, 12, 0, 0, NULL);
    b = mb_tensor(m, 1, 10, 0, 0, 0, NULL);
    mb_op(m, 2, 0, fl, MB_NONE, fc, w, b, NULL);
    mb_op(m, 4, 0, fc, MB_NONE, r, MB_NONE, MB_NONE, NULL);
    mb_op(m, 5, 0, r, MB_NONE, r6, MB_NONE, MB_NONE, NULL);
    mb_op(m, 11, 0, r6, MB_NONE, sm, MB_NONE, MB_NONE, NULL);
    static const char *const names[10] = {"cat",  "dog",   "caf\xc3\xa9", "bird", "fish",
                                          "frog", "horse", "ship",         "truck", ""};
    m->label_count = 10;
    for (int i = 0; i < 10; i++) {
        m->label_ids[i] = 100 + 7 * i;
        m->label_names[i] = names[i];
    }
    m->provenance = "{\"source\": \"model_builder\", \"input_shape\": [3, 8, 8]}";
}
