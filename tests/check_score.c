/* check_score.c - unit tests of the fused scoring and top-K (score.h): every
 * kernel against a naive reference (all scores, sorted). */
#include <check.h>
#include "check_run.h"
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "batch.h"
#include "cpu.h"
#include "evaluate.h"
#include "metrics.h"
#include "model.h"
#include "nn.h"
#include "recommend.h"
#include "score.h"

static const char *kernels[] = { "c", "avx512", "bf16", "amx" };
#define NKERN 4

typedef struct ref_item {
	float v;
	uint32_t id;
} ref_item;

static int by_score(const void *a, const void *b)
{
	const ref_item *x = a, *y = b;
	if (x->v != y->v)
		return x->v > y->v ? -1 : 1;
	return (x->id > y->id) - (x->id < y->id);
}

/* The reference: every score of row h (cs_scorer_scores), sorted. */
static size_t ref_topk(const cs_scorer *s, const float *h, size_t V, size_t first,
		       size_t k, const uint32_t *seen, size_t nseen, uint32_t *ids,
		       float *vals)
{
	float *sc = malloc(V * sizeof *sc);
	ref_item *it = malloc(V * sizeof *it);
	size_t n = 0;
	cs_scorer_scores(s, h, sc);
	for (size_t j = first; j < V; j++) {
		int skip = 0;
		for (size_t i = 0; i < nseen; i++)
			skip |= seen[i] == j;
		if (!skip)
			it[n++] = (ref_item){ sc[j], (uint32_t)j };
	}
	qsort(it, n, sizeof *it, by_score);
	n = n < k ? n : k;
	for (size_t i = 0; i < n; i++) {
		ids[i] = it[i].id;
		vals[i] = it[i].v;
	}
	free(sc);
	free(it);
	return n;
}

/* Values in a few quarters: every product and sum exact in any order, and
 * in bfloat16 too, so scores tie a lot. */
static float quarter(cs_nn_rng *r)
{
	return (float)((int)(cs_nn_rng_next(r) % 9) - 4) * 0.25f;
}

static float normal(cs_nn_rng *r)
{
	float x = 0;
	for (int j = 0; j < 12; j++)
		x += cs_nn_rng_uniform(r);
	return x - 6.0f;
}

enum { DATA_QUARTERS, DATA_NORMAL, DATA_CLOSE };

/*
 * M rows over V items of width C, top k, with seen lists when seen is set,
 * through every kernel this CPU runs, against the reference.
 */
static void check_case(size_t V, size_t C, size_t M, size_t k, size_t first, int data,
		       int seen, uint64_t seed)
{
	cs_nn_rng r;
	cs_nn_rng_seed(&r, seed);
	float *w = malloc(V * C * sizeof *w), *b = malloc(V * sizeof *b);
	float *h = malloc(M * C * sizeof *h);
	for (size_t i = 0; i < V * C; i++)
		w[i] = data == DATA_QUARTERS ? quarter(&r) : 0.2f * normal(&r);
	for (size_t i = 0; i < M * C; i++)
		h[i] = data == DATA_QUARTERS ? quarter(&r) : normal(&r);
	for (size_t j = 0; j < V; j++)
		b[j] = data == DATA_QUARTERS ? quarter(&r) : 0.1f * normal(&r);
	if (data == DATA_CLOSE) {
		/* biases cancel the scores of row 0 to within bf16's error, for
		 * every row a crowd of near-ties to re-score */
		float *sc = malloc(V * sizeof *sc);
		memset(b, 0, V * sizeof *b);
		cs_scorer *s0 = cs_scorer_new(w, b, V, C, 0, "c", NULL);
		ck_assert_ptr_nonnull(s0);
		cs_scorer_scores(s0, h, sc);
		for (size_t j = 0; j < V; j++)
			b[j] = -sc[j] + 1e-4f * cs_nn_rng_uniform(&r);
		for (size_t i = 1; i < M; i++)
			for (size_t c = 0; c < C; c++)
				h[i * C + c] = h[c] * (1.0f + 1e-3f * normal(&r));
		free(sc);
		cs_scorer_free(s0);
	}
	size_t *off = malloc((M + 1) * sizeof *off);
	uint32_t *items = malloc(M * 400 * sizeof *items);
	off[0] = 0;
	for (size_t i = 0; i < M; i++) {
		size_t n = seen ? cs_nn_rng_next(&r) % 40 : 0;
		off[i + 1] = off[i] + n;
		for (size_t t = 0; t < n; t++) /* repeats and reserved ids too */
			items[off[i] + t] = (uint32_t)(cs_nn_rng_next(&r) % (t % 3 ? V : 8));
		if (seen == 2) {
			/* and the row's 300 best items overall and 12 best in the
			 * first 1024 of the first two chunks of 4096 (where the
			 * threads seed their thresholds), so that exclusion matters */
			size_t lo[3] = { 0, 0, V > 4096 ? 4096 : 0 };
			for (int g = 0; g < 3; g++) {
				size_t nv = g ? 1024 : V;
				if (lo[g] + nv > V)
					nv = V - lo[g];
				cs_scorer *s0 = cs_scorer_new(w + lo[g] * C, b + lo[g], nv, C,
							      g ? 0 : first, "c", NULL);
				uint32_t best[300];
				float bv[300];
				size_t nb = ref_topk(s0, h + i * C, nv, g ? 0 : first,
						     g ? 12 : 300, NULL, 0, best, bv);
				for (size_t t = 0; t < nb; t++)
					items[off[i + 1]++] = best[t] + (uint32_t)lo[g];
				cs_scorer_free(s0);
			}
		}
	}
	uint32_t *ids = malloc(M * k * sizeof *ids), *rid = malloc(k * sizeof *rid);
	float *vals = malloc(M * k * sizeof *vals), *rval = malloc(k * sizeof *rval);
	size_t *n = malloc(M * sizeof *n);
	int tried = 0;
	for (int ki = 0; ki < NKERN; ki++) {
		if (!cs_scorer_kernel_supported(kernels[ki]))
			continue;
		tried++;
		cs_error err = { 0 };
		cs_scorer *s = cs_scorer_new(w, b, V, C, first, kernels[ki], &err);
		ck_assert_msg(s != NULL, "%s", err.msg);
		ck_assert_str_eq(cs_scorer_kernel(s), kernels[ki]);
		ck_assert_int_eq(cs_scorer_topk(s, h, M, k, seen ? off : NULL, items, ids, vals,
						n, &err), 0);
		for (size_t i = 0; i < M; i++) {
			size_t rn = ref_topk(s, h + i * C, V, first, k, items + off[i],
					     off[i + 1] - off[i], rid, rval);
			ck_assert_msg(n[i] == rn, "%s V %zu C %zu k %zu row %zu: %zu items, "
				      "expected %zu", kernels[ki], V, C, k, i, n[i], rn);
			for (size_t j = 0; j < rn; j++)
				ck_assert_msg(ids[i * k + j] == rid[j] && vals[i * k + j] == rval[j],
					      "%s V %zu C %zu k %zu row %zu rank %zu: item %u "
					      "(%.9g), expected %u (%.9g)", kernels[ki], V, C, k, i,
					      j, ids[i * k + j], vals[i * k + j], rid[j], rval[j]);
		}
		cs_scorer_free(s);
	}
	ck_assert_int_ge(tried, 1);
	free(w);
	free(b);
	free(h);
	free(off);
	free(items);
	free(ids);
	free(rid);
	free(vals);
	free(rval);
	free(n);
}

/*
 * One row a call, as a service scores: straight from w for the first 32
 * rows, then packed; every call's top k against the reference.
 */
START_TEST(test_one_row_calls)
{
	size_t V = 3001, C = 37, k = 10, calls = 45;
	cs_nn_rng r;
	cs_nn_rng_seed(&r, 71);
	float *w = malloc(V * C * sizeof *w), *b = malloc(V * sizeof *b);
	float *h = malloc(calls * C * sizeof *h);
	for (size_t i = 0; i < V * C; i++)
		w[i] = 0.2f * normal(&r);
	for (size_t j = 0; j < V; j++)
		b[j] = 0.1f * normal(&r);
	for (size_t i = 0; i < calls * C; i++)
		h[i] = normal(&r);
	uint32_t ids[10], rid[10];
	float vals[10], rval[10];
	size_t n;
	for (int ki = 0; ki < NKERN; ki++) {
		if (!cs_scorer_kernel_supported(kernels[ki]))
			continue;
		cs_error err = { 0 };
		cs_scorer *s = cs_scorer_new(w, b, V, C, CS_ITEM_FIRST, kernels[ki], &err);
		ck_assert_msg(s != NULL, "%s", err.msg);
		for (size_t q = 0; q < calls; q++) {
			ck_assert_int_eq(cs_scorer_topk(s, h + q * C, 1, k, NULL, NULL, ids, vals,
							&n, &err), 0);
			size_t rn = ref_topk(s, h + q * C, V, CS_ITEM_FIRST, k, NULL, 0, rid, rval);
			ck_assert_uint_eq(n, rn);
			for (size_t j = 0; j < rn; j++)
				ck_assert_msg(ids[j] == rid[j] && vals[j] == rval[j],
					      "%s call %zu rank %zu: item %u (%.9g), expected %u (%.9g)",
					      kernels[ki], q, j, ids[j], vals[j], rid[j], rval[j]);
		}
		cs_scorer_free(s);
	}
	free(w);
	free(b);
	free(h);
}
END_TEST

START_TEST(test_ties)
{
	/* sizes off the tile edges; k past the catalogue */
	check_case(1000, 64, 33, 10, CS_ITEM_FIRST, DATA_QUARTERS, 0, 1);
	check_case(1234, 7, 9, 25, CS_ITEM_FIRST, DATA_QUARTERS, 0, 2);
	check_case(70, 64, 40, 100, CS_ITEM_FIRST, DATA_QUARTERS, 0, 3);
	check_case(5, 3, 2, 2, CS_ITEM_FIRST, DATA_QUARTERS, 0, 4);
	check_case(4, 64, 3, 1, CS_ITEM_FIRST, DATA_QUARTERS, 0, 5);
	check_case(3, 64, 3, 4, CS_ITEM_FIRST, DATA_QUARTERS, 0, 6); /* no items */
	check_case(100, 1, 17, 10, 0, DATA_QUARTERS, 0, 7);
	check_case(2000, 33, 65, 1, CS_ITEM_FIRST, DATA_QUARTERS, 0, 8);
}
END_TEST

START_TEST(test_exclude_seen)
{
	check_case(1000, 64, 33, 10, CS_ITEM_FIRST, DATA_QUARTERS, 1, 11);
	check_case(300, 16, 20, 50, CS_ITEM_FIRST, DATA_NORMAL, 1, 12);
	/* the seen items are most of a tiny catalogue */
	check_case(20, 8, 30, 30, CS_ITEM_FIRST, DATA_QUARTERS, 1, 13);
}
END_TEST

/* Catalogues large enough for the seeding pass (chunks of 4 x 32 units,
 * at least 4 a thread). */
START_TEST(test_seeded)
{
#ifdef _OPENMP
	omp_set_num_threads(1 + _i % 2);
#endif
	check_case(40000, 64, 9, 10, CS_ITEM_FIRST, DATA_NORMAL, 0, 61);
	check_case(40000, 64, 9, 10, CS_ITEM_FIRST, DATA_NORMAL, 2, 62);
	check_case(12000, 32, 5, 32, CS_ITEM_FIRST, DATA_QUARTERS, 2, 63);
	check_case(9000, 64, 4, 33, CS_ITEM_FIRST, DATA_QUARTERS, 0, 64);
	check_case(12000, 64, 4, 10, CS_ITEM_FIRST, DATA_CLOSE, 2, 65);
}
END_TEST

START_TEST(test_normal)
{
	check_case(5000, 64, 40, 10, CS_ITEM_FIRST, DATA_NORMAL, 0, 21);
	check_case(3001, 48, 8, 200, CS_ITEM_FIRST, DATA_NORMAL, 0, 22);
	check_case(777, 130, 5, 7, CS_ITEM_FIRST, DATA_NORMAL, 0, 23);
	/* fewer than 8 rows, straight from w: channels off the 16-wide blocks */
	check_case(3001, 37, 3, 10, CS_ITEM_FIRST, DATA_NORMAL, 0, 24);
	check_case(2050, 70, 7, 12, CS_ITEM_FIRST, DATA_QUARTERS, 1, 25);
	check_case(999, 16, 1, 5, CS_ITEM_FIRST, DATA_NORMAL, 0, 26);
}
END_TEST

/* Scores closer than bfloat16 can tell: the bf16 kernels re-score crowds. */
START_TEST(test_close)
{
	check_case(4000, 64, 16, 10, CS_ITEM_FIRST, DATA_CLOSE, 0, 31);
	check_case(4000, 64, 16, 100, CS_ITEM_FIRST, DATA_CLOSE, 1, 32);
	check_case(4000, 64, 2, 10, CS_ITEM_FIRST, DATA_CLOSE, 0, 33);
}
END_TEST

START_TEST(test_threads)
{
#ifdef _OPENMP
	for (int t = 1; t <= 3; t++) {
		omp_set_num_threads(t);
		check_case(3000, 64, 17, 10, CS_ITEM_FIRST, DATA_NORMAL, 1, 40 + (uint64_t)t);
		check_case(100, 64, 3, 10, CS_ITEM_FIRST, DATA_QUARTERS, 0, 50 + (uint64_t)t);
	}
#endif
}
END_TEST

/*
 * The kernel choice. CS_KERNEL is read once a process (cpu.h), and each
 * test runs in one of its own: _i 0 fp32, 1 c, 2 a bad value, 3 unset.
 */
START_TEST(test_choice)
{
	float w[64 * 4] = { 0 }, b[64] = { 0 };
	cs_error err = { 0 };
	cs_scorer *s;
	static const char *env[] = { "fp32", "c", "nonesuch", NULL };
	if (env[_i])
		setenv("CS_KERNEL", env[_i], 1);
	else
		unsetenv("CS_KERNEL");
	switch (_i) {
	case 0:
		s = cs_scorer_new(w, b, 64, 4, 3, NULL, &err);
		ck_assert_ptr_nonnull(s);
		ck_assert_str_eq(cs_scorer_kernel(s),
				 cs_scorer_kernel_supported("avx512") ? "avx512" : "c");
		cs_scorer_free(s);
		break;
	case 1:
		s = cs_scorer_new(w, b, 64, 4, 3, "auto", &err);
		ck_assert_str_eq(cs_scorer_kernel(s), "c");
		cs_scorer_free(s);
		/* an explicit kernel wins over the environment */
		s = cs_scorer_new(w, b, 64, 4, 3, "fp32", &err);
		ck_assert_ptr_nonnull(s);
		ck_assert_str_eq(cs_scorer_kernel(s),
				 cs_scorer_kernel_supported("avx512") ? "avx512" : "c");
		cs_scorer_free(s);
		/* read once: a later change does not count */
		setenv("CS_KERNEL", "fp32", 1);
		s = cs_scorer_new(w, b, 64, 4, 3, NULL, &err);
		ck_assert_str_eq(cs_scorer_kernel(s), "c");
		cs_scorer_free(s);
		break;
	case 2:
		ck_assert_ptr_null(cs_scorer_new(w, b, 64, 4, 3, NULL, &err));
		ck_assert_int_eq(err.code, CS_ERR_USAGE);
		ck_assert_ptr_nonnull(strstr(err.msg, "'nonesuch' in CS_KERNEL"));
		ck_assert_int_eq(cs_cpu_kernel(NULL), -1);
		ck_assert_ptr_null(cs_scorer_new(w, b, 64, 4, 3, "nonesuch", &err));
		ck_assert_ptr_nonnull(strstr(err.msg, "unknown kernel 'nonesuch'"));
		break;
	default:
		for (int ki = 0; ki < NKERN; ki++)
			if (!cs_scorer_kernel_supported(kernels[ki])) {
				ck_assert_ptr_null(cs_scorer_new(w, b, 64, 4, 3, kernels[ki], &err));
				ck_assert_int_eq(err.code, CS_ERR_USAGE);
			}
		/* auto: the fastest, amx, bf16, avx512, c in that order */
		s = cs_scorer_new(w, b, 64, 4, 3, NULL, &err);
		ck_assert_ptr_nonnull(s);
		ck_assert_str_eq(cs_scorer_kernel(s),
				 cs_scorer_kernel_supported("amx") ? "amx"
				 : cs_scorer_kernel_supported("bf16") ? "bf16"
				 : cs_scorer_kernel_supported("avx512") ? "avx512" : "c");
		cs_scorer_free(s);
		cs_cpu_mask(CS_CPU_AMX | CS_CPU_AVX512BF16);
		s = cs_scorer_new(w, b, 64, 4, 3, "auto", &err);
		ck_assert_str_eq(cs_scorer_kernel(s),
				 cs_scorer_kernel_supported("avx512") ? "avx512" : "c");
		cs_scorer_free(s);
		cs_cpu_mask(0);
		ck_assert_int_eq(cs_cpu_kernel(NULL), CS_KERNEL_AUTO);
	}
}
END_TEST

/* cs_topk over a score row: the same order (ties by id), exclusion stamps. */
START_TEST(test_topk_row)
{
	float sc[40];
	uint32_t excl[40] = { 0 }, ids[8];
	float vals[8];
	for (int j = 0; j < 40; j++)
		sc[j] = (float)(j % 5);
	excl[4] = excl[9] = 7;
	size_t n = cs_topk(sc, 40, 3, 4, excl, 7, ids, vals);
	ck_assert_uint_eq(n, 4);
	ck_assert_uint_eq(ids[0], 14);
	ck_assert_uint_eq(ids[1], 19);
	ck_assert_uint_eq(ids[3], 29);
	n = cs_topk(sc, 40, 3, 4, NULL, 0, ids, vals);
	ck_assert_uint_eq(ids[0], 4);
	ck_assert_uint_eq(ids[1], 9);
	n = cs_topk(sc, 5, 3, 8, NULL, 0, ids, vals);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(ids[0], 4);
	ck_assert_uint_eq(ids[1], 3);
}
END_TEST

/*
 * cs_scorer_rank against cs_rank_full over all the scores (cs_scorer_scores):
 * the same rank for every target, ties and seen items as cs_rank_full
 * counts them, on 1 to 3 threads, for each single-precision kernel.
 */
static void check_rank(size_t V, size_t C, size_t M, size_t first, int data, int seen,
		       uint64_t seed)
{
	cs_nn_rng r;
	cs_nn_rng_seed(&r, seed);
	float *w = malloc(V * C * sizeof *w), *b = malloc(V * sizeof *b);
	float *h = malloc(M * C * sizeof *h), *sc = malloc(V * sizeof *sc);
	for (size_t i = 0; i < V * C; i++)
		w[i] = data == DATA_QUARTERS ? quarter(&r) : 0.2f * normal(&r);
	for (size_t i = 0; i < M * C; i++)
		h[i] = data == DATA_QUARTERS ? quarter(&r) : normal(&r);
	for (size_t j = 0; j < V; j++)
		b[j] = data == DATA_QUARTERS ? quarter(&r) : 0.1f * normal(&r);
	/* some items twins of others: exact ties whatever the data */
	for (size_t j = first + 1; j < V; j += 7) {
		memcpy(w + j * C, w + (j - 1) * C, C * sizeof *w);
		b[j] = b[j - 1];
	}
	size_t *off = malloc((M + 1) * sizeof *off), *rank = malloc(M * sizeof *rank);
	uint32_t *items = malloc(M * 40 * sizeof *items), *target = malloc(M * sizeof *target);
	uint32_t *excl = calloc(V, sizeof *excl);
	off[0] = 0;
	for (size_t i = 0; i < M; i++) {
		size_t n = seen ? cs_nn_rng_next(&r) % 40 : 0;
		off[i + 1] = off[i] + n;
		for (size_t t = 0; t < n; t++)
			items[off[i] + t] = (uint32_t)(cs_nn_rng_next(&r) % V);
		/* targets anywhere; some among the seen items, some twins */
		target[i] = (uint32_t)(first + cs_nn_rng_next(&r) % (V - first));
		if (n && i % 3 == 0 && items[off[i]] >= first)
			target[i] = items[off[i]];
	}
	cs_error err = { 0 };
	int tried = 0;
	for (int ki = 0; ki < 2; ki++) {
		if (!cs_scorer_kernel_supported(kernels[ki]))
			continue;
		tried++;
		for (int threads = 1; threads <= 3; threads++) {
#ifdef _OPENMP
			omp_set_num_threads(threads);
#endif
			cs_scorer *s = cs_scorer_new(w, b, V, C, first, kernels[ki], &err);
			ck_assert_ptr_nonnull(s);
			ck_assert_int_eq(cs_scorer_rank(s, h, M, target, seen ? off : NULL, items,
							rank, &err), 0);
			for (size_t i = 0; i < M; i++) {
				uint32_t stamp = (uint32_t)(1 + i + M * (size_t)(threads + 4 * ki));
				for (size_t j = off[i]; seen && j < off[i + 1]; j++)
					if (items[j] != target[i])
						excl[items[j]] = stamp;
				cs_scorer_scores(s, h + i * C, sc);
				size_t want = cs_rank_full(sc, V, first, target[i],
							   seen ? excl : NULL, stamp);
				ck_assert_msg(rank[i] == want, "%s, %d threads, V %zu row %zu target "
					      "%u: rank %zu, expected %zu", kernels[ki], threads, V, i,
					      target[i], rank[i], want);
				ck_assert_float_eq(cs_scorer_score(s, h + i * C, target[i]),
						   sc[target[i]]);
			}
			cs_scorer_free(s);
		}
	}
	ck_assert_int_ge(tried, 1);
	if (cs_scorer_kernel_supported("bf16")) {
		cs_scorer *s = cs_scorer_new(w, b, V, C, first, "bf16", &err);
		ck_assert_int_eq(cs_scorer_rank(s, h, M, target, NULL, NULL, rank, &err), -1);
		ck_assert_int_eq(err.code, CS_ERR_USAGE);
		cs_scorer_free(s);
	}
	free(w);
	free(b);
	free(h);
	free(sc);
	free(off);
	free(rank);
	free(items);
	free(target);
	free(excl);
}

START_TEST(test_rank)
{
	check_rank(1000, 64, 33, CS_ITEM_FIRST, DATA_QUARTERS, 0, 71);
	check_rank(1000, 64, 33, CS_ITEM_FIRST, DATA_QUARTERS, 1, 72);
	check_rank(5000, 64, 17, CS_ITEM_FIRST, DATA_NORMAL, 1, 73);
	check_rank(777, 13, 5, 0, DATA_NORMAL, 0, 74);
	check_rank(40, 8, 9, CS_ITEM_FIRST, DATA_QUARTERS, 1, 75);
}
END_TEST

/*
 * cs_evaluate against the way it used to rank, over every score of each
 * history (cs_scorer_scores of the hidden states): cs_rank_full and
 * cs_rank_among, the same negatives drawn. Ties, [UNK] targets, seen
 * items and thread counts included; the metrics must be equal, not close.
 */
START_TEST(test_evaluate)
{
	cs_bert_config cfg;
	cs_bert_config_default(&cfg, 60);
	cfg.C = 8;
	cfg.NH = 2;
	cfg.FF = 16;
	cfg.P = 8;
	cs_error err;
	cs_bert *m = cs_bert_new(&cfg, 3, &err);
	ck_assert_ptr_nonnull(m);
	cs_bert_work *ws = cs_bert_work_new(&err);
	ck_assert_ptr_nonnull(ws);
	size_t V = cfg.V, C = cfg.C, N = 70;
	/* twin items: exact ties */
	for (size_t j = 10; j < 20; j++) {
		memcpy(m->params.wte + j * C, m->params.wte + (j + 20) * C, C * sizeof(float));
		m->params.out_b[j] = m->params.out_b[j + 20];
	}
	cs_nn_rng r;
	cs_nn_rng_seed(&r, 4);
	size_t off[71];
	uint32_t item[70 * 12], target[70];
	off[0] = 0;
	for (size_t i = 0; i < N; i++) {
		size_t n = 1 + cs_nn_rng_next(&r) % 11;
		for (size_t t = 0; t < n; t++)
			item[off[i] + t] = (uint32_t)(CS_ITEM_FIRST + cs_nn_rng_next(&r) % (V - 3));
		off[i + 1] = off[i] + n;
		target[i] = i % 9 == 0 ? item[off[i]] : i % 13 == 0 ? 2 /* [UNK] */
			    : (uint32_t)(CS_ITEM_FIRST + cs_nn_rng_next(&r) % (V - 3));
	}
	cs_dataset d = { .kind = CS_DATA_EVAL, .n = N, .off = off, .item = item,
			 .target = target };
	cs_scorer *sc = cs_scorer_new(m->params.wte, m->params.out_b, V, C, CS_ITEM_FIRST, "c",
				      &err);
	cs_batcher bt;
	ck_assert_int_eq(cs_batcher_init(&bt, &cfg, CS_DATA_EVAL, 1, &err), 0);
	float *score = malloc(V * sizeof *score);
	for (int v = 0; v < 4; v++) {
#ifdef _OPENMP
		omp_set_num_threads(1 + v % 3);
#endif
		cs_eval_opts o;
		cs_eval_defaults(&o);
		o.batch = v % 2 ? 16 : 256;
		o.exclude_seen = v >= 2;
		o.negatives = v == 3 ? 70 : 20; /* 70: more than there are to draw */
		o.popular = v != 1;
		cs_eval_result res;
		ck_assert_int_eq(cs_evaluate(m, ws, &d, &o, &res, &err), 0);
		/* the reference, history by history */
		cs_metrics full, samp;
		cs_metrics_init(&full, o.ks, o.nk);
		cs_metrics_init(&samp, o.ks, o.nk);
		double *w = calloc(V, sizeof *w);
		for (size_t i = 0; i < off[N]; i++)
			w[item[i]] += 1;
		for (size_t i = 0; i < N; i++)
			w[target[i]] += 1;
		cs_sampler *smp = cs_sampler_new(V, CS_ITEM_FIRST, o.popular ? w : NULL, &err);
		cs_nn_rng rng;
		cs_nn_rng_seed(&rng, o.seed);
		uint32_t *excl = calloc(V, sizeof *excl), stamp = 0, cand[71];
		uint64_t skipped = 0;
		for (size_t i = 0; i < N; i++) {
			const float *h;
			const cs_batch *b = cs_batcher_fill(&bt, &d, NULL, i, 1);
			ck_assert_int_eq(cs_bert_score_hidden(m, ws, b, &h, &err), 0);
			cs_scorer_scores(sc, h, score);
			uint32_t t = target[i];
			if (t < CS_ITEM_FIRST) {
				skipped++;
				continue;
			}
			stamp++;
			for (size_t j = off[i]; o.exclude_seen && j < off[i + 1]; j++)
				if (item[j] != t)
					excl[item[j]] = stamp;
			cs_metrics_add(&full, cs_rank_full(score, V, CS_ITEM_FIRST, t,
							   o.exclude_seen ? excl : NULL, stamp));
			stamp++;
			for (size_t j = off[i]; j < off[i + 1]; j++)
				excl[item[j]] = stamp;
			excl[t] = stamp;
			size_t k = cs_sampler_draw(smp, &rng, o.negatives, excl, stamp, cand);
			cs_metrics_add(&samp, cs_rank_among(score, t, cand, k));
		}
		ck_assert_uint_eq(res.skipped, skipped);
		ck_assert_uint_eq(res.full.n, full.n);
		ck_assert_uint_eq(res.sampled.n, samp.n);
		ck_assert_msg(res.full.mrr == full.mrr && res.sampled.mrr == samp.mrr,
			      "variant %d: MRR %.17g %.17g, expected %.17g %.17g", v, res.full.mrr,
			      res.sampled.mrr, full.mrr, samp.mrr);
		for (size_t i = 0; i < o.nk; i++) {
			ck_assert(res.full.hr[i] == full.hr[i] && res.full.ndcg[i] == full.ndcg[i]);
			ck_assert(res.sampled.hr[i] == samp.hr[i] && res.sampled.ndcg[i] == samp.ndcg[i]);
		}
		free(w);
		free(excl);
		cs_sampler_free(smp);
	}
	free(score);
	cs_scorer_free(sc);
	cs_batcher_free(&bt);
	cs_bert_work_free(ws);
	cs_bert_free(m);
}
END_TEST

/* cs_recommender on 1 to 3 threads against cs_bert_score and cs_topk,
 * one history at a time, with and without the history excluded. */
START_TEST(test_recommender)
{
	cs_bert_config cfg;
	cs_bert_config_default(&cfg, 300);
	cfg.C = 16;
	cfg.NH = 2;
	cfg.FF = 32;
	cfg.P = 8;
	cfg.init_range = 0.5f; /* scores far apart: the same items either way */
	cs_error err;
	cs_bert *m = cs_bert_new(&cfg, 5, &err);
	ck_assert_ptr_nonnull(m);
	cs_bert_work *ws = cs_bert_work_new(&err);
	ck_assert_ptr_nonnull(ws);
	cs_nn_rng r;
	cs_nn_rng_seed(&r, 9);
	size_t B = 11, k = 6, V = cfg.V;
	size_t off[12];
	uint32_t item[11 * 12];
	off[0] = 0;
	for (size_t i = 0; i < B; i++) { /* 0 to 11 items: some longer than P-1 */
		size_t n = i;
		for (size_t t = 0; t < n; t++)
			item[off[i] + t] = (uint32_t)(CS_ITEM_FIRST + cs_nn_rng_next(&r) % 40);
		off[i + 1] = off[i] + n;
	}
	cs_dataset d = { .kind = CS_DATA_EVAL, .n = B, .off = off, .item = item };
	uint32_t ids[11 * 6], rid[6], excl[300] = { 0 };
	float vals[11 * 6], rval[6];
	size_t n[11];
	cs_batcher bt;
	ck_assert_int_eq(cs_batcher_init(&bt, &cfg, CS_DATA_EVAL, 1, &err), 0);
	for (int ex = 0; ex < 2; ex++)
		for (int threads = 1; threads <= 3; threads++) {
#ifdef _OPENMP
			omp_set_num_threads(threads);
#endif
			cs_recommender *rc = cs_recommender_new(m, 8, NULL, 0, &err);
			ck_assert_ptr_nonnull(rc);
			ck_assert_int_eq(cs_recommender_run(rc, &d, 0, 8, k, ex, ids, vals, n, &err), 0);
			ck_assert_int_eq(cs_recommender_run(rc, &d, 8, 3, k, ex, ids + 8 * k,
							    vals + 8 * k, n + 8, &err), 0);
			ck_assert_int_eq(cs_recommender_run(rc, &d, 0, 9, k, ex, ids, vals, n, &err), -1);
			cs_recommender_free(rc);
			for (size_t i = 0; i < B; i++) {
				const float *sc;
				const cs_batch *b = cs_batcher_fill(&bt, &d, NULL, i, 1);
				ck_assert_int_eq(cs_bert_score(m, ws, b, &sc, &err), 0);
				uint32_t stamp = (uint32_t)(1 + i + 100 * (size_t)threads + 1000 * ex);
				for (size_t j = off[i]; j < off[i + 1]; j++)
					excl[item[j]] = stamp;
				size_t rn = cs_topk(sc, V, CS_ITEM_FIRST, k, ex ? excl : NULL, stamp,
						    rid, rval);
				ck_assert_uint_eq(n[i], rn);
				for (size_t j = 0; j < rn; j++) {
					ck_assert_uint_eq(ids[i * k + j], rid[j]);
					ck_assert_float_eq_tol(vals[i * k + j], rval[j], 1e-4f);
				}
			}
		}
	cs_batcher_free(&bt);
	cs_bert_work_free(ws);
	cs_bert_free(m);
}
END_TEST

/* cs_absmax: fabsf's maximum, at every length and alignment, signs,
 * zeros, subnormals and the largest floats included. */
START_TEST(test_absmax)
{
	float *x = calloc(200, sizeof *x);
	uint64_t r = 99;
	ck_assert(cs_absmax(x, 0) == 0.0f);
	for (int trial = 0; trial < 500; trial++) {
		r ^= r << 13, r ^= r >> 7, r ^= r << 17;
		size_t n = (size_t)(r % 150), off = (size_t)(r >> 30) % 5;
		float *v = x + off;
		for (size_t i = 0; i < n; i++) {
			r ^= r << 13, r ^= r >> 7, r ^= r << 17;
			int kind = (int)(r % 9);
			v[i] = kind == 0 ? -0.0f : kind == 1 ? 1e-40f * (r & 1 ? -1 : 1)
			     : kind == 2 && trial % 5 == 0 ? -FLT_MAX
			     : (float)((int64_t)r >> 20) * 1e-6f * (trial % 3 ? 1.0f : 1e30f);
		}
		float want = 0;
		for (size_t i = 0; i < n; i++)
			want = fabsf(v[i]) > want ? fabsf(v[i]) : want;
		float got = cs_absmax(v, n);
		ck_assert_msg(memcmp(&got, &want, sizeof got) == 0, "trial %d: %g, want %g", trial,
			      got, want);
	}
	free(x);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("score");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_ties);
	tcase_add_test(tc, test_one_row_calls);
	tcase_add_test(tc, test_exclude_seen);
	tcase_add_test(tc, test_normal);
	tcase_add_loop_test(tc, test_seeded, 0, 2);
	tcase_add_test(tc, test_close);
	tcase_add_test(tc, test_threads);
	tcase_add_loop_test(tc, test_choice, 0, 4);
	tcase_add_test(tc, test_topk_row);
	tcase_add_test(tc, test_recommender);
	tcase_add_test(tc, test_absmax);
	tcase_add_test(tc, test_rank);
	tcase_add_test(tc, test_evaluate);
	suite_add_tcase(s, tc);
	return check_run(s);
}
