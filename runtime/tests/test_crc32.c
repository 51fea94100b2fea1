/* CRC32 against zlib's published vectors. */
#include <string.h>

#include "check.h"
#include "crc32.h"

CHECK_DEFINE_COUNTERS;

int main(void) {
    static const struct {
        const char *text;
        unsigned long crc;
    } vectors[] = {
        {"", 0x00000000ul},
        {"a", 0xE8B7BE43ul},
        {"abc", 0x352441C2ul},
        {"123456789", 0xCBF43926ul},
        {"The quick brown fox jumps over the lazy dog", 0x414FA339ul},
    };
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        const uint32_t got = crisp_crc32(0, vectors[i].text, strlen(vectors[i].text));
        CHECK(got == vectors[i].crc, "crc32(\"%s\") = 0x%08X, expected 0x%08lX", vectors[i].text,
              (unsigned)got, vectors[i].crc);
    }
    /* Continuing a CRC equals one pass over the concatenation. */
    const char *s = "123456789";
    uint32_t part = crisp_crc32(crisp_crc32(0, s, 4), s + 4, 5);
    CHECK(part == 0xCBF43926u, "chained crc32 = 0x%08X", (unsigned)part);
    /* 32 zero bytes, as zlib.crc32(bytes(32)). */
    unsigned char zeros[32] = {0};
    CHECK(crisp_crc32(0, zeros, 32) == 0x190A55ADu, "crc32(32 zero bytes) = 0x%08X",
          (unsigned)crisp_crc32(0, zeros, 32));
    return check_report();
}
