#define _POSIX_C_SOURCE 200809L
#include "image_folder.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct names {
    char **items;
    size_t count, cap;
} names;

static int push(names *n, char *s) {
    if (s == NULL) return -1;
    if (n->count == n->cap) {
        const size_t cap = n->cap ? 2 * n->cap : 16;
        char **g = realloc(n->items, cap * sizeof *g);
        if (g == NULL) {
            free(s);
            return -1;
        }
        n->items = g, n->cap = cap;
    }
    n->items[n->count++] = s;
    return 0;
}

static void names_free(names *n) {
    for (size_t i = 0; i < n->count; i++) free(n->items[i]);
    free(n->items);
    *n = (names){0};
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *join(const char *dir, const char *name) {
    const size_t a = strlen(dir), b = strlen(name);
    char *s = malloc(a + b + 2);
    if (s == NULL) return NULL;
    memcpy(s, dir, a);
    s[a] = '/';
    memcpy(s + a + 1, name, b + 1);
    return s;
}

static int is_image(const char *name) {
    const char *dot = strrchr(name, '.');
    if (dot == NULL || dot == name) return 0;
    char ext[8];
    size_t i = 0;
    for (const char *c = dot + 1; *c && i < sizeof ext - 1; c++) ext[i++] = (char)tolower((unsigned char)*c);
    ext[i] = '\0';
    if (dot[1 + i] != '\0') return 0; /* longer than any extension we take */
    return !strcmp(ext, "png") || !strcmp(ext, "jpg") || !strcmp(ext, "jpeg") ||
           !strcmp(ext, "bmp");
}

/* Entries of `dir` that are directories (want_dirs) or regular image files, sorted. */
static int list(const char *dir, int want_dirs, names *out, char *err, size_t err_size) {
    DIR *d = opendir(dir);
    if (d == NULL) {
        snprintf(err, err_size, "%s: cannot open the folder: %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue; /* ., .., hidden */
        char *path = join(dir, e->d_name);
        struct stat st;
        if (path == NULL) {
            rc = -1;
            break;
        }
        const int ok = stat(path, &st) == 0 &&
                       (want_dirs ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode) && is_image(e->d_name));
        free(path);
        if (ok && push(out, strdup(e->d_name)) != 0) {
            rc = -1;
            break;
        }
    }
    closedir(d);
    if (rc != 0) {
        snprintf(err, err_size, "%s: out of memory listing the folder", dir);
        return -1;
    }
    if (out->count > 1) qsort(out->items, out->count, sizeof *out->items, by_name);
    return 0;
}

int image_folder_read(const char *dir, image_folder *out, char *err, size_t err_size) {
    *out = (image_folder){0};
    names classes = {0};
    if (list(dir, 1, &classes, err, err_size) != 0) return -1;
    if (classes.count == 0) {
        snprintf(err, err_size, "%s: no class folders; put each class's images in %s/<class name>/",
                 dir, dir);
        names_free(&classes);
        return -1;
    }
    out->classes = calloc(classes.count, sizeof *out->classes);
    if (out->classes == NULL) {
        snprintf(err, err_size, "%s: out of memory", dir);
        names_free(&classes);
        return -1;
    }
    out->count = classes.count;
    for (size_t c = 0; c < classes.count; c++) {
        image_class *ic = &out->classes[c];
        ic->name = classes.items[c];
        classes.items[c] = NULL; /* owned by the folder now */
        char *sub = join(dir, ic->name);
        names files = {0};
        if (sub == NULL || list(sub, 0, &files, err, err_size) != 0) {
            if (sub == NULL) snprintf(err, err_size, "%s: out of memory", dir);
            free(sub);
            names_free(&classes);
            image_folder_free(out);
            return -1;
        }
        for (size_t i = 0; i < files.count; i++) {
            char *full = join(sub, files.items[i]);
            if (full == NULL) {
                snprintf(err, err_size, "%s: out of memory", dir);
                free(sub);
                names_free(&files);
                names_free(&classes);
                image_folder_free(out);
                return -1;
            }
            free(files.items[i]);
            files.items[i] = full;
        }
        ic->files = files.items;
        ic->count = files.count;
        free(sub);
    }
    names_free(&classes);
    return 0;
}

void image_folder_free(image_folder *f) {
    for (size_t c = 0; c < f->count; c++) {
        for (size_t i = 0; i < f->classes[c].count; i++) free(f->classes[c].files[i]);
        free(f->classes[c].files);
        free(f->classes[c].name);
    }
    free(f->classes);
    *f = (image_folder){0};
}
