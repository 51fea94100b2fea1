/* Internal: the last stage of a model, the part bias tuning trains
 * (src/stage.c; runtime/README.md, "Personalisation"). */
#ifndef CRISP_STAGE_H
#define CRISP_STAGE_H

#include <stdint.h>

#include "model.h"

/* Ops first..pool (file order) are the stage's body: the longest run of ops
 * ending at the global pool whose outputs are float32 maps at the pool
 * input's H x W. Then RESHAPE ops up to the head LINEAR op. */
typedef struct crisp_stage {
    uint32_t first, pool, head;       /* op indices */
    uint32_t input_value;             /* the one value the body reads from before it */
    uint32_t height, width;           /* the stage's resolution */
    uint32_t tuned_count;             /* CONV2D ops of the body whose bias is tuned */
    uint32_t *tuned;                  /* their op indices, file order (malloc'd) */
    uint64_t tuned_elements;          /* their bias elements */
} crisp_stage;

/* Finds the stage or reports why there is none (CRISP_ERR_UNSUPPORTED, the
 * message naming the op); an int8 model is CRISP_ERR_UNSUPPORTED too. */
crisp_status crisp_find_stage(const crisp_model *model, crisp_stage *out);
void crisp_stage_free(crisp_stage *stage);

#endif
