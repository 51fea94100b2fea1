/* getauxval and the environment are POSIX/glibc, not C11. */
#define _GNU_SOURCE
#include "cpu.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>

/* XCR0 through xgetbv, without requiring -mxsave for this file. */
static unsigned long long xcr0(void) {
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

crisp_cpu_features crisp_cpu_detect(void) {
    crisp_cpu_features f;
    memset(&f, 0, sizeof f);
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    if (!osxsave || !avx) return f;
    /* The OS must save the registers: XMM|YMM (bits 1-2), plus opmask and
     * both ZMM halves (bits 5-7) for AVX-512. */
    const unsigned long long x = xcr0();
    const int ymm_os = (x & 0x6) == 0x6, zmm_os = (x & 0xE6) == 0xE6;
    if (__get_cpuid_max(0, NULL) < 7) return f;
    __cpuid_count(7, 0, a, b, c, d);
    const unsigned subleaves = a;
    f.avx2_fma = ymm_os && fma && ((b >> 5) & 1);
    f.avx512f = f.avx2_fma && zmm_os && ((b >> 16) & 1);
    f.avx512vnni = f.avx512f && ((b >> 30) & 1) && ((c >> 11) & 1); /* BW, VNNI */
    if (subleaves >= 1) {
        __cpuid_count(7, 1, a, b, c, d);
        f.avxvnni = f.avx2_fma && ((a >> 4) & 1);
    }
    return f;
}

#elif defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif
#ifndef HWCAP_ASIMDHP
#define HWCAP_ASIMDHP (1 << 10)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif

crisp_cpu_features crisp_cpu_detect(void) {
    crisp_cpu_features f;
    memset(&f, 0, sizeof f);
    const unsigned long hw = getauxval(AT_HWCAP);
    f.neon = (hw & HWCAP_ASIMD) != 0;
    f.neon_fp16 = f.neon && (hw & HWCAP_ASIMDHP) != 0;
    f.neon_dotprod = f.neon && (hw & HWCAP_ASIMDDP) != 0;
    return f;
}

#else
crisp_cpu_features crisp_cpu_detect(void) {
    crisp_cpu_features f;
    memset(&f, 0, sizeof f);
    return f;
}
#endif

static crisp_cpu_features detected;
static pthread_once_t detected_once = PTHREAD_ONCE_INIT;

static void detect_once(void) {
    detected = crisp_cpu_detect();
    const char *cap = getenv("CRISP_MAX_ISA");
    if (cap == NULL || *cap == '\0') return;
    if (strcmp(cap, "scalar") == 0) {
        memset(&detected, 0, sizeof detected);
    } else if (strcmp(cap, "avx2") == 0) {
        detected.avx512f = detected.avx512vnni = detected.avxvnni = 0;
    } else if (strcmp(cap, "avxvnni") == 0) { /* an AVX-VNNI client core without AVX-512 */
        detected.avx512f = detected.avx512vnni = 0;
    } else if (strcmp(cap, "neon") == 0) {
        detected.neon_dotprod = detected.neon_fp16 = 0;
    }
    /* "avx512" or anything else: no cap. */
}

const crisp_cpu_features *crisp_cpu(void) {
    pthread_once(&detected_once, detect_once);
    return &detected;
}
