/*
 * comm_mpi.c - cs_comm over MPI (comm.h): every sum is one MPI_Allreduce
 * over MPI_COMM_WORLD, in place. Not part of libcs: the Makefile builds
 * it into cs-train when pkg-config finds ompi-c.
 */
#include <limits.h>
#include <mpi.h>
#include <stdlib.h>

#include "comm.h"

/* MPI counts are ints: a larger buffer goes in slices. */
#define SLICE ((size_t)1 << 30)

static int mpi_fail(int rc, const char *what, cs_error *err)
{
	char msg[MPI_MAX_ERROR_STRING];
	int n = 0;
	if (MPI_Error_string(rc, msg, &n) != MPI_SUCCESS)
		n = 0;
	msg[n] = '\0';
	return cs_err(err, CS_ERR_IO, NULL, 0, "MPI %s failed: %s", what, n ? msg : "unknown error");
}

static int allreduce(void *buf, size_t n, size_t width, MPI_Datatype t, MPI_Op op,
		     cs_error *err)
{
	for (size_t at = 0; at < n; at += SLICE) {
		int k = (int)(n - at < SLICE ? n - at : SLICE);
		int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + at * width, k, t, op,
				       MPI_COMM_WORLD);
		if (rc != MPI_SUCCESS)
			return mpi_fail(rc, "allreduce", err);
	}
	return 0;
}

static int sum_f32(cs_comm *c, float *buf, size_t n, cs_error *err)
{
	return allreduce(buf, n, sizeof *buf, MPI_FLOAT, MPI_SUM, err);
}

static int sum_f64(cs_comm *c, double *buf, size_t n, cs_error *err)
{
	return allreduce(buf, n, sizeof *buf, MPI_DOUBLE, MPI_SUM, err);
}

static int or_u8(cs_comm *c, unsigned char *buf, size_t n, cs_error *err)
{
	return allreduce(buf, n, 1, MPI_UNSIGNED_CHAR, MPI_BOR, err);
}

static int min_int(cs_comm *c, int *v, cs_error *err)
{
	return allreduce(v, 1, sizeof *v, MPI_INT, MPI_MIN, err);
}

static cs_comm world = { 0, 1, -1, NULL, sum_f32, sum_f64, or_u8, min_int };

cs_comm *cs_comm_mpi_init(cs_error *err)
{
	/* Open MPI's mpirun, or a PMI/PMIx launcher (srun) */
	if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMIX_RANK") && !getenv("PMI_RANK"))
		return cs_comm_single();
	int got, rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &got);
	if (rc != MPI_SUCCESS) {
		mpi_fail(rc, "init", err);
		return NULL;
	}
	/* errors come back as codes, to be reported as ours */
	MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
	if ((rc = MPI_Comm_rank(MPI_COMM_WORLD, &world.rank)) != MPI_SUCCESS ||
	    (rc = MPI_Comm_size(MPI_COMM_WORLD, &world.size)) != MPI_SUCCESS) {
		mpi_fail(rc, "init", err);
		return NULL;
	}
	return &world;
}

void cs_comm_mpi_finalize(cs_comm *c)
{
	if (c == &world)
		MPI_Finalize();
}
