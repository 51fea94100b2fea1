/* int8 dense GEMV microkernel, portable tier (generic/qs8_gemv_body.h). */
#define CRISP_QS8_GEMV_NAME crisp_qs8_gemv_ukernel_4__scalar
#define XVEC int32_t
#define VL ((size_t)1)
#define ACC int32_t
#define ACC_ZERO() 0
#define XLOAD(p) ((int32_t)(p)[0])
#define DOT(acc, w, xv) ((acc) + (int32_t)(w)[0] * (xv))
#define HSUM(acc) (acc)
#define X_OFFSET 0
#include "kernels/generic/qs8_gemv_body.h"
