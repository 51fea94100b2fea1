/* PREP: how an image becomes the graph input (docs/format.md). Optional;
 * every field is checked against the graph input before anything uses it. */
#include <math.h>
#include <string.h>

#include "format.h"
#include "model.h"
#include "status.h"

static crisp_status check_finite(const char *field, int index, float v, int positive) {
    if (!isfinite(v))
        return crisp_error(CRISP_ERR_FORMAT, "PREP: %s[%d] is %g, expected finite%s", field, index,
                           (double)v, positive ? " > 0" : "");
    if (positive && !(v > 0))
        return crisp_error(CRISP_ERR_FORMAT, "PREP: %s[%d] is %g, expected > 0", field, index,
                           (double)v);
    return CRISP_OK;
}

crisp_status crisp_parse_preprocess(crisp_model *m) {
    const uint8_t *b = m->prep.data;
    const uint64_t size = m->prep.size;
    memset(&m->preprocess, 0, sizeof m->preprocess);
    if (b == NULL) return CRISP_OK;
    if (size < CRISP_PREP_RECORD_SIZE)
        return crisp_error(CRISP_ERR_FORMAT,
                           "PREP: section is %llu bytes, smaller than its %u-byte record",
                           (unsigned long long)size, CRISP_PREP_RECORD_SIZE);
    const uint32_t record_size = crisp_rd_u32(b + CRISP_PREP_RECORD_SIZE_OFS);
    if (record_size < CRISP_PREP_RECORD_SIZE || record_size > size)
        return crisp_error(CRISP_ERR_FORMAT,
                           "PREP: record_size is %u, expected %u (at least %u and at most the "
                           "section's %llu bytes)",
                           (unsigned)record_size, CRISP_PREP_RECORD_SIZE, CRISP_PREP_RECORD_SIZE,
                           (unsigned long long)size);
    crisp_preprocess p;
    memset(&p, 0, sizeof p);
    p.present = 1;
    p.channels = crisp_rd_u32(b + CRISP_PREP_CHANNELS);
    p.height = crisp_rd_u32(b + CRISP_PREP_HEIGHT);
    p.width = crisp_rd_u32(b + CRISP_PREP_WIDTH);
    p.resize = crisp_rd_u32(b + CRISP_PREP_RESIZE);
    p.resize_size = crisp_rd_u32(b + CRISP_PREP_RESIZE_SIZE);
    p.channel_order = crisp_rd_u32(b + CRISP_PREP_CHANNEL_ORDER);
    p.scale = crisp_rd_f32(b + CRISP_PREP_SCALE);
    for (int c = 0; c < 3; c++) {
        p.mean[c] = crisp_rd_f32(b + CRISP_PREP_MEAN + 4 * c);
        p.std[c] = crisp_rd_f32(b + CRISP_PREP_STD + 4 * c);
    }

    if (p.channels != 3)
        return crisp_error(CRISP_ERR_FORMAT, "PREP: channels is %u, expected 3",
                           (unsigned)p.channels);
    const crisp_value *in = &m->values[m->input_value];
    if (in->rank != 3 || in->dims[0] != 3)
        return crisp_error(CRISP_ERR_FORMAT,
                           "PREP: the graph input (value %u) has rank %u, dims[0] %u; images need "
                           "a (3,H,W) input",
                           (unsigned)m->input_value, (unsigned)in->rank, (unsigned)in->dims[0]);
    if (p.height != in->dims[1])
        return crisp_error(CRISP_ERR_FORMAT, "PREP: height is %u, expected %u (the graph input's)",
                           (unsigned)p.height, (unsigned)in->dims[1]);
    if (p.width != in->dims[2])
        return crisp_error(CRISP_ERR_FORMAT, "PREP: width is %u, expected %u (the graph input's)",
                           (unsigned)p.width, (unsigned)in->dims[2]);
    if (p.resize > CRISP_RESIZE_STRETCH)
        return crisp_error(CRISP_ERR_FORMAT,
                           "PREP: resize is %u, expected 0 (none), 1 (shorter_side) or 2 (stretch)",
                           (unsigned)p.resize);
    if (p.resize == CRISP_RESIZE_SHORTER_SIDE) {
        const uint32_t least = p.height > p.width ? p.height : p.width;
        if (p.resize_size < least || p.resize_size > CRISP_PREP_MAX_RESIZE_SIZE)
            return crisp_error(CRISP_ERR_FORMAT,
                               "PREP: resize_size is %u, expected %u..%u with resize shorter_side",
                               (unsigned)p.resize_size, (unsigned)least,
                               CRISP_PREP_MAX_RESIZE_SIZE);
    } else if (p.resize_size != 0) {
        return crisp_error(CRISP_ERR_FORMAT, "PREP: resize_size is %u, expected 0 with resize %s",
                           (unsigned)p.resize_size,
                           p.resize == CRISP_RESIZE_NONE ? "none" : "stretch");
    }
    if (p.channel_order > CRISP_CHANNELS_BGR)
        return crisp_error(CRISP_ERR_FORMAT,
                           "PREP: channel_order is %u, expected 0 (RGB) or 1 (BGR)",
                           (unsigned)p.channel_order);
    if (!isfinite(p.scale) || !(p.scale > 0))
        return crisp_error(CRISP_ERR_FORMAT, "PREP: scale is %g, expected finite > 0",
                           (double)p.scale);
    crisp_status s;
    for (int c = 0; c < 3; c++)
        if ((s = check_finite("mean", c, p.mean[c], 0)) != CRISP_OK) return s;
    for (int c = 0; c < 3; c++)
        if ((s = check_finite("std", c, p.std[c], 1)) != CRISP_OK) return s;
    m->preprocess = p;
    return CRISP_OK;
}

crisp_status crisp_model_get_preprocess(const crisp_model *m, crisp_preprocess *out) {
    if (m == NULL || out == NULL)
        return crisp_error(CRISP_ERR_ARGUMENT, "crisp_model_get_preprocess: %s is NULL",
                           m == NULL ? "model" : "out");
    *out = m->preprocess;
    return CRISP_OK;
}
