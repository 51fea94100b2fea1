#include <stddef.h>
#include <stdint.h>

#include "kernels/ref.h"
#include "kernels/ref/common.h"

/* int8 hybrid-sparse linear over runs [begin, end): only the kept columns. */
void crisp_qs8_linear_hybrid__ref(const crisp_qs8_linear_params *p,
                                  const crisp_sparse_weights *s, const int8_t *input,
                                  int8_t *output, size_t begin, size_t end) {
    const crisp_qs8_requant *q = &p->q;
    for (size_t r = begin; r < end; r++) {
        const size_t row0 = s->run_row[r], rows = s->run_row[r + 1] - row0;
        const size_t e0 = s->segment_entry[s->run_segment[r]];
        const size_t e1 = s->segment_entry[s->run_segment[r + 1]];
        const int8_t *w = s->weight_qs8 + s->run_weight[r];
        for (size_t v = 0; v < rows; v++) {
            int32_t acc = q->bias[row0 + v];
            for (size_t e = e0; e < e1; e++)
                acc += ((int32_t)input[s->entry_column[e]] - q->input_zero_point) *
                       w[crisp_qs8_weight_index(e - e0, v, rows)];
            output[row0 + v] = crisp_qs8_requantize((float)acc * q->multiplier[row0 + v],
                                                    q->output_zero_point, q->output_min,
                                                    q->output_max);
        }
    }
}
