#include <stddef.h>

#include "kernels/ref.h"
#include "kernels/ref/common.h"

/* torch.nn.AvgPool2d; the window and divisor rules are crisp_avgpool_window_at's. */
void crisp_f32_avgpool2d__ref(const crisp_pool2d_params *p, const float *input,
                              float *output) {
    const ptrdiff_t iw = (ptrdiff_t)p->input_width;
    for (size_t c = 0; c < p->channels; c++) {
        const float *plane = input + c * p->input_height * p->input_width;
        for (size_t oy = 0; oy < p->output_height; oy++) {
            for (size_t ox = 0; ox < p->output_width; ox++) {
                const crisp_avgpool_window w = crisp_avgpool_window_at(p, oy, ox);
                if (w.y0 >= w.y1 || w.x0 >= w.x1) {
                    *output++ = 0.0f; /* as torch: an empty window averages to 0 */
                    continue;
                }
                float sum = 0.0f;
                for (ptrdiff_t y = w.y0; y < w.y1; y++)
                    for (ptrdiff_t x = w.x0; x < w.x1; x++) sum += plane[y * iw + x];
                *output++ = sum / (float)w.divisor;
            }
        }
    }
}

/* torch bins: start = floor(i*H/oh), end = ceil((i+1)*H/oh); bins may overlap. */
void crisp_f32_adaptive_avgpool2d__ref(const crisp_pool2d_params *p, const float *input,
                                       float *output) {
    const size_t ih = p->input_height, iw = p->input_width;
    const size_t oh = p->output_height, ow = p->output_width;
    for (size_t c = 0; c < p->channels; c++) {
        const float *plane = input + c * ih * iw;
        for (size_t oy = 0; oy < oh; oy++) {
            const size_t y0 = oy * ih / oh, y1 = ((oy + 1) * ih + oh - 1) / oh;
            for (size_t ox = 0; ox < ow; ox++) {
                const size_t x0 = ox * iw / ow, x1 = ((ox + 1) * iw + ow - 1) / ow;
                float sum = 0.0f;
                for (size_t y = y0; y < y1; y++)
                    for (size_t x = x0; x < x1; x++) sum += plane[y * iw + x];
                *output++ = sum / (float)((y1 - y0) * (x1 - x0));
            }
        }
    }
}

void crisp_f32_global_avgpool__ref(size_t channels, size_t pixels, const float *input,
                                   float *output) {
    for (size_t c = 0; c < channels; c++) {
        const float *plane = input + c * pixels;
        float sum = 0.0f;
        for (size_t i = 0; i < pixels; i++) sum += plane[i];
        output[c] = sum / (float)pixels;
    }
}
