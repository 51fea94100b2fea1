/* 2:4 expansion, portable tier (f32_expand24.inc): one group at a time. */
#include <stddef.h>
#include <stdint.h>

#include "kernels/expand24_tables.h"
#include "kernels/ukernels.h"

static inline void expand_groups(size_t groups, const float *values, const uint8_t *stream,
                                 uint64_t first, float *out) {
    for (size_t g = 0; g < groups; g++) {
        const uint64_t i = first + 2 * g;
        const unsigned nibble = (unsigned)(CRISP_E24_START(stream, i)[0] >> CRISP_E24_SHIFT(i));
        float *o = out + 4 * g;
        o[0] = o[1] = o[2] = o[3] = 0.0f;
        o[CRISP_E24_POS(nibble, 0)] = values[2 * g];
        o[CRISP_E24_POS(nibble, 1)] = values[2 * g + 1];
    }
}

static inline void zero(float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = 0.0f;
}
#define CRISP_EXPAND24_NAME crisp_f32_expand24_ukernel__scalar
#define EXPAND_GROUPS expand_groups
#define ZERO zero
#include "kernels/generic/f32_expand24_body.h"
