#include <stddef.h>
#include <stdint.h>

#include "kernels/ref.h"
#include "kernels/ref/common.h"

/* Every int8 average: y = clamp(z_y + nearbyintf((float)(sum q - count z_x)
 * * s_x / (divisor * s_y))), count = the input elements summed. */
static int8_t average(const crisp_qs8_pool2d_params *p, int64_t sum, int64_t count,
                      int64_t divisor) {
    const float centred = (float)(sum - count * p->input_zero_point);
    return crisp_qs8_requantize(centred * p->input_scale / ((float)divisor * p->output_scale),
                                p->output_zero_point, -128, 127);
}

/* Windows and divisors exactly as crisp_f32_avgpool2d__ref (torch). */
void crisp_qs8_avgpool2d__ref(const crisp_qs8_pool2d_params *qp, const int8_t *input,
                              int8_t *output) {
    const crisp_pool2d_params *p = &qp->pool;
    const ptrdiff_t iw = (ptrdiff_t)p->input_width;
    for (size_t c = 0; c < p->channels; c++) {
        const int8_t *plane = input + c * p->input_height * p->input_width;
        for (size_t oy = 0; oy < p->output_height; oy++) {
            for (size_t ox = 0; ox < p->output_width; ox++) {
                const crisp_avgpool_window w = crisp_avgpool_window_at(p, oy, ox);
                if (w.y0 >= w.y1 || w.x0 >= w.x1) {
                    *output++ = (int8_t)qp->output_zero_point; /* real 0, as torch */
                    continue;
                }
                int64_t sum = 0;
                for (ptrdiff_t y = w.y0; y < w.y1; y++)
                    for (ptrdiff_t x = w.x0; x < w.x1; x++) sum += plane[y * iw + x];
                const int64_t count = (int64_t)((w.y1 - w.y0) * (w.x1 - w.x0));
                *output++ = average(qp, sum, count, (int64_t)w.divisor);
            }
        }
    }
}

void crisp_qs8_adaptive_avgpool2d__ref(const crisp_qs8_pool2d_params *qp, const int8_t *input,
                                       int8_t *output) {
    const crisp_pool2d_params *p = &qp->pool;
    const size_t ih = p->input_height, iw = p->input_width;
    const size_t oh = p->output_height, ow = p->output_width;
    for (size_t c = 0; c < p->channels; c++) {
        const int8_t *plane = input + c * ih * iw;
        for (size_t oy = 0; oy < oh; oy++) {
            const size_t y0 = oy * ih / oh, y1 = ((oy + 1) * ih + oh - 1) / oh;
            for (size_t ox = 0; ox < ow; ox++) {
                const size_t x0 = ox * iw / ow, x1 = ((ox + 1) * iw + ow - 1) / ow;
                int64_t sum = 0;
                for (size_t y = y0; y < y1; y++)
                    for (size_t x = x0; x < x1; x++) sum += plane[y * iw + x];
                const int64_t count = (int64_t)((y1 - y0) * (x1 - x0));
                *output++ = average(qp, sum, count, count);
            }
        }
    }
}

void crisp_qs8_global_avgpool__ref(const crisp_qs8_pool2d_params *qp, const int8_t *input,
                                   int8_t *output) {
    const size_t pixels = qp->pool.input_height * qp->pool.input_width;
    for (size_t c = 0; c < qp->pool.channels; c++) {
        int64_t sum = 0;
        for (size_t i = 0; i < pixels; i++) sum += input[c * pixels + i];
        output[c] = average(qp, sum, (int64_t)pixels, (int64_t)pixels);
    }
}
