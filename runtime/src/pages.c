/* Huge pages for the session's large buffers. The sparse kernels touch many
 * 4 KiB pages per pixel tile: each call writes its run's rows a whole output
 * plane apart (ResNet-50's 56 x 56 planes: 12.5 KiB) and reads B columns
 * across a 256 KiB tile, a few hundred pages, beyond the first-level TLB.
 * On 2 MiB pages ResNet-50's 7 MiB arena is four. ResNet-50 @90 % ran 2-4 %
 * faster, MobileNetV2 @90 % at one thread 4-8 % (runtime/README.md, "Huge
 * pages", has the measurements). */
#define _DEFAULT_SOURCE
#define _POSIX_C_SOURCE 200809L
#include "pages.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "format.h"

int crisp_pages_huge(size_t bytes) {
#ifdef MADV_HUGEPAGE
    const char *env = getenv("CRISP_HUGE_PAGES"); /* "0": small pages, to compare */
    return bytes >= CRISP_HUGE_PAGE && (env == NULL || strcmp(env, "0") != 0);
#else
    (void)bytes;
    return 0;
#endif
}

void *crisp_pages_alloc(size_t bytes) {
    if (!crisp_pages_huge(bytes)) {
        /* aligned_alloc wants a multiple of the alignment */
        const size_t rounded = (bytes + CRISP_ALIGN - 1) / CRISP_ALIGN * CRISP_ALIGN;
        return rounded >= bytes ? aligned_alloc(CRISP_ALIGN, rounded) : NULL;
    }
    void *p = NULL;
    if (posix_memalign(&p, CRISP_HUGE_PAGE, bytes) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    /* Advice only: a kernel without THP, or with it off, says no and the
     * buffer works on small pages as before. */
    (void)madvise(p, bytes / CRISP_HUGE_PAGE * CRISP_HUGE_PAGE, MADV_HUGEPAGE);
#endif
    return p;
}
