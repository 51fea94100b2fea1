/* int8 max pooling of one channel, AVX2: generic/qs8_maxpool_body.h compiled
 * with -mavx2 (vpmaxsb on 32 bytes). */
#define CRISP_QS8_MAXPOOL_NAME crisp_qs8_maxpool_ukernel__avx2
#include "kernels/generic/qs8_maxpool_body.h"
