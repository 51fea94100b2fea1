#include "head_models.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "crisp.h"
#include "hybrid_builder.h"

static char names[MB_MAX][16];

uint32_t hm_conv_weight(void) { return 0; }

uint32_t hm_head_weight(const mb_model *m) {
    for (uint32_t i = 0; i < m->op_count; i++)
        if (m->ops[i].kind == 2) return m->ops[i].weight;
    return MB_NONE;
}

static uint32_t hybrid_tensor(mb_model *m, unsigned *rng, mb_hybrid h, uint32_t rank,
                              const uint32_t dims[4]) {
    float *dense = malloc((size_t)h.rows * h.cols * sizeof *dense);
    size_t size;
    uint64_t kept;
    uint8_t *bytes = mb_hybrid_encode(&h, rng, dense, NULL, &size, &kept);
    const uint32_t id = mb_tensor_raw(m, 2, rank, dims, bytes, size);
    free(dense), free(bytes);
    return id;
}

void hm_cnn(mb_model *m, const hm_options *o) {
    mb_init(m);
    unsigned rng = 4242;
    const uint32_t F = o->features, C = o->classes;
    const uint32_t x = mb_value(m, 3, 3, 6, 6, 0), c = mb_value(m, 3, F, 6, 6, 0);
    const uint32_t p = mb_value(m, 3, F, 1, 1, 0), f = mb_value(m, 1, F, 0, 0, 0);
    const uint32_t h = mb_value(m, 1, C, 0, 0, 0);
    m->input = x;
    const int32_t conv[16] = {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    uint32_t w;
    if (o->hybrid_conv) {
        const uint32_t d[4] = {F, 3, 3, 3};
        /* 4 x 9 blocks, 2 of 3 block-columns kept per block-row, no N:M. */
        w = hybrid_tensor(m, &rng, (mb_hybrid){F, 27, 4, 9, 9, 9, 1, 2, 0, 0}, 4, d);
    } else {
        w = mb_tensor(m, 4, F, 3, 3, 3, NULL);
    }
    const uint32_t cb = mb_tensor(m, 1, F, 0, 0, 0, NULL);
    mb_op(m, 1, 1, x, MB_NONE, c, w, cb, conv);
    mb_op(m, 8, 0, c, MB_NONE, p, MB_NONE, MB_NONE, NULL);
    mb_op(m, 10, 0, p, MB_NONE, f, MB_NONE, MB_NONE, NULL);
    uint32_t hw;
    if (o->hybrid_head) {
        const uint32_t d[4] = {C, F, 0, 0};
        hw = hybrid_tensor(m, &rng, (mb_hybrid){C, F, 2, 4, 2, 4, o->head_v ? o->head_v : 1, 1, 0, 0}, 2, d);
    } else {
        hw = mb_tensor(m, 2, C, F, 0, 0, NULL);
    }
    const uint32_t hb = o->bias ? mb_tensor(m, 1, C, 0, 0, 0, NULL) : MB_NONE;
    mb_op(m, 2, 0, f, MB_NONE, h, hw, hb, NULL);
    uint32_t last = h;
    for (const char *t = o->tail; t != NULL && *t; t++) {
        if (*t == 'r') {
            const uint32_t r = mb_value(m, 2, 1, C, 0, 0);
            mb_op(m, 10, 0, last, MB_NONE, r, MB_NONE, MB_NONE, NULL);
            last = r;
        } else if (*t == 's') {
            const uint32_t rank = m->values[last].rank;
            const uint32_t s = mb_value(m, rank, m->values[last].dims[0], m->values[last].dims[1],
                                        0, 0);
            const int32_t axis[16] = {(int32_t)rank - 1};
            mb_op(m, 11, 0, last, MB_NONE, s, MB_NONE, MB_NONE, axis);
            last = s;
        } else if (*t == 'u') { /* relu: not a head tail */
            const uint32_t r = mb_value(m, 1, C, 0, 0, 0);
            mb_op(m, 4, 0, last, MB_NONE, r, MB_NONE, MB_NONE, NULL);
            last = r;
        }
    }
    m->output = last;
    if (o->labels) {
        m->label_count = (int)C;
        for (uint32_t i = 0; i < C; i++) {
            snprintf(names[i], sizeof names[i], "c%u", (unsigned)i);
            m->label_ids[i] = 100 + 3 * (int32_t)i;
            m->label_names[i] = names[i];
        }
    }
    m->provenance = o->provenance;
}

void hm_int8(mb_model *m) {
    mb_init(m);
    unsigned rng = 99;
    const uint32_t x = mb_value(m, 1, 8, 0, 0, 0);
    const uint32_t q = mb_qvalue(m, 1, 8, 0, 0, 0, 0.05f, 3);
    const uint32_t y = mb_qvalue(m, 1, 5, 0, 0, 0, 0.1f, -2);
    const uint32_t d = mb_value(m, 1, 5, 0, 0, 0), s = mb_value(m, 1, 5, 0, 0, 0);
    m->input = x, m->output = s;
    mb_op(m, 12, 0, x, MB_NONE, q, MB_NONE, MB_NONE, NULL);
    int8_t wq[40];
    float scales[5];
    for (int i = 0; i < 40; i++) wq[i] = (int8_t)check_rand_int(&rng, -127, 127);
    for (int i = 0; i < 5; i++) scales[i] = 0.01f;
    const uint32_t wd[4] = {5, 8, 0, 0};
    const uint32_t w = mb_tensor_i8(m, 2, wd, scales, wq);
    mb_op(m, 2, 0, q, MB_NONE, y, w, mb_tensor(m, 1, 5, 0, 0, 0, NULL), NULL);
    mb_op(m, 13, 0, y, MB_NONE, d, MB_NONE, MB_NONE, NULL);
    mb_op(m, 11, 0, d, MB_NONE, s, MB_NONE, MB_NONE, NULL);
}

uint16_t hm_half(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    const uint16_t sign = (uint16_t)(u >> 16 & 0x8000u);
    const float a = fabsf(f);
    if (a != a) return (uint16_t)(sign | 0x7E00u);
    if (a >= 65520.0f) return (uint16_t)(sign | 0x7C00u);
    if (a < 6.103515625e-05f) /* subnormal: multiples of 2^-24 */
        return (uint16_t)(sign | (uint16_t)nearbyintf(a * 16777216.0f));
    int e;
    const float mant = frexpf(a, &e); /* a = mant * 2^e, mant in [0.5, 1) */
    uint32_t m = (uint32_t)nearbyintf(mant * 2048.0f); /* 11 bits incl. implicit */
    if (m == 2048) m = 1024, e++;
    return (uint16_t)(sign | (uint32_t)(e + 14) << 10 | (m - 1024));
}

uint8_t *hm_saly(const hm_saly_layer *l, uint32_t count, size_t *size) {
    size_t names_bytes = 0, data_bytes = 0;
    for (uint32_t i = 0; i < count; i++) {
        names_bytes += strlen(l[i].name);
        data_bytes += 2 * (size_t)l[i].classes * l[i].nbr * l[i].nbc;
    }
    const size_t data_at = (16 + 32 * (size_t)count + names_bytes + 1) / 2 * 2;
    *size = data_at + data_bytes;
    uint8_t *b = calloc(1, *size);
    mb_put_u32(b, count), mb_put_u32(b + 4, 32), mb_put_u32(b + 8, (uint32_t)names_bytes);
    size_t name_at = 0, at = data_at;
    for (uint32_t i = 0; i < count; i++) {
        uint8_t *r = b + 16 + 32 * (size_t)i;
        const size_t len = strlen(l[i].name), n = (size_t)l[i].classes * l[i].nbr * l[i].nbc;
        mb_put_u32(r, l[i].tensor), mb_put_u32(r + 4, l[i].classes);
        mb_put_u32(r + 8, l[i].nbr), mb_put_u32(r + 12, l[i].nbc);
        mb_put_u32(r + 16, (uint32_t)name_at), mb_put_u32(r + 20, (uint32_t)len);
        mb_put_u64(r + 24, at);
        memcpy(b + 16 + 32 * (size_t)count + name_at, l[i].name, len);
        for (size_t k = 0; k < n; k++) mb_put_u16(b + at + 2 * k, l[i].data[k]);
        name_at += len;
        at += 2 * n;
    }
    return b;
}

crisp_model *hm_load(const mb_model *mb) {
    size_t n;
    uint8_t *f = mb_build(mb, &n);
    crisp_model *m = NULL;
    const crisp_status s = crisp_model_load_buffer(f, n, &m);
    CHECK(s == CRISP_OK, "hm_load: %s", crisp_last_error());
    free(f);
    return m;
}
