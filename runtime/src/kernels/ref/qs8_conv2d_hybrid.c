#include <stddef.h>
#include <stdint.h>

#include "kernels/ref.h"
#include "kernels/ref/common.h"

/* int8 hybrid-sparse convolution on the packed runs (src/pack.c), items
 * (run, output row). Each row of the run accumulates a tile of int32 sums
 * over the run's kept columns only (skipped blocks and N:M zeros are never
 * visited), then requantises as the dense kernel does. */
void crisp_qs8_conv2d_hybrid__ref(const crisp_qs8_conv2d_params *qp,
                                  const crisp_sparse_weights *s, const int8_t *input,
                                  int8_t *output, size_t begin, size_t end) {
    const crisp_conv2d_params *p = &qp->conv;
    const crisp_qs8_requant *q = &qp->q;
    const size_t ih = p->input_height, iw = p->input_width;
    const size_t oh = p->output_height, ow = p->output_width;
    const size_t kw = p->kernel_width, sw = p->stride_width;
    const size_t cin_g = p->input_channels / p->groups;
    const size_t cout_g = p->output_channels / p->groups;
    const int32_t zx = q->input_zero_point;

    for (size_t item = begin; item < end; item++) {
        const size_t r = item / oh, oy = item % oh;
        const size_t row0 = s->run_row[r], rows = s->run_row[r + 1] - row0;
        const int8_t *in_g = input + (row0 / cout_g) * cin_g * ih * iw;
        const int8_t *w_run = s->weight_qs8 + s->run_weight[r];
        const size_t e_first = s->segment_entry[s->run_segment[r]];
        for (size_t v = 0; v < rows; v++) {
            const size_t oc = row0 + v;
            int8_t *out = output + (oc * oh + oy) * ow;
            for (size_t x0 = 0; x0 < ow; x0 += CRISP_QS8_TILE) {
                const size_t x1 = ow - x0 < CRISP_QS8_TILE ? ow : x0 + CRISP_QS8_TILE;
                int32_t acc[CRISP_QS8_TILE];
                for (size_t j = 0; j < x1 - x0; j++) acc[j] = q->bias[oc];
                for (size_t seg = s->run_segment[r]; seg < s->run_segment[r + 1]; seg++) {
                    const size_t ky = s->segment_tap[seg] / kw, kx = s->segment_tap[seg] % kw;
                    const ptrdiff_t iy = crisp_conv_input_row(
                        oy, ky, p->stride_height, p->padding_top, p->dilation_height, ih);
                    if (iy < 0) continue;
                    const ptrdiff_t offset =
                        (ptrdiff_t)(kx * p->dilation_width) - (ptrdiff_t)p->padding_left;
                    size_t lo, hi;
                    crisp_conv_valid_range(ow, iw, sw, offset, &lo, &hi);
                    lo = lo > x0 ? lo : x0;
                    hi = hi < x1 ? hi : x1;
                    if (lo >= hi) continue;
                    const int8_t *in_row =
                        in_g + (size_t)iy * iw + (size_t)((ptrdiff_t)(lo * sw) + offset);
                    int32_t *a = acc + (lo - x0);
                    for (size_t e = s->segment_entry[seg]; e < s->segment_entry[seg + 1]; e++) {
                        const int32_t w = w_run[crisp_qs8_weight_index(e - e_first, v, rows)];
                        const int8_t *in = in_row + (s->entry_column[e] % cin_g) * ih * iw;
                        for (size_t j = 0; j < hi - lo; j++) a[j] += ((int32_t)in[j * sw] - zx) * w;
                    }
                }
                for (size_t j = x0; j < x1; j++)
                    out[j] = crisp_qs8_requantize((float)acc[j - x0] * q->multiplier[oc],
                                                  q->output_zero_point, q->output_min,
                                                  q->output_max);
            }
        }
    }
}
