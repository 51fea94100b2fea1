/* Internal: the memory limit a model is loaded under (runtime/README.md,
 * "Memory limits"); the loader stage is crisp_check_limits (model.h). */
#ifndef CRISP_MEMLIMIT_H
#define CRISP_MEMLIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "crisp.h"
#include "model.h"

/* The limit in bytes: the options' (NULL = defaults), else
 * CRISP_MAX_MEMORY_MB, else CRISP_DEFAULT_MAX_MEMORY_MB. CRISP_ERR_ARGUMENT
 * for unknown flags or an environment value that is not 1..2^32-1 MiB. */
crisp_status crisp_limits_resolve(const crisp_load_options *options, uint64_t *bytes);

/* Counts `bytes` the model is about to keep (packed weights, label names)
 * against the limit, before they are allocated; CRISP_ERR_LIMIT naming
 * `what` when the running total would pass it. */
crisp_status crisp_limits_charge(crisp_model *m, uint64_t bytes, const char *what);

/* Whether crisp_limits_charge would take `bytes` now: for the optional
 * allocations that do without rather than fail the load. */
int crisp_limits_room(const crisp_model *m, uint64_t bytes);

/* The graph records and the provenance copy, as crisp_check_limits counts them. */
uint64_t crisp_limits_graph_bytes(const crisp_model *m);

/* Before a session allocates: the model's own bytes + the arena + `threads`
 * x `scratch_floats` floats of kernel scratch + `copy_bytes` of residual
 * copy + `expand_bytes` of expand buffer (src/session.h) against the
 * model's limit. */
crisp_status crisp_limits_check_session(const crisp_model *m, size_t threads,
                                        size_t scratch_floats, uint64_t copy_bytes,
                                        uint64_t expand_bytes);

/* "1.0 GiB", "512 MiB", "64 B": bytes in binary units, for messages. */
void crisp_format_bytes(char *buf, size_t size, uint64_t bytes);

#endif
