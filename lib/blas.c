/*
 * blas.c - cs_sgemm over cblas_sgemm, a naive reference beside it, and
 * OpenBLAS kernel selection (see blas.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <cblas.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#include "blas.h"

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

int cs_blas_weak_core(const char *corename)
{
	static const char *weak[] = {
		"generic", "prescott", "core2", "penryn", "dunnington",
		"nehalem", "atom", "katmai", "coppermine", "northwood",
		"banias", "unknown",
	};
	if (!corename)
		return 1;
	for (size_t i = 0; i < sizeof weak / sizeof weak[0]; i++)
		if (strcasecmp(corename, weak[i]) == 0)
			return 1;
	return 0;
}

int cs_blas_cpu_has_avx512(void)
{
#if defined(__x86_64__) || defined(__i386__)
	/* libgcc checks XCR0 too, so the OS must save the ZMM state. */
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") &&
	       __builtin_cpu_supports("avx512bw") &&
	       __builtin_cpu_supports("avx512vl") &&
	       __builtin_cpu_supports("avx512dq");
#else
	return 0;
#endif
}

int cs_blas_should_reexec(int has_avx512, const char *corename,
			  const char *env_coretype, const char *env_reexec)
{
	if (!has_avx512 || env_coretype || env_reexec)
		return 0;
	return cs_blas_weak_core(corename);
}

int cs_blas_init(int threads, char **argv, const char **corename,
		 cs_error *err)
{
	int rc = 0;
	const char *reexec = getenv("CS_BLAS_REEXEC");
	int kernel = argv && argv[0] &&
		     cs_blas_should_reexec(cs_blas_cpu_has_avx512(), cs_blas_corename(),
					   getenv("OPENBLAS_CORETYPE"), reexec);
	/*
	 * Idle threads: OpenBLAS's spin on sched_yield for ~0.1 s after each
	 * product and libgomp's spin after each loop, fighting for the cores
	 * the other needs (a third of training time went to the kernel).
	 * Both read these only at load, so they too need a fresh start.
	 */
	int idle = argv && argv[0] && !reexec &&
		   (!getenv("OMP_WAIT_POLICY") || !getenv("OPENBLAS_THREAD_TIMEOUT"));
	if (kernel || idle) {
		int ok = setenv("CS_BLAS_REEXEC", "1", 1) == 0 &&
			 (!kernel || setenv("OPENBLAS_CORETYPE", "SkylakeX", 1) == 0) &&
			 setenv("OMP_WAIT_POLICY", "PASSIVE", 0) == 0 &&
			 setenv("OPENBLAS_THREAD_TIMEOUT", "4", 0) == 0;
		if (ok)
			execv("/proc/self/exe", argv);
		/* Still here: run on as we are. */
		rc = cs_err(err, CS_ERR_IO, "/proc/self/exe", 0,
			    "cannot re-execute with tuned OpenBLAS settings: %s",
			    strerror(errno));
		if (kernel)
			unsetenv("OPENBLAS_CORETYPE");
	}
	if (threads > 0)
		openblas_set_num_threads(threads);
	blas_threads = cs_blas_threads();
#ifdef _OPENMP
	/* The model's own loops use as many threads as OpenBLAS. */
	omp_set_num_threads(threads > 0 ? threads : cs_blas_threads());
#endif
	if (corename)
		*corename = cs_blas_corename();
	return rc;
}
