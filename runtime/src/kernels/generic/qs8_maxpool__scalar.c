/* int8 max pooling of one channel, portable C (generic/qs8_maxpool_body.h). */
#define CRISP_QS8_MAXPOOL_NAME crisp_qs8_maxpool_ukernel__scalar
#include "kernels/generic/qs8_maxpool_body.h"
