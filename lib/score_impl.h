/*
 * score_impl.h - what score.c shares with its kernels (score_x86.c); not
 * part of the library's interface.
 *
 * Layout. Items go in units of 32 (two panels of 16, one AVX-512 register
 * each); V is padded to U units, the padding's bias -inf. fp32 weights
 * wp (U, 2, C, 16): unit u, panel p, channel c, lane l holds
 * w[32u + 16p + l][c], so a channel of 16 items is one aligned load.
 * bf16 weights wb (U, 2, C2, 16, 2) for C2 channel pairs (ceil(C/2)
 * rounded up to 16, zeros beyond C): the pair (2q, 2q+1) of lane l side by
 * side, as vdpbf16ps multiplies them, and 16 pairs of a panel are one AMX
 * tile (16 rows of 64 bytes); rows h likewise as (M, C2) pairs packed in
 * 32 bits (even channel low).
 */
#ifndef CS_SCORE_IMPL_H
#define CS_SCORE_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include "cpu.h"
#include "score.h"

#define CS_SCORE_R 8      /* rows of a register tile */
#define CS_SCORE_UNIT 32  /* items of a register tile */
#define CS_SCORE_CAND 128 /* bf16: candidates a row holds between compactions */
#define CS_SCORE_SEED 32  /* units of a thread's seeding pass */
#define CS_SCORE_DIRECT 8 /* fewer rows (before any packing): straight from w */
#define CS_SCORE_DIRECT_ALL 32 /* ... until this many in all: then pack */

#define CS_SCORE_R_AMX 32  /* rows of an AMX tile pair */

struct cs_scorer {
	size_t V, C, C2, first, U;
	cs_kernel kernel; /* c, avx512, bf16 or amx */
	const float *w; /* (V, C) the caller's: exact scores one item at a time */
	float *wp;      /* (U, 2, C, 16), the fp32 kernels only */
	float *bias;    /* (32 U) */
	uint16_t *wb;   /* (U, 2, C2, 16, 2), bf16 kernel only */
	double wmax;    /* largest |w_j| (2-norm), bf16 error bound */
	double bmax;    /* largest |bias_j| */
	int packed;     /* wp or wb made (on the first batch of CS_SCORE_DIRECT rows) */
	size_t direct;  /* rows scored straight from w so far */
	/* scratch of cs_scorer_topk, grown as needed */
	void *scratch;
	size_t scratch_cap;
};

/* One row's selection within one thread's share of the items. */
typedef struct cs__topk_row {
	float *vals;        /* (k) min-heap on (score, -id): the worst at 0 */
	uint32_t *ids;
	size_t n, k;
	float thr;          /* the kernels hand over every score >= thr */
	/* seeding: while on, take records each unit's best score in seed[]
	 * (unit u at u - seed_u0); then sthr, a lower bound of the k-th best
	 * score (approximate for bf16) from them, joins the threshold */
	int seeding;
	size_t seed_u0;
	float *seed;        /* (CS_SCORE_SEED) */
	float sthr;
	const float *h;     /* (C) the row */
	const uint32_t *seen; /* sorted items to skip */
	size_t nseen;
	/* bf16: a heap of the k best approximate scores so far, the
	 * candidates to re-score and their approximate scores */
	float *avals;       /* (k) */
	uint32_t *aids;
	size_t an;
	uint32_t *cand;     /* (CS_SCORE_CAND) */
	float *cval;        /* (CS_SCORE_CAND) */
	size_t nc;
	double margin;      /* twice the bound on |approximate - exact| */
	/* ranking (cs_scorer_rank): thr is the target's score, and n counts
	 * the items other than target handed over */
	int ranking;
	uint32_t target;
} cs__topk_row;

/* a worse than b: a lower score, or the same and a larger id */
static inline int cs__worse(float a, uint32_t ia, float b, uint32_t ib)
{
	return a < b || (a == b && ia > ib);
}

static inline void cs__sift_down(float *v, uint32_t *id, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, s = i;
		if (l < n && cs__worse(v[l], id[l], v[s], id[s]))
			s = l;
		if (r < n && cs__worse(v[r], id[r], v[s], id[s]))
			s = r;
		if (s == i)
			return;
		float tv = v[i]; v[i] = v[s]; v[s] = tv;
		uint32_t ti = id[i]; id[i] = id[s]; id[s] = ti;
		i = s;
	}
}

/* Push item j (score x) into a full or filling heap of k. */
static inline void cs__topk_push(float *vals, uint32_t *ids, size_t *n, size_t k,
				 float x, uint32_t j)
{
	if (*n < k) {
		ids[*n] = j;
		vals[*n] = x;
		if (++*n == k)
			for (size_t i = k / 2; i-- > 0;)
				cs__sift_down(vals, ids, k, i);
	} else if (cs__worse(vals[0], ids[0], x, j)) {
		vals[0] = x;
		ids[0] = j;
		cs__sift_down(vals, ids, k, 0);
	}
}

/* Non-zero if j is a candidate of row: in the catalogue and not seen. */
static inline int cs__admissible(const cs_scorer *s, const cs__topk_row *row, size_t j)
{
	if (j < s->first || j >= s->V)
		return 0;
	size_t lo = 0, hi = row->nseen;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (row->seen[mid] < j)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo == row->nseen || row->seen[lo] != j;
}

/* Seeding: record the best of the scores sc (32) of unit base/32. */
static inline void cs__seed(cs__topk_row *row, const float *sc, size_t base)
{
	float m[8];
	for (int i = 0; i < 8; i++) /* eight chains */
		m[i] = sc[i];
	for (int l = 8; l < 32; l += 8)
		for (int i = 0; i < 8; i++)
			m[i] = sc[l + i] > m[i] ? sc[l + i] : m[i];
	for (int i = 1; i < 8; i++)
		m[0] = m[i] > m[0] ? m[i] : m[0];
	row->seed[base / 32 - row->seed_u0] = m[0];
}

/* The k-th largest of v (n >= k >= 1), which it reorders. */
float cs__kth_largest(float *v, size_t n, size_t k);

/* fp32 kernels: the scores sc (32) of unit base/32 that passed (bits of mask). */
void cs__score_take(const cs_scorer *s, cs__topk_row *row, const float *sc,
		    uint32_t mask, size_t base);

/* Kernels: units u0 .. u1-1 against rows 0 .. Mp-1 (a multiple of R). */
void cs__score_avx512(const cs_scorer *s, const float *h, size_t Mp,
		      size_t u0, size_t u1, cs__topk_row *rows);
void cs__score_bf16(const cs_scorer *s, const uint32_t *hb, size_t Mp,
		    size_t u0, size_t u1, cs__topk_row *rows);
/* AMX: Mp a multiple of CS_SCORE_R_AMX. */
void cs__score_amx(const cs_scorer *s, const uint32_t *hb, size_t Mp,
		   size_t u0, size_t u1, cs__topk_row *rows);
/* bf16: re-score the candidates row holds into its exact heap. */
void cs__score_rescore(const cs_scorer *s, cs__topk_row *row);
/* bf16: set the threshold from a fresh seed bound. */
void cs__score_seeded(cs__topk_row *row);
/* bf16: drop the candidates that can no longer reach the top k. */
void cs__score_compact(const cs_scorer *s, cs__topk_row *row);

#endif
