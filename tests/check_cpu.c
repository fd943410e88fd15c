/*
 * check_cpu.c - lib/cpu.c: the features against /proc/cpuinfo, masking,
 * CS_KERNEL's names, and the one bfloat16 rounding with its vector forms
 * (amx.c's packing) on the values where roundings go wrong: NaNs,
 * infinities, ties, the largest finite values.
 */
#include <check.h>
#include "check_run.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amx.h"
#include "cpu.h"

static float bits_f(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

/* Non-zero if /proc/cpuinfo's flags hold the word flag; -1 if unreadable. */
static int cpuinfo_has(const char *flag)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[8192];
	int r = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "flags", 5)) {
			char want[64];
			snprintf(want, sizeof want, " %s ", flag);
			line[strcspn(line, "\n")] = ' ';
			r = strstr(line, want) != NULL;
			break;
		}
	fclose(f);
	return r;
}

START_TEST(test_features)
{
#if defined(__x86_64__) && defined(__linux__)
	static const struct { const char *flag; unsigned bit; } f[] = {
		{ "avx2", CS_CPU_AVX2 }, { "avx512f", CS_CPU_AVX512F },
		{ "avx512bw", CS_CPU_AVX512BW }, { "avx512vl", CS_CPU_AVX512VL },
		{ "avx512dq", CS_CPU_AVX512DQ }, { "avx512_bf16", CS_CPU_AVX512BF16 },
	};
	for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
		int have = cpuinfo_has(f[i].flag);
		if (have >= 0)
			ck_assert_msg(have == cs_cpu_has(f[i].bit), "%s: cpuinfo %d, cs %d",
				      f[i].flag, have, cs_cpu_has(f[i].bit));
	}
	if (cpuinfo_has("amx_tile") == 0)
		ck_assert(!cs_cpu_has(CS_CPU_AMX));
#endif
	unsigned all = cs_cpu_features();
	cs_cpu_mask(CS_CPU_AVX512BF16 | CS_CPU_AMX);
	ck_assert_uint_eq(cs_cpu_features(), all & ~(unsigned)(CS_CPU_AVX512BF16 | CS_CPU_AMX));
	ck_assert(!cs_kernel_supported(CS_KERNEL_BF16) && !cs_kernel_supported(CS_KERNEL_AMX));
	ck_assert(cs_kernel_supported(CS_KERNEL_FP32) && cs_kernel_supported(CS_KERNEL_C));
	cs_cpu_mask(0);
	ck_assert_uint_eq(cs_cpu_features(), all);
}
END_TEST

START_TEST(test_kernel_names)
{
	static const char *names[] = { "auto", "fp32", "c", "avx512", "bf16", "amx" };
	cs_error err = { 0 };
	for (int i = 0; i < 6; i++) {
		int k = cs_kernel_parse(names[i], &err);
		ck_assert_int_ge(k, 0);
		ck_assert_str_eq(cs_kernel_name((cs_kernel)k), names[i]);
	}
	ck_assert_int_eq(cs_kernel_parse("AMX", &err), -1);
	ck_assert_int_eq(err.code, CS_ERR_USAGE);
	ck_assert_int_eq(cs_kernel_parse("", &err), -1);
	/* unset and empty are auto */
	unsetenv("CS_KERNEL");
	ck_assert_int_eq(cs_cpu_kernel(&err), CS_KERNEL_AUTO);
}
END_TEST

START_TEST(test_kernel_env_bad)
{
	cs_error err = { 0 };
	setenv("CS_KERNEL", "avx-512", 1);
	ck_assert_int_eq(cs_cpu_kernel(&err), -1);
	ck_assert_int_eq(err.code, CS_ERR_USAGE);
	ck_assert_str_eq(err.msg, "invalid value 'avx-512' in CS_KERNEL "
			 "(expected auto, amx, bf16, fp32, avx512 or c)");
}
END_TEST

/* Values and their bfloat16, by the rules (nearest, ties to even, NaN kept). */
static const struct { uint32_t in; uint16_t out; } cases[] = {
	{ 0x00000000, 0x0000 }, { 0x80000000, 0x8000 },
	{ 0x3f800000, 0x3f80 },               /* 1 */
	{ 0x3f808000, 0x3f80 },               /* tie, even below */
	{ 0x3f818000, 0x3f82 },               /* tie, even above */
	{ 0x3f808001, 0x3f81 },               /* just above the tie */
	{ 0x3f807fff, 0x3f80 },
	{ 0x7f7fffff, 0x7f80 },               /* FLT_MAX rounds to infinity */
	{ 0x7f800000, 0x7f80 }, { 0xff800000, 0xff80 }, /* infinities stay */
	{ 0x00000001, 0x0000 },               /* the smallest subnormal */
};
/* NaNs, quiet or signalling, any payload: a NaN (a carry would make some
 * infinities, 0x7f800001 -> 0x7f80, or flip the sign, 0x7fffffff -> 0x8000) */
static const uint32_t nans[] = { 0x7f800001, 0x7fffffff, 0xffffffff, 0x7fc00000,
				 0xff800001, 0x7f80ffff, 0x7fbfffff };

static int is_nan16(uint16_t b, uint32_t in)
{
	return (b & 0x7f80) == 0x7f80 && (b & 0x7f) && (b & 0x8000) == (in >> 16 & 0x8000);
}

START_TEST(test_bf16)
{
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		ck_assert_msg(cs_bf16(bits_f(cases[i].in)) == cases[i].out, "%08x -> %04x not %04x",
			      cases[i].in, cs_bf16(bits_f(cases[i].in)), cases[i].out);
	for (size_t i = 0; i < sizeof nans / sizeof *nans; i++)
		ck_assert_msg(is_nan16(cs_bf16(bits_f(nans[i])), nans[i]), "NaN %08x -> %04x",
			      nans[i], cs_bf16(bits_f(nans[i])));
}
END_TEST

/*
 * amx.c's packers round 16 values at once where the CPU has AVX-512: the
 * same bits as cs_bf16, NaNs included. 32 values (two vectors) of which
 * the special ones, then random.
 */
START_TEST(test_bf16_packing)
{
	if (!cs_cpu_has(CS_CPU_AVX512F | CS_CPU_AVX512BW))
		return; /* the packers' vector paths need AVX-512 */
	enum { K = 32, N = 32 };
	float src[K * N];
	uint64_t r = 88172645463325252ull;
	size_t ns = 0;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		src[ns++] = bits_f(cases[i].in);
	for (size_t i = 0; i < sizeof nans / sizeof *nans; i++)
		src[ns++] = bits_f(nans[i]);
	for (size_t i = ns; i < K * N; i++) {
		r ^= r << 13, r ^= r >> 7, r ^= r << 17;
		src[i] = bits_f((uint32_t)r);
	}
	/* special values in every lane of some row pair */
	for (size_t i = 0; i < ns; i++)
		src[N + i] = src[i];
	uint16_t Bp[K * N], A[K * N], Bs[K * N];
	cs_amx_pack(Bp, K, N, src, N, K, N, 0);
	cs_amx_split(A, Bs, src, N, K, K, N);
	for (size_t k = 0; k < K; k++)
		for (size_t n = 0; n < N; n++) {
			uint16_t want = cs_bf16(src[k * N + n]);
			/* B[k][n] of block n/16, pair row k/2, lane n%16, half k%2 */
			size_t o = (n / 16) * (K * 16) + (k / 2) * 32 + (n % 16) * 2 + k % 2;
			uint32_t in;
			memcpy(&in, &src[k * N + n], sizeof in);
			ck_assert_msg(Bp[o] == want, "pack [%zu][%zu] %08x: %04x not %04x", k, n,
				      in, Bp[o], want);
			ck_assert_msg(Bs[o] == want, "split B [%zu][%zu]", k, n);
			ck_assert_msg(A[k * N + n] == want, "split A [%zu][%zu]", k, n);
		}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cpu");
	TCase *tc = tcase_create("cpu");
	tcase_add_test(tc, test_features);
	tcase_add_test(tc, test_kernel_names);
	tcase_add_test(tc, test_kernel_env_bad);
	tcase_add_test(tc, test_bf16);
	tcase_add_test(tc, test_bf16_packing);
	suite_add_tcase(s, tc);
	return check_run(s);
}
