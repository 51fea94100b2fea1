/* Float32 hybrid rows expanded to dense from the file's encoding (expand.h). */
#include "expand.h"

#include <string.h>

#include "format.h"

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

void crisp_hybrid_skip_block_row(const crisp_hybrid *h, uint64_t br, uint64_t *value,
                                 uint64_t *index) {
    const uint64_t height = min_u64(h->block_rows, h->rows - br * h->block_rows);
    const uint32_t b0 = crisp_rd_u32(h->block_row_ptr + 4 * br);
    const uint32_t b1 = crisp_rd_u32(h->block_row_ptr + 4 * (br + 1));
    for (uint32_t b = b0; b < b1; b++) {
        const uint64_t c0 = (uint64_t)crisp_rd_u32(h->block_col + 4 * (uint64_t)b) * h->block_cols;
        const uint64_t width = min_u64(h->block_cols, h->cols - c0);
        const uint64_t per_row = h->n == h->m ? width : width / h->m * h->n;
        *value += height * per_row;
        if (h->n < h->m) *index += (height + h->v - 1) / h->v * per_row;
    }
}

void crisp_expand_starts(const crisp_hybrid *h, uint64_t *values, uint64_t *indices) {
    uint64_t value = 0, index = 0;
    for (uint64_t br = 0; br < h->nbr; br++) {
        values[br] = value, indices[br] = index;
        crisp_hybrid_skip_block_row(h, br, &value, &index);
    }
}

/* One row's part of one kept block, in plain C: width columns from `values`
 * (the row's values in the block) and the index positions from `first`. */
static void expand_block(const crisp_hybrid *h, const float *values, uint64_t first,
                         uint64_t width, float *out) {
    if (h->n == h->m) {
        memcpy(out, values, (size_t)width * sizeof *out);
        return;
    }
    memset(out, 0, (size_t)width * sizeof *out);
    for (uint64_t g = 0; g < width / h->m; g++)
        for (uint64_t k = 0; k < h->n; k++) {
            const uint64_t i = g * h->n + k;
            out[g * h->m + crisp_hybrid_index(h->indices, first + i, h->index_bits)] = values[i];
        }
}

crisp_expand24_rows crisp_expand24_block_rows(const crisp_hybrid *h, const uint64_t *value_start,
                                              const uint64_t *index_start, uint64_t br, size_t t,
                                              size_t rows) {
    const uint64_t height = min_u64(h->block_rows, h->rows - br * h->block_rows);
    const uint64_t runs = (height + h->v - 1) / h->v, per_row = h->block_cols / 2;
    const uint32_t b0 = crisp_rd_u32(h->block_row_ptr + 4 * br);
    const uint32_t b1 = crisp_rd_u32(h->block_row_ptr + 4 * (br + 1));
    /* Every block but the last is full: value and index strides. */
    const crisp_expand24_rows p = {b1 - b0,        h->block_col + 4 * (uint64_t)b0,
                                   h->block_cols,  (size_t)h->cols,
                                   t,              rows,
                                   h->v,           (const float *)h->values + value_start[br],
                                   (size_t)(height * per_row), h->indices,
                                   index_start[br], runs * per_row,
                                   (size_t)h->cols};
    return p;
}

void crisp_expand_rows(const crisp_hybrid *h, const uint64_t *value_start,
                       const uint64_t *index_start, crisp_f32_expand24_ukernel_fn expand24,
                       size_t row0, size_t rows, float *out) {
    const uint64_t K = h->cols;
    const float *all = (const float *)h->values;
    const int fast = expand24 != NULL && h->n == 2 && h->m == 4;
    for (size_t i = 0; i < rows;) {
        const uint64_t r = row0 + i, br = r / h->block_rows, t = r - br * h->block_rows;
        const uint64_t height = min_u64(h->block_rows, h->rows - br * h->block_rows);
        const uint64_t runs = (height + h->v - 1) / h->v;
        const uint32_t b0 = crisp_rd_u32(h->block_row_ptr + 4 * br);
        const uint32_t b1 = crisp_rd_u32(h->block_row_ptr + 4 * (br + 1));
        if (fast) { /* the panel's rows in this block-row, one call */
            const uint64_t here = min_u64(rows - i, height - t);
            const crisp_expand24_rows p =
                crisp_expand24_block_rows(h, value_start, index_start, br, (size_t)t, (size_t)here);
            expand24(&p, out + i * K);
            i += here;
            continue;
        }
        float *o = out + i * K;
        const uint64_t j = t / h->v;
        uint64_t value = value_start[br], index = index_start[br], done = 0;
        for (uint32_t b = b0; b < b1; b++) {
            const uint64_t c0 = (uint64_t)crisp_rd_u32(h->block_col + 4 * (uint64_t)b) * h->block_cols;
            const uint64_t width = min_u64(h->block_cols, K - c0);
            const uint64_t per_row = h->n == h->m ? width : width / h->m * h->n;
            memset(o + done, 0, (size_t)(c0 - done) * sizeof *o); /* removed blocks */
            expand_block(h, all + value + t * per_row, index + j * per_row, width, o + c0);
            done = c0 + width;
            value += height * per_row;
            if (h->n < h->m) index += runs * per_row;
        }
        memset(o + done, 0, (size_t)(K - done) * sizeof *o);
        i++;
    }
}
