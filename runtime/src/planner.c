#include "planner.h"

#include <stdlib.h>

#include "format.h"
#include "model.h"
#include "status.h"

typedef struct span {
    uint64_t begin, end;
} span;

/* The sort key travels with the index: qsort has no context argument in C11
 * and a file-scope pointer would race when two threads load models. */
typedef struct ranked {
    uint64_t size;
    uint32_t first;
    size_t index;
} ranked;

static int by_size_desc(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->size != y->size) return x->size > y->size ? -1 : 1;
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int by_begin(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

crisp_status crisp_plan_arena(crisp_plan_item *items, size_t count, uint64_t *arena_bytes) {
    ranked *order = malloc((count ? count : 1) * sizeof *order);
    span *busy = malloc((count ? count : 1) * sizeof *busy);
    if (order == NULL || busy == NULL) {
        free(order);
        free(busy);
        return crisp_error(CRISP_ERR_NOMEM, "planner: out of memory for %zu buffers", count);
    }
    for (size_t i = 0; i < count; i++) order[i] = (ranked){items[i].size, items[i].first, i};
    qsort(order, count, sizeof *order, by_size_desc);

    uint64_t total = 0;
    for (size_t k = 0; k < count; k++) {
        crisp_plan_item *it = &items[order[k].index];
        size_t nbusy = 0;
        for (size_t q = 0; q < k; q++) {
            const crisp_plan_item *o = &items[order[q].index];
            if (o->first <= it->last && it->first <= o->last)
                busy[nbusy++] = (span){o->offset, o->offset + o->size};
        }
        qsort(busy, nbusy, sizeof *busy, by_begin);
        uint64_t at = 0;
        for (size_t q = 0; q < nbusy; q++) {
            if (at + it->size <= busy[q].begin) break;
            if (busy[q].end > at) at = busy[q].end;
        }
        it->offset = at;
        if (at + it->size > total) total = at + it->size;
    }
    free(order);
    free(busy);
    *arena_bytes = total;
    return CRISP_OK;
}

crisp_status crisp_plan_model(crisp_model *m) {
    crisp_plan_item *items = malloc(m->value_count * sizeof *items);
    if (items == NULL)
        return crisp_error(CRISP_ERR_NOMEM, "planner: out of memory for %u values",
                           (unsigned)m->value_count);
    m->naive_bytes = 0;
    for (uint32_t v = 0; v < m->value_count; v++) {
        const crisp_value *val = &m->values[v];
        const uint64_t raw = val->elements * crisp_dtype_size(val->dtype); /* int8: 1 byte */
        const uint64_t bytes = (raw + CRISP_ALIGN - 1) / CRISP_ALIGN * CRISP_ALIGN;
        items[v] = (crisp_plan_item){
            .size = bytes,
            .first = val->producer == CRISP_NO_ID ? 0 : val->producer,
            .last = val->last_use,
        };
        m->naive_bytes += bytes;
    }
    crisp_status s = crisp_plan_arena(items, m->value_count, &m->arena_bytes);
    if (s == CRISP_OK)
        for (uint32_t v = 0; v < m->value_count; v++) m->values[v].arena_offset = items[v].offset;
    free(items);
    return s;
}
