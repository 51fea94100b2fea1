/* Malformed files: every failure must be the right status with a message
 * naming the section and field, and never a crash or a silent accept. */
#include <stdlib.h>
#include <string.h>

#include "crc32.h"
#include "loader_check.h"
#include "model_builder.h"

#define KIND(s) ((uint32_t)(s)[0] | (uint32_t)(s)[1] << 8 | (uint32_t)(s)[2] << 16 | (uint32_t)(s)[3] << 24)

static uint8_t *base;
static size_t base_size;
static uint8_t *work;

static uint8_t *fresh(void) {
    memcpy(work, base, base_size);
    return work;
}

/* Bytes no CRC covers: between the table and the first section, and
 * between sections. A flip there is harmless and loading succeeds. */
static int in_padding(size_t at) {
    const uint32_t count = mb_get_u32(base + 32);
    if (at < 64 + 32 * (size_t)count) return 0;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *e = base + 64 + 32 * i;
        const uint64_t off = mb_get_u64(e + 8), len = mb_get_u64(e + 16);
        if (at >= off && at < off + len) return 0;
    }
    return 1;
}

static void test_truncation_and_flips(void) {
    for (size_t n = 0; n < base_size; n++) {
        crisp_model *m;
        const crisp_status s = crisp_model_load_buffer(base, n, &m);
        const char *e = crisp_last_error();
        CHECK(s == CRISP_ERR_FORMAT && strncmp(e, "header: file is", 15) == 0 && m == NULL,
              "truncated to %zu: %s %s", n, crisp_status_name(s), e);
    }
    uint8_t *longer = calloc(1, base_size + 1);
    memcpy(longer, base, base_size);
    EXPECT_LOAD(longer, base_size + 1, CRISP_ERR_FORMAT, "header says", "one byte appended");
    free(longer);

    int padding_bytes = 0;
    for (size_t at = 0; at < base_size; at++) {
        uint8_t *f = fresh();
        f[at] ^= 0xFF;
        crisp_model *m;
        const crisp_status s = crisp_model_load_buffer(f, base_size, &m);
        crisp_model_free(m);
        if (in_padding(at)) {
            padding_bytes++;
            CHECK(s == CRISP_OK, "flip at %zu (padding) refused: %s", at, crisp_last_error());
        } else if (at < 8) {
            CHECK(s == CRISP_ERR_FORMAT, "flip in magic at %zu: %s", at, crisp_status_name(s));
        } else if (at == 8 || at == 9) {
            CHECK(s == CRISP_ERR_VERSION, "flip in version_major at %zu: %s", at, crisp_status_name(s));
        } else {
            CHECK(s == CRISP_ERR_CHECKSUM, "flip at %zu: %s %s", at, crisp_status_name(s),
                  crisp_last_error());
        }
    }
    CHECK(padding_bytes > 0, "the sample file should have inter-section padding");
}

static void test_container(void) {
    uint8_t *f = fresh();
    f[1] = 'X';
    EXPECT_LOAD(f, base_size, CRISP_ERR_FORMAT, "not a .crisp file: bad magic", "magic");
    f = fresh();
    f[6] = '\n'; /* CR LF converted to LF by a text-mode transfer */
    EXPECT_LOAD(f, base_size, CRISP_ERR_FORMAT, "bad magic", "text-mode magic");

    f = fresh();
    mb_put_u16(f + 8, 2);
    mb_fix_crcs(f, base_size);
    EXPECT_LOAD(f, base_size, CRISP_ERR_VERSION,
                "header: format version 2.1 is newer than this runtime reads (1.x); upgrade "
                "crisp-edge", "major 2");
    f = fresh();
    mb_put_u16(f + 8, 0);
    mb_fix_crcs(f, base_size);
    EXPECT_LOAD(f, base_size, CRISP_ERR_VERSION, "older", "major 0");
    f = fresh();
    mb_put_u16(f + 10, 7);
    mb_fix_crcs(f, base_size);
    EXPECT_LOAD(f, base_size, CRISP_OK, NULL, "newer minor 1.7");

    f = fresh();
    mb_put_u32(f + 60, mb_get_u32(f + 60) ^ 1);
    EXPECT_LOAD(f, base_size, CRISP_ERR_CHECKSUM, "header: CRC32 mismatch", "header crc");
    f = fresh();
    mb_put_u32(f + 44, mb_get_u32(f + 44) ^ 1); /* bad table CRC, good header CRC */
    mb_put_u32(f + 60, crisp_crc32(0, f, 60));
    EXPECT_LOAD(f, base_size, CRISP_ERR_CHECKSUM, "section table: CRC32 mismatch", "table crc");
    const size_t wght = mb_section_offset(base, KIND("WGHT"));
    f = fresh();
    f[wght + 5] ^= 0x10;
    EXPECT_LOAD(f, base_size, CRISP_ERR_CHECKSUM, "section WGHT: CRC32 mismatch (stored 0x",
                "weight crc");

    static const struct {
        size_t field;
        uint32_t value;
        const char *needle;
    } header_cases[] = {
        {12, 32, "header: header_size is 32"},
        {32, 0, "header: section_count is 0"},
        {32, 65, "header: section_count is 65"},
        {36, 16, "header: section_entry_size is 16"},
        {40, 1, "header: flags"},
        {24, 8, "header: section table at offset 8"},
        {24, 1u << 20, "header: section table at offset"},
    };
    for (size_t i = 0; i < sizeof header_cases / sizeof header_cases[0]; i++) {
        f = fresh();
        if (header_cases[i].field == 24) mb_put_u64(f + 24, header_cases[i].value);
        else mb_put_u32(f + header_cases[i].field, header_cases[i].value);
        mb_fix_crcs(f, base_size);
        EXPECT_LOAD(f, base_size, CRISP_ERR_FORMAT, header_cases[i].needle, header_cases[i].needle);
    }

    const size_t g_entry = mb_section_entry(base, KIND("GRPH"));
    const size_t l_entry = mb_section_entry(base, KIND("LABL"));
    const size_t w_entry = mb_section_entry(base, KIND("WGHT"));
    f = fresh();
    mb_put_u64(f + g_entry + 8, mb_get_u64(f + g_entry + 8) + 4);
    mb_fix_crcs(f, base_size);
    EXPECT_LOAD(f, base_size, CRISP_ERR_FORMAT, "entry 0 (GRPH): offset", "misaligned section");
    f = fresh();
    mb_put_u64(f + l_entry + 8, mb_get_u64(f + g_entry + 8));
    mb_fix_crcs(f, base_size);
    EXPECT_LOAD(f, base_size, CRISP_ERR_FORMAT, "overlaps entry", "overlapping sections");
    f = fresh();
    mb_put_u64(f + l_entry + 16, base_size);
    mb_fix_crcs(f, base_size);
    EXPECT_LOAD(f, base_size, CRISP_ERR_FORMAT, "lie outside the", "section past the end");
    f = fresh();
    mb_put_u64(f + l_entry + 16, UINT64_MAX - 8);
    mb_fix_crcs(f, base_size);
    EXPECT_LOAD(f, base_size, CRISP_ERR_FORMAT, "lie outside the", "overflowing section size");
    f = fresh();
    mb_put_u64(f + g_entry + 8, 64);
    mb_fix_crcs(f, base_size);
    EXPECT_LOAD(f, base_size, CRISP_ERR_FORMAT, "overlaps the header or the section table",
                "section over the table");
    f = fresh();
    mb_put_u32(f + l_entry, KIND("PROV"));
    mb_fix_crcs(f, base_size);
    EXPECT_LOAD(f, base_size, CRISP_ERR_FORMAT, "a kind appears at most once", "duplicate kind");
    f = fresh();
    mb_put_u32(f + w_entry, KIND("ZZZZ"));
    mb_put_u32(f + w_entry + 4, 0);
    mb_fix_crcs(f, base_size);
    EXPECT_LOAD(f, base_size, CRISP_ERR_FORMAT, "no WGHT section", "missing WGHT");
    f = fresh();
    mb_put_u32(f + w_entry + 4, 3);
    mb_fix_crcs(f, base_size);
    EXPECT_LOAD(f, base_size, CRISP_ERR_FORMAT, "unknown bits", "section flags");
}

static void test_extra_sections(void) {
    mb_model mb;
    mb_sample_cnn(&mb);
    static const uint8_t payload[100] = {1, 2, 3};
    mb_add_section(&mb, KIND("SALY"), 0, payload, sizeof payload);
    size_t n;
    uint8_t *f = mb_build(&mb, &n);
    EXPECT_LOAD(f, n, CRISP_OK, NULL, "unknown optional section is skipped");
    f[mb_section_offset(f, KIND("SALY")) + 1] ^= 1;
    EXPECT_LOAD(f, n, CRISP_ERR_CHECKSUM, "section SALY: CRC32 mismatch",
                "unknown optional section still has its CRC checked");
    free(f);
    mb.extra_count = 0;
    mb_add_section(&mb, KIND("HYBR"), 1, payload, sizeof payload);
    f = mb_build(&mb, &n);
    EXPECT_LOAD(f, n, CRISP_ERR_VERSION, "section HYBR is required but unknown", "required unknown");
    free(f);
    mb_free(&mb);
}

void test_graph_records(void);

void test_malformed(void) {
    mb_model mb;
    mb_sample_cnn(&mb);
    base = mb_build(&mb, &base_size);
    work = malloc(base_size);
    mb_free(&mb);
    test_truncation_and_flips();
    test_container();
    test_extra_sections();
    test_graph_records();
    free(base);
    free(work);
}

/* Exposed to test_loader_graph.c. */
uint8_t *bad_fresh(size_t *size);
uint8_t *bad_fresh(size_t *size) {
    *size = base_size;
    return fresh();
}
