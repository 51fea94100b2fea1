#define _POSIX_C_SOURCE 200809L /* setenv */
#include "fuse_check.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "model.h"

crisp_model *fuse_check_load(const uint8_t *f, size_t size, const char *unfused_env) {
    if (unfused_env != NULL) setenv(unfused_env, "0", 1);
    crisp_model *m = NULL;
    const crisp_status s = crisp_model_load_buffer(f, size, &m);
    if (unfused_env != NULL) unsetenv(unfused_env);
    CHECK(s == CRISP_OK, "load (%s): %s", unfused_env != NULL ? unfused_env : "fused",
          crisp_last_error());
    return m;
}

crisp_session *fuse_check_session(const crisp_model *m, uint32_t threads, uint32_t flags) {
    crisp_session *s = NULL;
    const crisp_session_options o = {threads, flags | CRISP_SESSION_PROFILE};
    CHECK(crisp_session_create_with_options(m, &o, &s) == CRISP_OK, "session: %s",
          crisp_last_error());
    return s;
}

void fuse_check_values(crisp_session *fused, crisp_session *plain, const crisp_model *m,
                       const float *x, size_t nx, float *a, float *b, const char *what,
                       uint32_t threads) {
    for (uint32_t v = 1; v < m->value_count; v++) {
        const size_t n = (size_t)m->values[v].elements;
        const int ok = crisp_session_run_to(fused, v, x, nx, a, n) == CRISP_OK &&
                       crisp_session_run_to(plain, v, x, nx, b, n) == CRISP_OK;
        CHECK(ok && memcmp(a, b, n * sizeof *a) == 0, "%s, %u threads: value %u differs", what,
              (unsigned)threads, (unsigned)v);
    }
}
