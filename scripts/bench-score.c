/*
 * bench-score.c - the top-K of the output layer: the old way (all M x V
 * scores by cs_sgemm, then cs_topk row by row) against each kernel of
 * cs_scorer, interleaved in one run so that a busy machine slows all alike.
 *
 *   cc -O2 -std=c11 -D_GNU_SOURCE -iquote lib -o bench-score scripts/bench-score.c \
 *       libcs.a -fopenmp -lopenblas -lcsv -lzstd -lpthread -lm
 *   ./bench-score [MODEL [threads [rounds [M [k]]]]]
 *
 * MODEL: a cs-train model (its wte and out_b), or '-' for random weights
 * of Beauty's size (V 54545, C 64). The rows are random unit-variance
 * vectors (what LayerNorm hands the output layer). Prints the median time
 * of a batch of M rows [256] for each way over rounds [7], histories/s
 * (of this step alone), and the ratio to the old way; and checks that
 * every way found the same items.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "bertfile.h"
#include "blas.h"
#include "model.h"
#include "score.h"

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	const char *mpath = argc > 1 ? argv[1] : "-";
	int threads = argc > 2 ? atoi(argv[2]) : 0;
	int rounds = argc > 3 ? atoi(argv[3]) : 7;
	size_t M = argc > 4 ? (size_t)atol(argv[4]) : 256;
	size_t k = argc > 5 ? (size_t)atol(argv[5]) : 10;
	cs_error err;
	cs_blas_restart(argv, 0, &err);
	cs_blas_init(threads);
	cs_bert *m;
	if (strcmp(mpath, "-")) {
		uint64_t fp;
		m = cs_bert_load(mpath, &fp, NULL, &err);
	} else {
		cs_bert_config cfg;
		cs_bert_config_default(&cfg, 54545);
		m = cs_bert_new(&cfg, 1, &err);
	}
	if (!m) {
		fprintf(stderr, "bench-score: %s\n", err.msg);
		return 1;
	}
	size_t V = m->cfg.V, C = m->cfg.C;
	float *h = malloc(M * C * sizeof *h), *lg = malloc(M * V * sizeof *lg);
	uint32_t *ids[5], *ref = malloc(M * k * sizeof *ref);
	float *vals = malloc(M * k * sizeof *vals);
	size_t *n = malloc(M * sizeof *n);
	cs_nn_rng r;
	cs_nn_rng_seed(&r, 7);
	for (size_t i = 0; i < M * C; i++) { /* roughly N(0, 1) */
		float x = 0;
		for (int j = 0; j < 12; j++)
			x += cs_nn_rng_uniform(&r);
		h[i] = x - 6.0f;
	}
	const char *names[5] = { "sgemm+cs_topk", "c", "avx512", "bf16", "amx" };
	cs_scorer *sc[5] = { 0 };
	int nw = 1;
	for (int w = 1; w < 5; w++) {
		if (!cs_scorer_kernel_supported(names[w]))
			continue;
		if (!(sc[w] = cs_scorer_new(m->params.wte, m->params.out_b, V, C,
					    CS_ITEM_FIRST, names[w], &err))) {
			fprintf(stderr, "bench-score: %s\n", err.msg);
			return 1;
		}
		nw = w + 1;
	}
	double *t = calloc((size_t)rounds * 5, sizeof *t);
	for (int w = 0; w < 5; w++)
		ids[w] = malloc(M * k * sizeof *ids[w]);
	for (int rd = 0; rd < rounds; rd++)
		for (int w = 0; w < nw; w++) {
			if (w && !sc[w])
				continue;
			/* the portable kernel is slow: time it on a few rounds only */
			if (w == 1 && rd >= 2)
				continue;
			double t0 = cs_now();
			if (w == 0) {
				for (size_t i = 0; i < M; i++)
					memcpy(lg + i * V, m->params.out_b, V * sizeof *lg);
				cs_sgemm(0, 1, M, V, C, 1.0f, h, C, m->params.wte, C, 1.0f, lg, V);
				#pragma omp parallel for schedule(static)
				for (size_t i = 0; i < M; i++)
					n[i] = cs_topk(lg + i * V, V, CS_ITEM_FIRST, k, NULL, 0,
						       ids[0] + i * k, vals + i * k);
			} else if (cs_scorer_topk(sc[w], h, M, k, NULL, NULL, ids[w], vals, n,
						  &err) < 0) {
				fprintf(stderr, "bench-score: %s\n", err.msg);
				return 1;
			}
			t[w * rounds + rd] = cs_now() - t0;
		}
	memcpy(ref, ids[0], M * k * sizeof *ref);
	int threads_used = 1;
#ifdef _OPENMP
	threads_used = omp_get_max_threads();
#endif
	printf("top-%zu of %zu rows over %zu items, C %zu, %d threads, medians of %d rounds\n",
	       k, M, V, C, threads_used, rounds);
	double base = 0;
	for (int w = 0; w < nw; w++) {
		if (w && !sc[w])
			continue;
		int nr = w == 1 && rounds > 2 ? 2 : rounds;
		qsort(t + w * rounds, (size_t)nr, sizeof *t, cmp_d);
		double med = t[w * rounds + nr / 2];
		if (w == 0)
			base = med;
		size_t diff = 0;
		for (size_t i = 0; i < M * k; i++)
			diff += ids[w][i] != ref[i];
		printf("  %-14s %8.2f ms  %8.0f rows/s  x%.2f  %s\n", names[w], 1e3 * med,
		       M / med, base / med, diff ? "DIFFERENT ITEMS" : "same items");
	}
	for (int w = 0; w < 5; w++) {
		cs_scorer_free(sc[w]);
		free(ids[w]);
	}
	free(t);
	free(h);
	free(lg);
	free(ref);
	free(vals);
	free(n);
	cs_bert_free(m);
	return 0;
}
