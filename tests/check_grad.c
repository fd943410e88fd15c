/*
 * check_grad.c - finite-difference checks of every backward pass of
 * lib/nn.c and of the whole model, plus cs_sgemm against the reference.
 *
 * Each check perturbs every input element (or a random sample of a large
 * input) by +-eps, evaluates a scalar objective (sum of out * R for a
 * fixed random R, accumulated in double; the loss itself for the loss and
 * the model) and compares the central difference with the analytic
 * gradient: |a - n| <= atol + rtol max(|a|, |n|). The layers compute in
 * float, so eps and the tolerances are per op.
 */
#include <check.h>
#include "check_run.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "blas.h"
#include <omp.h>
#include "amx.h"
#include "cpu.h"
#include "model.h"
#include "nn.h"
#include "sampled.h"
#include "optim.h"

static cs_nn_rng rng;

/* Every test buffer, freed by free_all at the end of a test. */
static void *bufs[256];
static size_t nbufs;

static void *keep(void *p)
{
	ck_assert_ptr_nonnull(p);
	ck_assert(nbufs < sizeof bufs / sizeof bufs[0]);
	return bufs[nbufs++] = p;
}

static void free_all(void)
{
	while (nbufs)
		free(bufs[--nbufs]);
}

static float *randv(size_t n, float scale)
{
	float *x = keep(malloc(n * sizeof *x));
	for (size_t i = 0; i < n; i++)
		x[i] = (2.0f * cs_nn_rng_uniform(&rng) - 1.0f) * scale;
	return x;
}

static float *zerov(size_t n)
{
	return keep(calloc(n ? n : 1, sizeof(float)));
}

static double dot(const float *a, const float *b, size_t n)
{
	double s = 0.0;
	for (size_t i = 0; i < n; i++)
		s += (double)a[i] * b[i];
	return s;
}

typedef double (*objective)(void *ctx);

/*
 * Compare grad (n) with central differences of f over x (n); at most
 * maxn elements, a random sample if n is larger. Returns the number of
 * mismatches, printing the worst.
 */
static int fd_check(const char *what, objective f, void *ctx, float *x,
		    const float *grad, size_t n, float eps, double rtol,
		    double atol, size_t maxn)
{
	int bad = 0;
	double worst = 0.0;
	size_t wi = 0;
	double wa = 0, wn = 0;
	for (size_t k = 0; k < n && k < maxn; k++) {
		size_t i = n <= maxn ? k : cs_nn_rng_next(&rng) % n;
		float x0 = x[i];
		x[i] = x0 + eps;
		double hp = x[i];
		double fp = f(ctx);
		x[i] = x0 - eps;
		double hm = x[i];
		double fm = f(ctx);
		x[i] = x0;
		double num = (fp - fm) / (hp - hm), an = grad[i];
		double err = fabs(an - num);
		double tol = atol + rtol * fmax(fabs(an), fabs(num));
		if (err > tol)
			bad++;
		if (err / tol > worst) {
			worst = err / tol;
			wi = i;
			wa = an;
			wn = num;
		}
	}
	if (bad || getenv("CS_GRAD_VERBOSE"))
		fprintf(stderr, "%s: %d bad of %zu; worst [%zu] analytic %.6g "
			"numeric %.6g (err/tol %.3g)\n", what, bad,
			n < maxn ? n : maxn, wi, wa, wn, worst);
	f(ctx); /* leave the forward state as it was */
	return bad;
}

/* ------------------------------------------------------------ sgemm */

START_TEST(test_sgemm)
{
	size_t M = 7, N = 5, K = 9, pad = 3;
	cs_nn_rng_seed(&rng, 1);
	for (int ta = 0; ta < 2; ta++)
		for (int tb = 0; tb < 2; tb++) {
			size_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad;
			size_t ldc = N + pad;
			float *A = randv((ta ? K : M) * lda, 1.0f);
			float *B = randv((tb ? N : K) * ldb, 1.0f);
			float *C1 = randv(M * ldc, 1.0f);
			float *C2 = keep(malloc(M * ldc * sizeof *C2));
			memcpy(C2, C1, M * ldc * sizeof *C2);
			cs_sgemm(ta, tb, M, N, K, 0.7f, A, lda, B, ldb, 0.3f,
				 C1, ldc);
			cs_sgemm_ref(ta, tb, M, N, K, 0.7f, A, lda, B, ldb,
				     0.3f, C2, ldc);
			for (size_t i = 0; i < M; i++)
				for (size_t j = 0; j < ldc; j++)
					ck_assert_msg(fabsf(C1[i * ldc + j] -
							    C2[i * ldc + j]) <
						      1e-5f, "ta %d tb %d [%zu,%zu]",
						      ta, tb, i, j);
		}
	free_all();
}
END_TEST

/*
 * OpenBLAS's kernel by what the CPU can do: SkylakeX for AVX-512 F, BW,
 * VL and DQ wherever OpenBLAS runs a kernel without AVX-512 (its own
 * choice or OPENBLAS_CORETYPE's); never without them (one missing is
 * enough), never over CS_BLAS_REEXEC. In place where OpenBLAS can change
 * so; a restart where it cannot, or for libgomp's wait policy, which only
 * the programs that ask for it get.
 */
START_TEST(test_blas_plan)
{
	unsigned z5 = CS_CPU_AVX2 | CS_CPU_FMA | CS_CPU_AVX512 | CS_CPU_AVX512BF16;
	int P = CS_BLAS_OMP_PASSIVE;
	cs_blas_plan p = cs_blas_plan_for(z5, "Haswell", NULL, "PASSIVE", "4", P, 0);
	ck_assert_str_eq(p.coretype, "SkylakeX");
	ck_assert(p.restart && !p.idle && !p.omp_idle && !p.in_place);
	p = cs_blas_plan_for(z5, "Haswell", NULL, "PASSIVE", "4", P, 1);
	ck_assert_str_eq(p.coretype, "SkylakeX");
	ck_assert(!p.restart && p.in_place && !p.idle);
	const char *weak[] = { "Prescott", "prescott", "Zen", "Haswell", "SandyBridge", "unknown", NULL };
	for (int i = 0; i < 7; i++)
		ck_assert_ptr_nonnull(cs_blas_plan_for(z5, weak[i], NULL, "P", "4", P, 0).coretype);
	const char *good[] = { "SkylakeX", "skylakex", "Cooperlake", "SapphireRapids" };
	for (int i = 0; i < 4; i++) {
		p = cs_blas_plan_for(z5, good[i], NULL, "P", "4", P, 0);
		ck_assert_ptr_null(p.coretype);
		ck_assert(!p.restart && !p.in_place);
	}
	/* the fallback: any AVX-512 bit missing keeps OpenBLAS's kernel */
	unsigned bits[] = { CS_CPU_AVX512F, CS_CPU_AVX512BW, CS_CPU_AVX512VL, CS_CPU_AVX512DQ };
	for (int i = 0; i < 4; i++)
		ck_assert_ptr_null(cs_blas_plan_for(z5 & ~bits[i], "Haswell", NULL, "P", "4", P, 1).coretype);
	for (int can = 0; can < 2; can++) {
		p = cs_blas_plan_for(z5, "Haswell", "0", NULL, NULL, P, can);
		ck_assert(!p.restart && !p.coretype && !p.idle && !p.omp_idle && !p.in_place);
	}
	/* the idle settings: OpenBLAS's in place if it can; libgomp's by a restart */
	p = cs_blas_plan_for(CS_CPU_AVX2, "Haswell", NULL, "P", NULL, P, 0);
	ck_assert(p.restart && p.idle && !p.omp_idle && !p.coretype);
	p = cs_blas_plan_for(CS_CPU_AVX2, "Haswell", NULL, "P", NULL, P, 1);
	ck_assert(!p.restart && p.in_place && p.idle && !p.coretype);
	p = cs_blas_plan_for(CS_CPU_AVX2, "Haswell", NULL, NULL, "4", P, 1);
	ck_assert(p.restart && p.omp_idle && !p.idle && !p.in_place);
	p = cs_blas_plan_for(z5, "Haswell", NULL, NULL, NULL, P, 1);
	ck_assert(p.restart && p.omp_idle && p.idle && p.coretype && !p.in_place);
	/* a program that does not ask for libgomp's: never restarted when OpenBLAS can change */
	p = cs_blas_plan_for(z5, "Haswell", NULL, NULL, NULL, 0, 1);
	ck_assert(!p.restart && p.in_place && p.idle && !p.omp_idle);
	ck_assert_str_eq(p.coretype, "SkylakeX");
	p = cs_blas_plan_for(z5, "Haswell", NULL, NULL, NULL, 0, 0);
	ck_assert(p.restart && !p.in_place && !p.omp_idle);
	cs_blas_init(1);
	ck_assert_int_eq(cs_blas_threads(), 1);
	free_all();
}
END_TEST

/* a product of a shape that OpenBLAS threads, against the reference */
static void check_big_sgemm(const char *what)
{
	size_t M = 300, N = 200, K = 64;
	float *A = randv(M * K, 1.0f), *B = randv(K * N, 1.0f);
	float *C1 = keep(malloc(M * N * sizeof *C1)), *C2 = keep(malloc(M * N * sizeof *C2));
	cs_sgemm(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C1, N);
	cs_sgemm_ref(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C2, N);
	for (size_t i = 0; i < M * N; i++)
		ck_assert_msg(fabsf(C1[i] - C2[i]) < 1e-4f, "%s [%zu] %g %g", what, i, C1[i], C2[i]);
}

/*
 * OpenBLAS changed in place: another kernel table and a new thread pool,
 * products still right on two threads, then back. Prescott's kernels run
 * on any x86-64. A build without the functions must refuse and change
 * nothing (the programs then restart instead).
 */
START_TEST(test_blas_switch)
{
	char was[64];
	cs_error err;
	cs_nn_rng_seed(&rng, 3);
	unsetenv("OPENBLAS_THREAD_TIMEOUT"); /* this test's process only: set below */
	snprintf(was, sizeof was, "%s", cs_blas_corename());
	cs_blas_init(2);
	int threads = cs_blas_threads(); /* 2, unless OpenBLAS caps it at the cores */
	check_big_sgemm("as loaded");
	if (!cs_blas_can_switch("Prescott")) {
		fprintf(stderr, "check_grad: this OpenBLAS (%s) cannot change in place\n", was);
		ck_assert_int_eq(cs_blas_switch("Prescott", 1, &err), -1);
		ck_assert_str_eq(cs_blas_corename(), was);
		free_all();
		return;
	}
	ck_assert(!cs_blas_can_switch("NoSuchCore"));
	ck_assert_int_eq(cs_blas_switch("NoSuchCore", 0, &err), -1);
	ck_assert_str_eq(cs_blas_corename(), was);
	ck_assert_int_eq(cs_blas_switch("Prescott", 1, &err), 0);
	ck_assert_str_eq(cs_blas_corename(), "Prescott");
	ck_assert_str_eq(getenv("OPENBLAS_THREAD_TIMEOUT"), "4");
	cs_blas_init(2);
	ck_assert_int_eq(cs_blas_threads(), threads);
	check_big_sgemm("Prescott");
	char buf[128];
	if (strcasecmp(was, "Prescott") != 0) {
		ck_assert_ptr_nonnull(strstr(cs_blas_core_origin(buf, sizeof buf), was));
		ck_assert_int_eq(cs_blas_switch(was, 0, &err), 0);
		ck_assert_str_eq(cs_blas_corename(), was);
		ck_assert_ptr_null(strstr(cs_blas_core_origin(buf, sizeof buf), "in place of"));
	}
	ck_assert_int_eq(cs_blas_switch(NULL, 1, &err), 0); /* the threads alone */
	check_big_sgemm("back");
	free_all();
}
END_TEST

/* ------------------------------------------------------------ the checker */

struct lin_ctx {
	float *out, *inp, *w, *b, *R;
	size_t N, C, OC;
};

static double lin_obj(void *p)
{
	struct lin_ctx *c = p;
	cs_linear_forward(c->out, c->inp, c->w, c->b, c->N, c->C, c->OC);
	return dot(c->out, c->R, c->N * c->OC);
}

/* _i 1: 37 outputs, two vector blocks of the bias's sums and a tail */
START_TEST(test_linear)
{
	struct lin_ctx c = {.N = 5, .C = 7, .OC = _i ? 37 : 6};
	cs_nn_rng_seed(&rng, 2);
	c.inp = randv(c.N * c.C, 1.0f);
	c.w = randv(c.OC * c.C, 1.0f);
	c.b = randv(c.OC, 1.0f);
	c.R = randv(c.N * c.OC, 1.0f);
	c.out = zerov(c.N * c.OC);
	float *dinp = zerov(c.N * c.C), *dw = zerov(c.OC * c.C);
	float *db = zerov(c.OC);
	lin_obj(&c);
	cs_linear_backward(dinp, dw, db, c.R, c.inp, c.w, c.N, c.C, c.OC);
	int bad = fd_check("linear dinp", lin_obj, &c, c.inp, dinp,
			   c.N * c.C, 1e-2f, 1e-3, 1e-4, 10000);
	bad += fd_check("linear dw", lin_obj, &c, c.w, dw, c.OC * c.C, 1e-2f,
			1e-3, 1e-4, 10000);
	bad += fd_check("linear db", lin_obj, &c, c.b, db, c.OC, 1e-2f, 1e-3,
			1e-4, 10000);
	/* the _set form writes dinp, whatever it held */
	float *dinp2 = randv(c.N * c.C, 5.0f);
	cs_linear_backward_set(dinp2, NULL, NULL, c.R, c.inp, c.w, c.N, c.C, c.OC);
	bad += fd_check("linear dinp (set)", lin_obj, &c, c.inp, dinp2,
			c.N * c.C, 1e-2f, 1e-3, 1e-4, 10000);
	ck_assert_int_eq(bad, 0);

	/* the checker itself must catch a wrong gradient */
	dw[3] *= 1.05f;
	ck_assert_int_ne(fd_check("linear dw (corrupted on purpose)",
				  lin_obj, &c, c.w, dw, c.OC * c.C, 1e-2f,
				  1e-3, 1e-4, 10000), 0);
	free_all();
}
END_TEST

/* ------------------------------------------------------------ embedding */

struct emb_ctx {
	float *out, *wte, *wpe, *R;
	uint32_t *tok, *pos;
	size_t N, C;
};

static double emb_obj(void *p)
{
	struct emb_ctx *c = p;
	cs_embed_forward(c->out, c->tok, c->pos, c->wte, c->wpe, c->N, c->C);
	return dot(c->out, c->R, c->N * c->C);
}

START_TEST(test_embed)
{
	uint32_t tok[] = {3, 5, 3, 0, 6, 5, 3};
	uint32_t pos[] = {0, 1, 2, 0, 1, 0, 3};
	size_t V = 7, P = 4;
	struct emb_ctx c = {.tok = tok, .pos = pos, .N = 7, .C = 5};
	cs_nn_rng_seed(&rng, 3);
	c.wte = randv(V * c.C, 1.0f);
	c.wpe = randv(P * c.C, 1.0f);
	c.R = randv(c.N * c.C, 1.0f);
	c.out = zerov(c.N * c.C);
	float *dwte = zerov(V * c.C), *dwpe = zerov(P * c.C);
	emb_obj(&c);
	cs_embed_backward(dwte, dwpe, c.R, tok, pos, c.N, c.C);
	int bad = fd_check("embed dwte", emb_obj, &c, c.wte, dwte, V * c.C,
			   1e-2f, 1e-3, 1e-4, 10000);
	bad += fd_check("embed dwpe", emb_obj, &c, c.wpe, dwpe, P * c.C, 1e-2f,
			1e-3, 1e-4, 10000);
	ck_assert_int_eq(bad, 0);
	free_all();
}
END_TEST

/* ------------------------------------------------------------ layernorm */

struct ln_ctx {
	float *out, *mean, *rstd, *inp, *w, *b, *R;
	size_t N, C;
};

static double ln_obj(void *p)
{
	struct ln_ctx *c = p;
	cs_layernorm_forward(c->out, c->mean, c->rstd, c->inp, c->w, c->b,
			     c->N, c->C);
	return dot(c->out, c->R, c->N * c->C);
}

/* _i 1: C 37, the vector loops and a tail */
START_TEST(test_layernorm)
{
	struct ln_ctx c = {.N = 4, .C = _i ? 37 : 9};
	cs_nn_rng_seed(&rng, 4);
	c.inp = randv(c.N * c.C, 2.0f);
	c.w = randv(c.C, 1.0f);
	c.b = randv(c.C, 1.0f);
	c.R = randv(c.N * c.C, 1.0f);
	c.out = zerov(c.N * c.C);
	c.mean = zerov(c.N);
	c.rstd = zerov(c.N);
	float *dinp = zerov(c.N * c.C), *dw = zerov(c.C), *db = zerov(c.C);
	ln_obj(&c);
	cs_layernorm_backward(dinp, dw, db, c.R, c.inp, c.w, c.mean, c.rstd,
			      c.N, c.C);
	int bad = fd_check("layernorm dinp", ln_obj, &c, c.inp, dinp,
			   c.N * c.C, 1e-3f, 1e-2, 1e-3, 10000);
	bad += fd_check("layernorm dw", ln_obj, &c, c.w, dw, c.C, 1e-2f, 1e-3,
			1e-4, 10000);
	bad += fd_check("layernorm db", ln_obj, &c, c.b, db, c.C, 1e-2f, 1e-3,
			1e-4, 10000);
	ck_assert_int_eq(bad, 0);
	/* dw and db are summed in row order, bit for bit as the plain loop */
	float *dw2 = zerov(c.C), *db2 = zerov(c.C);
	for (size_t i = 0; i < c.N; i++)
		for (size_t k = 0; k < c.C; k++) {
			dw2[k] += (c.inp[i * c.C + k] - c.mean[i]) * c.rstd[i] * c.R[i * c.C + k];
			db2[k] += c.R[i * c.C + k];
		}
	memset(dw, 0, c.C * sizeof *dw);
	memset(db, 0, c.C * sizeof *db);
	cs_layernorm_backward(dinp, dw, db, c.R, c.inp, c.w, c.mean, c.rstd,
			      c.N, c.C);
	ck_assert_mem_eq(dw, dw2, c.C * sizeof *dw);
	ck_assert_mem_eq(db, db2, c.C * sizeof *db);
	free_all();
}
END_TEST

/* ------------------------------------------------------------ attention */

struct att_ctx {
	float *out, *att, *attd, *attm, *qkv, *R;
	size_t *off, B, C, NH, N, A;
	float p;
	int causal;
};

static double att_obj(void *p)
{
	struct att_ctx *c = p;
	cs_nn_rng r;
	cs_nn_rng_seed(&r, 99); /* the same dropout mask every time */
	cs_attention_forward(c->out, c->att, c->attd, c->attm, c->qkv, c->off,
			     c->B, c->C, c->NH, c->causal, c->p, c->p > 0 ? &r : NULL);
	return dot(c->out, c->R, c->N * c->C);
}

static void attention_case(float p, int causal, int *bad)
{
	size_t off[] = {0, 1, 5, 8, 14};
	struct att_ctx c = {.off = off, .B = 4, .C = 8, .NH = 2, .N = 14,
			    .p = p, .causal = causal};
	c.A = cs_attention_size(off, c.B, c.NH);
	ck_assert_uint_eq(c.A, 2 * (1 + 16 + 9 + 36));
	c.qkv = randv(c.N * 3 * c.C, 1.0f);
	c.R = randv(c.N * c.C, 1.0f);
	c.out = zerov(c.N * c.C);
	c.att = zerov(c.A);
	c.attd = zerov(c.A);
	c.attm = zerov(c.A);
	float *dqkv = randv(c.N * 3 * c.C, 5.0f), *datt = zerov(c.A); /* written, not added to */
	att_obj(&c);
	cs_attention_backward(dqkv, datt, c.R, c.qkv, c.att, c.attd, c.attm,
			      off, c.B, c.C, c.NH, c.causal);
	*bad += fd_check(causal ? (p > 0 ? "causal attention dqkv (dropout)" :
				   "causal attention dqkv") :
			 p > 0 ? "attention dqkv (dropout)" : "attention dqkv",
			 att_obj, &c, c.qkv, dqkv, c.N * 3 * c.C, 1e-2f, 1e-2,
			 1e-3, 10000);
}

START_TEST(test_attention)
{
	int bad = 0;
	cs_nn_rng_seed(&rng, 5);
	attention_case(0.0f, 0, &bad);
	attention_case(0.3f, 0, &bad);
	attention_case(0.0f, 1, &bad);
	attention_case(0.3f, 1, &bad);
	ck_assert_int_eq(bad, 0);
	free_all();
}
END_TEST

/* Packed attention against a naive per-token version in double; _i 1:
 * causal, each token against the tokens up to it only. The attention at
 * chosen queries (cs_attention_forward_at) gives the rows of those. */
START_TEST(test_attention_naive)
{
	size_t off[] = {0, 3, 4, 9}, B = 3, C = 6, NH = 3, hs = 2, N = 9;
	int causal = _i;
	cs_nn_rng_seed(&rng, 6);
	float *qkv = randv(N * 3 * C, 2.0f), *out = zerov(N * C);
	size_t A = cs_attention_size(off, B, NH);
	float *att = zerov(A), *attd = zerov(A), *attm = zerov(A);
	cs_attention_forward(out, att, attd, attm, qkv, off, B, C, NH, causal,
			     0.5f, NULL);
	for (size_t b = 0; b < B; b++)
		for (size_t i = off[b]; i < off[b + 1]; i++)
			for (size_t h = 0; h < NH; h++) {
				double w[16], sum = 0.0, mx = -1e300;
				size_t end = causal ? i + 1 : off[b + 1];
				for (size_t j = off[b]; j < end; j++) {
					double s = 0.0;
					for (size_t k = 0; k < hs; k++)
						s += (double)qkv[i * 3 * C + h * hs + k] *
						     qkv[j * 3 * C + C + h * hs + k];
					w[j - off[b]] = s / sqrt((double)hs);
					mx = fmax(mx, w[j - off[b]]);
				}
				for (size_t j = 0; j < end - off[b]; j++)
					sum += (w[j] = exp(w[j] - mx));
				for (size_t k = 0; k < hs; k++) {
					double y = 0.0;
					for (size_t j = off[b]; j < end; j++)
						y += w[j - off[b]] / sum *
						     qkv[j * 3 * C + 2 * C + h * hs + k];
					ck_assert_double_eq_tol(out[i * C + h * hs + k], y, 1e-5);
				}
			}
	/* the attention of a few queries alone: their rows of the above */
	size_t mpos[] = {8, 0, 3, 5, 2}, M = 5;
	float *at = zerov(M * C), *w = zerov(5);
	cs_attention_forward_at(at, w, qkv, off, B, mpos, M, C, NH, causal);
	for (size_t i = 0; i < M; i++)
		for (size_t k = 0; k < C; k++)
			ck_assert_float_eq_tol(at[i * C + k], out[mpos[i] * C + k], 1e-5f);
	free_all();
}
END_TEST

/*
 * Long sequences (A >= 65536: the (sequence, head) blocks run in
 * parallel; causal: several row blocks each, the last one partial), with
 * dropout, _i 1 causal: on 1 and 2 threads the same bits; the mask is
 * draw e of the stream for weight e of A, as cs_nn_rng_uniform one at a
 * time would give; the rng ends A draws on; each row of weights sums to
 * 1 over the keys it sees; out is the dropped weights times the values,
 * in double; the gradient is the same on both thread counts.
 */
START_TEST(test_attention_long)
{
	size_t off[] = {0, 150, 190, 300}, B = 3, C = 16, NH = 2, hs = 8, N = 300;
	int causal = _i;
	float p = 0.2f, keep = 1.0f / (1.0f - p);
	cs_nn_rng_seed(&rng, 8);
	float *qkv = randv(N * 3 * C, 1.0f), *dout = randv(N * C, 1.0f);
	size_t A = cs_attention_size(off, B, NH);
	ck_assert_uint_ge(A, 65536);
	float *out[2], *att[2], *attd[2], *attm[2], *dqkv[2];
	int threads0 = omp_get_max_threads();
	for (int t = 0; t < 2; t++) {
		omp_set_num_threads(t + 1);
		out[t] = zerov(N * C);
		att[t] = zerov(A);
		attd[t] = zerov(A);
		attm[t] = zerov(A);
		dqkv[t] = zerov(N * 3 * C);
		cs_nn_rng r, r1;
		cs_nn_rng_seed(&r, 77);
		r1 = r;
		cs_nn_rng_skip(&r1, A);
		cs_attention_forward(out[t], att[t], attd[t], attm[t], qkv, off, B, C, NH,
				     causal, p, &r);
		ck_assert(r.s == r1.s);
		cs_attention_backward(dqkv[t], zerov(A), dout, qkv, att[t], attd[t], attm[t],
				      off, B, C, NH, causal);
	}
	omp_set_num_threads(threads0);
	ck_assert(memcmp(out[0], out[1], N * C * sizeof(float)) == 0);
	ck_assert(memcmp(att[0], att[1], A * sizeof(float)) == 0);
	ck_assert(memcmp(attd[0], attd[1], A * sizeof(float)) == 0);
	ck_assert(memcmp(dqkv[0], dqkv[1], N * 3 * C * sizeof(float)) == 0);
	size_t ao = 0;
	for (size_t b = 0; b < B; b++) {
		size_t T = off[b + 1] - off[b];
		for (size_t h = 0; h < NH; h++, ao += T * T)
			for (size_t i = 0; i < T; i++) {
				size_t n = causal ? i + 1 : T;
				const float *a = att[1] + ao + i * T, *m = attm[1] + ao + i * T;
				double sum = 0.0;
				cs_nn_rng r;
				cs_nn_rng_seed(&r, 77);
				cs_nn_rng_skip(&r, ao + i * T);
				for (size_t j = 0; j < n; j++) {
					float want = cs_nn_rng_uniform(&r) < p ? 0.0f : keep;
					ck_assert_msg(m[j] == want, "mask (%zu %zu %zu %zu)", b, h, i, j);
					ck_assert(attd[1][ao + i * T + j] == a[j] * m[j]);
					sum += a[j];
				}
				ck_assert_double_eq_tol(sum, 1.0, 1e-5);
				for (size_t k = 0; k < hs; k++) {
					double y = 0.0;
					for (size_t j = 0; j < n; j++)
						y += (double)a[j] * m[j] *
						     qkv[(off[b] + j) * 3 * C + 2 * C + h * hs + k];
					ck_assert_double_eq_tol(out[1][(off[b] + i) * C + h * hs + k],
								y, 1e-5);
				}
			}
	}
	free_all();
}
END_TEST

/* ------------------------------------------------------------ gelu, dropout */

struct ew_ctx {
	float *out, *mask, *inp, *R;
	size_t n;
	int kind; /* 0 gelu, 1 dropout */
};

static double ew_obj(void *p)
{
	struct ew_ctx *c = p;
	cs_nn_rng r;
	cs_nn_rng_seed(&r, 7);
	if (c->kind == 0)
		cs_gelu_forward(c->out, c->inp, c->n);
	else
		cs_dropout_forward(c->out, c->mask, c->inp, c->n, 0.4f, &r);
	return dot(c->out, c->R, c->n);
}

START_TEST(test_gelu_dropout)
{
	cs_nn_simd(_i == 0);
	struct ew_ctx c = {.n = 67};
	cs_nn_rng_seed(&rng, 8);
	c.inp = randv(c.n, 4.0f);
	c.R = randv(c.n, 1.0f);
	c.out = zerov(c.n);
	c.mask = zerov(c.n);
	float *d = randv(c.n, 5.0f); /* the backward passes write d, not add to it */
	int bad = 0;

	ew_obj(&c);
	for (size_t i = 0; i < c.n; i++) { /* the formula, in double */
		double x = c.inp[i];
		double y = 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) *
						 (x + 0.044715 * x * x * x)));
		ck_assert_double_eq_tol(c.out[i], y, 2e-6 * (1.0 + fabs(y)));
	}
	cs_gelu_backward(d, c.inp, c.R, c.n);
	bad += fd_check("gelu", ew_obj, &c, c.inp, d, c.n, 1e-3f, 1e-2, 1e-3,
			10000);

	c.kind = 1;
	for (size_t i = 0; i < c.n; i++)
		d[i] = 5.0f;
	ew_obj(&c);
	size_t zeros = 0;
	for (size_t i = 0; i < c.n; i++)
		zeros += c.mask[i] == 0.0f;
	ck_assert(zeros > 10 && zeros < 45);
	cs_dropout_backward(d, c.R, c.mask, c.n);
	bad += fd_check("dropout", ew_obj, &c, c.inp, d, c.n, 1e-2f, 1e-3,
			1e-4, 10000);
	ck_assert_int_eq(bad, 0);
	free_all();
}
END_TEST

START_TEST(test_expf)
{
	cs_nn_simd(_i == 0);
	size_t n = 20001;
	float *x = zerov(n), *y = zerov(n);
	for (size_t i = 0; i < n; i++)
		x[i] = -87.0f + 175.0f * (float)i / (float)(n - 1);
	cs_nn_expf(y, x, n);
	for (size_t i = 0; i < n; i++) {
		double e = exp((double)x[i]);
		ck_assert_msg(fabs(y[i] - e) <= 2e-7 * e, "exp(%g) = %g not %g",
			      x[i], y[i], e);
	}
	free_all();
}
END_TEST

/* AMX products against the same products of the bfloat16-rounded inputs. */
static float bf16_value(float x)
{
	uint32_t u = (uint32_t)cs_bf16(x) << 16;
	float f;
	memcpy(&f, &u, 4);
	return f;
}

/* _i 0: cs_amx_gemm, 1: cs_bf16_gemm (AVX512-BF16) */
START_TEST(test_amx_gemm)
{
	cs_kernel kern = _i == 0 ? CS_KERNEL_AMX : CS_KERNEL_BF16;
	void (*gemm)(size_t, size_t, size_t, const uint16_t *, size_t, const uint16_t *,
		     size_t, float *, size_t, int, const float *) =
		_i == 0 ? cs_amx_gemm : cs_bf16_gemm;
	if (!cs_kernel_supported(kern) || !CS_AMX_BUILT) {
		fprintf(stderr, "test_amx_gemm: no %s here, skipped\n", cs_kernel_name(kern));
		return;
	}
	size_t M = 64, N = 96, K, Mr = 50, Nr = 90, Kr;
	cs_nn_rng_seed(&rng, 13);
	/* mode 0: C = A B; 1: C += A B^T (B stored transposed); 2: C = bias + A B;
	 * 3, 4: 0 and 2 with K = 64, which has a kernel of its own */
	for (int mode = 0; mode < 5; mode++) {
		int trans = mode == 1;
		K = mode >= 3 ? 64 : 96;
		Kr = mode >= 3 ? 50 : 70;
		float *a = randv(Mr * Kr, 1.0f), *b = randv(Kr * Nr, 1.0f);
		float *bias = randv(N, 1.0f);
		uint16_t *A = keep(malloc(M * K * 2)), *Bp = keep(malloc(K * N * 2));
		float *c = randv(M * N, 1.0f), *c0 = keep(malloc(M * N * 4));
		memcpy(c0, c, M * N * 4);
		cs_bf16_copy(A, M, K, a, Kr, Mr, Kr, 0);
		/* b as stored: (Kr, Nr), or (Nr, Kr) to be read transposed */
		cs_amx_pack(Bp, K, N, b, trans ? Kr : Nr, Kr, Nr, trans);
		gemm(M, N, K, A, K, Bp, K * 16, c, N, mode == 1,
		     mode == 2 || mode == 4 ? bias : NULL);
		double worst = 0.0;
		for (size_t i = 0; i < M; i++)
			for (size_t j = 0; j < N; j++) {
				double want = mode == 1 ? c0[i * N + j]
					    : mode == 2 || mode == 4 ? bias[j] : 0.0;
				for (size_t k = 0; k < Kr && i < Mr && j < Nr; k++) {
					float bv = trans ? b[j * Kr + k] : b[k * Nr + j];
					want += (double)bf16_value(a[i * Kr + k]) * bf16_value(bv);
				}
				worst = fmax(worst, fabs(want - c[i * N + j]));
			}
		ck_assert_msg(worst < 1e-4, "%s product off by %g (mode %d)",
			      cs_kernel_name(kern), worst, mode);
	}
	free_all();
}
END_TEST

/* ------------------------------------------------------------ loss */

struct ce_ctx {
	float *logits, *lse;
	uint32_t *tgt;
	size_t M, V;
};

static double ce_obj(void *p)
{
	struct ce_ctx *c = p;
	return cs_crossentropy_forward(c->lse, c->logits, c->tgt, c->M, c->V,
				       2);
}

START_TEST(test_crossentropy)
{
	cs_nn_simd(_i == 0);
	uint32_t tgt[] = {2, 10, 5, 5};
	struct ce_ctx c = {.tgt = tgt, .M = 4, .V = 11};
	cs_nn_rng_seed(&rng, 9);
	c.logits = randv(c.M * c.V, 3.0f);
	c.lse = zerov(c.M);
	float *d = randv(c.M * c.V, 1.0f); /* overwritten */
	double loss = ce_obj(&c);
	/* against the definition, in double, with ids 0 and 1 left out */
	double ref = 0.0;
	for (size_t m = 0; m < c.M; m++) {
		double s = 0.0;
		for (size_t v = 2; v < c.V; v++)
			s += exp(c.logits[m * c.V + v]);
		ref += log(s) - c.logits[m * c.V + tgt[m]];
	}
	ck_assert_double_eq_tol(loss, ref / c.M, 1e-5);
	cs_crossentropy_backward(d, c.logits, c.lse, tgt, c.M, c.V, 2, 1.0f);
	for (size_t m = 0; m < c.M; m++) {
		ck_assert(d[m * c.V] == 0.0f && d[m * c.V + 1] == 0.0f);
	}
	ck_assert_int_eq(fd_check("crossentropy", ce_obj, &c, c.logits, d,
				  c.M * c.V, 1e-2f, 1e-2, 1e-5, 10000), 0);
	free_all();
}
END_TEST

/*
 * The tiled loss over tied logits against the stored-logits path: several
 * item tiles (the last one partial) and row blocks, on one thread and on
 * two, and by central differences.
 */
struct tie_ctx {
	float *h, *w, *bias, *lse, *scratch;
	uint32_t *tgt;
	size_t M, C, V;
};

static double tie_obj(void *p)
{
	struct tie_ctx *c = p;
	return cs_tiedce_forward(c->lse, c->scratch, c->h, c->w, c->bias, c->tgt,
				 c->M, c->C, c->V, 2);
}

static double maxdiff(const float *a, const float *b, size_t n, double *scale)
{
	double d = 0.0, s = 0.0;
	for (size_t i = 0; i < n; i++) {
		d = fmax(d, fabs((double)a[i] - b[i]));
		s = fmax(s, fabs((double)b[i]));
	}
	*scale = s;
	return d;
}

/*
 * _i: 0, 1 the FP32 path (C = 16) on the SSE2 and best kernels; 2 C = 64
 * on a CPU without bfloat16 products (the fallback); 3, 4 C = 64 on AMX
 * and with AVX512-BF16 where the CPU has them (bfloat16 products: looser
 * tolerances, and no finite differences through rounded inputs).
 */
START_TEST(test_tiedce)
{
	static const char *want[] = { "FP32", "FP32", "FP32", "AMX bfloat16", "AVX512-BF16" };
	cs_nn_simd(_i != 0);
	int amx = _i >= 3;
	if ((_i == 3 && !cs_kernel_supported(CS_KERNEL_AMX)) ||
	    (_i == 4 && !cs_kernel_supported(CS_KERNEL_BF16)) || (_i >= 3 && !CS_AMX_BUILT)) {
		fprintf(stderr, "test_tiedce: no %s here, bfloat16 case skipped\n", want[_i]);
		return;
	}
	cs_cpu_mask(_i == 2 ? CS_CPU_AMX | CS_CPU_AVX512BF16 : _i == 4 ? CS_CPU_AMX : 0);
	ck_assert_str_eq(cs_tiedce_kernel(_i >= 2 ? 64 : 16), want[_i]);
	double tol = amx ? 2e-2 : 1e-5;
	struct tie_ctx c = {.M = 300, .C = _i >= 2 ? 64 : 16, .V = 1300};
	size_t M = c.M, C = c.C, V = c.V;
	cs_nn_rng_seed(&rng, 12);
	c.h = randv(M * C, 1.0f);
	c.w = randv(V * C, 0.5f);
	c.bias = randv(V, 0.5f);
	c.tgt = keep(malloc(M * sizeof *c.tgt));
	for (size_t m = 0; m < M; m++) /* every tile, both ends of each */
		c.tgt[m] = m % 5 == 0 ? (uint32_t)(2 + (m / 5 % 3) * 512)
			 : m % 5 == 1 ? (uint32_t)(V - 1)
			 : 2 + (uint32_t)(cs_nn_rng_next(&rng) % (V - 2));
	/* the reference: logits stored whole */
	float *logits = zerov(M * V), *lse0 = zerov(M), *dlog = zerov(M * V);
	float *dh0 = zerov(M * C), *dw0 = zerov(V * C), *db0 = zerov(V);
	cs_linear_forward(logits, c.h, c.w, c.bias, M, C, V);
	double loss0 = cs_crossentropy_forward(lse0, logits, c.tgt, M, V, 2);
	cs_crossentropy_backward(dlog, logits, lse0, c.tgt, M, V, 2, 0.7f);
	cs_linear_backward(dh0, dw0, db0, dlog, c.h, c.w, M, C, V);
	int threads0 = omp_get_max_threads();
	for (int t = 1; t <= 2; t++) {
		omp_set_num_threads(t);
		c.scratch = keep(malloc(cs_tiedce_scratch(M, C) * sizeof(float)));
		c.lse = zerov(M);
		float *dh = zerov(M * C), *dw = zerov(V * C), *db = zerov(V);
		double loss = tie_obj(&c);
		ck_assert_double_eq_tol(loss, loss0, (amx ? 1e-3 : 1e-5) * fabs(loss0));
		double sc, d = maxdiff(c.lse, lse0, M, &sc);
		ck_assert_msg(d <= (amx ? 1e-3 : 1e-5) * sc, "lse differs by %g", d);
		cs_tiedce_backward(dh, dw, db, c.scratch, c.h, c.w, c.bias, c.lse,
				   c.tgt, M, C, V, 2, 0.7f);
		d = maxdiff(dh, dh0, M * C, &sc);
		ck_assert_msg(d <= tol * sc, "dh differs by %g of %g", d, sc);
		d = maxdiff(dw, dw0, V * C, &sc);
		ck_assert_msg(d <= tol * sc, "dw differs by %g of %g", d, sc);
		d = maxdiff(db, db0, V, &sc);
		ck_assert_msg(d <= tol * sc, "dbias differs by %g of %g", d, sc);
		ck_assert(db[0] == 0.0f && db[1] == 0.0f && dw[0] == 0.0f);
		if (t == 2) { /* the same bits again; and by differences */
			float *dh1 = zerov(M * C), *dw1 = zerov(V * C);
			float *dh2 = zerov(M * C), *dw2 = zerov(V * C);
			cs_tiedce_backward(dh2, dw2, NULL, c.scratch, c.h, c.w, c.bias,
					   c.lse, c.tgt, M, C, V, 2, 0.7f);
			ck_assert(memcmp(dw2, dw, V * C * sizeof *dw) == 0);
			ck_assert(memcmp(dh2, dh, M * C * sizeof *dh) == 0);
			cs_tiedce_backward(dh1, dw1, NULL, c.scratch, c.h, c.w, c.bias,
					   c.lse, c.tgt, M, C, V, 2, 1.0f);
			if (amx)
				continue;
			/* atol: the float lse of 300 rows makes ~1e-6 of noise */
			int bad = fd_check("tiedce dh", tie_obj, &c, c.h, dh1, M * C,
					   1e-2f, 2e-2, 4e-6, 300);
			bad += fd_check("tiedce dw", tie_obj, &c, c.w, dw1, V * C,
					1e-2f, 2e-2, 4e-6, 300);
			ck_assert_int_eq(bad, 0);
		}
	}
	omp_set_num_threads(threads0);
	cs_cpu_mask(0);
	free_all();
}
END_TEST

/*
 * CS_KERNEL picks the loss's products (each test runs in a process of its
 * own, so the variable is read afresh): _i 0 fp32, the same bits as on a
 * CPU without bfloat16 products; 1 bf16 and 2 amx, where the CPU has
 * them, the bfloat16 products, whose bits differ from FP32's.
 */
START_TEST(test_tiedce_fallback)
{
	static const char *env[] = { "fp32", "bf16", "amx" };
	static const char *want[] = { "FP32", "AVX512-BF16", "AMX bfloat16" };
	setenv("CS_KERNEL", env[_i], 1);
	if (_i && (!cs_kernel_supported(_i == 1 ? CS_KERNEL_BF16 : CS_KERNEL_AMX) || !CS_AMX_BUILT)) {
		fprintf(stderr, "test_tiedce_fallback: no %s here, skipped\n", env[_i]);
		ck_assert_str_eq(cs_tiedce_kernel(64), "FP32");
		return;
	}
	ck_assert_str_eq(cs_tiedce_kernel(64), want[_i]);
	ck_assert_str_eq(cs_tiedce_kernel(48), "FP32"); /* not a multiple of 32 */
	struct tie_ctx c = {.M = 70, .C = 64, .V = 700};
	cs_nn_rng_seed(&rng, 5);
	c.h = randv(c.M * c.C, 1.0f);
	c.w = randv(c.V * c.C, 0.5f);
	c.bias = randv(c.V, 0.5f);
	c.tgt = keep(malloc(c.M * sizeof *c.tgt));
	for (size_t m = 0; m < c.M; m++)
		c.tgt[m] = 2 + (uint32_t)(m * 7 % (c.V - 2));
	c.scratch = keep(malloc(cs_tiedce_scratch(c.M, c.C) * sizeof(float)));
	c.lse = zerov(c.M);
	double loss = tie_obj(&c);
	cs_cpu_mask(CS_CPU_AMX | CS_CPU_AVX512BF16); /* a CPU without them: FP32 */
	ck_assert_str_eq(cs_tiedce_kernel(64), "FP32");
	double fp32 = tie_obj(&c);
	cs_cpu_mask(0);
	if (_i == 0)
		ck_assert_msg(loss == fp32, "CS_KERNEL=fp32: loss %.17g, FP32 %.17g", loss, fp32);
	else
		ck_assert_msg(loss != fp32 && fabs(loss - fp32) < 1e-3 * fabs(fp32),
			      "%s: loss %.17g, FP32 %.17g", env[_i], loss, fp32);
	free_all();
}
END_TEST

/*
 * Sampled losses (sampled.h) over shared negatives, with an accidental
 * hit and a duplicate among them: the loss against a naive version in
 * double, and every gradient by central differences. _i: 0 sampled
 * softmax, 1 the same with logQ corrections, 2 gBCE.
 */
struct smp_ctx {
	float *h, *w, *bias, *logq, *scratch;
	uint32_t *tgt, *neg;
	size_t M, C, K;
	int kind;
	float beta;
};

static double smp_obj(void *p)
{
	struct smp_ctx *c = p;
	return cs_sampled_forward(c->scratch, c->h, c->w, c->bias, c->tgt, c->neg, c->logq,
				  c->M, c->C, c->K, c->kind, c->beta);
}

static double smp_naive(const struct smp_ctx *c)
{
	double sum = 0.0;
	for (size_t i = 0; i < c->M; i++) {
		double z[64];
		int hit[64] = { 0 };
		for (size_t k = 0; k <= c->K; k++) {
			uint32_t j = k ? c->neg[k - 1] : c->tgt[i];
			double d = c->bias[j] - (c->logq ? c->logq[j] : 0.0);
			for (size_t e = 0; e < c->C; e++)
				d += (double)c->h[i * c->C + e] * c->w[j * c->C + e];
			z[k] = d;
			hit[k] = k && j == c->tgt[i];
		}
		if (c->kind == CS_LOSS_GBCE) {
			sum += c->beta * log1p(exp(-z[0]));
			for (size_t k = 1; k <= c->K; k++)
				sum += hit[k] ? 0.0 : log1p(exp(z[k]));
		} else {
			double s = 0.0;
			for (size_t k = 0; k <= c->K; k++)
				s += hit[k] ? 0.0 : exp(z[k]);
			sum += log(s) - z[0];
		}
	}
	return sum / (double)c->M;
}

START_TEST(test_sampled)
{
	size_t M = 7, C = 5, K = 6, V = 20;
	struct smp_ctx c = {.M = M, .C = C, .K = K, .kind = _i == 2 ? CS_LOSS_GBCE : CS_LOSS_SAMPLED};
	cs_nn_rng_seed(&rng, 31 + _i);
	c.h = randv(M * C, 1.0f);
	c.w = randv(V * C, 0.7f);
	c.bias = randv(V, 0.5f);
	c.logq = _i == 1 ? randv(V, 1.0f) : NULL;
	c.beta = cs_gbce_beta(K, V - 3, 0.75f);
	ck_assert(c.beta > 0.0f && c.beta < 1.0f);
	ck_assert_float_eq_tol(cs_gbce_beta(K, V - 3, 0.0f), 1.0f, 1e-6f);
	c.tgt = keep(malloc(M * sizeof *c.tgt));
	c.neg = keep(malloc(K * sizeof *c.neg));
	for (size_t i = 0; i < M; i++)
		c.tgt[i] = 3 + (uint32_t)(cs_nn_rng_next(&rng) % (V - 3));
	for (size_t k = 0; k < K; k++)
		c.neg[k] = 3 + (uint32_t)(cs_nn_rng_next(&rng) % (V - 3));
	c.neg[1] = c.tgt[2]; /* an accidental hit */
	c.neg[4] = c.neg[3]; /* a duplicate */
	c.scratch = keep(malloc(cs_sampled_scratch(M, K, C) * sizeof(float)));
	double loss = smp_obj(&c);
	ck_assert_double_eq_tol(loss, smp_naive(&c), 1e-5 * fabs(loss));
	float *dh = zerov(M * C), *dw = zerov(V * C), *db = zerov(V);
	cs_sampled_backward(dh, dw, db, c.scratch, c.h, c.w, c.tgt, c.neg, M, C, K, c.kind,
			    c.beta, 1.0f);
	int bad = fd_check("sampled dh", smp_obj, &c, c.h, dh, M * C, 1e-2f, 1e-2, 1e-5, 1000);
	bad += fd_check("sampled dw", smp_obj, &c, c.w, dw, V * C, 1e-2f, 1e-2, 1e-5, 1000);
	bad += fd_check("sampled dbias", smp_obj, &c, c.bias, db, V, 1e-2f, 1e-2, 1e-5, 1000);
	ck_assert_int_eq(bad, 0);
	free_all();
}
END_TEST

/* The output layer: gather, dense, GELU, LayerNorm, tied logits, loss. */
struct out_ctx {
	float *hid, *hm, *w, *b, *hh, *hg, *hln, *mean, *rstd, *lnw, *lnb;
	float *wte, *ob, *logits, *lse;
	size_t *idx;
	uint32_t *tgt;
	size_t N, M, C, V;
};

static double out_obj(void *p)
{
	struct out_ctx *c = p;
	cs_gather_forward(c->hm, c->hid, c->idx, c->M, c->C);
	cs_linear_forward(c->hh, c->hm, c->w, c->b, c->M, c->C, c->C);
	cs_gelu_forward(c->hg, c->hh, c->M * c->C);
	cs_layernorm_forward(c->hln, c->mean, c->rstd, c->hg, c->lnw, c->lnb,
			     c->M, c->C);
	cs_linear_forward(c->logits, c->hln, c->wte, c->ob, c->M, c->C, c->V);
	return cs_crossentropy_forward(c->lse, c->logits, c->tgt, c->M, c->V,
				       2);
}

START_TEST(test_output_layer)
{
	size_t idx[] = {4, 1, 4};
	uint32_t tgt[] = {3, 8, 2};
	struct out_ctx c = {.idx = idx, .tgt = tgt, .N = 6, .M = 3, .C = 6,
			    .V = 10};
	size_t M = c.M, C = c.C, V = c.V;
	cs_nn_rng_seed(&rng, 10);
	c.hid = randv(c.N * C, 1.0f);
	c.w = randv(C * C, 1.0f);
	c.b = randv(C, 0.5f);
	c.lnw = randv(C, 1.0f);
	c.lnb = randv(C, 1.0f);
	c.wte = randv(V * C, 1.0f);
	c.ob = randv(V, 1.0f);
	c.hm = zerov(M * C);
	c.hh = zerov(M * C);
	c.hg = zerov(M * C);
	c.hln = zerov(M * C);
	c.mean = zerov(M);
	c.rstd = zerov(M);
	c.logits = zerov(M * V);
	c.lse = zerov(M);
	float *dlog = zerov(M * V), *dhln = zerov(M * C), *dhg = zerov(M * C);
	float *dhh = zerov(M * C), *dhm = zerov(M * C), *dhid = zerov(c.N * C);
	float *dw = zerov(C * C), *db = zerov(C), *dlnw = zerov(C);
	float *dlnb = zerov(C), *dwte = zerov(V * C), *dob = zerov(V);
	out_obj(&c);
	cs_crossentropy_backward(dlog, c.logits, c.lse, tgt, M, V, 2, 1.0f);
	cs_linear_backward(dhln, dwte, dob, dlog, c.hln, c.wte, M, C, V);
	cs_layernorm_backward(dhg, dlnw, dlnb, dhln, c.hg, c.lnw, c.mean,
			      c.rstd, M, C);
	cs_gelu_backward(dhh, c.hh, dhg, M * C);
	cs_linear_backward(dhm, dw, db, dhh, c.hm, c.w, M, C, C);
	cs_gather_backward(dhid, dhm, idx, M, C);
	int bad = 0;
	bad += fd_check("output dhidden", out_obj, &c, c.hid, dhid, c.N * C,
			1e-3f, 2e-2, 1e-4, 10000);
	bad += fd_check("output dw", out_obj, &c, c.w, dw, C * C, 1e-3f, 2e-2,
			1e-4, 10000);
	bad += fd_check("output db", out_obj, &c, c.b, db, C, 1e-3f, 2e-2, 1e-4,
			10000);
	bad += fd_check("output dlnw", out_obj, &c, c.lnw, dlnw, C, 1e-3f,
			2e-2, 1e-4, 10000);
	bad += fd_check("output dlnb", out_obj, &c, c.lnb, dlnb, C, 1e-3f,
			2e-2, 1e-4, 10000);
	bad += fd_check("output dwte", out_obj, &c, c.wte, dwte, V * C, 1e-3f,
			2e-2, 1e-4, 10000);
	bad += fd_check("output dbias", out_obj, &c, c.ob, dob, V, 1e-3f, 2e-2,
			1e-4, 10000);
	ck_assert_int_eq(bad, 0);
	free_all();
}
END_TEST

/* ------------------------------------------------------------ the model */

struct model_ctx {
	cs_bert *m;
	cs_bert_work *ws;
	cs_bert_train *ts;
	cs_batch *b;
	int train;
};

static double model_obj(void *p)
{
	struct model_ctx *c = p;
	c->ts->nforward = 0; /* the same dropout masks every time */
	ck_assert_int_eq(cs_bert_forward(c->m, c->ws, c->ts, c->b, c->train, NULL, NULL),
			 0);
	return c->ws->loss;
}

/* causal: SASRec's attention; loss: CS_LOSS_* over 4 shared negatives;
 * pre: pre-LN blocks, a final LayerNorm and no output transform. */
static void model_case_pre(int train, size_t L, int causal, int loss, int pre, int *bad)
{
	cs_bert_config cfg;
	cs_bert_config_default(&cfg, 23);
	cfg.causal = causal;
	cfg.prenorm = pre;
	cfg.C = 8;
	cfg.L = L;
	cfg.NH = 2;
	cfg.P = 6;
	cfg.FF = 12;
	cfg.init_range = 0.5f;
	cs_bert *m = cs_bert_new(&cfg, 11, NULL);
	ck_assert_ptr_nonnull(m);
	cs_bert_work *ws = cs_bert_work_new(NULL);
	cs_bert_train *ts = cs_bert_train_new(m, 11, NULL);
	ck_assert(ws && ts);
	/* the biases and LayerNorm parameters random too */
	cs_nn_rng_seed(&rng, 12);
	for (size_t i = 0; i < m->nparams; i++)
		m->params_memory[i] += (2.0f * cs_nn_rng_uniform(&rng) - 1.0f) *
				       0.3f;
	size_t off[] = {0, 5, 7, 13};
	uint32_t tok[] = {3, 1, 7, 9, 1, 22, 1, 4, 5, 1, 2, 6, 1};
	uint32_t pos[] = {0, 1, 2, 3, 4, 0, 1, 0, 1, 2, 3, 4, 5};
	size_t mpos[] = {1, 4, 6, 9, 12};
	uint32_t mtgt[] = {8, 3, 22, 2, 11};
	uint32_t neg[] = {5, 22, 14, 5}; /* a hit (22) and a duplicate */
	cs_batch b = {.B = 3, .off = off, .tok = tok, .pos = pos, .M = 5,
		      .mpos = mpos, .mtgt = mtgt};
	if (loss != CS_LOSS_FULL) {
		b.K = 4;
		b.neg = neg;
		ts->loss_kind = loss;
		ts->gbce_beta = 0.6f;
	}
	struct model_ctx c = {m, ws, ts, &b, train};

	model_obj(&c);
	ck_assert_int_eq(ws->sampled, loss != CS_LOSS_FULL);
	cs_bert_zero_grad(m, ts);
	ck_assert_int_eq(cs_bert_backward(m, ws, ts, NULL), 0);
	/* pad and mask embeddings only reach the loss through their inputs */
	float *g = ts->grads_memory, *p = m->params_memory;
	char what[64];
	for (int i = 0; i < CS_BERT_NPARAMS; i++) {
		snprintf(what, sizeof what, "model%s%s%s L=%zu loss %s d%s",
			 train ? " (dropout)" : "", causal ? " causal" : "", pre ? " pre-LN" : "",
			 L, cs_loss_name(loss), cs_bert_param_name(i));
		*bad += fd_check(what, model_obj, &c, p, g, m->param_sizes[i],
				 3e-3f, 3e-2, 2e-4, 400);
		p += m->param_sizes[i];
		g += m->param_sizes[i];
	}
	/* the output bias of pad and mask: no gradient */
	ck_assert(ts->grads.out_b[0] == 0.0f && ts->grads.out_b[1] == 0.0f);
	cs_bert_work_free(ws);
	cs_bert_train_free(ts);
	cs_bert_free(m);
}

static void model_case_ext(int train, size_t L, int causal, int loss, int *bad)
{
	model_case_pre(train, L, causal, loss, 0, bad);
}

static void model_case(int train, size_t L, int *bad)
{
	model_case_ext(train, L, 0, CS_LOSS_FULL, bad);
}

/* Extra inputs and the binary heads: every tensor of the model. */
static void task_case_pre(int head, int pool, size_t NF, int combine, int train, int pred,
			  int pre, int *bad)
{
	cs_bert_config cfg;
	cs_bert_config_default(&cfg, 23);
	cfg.C = 8;
	cfg.L = 1;
	cfg.NH = 2;
	cfg.P = 6;
	cfg.FF = 12;
	cfg.init_range = 0.5f;
	cfg.head = head;
	cfg.pool = pool;
	cfg.combine = combine;
	cfg.NF = NF;
	cfg.pred = pred;
	cfg.prenorm = pre;
	for (size_t f = 0; f < NF; f++) {
		cfg.VF[f] = 5 + 2 * f;
		snprintf(cfg.fname[f], sizeof cfg.fname[f], "in%zu", f);
	}
	cs_bert *m = cs_bert_new(&cfg, 13, NULL);
	ck_assert_ptr_nonnull(m);
	cs_bert_work *ws = cs_bert_work_new(NULL);
	cs_bert_train *ts = cs_bert_train_new(m, 13, NULL);
	ck_assert(ws && ts);
	ts->pos_weight = 2.5f;
	cs_nn_rng_seed(&rng, 14);
	for (size_t i = 0; i < m->nparams; i++)
		m->params_memory[i] += (2.0f * cs_nn_rng_uniform(&rng) - 1.0f) * 0.3f;
	size_t off[] = {0, 5, 7, 13};
	uint32_t tok[] = {3, 1, 7, 9, 1, 22, 1, 4, 5, 1, 2, 6, 1};
	uint32_t pos[] = {0, 1, 2, 3, 4, 0, 1, 0, 1, 2, 3, 4, 5};
	uint32_t ftok[13 * 2];
	for (size_t i = 0; i < 13 * NF; i++)
		ftok[i] = (uint32_t)((i * 7 + 3) % cfg.VF[i % NF]);
	/* session: the last token of each sequence ([CLS]); event: some events */
	size_t mpos_s[] = {4, 6, 12}, mpos_e[] = {0, 2, 3, 7, 8, 11};
	uint32_t y_s[] = {1, 0, 1}, y_e[] = {0, 1, 1, 0, 0, 1};
	size_t mpos_c[] = {1, 4, 6, 9, 12};
	uint32_t y_c[] = {8, 3, 22, 2, 11};
	int ev = head == CS_HEAD_EVENT, cl = head == CS_HEAD_CLOZE;
	cs_batch b = {.B = 3, .off = off, .tok = tok, .pos = pos, .ftok = NF ? ftok : NULL,
		      .M = cl ? 5 : ev ? 6 : 3, .mpos = cl ? mpos_c : ev ? mpos_e : mpos_s,
		      .mtgt = cl ? y_c : ev ? y_e : y_s};
	uint32_t ft[] = {2, 4, 3, 4, 2}; /* targets of the predicted input (VF 5 or 7) */
	if (pred)
		b.ftgt = ft;
	struct model_ctx c = {m, ws, ts, &b, train};

	model_obj(&c);
	cs_bert_zero_grad(m, ts);
	ck_assert_int_eq(cs_bert_backward(m, ws, ts, NULL), 0);
	float *g = ts->grads_memory, *p = m->params_memory;
	char what[96];
	for (int i = 0; i < CS_BERT_NPARAMS; i++) {
		snprintf(what, sizeof what, "%s head%s%s NF=%zu pred=%d %s%s d%s",
			 cs_bert_head_name(head), head == CS_HEAD_SESSION ? " pool " : "",
			 head == CS_HEAD_SESSION ? cs_bert_pool_name(pool) : "", NF, pred,
			 cs_bert_combine_name(combine), pre ? " pre-LN" : "", cs_bert_param_name(i));
		*bad += fd_check(what, model_obj, &c, p, g, m->param_sizes[i],
				 3e-3f, 3e-2, 2e-4, 400);
		p += m->param_sizes[i];
		g += m->param_sizes[i];
	}
	cs_bert_work_free(ws);
	cs_bert_train_free(ts);
	cs_bert_free(m);
}

static void task_case_pred(int head, int pool, size_t NF, int combine, int train, int pred,
			   int *bad)
{
	task_case_pre(head, pool, NF, combine, train, pred, 0, bad);
}

START_TEST(test_model)
{
	int bad = 0;
	model_case(0, 2, &bad);
	model_case(0, 1, &bad);
	model_case(1, 2, &bad);
	model_case_ext(0, 2, 1, CS_LOSS_FULL, &bad);
	model_case_ext(1, 1, 1, CS_LOSS_SAMPLED, &bad);
	model_case_ext(0, 2, 0, CS_LOSS_GBCE, &bad);
	model_case_ext(0, 1, 1, CS_LOSS_GBCE, &bad);
	model_case_pre(0, 2, 1, CS_LOSS_FULL, 1, &bad);
	model_case_pre(1, 2, 0, CS_LOSS_FULL, 1, &bad);
	model_case_pre(1, 1, 1, CS_LOSS_SAMPLED, 1, &bad);
	ck_assert_int_eq(bad, 0);
	free_all();
}
END_TEST

static void task_case(int head, int pool, size_t NF, int combine, int train, int *bad)
{
	task_case_pred(head, pool, NF, combine, train, 0, bad);
}

START_TEST(test_model_tasks)
{
	int bad = 0;
	task_case(CS_HEAD_CLOZE, 0, 2, CS_COMBINE_SUM, 0, &bad);
	task_case(CS_HEAD_CLOZE, 0, 2, CS_COMBINE_CONCAT, 0, &bad);
	task_case(CS_HEAD_SESSION, CS_POOL_CLS, 0, CS_COMBINE_SUM, 0, &bad);
	task_case(CS_HEAD_SESSION, CS_POOL_MEAN, 1, CS_COMBINE_SUM, 1, &bad);
	task_case(CS_HEAD_SESSION, CS_POOL_CLS, 2, CS_COMBINE_CONCAT, 0, &bad);
	task_case(CS_HEAD_EVENT, 0, 2, CS_COMBINE_SUM, 0, &bad);
	task_case_pred(CS_HEAD_CLOZE, 0, 2, CS_COMBINE_SUM, 0, 2, &bad);
	task_case_pred(CS_HEAD_CLOZE, 0, 2, CS_COMBINE_CONCAT, 1, 1, &bad);
	task_case_pre(CS_HEAD_SESSION, CS_POOL_MEAN, 1, CS_COMBINE_SUM, 0, 0, 1, &bad);
	task_case_pre(CS_HEAD_EVENT, 0, 2, CS_COMBINE_CONCAT, 1, 0, 1, &bad);
	task_case_pre(CS_HEAD_CLOZE, 0, 2, CS_COMBINE_SUM, 0, 2, 1, &bad);
	ck_assert_int_eq(bad, 0);
	free_all();
}
END_TEST

/*
 * Lazy updates (the sampled losses): one step touches only the rows of wte
 * and out_b the batch used, leaves the others and their moments as they
 * were, and keeps the gradients of those tensors zero between steps.
 * With no weight decay and no clipping, a first step from zero moments
 * equals the dense one (whose other rows have zero gradient and moments).
 */
START_TEST(test_lazy_update)
{
	cs_bert_config cfg;
	cs_bert_config_default(&cfg, 40);
	cfg.C = 8;
	cfg.L = 1;
	cfg.NH = 2;
	cfg.P = 6;
	cfg.FF = 12;
	cfg.causal = 1;
	cs_bert *a = cs_bert_new(&cfg, 21, NULL), *d = cs_bert_new(&cfg, 21, NULL);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(d);
	cs_bert_work *ws = cs_bert_work_new(NULL);
	cs_bert_train *ta = cs_bert_train_new(a, 21, NULL), *td = cs_bert_train_new(d, 21, NULL);
	ck_assert(ws && ta && td);
	size_t off[] = {0, 3, 5};
	uint32_t tok[] = {3, 4, 5, 9, 10}, pos[] = {0, 1, 2, 0, 1};
	size_t mpos[] = {0, 1, 2, 3, 4};
	uint32_t mtgt[] = {4, 5, 6, 10, 11}, neg[] = {20, 30, 6, 20};
	cs_batch b = {.B = 2, .off = off, .tok = tok, .pos = pos, .M = 5, .mpos = mpos,
		      .mtgt = mtgt, .K = 4, .neg = neg};
	cs_adamw o;
	cs_adamw_default(&o);
	o.lr = 0.01f;
	o.weight_decay = 0.0f;
	o.clip = 0.0f;
	o.warmup = 0;
	o.total = 10;
	ta->lazy = 1;
	for (int k = 0; k < 2; k++) {
		cs_bert *m = k ? d : a;
		cs_bert_train *t = k ? td : ta;
		t->loss_kind = CS_LOSS_SAMPLED;
		cs_bert_zero_grad(m, t);
		ck_assert_int_eq(cs_bert_forward(m, ws, t, &b, 1, NULL, NULL), 0);
		ck_assert_int_eq(cs_bert_backward(m, ws, t, NULL), 0);
		cs_bert_update(m, t, &o, NULL);
	}
	for (size_t i = 0; i < a->nparams; i++)
		ck_assert_msg(fabsf(a->params_memory[i] - d->params_memory[i]) <=
			      1e-6f * fabsf(d->params_memory[i]),
			      "parameter %zu: lazy %g, dense %g", i, a->params_memory[i],
			      d->params_memory[i]);
	/* the rows the batch did not touch kept their weights and moments */
	float *w0 = zerov(a->param_sizes[0]);
	cs_bert *f = cs_bert_new(&cfg, 21, NULL);
	memcpy(w0, f->params.wte, a->param_sizes[0] * sizeof *w0);
	cs_bert_free(f);
	int used[40] = { 0 };
	for (size_t i = 0; i < 5; i++)
		used[tok[i]] = used[mtgt[i]] = 1;
	for (size_t k = 0; k < 4; k++)
		used[neg[k]] = 1;
	for (size_t r = 0; r < 40; r++)
		for (size_t c = 0; c < 8; c++) {
			size_t i = r * 8 + c;
			if (!used[r])
				ck_assert(a->params.wte[i] == w0[i] && ta->m_memory[i] == 0.0f);
			else if (c == 0)
				ck_assert_msg(a->params.wte[i] != w0[i], "row %zu not updated", r);
		}
	/* the lazy tensors' gradients are zero again, rows forgotten */
	for (size_t i = 0; i < a->param_sizes[0]; i++)
		ck_assert(ta->grads.wte[i] == 0.0f);
	for (size_t i = 0; i < 40; i++)
		ck_assert(ta->grads.out_b[i] == 0.0f);
	ck_assert_uint_eq(ta->nrows, 0);
	/* a second step still runs and moves only its rows */
	ck_assert_int_eq(cs_bert_forward(a, ws, ta, &b, 1, NULL, NULL), 0);
	cs_bert_zero_grad(a, ta);
	ck_assert_int_eq(cs_bert_backward(a, ws, ta, NULL), 0);
	cs_bert_update(a, ta, &o, NULL);
	ck_assert(a->params.wte[39 * 8] == w0[39 * 8]);
	cs_bert_work_free(ws);
	cs_bert_train_free(ta);
	cs_bert_train_free(td);
	cs_bert_free(a);
	cs_bert_free(d);
	free_all();
}
END_TEST

/* ------------------------------------------------------------ optimizer */

START_TEST(test_adamw)
{
	cs_adamw o;
	cs_adamw_default(&o);
	o.lr = 1.0f;
	o.warmup = 4;
	o.total = 12;
	ck_assert_float_eq_tol(cs_adamw_lr(&o, 0), 0.25f, 1e-7f);
	ck_assert_float_eq_tol(cs_adamw_lr(&o, 3), 1.0f, 1e-7f);
	ck_assert_float_eq_tol(cs_adamw_lr(&o, 4), 1.0f, 1e-7f);
	ck_assert_float_eq_tol(cs_adamw_lr(&o, 8), 0.5f, 1e-7f);
	ck_assert_float_eq_tol(cs_adamw_lr(&o, 12), 0.0f, 1e-7f);
	ck_assert_float_eq_tol(cs_adamw_lr(&o, 20), 0.0f, 1e-7f);
	o.clip = 1.0f;
	ck_assert_float_eq_tol(cs_clip_scale(&o, 4.0), 0.25f, 1e-6f);
	ck_assert_float_eq(cs_clip_scale(&o, 0.5), 1.0f);
	float g[] = {3.0f, 4.0f};
	ck_assert_double_eq_tol(cs_grad_norm(g, 2), 5.0, 1e-12);

	/* two steps by hand, in double */
	float p[] = {0.5f, -1.0f}, m[2] = {0}, v[2] = {0};
	double pd[] = {0.5, -1.0}, md[2] = {0}, vd[2] = {0};
	double lr = 0.1, wd = 0.2, gs = 0.5;
	for (long t = 1; t <= 2; t++) {
		cs_adamw_update(&o, p, g, m, v, 2, (float)lr, (float)wd,
				(float)gs, t);
		for (int i = 0; i < 2; i++) {
			double gi = g[i] * gs;
			md[i] = 0.9 * md[i] + 0.1 * gi;
			vd[i] = 0.999 * vd[i] + 0.001 * gi * gi;
			double mh = md[i] / (1 - pow(0.9, t));
			double vh = vd[i] / (1 - pow(0.999, t));
			pd[i] = pd[i] * (1 - lr * wd) - lr * mh / (sqrt(vh) + 1e-8);
		}
	}
	ck_assert_double_eq_tol(p[0], pd[0], 1e-6);
	ck_assert_double_eq_tol(p[1], pd[1], 1e-6);
	free_all();
}
END_TEST

int main(void)
{
	cs_blas_init(1);
	Suite *s = suite_create("grad");
	TCase *tc = tcase_create("grad");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_sgemm);
	tcase_add_test(tc, test_blas_plan);
	tcase_add_test(tc, test_blas_switch);
	tcase_add_loop_test(tc, test_linear, 0, 2);
	tcase_add_test(tc, test_embed);
	tcase_add_loop_test(tc, test_layernorm, 0, 2);
	tcase_add_test(tc, test_attention);
	tcase_add_loop_test(tc, test_attention_naive, 0, 2);
	tcase_add_loop_test(tc, test_attention_long, 0, 2);
	/* _i 0: the best SIMD kernels, 1: the SSE2 baseline */
	tcase_add_loop_test(tc, test_gelu_dropout, 0, 2);
	tcase_add_loop_test(tc, test_expf, 0, 2);
	tcase_add_loop_test(tc, test_crossentropy, 0, 2);
	tcase_add_loop_test(tc, test_tiedce, 0, 5);
	tcase_add_loop_test(tc, test_tiedce_fallback, 0, 3);
	tcase_add_loop_test(tc, test_sampled, 0, 3);
	tcase_add_loop_test(tc, test_amx_gemm, 0, 2);
	tcase_add_test(tc, test_output_layer);
	tcase_add_test(tc, test_model);
	tcase_add_test(tc, test_model_tasks);
	tcase_add_test(tc, test_lazy_update);
	tcase_add_test(tc, test_adamw);
	suite_add_tcase(s, tc);
	return check_run(s);
}
