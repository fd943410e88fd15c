/*
 * blas.c - cs_sgemm over cblas_sgemm, a naive reference beside it, and
 * OpenBLAS's settings: kernel, idle threads, thread counts (see blas.h).
 */
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <cblas.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#include "blas.h"
#include "cpu.h"

static int use_ref;
/*
 * Threads OpenBLAS may use, and the size (M N K) below which a product
 * runs on one thread: threading the small per-sequence attention products
 * costs more in wake-ups than it saves (a third of the time went to the
 * kernel at two threads).
 */
static int blas_threads = 1;
#define SMALL_GEMM (64.0 * 64 * 64)

void cs_blas_use_reference(int on)
{
	use_ref = on;
}

void cs_sgemm(int ta, int tb, size_t M, size_t N, size_t K, float alpha,
	      const float *A, size_t lda, const float *B, size_t ldb,
	      float beta, float *C, size_t ldc)
{
	if (M == 0 || N == 0)
		return;
	if (use_ref) {
		cs_sgemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C,
			     ldc);
		return;
	}
	if (K == 0) { /* BLAS would do this too, but some reject lda 0 */
		for (size_t i = 0; i < M; i++)
			for (size_t j = 0; j < N; j++)
				C[i * ldc + j] = beta == 0.0f ? 0.0f
					: beta * C[i * ldc + j];
		return;
	}
	int one = blas_threads > 1 && (double)M * N * K < SMALL_GEMM;
	if (one)
		openblas_set_num_threads(1);
	cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
		    tb ? CblasTrans : CblasNoTrans, (blasint)M, (blasint)N,
		    (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta,
		    C, (blasint)ldc);
	if (one)
		openblas_set_num_threads(blas_threads);
}

/* Naive triple loop, accumulating in double. */
void cs_sgemm_ref(int ta, int tb, size_t M, size_t N, size_t K, float alpha,
		  const float *A, size_t lda, const float *B, size_t ldb,
		  float beta, float *C, size_t ldc)
{
	for (size_t i = 0; i < M; i++) {
		for (size_t j = 0; j < N; j++) {
			double s = 0.0;
			for (size_t k = 0; k < K; k++) {
				float a = ta ? A[k * lda + i] : A[i * lda + k];
				float b = tb ? B[j * ldb + k] : B[k * ldb + j];
				s += (double)a * b;
			}
			float c = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
			C[i * ldc + j] = (float)(alpha * s) + c;
		}
	}
}

int cs_blas_set_threads(int n)
{
	int old = blas_threads;
	openblas_set_num_threads(n);
	blas_threads = n;
	return old;
}

/* ------------------------------------------------------------ kernels */

const char *cs_blas_corename(void)
{
	const char *s = openblas_get_corename();
	return s ? s : "unknown";
}

int cs_blas_threads(void)
{
	return openblas_get_num_threads();
}

int cs_blas_core_avx512(const char *corename)
{
	static const char *avx512[] = { "skylakex", "cooperlake", "sapphirerapids" };
	for (size_t i = 0; corename && i < sizeof avx512 / sizeof *avx512; i++)
		if (strcasecmp(corename, avx512[i]) == 0)
			return 1;
	return 0;
}

cs_blas_plan cs_blas_plan_for(unsigned cpu_features, const char *corename,
			      const char *env_reexec, const char *env_wait,
			      const char *env_timeout, int flags, int can_switch)
{
	cs_blas_plan p = { 0 };
	if (env_reexec)
		return p;
	if ((cpu_features & CS_CPU_AVX512) == CS_CPU_AVX512 && !cs_blas_core_avx512(corename))
		p.coretype = "SkylakeX";
	p.idle = !env_timeout;
	p.omp_idle = (flags & CS_BLAS_OMP_PASSIVE) && !env_wait;
	p.restart = p.omp_idle || ((p.coretype || p.idle) && !can_switch);
	p.in_place = !p.restart && (p.coretype || p.idle);
	return p;
}

/* ------------------------------------------------------------ in place */

/*
 * OpenBLAS's own start-up, as its DYNAMIC_ARCH builds export it (see
 * blas.h). Looked up, not linked: a build without them still runs, and
 * cs restarts instead.
 */
typedef struct blas_hooks {
	void (*read_env)(void);   /* openblas_read_env: the OPENBLAS_* variables */
	int (*stop)(void);        /* blas_thread_shutdown_: join the pool */
	void (*forget)(void);     /* gotoblas_dynamic_quit: drop the kernel table */
	void (*pick)(void);       /* gotoblas_dynamic_init: OPENBLAS_CORETYPE's, or the CPU's */
	int (*start)(void);       /* blas_thread_init: the pool, with the timeout */
} blas_hooks;

static int find_hooks(blas_hooks *h, const char *coretype)
{
	*(void **)&h->read_env = dlsym(RTLD_DEFAULT, "openblas_read_env");
	*(void **)&h->stop = dlsym(RTLD_DEFAULT, "blas_thread_shutdown_");
	*(void **)&h->forget = dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit");
	*(void **)&h->pick = dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init");
	*(void **)&h->start = dlsym(RTLD_DEFAULT, "blas_thread_init");
	if (!h->read_env || !h->stop || !h->start)
		return 0;
	if (!coretype)
		return 1;
	/* the table itself: an unknown name would get OpenBLAS's Prescott */
	char table[64] = "gotoblas_";
	size_t n = strlen(table);
	for (const char *c = coretype; *c && n + 1 < sizeof table; c++)
		table[n++] = (char)toupper((unsigned char)*c);
	table[n] = 0;
	return h->forget && h->pick && dlsym(RTLD_DEFAULT, table) != NULL;
}

int cs_blas_can_switch(const char *coretype)
{
	blas_hooks h;
	return find_hooks(&h, coretype);
}

/* The kernel OpenBLAS had chosen, when cs changed it in place. */
static char detected[32];

int cs_blas_switch(const char *coretype, int timeout, cs_error *err)
{
	blas_hooks h;
	if (!find_hooks(&h, coretype))
		return cs_err(err, CS_ERR_IO, "OpenBLAS", 0,
			      "cannot change its kernel or threads in place: "
			      "not a build that exports its start-up");
	char was[sizeof detected];
	snprintf(was, sizeof was, "%s", cs_blas_corename());
	if ((coretype && setenv("OPENBLAS_CORETYPE", coretype, 1) < 0) ||
	    (timeout && setenv("OPENBLAS_THREAD_TIMEOUT", "4", 0) < 0))
		return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	h.read_env();
	h.stop();
	if (coretype) {
		h.forget();
		h.pick();
	}
	h.start();
	if (coretype && strcasecmp(cs_blas_corename(), coretype) != 0)
		return cs_err(err, CS_ERR_IO, "OpenBLAS", 0,
			      "asked for kernel %s, runs %s", coretype, cs_blas_corename());
	/* what OpenBLAS chose itself, until cs goes back to it */
	if (coretype && !detected[0] && strcasecmp(was, coretype) != 0)
		memcpy(detected, was, sizeof detected);
	else if (coretype && strcasecmp(detected, coretype) == 0)
		detected[0] = 0;
	return 0;
}

/* The process name (comm) of a restarted program: its file's, not "exe". */
static void keep_name(const char *argv0)
{
	char comm[32] = "";
	FILE *f = fopen("/proc/self/comm", "r");
	if (f) {
		if (!fgets(comm, sizeof comm, f))
			comm[0] = 0;
		fclose(f);
	}
	if (strcmp(comm, "exe\n") == 0 && argv0) {
		const char *b = strrchr(argv0, '/');
		prctl(PR_SET_NAME, b ? b + 1 : argv0, 0, 0, 0);
	}
}

int cs_blas_restart(char **argv, int flags, cs_error *err)
{
	if (!argv || !argv[0])
		return 0;
	if (getenv("CS_BLAS_REEXEC")) {
		keep_name(argv[0]);
		return 0;
	}
	unsigned cpu = cs_cpu_features();
	const char *core = cs_blas_corename(), *wait = getenv("OMP_WAIT_POLICY"),
		   *timeout = getenv("OPENBLAS_THREAD_TIMEOUT");
	cs_blas_plan p = cs_blas_plan_for(cpu, core, NULL, wait, timeout, flags, 1);
	if (p.in_place && !cs_blas_can_switch(p.coretype))
		p = cs_blas_plan_for(cpu, core, NULL, wait, timeout, flags, 0);
	if (p.in_place)
		return cs_blas_switch(p.coretype, p.idle, err);
	if (!p.restart)
		return 0;
	int ok = setenv("CS_BLAS_REEXEC", "1", 1) == 0 &&
		 (!p.coretype || (setenv("OPENBLAS_CORETYPE", p.coretype, 1) == 0 &&
				  setenv("CS_BLAS_DETECTED", core, 1) == 0)) &&
		 (!p.omp_idle || setenv("OMP_WAIT_POLICY", "PASSIVE", 0) == 0) &&
		 setenv("OPENBLAS_THREAD_TIMEOUT", "4", 0) == 0;
	/*
	 * Through the file's own path, so that the new process is named after
	 * it: execv("/proc/self/exe") would name it "exe". /proc/self/exe is
	 * the fallback (the file was removed or replaced), renamed on arrival.
	 */
	char path[4096];
	ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
	if (ok) {
		if (n > 0 && (path[n] = 0, !strstr(path, " (deleted)")))
			execv(path, argv);
		execv("/proc/self/exe", argv);
	}
	/* Still here: run on as we are (OPENBLAS_CORETYPE is read no more). */
	int e = errno;
	unsetenv("CS_BLAS_DETECTED");
	return cs_err(err, CS_ERR_IO, "/proc/self/exe", 0,
		      "cannot re-execute with tuned OpenBLAS settings: %s", strerror(e));
}

void cs_blas_init(int threads)
{
	if (threads > 0)
		openblas_set_num_threads(threads);
	blas_threads = cs_blas_threads();
#ifdef _OPENMP
	/* The model's own loops use as many threads as OpenBLAS. */
	omp_set_num_threads(threads > 0 ? threads : cs_blas_threads());
#endif
}

const char *cs_blas_core_origin(char *buf, size_t n)
{
	const char *det = detected[0] ? detected : getenv("CS_BLAS_DETECTED");
	if (det && *det)
		snprintf(buf, n, "chosen by cs for AVX-512, in place of %s", det);
	else if (getenv("OPENBLAS_CORETYPE") && *getenv("OPENBLAS_CORETYPE"))
		snprintf(buf, n, "OPENBLAS_CORETYPE");
	else
		snprintf(buf, n, "OpenBLAS's choice");
	return buf;
}
