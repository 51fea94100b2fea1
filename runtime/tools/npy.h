/* A strict reader/writer for NumPy .npy files holding little-endian float32
 * in C order (and, for labels, int32/int64): what crisp-run, crisp-personalize
 * and the tests exchange with Python. */
#ifndef CRISP_NPY_H
#define CRISP_NPY_H

#include <stddef.h>
#include <stdint.h>

#define NPY_MAX_RANK 8

typedef struct npy_array {
    uint32_t rank;
    uint64_t dims[NPY_MAX_RANK];
    uint64_t count; /* product of dims (1 for shape ()) */
    float *data;    /* malloc'd */
} npy_array;

/* Return 0 on success; otherwise -1 with a message in err naming the file
 * and the problem. Formats v1.0, v2.0 and v3.0; dtype '<f4' only; C order. */
int npy_read(const char *path, npy_array *out, char *err, size_t err_size);
int npy_parse(const uint8_t *bytes, size_t size, const char *name, npy_array *out, char *err,
              size_t err_size);
int npy_write(const char *path, const float *data, uint32_t rank, const uint64_t *dims, char *err,
              size_t err_size);
void npy_free(npy_array *a);

/* Integer arrays ('<i4' or '<i8', C order), e.g. labels; values as int64. */
typedef struct npy_int_array {
    uint32_t rank;
    uint64_t dims[NPY_MAX_RANK];
    uint64_t count;
    int64_t *data; /* malloc'd; free() it */
} npy_int_array;
int npy_read_ints(const char *path, npy_int_array *out, char *err, size_t err_size);
/* The same from bytes in memory (name is used in messages); what the fuzzer drives. */
int npy_parse_ints(const uint8_t *bytes, size_t size, const char *name, npy_int_array *out,
                   char *err, size_t err_size);
/* "(2,3,32,32)" into buf. */
const char *npy_shape_text(char *buf, size_t size, uint32_t rank, const uint64_t *dims);

#endif
