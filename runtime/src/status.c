#include "status.h"

#include <stdio.h>

#include "crisp.h"

/* Per thread so concurrent sessions never see each other's messages; a
 * fixed buffer so reporting an out-of-memory error cannot itself fail. */
static _Thread_local char last_error[CRISP_ERROR_CAPACITY];

crisp_status crisp_verror(crisp_status status, const char *fmt, va_list args) {
    vsnprintf(last_error, sizeof last_error, fmt, args);
    return status;
}

crisp_status crisp_error(crisp_status status, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    crisp_verror(status, fmt, args);
    va_end(args);
    return status;
}

const char *crisp_last_error(void) { return last_error; }

const char *crisp_version(void) {
#define CRISP_STR2(x) #x
#define CRISP_STR(x) CRISP_STR2(x)
    return CRISP_STR(CRISP_VERSION_MAJOR) "." CRISP_STR(CRISP_VERSION_MINOR) "." CRISP_STR(
        CRISP_VERSION_PATCH);
}
