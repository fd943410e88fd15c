/*
 * blas.h - the one matrix-product wrapper of libcs, and OpenBLAS set-up.
 *
 * Every matrix product of the model goes through cs_sgemm (row-major,
 * cblas_sgemm underneath). cs_sgemm_ref is a naive triple loop with the
 * same contract, for tests; cs_blas_use_reference switches cs_sgemm onto it.
 */
#ifndef CS_BLAS_H
#define CS_BLAS_H

#include <stddef.h>
#include "cs.h"

/*
 * C (M, N) = alpha * op(A) (M, K) @ op(B) (K, N) + beta * C, all row-major.
 * op(X) is X, or X transposed when ta / tb is non-zero. lda, ldb, ldc are
 * row strides in floats of the matrices as stored. beta == 0 ignores C.
 */
void cs_sgemm(int ta, int tb, size_t M, size_t N, size_t K, float alpha,
	      const float *A, size_t lda, const float *B, size_t ldb,
	      float beta, float *C, size_t ldc);
void cs_sgemm_ref(int ta, int tb, size_t M, size_t N, size_t K, float alpha,
		  const float *A, size_t lda, const float *B, size_t ldb,
		  float beta, float *C, size_t ldc);
/* Non-zero: cs_sgemm calls cs_sgemm_ref (for tests; not thread-safe). */
void cs_blas_use_reference(int on);

/*
 * Set up OpenBLAS; call first thing in main(), before any other thread.
 *
 * Kernels: some OpenBLAS builds (Debian's 0.3.21 on Intel family 6 model
 * 207, for one) do not recognise a new CPU and fall back to the generic
 * Prescott kernels, about five times slower than SkylakeX. OpenBLAS reads
 * OPENBLAS_CORETYPE only when it initialises, at program load, so the fix
 * is to set it and start the program again. When argv is not NULL, the
 * CPU (and OS) supports AVX-512 F, BW, VL and DQ, OpenBLAS reports a
 * pre-AVX core (cs_blas_weak_core), OPENBLAS_CORETYPE is unset and
 * CS_BLAS_REEXEC is unset, cs_blas_init sets OPENBLAS_CORETYPE=SkylakeX
 * and CS_BLAS_REEXEC=1 and re-executes /proc/self/exe with argv; it does
 * not return then. CPUs without AVX-512 are never touched. To do it by
 * hand: `OPENBLAS_CORETYPE=SkylakeX cs-train ...`; to opt out, set
 * OPENBLAS_CORETYPE to anything (e.g. the core OpenBLAS picked) or
 * CS_BLAS_REEXEC=0.
 *
 * Idle threads: when OMP_WAIT_POLICY or OPENBLAS_THREAD_TIMEOUT is unset
 * (and CS_BLAS_REEXEC too), cs_blas_init also re-executes once with
 * OMP_WAIT_POLICY=PASSIVE and OPENBLAS_THREAD_TIMEOUT=4 for the unset
 * ones: both libraries read them only at load, and their default spinning
 * idle threads take the cores the working ones need.
 *
 * threads > 0 sets the OpenBLAS thread count; 0 keeps its default
 * (OPENBLAS_NUM_THREADS or the number of cores). *corename (if not NULL)
 * receives the kernel name OpenBLAS uses ("SkylakeX", "Haswell", "Zen",
 * "Prescott", ...). Returns 0, or -1 with err filled if the re-execution
 * failed (OpenBLAS then still works, with the slow kernel).
 */
int cs_blas_init(int threads, char **argv, const char **corename,
		 cs_error *err);
/*
 * Set OpenBLAS's thread count (and cs_sgemm's idea of it) to n; returns
 * the previous count. With 1, several threads may call cs_sgemm at once,
 * each product running in its caller (cs_recommender's encoders and
 * the tiled Cloze loss do).
 * Call between products, never during one.
 */
int cs_blas_set_threads(int n);
/* The kernel name OpenBLAS reports. */
const char *cs_blas_corename(void);
/* OpenBLAS's thread count. */
int cs_blas_threads(void);
/* Non-zero if corename is a pre-AVX fallback kernel (Prescott, Core2, ...). */
int cs_blas_weak_core(const char *corename);
/* Non-zero if this CPU and OS can run OpenBLAS's SkylakeX kernels. */
int cs_blas_cpu_has_avx512(void);
/*
 * The decision of cs_blas_init, pure for tests: non-zero if a program on a
 * CPU with (has_avx512) running OpenBLAS core corename, with the values
 * of OPENBLAS_CORETYPE and CS_BLAS_REEXEC given (NULL: unset), should
 * re-execute itself with OPENBLAS_CORETYPE=SkylakeX.
 */
int cs_blas_should_reexec(int has_avx512, const char *corename,
			  const char *env_coretype, const char *env_reexec);

#endif
