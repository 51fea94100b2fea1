/* Max-pooling microkernel, portable tier: the depthwise body with a
 * NaN-sticky max for the multiply-add (f32_maxpool.inc). */
#include <math.h>

#include "kernels/common.h"
#define CRISP_DWCONV_NAME crisp_f32_maxpool_ukernel__scalar
#define VEC float
#define VL ((size_t)1)
#define VLOAD(p) (*(p))
#define VSET1(x) (x)
#define VFMA(acc, w, x) ((void)(w), (isnan(acc) || (acc) >= (x)) && !isnan(x) ? (acc) : (x))
#define VCLAMP(v, lo, hi) ((void)(lo), (void)(hi), (v))
#define VSTORE_N(p, v, n) (*(p) = (v), (void)(n))
#include "kernels/generic/f32_dwconv_body.h"
