/* libFuzzer target (CMake -DCRISP_FUZZ=ON, clang): load_buffer on the input;
 * if it loads, query everything and run one sample of zeros and one of ones
 * on a single-threaded session, so a malformed-but-accepted shape would
 * crash a kernel under ASan/UBSan. Models too large to run in the fuzzer's
 * time and memory budget are loaded and queried but not run.
 *
 * A custom mutator re-computes the header, table and section CRCs after
 * most mutations: otherwise nearly every mutant dies at a checksum and the
 * validator behind it is never reached. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "crc32.h"
#include "crisp.h"
#include "format.h"

/* Enough for every seed and far below -rss_limit_mb; keeps pools and convs
 * (work ~ arena x window, or MACs) well inside -timeout under ASan. */
#define FUZZ_MAX_ARENA (256u << 10)
#define FUZZ_MAX_MACS (1u << 26)
/* The loader's memory limit (MiB), set explicitly: every seed needs well under
 * 1 MiB, and mutants asking more (a large kernel's conv scratch, aliased label
 * names) are refused by the limit instead of allocating past -rss_limit_mb
 * under ASan. Not the 512 MiB default, nor CRISP_MAX_MEMORY_MB. */
#define FUZZ_MAX_MEMORY_MB 64u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Every CRC the container has, wherever the (mutated) table says, within bounds. */
static void fix_crcs(uint8_t *f, size_t size) {
    if (size < CRISP_HEADER_SIZE) return;
    const uint64_t table = crisp_rd_u64(f + CRISP_HDR_TABLE_OFFSET);
    const uint32_t count = crisp_rd_u32(f + CRISP_HDR_SECTION_COUNT);
    const uint32_t stride = crisp_rd_u32(f + CRISP_HDR_ENTRY_SIZE);
    if (count <= CRISP_MAX_SECTIONS && stride >= CRISP_ENTRY_SIZE && stride <= CRISP_MAX_ENTRY_SIZE &&
        table <= size && (uint64_t)count * stride <= size - table) {
        for (uint32_t i = 0; i < count; i++) {
            uint8_t *e = f + table + (uint64_t)i * stride;
            const uint64_t off = crisp_rd_u64(e + CRISP_ENT_OFFSET), len = crisp_rd_u64(e + CRISP_ENT_SIZE);
            if (off <= size && len <= size - off)
                put_u32(e + CRISP_ENT_CRC, crisp_crc32(0, f + off, (size_t)len));
        }
        put_u32(f + CRISP_HDR_TABLE_CRC, crisp_crc32(0, f + table, (size_t)count * stride));
    }
    put_u32(f + CRISP_HDR_CRC, crisp_crc32(0, f, CRISP_HDR_CRC));
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed) {
    size = LLVMFuzzerMutate(data, size, max_size);
    if (seed % 8 != 0) fix_crcs(data, size); /* 1 in 8 keeps its broken checksums */
    return size;
}

static void run(const crisp_model *m, const crisp_model_info *info) {
    crisp_session *s = NULL;
    const crisp_session_options options = {1, 0};
    if (crisp_session_create_with_options(m, &options, &s) != CRISP_OK) return;
    const size_t nx = (size_t)info->input_elements, ny = (size_t)info->output_elements;
    float *x = calloc(nx, sizeof *x), *y = malloc(ny * sizeof *y);
    if (x != NULL && y != NULL) {
        crisp_session_run(s, x, nx, y, ny);
        for (size_t i = 0; i < nx; i++) x[i] = 1.0f;
        crisp_session_run(s, x, nx, y, ny);
    }
    free(x);
    free(y);
    crisp_session_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    crisp_model *m = NULL;
    const crisp_load_options options = {FUZZ_MAX_MEMORY_MB, 0};
    if (crisp_model_load_buffer_with_options(data, size, &options, &m) != CRISP_OK) return 0;
    crisp_model_info info;
    crisp_model_get_info(m, &info);
    for (uint32_t i = 0; i < info.label_count; i++) {
        int32_t id;
        const char *name;
        crisp_model_get_label(m, i, &id, &name);
    }
    const char *json;
    size_t length;
    crisp_model_get_provenance(m, &json, &length);
    crisp_preprocess prep;
    crisp_model_get_preprocess(m, &prep);
    if (info.arena_bytes <= FUZZ_MAX_ARENA && info.macs <= FUZZ_MAX_MACS) run(m, &info);
    crisp_model_free(m);
    return 0;
}
