/* int8 depthwise conv reading the input in place, NEON without the dot
 * product (Cortex-A72/A57): arm/qs8_dwconv_direct_neon.h. */
#define QDW_DOT 0
#define KERNEL_NAME crisp_qs8_dwconv_direct_ukernel__neon
#include "kernels/arm/qs8_dwconv_direct_neon.h"
