#include "npy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t size, const char *fmt,
                                                      ...) {
    va_list args;
    va_start(args, fmt);
    vsnprintf(err, size, fmt, args);
    va_end(args);
    return -1;
}

const char *npy_shape_text(char *buf, size_t size, uint32_t rank, const uint64_t *dims) {
    size_t used = (size_t)snprintf(buf, size, "(");
    for (uint32_t i = 0; i < rank && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? ",%llu" : "%llu",
                                 (unsigned long long)dims[i]);
    if (used < size) snprintf(buf + used, size - used, rank == 1 ? ",)" : ")");
    return buf;
}

/* The header is a Python dict literal; numpy writes exactly three keys. */
typedef struct cursor {
    const char *p, *end;
} cursor;

static void skip_space(cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\t')) c->p++;
}

static int expect(cursor *c, char ch) {
    skip_space(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A quoted string into buf; 0 if malformed or too long. */
static int read_string(cursor *c, char *buf, size_t size) {
    skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return 0;
    const char quote = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != quote) {
        if (n + 1 >= size) return 0;
        buf[n++] = *c->p++;
    }
    if (c->p >= c->end) return 0;
    c->p++;
    buf[n] = '\0';
    return 1;
}

static int read_shape(cursor *c, npy_array *a) {
    if (!expect(c, '(')) return 0;
    a->rank = 0;
    for (;;) {
        skip_space(c);
        if (expect(c, ')')) return 1;
        if (a->rank == NPY_MAX_RANK || c->p >= c->end || *c->p < '0' || *c->p > '9') return 0;
        uint64_t v = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (v > (UINT64_MAX - 9) / 10) return 0;
            v = v * 10 + (uint64_t)(*c->p++ - '0');
        }
        a->dims[a->rank++] = v;
        if (!expect(c, ',')) return expect(c, ')');
    }
}

/* want_int: '<i4' or '<i8' (else '<f4' only); *item gets the element size. */
static int parse_header(const char *text, size_t len, const char *name, npy_array *a, int want_int,
                        size_t *item, char *err, size_t err_size) {
    cursor c = {text, text + len};
    char key[32], descr[32] = "";
    int fortran = -1, have_shape = 0;
    if (!expect(&c, '{')) return fail(err, err_size, "%s: bad .npy header (no dict)", name);
    while (!expect(&c, '}')) {
        if (!read_string(&c, key, sizeof key) || !expect(&c, ':'))
            return fail(err, err_size, "%s: bad .npy header (malformed dict)", name);
        skip_space(&c);
        if (strcmp(key, "descr") == 0) {
            if (!read_string(&c, descr, sizeof descr))
                return fail(err, err_size, "%s: bad .npy header (descr)", name);
        } else if (strcmp(key, "fortran_order") == 0) {
            if ((size_t)(c.end - c.p) >= 4 && memcmp(c.p, "True", 4) == 0) fortran = 1, c.p += 4;
            else if ((size_t)(c.end - c.p) >= 5 && memcmp(c.p, "False", 5) == 0) fortran = 0, c.p += 5;
            else return fail(err, err_size, "%s: bad .npy header (fortran_order)", name);
        } else if (strcmp(key, "shape") == 0) {
            if (!read_shape(&c, a))
                return fail(err, err_size, "%s: bad .npy header (shape)", name);
            have_shape = 1;
        } else {
            return fail(err, err_size, "%s: bad .npy header (unknown key '%s')", name, key);
        }
        if (!expect(&c, ',')) {
            if (!expect(&c, '}')) return fail(err, err_size, "%s: bad .npy header", name);
            break;
        }
    }
    if (descr[0] == '\0' || fortran < 0 || !have_shape)
        return fail(err, err_size, "%s: bad .npy header (needs descr, fortran_order and shape)",
                    name);
    if (strcmp(descr, "<f4") != 0 && !(want_int && (strcmp(descr, "<i4") == 0 ||
                                                    strcmp(descr, "<i8") == 0)))
        return want_int ? fail(err, err_size,
                               "%s: dtype '%s' is not little-endian int32 or int64 ('<i4', "
                               "'<i8'); convert with y.astype(numpy.int64)",
                               name, descr)
                        : fail(err, err_size,
                               "%s: dtype '%s' is not little-endian float32 ('<f4'); convert "
                               "with x.astype(numpy.float32)",
                               name, descr);
    if (want_int && strcmp(descr, "<f4") == 0)
        return fail(err, err_size,
                    "%s: dtype '<f4' is not an integer type; labels must be int32 or int64 "
                    "(y.astype(numpy.int64))",
                    name);
    *item = strcmp(descr, "<i8") == 0 ? 8 : 4;
    if (fortran)
        return fail(err, err_size,
                    "%s: array is in Fortran order; save a C-ordered one "
                    "(numpy.ascontiguousarray)",
                    name);
    return 0;
}

/* The header, then the data: float32 into a->data, or (want_int) int32/int64 into *ints. */
static int parse_any(const uint8_t *b, size_t size, const char *name, npy_array *a, int want_int,
                     int64_t **ints, char *err, size_t err_size) {
    memset(a, 0, sizeof *a);
    if (size < 10 || memcmp(b, "\x93NUMPY", 6) != 0)
        return fail(err, err_size, "%s: not a .npy file (bad magic)", name);
    const unsigned major = b[6];
    size_t header_len, data_at;
    if (major == 1) {
        header_len = (size_t)b[8] | (size_t)b[9] << 8;
        data_at = 10;
    } else if (major == 2 || major == 3) {
        if (size < 12) return fail(err, err_size, "%s: truncated .npy header", name);
        header_len = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
        data_at = 12;
    } else {
        return fail(err, err_size, "%s: .npy format version %u.%u is not supported (1..3)", name,
                    major, (unsigned)b[7]);
    }
    if (header_len > size - data_at) return fail(err, err_size, "%s: truncated .npy header", name);
    size_t item = 4;
    if (parse_header((const char *)b + data_at, header_len, name, a, want_int, &item, err,
                     err_size) != 0)
        return -1;
    data_at += header_len;
    a->count = 1;
    for (uint32_t i = 0; i < a->rank; i++) {
        if (a->dims[i] != 0 && a->count > UINT64_MAX / 8 / a->dims[i])
            return fail(err, err_size, "%s: shape is too large", name);
        a->count *= a->dims[i];
    }
    const uint64_t bytes = a->count * item;
    if (bytes != size - data_at) {
        char shape[128];
        return fail(err, err_size, "%s: shape %s needs %llu data bytes, the file has %llu (%s)",
                    name, npy_shape_text(shape, sizeof shape, a->rank, a->dims),
                    (unsigned long long)bytes, (unsigned long long)(size - data_at),
                    bytes > size - data_at ? "truncated" : "trailing bytes");
    }
    if (want_int) {
        *ints = malloc(a->count ? (size_t)a->count * sizeof **ints : 1);
        if (*ints == NULL) return fail(err, err_size, "%s: out of memory", name);
        for (uint64_t i = 0; i < a->count; i++) {
            const uint8_t *p = b + data_at + i * item;
            uint64_t u = 0;
            for (size_t k = 0; k < item; k++) u |= (uint64_t)p[k] << (8 * k);
            if (item == 4) u = (u ^ 0x80000000u) - 0x80000000u; /* sign-extend */
            int64_t v;
            memcpy(&v, &u, sizeof v);
            (*ints)[i] = v;
        }
        return 0;
    }
    a->data = malloc(bytes ? (size_t)bytes : 1);
    if (a->data == NULL) return fail(err, err_size, "%s: out of memory", name);
    memcpy(a->data, b + data_at, (size_t)bytes); /* '<f4' on a little-endian host */
    return 0;
}

int npy_parse(const uint8_t *b, size_t size, const char *name, npy_array *a, char *err,
              size_t err_size) {
    return parse_any(b, size, name, a, 0, NULL, err, err_size);
}

static int read_any(const char *path, npy_array *a, int want_int, int64_t **ints, char *err,
                    size_t err_size) {
    memset(a, 0, sizeof *a);
    FILE *f = fopen(path, "rb");
    if (f == NULL) return fail(err, err_size, "cannot open '%s': %s", path, strerror(errno));
    uint8_t *buf = NULL;
    size_t size = 0, cap = 0;
    for (;;) {
        if (size == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            uint8_t *grown = realloc(buf, cap);
            if (grown == NULL) {
                free(buf);
                fclose(f);
                return fail(err, err_size, "%s: out of memory", path);
            }
            buf = grown;
        }
        const size_t got = fread(buf + size, 1, cap - size, f);
        size += got;
        if (got == 0) break;
    }
    const int bad = ferror(f);
    fclose(f);
    int rc = bad ? fail(err, err_size, "cannot read '%s'", path)
                 : parse_any(buf, size, path, a, want_int, ints, err, err_size);
    free(buf);
    return rc;
}

int npy_read(const char *path, npy_array *a, char *err, size_t err_size) {
    return read_any(path, a, 0, NULL, err, err_size);
}

static int ints_out(int rc, const npy_array *a, npy_int_array *out) {
    out->rank = a->rank;
    memcpy(out->dims, a->dims, sizeof a->dims);
    out->count = a->count;
    return rc;
}

int npy_read_ints(const char *path, npy_int_array *out, char *err, size_t err_size) {
    npy_array a;
    memset(out, 0, sizeof *out);
    return ints_out(read_any(path, &a, 1, &out->data, err, err_size), &a, out);
}

int npy_parse_ints(const uint8_t *b, size_t size, const char *name, npy_int_array *out, char *err,
                   size_t err_size) {
    npy_array a;
    memset(out, 0, sizeof *out);
    return ints_out(parse_any(b, size, name, &a, 1, &out->data, err, err_size), &a, out);
}

int npy_write(const char *path, const float *data, uint32_t rank, const uint64_t *dims, char *err,
              size_t err_size) {
    char shape[256], header[384];
    uint64_t count = 1;
    for (uint32_t i = 0; i < rank; i++) count *= dims[i];
    int n = snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }",
                     npy_shape_text(shape, sizeof shape, rank, dims));
    /* Pad with spaces so the data starts on a 64-byte boundary, ending in '\n'. */
    size_t total = (10 + (size_t)n + 1 + 63) / 64 * 64;
    size_t hlen = total - 10;
    memset(header + n, ' ', hlen - (size_t)n);
    header[hlen - 1] = '\n';
    /* Atomically (src/atomic_file.h): a reader never sees a half-written
     * array, and a crisp-run killed while writing leaves the previous file. */
    crisp_atomic_file f;
    if (crisp_atomic_open(&f, path) != CRISP_OK)
        return fail(err, err_size, "cannot create '%s': %s", path, crisp_last_error());
    const uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (uint8_t)hlen, (uint8_t)(hlen >> 8)};
    if (crisp_atomic_write(&f, pre, 10) != CRISP_OK ||
        crisp_atomic_write(&f, header, hlen) != CRISP_OK ||
        crisp_atomic_write(&f, data, 4 * (size_t)count) != CRISP_OK ||
        crisp_atomic_commit(&f) != CRISP_OK)
        return fail(err, err_size, "cannot write '%s': %s", path, crisp_last_error());
    return 0;
}

void npy_free(npy_array *a) {
    free(a->data);
    a->data = NULL;
}
