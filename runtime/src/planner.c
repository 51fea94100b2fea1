/* The activation arena: greedy by size, each buffer at the lowest offset that
 * clears every already-placed buffer it is live with (runtime/README.md,
 * "Arena planner").
 *
 * A buffer is compared only with the buffers whose lifetimes intersect its
 * own, found through two static indexes over op indices: a segment tree
 * holding each lifetime in its O(log T) canonical nodes (the buffers live at
 * one op: a walk from a leaf to the root) and the buffers sorted by first op
 * (those starting inside a range: one slice). Planning is therefore
 * O(n log n + P log n) for P pairs of buffers live together, with exactly
 * the placements of the all-pairs scan it replaces. P is counted first and
 * bounded (CRISP_PLAN_MAX_PAIRS), so a file whose thousands of values are all
 * live at once is refused in milliseconds instead of planned for minutes. */
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

static int by_u32(const void *a, const void *b) {
    const uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Number of entries of sorted d[0..m) that are <= t. */
static size_t count_upto(const uint32_t *d, size_t m, uint32_t t) {
    size_t lo = 0, hi = m;
    while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        if (d[mid] <= t) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* The canonical nodes of leaves [lo, hi] in a tree of `leaves` leaves (heap
 * numbering, root 1), passed to `visit`. */
#define FOR_COVER(leaves, lo_, hi_, node, body)                                    \
    for (size_t l_ = (lo_) + (leaves), h_ = (hi_) + (leaves) + 1; l_ < h_;          \
         l_ >>= 1, h_ >>= 1) {                                                     \
        if (l_ & 1) { const size_t node = l_++; body }                             \
        if (h_ & 1) { const size_t node = --h_; body }                             \
    }

typedef struct planner {
    size_t count, m, leaves;
    uint32_t *f, *l;        /* compressed lifetimes [f, l] */
    size_t *node_start;     /* stabbing tree, CSR: node n holds node_items[start[n] .. start[n+1]) */
    uint32_t *node_items;
    size_t *first_start;    /* by first: items with f = t are by_first[first_start[t] .. [t+1]) */
    uint32_t *by_first;
    unsigned char *placed;
    span *busy;
} planner;

static void planner_free(planner *p) {
    free(p->f);
    free(p->l);
    free(p->node_start);
    free(p->node_items);
    free(p->first_start);
    free(p->by_first);
    free(p->placed);
    free(p->busy);
}

/* Lifetimes compressed to the ranks of the distinct first ops (m <= count):
 * item j meets item i exactly when it did before, since every query starts
 * at some item's first op. Then the two indexes and the pair count. */
static crisp_status planner_init(planner *p, const crisp_plan_item *items, size_t count,
                                 uint64_t *pairs, size_t *widest, uint64_t *widest_overlaps) {
    const size_t n = count;
    uint32_t *d = malloc(n * sizeof *d);
    p->f = malloc(n * sizeof *p->f);
    p->l = malloc(n * sizeof *p->l);
    if (d == NULL || p->f == NULL || p->l == NULL) {
        free(d);
        return crisp_error(CRISP_ERR_NOMEM, "planner: out of memory for %zu buffers", n);
    }
    for (size_t i = 0; i < n; i++) d[i] = items[i].first;
    qsort(d, n, sizeof *d, by_u32);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (m == 0 || d[m - 1] != d[i]) d[m++] = d[i];
    for (size_t i = 0; i < n; i++) {
        p->f[i] = (uint32_t)(count_upto(d, m, items[i].first) - 1);
        /* last >= first, so at least the item's own first op is <= last. */
        const uint32_t last = items[i].last < items[i].first ? items[i].first : items[i].last;
        p->l[i] = (uint32_t)(count_upto(d, m, last) - 1);
    }
    free(d);
    p->m = m;
    size_t leaves = 1;
    while (leaves < m) leaves *= 2;
    p->leaves = leaves;

    /* Pairs live together: item i meets every j with f_j <= l_i and l_j >= f_i,
     * that is (starts up to l_i) - (ends before f_i), itself included. */
    size_t *starts = calloc(m + 1, sizeof *starts), *ends = calloc(m + 1, sizeof *ends);
    p->node_start = calloc(2 * leaves + 1, sizeof *p->node_start);
    p->first_start = calloc(m + 1, sizeof *p->first_start);
    p->placed = calloc(n, 1);
    if (starts == NULL || ends == NULL || p->node_start == NULL || p->first_start == NULL ||
        p->placed == NULL) {
        free(starts);
        free(ends);
        return crisp_error(CRISP_ERR_NOMEM, "planner: out of memory for %zu buffers", n);
    }
    for (size_t i = 0; i < n; i++) {
        starts[p->f[i] + 1]++; /* starts[t + 1]: items with f = t; summed: f <= t */
        ends[p->l[i] + 1]++;   /* ends[t + 1]: items with l = t; summed: l < t + 1 */
    }
    for (size_t t = 0; t < m; t++) {
        starts[t + 1] += starts[t];
        ends[t + 1] += ends[t];
    }
    uint64_t sum = 0;
    *widest = 0;
    *widest_overlaps = 0;
    for (size_t i = 0; i < n; i++) {
        const uint64_t meets = (uint64_t)(starts[p->l[i] + 1] - ends[p->f[i]]) - 1;
        sum += meets;
        if (meets > *widest_overlaps) *widest_overlaps = meets, *widest = i;
    }
    *pairs = sum / 2;
    for (size_t t = 0; t <= m; t++) p->first_start[t] = starts[t];
    free(starts);
    free(ends);
    return CRISP_OK;
}

static crisp_status planner_index(planner *p, uint64_t max_meets) {
    const size_t n = p->count, leaves = p->leaves;
    /* Stabbing tree: count, prefix, fill (node_start[k + 1] counts node k). */
    size_t *start = p->node_start;
    for (size_t i = 0; i < n; i++) FOR_COVER(leaves, p->f[i], p->l[i], node, { start[node + 1]++; })
    for (size_t k = 0; k < 2 * leaves; k++) start[k + 1] += start[k];
    p->node_items = malloc((start[2 * leaves] ? start[2 * leaves] : 1) * sizeof *p->node_items);
    size_t *fill = malloc(2 * leaves * sizeof *fill);
    p->by_first = malloc((n ? n : 1) * sizeof *p->by_first);
    size_t *next = malloc((p->m ? p->m : 1) * sizeof *next);
    p->busy = malloc((size_t)(max_meets + 1) * sizeof *p->busy);
    if (p->node_items == NULL || fill == NULL || p->by_first == NULL || next == NULL ||
        p->busy == NULL) {
        free(fill);
        free(next);
        return crisp_error(CRISP_ERR_NOMEM, "planner: out of memory for %zu buffers", n);
    }
    for (size_t k = 0; k < 2 * leaves; k++) fill[k] = start[k];
    for (size_t i = 0; i < n; i++)
        FOR_COVER(leaves, p->f[i], p->l[i], node, { p->node_items[fill[node]++] = (uint32_t)i; })
    for (size_t t = 0; t < p->m; t++) next[t] = p->first_start[t];
    for (size_t i = 0; i < n; i++) p->by_first[next[p->f[i]]++] = (uint32_t)i;
    free(fill);
    free(next);
    return CRISP_OK;
}

/* Busy spans of the placed items live with item i. */
static size_t gather(planner *p, const crisp_plan_item *items, size_t i) {
    size_t nbusy = 0;
    /* Live at op f_i (f_j <= f_i <= l_j): the leaf's ancestors. */
    for (size_t node = p->f[i] + p->leaves; node >= 1; node >>= 1)
        for (size_t k = p->node_start[node]; k < p->node_start[node + 1]; k++) {
            const uint32_t j = p->node_items[k];
            if (p->placed[j]) p->busy[nbusy++] = (span){items[j].offset, items[j].offset + items[j].size};
        }
    /* Starting inside (f_i, l_i]. */
    for (size_t k = p->first_start[p->f[i] + 1]; k < p->first_start[p->l[i] + 1]; k++) {
        const uint32_t j = p->by_first[k];
        if (p->placed[j]) p->busy[nbusy++] = (span){items[j].offset, items[j].offset + items[j].size};
    }
    return nbusy;
}

crisp_status crisp_plan_arena(crisp_plan_item *items, size_t count, uint64_t *arena_bytes) {
    *arena_bytes = 0;
    if (count == 0) return CRISP_OK;
    if (count > UINT32_MAX)
        return crisp_error(CRISP_ERR_UNSUPPORTED, "planner: %zu buffers", count);
    planner p = {0};
    p.count = count;
    uint64_t pairs = 0, widest_overlaps = 0;
    size_t widest = 0;
    crisp_status s = planner_init(&p, items, count, &pairs, &widest, &widest_overlaps);
    if (s == CRISP_OK && pairs > CRISP_PLAN_MAX_PAIRS)
        s = crisp_error(CRISP_ERR_UNSUPPORTED,
                        "planner: %llu pairs of values are live at the same time (value %zu "
                        "alone is live with %llu others), over the %llu pairs this runtime "
                        "plans (networks have a few per value)",
                        (unsigned long long)pairs, widest, (unsigned long long)widest_overlaps,
                        (unsigned long long)CRISP_PLAN_MAX_PAIRS);
    if (s == CRISP_OK) s = planner_index(&p, widest_overlaps);
    ranked *order = s == CRISP_OK ? malloc(count * sizeof *order) : NULL;
    if (s == CRISP_OK && order == NULL)
        s = crisp_error(CRISP_ERR_NOMEM, "planner: out of memory for %zu buffers", count);
    if (s != CRISP_OK) {
        planner_free(&p);
        return s;
    }
    for (size_t i = 0; i < count; i++) order[i] = (ranked){items[i].size, items[i].first, i};
    qsort(order, count, sizeof *order, by_size_desc);

    uint64_t total = 0;
    for (size_t k = 0; k < count; k++) {
        const size_t i = order[k].index;
        crisp_plan_item *it = &items[i];
        const size_t nbusy = gather(&p, items, i);
        qsort(p.busy, nbusy, sizeof *p.busy, by_begin);
        uint64_t at = 0;
        for (size_t q = 0; q < nbusy; q++) {
            if (at + it->size <= p.busy[q].begin) break;
            if (p.busy[q].end > at) at = p.busy[q].end;
        }
        it->offset = at;
        p.placed[i] = 1;
        if (at + it->size > total) total = at + it->size;
    }
    free(order);
    planner_free(&p);
    *arena_bytes = total;
    return CRISP_OK;
}

/* A value's buffer: its bytes (int8: 1 per element) rounded up to CRISP_ALIGN. */
static uint64_t buffer_bytes(const crisp_value *val) {
    const uint64_t raw = val->elements * crisp_dtype_size(val->dtype);
    return (raw + CRISP_ALIGN - 1) / CRISP_ALIGN * CRISP_ALIGN;
}

void crisp_plan_model_items(const crisp_model *m, crisp_plan_item *items) {
    for (uint32_t v = 0; v < m->value_count; v++) {
        const crisp_value *val = &m->values[v];
        uint64_t bytes = buffer_bytes(val);
        uint32_t first = val->producer == CRISP_NO_ID ? 0 : val->producer;
        /* Residual fusion (src/fuse.c): a fused conv writes its ADD's output,
         * which then lives from the conv on, and its own output never. */
        if (val->producer != CRISP_NO_ID) {
            const crisp_op *p = &m->ops[val->producer];
            if (p->fused_into != CRISP_NO_ID) first = p->fused_into;
            if (p->fused_add != CRISP_NO_ID) bytes = 0;
            /* Expand fusion: the depthwise conv computes this 1 x 1 conv's
             * output band by band in thread scratch; the arena never holds
             * it (MobileNetV2's 112 x 112 x 96, 4.8 MB, was 70 % of its
             * arena, and every buffer placed beside it one more cold line
             * per inference). Sessions that write it use their expand
             * buffer (src/session.h). */
            if (p->fused_by_next) bytes = 0;
        }
        items[v] = (crisp_plan_item){.size = bytes, .first = first, .last = val->last_use};
    }
    /* Expand fusion (src/fuse.c): the depthwise conv reads the fused 1 x 1
     * conv's input, which must then live until it has run. */
    for (uint32_t i = 0; i + 1 < m->op_count; i++) {
        const crisp_op *op = &m->ops[i];
        crisp_plan_item *x = &items[op->inputs[0]];
        if (op->fused_by_next && x->last < i + 1) x->last = i + 1;
    }
}

/* Whether op k reads value v (a depthwise conv that computes the 1 x 1 conv
 * before it also reads that conv's input: src/fuse.c, expand fusion). */
static int op_reads(const crisp_model *m, uint32_t k, uint32_t v) {
    const crisp_op *op = &m->ops[k];
    for (uint32_t i = 0; i < op->input_count; i++)
        if (op->inputs[i] == v) return 1;
    return op->fuses_prev && k > 0 && m->ops[k - 1].inputs[0] == v;
}

void crisp_plan_model_shares(const crisp_model *m, crisp_plan_item *items, uint32_t *root) {
    for (uint32_t v = 0; v < m->value_count; v++) root[v] = v;
    for (uint32_t a = 0; a < m->op_count; a++) {
        const crisp_op *add = &m->ops[a];
        if (add->fused_into == CRISP_NO_ID) continue;
        const uint32_t c = add->fused_into, o = add->output;
        const crisp_op *conv = &m->ops[c];
        const uint32_t r = crisp_fused_residual(m, conv), g = root[r];
        const crisp_value *rv = &m->values[r], *ov = &m->values[o];
        /* The drivers that add in place: a float32 conv of one group
         * (crisp_fast_adds_residual; a reference-kernel session copies the
         * residual first, src/dispatch.c). The residual: not the graph input
         * (its caller's copy), of the output's size, read by no op from the
         * conv on but the ADD, and not in the buffer the conv reads. */
        if (conv->k.conv.groups != 1 || r == m->input_value || rv->dtype != ov->dtype ||
            rv->elements != ov->elements || items[r].last > a || root[conv->inputs[0]] == g)
            continue;
        int read = 0;
        for (uint32_t k = c; k < a && !read; k++) read = op_reads(m, k, r);
        if (read) continue;
        root[o] = g;
        if (items[o].last > items[g].last) items[g].last = items[o].last;
        items[o].size = 0;
    }
}

crisp_status crisp_plan_model(crisp_model *m) {
    crisp_plan_item *items = malloc(m->value_count * sizeof *items);
    uint32_t *root = malloc(m->value_count * sizeof *root);
    if (items == NULL || root == NULL) {
        free(items);
        free(root);
        return crisp_error(CRISP_ERR_NOMEM, "planner: out of memory for %u values",
                           (unsigned)m->value_count);
    }
    crisp_plan_model_items(m, items);
    crisp_plan_model_shares(m, items, root);
    /* Naive: every value of the file in its own buffer. */
    m->naive_bytes = 0;
    for (uint32_t v = 0; v < m->value_count; v++) m->naive_bytes += buffer_bytes(&m->values[v]);
    crisp_status s = crisp_plan_arena(items, m->value_count, &m->arena_bytes);
    if (s == CRISP_OK)
        for (uint32_t v = 0; v < m->value_count; v++) {
            crisp_value *val = &m->values[v];
            const int unslotted =
                val->producer != CRISP_NO_ID && m->ops[val->producer].fused_by_next;
            val->arena_offset = unslotted ? CRISP_NO_SLOT : items[root[v]].offset;
        }
    free(items);
    free(root);
    return s;
}
