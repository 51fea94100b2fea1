#include <stddef.h>

#include "kernels/ref.h"

static ptrdiff_t min_pd(ptrdiff_t a, ptrdiff_t b) { return a < b ? a : b; }
static ptrdiff_t max_pd(ptrdiff_t a, ptrdiff_t b) { return a > b ? a : b; }

/* torch.nn.AvgPool2d's divisor: with count_include_pad the window clipped to
 * the padded extent (so a ceil_mode window hanging past the padding counts
 * only what lies inside it), else the window clipped to the image;
 * divisor_override replaces both. */
void crisp_f32_avgpool2d__ref(const crisp_pool2d_params *p, const float *input,
                              float *output) {
    const ptrdiff_t ih = (ptrdiff_t)p->input_height, iw = (ptrdiff_t)p->input_width;
    const ptrdiff_t ph = (ptrdiff_t)p->padding_height, pw = (ptrdiff_t)p->padding_width;
    for (size_t c = 0; c < p->channels; c++) {
        const float *plane = input + c * p->input_height * p->input_width;
        for (size_t oy = 0; oy < p->output_height; oy++) {
            ptrdiff_t y0 = (ptrdiff_t)(oy * p->stride_height) - ph;
            ptrdiff_t y1 = min_pd(y0 + (ptrdiff_t)p->kernel_height, ih + ph);
            const ptrdiff_t pool_h = y1 - y0;
            y0 = max_pd(y0, 0);
            y1 = min_pd(y1, ih);
            for (size_t ox = 0; ox < p->output_width; ox++) {
                ptrdiff_t x0 = (ptrdiff_t)(ox * p->stride_width) - pw;
                ptrdiff_t x1 = min_pd(x0 + (ptrdiff_t)p->kernel_width, iw + pw);
                const ptrdiff_t pool_w = x1 - x0;
                x0 = max_pd(x0, 0);
                x1 = min_pd(x1, iw);
                if (y0 >= y1 || x0 >= x1) {
                    *output++ = 0.0f; /* as torch: an empty window averages to 0 */
                    continue;
                }
                float sum = 0.0f;
                for (ptrdiff_t y = y0; y < y1; y++)
                    for (ptrdiff_t x = x0; x < x1; x++) sum += plane[y * iw + x];
                ptrdiff_t divisor;
                if (p->divisor_override != 0)
                    divisor = (ptrdiff_t)p->divisor_override;
                else if (p->count_include_pad)
                    divisor = pool_h * pool_w;
                else
                    divisor = (y1 - y0) * (x1 - x0);
                *output++ = sum / (float)divisor;
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
