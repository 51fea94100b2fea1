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

const char *crisp_status_name(crisp_status status) {
    switch (status) {
    case CRISP_OK: return "CRISP_OK";
    case CRISP_ERR_ARGUMENT: return "CRISP_ERR_ARGUMENT";
    case CRISP_ERR_IO: return "CRISP_ERR_IO";
    case CRISP_ERR_FORMAT: return "CRISP_ERR_FORMAT";
    case CRISP_ERR_CHECKSUM: return "CRISP_ERR_CHECKSUM";
    case CRISP_ERR_VERSION: return "CRISP_ERR_VERSION";
    case CRISP_ERR_UNSUPPORTED: return "CRISP_ERR_UNSUPPORTED";
    case CRISP_ERR_SHAPE: return "CRISP_ERR_SHAPE";
    case CRISP_ERR_NOMEM: return "CRISP_ERR_NOMEM";
    case CRISP_ERR_INTERNAL: return "CRISP_ERR_INTERNAL";
    }
    return "CRISP_ERR_UNKNOWN";
}
