/* Run-time kernel selection: for each family the last variant of its list
 * (the fastest tier) that this CPU supports. */
#include <string.h>

#include "cpu.h"
#include "kernels/ukernels.h"

int crisp_isa_supported(const char *isa) {
    const crisp_cpu_features *f = crisp_cpu();
    if (strcmp(isa, "scalar") == 0) return 1;
    if (strcmp(isa, "avx2_fma") == 0) return f->avx2_fma;
    if (strcmp(isa, "avx512f") == 0) return f->avx512f;
    if (strcmp(isa, "neon") == 0) return f->neon;
    if (strcmp(isa, "avx512vnni") == 0) return f->avx512vnni;
    if (strcmp(isa, "avxvnni") == 0) return f->avxvnni;
    if (strcmp(isa, "neon_dotprod") == 0) return f->neon_dotprod;
    return 0;
}

static crisp_f32_kernels best;

static void choose(void) {
#define CRISP_GEMM(tier, name, mr, nr)                                  \
    if (crisp_isa_supported(#tier)) {                                   \
        best.isa = #tier;                                               \
        best.gemm = name, best.gemm_mr = (mr), best.gemm_nr = (nr);     \
    }
#define CRISP_SPMM(tier, name, nr) \
    if (crisp_isa_supported(#tier)) best.spmm = name, best.spmm_nr = (nr);
#define CRISP_DWCONV(tier, name) \
    if (crisp_isa_supported(#tier)) best.dwconv = name;
#define CRISP_MAXPOOL(tier, name) \
    if (crisp_isa_supported(#tier)) best.maxpool = name;
#define CRISP_DWCONV_DIRECT(tier, name, rows) \
    if (crisp_isa_supported(#tier)) best.dwconv_direct = name, best.dwconv_direct_rows = (rows);
#define CRISP_GEMV(tier, name, mr) \
    if (crisp_isa_supported(#tier)) best.gemv = name, best.gemv_mr = (mr);
#define CRISP_EXPAND24(tier, name) \
    if (crisp_isa_supported(#tier)) best.expand24 = name;
#include "kernels/f32_gemv.inc"
#include "kernels/f32_gemm.inc"
#include "kernels/f32_spmm.inc"
#include "kernels/f32_dwconv.inc"
#include "kernels/f32_maxpool.inc"
#include "kernels/f32_expand24.inc"
#undef CRISP_EXPAND24
#include "kernels/f32_dwconv_direct.inc"
#define CRISP_F32_ADD(tier, name) \
    if (crisp_isa_supported(#tier)) best.add = name;
#include "kernels/f32_add.inc"
#undef CRISP_F32_ADD
#define CRISP_F32_STRIDE2(tier, name) \
    if (crisp_isa_supported(#tier)) best.stride2 = name;
#include "kernels/f32_stride2.inc"
#undef CRISP_F32_STRIDE2
#define CRISP_F32_SPMV(tier, name) \
    if (crisp_isa_supported(#tier)) best.spmv = name;
#include "kernels/f32_spmv.inc"
#undef CRISP_F32_SPMV
#define CRISP_F32_NMV24(tier, name) \
    if (crisp_isa_supported(#tier)) best.nmv24 = name;
#include "kernels/f32_nmv24.inc"
#undef CRISP_F32_NMV24
#define CRISP_DWCONV_HWC(tier, name, block) \
    if (crisp_isa_supported(#tier)) best.dwconv_hwc = name, best.dwconv_hwc_block = (block);
#include "kernels/f32_dwconv_hwc.inc"
#undef CRISP_DWCONV_HWC
#undef CRISP_GEMM
#undef CRISP_SPMM
#undef CRISP_DWCONV
#undef CRISP_MAXPOOL
#undef CRISP_DWCONV_DIRECT
#undef CRISP_GEMV
}

#include <pthread.h>
static pthread_once_t chosen = PTHREAD_ONCE_INIT;

const crisp_f32_kernels *crisp_f32_kernels_best(void) {
    pthread_once(&chosen, choose);
    return &best;
}

static crisp_qs8_kernels best_qs8;

static void choose_qs8(void) {
#define CRISP_QS8_SPMM(tier, name, nr)                                  \
    if (crisp_isa_supported(#tier)) {                                   \
        best_qs8.isa = #tier;                                           \
        best_qs8.spmm = name, best_qs8.spmm_nr = (nr);                  \
    }
#include "kernels/qs8_spmm.inc"
#undef CRISP_QS8_SPMM
#define CRISP_QS8_ADD(tier, name) \
    if (crisp_isa_supported(#tier)) best_qs8.add = name;
#include "kernels/qs8_add.inc"
#undef CRISP_QS8_ADD
#define CRISP_QS8_MAXPOOL(tier, name) \
    if (crisp_isa_supported(#tier)) best_qs8.maxpool = name;
#include "kernels/qs8_maxpool.inc"
#undef CRISP_QS8_MAXPOOL
#define CRISP_QS8_DWCONV(tier, name) \
    if (crisp_isa_supported(#tier)) best_qs8.dwconv = name;
#include "kernels/qs8_dwconv.inc"
#undef CRISP_QS8_DWCONV
#define CRISP_QS8_DWCONV_DIRECT(tier, name) \
    if (crisp_isa_supported(#tier)) best_qs8.dwconv_direct = name;
#include "kernels/qs8_dwconv_direct.inc"
#undef CRISP_QS8_DWCONV_DIRECT
#define CRISP_QS8_DWCONV_HWC(tier, name, block) \
    if (crisp_isa_supported(#tier)) best_qs8.dwconv_hwc = name, best_qs8.dwconv_hwc_block = (block);
#include "kernels/qs8_dwconv_hwc.inc"
#undef CRISP_QS8_DWCONV_HWC
#define CRISP_QS8_GEMV(tier, name, mr) \
    if (crisp_isa_supported(#tier)) best_qs8.gemv = name, best_qs8.gemv_mr = (mr);
#include "kernels/qs8_gemv.inc"
#undef CRISP_QS8_GEMV
#define CRISP_QS8_SPMV(tier, name) \
    if (crisp_isa_supported(#tier)) best_qs8.spmv = name;
#include "kernels/qs8_spmv.inc"
#undef CRISP_QS8_SPMV
#define CRISP_F32_QUANTIZE(tier, name) \
    if (crisp_isa_supported(#tier)) best_qs8.quantize = name;
#include "kernels/f32_quantize.inc"
#undef CRISP_F32_QUANTIZE
#define CRISP_QS8_STRIDE2(tier, name) \
    if (crisp_isa_supported(#tier)) best_qs8.stride2 = name;
#include "kernels/qs8_stride2.inc"
#undef CRISP_QS8_STRIDE2
}

static pthread_once_t chosen_qs8 = PTHREAD_ONCE_INIT;

const crisp_qs8_kernels *crisp_qs8_kernels_best(void) {
    pthread_once(&chosen_qs8, choose_qs8);
    return &best_qs8;
}
