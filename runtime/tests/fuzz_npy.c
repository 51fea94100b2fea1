/* libFuzzer target (CMake -DCRISP_FUZZ=ON, clang): the .npy reader that
 * crisp-run (INPUT.npy) and crisp-personalize (features, labels) put in
 * front of every file they are given, on arbitrary bytes: npy_parse
 * ('<f4') and npy_parse_ints ('<i4'/'<i8'). Beyond "no crash, no leak":
 * a success has count = the product of the dims and exactly the file's
 * data bytes (the floats verbatim, the integers sign-extended); a failure
 * leaves a message and no data. Seeds: build-fuzz writes a few valid
 * files (v1-v3, every dtype, shape (), (0,)) into build/fuzz/npy-corpus. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t product(uint32_t rank, const uint64_t *dims) {
    uint64_t n = 1;
    for (uint32_t i = 0; i < rank; i++) n *= dims[i];
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[256], shape[128];
    npy_array a;
    err[0] = '\0';
    if (npy_parse(data, size, "fuzz.npy", &a, err, sizeof err) == 0) {
        if (a.rank > NPY_MAX_RANK || a.count != product(a.rank, a.dims) || a.data == NULL ||
            a.count * 4 > size || memcmp(a.data, data + size - a.count * 4, a.count * 4) != 0)
            abort();
        npy_shape_text(shape, sizeof shape, a.rank, a.dims);
        npy_free(&a);
    } else if (err[0] == '\0' || a.data != NULL) {
        abort();
    }
    npy_int_array q;
    err[0] = '\0';
    if (npy_parse_ints(data, size, "fuzz.npy", &q, err, sizeof err) == 0) {
        if (q.rank > NPY_MAX_RANK || q.count != product(q.rank, q.dims) || q.data == NULL)
            abort();
        /* The data follow the header: 4 or 8 bytes per element, little-endian. */
        const size_t at = data[6] == 1 ? 10 + ((size_t)data[8] | (size_t)data[9] << 8)
                                       : 12 + ((size_t)data[8] | (size_t)data[9] << 8 |
                                               (size_t)data[10] << 16 | (size_t)data[11] << 24);
        const size_t item = q.count ? (size - at) / q.count : 4;
        if (at > size || (item != 4 && item != 8) || q.count * item != size - at) abort();
        for (uint64_t i = 0; i < q.count; i++) {
            uint64_t u = 0;
            for (size_t k = 0; k < item; k++) u |= (uint64_t)data[at + i * item + k] << (8 * k);
            const int64_t want = item == 4 ? (int64_t)(int32_t)(uint32_t)u : (int64_t)u;
            if (q.data[i] != want) abort();
        }
        free(q.data);
    } else if (err[0] == '\0' || q.data != NULL) {
        abort();
    }
    return 0;
}
