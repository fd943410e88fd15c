/*
 * bench-model.c - sgemm throughput and BERT4Rec training-step time.
 *
 *   cc -O2 -std=c11 -D_GNU_SOURCE -iquote lib -o bench-model scripts/bench-model.c \
 *       libcs.a -lopenblas -lcsv -lzstd -lpthread -lm
 *   ./bench-model [threads [mask-prob [long] [causal]]]
 *   OPENBLAS_CORETYPE=Prescott ./bench-model 2   # the misdetected case
 *   ./bench-model 2 0.2 long                     # long histories, Cloze
 *   ./bench-model 2 1 long causal                # long histories, SASRec
 *
 * Prints the OpenBLAS core, GFLOP/s of cs_sgemm on the model's shapes, and
 * the time of forward, backward and AdamW for a batch of 128 Beauty-like
 * sequences (lengths geometric around 9, at most 50; V = 54545, C = 64,
 * L = 2, 2 heads; mask-prob of the positions masked [0.6, as the paper's
 * Beauty setup], at least one per sequence, the default dropout on).
 * "long": the long-history shape of bench-train.sh instead (lengths
 * uniform in 120..200, at most 200, V = 3603, at most 40 masked a
 * sequence, as BERT4Rec's ML-1M setup). "causal": a causal model
 * (SASRec), every position a target at mask-prob 1 as cs-mask next's.
 * Then the attention layer alone on the batch's shape, forward and
 * backward, with its share of the step's matrix-product FLOP.
 * Beside wall time it prints the process CPU time, which is the better
 * figure with one thread on a busy machine (with more, OpenBLAS's
 * spinning threads count too).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blas.h"
#include "model.h"

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void bench_sgemm(const char *what, int ta, int tb, size_t M, size_t N,
			size_t K)
{
	float *A = malloc(M * K * sizeof *A), *B = malloc(K * N * sizeof *B);
	float *C = malloc(M * N * sizeof *C);
	for (size_t i = 0; i < M * K; i++)
		A[i] = (float)(i % 7) * 0.1f;
	for (size_t i = 0; i < K * N; i++)
		B[i] = (float)(i % 5) * 0.1f;
	size_t lda = ta ? M : K, ldb = tb ? K : N;
	int reps = 0;
	cs_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, N);
	double t0 = cs_now(), c0 = cpu_now(), t;
	do {
		cs_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, N);
		reps++;
	} while ((t = cs_now() - t0) < 1.0);
	double c = cpu_now() - c0, fl = 2.0 * M * N * K * reps / 1e9;
	printf("  %-30s %5zu x %5zu x %5zu %8.2f ms %6.1f GFLOP/s "
	       "(cpu %6.1f)\n", what, M, K, N, 1e3 * t / reps, fl / t,
	       fl / c);
	free(A);
	free(B);
	free(C);
}

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 0;
	double mprob = argc > 2 ? atof(argv[2]) : 0.6;
	int lng = 0, causal = 0;
	for (int i = 3; i < argc; i++) {
		if (strcmp(argv[i], "long") == 0)
			lng = 1;
		else if (strcmp(argv[i], "causal") == 0)
			causal = 1;
		else {
			fprintf(stderr, "usage: bench-model [threads [mask-prob [long] [causal]]]\n");
			return 2;
		}
	}
	const char *core;
	cs_error err;
	if (cs_blas_restart(argv, CS_BLAS_OMP_PASSIVE, &err) < 0)
		fprintf(stderr, "bench-model: %s\n", err.msg);
	cs_blas_init(threads);
	core = cs_blas_corename();
	printf("OpenBLAS core %s, %d threads, OPENBLAS_CORETYPE=%s\n", core,
	       cs_blas_threads(), getenv("OPENBLAS_CORETYPE") ?
	       getenv("OPENBLAS_CORETYPE") : "(unset)");

	size_t V = lng ? 3603 : 54545, Bn = 128, maxpred = lng ? 40 : 30;
	if (!getenv("BENCH_NO_SGEMM") && !lng) {
	printf("sgemm (M x K x N):\n");
	bench_sgemm("fc forward (128*9 tokens)", 0, 1, 1152, 256, 64);
	bench_sgemm("qkv forward", 0, 1, 1152, 192, 64);
	bench_sgemm("fc dW (256x1152 @ 1152x64)", 1, 0, 256, 64, 1152);
	bench_sgemm("output scores, M=25", 0, 1, 25, V, 64);
	bench_sgemm("output forward, M=690", 0, 1, 690, V, 64);
	bench_sgemm("output dh (690xV @ Vx64)", 0, 0, 690, 64, V);
	bench_sgemm("output dwte (Vx690 @ 690x64)", 1, 0, V, 64, 690);
	}

	cs_bert_config cfg;
	cs_bert_config_default(&cfg, V);
	if (lng)
		cfg.P = 200;
	cfg.causal = causal;
	cs_bert *m = cs_bert_new(&cfg, 1, &err);
	cs_bert_work *ws = m ? cs_bert_work_new(&err) : NULL;
	cs_bert_train *ts = ws ? cs_bert_train_new(m, 1, &err) : NULL;
	if (!ts) {
		fprintf(stderr, "bench-model: %s\n", err.msg);
		return 1;
	}
	cs_adamw o;
	cs_adamw_default(&o);
	cs_nn_rng r;
	cs_nn_rng_seed(&r, 3);
	size_t *off = malloc((Bn + 1) * sizeof *off);
	uint32_t *tok = malloc(Bn * cfg.P * sizeof *tok);
	uint32_t *pos = malloc(Bn * cfg.P * sizeof *pos);
	uint32_t *mtgt = malloc(Bn * cfg.P * sizeof *mtgt);
	size_t *mpos = malloc(Bn * cfg.P * sizeof *mpos);
	size_t N = 0, M = 0;
	off[0] = 0;
	for (size_t b = 0; b < Bn; b++) {
		size_t T = 2; /* 2 + geometric with mean 7: mean about 9 */
		if (lng)
			T = 120 + cs_nn_rng_next(&r) % 81;
		else
			while (T < cfg.P && cs_nn_rng_uniform(&r) > 1.0f / 8.0f)
				T++;
		size_t first = M;
		for (size_t t = 0; t < T; t++, N++) {
			tok[N] = (uint32_t)(CS_ITEM_FIRST +
					    cs_nn_rng_next(&r) % (V - 3));
			pos[N] = (uint32_t)t;
			if (causal) { /* next item: every position, its successor */
				mpos[M] = N;
				mtgt[M++] = (uint32_t)(CS_ITEM_FIRST +
						       cs_nn_rng_next(&r) % (V - 3));
			} else if ((cs_nn_rng_uniform(&r) < mprob && M - first < maxpred) ||
				   (t == T - 1 && M == first)) {
				mpos[M] = N;
				mtgt[M++] = tok[N];
				tok[N] = CS_ITEM_MASK;
			}
		}
		off[b + 1] = N;
	}
	cs_batch bt = {.B = Bn, .off = off, .tok = tok, .pos = pos, .M = M,
		       .mpos = mpos, .mtgt = mtgt};
	printf("training step: B=%zu N=%zu (%.2f per sequence) M=%zu V=%zu "
	       "C=%zu L=%zu, %zu parameters\n", Bn, N, (double)N / Bn, M, V,
	       cfg.C, cfg.L, m->nparams);
	double tf = 0, tb = 0, tu = 0, tc = 0;
	int steps = 0, warm = 2;
	float loss = 0;
	for (int s = 0; s < 20 + warm; s++) {
		double c0 = cpu_now();
		double t0 = cs_now();
		if (cs_bert_forward(m, ws, ts, &bt, 1, &loss, &err) < 0) {
			fprintf(stderr, "bench-model: %s\n", err.msg);
			return 1;
		}
		double t1 = cs_now();
		cs_bert_zero_grad(m, ts);
		cs_bert_backward(m, ws, ts, &err);
		double t2 = cs_now();
		cs_bert_update(m, ts, &o, NULL);
		double t3 = cs_now();
		if (s >= warm) {
			tc += cpu_now() - c0;
			tf += t1 - t0;
			tb += t2 - t1;
			tu += t3 - t2;
			steps++;
		}
	}
	printf("  forward %.1f ms, backward %.1f ms, AdamW %.1f ms: "
	       "%.1f ms per step (cpu %.1f ms; loss %.3f)\n", 1e3 * tf / steps,
	       1e3 * tb / steps, 1e3 * tu / steps,
	       1e3 * (tf + tb + tu) / steps, 1e3 * tc / steps, loss);
	/* the encoder alone, and scoring the last position of each sequence */
	const float *h;
	double t0 = cs_now();
	for (int s = 0; s < 20; s++)
		cs_bert_encode(m, ws, &bt, &h, &err);
	double te = (cs_now() - t0) / 20;
	size_t *last = malloc(Bn * sizeof *last);
	const float *scores;
	for (size_t b = 0; b < Bn; b++)
		last[b] = off[b + 1] - 1;
	cs_batch sb = {.B = Bn, .off = off, .tok = tok, .pos = pos, .M = Bn,
		       .mpos = last};
	t0 = cs_now();
	for (int s = 0; s < 5; s++)
		cs_bert_score(m, ws, &sb, &scores, &err);
	printf("  encoder forward (eval) %.2f ms; scores of %zu sequences "
	       "over all items %.1f ms\n", 1e3 * te, Bn,
	       1e3 * (cs_now() - t0) / 5);
	/* the attention layer alone, on this batch's shape */
	double sq = 0;
	for (size_t b = 0; b < Bn; b++)
		sq += (double)(off[b + 1] - off[b]) * (off[b + 1] - off[b]);
	size_t C = cfg.C, A = cs_attention_size(off, Bn, cfg.NH);
	float *qkv = malloc(N * 3 * C * sizeof *qkv), *dqkv = calloc(N * 3 * C, sizeof *dqkv);
	float *out = malloc(N * C * sizeof *out), *dout = malloc(N * C * sizeof *dout);
	float *att = malloc(4 * A * sizeof *att);
	for (size_t i = 0; i < N * 3 * C; i++)
		qkv[i] = cs_nn_rng_uniform(&r) - 0.5f;
	for (size_t i = 0; i < N * C; i++)
		dout[i] = cs_nn_rng_uniform(&r) - 0.5f;
	double ta = 0, tab = 0, ca = 0, cab = 0;
	for (int s = 0; s < 10 + 1; s++) {
		cs_nn_rng_seed(&r, (uint64_t)s);
		double c0 = cpu_now();
		t0 = cs_now();
		cs_attention_forward(out, att, att + A, att + 2 * A, qkv, off, Bn, C, cfg.NH,
				     causal, cfg.attn_dropout, &r);
		double t1 = cs_now(), c1 = cpu_now();
		cs_attention_backward(dqkv, att + 3 * A, dout, qkv, att, att + A, att + 2 * A,
				      off, Bn, C, cfg.NH, causal);
		if (s) {
			ta += t1 - t0;
			tab += cs_now() - t1;
			ca += c1 - c0;
			cab += cpu_now() - c1;
		}
	}
	ta /= 10;
	tab /= 10;
	/* matrix-product FLOP of a step, as bench_bert4rec_torch.py counts them */
	double FF = (double)cfg.FF, fa = 4.0 * C * sq * cfg.L;
	double fstep = 3 * (cfg.L * (2.0 * N * C * (4.0 * C + 2 * FF)) + fa + 2.0 * M * C * C +
			    2.0 * M * C * V);
	printf("  attention layer alone: forward %.2f ms, backward %.2f ms (cpu %.2f, %.2f; x %zu "
	       "layers: %.0f%% of the step); %.1f GFLOP/s on its products%s\n", 1e3 * ta,
	       1e3 * tab, 1e3 * ca / 10, 1e3 * cab / 10,
	       cfg.L, 100 * cfg.L * (ta + tab) / ((tf + tb + tu) / steps),
	       3 * fa / cfg.L / (ta + tab) / 1e9 / (causal ? 2 : 1),
	       causal ? " (the lower triangle's)" : "");
	printf("  step: %.2f GFLOP of matrix products, %.1f GFLOP/s\n", fstep / 1e9,
	       fstep / 1e9 / ((tf + tb + tu) / steps));
	free(qkv);
	free(dqkv);
	free(out);
	free(dout);
	free(att);
	free(last);
	cs_bert_train_free(ts);
	cs_bert_work_free(ws);
	cs_bert_free(m);
	free(off);
	free(tok);
	free(pos);
	free(mtgt);
	free(mpos);
	return 0;
}
