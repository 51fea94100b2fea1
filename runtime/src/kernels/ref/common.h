/* Internal to the reference kernels: the int8 conv accumulator tile. Helpers
 * shared beyond them (the average-pooling window, also used by
 * src/backward.c; the int8 requantisation step and packed int8 weight index,
 * also used by the int8 microkernels) are kernels/common.h. */
#ifndef CRISP_KERNELS_REF_COMMON_H
#define CRISP_KERNELS_REF_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/common.h"
#include "kernels/params.h"

/* Output pixels per int32 accumulator tile of the int8 conv kernels (on the stack). */
#define CRISP_QS8_TILE 64

#endif
