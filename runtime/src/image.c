/* Images on the device: decode PNG/JPEG/BMP with the vendored stb_image (this
 * is its one translation unit), check the container for truncation, then
 * resize, crop and normalise with the model's PREP (src/resample.c) into the
 * graph input. runtime/README.md, "Images". */
/* open/fstat/read are POSIX, not C11. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32.h"
#include "format.h"
#include "model.h"
#include "resample.h"
#include "status.h"

/* stb_image: only the formats we document, no stdio (we read files
 * ourselves, to name them in errors), no SIMD (the same pixels on x86-64 and
 * AArch64: the scalar IDCT and colour conversion everywhere), static (no
 * stbi_* symbol leaves libcrisp), and a bound on the dimensions so a hostile
 * header cannot ask for gigabytes. */
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_NO_STDIO
#define STBI_NO_SIMD
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STB_IMAGE_STATIC
#define STBI_MAX_DIMENSIONS CRISP_IMAGE_MAX_SIDE
#define STB_IMAGE_IMPLEMENTATION
/* The one warning stb_image trips with our flags (GCC, clang, -O0/-O2):
 * STB_IMAGE_STATIC makes the API functions this file does not call unused
 * (and declares stbi_load_gif_from_memory, which STBI_ONLY_* leaves
 * undefined; GCC reports that at the end of the file, so the warning stays
 * off for this whole file). */
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wunused-function"
#endif
#include "../third_party/stb/stb_image.h"

/* Image files larger than this are refused before they are read. */
#define IMAGE_MAX_FILE_BYTES ((size_t)1 << 28)

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* stb_image does not check PNG CRCs and decodes what it has of a cut JPEG,
 * where Pillow refuses both: walk the container first. PNG: every chunk
 * inside the data with its CRC right, up to IEND. */
static crisp_status check_png(const uint8_t *d, size_t n, const char *name, uint32_t *w,
                              uint32_t *h) {
    size_t at = 8;
    if (n >= 24 && memcmp(d + 12, "IHDR", 4) == 0) {
        *w = be32(d + 16);
        *h = be32(d + 20);
    }
    while (at <= n && n - at >= 12) {
        const uint32_t len = be32(d + at);
        if (len > n - at - 12)
            return crisp_error(CRISP_ERR_FORMAT,
                               "%s: PNG chunk '%.4s' at byte %zu needs %u bytes, the file ends "
                               "(truncated)",
                               name, (const char *)(d + at + 4), at, (unsigned)len + 12);
        const uint32_t crc = crisp_crc32(0, d + at + 4, (size_t)len + 4);
        if (crc != be32(d + at + 8 + len))
            return crisp_error(CRISP_ERR_FORMAT, "%s: PNG chunk '%.4s' at byte %zu: CRC mismatch "
                               "(corrupt)",
                               name, (const char *)(d + at + 4), at);
        if (memcmp(d + at + 4, "IEND", 4) == 0) return CRISP_OK;
        at += (size_t)len + 12;
    }
    return crisp_error(CRISP_ERR_FORMAT, "%s: PNG ends at byte %zu without IEND (truncated)",
                       name, n);
}

/* JPEG: the marker segments from SOI, through each scan's entropy-coded data
 * (where 0xFF is followed by 0x00 or a restart marker), up to EOI. */
static crisp_status check_jpeg(const uint8_t *d, size_t n, const char *name, uint32_t *w,
                               uint32_t *h) {
    size_t at = 2;
    int scans = 0;
    while (at < n) {
        if (d[at] != 0xFF)
            return crisp_error(CRISP_ERR_FORMAT, "%s: JPEG: no marker at byte %zu (corrupt)", name,
                               at);
        while (at < n && d[at] == 0xFF) at++; /* fill bytes */
        if (at >= n) break;
        const uint8_t marker = d[at++];
        if (marker == 0xD9) {
            if (scans == 0)
                return crisp_error(CRISP_ERR_FORMAT, "%s: JPEG ends before its first scan",
                                   name);
            return CRISP_OK;
        }
        if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue; /* no length */
        if (n - at < 2) break;
        const size_t len = (size_t)d[at] << 8 | d[at + 1];
        if (len < 2 || len > n - at) break;
        /* SOF0..SOF15 (not DHT C4, JPG C8, DAC CC): P, Y, X. */
        if (marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 &&
            marker != 0xCC && len >= 7 && *w == 0) {
            *h = (uint32_t)d[at + 3] << 8 | d[at + 4];
            *w = (uint32_t)d[at + 5] << 8 | d[at + 6];
        }
        at += len;
        if (marker != 0xDA) continue;
        scans++;
        /* Entropy-coded data up to the next marker that is not a restart. */
        while (at < n) {
            if (d[at] != 0xFF) {
                at++;
                continue;
            }
            if (at + 1 >= n) {
                at = n;
                break;
            }
            const uint8_t next = d[at + 1];
            if (next == 0x00 || (next >= 0xD0 && next <= 0xD7)) {
                at += 2;
                continue;
            }
            if (next == 0xFF) {
                at++;
                continue;
            }
            break;
        }
    }
    return crisp_error(CRISP_ERR_FORMAT, "%s: JPEG ends at byte %zu before its end marker "
                       "(truncated)", name, n);
}

static crisp_status decode(const crisp_model *m, const uint8_t *data, size_t size, float *out,
                           size_t out_count, const char *name) {
    const crisp_preprocess *p = &m->preprocess;
    if (!p->present) {
        if (m->path != NULL)
            return crisp_error(CRISP_ERR_UNSUPPORTED,
                               "MODEL: '%s' stores no preprocessing (PREP); repack it with "
                               "`crisp-edge pack ... --mean R,G,B --std R,G,B [--resize ...]` to "
                               "run it on images",
                               m->path);
        return crisp_error(CRISP_ERR_UNSUPPORTED,
                           "MODEL: the file stores no preprocessing (PREP); repack it with "
                           "`crisp-edge pack ... --mean R,G,B --std R,G,B [--resize ...]` to run "
                           "it on images");
    }
    const size_t want = (size_t)p->height * p->width * 3;
    if (out_count != want)
        return crisp_error(CRISP_ERR_SHAPE,
                           "%s: output has %zu floats; the model takes %zu = (3,%u,%u)", name,
                           out_count, want, (unsigned)p->height, (unsigned)p->width);
    if (size > INT_MAX)
        return crisp_error(CRISP_ERR_FORMAT, "%s: %zu bytes is too large for an image", name,
                           size);
    /* The size from the header, checked before anything is decoded. */
    crisp_status s;
    uint32_t hw = 0, hh = 0;
    if (size >= 8 && memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0) {
        if ((s = check_png(data, size, name, &hw, &hh)) != CRISP_OK) return s;
    } else if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) {
        if ((s = check_jpeg(data, size, name, &hw, &hh)) != CRISP_OK) return s;
    } else if (size >= 26 && data[0] == 'B' && data[1] == 'M') {
        const int32_t bh = crisp_rd_i32(data + 22);
        hw = crisp_rd_u32(data + 18);
        hh = bh < 0 ? (uint32_t)-(int64_t)bh : (uint32_t)bh;
    } else {
        return crisp_error(CRISP_ERR_FORMAT, "%s: not a PNG, JPEG or BMP image", name);
    }
    if (hw > CRISP_IMAGE_MAX_SIDE || hh > CRISP_IMAGE_MAX_SIDE)
        return crisp_error(CRISP_ERR_FORMAT, "%s: image is %ux%u pixels, at most %ux%u allowed",
                           name, (unsigned)hw, (unsigned)hh, CRISP_IMAGE_MAX_SIDE,
                           CRISP_IMAGE_MAX_SIDE);
    int w = 0, h = 0, comp = 0;
    if (!stbi_info_from_memory(data, (int)size, &w, &h, &comp))
        return crisp_error(CRISP_ERR_FORMAT, "%s: cannot read the image header (%s)", name,
                           stbi_failure_reason());
    /* The decoder's view of the size, in case our header walk found another. */
    if (w < 1 || h < 1 || (uint32_t)w > CRISP_IMAGE_MAX_SIDE || (uint32_t)h > CRISP_IMAGE_MAX_SIDE)
        return crisp_error(CRISP_ERR_FORMAT, "%s: image is %dx%d pixels, expected 1..%u per side",
                           name, w, h, CRISP_IMAGE_MAX_SIDE);
    if (p->resize == CRISP_RESIZE_NONE && ((uint32_t)w != p->width || (uint32_t)h != p->height))
        return crisp_error(CRISP_ERR_SHAPE,
                           "%s: image is %dx%d pixels; the model takes exactly %ux%u (its PREP "
                           "says resize none: resize the image, or repack with --resize)",
                           name, w, h, (unsigned)p->width, (unsigned)p->height);
    int dw = 0, dh = 0;
    stbi_uc *pixels = stbi_load_from_memory(data, (int)size, &dw, &dh, &comp, 3);
    if (pixels == NULL) {
        const char *why = stbi_failure_reason();
        if (why != NULL && strcmp(why, "outofmem") == 0)
            return crisp_error(CRISP_ERR_NOMEM, "%s: out of memory decoding %dx%d pixels", name,
                               w, h);
        return crisp_error(CRISP_ERR_FORMAT, "%s: cannot decode the image (%s)", name,
                           why != NULL ? why : "unknown reason");
    }
    if (dw != w || dh != h) {
        stbi_image_free(pixels);
        return crisp_error(CRISP_ERR_FORMAT, "%s: image header says %dx%d, its data %dx%d", name,
                           w, h, dw, dh);
    }
    uint8_t *fitted = pixels;
    if (p->resize != CRISP_RESIZE_NONE) {
        uint32_t rw = p->width, rh = p->height;
        if (p->resize == CRISP_RESIZE_SHORTER_SIDE)
            crisp_shorter_side_size((uint32_t)w, (uint32_t)h, p->resize_size, &rw, &rh);
        fitted = malloc(want);
        s = fitted == NULL ? CRISP_ERR_NOMEM
                           : crisp_resample_rgb8(pixels, (uint32_t)w, (uint32_t)h, rw, rh,
                                                 (rw - p->width) / 2, (rh - p->height) / 2,
                                                 p->width, p->height, fitted);
        if (s != CRISP_OK) {
            free(fitted);
            stbi_image_free(pixels);
            return crisp_error(CRISP_ERR_NOMEM, "%s: out of memory resizing %dx%d pixels", name,
                               w, h);
        }
    }
    crisp_normalize_rgb8(p, fitted, out);
    if (fitted != pixels) free(fitted);
    stbi_image_free(pixels);
    return CRISP_OK;
}

crisp_status crisp_image_decode(const crisp_model *m, const void *data, size_t size, float *out,
                                size_t out_count) {
    if (m == NULL || data == NULL || out == NULL)
        return crisp_error(CRISP_ERR_ARGUMENT, "crisp_image_decode: %s is NULL",
                           m == NULL ? "model" : data == NULL ? "data" : "out");
    return decode(m, data, size, out, out_count, "image");
}

crisp_status crisp_image_load(const crisp_model *m, const char *path, float *out,
                              size_t out_count) {
    if (m == NULL || path == NULL || out == NULL)
        return crisp_error(CRISP_ERR_ARGUMENT, "crisp_image_load: %s is NULL",
                           m == NULL ? "model" : path == NULL ? "path" : "out");
    char name[1100];
    snprintf(name, sizeof name, "image '%s'", path);
    if (!m->preprocess.present) return decode(m, (const uint8_t *)"", 0, out, out_count, name);
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return crisp_error(CRISP_ERR_IO, "cannot open %s: %s", name, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        const int e = errno;
        close(fd);
        return crisp_error(CRISP_ERR_IO, "%s is not a readable regular file%s%s", name,
                           e ? ": " : "", e ? strerror(e) : "");
    }
    if ((uint64_t)st.st_size > IMAGE_MAX_FILE_BYTES) {
        close(fd);
        return crisp_error(CRISP_ERR_FORMAT, "%s is %llu bytes, more than the %zu an image may "
                           "have", name, (unsigned long long)st.st_size, IMAGE_MAX_FILE_BYTES);
    }
    const size_t size = (size_t)st.st_size;
    uint8_t *data = malloc(size > 0 ? size : 1);
    if (data == NULL) {
        close(fd);
        return crisp_error(CRISP_ERR_NOMEM, "out of memory reading %s (%zu bytes)", name, size);
    }
    size_t got = 0;
    while (got < size) {
        const ssize_t r = read(fd, data + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            const int e = r < 0 ? errno : 0;
            close(fd);
            free(data);
            return crisp_error(CRISP_ERR_IO, "cannot read %s: %s", name,
                               e ? strerror(e) : "the file shrank while reading");
        }
        got += (size_t)r;
    }
    close(fd);
    const crisp_status s = decode(m, data, size, out, out_count, name);
    free(data);
    return s;
}
