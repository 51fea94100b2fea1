/* Internal: writing a file atomically (src/atomic_file.c): a temporary file
 * `.NAME.tmp-PID-N` in the target's directory, created with O_EXCL, written,
 * fsync'd, closed, renamed over the target, then the directory fsync'd. Until
 * the rename nothing exists under the target's name that was not there before;
 * any failure unlinks the temporary file. A process killed before the rename
 * leaves its temporary file behind (never the final name). */
#ifndef CRISP_ATOMIC_FILE_H
#define CRISP_ATOMIC_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "crisp.h"

typedef struct crisp_atomic_file {
    int fd;
    const char *path;
    char *tmp;               /* malloc'd temporary path */
    uint8_t *buffer;         /* writes are gathered here */
    size_t used, capacity;
} crisp_atomic_file;

/* Creates the temporary file next to `path`. */
crisp_status crisp_atomic_open(crisp_atomic_file *f, const char *path);
/* Appends bytes (buffered); an error aborts the file. */
crisp_status crisp_atomic_write(crisp_atomic_file *f, const void *data, size_t size);
/* Flushes, fsyncs, closes and renames to the target; fsyncs the directory.
 * On failure before the rename the file is aborted. */
crisp_status crisp_atomic_commit(crisp_atomic_file *f);
/* Closes and unlinks the temporary file (after an error of the caller's). */
void crisp_atomic_abort(crisp_atomic_file *f);

#endif
