/* Validation of the hybrid-sparse encodings (HYBRID_F32, HYBRID_I8) of
 * docs/format.md, in layout order: header, block_row_ptr, block_col, scales,
 * exact size, values, N:M index stream. Nothing is read before its bounds
 * are known; all arithmetic is in uint64_t with explicit bounds. */
#include <stdarg.h>
#include <stdio.h>

#include "format.h"
#include "model.h"
#include "names.h"
#include "status.h"

typedef struct where {
    uint32_t index;
    const char *encoding;
} where;

__attribute__((format(printf, 2, 3))) static crisp_status fail(const where *w, const char *fmt,
                                                               ...) {
    char detail[CRISP_ERROR_CAPACITY];
    va_list args;
    va_start(args, fmt);
    vsnprintf(detail, sizeof detail, fmt, args);
    va_end(args);
    return crisp_error(CRISP_ERR_FORMAT, "GRPH: tensor %u (%s): %s", (unsigned)w->index,
                       w->encoding, detail);
}

static crisp_status check_header(const where *w, const crisp_tensor *t, crisp_hybrid *h) {
    const uint64_t k = t->elements / t->dims[0];
    const uint32_t last_dim = t->dims[t->rank - 1];
    if (h->rows != t->dims[0] || h->cols != k)
        return fail(w, "header R x K is %u x %u, expected %u x %llu (Cout x the rest of the "
                    "weight dims)",
                    (unsigned)h->rows, (unsigned)h->cols, (unsigned)t->dims[0],
                    (unsigned long long)k);
    if (h->block_rows < 1 || h->block_cols < 1)
        return fail(w, "block shape Br x Bc is %u x %u, expected both >= 1",
                    (unsigned)h->block_rows, (unsigned)h->block_cols);
    if (h->m < 1 || h->m > CRISP_HYBRID_MAX_M || h->n < 1 || h->n > h->m)
        return fail(w, "N:M is %u:%u, expected 1 <= N <= M <= %u", (unsigned)h->n,
                    (unsigned)h->m, CRISP_HYBRID_MAX_M);
    if (h->v < 1 || h->block_rows % h->v != 0)
        return fail(w, "V is %u, expected >= 1 and dividing Br = %u", (unsigned)h->v,
                    (unsigned)h->block_rows);
    if (h->n < h->m) {
        if (h->block_cols % h->m != 0)
            return fail(w, "Bc = %u is not a multiple of M = %u", (unsigned)h->block_cols,
                        (unsigned)h->m);
        /* The last dim is Cin/groups (conv) or Cin (linear): a group stays in one tap. */
        if (last_dim % h->m != 0)
            return fail(w, "K = %u has taps of %u columns (the last weight dim), not a multiple "
                        "of M = %u",
                        (unsigned)h->cols, (unsigned)last_dim, (unsigned)h->m);
    }
    h->nbr = (h->rows + (uint64_t)h->block_rows - 1) / h->block_rows;
    h->nbc = (h->cols + (uint64_t)h->block_cols - 1) / h->block_cols;
    if (h->kept_blocks > h->nbr * h->nbc) /* < 2^64: both < 2^32 */
        return fail(w, "kept_blocks is %u, more than the %llu x %llu blocks", (unsigned)h->kept_blocks,
                    (unsigned long long)h->nbr, (unsigned long long)h->nbc);
    unsigned bits = 0;
    while (h->n < h->m && (1u << bits) < h->m) bits++;
    h->index_bits = bits;
    return CRISP_OK;
}

/* Values stored per row of block-column c: N per group of M, or every column when N == M. */
static uint64_t row_values(const crisp_hybrid *h, uint64_t c) {
    const uint64_t first = c * h->block_cols;
    const uint64_t width = h->cols - first < h->block_cols ? h->cols - first : h->block_cols;
    return h->n == h->m ? width : width / h->m * h->n;
}

static uint64_t block_height(const crisp_hybrid *h, uint64_t r) {
    const uint64_t first = r * h->block_rows;
    return h->rows - first < h->block_rows ? h->rows - first : h->block_rows;
}

/* block_row_ptr and block_col; counts kept values and stored indices. */
static crisp_status check_blocks(const where *w, crisp_hybrid *h, uint64_t *index_count) {
    const uint8_t *ptr = h->block_row_ptr;
    if (crisp_rd_u32(ptr) != 0)
        return fail(w, "block_row_ptr[0] = %u, expected 0", (unsigned)crisp_rd_u32(ptr));
    for (uint64_t r = 0; r < h->nbr; r++) {
        const uint32_t lo = crisp_rd_u32(ptr + 4 * r), hi = crisp_rd_u32(ptr + 4 * (r + 1));
        if (hi < lo)
            return fail(w, "block_row_ptr[%llu] = %u < block_row_ptr[%llu] = %u",
                        (unsigned long long)(r + 1), (unsigned)hi, (unsigned long long)r,
                        (unsigned)lo);
        if (hi > h->kept_blocks)
            return fail(w, "block_row_ptr[%llu] = %u, more than kept_blocks = %u",
                        (unsigned long long)(r + 1), (unsigned)hi, (unsigned)h->kept_blocks);
    }
    const uint32_t last = crisp_rd_u32(ptr + 4 * h->nbr);
    if (last != h->kept_blocks)
        return fail(w, "block_row_ptr[%llu] = %u, expected kept_blocks = %u",
                    (unsigned long long)h->nbr, (unsigned)last, (unsigned)h->kept_blocks);
    h->value_count = 0;
    *index_count = 0;
    for (uint64_t r = 0; r < h->nbr; r++) {
        const uint32_t lo = crisp_rd_u32(ptr + 4 * r), hi = crisp_rd_u32(ptr + 4 * (r + 1));
        const uint64_t height = block_height(h, r);
        const uint64_t runs = (height + h->v - 1) / h->v;
        for (uint32_t b = lo; b < hi; b++) {
            const uint32_t c = crisp_rd_u32(h->block_col + 4 * (uint64_t)b);
            if (c >= h->nbc)
                return fail(w, "block_col[%u] = %u (block-row %llu), expected < %llu "
                            "block-columns",
                            (unsigned)b, (unsigned)c, (unsigned long long)r,
                            (unsigned long long)h->nbc);
            if (b > lo && c <= crisp_rd_u32(h->block_col + 4 * (uint64_t)(b - 1)))
                return fail(w, "block_col[%u] = %u is not greater than block_col[%u] = %u "
                            "(block-row %llu)",
                            (unsigned)b, (unsigned)c, (unsigned)(b - 1),
                            (unsigned)crisp_rd_u32(h->block_col + 4 * (uint64_t)(b - 1)),
                            (unsigned long long)r);
            const uint64_t per_row = row_values(h, c);
            h->value_count += height * per_row; /* total <= R * K <= 2^40 */
            if (h->n < h->m) *index_count += runs * per_row;
        }
    }
    return CRISP_OK;
}

/* Every group's N positions: < M and strictly increasing; zero padding bits. */
static crisp_status check_indices(const where *w, const crisp_hybrid *h, uint64_t count,
                                  uint64_t bytes) {
    const unsigned b = h->index_bits;
    for (uint64_t i = 0; i < count; i++) {
        const uint32_t pos = crisp_hybrid_index(h->indices, i, b);
        if (pos >= h->m)
            return fail(w, "index %llu (group %llu) is %u, expected < M = %u",
                        (unsigned long long)i, (unsigned long long)(i / h->n), (unsigned)pos,
                        (unsigned)h->m);
        if (i % h->n != 0 && pos <= crisp_hybrid_index(h->indices, i - 1, b))
            return fail(w, "index %llu (group %llu) is %u, not greater than the previous %u: "
                        "positions in a group must strictly increase",
                        (unsigned long long)i, (unsigned long long)(i / h->n), (unsigned)pos,
                        (unsigned)crisp_hybrid_index(h->indices, i - 1, b));
    }
    const uint64_t used = count * b;
    if (used % 8 != 0 && (h->indices[bytes - 1] >> (used % 8)) != 0)
        return fail(w, "the padding bits after the last index are not zero");
    return CRISP_OK;
}

crisp_status crisp_check_hybrid(crisp_model *m, uint32_t index) {
    crisp_tensor *t = &m->tensors[index];
    const uint8_t *d = t->raw;
    const uint64_t size = t->raw_size;
    crisp_hybrid *h = &t->hybrid;
    const int is_i8 = t->encoding == CRISP_ENCODING_HYBRID_I8;
    const where w = {index, crisp_encoding_name(t->encoding)};
    if (size < CRISP_HYBRID_HEADER_SIZE)
        return fail(&w, "size is %llu bytes, smaller than the %u-byte header",
                    (unsigned long long)size, CRISP_HYBRID_HEADER_SIZE);
    h->rows = crisp_rd_u32(d), h->cols = crisp_rd_u32(d + 4);
    h->block_rows = crisp_rd_u32(d + 8), h->block_cols = crisp_rd_u32(d + 12);
    h->n = crisp_rd_u32(d + 16), h->m = crisp_rd_u32(d + 20);
    h->v = crisp_rd_u32(d + 24), h->kept_blocks = crisp_rd_u32(d + 28);
    crisp_status s = check_header(&w, t, h);
    if (s != CRISP_OK) return s;

    /* Each term < 2^35: the sum is exact. */
    const uint64_t ptr_at = CRISP_HYBRID_HEADER_SIZE, col_at = ptr_at + 4 * (h->nbr + 1);
    const uint64_t scale_at = col_at + 4 * (uint64_t)h->kept_blocks;
    const uint64_t value_at = scale_at + (is_i8 ? 4 * (uint64_t)h->rows : 0);
    if (value_at > size)
        return fail(&w, "size is %llu bytes, but the header, block_row_ptr, block_col%s alone "
                    "need %llu",
                    (unsigned long long)size, is_i8 ? " and scales" : "",
                    (unsigned long long)value_at);
    h->block_row_ptr = d + ptr_at;
    h->block_col = d + col_at;
    uint64_t index_count = 0;
    if ((s = check_blocks(&w, h, &index_count)) != CRISP_OK) return s;

    const uint64_t value_bytes = h->value_count * (is_i8 ? 1 : 4);
    const uint64_t index_bytes = (index_count * h->index_bits + 7) / 8;
    const uint64_t want = value_at + value_bytes + index_bytes;
    if (size != want)
        return fail(&w, "size is %llu bytes, expected %llu (%llu kept values, %llu indices of "
                    "%u bits)",
                    (unsigned long long)size, (unsigned long long)want,
                    (unsigned long long)h->value_count, (unsigned long long)index_count,
                    h->index_bits);
    /* 4-byte multiples from a 64-aligned start: float-aligned. */
    h->scales = is_i8 ? (const float *)(const void *)(d + scale_at) : NULL;
    h->values = d + value_at;
    h->indices = d + value_at + value_bytes;
    if (is_i8 && (s = crisp_check_weight_scales(index, w.encoding, h->scales, h->rows)) != CRISP_OK)
        return s;
    if (is_i8 && (s = crisp_check_weight_q(index, w.encoding, h->values, h->value_count)) !=
                     CRISP_OK)
        return s;
    if (!is_i8 && (s = crisp_check_weight_values(index, w.encoding,
                                                 (const float *)(const void *)h->values,
                                                 h->value_count)) != CRISP_OK)
        return s;
    t->stored_values = h->value_count;
    return check_indices(&w, h, index_count, index_bytes);
}
