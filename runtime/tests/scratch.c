#define _POSIX_C_SOURCE 200809L
#include "scratch.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[512];

void scratch_open(const char *base) {
    mkdir(base, 0755);
    snprintf(dir, sizeof dir, "%s/%ld", base, (long)getpid());
    mkdir(dir, 0755);
}

const char *scratch_dir(void) { return dir; }

const char *scratch_path(const char *name) {
    static char paths[16][1024];
    static int next;
    char *p = paths[next++ % 16];
    snprintf(p, 1024, "%s/%s", dir, name);
    return p;
}

uint8_t *scratch_read(const char *path, size_t *size) {
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    uint8_t *b = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        const long n = ftell(f);
        rewind(f);
        b = malloc(n > 0 ? (size_t)n : 1);
        if (b != NULL && n > 0) *size = fread(b, 1, (size_t)n, f);
    }
    fclose(f);
    return b;
}

int scratch_write(const char *path, const void *data, size_t size) {
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.w%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    int ok = f != NULL && fwrite(data, 1, size, f) == size;
    ok = f != NULL && fclose(f) == 0 && ok;
    return ok && rename(tmp, path) == 0;
}

void scratch_close(void) {
    DIR *d = opendir(dir);
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            unlink(scratch_path(e->d_name));
    if (d) closedir(d);
    rmdir(dir);
}
