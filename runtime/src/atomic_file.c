/* Atomic file replacement (see atomic_file.h). POSIX: open, write, fsync,
 * rename, getpid. */
#define _POSIX_C_SOURCE 200809L
#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "status.h"

#define BUFFER_BYTES (1u << 16)

/* errno as words, "disk full" said plainly. */
static const char *why(int e) {
    if (e == ENOSPC) return "disk full (no space left on device)";
    if (e == EFBIG) return "file too large (the file size limit was reached)";
    if (e == EDQUOT) return "disk quota exceeded";
    return strerror(e);
}

static crisp_status io_error(crisp_atomic_file *f, const char *what, int e) {
    const crisp_status s = crisp_error(CRISP_ERR_IO, "cannot write '%s': %s %s: %s", f->path,
                                       what, f->tmp ? f->tmp : "", why(e));
    crisp_atomic_abort(f);
    return s;
}

crisp_status crisp_atomic_open(crisp_atomic_file *f, const char *path) {
    static unsigned counter; /* uniqueness within the process; O_EXCL guards the rest */
    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->path = path;
    const char *slash = strrchr(path, '/');
    const size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    const char *base = path + dir_len;
    if (*base == '\0')
        return crisp_error(CRISP_ERR_ARGUMENT, "cannot write '%s': the path names a directory",
                           path);
    const size_t cap = strlen(path) + 64;
    f->tmp = malloc(cap);
    f->buffer = malloc(BUFFER_BYTES);
    if (f->tmp == NULL || f->buffer == NULL) {
        free(f->tmp), free(f->buffer);
        f->tmp = NULL, f->buffer = NULL;
        return crisp_error(CRISP_ERR_NOMEM, "cannot write '%s': out of memory", path);
    }
    f->capacity = BUFFER_BYTES;
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(f->tmp, cap, "%.*s.%s.tmp-%ld-%u", (int)dir_len, path, base, (long)getpid(),
                 __atomic_fetch_add(&counter, 1u, __ATOMIC_RELAXED));
        f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (f->fd >= 0) return CRISP_OK;
        if (errno != EEXIST) break;
    }
    const int e = errno;
    const crisp_status s = crisp_error(CRISP_ERR_IO,
                                       "cannot write '%s': cannot create the temporary file "
                                       "'%s': %s",
                                       path, f->tmp, why(e));
    free(f->tmp), free(f->buffer);
    f->tmp = NULL, f->buffer = NULL;
    return s;
}

static crisp_status flush(crisp_atomic_file *f) {
    size_t done = 0;
    while (done < f->used) {
        const ssize_t n = write(f->fd, f->buffer + done, f->used - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return io_error(f, "writing", errno);
        }
        if (n == 0) return io_error(f, "writing", ENOSPC);
        done += (size_t)n;
    }
    f->used = 0;
    return CRISP_OK;
}

crisp_status crisp_atomic_write(crisp_atomic_file *f, const void *data, size_t size) {
    const uint8_t *p = data;
    while (size > 0) {
        if (f->used == f->capacity) {
            const crisp_status s = flush(f);
            if (s != CRISP_OK) return s;
        }
        const size_t n = size < f->capacity - f->used ? size : f->capacity - f->used;
        memcpy(f->buffer + f->used, p, n);
        f->used += n, p += n, size -= n;
    }
    return CRISP_OK;
}

crisp_status crisp_atomic_commit(crisp_atomic_file *f) {
    crisp_status s = flush(f);
    if (s != CRISP_OK) return s;
    if (fsync(f->fd) != 0) return io_error(f, "syncing", errno);
    const int fd = f->fd;
    f->fd = -1;
    if (close(fd) != 0) return io_error(f, "closing", errno);
    if (rename(f->tmp, f->path) != 0) return io_error(f, "renaming", errno);
    /* The rename is durable once the directory is: fsync it. Filesystems that
     * cannot sync a directory say EINVAL; that is not an error of the write. */
    const char *slash = strrchr(f->path, '/');
    char *dir = slash ? strndup(f->path, slash == f->path ? 1 : (size_t)(slash - f->path))
                      : strdup(".");
    s = CRISP_OK;
    if (dir == NULL) {
        s = crisp_error(CRISP_ERR_NOMEM, "wrote '%s' but ran out of memory to sync its directory",
                        f->path);
    } else {
        const int dfd = open(dir, O_RDONLY | O_CLOEXEC);
        if (dfd < 0 || (fsync(dfd) != 0 && errno != EINVAL))
            s = crisp_error(CRISP_ERR_IO,
                            "wrote '%s', but syncing its directory '%s' failed (%s): the new "
                            "file may not survive a power loss",
                            f->path, dir, strerror(errno));
        if (dfd >= 0) close(dfd);
    }
    free(dir);
    free(f->tmp), free(f->buffer);
    f->tmp = NULL, f->buffer = NULL;
    return s;
}

void crisp_atomic_abort(crisp_atomic_file *f) {
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    if (f->tmp != NULL) unlink(f->tmp);
    free(f->tmp), free(f->buffer);
    f->tmp = NULL, f->buffer = NULL;
}
