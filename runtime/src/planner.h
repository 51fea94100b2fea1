/* Internal: activation arena planning by liveness. */
#ifndef CRISP_PLANNER_H
#define CRISP_PLANNER_H

#include <stddef.h>
#include <stdint.h>

#include "crisp.h"

/* One buffer live over op indices [first, last] inclusive. Two items whose
 * intervals intersect never share bytes, so an op's inputs and output are
 * always distinct (kernels need not support aliasing). */
typedef struct crisp_plan_item {
    uint64_t size; /* a multiple of CRISP_ALIGN */
    uint32_t first, last;
    uint64_t offset; /* out: a multiple of CRISP_ALIGN */
} crisp_plan_item;

/* Greedy by size, largest first, each at the lowest offset that clears
 * every already-placed item it is live with. */
crisp_status crisp_plan_arena(crisp_plan_item *items, size_t count, uint64_t *arena_bytes);

#endif
