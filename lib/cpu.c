/*
 * cpu.c - CPU features probed once, and CS_KERNEL parsed once (see cpu.h).
 */
#include <stdlib.h>
#include <string.h>
#include "cpu.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <unistd.h>
#include <sys/syscall.h>
#endif

static unsigned feat_mask;
static int feat = -1; /* the probed bits, -1 before the first call */

/*
 * AMX: CPUID leaf 7 says the CPU has the tiles and their bf16 products;
 * Linux (5.16 on) hands a process the tile state only when asked
 * (arch_prctl ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA), for all its
 * threads, so it is asked here, once.
 */
static unsigned probe(void)
{
	unsigned f = 0;
#if defined(__x86_64__) && defined(__GNUC__)
	/* libgcc checks XCR0 too: the OS must save the YMM and ZMM state */
	__builtin_cpu_init();
	f |= __builtin_cpu_supports("avx2") ? CS_CPU_AVX2 : 0;
	f |= __builtin_cpu_supports("fma") ? CS_CPU_FMA : 0;
	f |= __builtin_cpu_supports("avx512f") ? CS_CPU_AVX512F : 0;
	f |= __builtin_cpu_supports("avx512dq") ? CS_CPU_AVX512DQ : 0;
	f |= __builtin_cpu_supports("avx512bw") ? CS_CPU_AVX512BW : 0;
	f |= __builtin_cpu_supports("avx512vl") ? CS_CPU_AVX512VL : 0;
	if ((f & CS_CPU_AVX512F) && __builtin_cpu_supports("avx512bf16"))
		f |= CS_CPU_AVX512BF16;
	unsigned a, b, c, d;
	if ((f & CS_CPU_AVX512F) && __get_cpuid_count(7, 0, &a, &b, &c, &d) &&
	    (d >> 22 & 1) && (d >> 24 & 1)) {
#if defined(SYS_arch_prctl)
		if (syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */,
			    18 /* XFEATURE_XTILEDATA */) == 0)
			f |= CS_CPU_AMX;
#endif
	}
#endif
	return f;
}

unsigned cs_cpu_features(void)
{
	int f = __atomic_load_n(&feat, __ATOMIC_ACQUIRE);
	if (f < 0) {
		f = (int)probe();
		__atomic_store_n(&feat, f, __ATOMIC_RELEASE);
	}
	return (unsigned)f & ~__atomic_load_n(&feat_mask, __ATOMIC_RELAXED);
}

void cs_cpu_mask(unsigned mask)
{
	__atomic_store_n(&feat_mask, mask, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------ CS_KERNEL */

static const char *kernel_names[] = { "auto", "fp32", "c", "avx512", "bf16", "amx" };

const char *cs_kernel_name(cs_kernel k)
{
	return (unsigned)k < sizeof kernel_names / sizeof *kernel_names ? kernel_names[k] : "?";
}

int cs_kernel_parse(const char *name, cs_error *err)
{
	for (size_t i = 0; i < sizeof kernel_names / sizeof *kernel_names; i++)
		if (!strcmp(name, kernel_names[i]))
			return (int)i;
	return cs_err(err, CS_ERR_USAGE, NULL, 0,
		      "unknown kernel '%s' (auto, amx, bf16, fp32, avx512, c)", name);
}

int cs_kernel_supported(cs_kernel k)
{
	switch (k) {
	case CS_KERNEL_AVX512: return cs_cpu_has(CS_CPU_AVX512F);
	case CS_KERNEL_BF16:
		return cs_cpu_has(CS_CPU_AVX512F | CS_CPU_AVX512BW | CS_CPU_AVX512BF16);
	case CS_KERNEL_AMX: return cs_cpu_has(CS_CPU_AMX);
	default: return 1;
	}
}

int cs_cpu_kernel(cs_error *err)
{
	/* parsed once: -2 before, -1 a bad value, else the kernel */
	static int k = -2;
	int v = __atomic_load_n(&k, __ATOMIC_ACQUIRE);
	const char *s = getenv("CS_KERNEL");
	if (v == -2) {
		v = !s || !*s ? CS_KERNEL_AUTO : cs_kernel_parse(s, NULL);
		__atomic_store_n(&k, v, __ATOMIC_RELEASE);
	}
	if (v < 0)
		cs_err(err, CS_ERR_USAGE, NULL, 0,
		       "invalid value '%s' in CS_KERNEL (expected auto, amx, bf16, fp32, avx512 or c)",
		       s ? s : "");
	return v;
}
