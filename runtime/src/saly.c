/* SALY, per-class block saliency (docs/format.md): validation on use, the
 * half-float decode, and crisp_model_class_coverage. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "saly.h"
#include "status.h"

#define SALY_HEADER_SIZE 16u
#define SALY_RECORD_SIZE 32u

float crisp_f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h >> 15), exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
    float v;
    if (exp == 0) v = ldexpf((float)man, -24); /* zero and subnormals: man * 2^-24 */
    else if (exp == 31) v = man == 0 ? INFINITY : NAN;
    else v = ldexpf((float)(man | 0x400u), (int)exp - 25);
    return sign ? -v : v;
}

void crisp_saly_free(crisp_saly *s) {
    free(s->layers);
    s->layers = NULL;
    s->layer_count = 0;
}

crisp_status crisp_saly_parse(const crisp_model *m, crisp_saly *out) {
    const uint8_t *b = m->saly.data;
    const uint64_t size = m->saly.size;
    memset(out, 0, sizeof *out);
    if (b == NULL) return crisp_error(CRISP_ERR_ARGUMENT, "the file has no SALY section");
    if (size < SALY_HEADER_SIZE)
        return crisp_error(CRISP_ERR_FORMAT, "SALY: section is %llu bytes, smaller than its "
                           "%u-byte header", (unsigned long long)size, SALY_HEADER_SIZE);
    const uint32_t count = crisp_rd_u32(b), stride = crisp_rd_u32(b + 4);
    const uint32_t string_bytes = crisp_rd_u32(b + 8);
    if (stride < SALY_RECORD_SIZE || stride > CRISP_MAX_RECORD_SIZE)
        return crisp_error(CRISP_ERR_FORMAT, "SALY: record_size is %u, expected %u",
                           (unsigned)stride, SALY_RECORD_SIZE);
    const uint64_t names_at = SALY_HEADER_SIZE + (uint64_t)count * stride;
    if (names_at > size || string_bytes > size - names_at)
        return crisp_error(CRISP_ERR_FORMAT,
                           "SALY: %u records of %u bytes and %u name bytes need %llu bytes, but "
                           "the section is %llu bytes",
                           (unsigned)count, (unsigned)stride, (unsigned)string_bytes,
                           (unsigned long long)(names_at + string_bytes),
                           (unsigned long long)size);
    out->layers = calloc(count ? count : 1, sizeof *out->layers);
    if (out->layers == NULL)
        return crisp_error(CRISP_ERR_NOMEM, "SALY: out of memory for %u layers", (unsigned)count);
    const uint64_t outputs = m->values[m->output_value].elements;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *r = b + SALY_HEADER_SIZE + (uint64_t)i * stride;
        crisp_saly_layer *l = &out->layers[i];
        l->tensor = crisp_rd_u32(r);
        l->classes = crisp_rd_u32(r + 4);
        l->nbr = crisp_rd_u32(r + 8);
        l->nbc = crisp_rd_u32(r + 12);
        const uint32_t name_off = crisp_rd_u32(r + 16);
        l->name_length = crisp_rd_u32(r + 20);
        const uint64_t data_at = crisp_rd_u64(r + 24);
        const char *bad = NULL;
        if (l->tensor >= m->tensor_count) bad = "tensor is not a tensor of the file";
        else if (l->classes != outputs) bad = "classes differs from the model's output count";
        else if (l->nbr == 0 || l->nbc == 0) bad = "nbr or nbc is 0";
        else if (name_off > string_bytes || l->name_length > string_bytes - name_off)
            bad = "name lies outside the name area";
        else if (data_at % 2 != 0) bad = "data_offset is odd";
        if (bad == NULL) {
            const crisp_tensor *t = &m->tensors[l->tensor];
            if (crisp_encoding_is_hybrid(t->encoding) &&
                (l->nbr != t->hybrid.nbr || l->nbc != t->hybrid.nbc))
                bad = "nbr x nbc differs from the hybrid tensor's block grid";
        }
        /* classes <= 2^28, nbr * nbc <= 2^64 only after the checks: bound step by step. */
        const uint64_t cells = (uint64_t)l->nbr * l->nbc;
        if (bad == NULL && (data_at > size || cells > (size - data_at) / 2 / l->classes))
            bad = "data lies outside the section";
        if (bad != NULL) {
            const crisp_status s = crisp_error(
                CRISP_ERR_FORMAT,
                "SALY: layer %u (tensor %u, %u classes, %u x %u blocks): %s", (unsigned)i,
                (unsigned)l->tensor, (unsigned)l->classes, (unsigned)l->nbr, (unsigned)l->nbc,
                bad);
            crisp_saly_free(out);
            return s;
        }
        l->name = b + names_at + name_off;
        l->data = b + data_at;
    }
    out->layer_count = count;
    return CRISP_OK;
}

/* The output index of original class `class_id`, or -1. Without LABL the
 * output index is the class id. */
static int64_t class_index(const crisp_model *m, int32_t class_id) {
    if (m->label_count == 0)
        return class_id >= 0 && (uint64_t)class_id < m->values[m->output_value].elements
                   ? class_id
                   : -1;
    for (uint32_t i = 0; i < m->label_count; i++)
        if (m->label_ids[i] == class_id) return i;
    return -1;
}

crisp_status crisp_model_class_coverage(const crisp_model *m, int32_t class_id, float *coverage) {
    if (m == NULL || coverage == NULL)
        return crisp_error(CRISP_ERR_ARGUMENT, "crisp_model_class_coverage: %s is NULL",
                           m == NULL ? "model" : "coverage");
    if (m->saly.data == NULL)
        return crisp_error(CRISP_ERR_ARGUMENT,
                           "crisp_model_class_coverage: the file has no SALY section (per-class "
                           "block saliency); pack the model with saliency statistics");
    const int64_t k = class_index(m, class_id);
    if (k < 0)
        return crisp_error(CRISP_ERR_ARGUMENT,
                           "crisp_model_class_coverage: SALY lacks class %d (its classes are "
                           "the file's %llu labels, in label order)",
                           (int)class_id,
                           (unsigned long long)m->values[m->output_value].elements);
    crisp_saly saly;
    crisp_status s = crisp_saly_parse(m, &saly);
    if (s != CRISP_OK) return s;
    double kept = 0, total = 0;
    for (uint32_t i = 0; i < saly.layer_count && s == CRISP_OK; i++) {
        const crisp_saly_layer *l = &saly.layers[i];
        const crisp_tensor *t = &m->tensors[l->tensor];
        const int hybrid = crisp_encoding_is_hybrid(t->encoding);
        const uint8_t *row = l->data + 2 * (uint64_t)k * l->nbr * l->nbc;
        for (uint32_t r = 0; r < l->nbr && s == CRISP_OK; r++) {
            /* Kept blocks of block-row r: block_col[lo..hi) (increasing); dense: all. */
            uint32_t j = 0, hi = 0;
            if (hybrid) {
                j = crisp_rd_u32(t->hybrid.block_row_ptr + 4 * (uint64_t)r);
                hi = crisp_rd_u32(t->hybrid.block_row_ptr + 4 * ((uint64_t)r + 1));
            }
            for (uint32_t c = 0; c < l->nbc; c++) {
                const float v = crisp_f16_to_f32(crisp_rd_u16(row + 2 * ((uint64_t)r * l->nbc + c)));
                if (!isfinite(v)) {
                    s = crisp_error(CRISP_ERR_FORMAT,
                                    "SALY: layer %u (tensor %u): class %d, block (%u, %u) has a "
                                    "non-finite saliency",
                                    (unsigned)i, (unsigned)l->tensor, (int)class_id, (unsigned)r,
                                    (unsigned)c);
                    break;
                }
                int is_kept = 1;
                if (hybrid) {
                    while (j < hi && crisp_rd_u32(t->hybrid.block_col + 4 * (uint64_t)j) < c) j++;
                    is_kept = j < hi && crisp_rd_u32(t->hybrid.block_col + 4 * (uint64_t)j) == c;
                }
                total += v;
                if (is_kept) kept += v;
            }
        }
    }
    crisp_saly_free(&saly);
    if (s != CRISP_OK) return s;
    /* A class with no saliency anywhere lost nothing. */
    double c = total > 0 ? kept / total : 1.0;
    *coverage = (float)(c < 0 ? 0 : c > 1 ? 1 : c);
    return CRISP_OK;
}
