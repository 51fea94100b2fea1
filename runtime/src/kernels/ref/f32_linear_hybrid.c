#include <stddef.h>

#include "kernels/ref.h"
#include "kernels/ref/common.h"

/* Hybrid-sparse linear over runs [begin, end): each row's kept columns in
 * increasing order, bias last, as the dense kernel's plain tail. */
void crisp_f32_linear_hybrid__ref(const crisp_linear_params *p,
                                  const crisp_sparse_weights *s, const float *input,
                                  const float *bias, float *output, size_t begin, size_t end) {
    for (size_t r = begin; r < end; r++) {
        const size_t row0 = s->run_row[r], rows = s->run_row[r + 1] - row0;
        const size_t e0 = s->segment_entry[s->run_segment[r]];
        const size_t e1 = s->segment_entry[s->run_segment[r + 1]];
        const float *w = s->weight_f32 + s->run_weight[r];
        for (size_t v = 0; v < rows; v++) {
            float sum = 0.0f;
            for (size_t e = e0; e < e1; e++)
                sum += w[(e - e0) * rows + v] * input[s->entry_column[e]];
            if (bias != NULL) sum += bias[row0 + v];
            output[row0 + v] = crisp_clampf(sum, p->minmax.output_min, p->minmax.output_max);
        }
    }
}
