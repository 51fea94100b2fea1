/* The container: header, section table and section bounds/CRCs. */
#include <string.h>

#include "crc32.h"
#include "format.h"
#include "model.h"
#include "names.h"
#include "status.h"

typedef struct entry {
    uint32_t kind, flags;
    uint64_t offset, size;
    uint32_t crc;
} entry;

static crisp_status check_header(crisp_model *m, uint64_t *table_offset, uint32_t *count,
                                 uint32_t *stride) {
    const uint8_t *b = m->bytes;
    const uint64_t n = m->size;
    const size_t magic_n = n < CRISP_MAGIC_SIZE ? (size_t)n : CRISP_MAGIC_SIZE;
    if (memcmp(b, CRISP_MAGIC, magic_n) != 0)
        return crisp_error(CRISP_ERR_FORMAT, "not a .crisp file: bad magic");
    if (n < CRISP_HEADER_SIZE)
        return crisp_error(CRISP_ERR_FORMAT,
                           "header: file is %llu bytes, shorter than the %u-byte header "
                           "(truncated?)",
                           (unsigned long long)n, CRISP_HEADER_SIZE);
    /* Version before CRC: a future major version may lay out its header differently. */
    m->format_major = crisp_rd_u16(b + CRISP_HDR_VERSION_MAJOR);
    m->format_minor = crisp_rd_u16(b + CRISP_HDR_VERSION_MINOR);
    if (m->format_major != CRISP_FORMAT_MAJOR)
        return crisp_error(CRISP_ERR_VERSION,
                           "header: format version %u.%u is %s than this runtime reads (%d.x); %s",
                           m->format_major, m->format_minor,
                           m->format_major > CRISP_FORMAT_MAJOR ? "newer" : "older",
                           CRISP_FORMAT_MAJOR,
                           m->format_major > CRISP_FORMAT_MAJOR
                               ? "upgrade crisp-edge"
                               : "re-pack the model with this crisp-edge");
    const uint32_t stored = crisp_rd_u32(b + CRISP_HDR_CRC);
    const uint32_t computed = crisp_crc32(0, b, CRISP_HDR_CRC);
    if (stored != computed)
        return crisp_error(CRISP_ERR_CHECKSUM,
                           "header: CRC32 mismatch (stored 0x%08X, computed 0x%08X): the file is "
                           "corrupt",
                           (unsigned)stored, (unsigned)computed);
    const uint32_t header_size = crisp_rd_u32(b + CRISP_HDR_HEADER_SIZE);
    if (header_size != CRISP_HEADER_SIZE)
        return crisp_error(CRISP_ERR_FORMAT, "header: header_size is %u, expected %u",
                           (unsigned)header_size, CRISP_HEADER_SIZE);
    const uint64_t file_size = crisp_rd_u64(b + CRISP_HDR_FILE_SIZE);
    if (file_size != n)
        return crisp_error(CRISP_ERR_FORMAT, "header: file is %llu bytes but header says %llu (%s)",
                           (unsigned long long)n, (unsigned long long)file_size,
                           n < file_size ? "truncated?" : "extra bytes appended?");
    const uint32_t flags = crisp_rd_u32(b + CRISP_HDR_FLAGS);
    if (flags != 0)
        return crisp_error(CRISP_ERR_FORMAT, "header: flags are 0x%08X, expected 0",
                           (unsigned)flags);
    *table_offset = crisp_rd_u64(b + CRISP_HDR_TABLE_OFFSET);
    *count = crisp_rd_u32(b + CRISP_HDR_SECTION_COUNT);
    *stride = crisp_rd_u32(b + CRISP_HDR_ENTRY_SIZE);
    if (*count < 1 || *count > CRISP_MAX_SECTIONS)
        return crisp_error(CRISP_ERR_FORMAT, "header: section_count is %u, expected 1..%u",
                           (unsigned)*count, CRISP_MAX_SECTIONS);
    if (*stride < CRISP_ENTRY_SIZE || *stride > CRISP_MAX_ENTRY_SIZE)
        return crisp_error(CRISP_ERR_FORMAT, "header: section_entry_size is %u, expected %u..%u",
                           (unsigned)*stride, CRISP_ENTRY_SIZE, CRISP_MAX_ENTRY_SIZE);
    /* count * stride <= 64 * 4096: no overflow. */
    const uint64_t table_bytes = (uint64_t)*count * *stride;
    if (*table_offset < CRISP_HEADER_SIZE || *table_offset > n || table_bytes > n - *table_offset)
        return crisp_error(CRISP_ERR_FORMAT,
                           "header: section table at offset %llu (%llu bytes) is outside the "
                           "%llu-byte file or overlaps the header",
                           (unsigned long long)*table_offset, (unsigned long long)table_bytes,
                           (unsigned long long)n);
    const uint32_t table_stored = crisp_rd_u32(b + CRISP_HDR_TABLE_CRC);
    const uint32_t table_computed = crisp_crc32(0, b + *table_offset, (size_t)table_bytes);
    if (table_stored != table_computed)
        return crisp_error(CRISP_ERR_CHECKSUM,
                           "section table: CRC32 mismatch (stored 0x%08X, computed 0x%08X): the "
                           "file is corrupt",
                           (unsigned)table_stored, (unsigned)table_computed);
    return CRISP_OK;
}

static crisp_status check_entry(const crisp_model *m, uint32_t i, const entry *e,
                                uint64_t table_end) {
    char kt[16];
    const char *k = crisp_section_kind_name(e->kind, kt);
    if (e->flags & ~CRISP_SECTION_REQUIRED)
        return crisp_error(CRISP_ERR_FORMAT, "section table: entry %u (%s): flags 0x%08X has "
                           "unknown bits", (unsigned)i, k, (unsigned)e->flags);
    if (e->offset % CRISP_ALIGN != 0)
        return crisp_error(CRISP_ERR_FORMAT,
                           "section table: entry %u (%s): offset %llu is not a multiple of %u",
                           (unsigned)i, k, (unsigned long long)e->offset, CRISP_ALIGN);
    if (e->offset < table_end)
        return crisp_error(CRISP_ERR_FORMAT,
                           "section table: entry %u (%s): offset %llu overlaps the header or the "
                           "section table (which ends at %llu)",
                           (unsigned)i, k, (unsigned long long)e->offset,
                           (unsigned long long)table_end);
    if (e->offset > m->size || e->size > m->size - e->offset)
        return crisp_error(CRISP_ERR_FORMAT,
                           "section table: entry %u (%s): bytes %llu..%llu lie outside the "
                           "%llu-byte file",
                           (unsigned)i, k, (unsigned long long)e->offset,
                           (unsigned long long)e->offset + (e->size > m->size ? 0 : e->size),
                           (unsigned long long)m->size);
    return CRISP_OK;
}

crisp_status crisp_parse_container(crisp_model *m) {
    uint64_t table_offset = 0;
    uint32_t count = 0, stride = 0;
    crisp_status s = check_header(m, &table_offset, &count, &stride);
    if (s != CRISP_OK) return s;
    const uint64_t table_end = table_offset + (uint64_t)count * stride;

    entry entries[CRISP_MAX_SECTIONS];
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *p = m->bytes + table_offset + (uint64_t)i * stride;
        entry *e = &entries[i];
        e->kind = crisp_rd_u32(p + CRISP_ENT_KIND);
        e->flags = crisp_rd_u32(p + CRISP_ENT_FLAGS);
        e->offset = crisp_rd_u64(p + CRISP_ENT_OFFSET);
        e->size = crisp_rd_u64(p + CRISP_ENT_SIZE);
        e->crc = crisp_rd_u32(p + CRISP_ENT_CRC);
        if ((s = check_entry(m, i, e, table_end)) != CRISP_OK) return s;
        char kt[16], kt2[16];
        for (uint32_t j = 0; j < i; j++) {
            const entry *f = &entries[j];
            if (f->kind == e->kind)
                return crisp_error(CRISP_ERR_FORMAT,
                                   "section table: entries %u and %u are both %s; a kind "
                                   "appears at most once",
                                   (unsigned)j, (unsigned)i,
                                   crisp_section_kind_name(e->kind, kt));
            /* Empty sections occupy no bytes and cannot overlap. */
            if (e->size != 0 && f->size != 0 && e->offset < f->offset + f->size &&
                f->offset < e->offset + e->size)
                return crisp_error(CRISP_ERR_FORMAT,
                                   "section table: entry %u (%s) overlaps entry %u (%s)",
                                   (unsigned)i, crisp_section_kind_name(e->kind, kt),
                                   (unsigned)j, crisp_section_kind_name(f->kind, kt2));
        }
    }
    for (uint32_t i = 0; i < count; i++) {
        const entry *e = &entries[i];
        char kt[16];
        const uint8_t *data = m->bytes + e->offset;
        const uint32_t computed = crisp_crc32(0, data, (size_t)e->size);
        if (computed != e->crc)
            return crisp_error(CRISP_ERR_CHECKSUM,
                               "section %s: CRC32 mismatch (stored 0x%08X, computed 0x%08X): the "
                               "file is corrupt",
                               crisp_section_kind_name(e->kind, kt), (unsigned)e->crc,
                               (unsigned)computed);
        crisp_section sec = {data, e->size};
        if (e->kind == CRISP_KIND_GRPH) m->grph = sec;
        else if (e->kind == CRISP_KIND_WGHT) m->wght = sec;
        else if (e->kind == CRISP_KIND_LABL) m->labl = sec;
        else if (e->kind == CRISP_KIND_PROV) m->prov = sec;
        else if (e->kind == CRISP_KIND_SALY) m->saly = sec;
        else if (e->kind == CRISP_KIND_PREP) m->prep = sec;
        else if (e->flags & CRISP_SECTION_REQUIRED)
            return crisp_error(CRISP_ERR_VERSION,
                               "section table: entry %u: section %s is required but unknown to "
                               "this runtime (format %u.%u); upgrade crisp-edge",
                               (unsigned)i, crisp_section_kind_name(e->kind, kt),
                               m->format_major, m->format_minor);
    }
    if (m->grph.data == NULL)
        return crisp_error(CRISP_ERR_FORMAT, "section table: the file has no GRPH section");
    if (m->wght.data == NULL)
        return crisp_error(CRISP_ERR_FORMAT, "section table: the file has no WGHT section");
    return CRISP_OK;
}
