/* What the fusion tests (test_fuse, test_fuse_expand) share: a model loaded
 * with or without a fusion, profiled sessions, and every value of a fused
 * session against the unfused one. */
#ifndef CRISP_TEST_FUSE_CHECK_H
#define CRISP_TEST_FUSE_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "crisp.h"

/* The model in f; unfused_env (e.g. "CRISP_FUSE_ADD") set to "0" during the
 * load when not NULL. CHECKs the load; NULL on failure. */
crisp_model *fuse_check_load(const uint8_t *f, size_t size, const char *unfused_env);

/* A session with CRISP_SESSION_PROFILE added to flags (CHECKed). */
crisp_session *fuse_check_session(const crisp_model *m, uint32_t threads, uint32_t flags);

/* crisp_session_run_to on every value from 1 on (0 is these models' input),
 * one sample x (nx floats), of both sessions: CHECKs that each succeeds and that the results
 * are bitwise equal. a and b hold the largest value. */
void fuse_check_values(crisp_session *fused, crisp_session *plain, const crisp_model *m,
                       const float *x, size_t nx, float *a, float *b, const char *what,
                       uint32_t threads);

#endif
