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

/* Pairs of items live together that crisp_plan_arena accepts: the work of
 * planning grows with them (about 0.4 s on a desktop core for 2^22 pairs in
 * the worst shape, everything live at once; networks have a few pairs per
 * value, and 2^22 is 64 per value at the format's 65536 values). Above it:
 * CRISP_ERR_UNSUPPORTED. */
#define CRISP_PLAN_MAX_PAIRS ((uint64_t)1 << 22)

/* Greedy by size, largest first, each at the lowest offset that clears
 * every already-placed item it is live with. Needs first <= last.
 * O(n log n + P log n) for P pairs of items live together. */
crisp_status crisp_plan_arena(crisp_plan_item *items, size_t count, uint64_t *arena_bytes);

/* The model's values as planner items [value_count]: each value's bytes
 * (rounded to CRISP_ALIGN) live from its producer to its last use, with
 * residual fusion's two changes (src/fuse.c). */
struct crisp_model;
void crisp_plan_model_items(const struct crisp_model *m, crisp_plan_item *items);

/* In-place residual ADDs (runtime/README.md, "Residual fusion"): root[v] is
 * the value whose buffer value v takes (v itself, or for a fused ADD's
 * output whose residual dies at the ADD, the residual's root). A shared
 * value's item gets size 0 and its root's item lives until its last use;
 * after planning, v's offset is items[root[v]].offset. */
void crisp_plan_model_shares(const struct crisp_model *m, crisp_plan_item *items, uint32_t *root);

#endif
