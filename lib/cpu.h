/*
 * cpu.h - what this CPU can do, probed once, and which kernels to run.
 *
 * Every hardware choice of libcs starts here (zstd's cpu.h is the model):
 * the SIMD width of the exp-bound loops (nn.c), OpenBLAS's kernel (blas.c),
 * the output layer's scorer (score.c) and the Cloze loss's products
 * (nn.c, amx.c). cs_cpu_features probes CPUID and the OS once; on a CPU
 * with AMX it also asks Linux, once, for the tile state (a process must
 * request it before its first tile instruction).
 *
 * CS_KERNEL (environment) names the kernel family the output layer uses:
 * auto (or unset, the default), amx, bf16, fp32, avx512 or c. It is read
 * once; a program checks it first thing (cs_cpu_kernel) and treats a bad
 * value as a usage error.
 */
#ifndef CS_CPU_H
#define CS_CPU_H

#include <stdint.h>
#include <string.h>
#include "cs.h"

enum {
	CS_CPU_AVX2 = 1 << 0,
	CS_CPU_FMA = 1 << 1,
	CS_CPU_AVX512F = 1 << 2,
	CS_CPU_AVX512DQ = 1 << 3,
	CS_CPU_AVX512BW = 1 << 4,
	CS_CPU_AVX512VL = 1 << 5,
	CS_CPU_AVX512BF16 = 1 << 6, /* vdpbf16ps */
	CS_CPU_AMX = 1 << 7,        /* AMX-TILE and AMX-BF16, state granted */
	/* what OpenBLAS's SkylakeX kernels need */
	CS_CPU_AVX512 = CS_CPU_AVX512F | CS_CPU_AVX512DQ | CS_CPU_AVX512BW | CS_CPU_AVX512VL
};

/*
 * The CS_CPU_* bits of this CPU, which the OS also lets the process use
 * (the ZMM and tile state); the first call probes (thread-safe).
 */
unsigned cs_cpu_features(void);
/* Non-zero if the CPU has every bit of mask. */
static inline int cs_cpu_has(unsigned mask)
{
	return (cs_cpu_features() & mask) == mask;
}
/* Tests: pretend the CPU lacks the bits of mask (0: the real CPU). */
void cs_cpu_mask(unsigned mask);

/* CS_KERNEL's values. */
typedef enum cs_kernel {
	CS_KERNEL_AUTO = 0,
	CS_KERNEL_FP32,   /* single precision: avx512 where the CPU has it, else c */
	CS_KERNEL_C,      /* portable C (the scorer) */
	CS_KERNEL_AVX512, /* AVX-512F in single precision (the scorer) */
	CS_KERNEL_BF16,   /* AVX512-BF16, vdpbf16ps */
	CS_KERNEL_AMX     /* AMX-BF16 tiles */
} cs_kernel;

/* The kernel of a name ("auto", "amx", ...), or -1 with err (CS_ERR_USAGE). */
int cs_kernel_parse(const char *name, cs_error *err);
/* The name of a kernel. */
const char *cs_kernel_name(cs_kernel k);
/* Non-zero if this CPU runs kernel k (auto, fp32 and c: always). */
int cs_kernel_supported(cs_kernel k);
/*
 * CS_KERNEL, parsed on the first call (unset or empty: auto): the kernel,
 * or -1 with err filled (a usage error: "invalid value 'x' in CS_KERNEL").
 */
int cs_cpu_kernel(cs_error *err);

/*
 * x rounded to the nearest bfloat16, ties to even; a NaN stays a NaN
 * (quiet), where rounding its bits could carry it into an infinity.
 */
static inline uint16_t cs_bf16(float x)
{
	uint32_t u;
	memcpy(&u, &x, sizeof u);
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return (uint16_t)((u >> 16) | 0x40);
	return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

#endif
