/* LABL (label map) and PROV (provenance): optional, text validated. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "memlimit.h"
#include "model.h"
#include "status.h"

size_t crisp_utf8_error_at(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        const uint8_t c = s[i];
        size_t len;
        uint32_t min, cp;
        if (c == 0) return i;
        if (c < 0x80) { i++; continue; }
        if ((c & 0xE0) == 0xC0) { len = 2; min = 0x80; cp = c & 0x1Fu; }
        else if ((c & 0xF0) == 0xE0) { len = 3; min = 0x800; cp = c & 0x0Fu; }
        else if ((c & 0xF8) == 0xF0) { len = 4; min = 0x10000; cp = c & 0x07u; }
        else return i;
        if (len > n - i) return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
            cp = cp << 6 | (s[i + k] & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += len;
    }
    return n;
}

/* One label's name in the string area, and its record's index. */
typedef struct name_ref {
    uint32_t off, len, index;
} name_ref;

static int by_name(const void *a, const void *b) {
    const name_ref *x = a, *y = b;
    if (x->off != y->off) return x->off < y->off ? -1 : 1;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

crisp_status crisp_parse_labels(crisp_model *m) {
    const uint8_t *b = m->labl.data;
    const uint64_t size = m->labl.size;
    if (b == NULL) return CRISP_OK;
    if (size < CRISP_LABEL_HEADER_SIZE)
        return crisp_error(CRISP_ERR_FORMAT, "LABL: section is %llu bytes, smaller than its "
                           "%u-byte header", (unsigned long long)size, CRISP_LABEL_HEADER_SIZE);
    const uint32_t count = crisp_rd_u32(b), stride = crisp_rd_u32(b + 4);
    const uint32_t string_bytes = crisp_rd_u32(b + 8);
    const uint64_t outputs = m->values[m->output_value].elements;
    if (count != outputs)
        return crisp_error(CRISP_ERR_FORMAT,
                           "LABL: count is %u, but the model has %llu outputs", (unsigned)count,
                           (unsigned long long)outputs);
    if (stride < CRISP_LABEL_RECORD_SIZE || stride > CRISP_MAX_RECORD_SIZE)
        return crisp_error(CRISP_ERR_FORMAT, "LABL: record_size is %u, expected %u",
                           (unsigned)stride, CRISP_LABEL_RECORD_SIZE);
    /* count <= 2^28, stride <= 2^12: exact in 64 bits. */
    const uint64_t strings_at = CRISP_LABEL_HEADER_SIZE + (uint64_t)count * stride;
    if (strings_at > size || string_bytes > size - strings_at)
        return crisp_error(CRISP_ERR_FORMAT,
                           "LABL: %u records of %u bytes and %u string bytes need %llu bytes, "
                           "but the section is %llu bytes",
                           (unsigned)count, (unsigned)stride, (unsigned)string_bytes,
                           (unsigned long long)(strings_at + string_bytes),
                           (unsigned long long)size);
    const uint8_t *strings = b + strings_at;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *r = b + CRISP_LABEL_HEADER_SIZE + (uint64_t)i * stride;
        const uint32_t off = crisp_rd_u32(r + 4), len = crisp_rd_u32(r + 8);
        if (len > CRISP_MAX_LABEL_NAME)
            return crisp_error(CRISP_ERR_FORMAT,
                               "LABL: label %u: name_length is %u, at most %u allowed",
                               (unsigned)i, (unsigned)len, CRISP_MAX_LABEL_NAME);
        if (off > string_bytes || len > string_bytes - off)
            return crisp_error(CRISP_ERR_FORMAT,
                               "LABL: label %u: name at %u (+%u bytes) lies outside the "
                               "%u-byte string area",
                               (unsigned)i, (unsigned)off, (unsigned)len, (unsigned)string_bytes);
        const size_t bad = crisp_utf8_error_at(strings + off, len);
        if (bad != len)
            return crisp_error(CRISP_ERR_FORMAT,
                               "LABL: label %u: name has %s at byte %zu", (unsigned)i,
                               strings[off + bad] == 0 ? "a NUL" : "invalid UTF-8", bad);
    }
    /* Records may alias one name many times (a 1 MB file could otherwise make
     * 70 MB of copies): each distinct (offset, length) is copied once and
     * its labels share the copy. count <= 2^28 records of >= 16 bytes. */
    name_ref *refs = malloc((size_t)(count ? count : 1) * sizeof *refs);
    if (refs == NULL)
        return crisp_error(CRISP_ERR_NOMEM, "LABL: out of memory for %u labels", (unsigned)count);
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *r = b + CRISP_LABEL_HEADER_SIZE + (uint64_t)i * stride;
        refs[i] = (name_ref){crisp_rd_u32(r + 4), crisp_rd_u32(r + 8), i};
    }
    qsort(refs, count, sizeof *refs, by_name);
    uint64_t text_bytes = 0;
    for (uint32_t k = 0; k < count; k++)
        if (k == 0 || refs[k].off != refs[k - 1].off || refs[k].len != refs[k - 1].len)
            text_bytes += (uint64_t)refs[k].len + 1;
    const uint64_t bytes =
        text_bytes + (uint64_t)count * (sizeof *m->label_ids + sizeof *m->label_names);
    char what[96];
    snprintf(what, sizeof what, "the label names (%u labels, %llu bytes of distinct names)",
             (unsigned)count, (unsigned long long)text_bytes);
    crisp_status s = crisp_limits_charge(m, bytes, what);
#if SIZE_MAX < UINT64_MAX
    /* A 32-bit board's size_t could be passed by a limit set above 4 GiB. */
    if (s == CRISP_OK && bytes > (uint64_t)SIZE_MAX)
        s = crisp_error(CRISP_ERR_NOMEM, "LABL: %llu bytes of labels do not fit in this "
                        "machine's address space", (unsigned long long)bytes);
#endif
    if (s != CRISP_OK) {
        free(refs);
        return s;
    }
    m->label_bytes = bytes;
    m->label_ids = malloc((size_t)count * sizeof *m->label_ids);
    m->label_names = malloc((size_t)count * sizeof *m->label_names);
    m->label_text = malloc((size_t)text_bytes);
    if (m->label_ids == NULL || m->label_names == NULL || m->label_text == NULL) {
        free(refs);
        return crisp_error(CRISP_ERR_NOMEM, "LABL: out of memory for %u labels", (unsigned)count);
    }
    char *t = m->label_text;
    for (uint32_t k = 0; k < count; k++) {
        const name_ref *n = &refs[k];
        if (k == 0 || n->off != refs[k - 1].off || n->len != refs[k - 1].len) {
            memcpy(t, strings + n->off, n->len);
            t[n->len] = '\0';
            t += (size_t)n->len + 1;
        }
        m->label_names[n->index] = t - n->len - 1;
    }
    free(refs);
    for (uint32_t i = 0; i < count; i++)
        m->label_ids[i] = crisp_rd_i32(b + CRISP_LABEL_HEADER_SIZE + (uint64_t)i * stride);
    m->label_count = count;
    return CRISP_OK;
}

crisp_status crisp_parse_provenance(crisp_model *m) {
    const uint64_t n = m->prov.data != NULL ? m->prov.size : 0;
    if (n > 0) {
        const size_t bad = crisp_utf8_error_at(m->prov.data, (size_t)n);
        if (bad != n)
            return crisp_error(CRISP_ERR_FORMAT, "PROV: %s at byte %zu (expected UTF-8 JSON)",
                               m->prov.data[bad] == 0 ? "a NUL" : "invalid UTF-8", bad);
    }
    m->provenance = malloc((size_t)n + 1);
    if (m->provenance == NULL)
        return crisp_error(CRISP_ERR_NOMEM, "PROV: out of memory for %llu bytes",
                           (unsigned long long)n);
    if (n > 0) memcpy(m->provenance, m->prov.data, (size_t)n);
    m->provenance[n] = '\0';
    m->provenance_length = (size_t)n;
    return CRISP_OK;
}
