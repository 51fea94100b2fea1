/* A scratch directory per test process, for tests that write model files.
 * One directory per process: ctest runs the qemu CPU variants of a test in
 * parallel, and a model file rewritten under another process's mapping
 * would be SIGBUS. */
#ifndef CRISP_TESTS_SCRATCH_H
#define CRISP_TESTS_SCRATCH_H

#include <stddef.h>
#include <stdint.h>

/* Creates base (if missing) and base/<pid>; the path functions below name files in it. */
void scratch_open(const char *base);
/* The directory itself. */
const char *scratch_dir(void);
/* base/<pid>/name, in one of 16 rotating buffers (so a call can take several). */
const char *scratch_path(const char *name);
/* The whole file (malloc'ed; the caller frees), or NULL with *size 0. */
uint8_t *scratch_read(const char *path, size_t *size);
/* Writes a temporary file beside path and renames it over path: 1 on success. */
int scratch_write(const char *path, const void *data, size_t size);
/* Removes the directory's files (not sub-directories' contents), then the directory. */
void scratch_close(void);

#endif
