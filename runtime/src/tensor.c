/* GRPH tensor records (encoding, dims, data bounds inside WGHT) and the
 * dense encodings' data; the hybrid-sparse encodings' data is hybrid.c's. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "format.h"
#include "model.h"
#include "names.h"
#include "status.h"

/* Per-channel weight scales: finite and > 0 (shared with hybrid.c). */
crisp_status crisp_check_weight_scales(uint32_t index, const char *encoding, const float *scales,
                                       uint64_t count) {
    for (uint64_t c = 0; c < count; c++)
        if (!(scales[c] > 0.0f) || !isfinite(scales[c]))
            return crisp_error(CRISP_ERR_FORMAT,
                               "GRPH: tensor %u (%s): scales[%llu] is %g, expected finite and > 0",
                               (unsigned)index, encoding, (unsigned long long)c,
                               (double)scales[c]);
    return CRISP_OK;
}

/* Float weights and biases: finite. A NaN or inf weight is a broken export, and
 * its result would depend on the kernel: the reference kernels skip the zero
 * padding of a conv, the optimised ones multiply it (0 * inf = NaN, as torch). */
crisp_status crisp_check_weight_values(uint32_t index, const char *encoding, const float *v,
                                       uint64_t count) {
    for (uint64_t i = 0; i < count; i++)
        if (!isfinite(v[i]))
            return crisp_error(CRISP_ERR_FORMAT,
                               "GRPH: tensor %u (%s): value %llu is %g, expected finite (the "
                               "model holds a NaN or infinite weight: fix or re-export it)",
                               (unsigned)index, encoding, (unsigned long long)i, (double)v[i]);
    return CRISP_OK;
}

/* Symmetric int8 weights: -128 has no positive counterpart and is refused. */
crisp_status crisp_check_weight_q(uint32_t index, const char *encoding, const int8_t *q,
                                  uint64_t count) {
    for (uint64_t i = 0; i < count; i++)
        if (q[i] == INT8_MIN)
            return crisp_error(CRISP_ERR_FORMAT,
                               "GRPH: tensor %u (%s): value %llu is -128, expected -127..127",
                               (unsigned)index, encoding, (unsigned long long)i);
    return CRISP_OK;
}

crisp_status crisp_check_dense(crisp_model *m, uint32_t i) {
    crisp_tensor *t = &m->tensors[i];
    const uint8_t *data = t->raw;
    const uint64_t size = t->raw_size;
    if (t->encoding == CRISP_ENCODING_DENSE_F32) {
        if (size != 4 * t->elements)
            return crisp_error(CRISP_ERR_FORMAT,
                               "GRPH: tensor %u: size is %llu bytes, expected 4 x %llu elements "
                               "= %llu",
                               (unsigned)i, (unsigned long long)size,
                               (unsigned long long)t->elements,
                               (unsigned long long)(4 * t->elements));
        /* WGHT is 64-aligned in an aligned mapping/buffer, offset too: aligned floats. */
        t->data = (const float *)(const void *)data;
        t->stored_values = t->elements;
        return crisp_check_weight_values(i, "DENSE_F32", t->data, t->elements);
    }
    /* DENSE_I8: f32 scale[Cout], then i8 q[elements]. */
    const uint64_t cout = t->dims[0];
    if (size != 4 * cout + t->elements)
        return crisp_error(CRISP_ERR_FORMAT,
                           "GRPH: tensor %u (DENSE_I8): size is %llu bytes, expected 4 x %llu "
                           "scales + %llu values = %llu",
                           (unsigned)i, (unsigned long long)size, (unsigned long long)cout,
                           (unsigned long long)t->elements,
                           (unsigned long long)(4 * cout + t->elements));
    t->scales = (const float *)(const void *)data;
    t->q = (const int8_t *)(data + 4 * cout);
    t->stored_values = t->elements;
    crisp_status s = crisp_check_weight_scales(i, "DENSE_I8", t->scales, cout);
    return s != CRISP_OK ? s : crisp_check_weight_q(i, "DENSE_I8", t->q, t->elements);
}

crisp_status crisp_parse_tensor(crisp_model *m, uint32_t i) {
    const uint8_t *p = m->tensor_records + (uint64_t)i * m->tensor_record_size;
    crisp_tensor *t = &m->tensors[i];
    t->encoding = crisp_rd_u32(p + CRISP_TEN_ENCODING);
    if (t->encoding < 1 || t->encoding > CRISP_ENCODING_MAX)
        return crisp_error(CRISP_ERR_UNSUPPORTED,
                           "GRPH: tensor %u: encoding %u is not supported by this runtime (it "
                           "knows 1 = DENSE_F32, 2 = HYBRID_F32, 3 = DENSE_I8, 4 = HYBRID_I8); "
                           "upgrade crisp-edge",
                           (unsigned)i, (unsigned)t->encoding);
    /* Bounded by WGHT below; this limit only keeps the arithmetic exact. */
    t->elements = crisp_read_dims(p + CRISP_TEN_RANK, "tensor", i, &t->rank, t->dims,
                                  (uint64_t)1 << 40);
    if (t->elements == 0) return CRISP_ERR_FORMAT;
    const uint64_t offset = crisp_rd_u64(p + CRISP_TEN_OFFSET);
    const uint64_t size = crisp_rd_u64(p + CRISP_TEN_SIZE);
    const uint32_t flags = crisp_rd_u32(p + CRISP_TEN_FLAGS);
    if (flags != 0)
        return crisp_error(CRISP_ERR_FORMAT, "GRPH: tensor %u: flags are 0x%08X, expected 0",
                           (unsigned)i, (unsigned)flags);
    if (offset % CRISP_ALIGN != 0)
        return crisp_error(CRISP_ERR_FORMAT,
                           "GRPH: tensor %u: offset %llu is not a multiple of %u", (unsigned)i,
                           (unsigned long long)offset, CRISP_ALIGN);
    if (offset > m->wght.size || size > m->wght.size - offset)
        return crisp_error(CRISP_ERR_FORMAT,
                           "GRPH: tensor %u: data at offset %llu (%llu bytes) lies outside the "
                           "%llu-byte WGHT section",
                           (unsigned)i, (unsigned long long)offset, (unsigned long long)size,
                           (unsigned long long)m->wght.size);
    t->raw = m->wght.data + offset;
    t->raw_size = size;
    return CRISP_OK;
}
