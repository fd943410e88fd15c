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
 * OpenBLAS reads its settings when it loads, before main(): the kernel
 * (OPENBLAS_CORETYPE) and how long idle threads spin
 * (OPENBLAS_THREAD_TIMEOUT); libgomp reads OMP_WAIT_POLICY likewise.
 * cs_blas_restart changes them when the program calls it (first thing in
 * main, before any other thread), never as a side effect: in place where
 * it can, by starting the program again once where it must.
 *
 * Kernel: by what the CPU can do. With AVX-512 F, BW, VL and DQ (cpu.h)
 * and a kernel that is not one of OpenBLAS's AVX-512 ones (SkylakeX,
 * Cooperlake, SapphireRapids), SkylakeX: some OpenBLAS builds do not know
 * a new CPU (Debian's 0.3.21 took Intel family 6 model 207 for Prescott),
 * and an environment may name an older kernel (OPENBLAS_CORETYPE=Haswell
 * on a Zen 5, where sgemm of the FFN's shape ran at 173 GFLOP/s on
 * SkylakeX against 118 on Haswell). CPUs without AVX-512 are never
 * touched; CS_BLAS_REEXEC=0 keeps OpenBLAS as it loaded (and whatever
 * OPENBLAS_CORETYPE says).
 *
 * Idle threads: OpenBLAS's spin on sched_yield for ~0.1 s after each
 * product, and libgomp's spin after each loop, take the cores the working
 * ones need: OPENBLAS_THREAD_TIMEOUT=4 where unset, and for a program
 * that asks (CS_BLAS_OMP_PASSIVE: training and evaluation, which run
 * OpenMP loops between threaded products) OMP_WAIT_POLICY=PASSIVE where
 * unset. A program whose products run one thread each (cs-recommend's
 * encoders) gains nothing from libgomp's setting.
 *
 * In place: OpenBLAS's DYNAMIC_ARCH builds (Debian's) export the
 * functions of their own start-up (openblas_read_env, the kernel table's
 * gotoblas_dynamic_quit and _init, the thread pool's
 * blas_thread_shutdown_ and blas_thread_init). Where all are found, with
 * the wanted kernel's table (gotoblas_SKYLAKEX), the kernel and the
 * timeout change in place before any product has run, in about half a
 * millisecond. libgomp has no such door: OMP_WAIT_POLICY takes a restart
 * (about 10 ms), as do the others where the functions are missing.
 */
enum { CS_BLAS_OMP_PASSIVE = 1 };
typedef struct cs_blas_plan {
	const char *coretype; /* OPENBLAS_CORETYPE to set, or NULL */
	int idle;             /* set OPENBLAS_THREAD_TIMEOUT (it is unset) */
	int omp_idle;         /* set OMP_WAIT_POLICY (it is unset and wanted) */
	int restart;          /* non-zero: set them and start again */
	int in_place;         /* non-zero: set coretype and idle in place */
} cs_blas_plan;
/*
 * The plan, pure for tests: for a CPU with cpu_features (cs_cpu_features)
 * whose OpenBLAS runs corename, given the environment's CS_BLAS_REEXEC,
 * OMP_WAIT_POLICY and OPENBLAS_THREAD_TIMEOUT (NULL: unset), the
 * program's flags (CS_BLAS_OMP_PASSIVE) and whether OpenBLAS can change
 * in place (can_switch). CS_BLAS_REEXEC (set by the restart, or by hand
 * to opt out) keeps everything as it is.
 */
cs_blas_plan cs_blas_plan_for(unsigned cpu_features, const char *corename,
			      const char *env_reexec, const char *env_wait,
			      const char *env_timeout, int flags, int can_switch);
/* Non-zero if corename is one of OpenBLAS's AVX-512 kernels. */
int cs_blas_core_avx512(const char *corename);
/*
 * Non-zero if this OpenBLAS exports what an in-place change to coretype
 * takes (NULL: the timeout only).
 */
int cs_blas_can_switch(const char *coretype);
/*
 * Change OpenBLAS in place: its kernel to coretype (NULL: kept) and its
 * threads' idle timeout to OPENBLAS_THREAD_TIMEOUT's value (timeout
 * non-zero: set to 4 first where unset). Only before any product runs or
 * between products, with no other thread in OpenBLAS. Returns 0, or -1
 * with err filled if the functions are missing (nothing changed) or the
 * kernel that runs after is not coretype.
 */
int cs_blas_switch(const char *coretype, int timeout, cs_error *err);
/*
 * Follow the plan for this process (flags as for cs_blas_plan_for): in
 * place, or by setting the variables (CS_BLAS_REEXEC=1, and
 * CS_BLAS_DETECTED to the kernel OpenBLAS had chosen when the plan
 * changes it) and executing the program again with argv, through its own
 * path, so that ps, pgrep and pidof still show its name; it does not
 * return then. Returns 0 when done in place or when nothing is needed (in
 * a restarted process, it checks the process name), or -1 with err
 * filled if the change failed (the program then runs on as it is).
 */
int cs_blas_restart(char **argv, int flags, cs_error *err);
/*
 * Thread counts: threads > 0 sets OpenBLAS's (and OpenMP's) to it, 0
 * keeps OpenBLAS's default (OPENBLAS_NUM_THREADS or the cores).
 */
void cs_blas_init(int threads);
/*
 * How the kernel was chosen, for a verbose line: "chosen by cs for
 * AVX-512, in place of Haswell", "OPENBLAS_CORETYPE" or "OpenBLAS's
 * choice".
 */
const char *cs_blas_core_origin(char *buf, size_t n);
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
#endif
