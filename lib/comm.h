/*
 * comm.h - what data-parallel training asks of the processes it runs on:
 * their number, this one's rank, and sums across all of them. train.c
 * calls these and nothing else; cs_comm_single() is the one process of
 * an ordinary run (its sums are no-ops), lib/comm_mpi.c the MPI version
 * (built into cs-train only where pkg-config finds Open MPI, so that
 * libcs does not depend on it).
 *
 * Every process calls the same operations in the same order (they are
 * collective); each returns 0, or -1 with err filled when the
 * communication itself failed. Every process gets bitwise the same sums.
 */
#ifndef CS_COMM_H
#define CS_COMM_H

#include <stddef.h>

#include "cs.h"

typedef struct cs_comm {
	int rank, size;
	/*
	 * The lowest rank that failed, once cs_comm_agree has found one
	 * (every process then stops with an error); -1: none yet.
	 */
	int failed;
	void *ctx;
	/* buf (n) = the sum over the processes of their buf (n) */
	int (*sum_f32)(struct cs_comm *c, float *buf, size_t n, cs_error *err);
	int (*sum_f64)(struct cs_comm *c, double *buf, size_t n, cs_error *err);
	/* buf (n) = the bitwise or over the processes of their buf (n) */
	int (*or_u8)(struct cs_comm *c, unsigned char *buf, size_t n, cs_error *err);
	/* the lowest of the processes' v */
	int (*min_int)(struct cs_comm *c, int *v, cs_error *err);
} cs_comm;

/* The single process: rank 0 of 1, sums that leave the buffers as they are. */
cs_comm *cs_comm_single(void);

/*
 * Whether every process is ok: each says whether it is (ok 0: it failed,
 * with its own message in err). Returns 1 when all are; else 0 with
 * c->failed the lowest rank that failed and, on the processes that did
 * not, err saying which. (A failure of the communication itself is a
 * failure of this process.)
 */
int cs_comm_agree(cs_comm *c, int ok, cs_error *err);

/*
 * lib/comm_mpi.c, linked only into the MPI build of cs-train: the world
 * of the processes mpirun started (MPI_Init), or the single process
 * (without MPI) when no MPI launcher started this one; NULL with err if
 * MPI cannot start. Finalize when all is done (a no-op for the single
 * process).
 */
cs_comm *cs_comm_mpi_init(cs_error *err);
void cs_comm_mpi_finalize(cs_comm *c);

#endif
