#include "hybrid_builder.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "model_builder.h"

static uint32_t ceil_div(uint32_t a, uint32_t b) { return (a + b - 1) / b; }

static unsigned index_bits(const mb_hybrid *h) {
    unsigned b = 0;
    while (h->n < h->m && (1u << b) < h->m) b++;
    return b;
}

/* k distinct sorted picks from 0..n-1. */
static void pick_sorted(unsigned *rng, uint32_t n, uint32_t k, uint32_t *out) {
    uint32_t *all = malloc(n * sizeof *all);
    for (uint32_t i = 0; i < n; i++) all[i] = i;
    for (uint32_t i = 0; i < k; i++) {
        const uint32_t j = i + check_rand(rng) % (n - i);
        const uint32_t t = all[i];
        all[i] = all[j], all[j] = t;
    }
    for (uint32_t i = 0; i < k; i++) { /* insertion sort of the k picks */
        uint32_t x = all[i], j = i;
        for (; j > 0 && out[j - 1] > x; j--) out[j] = out[j - 1];
        out[j] = x;
    }
    free(all);
}

static void put_bits(uint8_t *stream, uint64_t i, unsigned bits, uint32_t v) {
    for (unsigned b = 0; b < bits; b++)
        if (v >> b & 1) stream[(i * bits + b) / 8] |= (uint8_t)(1u << ((i * bits + b) % 8));
}

uint8_t *mb_hybrid_encode(const mb_hybrid *h, unsigned *rng, float *dense, float *scales,
                          size_t *size, uint64_t *kept_values) {
    const uint32_t R = h->rows, K = h->cols, nbr = ceil_div(R, h->br), nbc = ceil_div(K, h->bc);
    const uint32_t kept = h->kept_per_row == 0 || h->kept_per_row > nbc ? nbc : h->kept_per_row;
    const unsigned bits = index_bits(h);
    const size_t vsize = h->int8 ? 1 : 4;
    size_t head = 32 + 4 * ((size_t)nbr + 1) + (h->int8 ? 4 * (size_t)R : 0);
    for (uint32_t r = 0; r < nbr; r++) head += h->empty_odd_rows && r % 2 ? 0 : 4 * (size_t)kept;
    const size_t cap = head + vsize * (size_t)R * K + ((size_t)R * K * bits + 7) / 8 + 8;
    uint8_t *out = calloc(1, cap);
    uint8_t *values = malloc(vsize * (size_t)R * K + 1);
    uint8_t *stream = calloc(1, (size_t)R * K + 8);
    uint32_t *cols = malloc(nbc * sizeof *cols), *pos = malloc((size_t)K * R * sizeof *pos);
    memset(dense, 0, (size_t)R * K * sizeof *dense);
    uint32_t total = 0;
    for (uint32_t r = 0; r <= nbr; r++) {
        mb_put_u32(out + 32 + 4 * r, total);
        total += h->empty_odd_rows && r % 2 ? 0 : kept;
    }
    const uint32_t kept_blocks = mb_get_u32(out + 32 + 4 * nbr);
    const uint32_t hdr[8] = {R, K, h->br, h->bc, h->n, h->m, h->v, kept_blocks};
    for (int i = 0; i < 8; i++) mb_put_u32(out + 4 * i, hdr[i]);
    uint64_t nvalues = 0, nindices = 0;
    for (uint32_t r = 0; r < R && h->int8; r++) {
        scales[r] = 0.001f + (float)(check_rand(rng) % 1000) * 2e-5f;
        memcpy(out + head - 4 * (size_t)R + 4 * r, &scales[r], 4);
    }
    for (uint32_t br = 0; br < nbr; br++) {
        const uint32_t height = R - br * h->br < h->br ? R - br * h->br : h->br;
        const uint32_t runs = ceil_div(height, h->v);
        const uint32_t here = h->empty_odd_rows && br % 2 ? 0 : kept;
        const uint32_t first = mb_get_u32(out + 32 + 4 * br);
        pick_sorted(rng, nbc, here, cols);
        for (uint32_t b = 0; b < here; b++) {
            mb_put_u32(out + 32 + 4 * ((size_t)nbr + 1) + 4 * ((size_t)first + b), cols[b]);
            const uint32_t c0 = cols[b] * h->bc, width = K - c0 < h->bc ? K - c0 : h->bc;
            const int full = h->n == h->m;
            const uint32_t groups = full ? 1 : width / h->m, per = full ? width : h->n;
            for (uint32_t j = 0; j < runs; j++) /* positions of run j, group g: pos[(j*groups+g)*per] */
                for (uint32_t g = 0; g < groups; g++) {
                    uint32_t *p = pos + ((size_t)j * groups + g) * per;
                    if (full) {
                        for (uint32_t k = 0; k < per; k++) p[k] = k;
                    } else {
                        pick_sorted(rng, h->m, h->n, p);
                        for (uint32_t k = 0; k < per; k++) put_bits(stream, nindices++, bits, p[k]);
                    }
                }
            for (uint32_t t = 0; t < height; t++)
                for (uint32_t g = 0; g < groups; g++)
                    for (uint32_t k = 0; k < per; k++) {
                        const uint32_t col = c0 + g * (full ? 0 : h->m) +
                                             pos[((size_t)(t / h->v) * groups + g) * per + k];
                        float v;
                        if (h->int8) {
                            const int8_t q = (int8_t)check_rand_int(rng, -127, 127);
                            values[nvalues] = (uint8_t)q;
                            v = q;
                        } else {
                            v = check_rand_float(rng);
                            memcpy(values + 4 * nvalues, &v, 4);
                        }
                        dense[(size_t)(br * h->br + t) * K + col] = v;
                        nvalues++;
                    }
        }
    }
    memcpy(out + head, values, vsize * nvalues);
    const size_t stream_bytes = (nindices * bits + 7) / 8;
    memcpy(out + head + vsize * nvalues, stream, stream_bytes);
    *size = head + vsize * nvalues + stream_bytes;
    *kept_values = nvalues;
    free(values), free(stream), free(cols), free(pos);
    return out;
}

mb_hybrid_layout mb_hybrid_parts(const mb_hybrid *h, const uint8_t *bytes, size_t size) {
    mb_hybrid_layout l;
    l.nbr = ceil_div(h->rows, h->br);
    l.nbc = ceil_div(h->cols, h->bc);
    l.kept_blocks = mb_get_u32(bytes + 28);
    l.bits = index_bits(h);
    l.ptr = 32;
    l.col = l.ptr + 4 * ((size_t)l.nbr + 1);
    l.scales = l.col + 4 * (size_t)l.kept_blocks;
    l.values = l.scales + (h->int8 ? 4 * (size_t)h->rows : 0);
    uint64_t nvalues = 0; /* values = size - stream; recount from the pattern */
    for (uint32_t br = 0; br < l.nbr; br++) {
        const uint32_t height = h->rows - br * h->br < h->br ? h->rows - br * h->br : h->br;
        for (uint32_t b = mb_get_u32(bytes + l.ptr + 4 * br); b < mb_get_u32(bytes + l.ptr + 4 * (br + 1)); b++) {
            const uint32_t c0 = mb_get_u32(bytes + l.col + 4 * b) * h->bc;
            const uint32_t width = h->cols - c0 < h->bc ? h->cols - c0 : h->bc;
            nvalues += (uint64_t)height * (h->n == h->m ? width : width / h->m * h->n);
        }
    }
    l.indices = l.values + (size_t)nvalues * (h->int8 ? 1 : 4);
    (void)size;
    return l;
}
