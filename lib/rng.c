/* rng.c - splitmix64 and the distributions drawn from it (see rng.h). */
#include <math.h>
#include "rng.h"

void cs_nn_rng_seed(cs_nn_rng *r, uint64_t seed)
{
	r->s = seed;
}

uint64_t cs_nn_rng_next(cs_nn_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void cs_nn_rng_skip(cs_nn_rng *r, uint64_t n)
{
	r->s += n * 0x9e3779b97f4a7c15ULL;
}

float cs_nn_rng_uniform(cs_nn_rng *r)
{
	return (float)(cs_nn_rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

double cs_nn_rng_normal(cs_nn_rng *r)
{
	double u1 = ((double)(cs_nn_rng_next(r) >> 11) + 1.0) * 0x1p-53;
	double u2 = (double)(cs_nn_rng_next(r) >> 11) * 0x1p-53;
	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

float cs_nn_rng_truncnormal(cs_nn_rng *r, float std)
{
	double z;
	do
		z = cs_nn_rng_normal(r);
	while (z < -2.0 || z > 2.0);
	return (float)(z * std);
}
