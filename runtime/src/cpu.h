/* Internal: which instruction sets this CPU and OS support, detected once at
 * run time, so one binary runs on every CPU of its architecture and picks
 * the fastest kernels it can (runtime/README.md, "Optimised kernels"). */
#ifndef CRISP_CPU_H
#define CRISP_CPU_H

typedef struct crisp_cpu_features {
    int avx2_fma;     /* x86-64: AVX2 + FMA3, YMM state enabled by the OS */
    int avx512f;      /* x86-64: AVX-512F, ZMM/opmask state enabled by the OS */
    int avx512vnni;   /* x86-64: AVX-512F + BW + VNNI (vpdpbusd), same OS state */
    int avxvnni;      /* x86-64: AVX-VNNI (VEX vpdpbusd on YMM) + AVX2: Alder Lake and
                         later client cores, e.g. the N100, with or without AVX-512 */
    int neon;         /* aarch64: Advanced SIMD (always present) */
    int neon_dotprod; /* aarch64: SDOT/UDOT (ARMv8.2, e.g. Cortex-A76/A78) */
    int neon_fp16;    /* aarch64: half-precision vector arithmetic */
} crisp_cpu_features;

/* The features of this CPU, capped by the CRISP_MAX_ISA environment variable
 * when it is set ("scalar", "avx2", "avxvnni", "avx512", "neon"): a way to measure or
 * test a lower kernel tier on a bigger CPU. Cached after the first call. */
const crisp_cpu_features *crisp_cpu(void);

/* The features of this CPU, ignoring CRISP_MAX_ISA (for tests). */
crisp_cpu_features crisp_cpu_detect(void);

#endif
