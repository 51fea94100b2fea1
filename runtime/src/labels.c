/* LABL (label map) and PROV (provenance): optional, text validated. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "model.h"
#include "status.h"

/* Returns the offset of the first byte that is not well-formed UTF-8 (or a
 * NUL), or n when all is well. Rejects overlongs, surrogates, > U+10FFFF. */
static size_t utf8_error_at(const uint8_t *s, size_t n) {
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
    uint64_t text_bytes = 0;
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
        const size_t bad = utf8_error_at(strings + off, len);
        if (bad != len)
            return crisp_error(CRISP_ERR_FORMAT,
                               "LABL: label %u: name has %s at byte %zu", (unsigned)i,
                               strings[off + bad] == 0 ? "a NUL" : "invalid UTF-8", bad);
        text_bytes += (uint64_t)len + 1;
    }
#if SIZE_MAX < UINT64_MAX
    /* On a 32-bit board size_t is 32 bits: names aliased many times could sum past it, and
     * the cast below would then allocate less than the copy loop writes. */
    if (text_bytes > (uint64_t)SIZE_MAX)
        return crisp_error(CRISP_ERR_NOMEM, "LABL: %llu bytes of label names do not fit in "
                           "this machine's address space", (unsigned long long)text_bytes);
#endif
    m->label_ids = malloc((size_t)count * sizeof *m->label_ids);
    m->label_names = malloc((size_t)count * sizeof *m->label_names);
    m->label_text = malloc((size_t)text_bytes);
    if (m->label_ids == NULL || m->label_names == NULL || m->label_text == NULL)
        return crisp_error(CRISP_ERR_NOMEM, "LABL: out of memory for %u labels", (unsigned)count);
    char *t = m->label_text;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *r = b + CRISP_LABEL_HEADER_SIZE + (uint64_t)i * stride;
        const uint32_t off = crisp_rd_u32(r + 4), len = crisp_rd_u32(r + 8);
        m->label_ids[i] = crisp_rd_i32(r);
        m->label_names[i] = t;
        memcpy(t, strings + off, len);
        t[len] = '\0';
        t += len + 1;
    }
    m->label_count = count;
    return CRISP_OK;
}

crisp_status crisp_parse_provenance(crisp_model *m) {
    const uint64_t n = m->prov.data != NULL ? m->prov.size : 0;
    if (n > 0) {
        const size_t bad = utf8_error_at(m->prov.data, (size_t)n);
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
