/* Internal: the per-thread last-error message and status helpers. */
#ifndef CRISP_STATUS_H
#define CRISP_STATUS_H

#include <stdarg.h>

#include "crisp.h"

#define CRISP_ERROR_CAPACITY 1024

/* Formats the message for crisp_last_error() and returns `status`, so a
 * failure is reported in one statement: return crisp_error(CRISP_ERR_FORMAT, ...). */
crisp_status crisp_error(crisp_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
crisp_status crisp_verror(crisp_status status, const char *fmt, va_list args)
    __attribute__((format(printf, 2, 0)));

#endif
