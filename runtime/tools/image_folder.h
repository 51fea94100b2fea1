/* An image folder: DIR/<class>/<image>, one sub-folder per class, named by the class
 * (ImageFolder layout). What crisp-personalize --images reads. */
#ifndef CRISP_IMAGE_FOLDER_H
#define CRISP_IMAGE_FOLDER_H

#include <stddef.h>

typedef struct image_class {
    char *name;    /* the sub-folder's name */
    char **files;  /* full paths of its images, sorted by name */
    size_t count;
} image_class;

typedef struct image_folder {
    image_class *classes; /* sorted by name */
    size_t count;
} image_folder;

/* Lists DIR's class folders (hidden ones skipped) and in each the files ending in .png,
 * .jpg, .jpeg or .bmp (any case; others ignored). Returns 0, or -1 with a message in err
 * (an unreadable DIR, no class folder, out of memory). A class folder with no image is
 * listed with count 0: the caller decides (it names the class). */
int image_folder_read(const char *dir, image_folder *out, char *err, size_t err_size);
void image_folder_free(image_folder *f);

#endif
