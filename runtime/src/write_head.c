/* crisp_model_write_head: the loaded model's file with a new classifier head
 * (dense float32 weight and bias), a new label map, PROV extended with a
 * "personalized" object, SALY re-ordered to the new labels (or dropped), and
 * every other section copied byte for byte; crisp_model_write_tuned also
 * replaces the bias tensors of given ops (same shape: their records stay); written atomically
 * (src/atomic_file.c). The small sections are built in memory; WGHT is
 * streamed from the loaded file's bytes (its CRC computed over the pieces
 * first), so a large model is never copied whole. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "crc32.h"
#include "format.h"
#include "head.h"
#include "names.h"
#include "saly.h"
#include "status.h"

typedef struct buf {
    uint8_t *data;
    size_t size, capacity;
    int failed;
} buf;

static void put(buf *b, const void *p, size_t n) {
    if (b->failed) return;
    if (n > b->capacity - b->size) {
        size_t cap = b->capacity ? b->capacity : 256;
        while (cap - b->size < n) {
            if (cap > SIZE_MAX / 2) { b->failed = 1; return; }
            cap *= 2;
        }
        uint8_t *grown = realloc(b->data, cap);
        if (grown == NULL) { b->failed = 1; return; }
        b->data = grown, b->capacity = cap;
    }
    if (n) memcpy(b->data + b->size, p, n);
    b->size += n;
}
static void put_u32(buf *b, uint32_t v) {
    const uint8_t p[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, p, 4);
}
static void put_u64(buf *b, uint64_t v) { put_u32(b, (uint32_t)v), put_u32(b, (uint32_t)(v >> 32)); }
static void put_text(buf *b, const char *s) { put(b, s, strlen(s)); }
static void wr_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void wr_u64(uint8_t *p, uint64_t v) { wr_u32(p, (uint32_t)v), wr_u32(p + 4, (uint32_t)(v >> 32)); }

static uint64_t align64(uint64_t n) { return (n + CRISP_ALIGN - 1) / CRISP_ALIGN * CRISP_ALIGN; }

/* One output section: in memory (owned), or pieces of WGHT, or verbatim. */
typedef struct out_section {
    uint32_t kind, flags;
    const uint8_t *data; /* in memory or in the loaded file */
    uint64_t size, offset;
    uint32_t crc;
    int is_wght;
} out_section;

/* WGHT: tensor i's bytes at offset[i] (64-aligned), zeros between. */
typedef struct wght_plan {
    uint32_t count;
    const uint8_t **src;
    uint64_t *size, *offset;
    uint64_t total;
} wght_plan;

static const uint8_t zeros[CRISP_ALIGN];

static uint32_t wght_crc(const wght_plan *w) {
    uint32_t crc = 0;
    uint64_t at = 0;
    for (uint32_t i = 0; i < w->count; i++) {
        while (at < w->offset[i]) {
            const uint64_t n = w->offset[i] - at < CRISP_ALIGN ? w->offset[i] - at : CRISP_ALIGN;
            crc = crisp_crc32(crc, zeros, (size_t)n);
            at += n;
        }
        crc = crisp_crc32(crc, w->src[i], (size_t)w->size[i]);
        at += w->size[i];
    }
    return crc;
}

static crisp_status write_zeros(crisp_atomic_file *f, uint64_t n) {
    crisp_status s = CRISP_OK;
    while (n > 0 && s == CRISP_OK) {
        const uint64_t k = n < CRISP_ALIGN ? n : CRISP_ALIGN;
        s = crisp_atomic_write(f, zeros, (size_t)k);
        n -= k;
    }
    return s;
}

static crisp_status write_wght(crisp_atomic_file *f, const wght_plan *w) {
    uint64_t at = 0;
    crisp_status s = CRISP_OK;
    for (uint32_t i = 0; i < w->count && s == CRISP_OK; i++) {
        s = write_zeros(f, w->offset[i] - at);
        if (s == CRISP_OK) s = crisp_atomic_write(f, w->src[i], (size_t)w->size[i]);
        at = w->offset[i] + w->size[i];
    }
    return s;
}

/* [*begin, *end) of text without surrounding JSON whitespace. */
static void trim(const char *s, size_t n, size_t *begin, size_t *end) {
    size_t a = 0, b = n;
    while (a < b && (s[a] == ' ' || s[a] == '\t' || s[a] == '\n' || s[a] == '\r')) a++;
    while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t' || s[b - 1] == '\n' || s[b - 1] == '\r')) b--;
    *begin = a, *end = b;
}

/* Looks like a JSON object: '{' ... '}' after trimming (the content is the
 * caller's or the packer's; it is not parsed). */
static int is_object(const char *s, size_t n) {
    size_t a, b;
    trim(s, n, &a, &b);
    return b - a >= 2 && s[a] == '{' && s[b - 1] == '}';
}

static void put_json_string(buf *b, const char *s, size_t n) {
    put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        const unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            const char e[2] = {'\\', (char)c};
            put(b, e, 2);
        } else if (c < 0x20) {
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", (unsigned)c);
            put(b, e, 6);
        } else {
            put(b, &s[i], 1);
        }
    }
    put(b, "\"", 1);
}

static int json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Index just past the JSON string starting at s[i] == '"', or 0 if it does not end. */
static size_t skip_string(const char *s, size_t i, size_t n) {
    for (i++; i < n; i++) {
        if (s[i] == '\\') i++;
        else if (s[i] == '"') return i + 1;
    }
    return 0;
}

/* Index just past the JSON value starting at s[i] (strings, nested objects and
 * arrays, bare literals), or 0 if it does not end before n. */
static size_t skip_value(const char *s, size_t i, size_t n) {
    int depth = 0;
    while (i < n) {
        const char c = s[i];
        if (c == '"') {
            if ((i = skip_string(s, i, n)) == 0) return 0;
            if (depth == 0) return i;
            continue;
        }
        if (c == '{' || c == '[') depth++;
        else if (c == '}' || c == ']') {
            if (depth == 0) return i; /* the enclosing object's end: a bare literal ended */
            if (--depth == 0) return i + 1;
        } else if (depth == 0 && (c == ',' || json_space(c))) return i;
        i++;
    }
    return depth == 0 ? i : 0;
}

/* In the object old[a, e) (old[a] == '{', old[e-1] == '}'), the byte range of
 * the top-level member "personalized" together with one separating comma, so
 * cutting [*cut_a, *cut_e) leaves a well-formed object. Returns 0 when there is
 * no such member or the text does not scan as JSON members. */
static int find_personalized(const char *old, size_t a, size_t e, size_t *cut_a,
                             size_t *cut_e) {
    static const char key[] = "\"personalized\"";
    size_t i = a + 1, prev_comma = 0;
    for (;;) {
        while (i < e - 1 && json_space(old[i])) i++;
        if (i >= e - 1 || old[i] != '"') return 0;
        const size_t member = i;
        const size_t key_end = skip_string(old, i, e - 1);
        if (key_end == 0) return 0;
        i = key_end;
        while (i < e - 1 && json_space(old[i])) i++;
        if (i >= e - 1 || old[i] != ':') return 0;
        for (i++; i < e - 1 && json_space(old[i]);) i++;
        const size_t value_end = skip_value(old, i, e - 1);
        if (value_end == 0 || value_end == i) return 0;
        i = value_end;
        while (i < e - 1 && json_space(old[i])) i++;
        const int last = i >= e - 1;
        if (!last && old[i] != ',') return 0;
        if (key_end - member == sizeof key - 1 && memcmp(old + member, key, sizeof key - 1) == 0) {
            /* "a": 1, "personalized": {..}, "b": 2 → cut the member and its trailing
             * comma; as the last member, cut the comma before it instead. */
            *cut_a = last && prev_comma != 0 ? prev_comma : member;
            *cut_e = last ? value_end : i + 1;
            return 1;
        }
        if (last) return 0;
        prev_comma = i++;
    }
}

/* PROV: the old object with "personalized": <json> added before its closing
 * brace — replacing an earlier "personalized" member, so a personalised model
 * personalised again describes its current head once; old text that is not an
 * object is kept as a string under "previous". */
static void build_prov(buf *b, const crisp_model *m, const char *json) {
    const char *old = m->provenance;
    const size_t n = m->provenance_length;
    const char *add = json != NULL ? json : "{}";
    if (is_object(old, n)) {
        size_t a, e, cut_a = 0, cut_e = 0;
        trim(old, n, &a, &e);
        if (!find_personalized(old, a, e, &cut_a, &cut_e)) cut_a = cut_e = e - 1;
        /* The object without the old member, up to its closing brace. */
        size_t inner_a = a + 1, inner_e = e - 1, kept = 0;
        for (size_t i = inner_a; i < inner_e; i++)
            if ((i < cut_a || i >= cut_e) && !json_space(old[i])) kept = 1;
        put(b, old, cut_a);
        size_t tail = cut_e;
        while (tail < e - 1 && json_space(old[tail]) && cut_e != cut_a) tail++;
        put(b, old + tail, (e - 1) - tail);
        put_text(b, kept ? ", \"personalized\": " : "\"personalized\": ");
        put_text(b, add);
        put(b, old + e - 1, n - (e - 1));
    } else {
        put_text(b, "{");
        if (n > 0) {
            put_text(b, "\"previous\": ");
            put_json_string(b, old, n);
            put_text(b, ", ");
        }
        put_text(b, "\"personalized\": ");
        put_text(b, add);
        put_text(b, "}");
    }
}

static void build_labels(buf *b, const crisp_new_head *h) {
    uint64_t strings = 0;
    for (uint32_t i = 0; i < h->classes; i++) strings += strlen(h->names[i]);
    put_u32(b, h->classes), put_u32(b, CRISP_LABEL_RECORD_SIZE), put_u32(b, (uint32_t)strings);
    put_u32(b, 0);
    uint32_t at = 0;
    for (uint32_t i = 0; i < h->classes; i++) {
        const uint32_t len = (uint32_t)strlen(h->names[i]);
        put_u32(b, (uint32_t)h->class_ids[i]), put_u32(b, at), put_u32(b, len), put_u32(b, 0);
        at += len;
    }
    for (uint32_t i = 0; i < h->classes; i++) put_text(b, h->names[i]);
}

/* SALY re-ordered to the new label order: row j of every layer is the old
 * row of class_ids[j]. Layers of the head's own tensors are dropped (the head
 * is new). Returns 0 (drop the section) when SALY is malformed or a new class
 * was not among the old labels, or no layer is left. */
static int build_saly(buf *b, const crisp_model *m, const crisp_new_head *h,
                      const crisp_op *head_op) {
    crisp_saly saly;
    if (m->saly.data == NULL || crisp_saly_parse(m, &saly) != CRISP_OK) return 0;
    uint32_t *rows = malloc((size_t)h->classes * sizeof *rows);
    int ok = rows != NULL;
    for (uint32_t j = 0; ok && j < h->classes; j++) {
        int64_t k = -1;
        if (m->label_count == 0) {
            if (h->class_ids[j] >= 0 &&
                (uint64_t)h->class_ids[j] < m->values[m->output_value].elements)
                k = h->class_ids[j];
        } else {
            for (uint32_t i = 0; i < m->label_count && k < 0; i++)
                if (m->label_ids[i] == h->class_ids[j]) k = i;
        }
        if (k < 0) ok = 0;
        else rows[j] = (uint32_t)k;
    }
    uint32_t kept = 0;
    uint64_t names = 0;
    for (uint32_t i = 0; ok && i < saly.layer_count; i++) {
        const crisp_saly_layer *l = &saly.layers[i];
        if (l->tensor == head_op->weight || l->tensor == head_op->bias) continue;
        kept++;
        names += l->name_length;
    }
    if (ok && kept > 0) {
        const uint64_t data_at = (16 + 32 * (uint64_t)kept + names + 1) / 2 * 2;
        put_u32(b, kept), put_u32(b, 32), put_u32(b, (uint32_t)names), put_u32(b, 0);
        uint64_t name_at = 0, at = data_at;
        for (uint32_t i = 0; i < saly.layer_count; i++) {
            const crisp_saly_layer *l = &saly.layers[i];
            if (l->tensor == head_op->weight || l->tensor == head_op->bias) continue;
            put_u32(b, l->tensor), put_u32(b, h->classes), put_u32(b, l->nbr), put_u32(b, l->nbc);
            put_u32(b, (uint32_t)name_at), put_u32(b, l->name_length), put_u64(b, at);
            name_at += l->name_length;
            at += 2 * (uint64_t)h->classes * l->nbr * l->nbc;
        }
        for (uint32_t i = 0; i < saly.layer_count; i++) {
            const crisp_saly_layer *l = &saly.layers[i];
            if (l->tensor == head_op->weight || l->tensor == head_op->bias) continue;
            put(b, l->name, l->name_length);
        }
        if (b->size % 2) put(b, zeros, 1);
        for (uint32_t i = 0; i < saly.layer_count; i++) {
            const crisp_saly_layer *l = &saly.layers[i];
            if (l->tensor == head_op->weight || l->tensor == head_op->bias) continue;
            const uint64_t row = 2 * (uint64_t)l->nbr * l->nbc;
            for (uint32_t j = 0; j < h->classes; j++) put(b, l->data + rows[j] * row, (size_t)row);
        }
    }
    free(rows);
    crisp_saly_free(&saly);
    return ok && kept > 0;
}

/* The new dims of a value on the head's chain: the one dim equal to the old
 * Cout (the others 1) becomes `classes`. 0 if the shape is anything else. */
static int resize_dims(const crisp_value *v, uint32_t old_c, uint32_t classes,
                       uint32_t dims[CRISP_MAX_RANK]) {
    int at = -1;
    for (uint32_t d = 0; d < v->rank; d++) {
        dims[d] = v->dims[d];
        if (v->dims[d] == old_c) at = (int)d;
    }
    for (uint32_t d = v->rank; d < CRISP_MAX_RANK; d++) dims[d] = 0;
    if (at < 0) return 0;
    for (uint32_t d = 0; d < v->rank; d++)
        if ((int)d != at && v->dims[d] != 1) return 0;
    dims[at] = classes;
    return 1;
}

static crisp_status check_head(const crisp_model *m, const crisp_new_head *h,
                               const crisp_head *head, uint32_t features) {
    const crisp_op *op = &m->ops[head->op];
    const crisp_tensor *w = &m->tensors[op->weight];
    if (op->dtype == CRISP_DTYPE_I8 || w->encoding == CRISP_ENCODING_DENSE_I8 ||
        w->encoding == CRISP_ENCODING_HYBRID_I8)
        return crisp_error(CRISP_ERR_UNSUPPORTED,
                           "crisp_model_write_head: the head (op %u) is int8 (%s weights): "
                           "personalisation of int8 models is not supported yet; personalise "
                           "the float32 model",
                           (unsigned)head->op, crisp_encoding_name(w->encoding));
    if (h->classes == 0 || h->classes > CRISP_MAX_VALUE_ELEMENTS / features)
        return crisp_error(CRISP_ERR_ARGUMENT,
                           "crisp_model_write_head: head.classes is %u, expected 1..%u",
                           (unsigned)h->classes, (unsigned)(CRISP_MAX_VALUE_ELEMENTS / features));
    if (h->weight == NULL || h->class_ids == NULL || h->names == NULL)
        return crisp_error(CRISP_ERR_ARGUMENT, "crisp_model_write_head: head.%s is NULL",
                           h->weight == NULL ? "weight" : h->class_ids == NULL ? "class_ids" : "names");
    for (uint64_t i = 0; i < (uint64_t)h->classes * features; i++)
        if (!isfinite(h->weight[i]))
            return crisp_error(CRISP_ERR_ARGUMENT,
                               "crisp_model_write_head: head.weight[%llu] (class %llu) is not "
                               "finite",
                               (unsigned long long)i, (unsigned long long)(i / features));
    for (uint32_t i = 0; h->bias != NULL && i < h->classes; i++)
        if (!isfinite(h->bias[i]))
            return crisp_error(CRISP_ERR_ARGUMENT,
                               "crisp_model_write_head: head.bias[%u] is not finite", (unsigned)i);
    for (uint32_t i = 0; i < h->classes; i++) {
        const char *name = h->names[i];
        if (name == NULL)
            return crisp_error(CRISP_ERR_ARGUMENT, "crisp_model_write_head: head.names[%u] is NULL",
                               (unsigned)i);
        const size_t len = strlen(name);
        if (len > CRISP_MAX_LABEL_NAME)
            return crisp_error(CRISP_ERR_ARGUMENT,
                               "crisp_model_write_head: label %u (class %d): name is %zu bytes, "
                               "at most %u allowed",
                               (unsigned)i, (int)h->class_ids[i], len, CRISP_MAX_LABEL_NAME);
        const size_t bad = crisp_utf8_error_at((const uint8_t *)name, len);
        if (bad != len)
            return crisp_error(CRISP_ERR_ARGUMENT,
                               "crisp_model_write_head: label %u (class %d): name has invalid "
                               "UTF-8 at byte %zu",
                               (unsigned)i, (int)h->class_ids[i], bad);
    }
    if (h->provenance_json != NULL) {
        const size_t len = strlen(h->provenance_json);
        if (crisp_utf8_error_at((const uint8_t *)h->provenance_json, len) != len ||
            !is_object(h->provenance_json, len))
            return crisp_error(CRISP_ERR_ARGUMENT,
                               "crisp_model_write_head: head.provenance_json is not a UTF-8 JSON "
                               "object ('{...}')");
    }
    /* The head's tensors and the values after it change shape: nothing else may use them. */
    for (uint32_t k = 0; k < m->op_count; k++) {
        const crisp_op *o = &m->ops[k];
        if (k == head->op) continue;
        if (o->weight == op->weight || o->bias == op->weight ||
            (op->bias != CRISP_NO_ID && (o->weight == op->bias || o->bias == op->bias)))
            return crisp_error(CRISP_ERR_UNSUPPORTED,
                               "crisp_model_write_head: the head's tensors are shared with op "
                               "%u (%s)",
                               (unsigned)k, crisp_op_kind_name(o->kind));
    }
    const uint32_t old_c = w->dims[0];
    uint32_t dims[CRISP_MAX_RANK];
    for (uint32_t i = 0; i < head->tail_count; i++) {
        const uint32_t v = m->ops[head->tail[i]].output;
        if (!resize_dims(&m->values[v], old_c, h->classes, dims)) {
            char d[64];
            return crisp_error(CRISP_ERR_UNSUPPORTED,
                               "crisp_model_write_head: value %u after the head has shape (%s); "
                               "only shapes whose one non-1 dim is the %u classes can be resized",
                               (unsigned)v,
                               crisp_format_dims(d, sizeof d, m->values[v].rank, m->values[v].dims),
                               (unsigned)old_c);
        }
    }
    return CRISP_OK;
}

typedef struct entry {
    uint32_t kind, flags;
    uint64_t offset, size;
} entry;

/* The replaced biases: each names a CONV2D or LINEAR op other than the head,
 * once, whose DENSE_F32 bias tensor no other op uses, with as many finite
 * values as the tensor has. */
static crisp_status check_biases(const crisp_model *m, const crisp_new_bias *nb, uint32_t count,
                                 uint32_t head_op) {
    if (count > 0 && nb == NULL)
        return crisp_error(CRISP_ERR_ARGUMENT, "crisp_model_write_tuned: biases is NULL");
    for (uint32_t i = 0; i < count; i++) {
        const uint32_t k = nb[i].op;
        if (k >= m->op_count)
            return crisp_error(CRISP_ERR_ARGUMENT,
                               "crisp_model_write_tuned: biases[%u].op is %u, the model has %u ops",
                               (unsigned)i, (unsigned)k, (unsigned)m->op_count);
        const crisp_op *op = &m->ops[k];
        if ((op->kind != CRISP_OP_CONV2D && op->kind != CRISP_OP_LINEAR) || k == head_op ||
            op->bias == CRISP_NO_ID)
            return crisp_error(CRISP_ERR_ARGUMENT,
                               "crisp_model_write_tuned: biases[%u]: op %u (%s) %s", (unsigned)i,
                               (unsigned)k, crisp_op_kind_name(op->kind),
                               k == head_op ? "is the head (its bias is head.bias)"
                               : op->bias == CRISP_NO_ID ? "has no bias tensor"
                                                         : "is not a CONV2D or LINEAR op");
        if (nb[i].count != m->tensors[op->bias].elements || nb[i].values == NULL)
            return crisp_error(CRISP_ERR_ARGUMENT,
                               "crisp_model_write_tuned: biases[%u] (op %u) has %u values%s, the "
                               "bias tensor %u has %llu",
                               (unsigned)i, (unsigned)k, (unsigned)nb[i].count,
                               nb[i].values == NULL ? " (NULL)" : "", (unsigned)op->bias,
                               (unsigned long long)m->tensors[op->bias].elements);
        for (uint32_t c = 0; c < nb[i].count; c++)
            if (!isfinite(nb[i].values[c]))
                return crisp_error(CRISP_ERR_ARGUMENT,
                                   "crisp_model_write_tuned: biases[%u] (op %u): value %u is not "
                                   "finite",
                                   (unsigned)i, (unsigned)k, (unsigned)c);
        for (uint32_t j = 0; j < i; j++)
            if (nb[j].op == k)
                return crisp_error(CRISP_ERR_ARGUMENT,
                                   "crisp_model_write_tuned: biases[%u] and [%u] both name op %u",
                                   (unsigned)j, (unsigned)i, (unsigned)k);
        for (uint32_t j = 0; j < m->op_count; j++)
            if (j != k && (m->ops[j].bias == op->bias || m->ops[j].weight == op->bias))
                return crisp_error(CRISP_ERR_UNSUPPORTED,
                                   "crisp_model_write_tuned: biases[%u]: op %u's bias tensor %u "
                                   "is also used by op %u",
                                   (unsigned)i, (unsigned)k, (unsigned)op->bias, (unsigned)j);
    }
    return CRISP_OK;
}

crisp_status crisp_model_write_head(const crisp_model *m, const crisp_new_head *h,
                                    const char *path) {
    if (m == NULL || h == NULL || path == NULL)
        return crisp_error(CRISP_ERR_ARGUMENT, "crisp_model_write_head: %s is NULL",
                           m == NULL ? "model" : h == NULL ? "head" : "path");
    return crisp_model_write_tuned(m, h, NULL, 0, path);
}

crisp_status crisp_model_write_tuned(const crisp_model *m, const crisp_new_head *h,
                                     const crisp_new_bias *nb, uint32_t nb_count,
                                     const char *path) {
    if (m == NULL || h == NULL || path == NULL)
        return crisp_error(CRISP_ERR_ARGUMENT, "crisp_model_write_tuned: %s is NULL",
                           m == NULL ? "model" : h == NULL ? "head" : "path");
    crisp_head head;
    crisp_status s = crisp_find_head(m, &head);
    if (s != CRISP_OK) return s;
    const crisp_op *op = &m->ops[head.op];
    const uint32_t F = (uint32_t)m->values[op->inputs[0]].elements, C = h->classes;
    if ((s = check_head(m, h, &head, F)) != CRISP_OK) return s;
    if ((s = check_biases(m, nb, nb_count, head.op)) != CRISP_OK) return s;
    const uint32_t old_c = m->tensors[op->weight].dims[0];

    /* The original section table (validated at load). */
    const uint8_t *b = m->bytes;
    const uint64_t table = crisp_rd_u64(b + CRISP_HDR_TABLE_OFFSET);
    const uint32_t count = crisp_rd_u32(b + CRISP_HDR_SECTION_COUNT);
    const uint32_t stride = crisp_rd_u32(b + CRISP_HDR_ENTRY_SIZE);
    entry entries[CRISP_MAX_SECTIONS];
    int has_labl = 0, has_prov = 0;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *p = b + table + (uint64_t)i * stride;
        entries[i] = (entry){crisp_rd_u32(p + CRISP_ENT_KIND), crisp_rd_u32(p + CRISP_ENT_FLAGS),
                             crisp_rd_u64(p + CRISP_ENT_OFFSET), crisp_rd_u64(p + CRISP_ENT_SIZE)};
        has_labl |= entries[i].kind == CRISP_KIND_LABL;
        has_prov |= entries[i].kind == CRISP_KIND_PROV;
    }
    const uint32_t out_count = count + !has_labl + !has_prov;
    if (out_count > CRISP_MAX_SECTIONS)
        return crisp_error(CRISP_ERR_UNSUPPORTED,
                           "crisp_model_write_head: the file has %u sections; adding LABL/PROV "
                           "would exceed %u",
                           (unsigned)count, CRISP_MAX_SECTIONS);

    /* WGHT: every tensor's bytes in order, the head's replaced; a bias appended if needed. */
    const int append_bias = op->bias == CRISP_NO_ID && h->bias != NULL;
    const uint32_t tensors = m->tensor_count + (uint32_t)append_bias;
    const uint32_t bias_id = append_bias ? m->tensor_count : op->bias;
    float *bias = calloc(C, sizeof *bias);
    wght_plan w = {tensors, calloc(tensors, sizeof *w.src), calloc(tensors, sizeof *w.size),
                   calloc(tensors, sizeof *w.offset), 0};
    buf grph = {0}, labl = {0}, prov = {0}, saly = {0};
    out_section out[CRISP_MAX_SECTIONS];
    crisp_atomic_file file;
    int file_open = 0;
    if (bias == NULL || w.src == NULL || w.size == NULL || w.offset == NULL) {
        s = crisp_error(CRISP_ERR_NOMEM, "crisp_model_write_head: out of memory");
        goto done;
    }
    if (h->bias != NULL) memcpy(bias, h->bias, (size_t)C * sizeof *bias);
    for (uint32_t i = 0; i < tensors; i++) {
        if (i == op->weight) {
            w.src[i] = (const uint8_t *)h->weight, w.size[i] = 4 * (uint64_t)C * F;
        } else if (i == bias_id && bias_id != CRISP_NO_ID) {
            w.src[i] = (const uint8_t *)bias, w.size[i] = 4 * (uint64_t)C;
        } else {
            w.src[i] = m->tensors[i].raw, w.size[i] = m->tensors[i].raw_size;
            for (uint32_t j = 0; j < nb_count; j++)
                if (m->ops[nb[j].op].bias == i) w.src[i] = (const uint8_t *)nb[j].values;
        }
        w.offset[i] = align64(w.total);
        w.total = w.offset[i] + w.size[i];
    }

    /* GRPH: the records copied (unknown trailing fields kept), then edited. */
    const uint64_t vbytes = (uint64_t)m->value_count * m->value_record_size;
    const uint64_t tbytes = (uint64_t)m->tensor_count * m->tensor_record_size;
    const uint64_t obytes = (uint64_t)m->op_count * m->op_record_size;
    const uint8_t *g = m->grph.data;
    const uint64_t tail_at = CRISP_GRAPH_HEADER_SIZE + vbytes + tbytes + obytes;
    put(&grph, g, CRISP_GRAPH_HEADER_SIZE + (size_t)(vbytes + tbytes));
    if (append_bias) {
        uint8_t rec[CRISP_MAX_RECORD_SIZE] = {0};
        put(&grph, rec, m->tensor_record_size);
    }
    put(&grph, g + CRISP_GRAPH_HEADER_SIZE + vbytes + tbytes, (size_t)obytes);
    put(&grph, g + tail_at, (size_t)(m->grph.size - tail_at));
    if (grph.failed) {
        s = crisp_error(CRISP_ERR_NOMEM, "crisp_model_write_head: out of memory for GRPH");
        goto done;
    }
    {
        uint8_t *gh = grph.data;
        wr_u32(gh + 8, tensors);
        uint8_t *values = gh + CRISP_GRAPH_HEADER_SIZE;
        uint8_t *trec = values + vbytes;
        uint8_t *orec = trec + (uint64_t)tensors * m->tensor_record_size;
        /* The head's output and the chain after it: Cout -> C. */
        uint32_t chain[CRISP_MAX_HEAD_TAIL + 1], n = 0;
        chain[n++] = op->output;
        for (uint32_t i = 0; i < head.tail_count; i++) chain[n++] = m->ops[head.tail[i]].output;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t dims[CRISP_MAX_RANK];
            resize_dims(&m->values[chain[i]], old_c, C, dims);
            uint8_t *v = values + (uint64_t)chain[i] * m->value_record_size;
            for (uint32_t d = 0; d < CRISP_MAX_RANK; d++) wr_u32(v + CRISP_VAL_DIMS + 4 * d, dims[d]);
        }
        for (uint32_t i = 0; i < tensors; i++) {
            uint8_t *t = trec + (uint64_t)i * m->tensor_record_size;
            if (i == op->weight || i == bias_id) {
                const int is_w = i == op->weight;
                wr_u32(t + CRISP_TEN_ENCODING, CRISP_ENCODING_DENSE_F32);
                wr_u32(t + CRISP_TEN_RANK, is_w ? 2 : 1);
                wr_u32(t + CRISP_TEN_DIMS, C);
                wr_u32(t + CRISP_TEN_DIMS + 4, is_w ? F : 0);
                wr_u32(t + CRISP_TEN_DIMS + 8, 0);
                wr_u32(t + CRISP_TEN_DIMS + 12, 0);
            }
            wr_u64(t + CRISP_TEN_OFFSET, w.offset[i]);
            wr_u64(t + CRISP_TEN_SIZE, w.size[i]);
        }
        if (append_bias) wr_u32(orec + (uint64_t)head.op * m->op_record_size + CRISP_OP_BIAS, bias_id);
    }

    build_labels(&labl, h);
    build_prov(&prov, m, h->provenance_json);
    const int keep_saly = build_saly(&saly, m, h, op);
    if (labl.failed || prov.failed || saly.failed) {
        s = crisp_error(CRISP_ERR_NOMEM, "crisp_model_write_head: out of memory");
        goto done;
    }

    /* The new section list: the old order, LABL and PROV appended if new. */
    uint32_t n = 0;
    for (uint32_t i = 0; i < count; i++) {
        const entry *e = &entries[i];
        out_section o = {e->kind, e->flags, b + e->offset, e->size, 0, 0, 0};
        if (e->kind == CRISP_KIND_GRPH) o.data = grph.data, o.size = grph.size;
        else if (e->kind == CRISP_KIND_WGHT) o.data = NULL, o.size = w.total, o.is_wght = 1;
        else if (e->kind == CRISP_KIND_LABL) o.data = labl.data, o.size = labl.size;
        else if (e->kind == CRISP_KIND_PROV) o.data = prov.data, o.size = prov.size;
        else if (e->kind == CRISP_KIND_SALY) {
            if (!keep_saly) continue;
            o.data = saly.data, o.size = saly.size;
        }
        out[n++] = o;
    }
    if (!has_labl) out[n++] = (out_section){CRISP_KIND_LABL, 0, labl.data, labl.size, 0, 0, 0};
    if (!has_prov) out[n++] = (out_section){CRISP_KIND_PROV, 0, prov.data, prov.size, 0, 0, 0};
    uint64_t at = align64(CRISP_HEADER_SIZE + (uint64_t)n * CRISP_ENTRY_SIZE);
    for (uint32_t i = 0; i < n; i++) {
        out[i].offset = at;
        out[i].crc = out[i].is_wght ? wght_crc(&w) : crisp_crc32(0, out[i].data, (size_t)out[i].size);
        at = i + 1 < n ? align64(at + out[i].size) : at + out[i].size;
    }
    const uint64_t file_size = at;
    uint8_t header[CRISP_HEADER_SIZE] = {0};
    uint8_t tab[CRISP_MAX_SECTIONS * CRISP_ENTRY_SIZE] = {0};
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *e = tab + i * CRISP_ENTRY_SIZE;
        wr_u32(e + CRISP_ENT_KIND, out[i].kind), wr_u32(e + CRISP_ENT_FLAGS, out[i].flags);
        wr_u64(e + CRISP_ENT_OFFSET, out[i].offset), wr_u64(e + CRISP_ENT_SIZE, out[i].size);
        wr_u32(e + CRISP_ENT_CRC, out[i].crc);
    }
    memcpy(header, CRISP_MAGIC, CRISP_MAGIC_SIZE);
    memcpy(header + CRISP_HDR_VERSION_MAJOR, b + CRISP_HDR_VERSION_MAJOR, 4); /* the file's version */
    wr_u32(header + CRISP_HDR_HEADER_SIZE, CRISP_HEADER_SIZE);
    wr_u64(header + CRISP_HDR_FILE_SIZE, file_size);
    wr_u64(header + CRISP_HDR_TABLE_OFFSET, CRISP_HEADER_SIZE);
    wr_u32(header + CRISP_HDR_SECTION_COUNT, n);
    wr_u32(header + CRISP_HDR_ENTRY_SIZE, CRISP_ENTRY_SIZE);
    wr_u32(header + CRISP_HDR_TABLE_CRC, crisp_crc32(0, tab, (size_t)n * CRISP_ENTRY_SIZE));
    wr_u32(header + CRISP_HDR_CRC, crisp_crc32(0, header, CRISP_HDR_CRC));

    if ((s = crisp_atomic_open(&file, path)) != CRISP_OK) goto done;
    file_open = 1;
    s = crisp_atomic_write(&file, header, sizeof header);
    if (s == CRISP_OK) s = crisp_atomic_write(&file, tab, (size_t)n * CRISP_ENTRY_SIZE);
    at = CRISP_HEADER_SIZE + (uint64_t)n * CRISP_ENTRY_SIZE;
    for (uint32_t i = 0; i < n && s == CRISP_OK; i++) {
        s = write_zeros(&file, out[i].offset - at);
        if (s == CRISP_OK)
            s = out[i].is_wght ? write_wght(&file, &w)
                               : crisp_atomic_write(&file, out[i].data, (size_t)out[i].size);
        at = out[i].offset + out[i].size;
    }
    /* A failed write has aborted the file already; commit closes or aborts it. */
    if (s == CRISP_OK) s = crisp_atomic_commit(&file);
    file_open = 0;
done:
    if (file_open) crisp_atomic_abort(&file);
    free(bias), free(w.src), free(w.size), free(w.offset);
    free(grph.data), free(labl.data), free(prov.data), free(saly.data);
    return s;
}
