/* Depthwise conv microkernels (phases and in place), portable tier
 * (generic/f32_dwconv_body.h) with one-lane "vectors": four output pixels per
 * chunk. */
#include "kernels/common.h"
#define CRISP_DWCONV_NAME crisp_f32_dwconv_ukernel__scalar
#define VEC float
#define VL ((size_t)1)
#define VLOAD(p) (*(p))
#define VSET1(x) (x)
#define VFMA(acc, w, x) ((acc) + (w) * (x))
#define VCLAMP(v, lo, hi) crisp_clampf(v, lo, hi)
#define VSTORE_N(p, v, n) (*(p) = (v), (void)(n))
#define CRISP_DWCONV_DIRECT_NAME crisp_f32_dwconv_direct_ukernel__scalar
#define VMASK uint32_t
#define VMASK_LOAD(p) (*(p))
#define VLOADZ(p, m) ((m) != 0 ? *(p) : 0.0f)
#define VLOAD2(p) (*(p))
#define VLOAD2Z(p, m) VLOADZ(p, m)
#include "kernels/generic/f32_dwconv_body.h"
