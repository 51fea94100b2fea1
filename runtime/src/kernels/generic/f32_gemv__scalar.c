/* Dense GEMV microkernel, portable tier (generic/f32_gemv_body.h). */
#define CRISP_GEMV_NAME crisp_f32_gemv_ukernel_4__scalar
#define VEC float
#define VL ((size_t)1)
#define VZERO() 0.0f
#define VLOAD(p) (*(p))
#define VFMA(acc, w, x) ((acc) + (w) * (x))
#define VSUM(v) (v)
#include "kernels/generic/f32_gemv_body.h"
