/* int8 depthwise conv reading the input in place, NEON dot product (sdot;
 * Cortex-A76/A78): arm/qs8_dwconv_direct_neon.h. */
#define QDW_DOT 1
#define KERNEL_NAME crisp_qs8_dwconv_direct_ukernel__neondot
#include "kernels/arm/qs8_dwconv_direct_neon.h"
