/* Internal: the session's large buffers (activation arena, kernel scratch)
 * on transparent huge pages where Linux grants them on request
 * (runtime/README.md, "Huge pages"). */
#ifndef CRISP_PAGES_H
#define CRISP_PAGES_H

#include <stddef.h>

/* The huge page size asked for: 2 MiB, the PMD size of x86-64 and of
 * AArch64 with 4 KiB pages (a 64 KiB-page kernel's 512 MiB PMD pages are
 * simply never granted to buffers this small). */
#define CRISP_HUGE_PAGE ((size_t)2 << 20)

/* `bytes` (> 0) of memory, 64-byte aligned, released with free(); NULL when
 * out of memory. At least one huge page of it, and CRISP_HUGE_PAGES not "0",
 * starts on a huge-page boundary and asks (madvise) for huge pages over its
 * whole huge pages; the tail past the last one stays on small pages, so no
 * byte is reserved beyond `bytes` but the alignment's untouched head. */
void *crisp_pages_alloc(size_t bytes);

/* Whether crisp_pages_alloc asks for huge pages for `bytes`: 1 or 0. */
int crisp_pages_huge(size_t bytes);

#endif
