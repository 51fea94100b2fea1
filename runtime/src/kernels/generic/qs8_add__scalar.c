/* int8 addition, portable C: the reference's formula (the tail of every
 * vector variant). */
#include "kernels/common.h"
#include "kernels/ukernels.h"

void crisp_qs8_add_ukernel__scalar(size_t n, const int8_t *a, const int8_t *b, int8_t *y,
                                   const crisp_qs8_add_params *p) {
    for (size_t i = 0; i < n; i++)
        y[i] = crisp_qs8_add_one(a[i], b[i], p);
}
