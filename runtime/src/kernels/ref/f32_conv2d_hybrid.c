#include <stddef.h>

#include "kernels/ref.h"
#include "kernels/ref/common.h"

/* Hybrid-sparse convolution on the packed runs (src/pack.c): the direct
 * conv's row loop, iterating only the kept weights of each output row.
 * Items are (run, output row) pairs: run * output_height + oy. The rows of
 * a run share their kept columns, so each input row read feeds all of them
 * (one row per run is the paper's per-row N:M; V rows the row-shared one).
 * Per output element the sequence of operations is the same whatever the
 * run length: bias, then the kept columns in increasing order, then clamp. */
void crisp_f32_conv2d_hybrid__ref(const crisp_conv2d_params *p, const crisp_sparse_weights *s,
                                  const float *input, const float *bias, float *output,
                                  size_t begin, size_t end) {
    const size_t ih = p->input_height, iw = p->input_width;
    const size_t oh = p->output_height, ow = p->output_width;
    const size_t kw = p->kernel_width, sw = p->stride_width;
    const size_t cin_g = p->input_channels / p->groups;
    const size_t cout_g = p->output_channels / p->groups;

    for (size_t item = begin; item < end; item++) {
        const size_t r = item / oh, oy = item % oh;
        const size_t row0 = s->run_row[r], rows = s->run_row[r + 1] - row0;
        /* A run never crosses a group (pack.c splits it there). */
        const float *in_g = input + (row0 / cout_g) * cin_g * ih * iw;
        const float *w_run = s->weight_f32 + s->run_weight[r];
        const size_t e_first = s->segment_entry[s->run_segment[r]];
        float *out0 = output + (row0 * oh + oy) * ow; /* row v at out0 + v * oh * ow */
        for (size_t v = 0; v < rows; v++) {
            const float b = bias != NULL ? bias[row0 + v] : 0.0f;
            for (size_t ox = 0; ox < ow; ox++) out0[v * oh * ow + ox] = b;
        }
        for (size_t seg = s->run_segment[r]; seg < s->run_segment[r + 1]; seg++) {
            const size_t ky = s->segment_tap[seg] / kw, kx = s->segment_tap[seg] % kw;
            const ptrdiff_t iy = crisp_conv_input_row(oy, ky, p->stride_height, p->padding_top,
                                                      p->dilation_height, ih);
            if (iy < 0) continue;
            const ptrdiff_t offset =
                (ptrdiff_t)(kx * p->dilation_width) - (ptrdiff_t)p->padding_left;
            size_t lo, hi;
            crisp_conv_valid_range(ow, iw, sw, offset, &lo, &hi);
            if (lo >= hi) continue;
            const size_t n = hi - lo;
            const float *in_row = in_g + (size_t)iy * iw + (size_t)((ptrdiff_t)(lo * sw) + offset);
            for (size_t e = s->segment_entry[seg]; e < s->segment_entry[seg + 1]; e++) {
                const float *restrict in = in_row + (s->entry_column[e] % cin_g) * ih * iw;
                const float *w = w_run + (e - e_first) * rows;
                for (size_t v = 0; v < rows; v++) {
                    float *restrict out = out0 + v * oh * ow + lo;
                    const float wv = w[v];
                    if (sw == 1) {
                        for (size_t j = 0; j < n; j++) out[j] += wv * in[j];
                    } else {
                        for (size_t j = 0; j < n; j++) out[j] += wv * in[j * sw];
                    }
                }
            }
        }
        for (size_t v = 0; v < rows; v++)
            for (size_t ox = 0; ox < ow; ox++) {
                float *o = out0 + v * oh * ow + ox;
                *o = crisp_clampf(*o, p->minmax.output_min, p->minmax.output_max);
            }
    }
}
