/* Internal: the classifier head (src/head.c), shared by crisp_model_get_head,
 * the head writer (src/write_head.c), coverage (src/saly.c) and the last
 * stage (src/stage.c); the dense expansion of hybrid weights. */
#ifndef CRISP_HEAD_H
#define CRISP_HEAD_H

#include <stdint.h>

#include "model.h"

/* A longer chain of reshapes and softmaxes after the head is refused. */
#define CRISP_MAX_HEAD_TAIL 16u

/* The head LINEAR op and the RESHAPE / SOFTMAX / DEQUANTIZE ops between its
 * output and the graph output, in execution order. */
typedef struct crisp_head {
    uint32_t op;
    uint32_t tail[CRISP_MAX_HEAD_TAIL];
    uint32_t tail_count;
} crisp_head;

/* Finds the head or reports (CRISP_ERR_UNSUPPORTED) why the model has none.
 * Every value from the head's output to the graph output is read only by
 * the next op of the chain, so its shape may change with the head's Cout. */
crisp_status crisp_find_head(const crisp_model *model, crisp_head *out);

/* A hybrid weight (docs/format.md, "Hybrid-sparse encodings") expanded to
 * dense rows x cols (zeros where removed; a conv's rows are its output
 * channels, its columns kh*kw*Cin/groups in OHWI order); int8 values times
 * their row scale. Used for head re-selection and by bias tuning. */
void crisp_hybrid_expand(const crisp_tensor *t, float *out);

#endif
