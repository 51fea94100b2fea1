/* Internal: the last stage as a trainable network (src/tune.c), behind
 * crisp_tune_biases; the tests drive it directly (finite differences). */
#ifndef CRISP_TUNE_H
#define CRISP_TUNE_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

typedef struct crisp_stage_net crisp_stage_net;

/* The stage of `model` (crisp_find_stage) with its conv weights decoded to
 * their kept values, biases at the file's values. */
crisp_status crisp_stage_net_create(const crisp_model *model, crisp_stage_net **out);
void crisp_stage_net_free(crisp_stage_net *net);

/* Stage input elements, head features, tuned bias elements. */
size_t crisp_stage_net_input_size(const crisp_stage_net *net);
size_t crisp_stage_net_features(const crisp_stage_net *net);
size_t crisp_stage_net_bias_count(const crisp_stage_net *net);
/* The tuned biases (bias_count floats, crisp_model_get_stage_op order): read or set. */
void crisp_stage_net_get_biases(const crisp_stage_net *net, float *out);
void crisp_stage_net_set_biases(crisp_stage_net *net, const float *biases);

/* One sample x (input_size floats) with label y through the stage and the
 * head (weight classes x features, bias classes, in double): returns its
 * cross-entropy, *correct = 1 if the first largest logit is y. With dw != NULL
 * also backward: dw, db, dbiases += the gradient of the cross-entropy. The
 * head's logits (classes) go to logits if not NULL. */
double crisp_stage_net_sample(crisp_stage_net *net, const float *x, int32_t y,
                              const double *weight, const double *bias, uint32_t classes,
                              double *dw, double *db, double *dbiases, int *correct,
                              double *logits);

#endif
