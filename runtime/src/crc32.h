/* Internal: zlib/PNG CRC32 (reflected polynomial 0xEDB88320). */
#ifndef CRISP_CRC32_H
#define CRISP_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* crc32(0, data, n) == zlib.crc32(data); pass a previous result to continue. */
uint32_t crisp_crc32(uint32_t crc, const void *data, size_t size);

#endif
