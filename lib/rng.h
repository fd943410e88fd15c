/*
 * rng.h - the random numbers of cs: weights, dropout, masking, splits and
 * negative sampling all draw from this one generator, so that a seed and
 * a thread count fix every result. (The names keep their cs_nn_ prefix
 * from when the generator lived in nn.h.)
 */
#ifndef CS_RNG_H
#define CS_RNG_H

#include <stdint.h>

/* splitmix64: small, seedable, the same stream on every platform. */
typedef struct cs_nn_rng {
	uint64_t s;
} cs_nn_rng;

void cs_nn_rng_seed(cs_nn_rng *r, uint64_t seed);
uint64_t cs_nn_rng_next(cs_nn_rng *r);
/* Skip the next n numbers (O(1): splitmix64 is a counter). */
void cs_nn_rng_skip(cs_nn_rng *r, uint64_t n);
/* Uniform in [0, 1), 24 bits. */
float cs_nn_rng_uniform(cs_nn_rng *r);
/* Standard normal (Box-Muller, double inside). */
double cs_nn_rng_normal(cs_nn_rng *r);
/* Normal with standard deviation std, redrawn outside +-2 std. */
float cs_nn_rng_truncnormal(cs_nn_rng *r, float std);

#endif
