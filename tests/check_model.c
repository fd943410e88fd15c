/*
 * check_model.c - the C BERT4Rec against PyTorch, and its behaviour.
 *
 * tests/fixtures/bert4rec_tiny.bin is written by scripts/torch_ref.py (its
 * header documents the layout): a tiny model's initial weights, a padded
 * batch of three sequences (stored packed), and PyTorch's logits, loss,
 * final hidden states, every gradient and the weights after three AdamW
 * steps. The C model runs the batch packed and must agree tensor by
 * tensor. scripts/torch_ref_tasks.py writes the same for the task heads
 * with extra event inputs: session_tiny.bin ([CLS] pooling, inputs
 * summed), concat_tiny.bin (event head, inputs joined and projected) and
 * mean_tiny.bin (mean pooling); scripts/torch_ref_sasrec.py for the
 * training objectives: sasrec_tiny.bin (causal attention, next-item
 * examples, full softmax), sasrec_sampled_tiny.bin (causal, sampled
 * softmax with logQ corrections, hits and duplicates among the
 * negatives), cloze_gbce_tiny.bin (Cloze with gBCE), the last two
 * also through the lazy update cs-train uses with them, and
 * sasrec_preln_tiny.bin (sasrec_tiny's with pre-LN blocks, a final
 * LayerNorm and no output transform). Regenerate them
 * all from the top with Debian's python3-torch:
 *     /usr/bin/python3 scripts/torch_ref.py
 *     /usr/bin/python3 scripts/torch_ref_tasks.py
 *     /usr/bin/python3 scripts/torch_ref_sasrec.py
 * Then: scoring, packing independence, causal attention (no token sees
 * a later one; scoring's shortcut agrees), seeded dropout, batch
 * validation, and a small training run whose loss must fall.
 */
#include <check.h>
#include "check_run.h"
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "bertfile.h"
#include "blas.h"
#include "model.h"
#include "recommend.h"
#include "score.h"

#ifndef FIXTURE
#define FIXTURE "tests/fixtures/bert4rec_tiny.bin"
#endif
#ifndef FIXTURE_SESSION
#define FIXTURE_SESSION "tests/fixtures/session_tiny.bin"
#endif
#ifndef FIXTURE_CONCAT
#define FIXTURE_CONCAT "tests/fixtures/concat_tiny.bin"
#endif
#ifndef FIXTURE_MEAN
#define FIXTURE_MEAN "tests/fixtures/mean_tiny.bin"
#endif
#ifndef FIXTURE_SASREC
#define FIXTURE_SASREC "tests/fixtures/sasrec_tiny.bin"
#endif
#ifndef FIXTURE_SAMPLED
#define FIXTURE_SAMPLED "tests/fixtures/sasrec_sampled_tiny.bin"
#endif
#ifndef FIXTURE_PRELN
#define FIXTURE_PRELN "tests/fixtures/sasrec_preln_tiny.bin"
#endif
#ifndef FIXTURE_GBCE
#define FIXTURE_GBCE "tests/fixtures/cloze_gbce_tiny.bin"
#endif

/* ------------------------------------------------------------ fixture */

typedef struct tensor {
	char name[64];
	size_t ndim, dims[4], n;
	float *data;
} tensor;

static tensor *tens;
static size_t ntens;

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* Load the fixture; any problem fails the test that asked. */
static void load_fixture(const char *path)
{
	FILE *fp = fopen(path, "rb");
	ck_assert_msg(fp != NULL, "cannot open '%s' (run from the top)",
		      path);
	static unsigned char buf[1 << 20];
	size_t len = fread(buf, 1, sizeof buf, fp);
	fclose(fp);
	ck_assert_msg(len >= 20 && len < sizeof buf, "fixture size %zu", len);
	uint64_t h = 0xcbf29ce484222325ULL, want = 0;
	for (size_t i = 0; i < len - 8; i++)
		h = (h ^ buf[i]) * 0x100000001b3ULL;
	for (int i = 7; i >= 0; i--)
		want = want << 8 | buf[len - 8 + (size_t)i];
	ck_assert_msg(h == want, "fixture checksum mismatch");
	ck_assert(memcmp(buf, "CSTF", 4) == 0);
	ck_assert_uint_eq(le32(buf + 4), 1);
	ntens = le32(buf + 8);
	tens = calloc(ntens, sizeof *tens);
	size_t at = 12, end = len - 8;
	for (size_t k = 0; k < ntens; k++) {
		tensor *t = &tens[k];
		ck_assert(at + 4 <= end);
		size_t nl = le32(buf + at);
		at += 4;
		ck_assert(nl < sizeof t->name && at + nl + 4 <= end);
		memcpy(t->name, buf + at, nl);
		at += nl;
		t->ndim = le32(buf + at);
		at += 4;
		ck_assert(t->ndim <= 4 && at + 4 * t->ndim <= end);
		t->n = 1;
		for (size_t d = 0; d < t->ndim; d++, at += 4)
			t->n *= (t->dims[d] = le32(buf + at));
		ck_assert(at + 4 * t->n <= end);
		t->data = malloc(t->n * sizeof(float) + 1);
		for (size_t i = 0; i < t->n; i++, at += 4) {
			uint32_t u = le32(buf + at);
			memcpy(&t->data[i], &u, 4);
		}
	}
	ck_assert_uint_eq(at, end);
}

static void free_fixture(void)
{
	for (size_t k = 0; k < ntens; k++)
		free(tens[k].data);
	free(tens);
	tens = NULL;
	ntens = 0;
}

/* The tensor called name, or NULL. */
static const tensor *find(const char *name)
{
	for (size_t k = 0; k < ntens; k++)
		if (strcmp(tens[k].name, name) == 0)
			return &tens[k];
	return NULL;
}

static const tensor *get(const char *name)
{
	const tensor *t = find(name);
	ck_assert_msg(t != NULL, "fixture has no tensor '%s'", name);
	return t;
}

/*
 * Compare n floats with the reference: the largest difference over the
 * largest reference magnitude must be at most rtol. Returns 1 on failure.
 */
static int compare(const char *what, const float *got, const tensor *ref,
		   size_t n, double rtol)
{
	ck_assert_msg(ref->n == n, "%s: %zu values, fixture has %zu", what, n,
		      ref->n);
	double maxd = 0.0, maxr = 0.0;
	size_t at = 0;
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)got[i] - ref->data[i]);
		if (!(d <= maxd)) { /* NaN counts as worst */
			maxd = isnan(d) ? INFINITY : d;
			at = i;
		}
		maxr = fmax(maxr, fabs(ref->data[i]));
	}
	double rel = maxd / fmax(maxr, 1e-12);
	int bad = !(rel <= rtol);
	if (bad || getenv("CS_MODEL_VERBOSE"))
		fprintf(stderr, "%-20s max diff %.3g (rel %.3g, tol %.1g) at "
			"[%zu]: %.8g vs %.8g\n", what, maxd, rel, rtol, at,
			got[at], ref->data[at]);
	return bad;
}

/* The fixture's model and batch. */
struct fix {
	cs_bert *m;
	cs_bert_work *ws;  /* its workspace */
	cs_bert_train *ts; /* its training state */
	cs_batch b;
	size_t off[8], mpos[64];
	uint32_t tok[64], pos[64], mtgt[64], ftok[64 * CS_BERT_MAXF], neg[16];
};

/*
 * Load the fixture at path, build its model and batch. config holds
 * [V C L NH P FF], then for the task heads [NF head pool combine
 * pos_weight VF_1 .. VF_NF]; objective, if there, [causal loss beta]
 * or [causal loss beta prenorm]
 * with the negatives neg and the corrections logq (which stay in the
 * fixture: the model points to them).
 */
static void fix_load(struct fix *f, const char *path)
{
	free_fixture();
	load_fixture(path);
	const tensor *ct = get("config");
	const float *cf = ct->data;
	cs_bert_config cfg;
	ck_assert(ct->n >= 6);
	cs_bert_config_default(&cfg, (size_t)cf[0]);
	cfg.C = (size_t)cf[1];
	cfg.L = (size_t)cf[2];
	cfg.NH = (size_t)cf[3];
	cfg.P = (size_t)cf[4];
	cfg.FF = (size_t)cf[5];
	cfg.hidden_dropout = cfg.attn_dropout = 0.0f;
	const tensor *obj = find("objective");
	if (obj) {
		ck_assert(obj->n == 3 || obj->n == 4);
		cfg.causal = (int)obj->data[0];
		cfg.prenorm = obj->n == 4 && obj->data[3] != 0.0f;
	}
	float pos_weight = 1.0f;
	if (ct->n > 6) {
		ck_assert(ct->n >= 11);
		cfg.NF = (size_t)cf[6];
		ck_assert(cfg.NF <= CS_BERT_MAXF && ct->n == 11 + cfg.NF);
		cfg.head = (int)cf[7];
		cfg.pool = (int)cf[8];
		cfg.combine = (int)cf[9];
		pos_weight = cf[10];
		for (size_t k = 0; k < cfg.NF; k++) {
			cfg.VF[k] = (size_t)cf[11 + k];
			snprintf(cfg.fname[k], sizeof cfg.fname[k], "f%zu", k);
		}
	}
	f->m = cs_bert_new(&cfg, 1, NULL);
	ck_assert_ptr_nonnull(f->m);
	f->ws = cs_bert_work_new(NULL);
	f->ts = cs_bert_train_new(f->m, 1, NULL);
	ck_assert(f->ws && f->ts);
	f->ts->pos_weight = pos_weight;
	if (obj) {
		f->ts->loss_kind = (int)obj->data[1];
		f->ts->gbce_beta = obj->data[2];
	}
	const tensor *logq = find("logq");
	if (logq) {
		ck_assert_uint_eq(logq->n, cfg.V);
		f->ts->logq = logq->data;
	}
	char name[80];
	size_t used = 0, inits = 0;
	for (int i = 0; i < CS_BERT_NPARAMS; i++) {
		if (!f->m->param_sizes[i])
			continue;
		snprintf(name, sizeof name, "init.%s", cs_bert_param_name(i));
		const tensor *t = get(name);
		ck_assert_uint_eq(t->n, f->m->param_sizes[i]);
		used++;
	}
	/* and no tensor the model lacks (a cloze layer on a binary head) */
	for (size_t k = 0; k < ntens; k++)
		inits += strncmp(tens[k].name, "init.", 5) == 0;
	ck_assert_uint_eq(inits, used);
	float *p = f->m->params_memory;
	for (int i = 0; i < CS_BERT_NPARAMS; i++) {
		if (!f->m->param_sizes[i])
			continue;
		snprintf(name, sizeof name, "init.%s", cs_bert_param_name(i));
		memcpy(p, get(name)->data, f->m->param_sizes[i] * sizeof *p);
		p += f->m->param_sizes[i];
	}
	const tensor *len = get("lengths"), *tok = get("tokens");
	const tensor *pos = get("positions"), *mp = get("mpos");
	const tensor *mt = get("mtgt");
	ck_assert(len->n < 8 && tok->n <= 64 && mp->n <= 64);
	f->b.B = len->n;
	f->off[0] = 0;
	for (size_t i = 0; i < len->n; i++)
		f->off[i + 1] = f->off[i] + (size_t)len->data[i];
	ck_assert_uint_eq(f->off[len->n], tok->n);
	for (size_t i = 0; i < tok->n; i++) {
		f->tok[i] = (uint32_t)tok->data[i];
		f->pos[i] = (uint32_t)pos->data[i];
	}
	for (size_t i = 0; i < mp->n; i++) {
		f->mpos[i] = (size_t)mp->data[i];
		f->mtgt[i] = (uint32_t)mt->data[i];
	}
	f->b.ftok = NULL;
	if (cfg.NF) {
		const tensor *ft = get("ftokens");
		ck_assert_uint_eq(ft->n, tok->n * cfg.NF);
		for (size_t i = 0; i < ft->n; i++)
			f->ftok[i] = (uint32_t)ft->data[i];
		f->b.ftok = f->ftok;
	}
	f->b.off = f->off;
	f->b.tok = f->tok;
	f->b.pos = f->pos;
	f->b.M = mp->n;
	f->b.mpos = f->mpos;
	f->b.mtgt = f->mtgt;
	const tensor *neg = find("neg");
	f->b.K = 0;
	f->b.neg = NULL;
	if (neg) {
		ck_assert(neg->n <= 16);
		for (size_t k = 0; k < neg->n; k++)
			f->neg[k] = (uint32_t)neg->data[k];
		f->b.K = neg->n;
		f->b.neg = f->neg;
	}
}

static void fix_setup(struct fix *f)
{
	fix_load(f, FIXTURE);
}

/* Free the model of f, its workspace and training state. */
static void fix_free(struct fix *f)
{
	cs_bert_work_free(f->ws);
	cs_bert_train_free(f->ts);
	cs_bert_free(f->m);
}

/*
 * Compare scores (M, V) of cs_bert_score with the raw reference logits:
 * pad and mask must be -inf, the rest as compare. Returns 1 on failure.
 */
static int compare_scores(const char *what, const float *s, const tensor *ref,
			  size_t M, size_t V, double rtol)
{
	float *c = malloc(M * V * sizeof *c);
	ck_assert_uint_eq(ref->n, M * V);
	for (size_t i = 0; i < M * V; i++) {
		c[i] = s[i];
		if (i % V < CS_BERT_V0) {
			ck_assert(isinf(s[i]) && s[i] < 0);
			c[i] = ref->data[i];
		}
	}
	int bad = compare(what, c, ref, M * V, rtol);
	free(c);
	return bad;
}

/*
 * Forward, backward and three AdamW steps against PyTorch on the fixture
 * at path; with reference set, on the naive sgemm and the SSE2 kernels
 * with the logits kept, else with the fast ones and the tiled loss.
 * The binary heads have one logit per scored position. The sampled
 * losses keep no logits: cs_bert_score gives them. With lazy set, the
 * steps take the lazy update (cs_bert_train.lazy, as cs-train does for the
 * sampled losses): PyTorch's weights, except the rows of wte the batch
 * never touches, which keep their initial values instead of decaying.
 */
static void against_torch(const char *path, int reference, int lazy)
{
	struct fix f;
	fix_load(&f, path);
	cs_blas_use_reference(reference);
	cs_nn_simd(!reference);
	cs_bert *m = f.m;
	size_t N = f.off[f.b.B], C = m->cfg.C, M = f.b.M;
	size_t V = m->cfg.head == CS_HEAD_CLOZE ? m->cfg.V : 1;
	int bad = 0;
	int sampled = m->cfg.head == CS_HEAD_CLOZE && f.ts->loss_kind != CS_LOSS_FULL;
	float loss;
	cs_error err;

	if (sampled) {
		const float *s;
		ck_assert_int_eq(cs_bert_score(m, f.ws, &f.b, &s, &err), 0);
		bad += compare_scores("logits", s, get("logits"), M, V, 1e-5);
	}
	/* the logits, kept; then the fast kernels take the tiled loss */
	f.ws->keep_logits = 1;
	ck_assert_int_eq(cs_bert_forward(m, f.ws, f.ts, &f.b, 0, &loss, &err), 0);
	ck_assert_int_eq(f.ws->sampled, sampled);
	if (!sampled)
		bad += compare("logits", f.ws->acts.logits, get("logits"), M * V, 1e-5);
	bad += compare("loss", &loss, get("loss"), 1, 1e-6);
	f.ws->keep_logits = reference;
	ck_assert_int_eq(cs_bert_forward(m, f.ws, f.ts, &f.b, 0, &loss, &err), 0);
	ck_assert_int_eq(f.ws->tiled, m->cfg.head == CS_HEAD_CLOZE && !reference && !sampled);
	bad += compare("loss", &loss, get("loss"), 1, 1e-6);
	bad += compare("hidden", cs_bert_hidden(m, f.ws), get("hidden"), N * C, 1e-5);
	cs_bert_zero_grad(m, f.ts);
	ck_assert_int_eq(cs_bert_backward(m, f.ws, f.ts, &err), 0);
	char name[80];
	const float *g = f.ts->grads_memory;
	for (int i = 0; i < CS_BERT_NPARAMS; i++) {
		if (!m->param_sizes[i])
			continue;
		snprintf(name, sizeof name, "grad.%s", cs_bert_param_name(i));
		bad += compare(name, g, get(name), m->param_sizes[i], 1e-4);
		g += m->param_sizes[i];
	}

	const float *ad = get("adamw")->data;
	cs_adamw o = {.lr = ad[0], .beta1 = ad[1], .beta2 = ad[2],
		      .eps = ad[3], .weight_decay = ad[4], .clip = ad[5],
		      .warmup = (long)ad[6], .total = (long)ad[7]};
	long steps = (long)ad[8];
	float losses[8];
	ck_assert(steps <= 8);
	cs_bert_zero_grad(m, f.ts); /* all of it: lazy steps leave wte's and out_b's alone */
	f.ts->lazy = lazy;
	for (long s = 0; s < steps; s++) {
		/* lazy steps note their rows in training forwards (no dropout here) */
		ck_assert_int_eq(cs_bert_forward(m, f.ws, f.ts, &f.b, lazy, &losses[s], &err),
				 0);
		cs_bert_zero_grad(m, f.ts);
		ck_assert_int_eq(cs_bert_backward(m, f.ws, f.ts, &err), 0);
		float gnorm;
		cs_bert_update(m, f.ts, &o, &gnorm);
		if (s == 0) /* clipping must be active for this to test it */
			ck_assert(gnorm > o.clip * 1.5f);
	}
	bad += compare("losses", losses, get("losses"), (size_t)steps, 1e-5);
	const float *p = m->params_memory;
	for (int i = 0; i < CS_BERT_NPARAMS; i++) {
		if (!m->param_sizes[i])
			continue;
		snprintf(name, sizeof name, "step3.%s", cs_bert_param_name(i));
		const tensor *want = get(name);
		float *lz = NULL;
		if (lazy && i == 0) { /* wte: rows no token, target or negative holds stay */
			const tensor *init = get("init.wte");
			size_t untouched = 0; /* V is the cloze head's: lazy models have it */
			lz = malloc(want->n * sizeof *lz);
			memcpy(lz, want->data, want->n * sizeof *lz);
			for (size_t v = 0; v < V; v++) {
				int used = 0;
				for (size_t k = 0; k < f.off[f.b.B]; k++)
					used |= f.tok[k] == v;
				for (size_t k = 0; k < M; k++)
					used |= f.mtgt[k] == v;
				for (size_t k = 0; k < f.b.K; k++)
					used |= f.neg[k] == v;
				if (!used) {
					memcpy(lz + v * C, init->data + v * C, C * sizeof *lz);
					untouched++;
					/* and the dense update would have changed it */
					ck_assert(fabsf(want->data[v * C] - init->data[v * C]) > 1e-6f);
				}
			}
			ck_assert_msg(untouched > 0, "%s: every row of wte is used", path);
			tensor t = *want;
			t.data = lz;
			bad += compare("step3.wte (lazy)", p, &t, m->param_sizes[i], 5e-5);
		} else {
			bad += compare(name, p, want, m->param_sizes[i], 5e-5);
		}
		free(lz);
		p += m->param_sizes[i];
	}
	fix_free(&f);
	free_fixture();
	cs_blas_use_reference(0);
	cs_nn_simd(1);
	ck_assert_msg(bad == 0, "%s: %d tensors differ from PyTorch", path, bad);
}

START_TEST(test_torch)
{
	against_torch(FIXTURE, 0, 0);
}
END_TEST

START_TEST(test_torch_reference)
{
	against_torch(FIXTURE, 1, 0);
}
END_TEST

/* The task heads: each fixture on the fast and the reference kernels. */
START_TEST(test_torch_tasks)
{
	static const char *const paths[] = {
		FIXTURE_SESSION, FIXTURE_CONCAT, FIXTURE_MEAN,
	};
	against_torch(paths[_i / 2], _i % 2, 0);
}
END_TEST

/* Causal attention and the sampled losses (scripts/torch_ref_sasrec.py):
 * each fixture on the fast and the reference kernels; the sampled losses
 * also with the lazy update. */
START_TEST(test_torch_objectives)
{
	static const char *const paths[] = {
		FIXTURE_SASREC, FIXTURE_SAMPLED, FIXTURE_GBCE, FIXTURE_PRELN,
	};
	against_torch(paths[_i / 2], _i % 2, 0);
}
END_TEST

START_TEST(test_torch_lazy)
{
	static const char *const paths[] = { FIXTURE_SAMPLED, FIXTURE_GBCE };
	against_torch(paths[_i / 2], _i % 2, 1);
}
END_TEST

/* ------------------------------------------------------------ behaviour */

/* Scores: the logits, with pad and mask at -inf; encode = hidden. */
START_TEST(test_score)
{
	struct fix f;
	fix_setup(&f);
	size_t V = f.m->cfg.V, M = f.b.M, C = f.m->cfg.C;
	const float *s;
	ck_assert_int_eq(cs_bert_score(f.m, f.ws, &f.b, &s, NULL), 0);
	const tensor *lg = get("logits");
	for (size_t i = 0; i < M; i++)
		for (size_t v = 0; v < V; v++) {
			if (v < 2)
				ck_assert(isinf(s[i * V + v]) && s[i * V + v] < 0);
			else
				ck_assert_float_eq_tol(s[i * V + v],
						       lg->data[i * V + v],
						       1e-4f);
		}
	const float *h;
	ck_assert_int_eq(cs_bert_encode(f.m, f.ws, &f.b, &h, NULL), 0);
	ck_assert_int_eq(compare("encode", h, get("hidden"),
				 f.off[f.b.B] * C, 1e-5), 0);
	fix_free(&f);
	free_fixture();
}
END_TEST

/* Scoring's shortcut (the last block at the scored positions only, no
 * dropout copies) gives the output layer the same input; the scorer's
 * scores on it are the reference logits. */
START_TEST(test_score_hidden)
{
	struct fix f;
	fix_setup(&f);
	size_t V = f.m->cfg.V, M = f.b.M, C = f.m->cfg.C;
	const float *s, *h;
	ck_assert_int_eq(cs_bert_score(f.m, f.ws, &f.b, &s, NULL), 0);
	float *full = malloc(M * C * sizeof *full), *sc = malloc(V * sizeof *sc);
	memcpy(full, f.ws->acts.hln, M * C * sizeof *full);
	ck_assert_int_eq(cs_bert_score_hidden(f.m, f.ws, &f.b, &h, NULL), 0);
	for (size_t i = 0; i < M * C; i++)
		ck_assert_float_eq_tol(h[i], full[i], 1e-5f);
	cs_error err;
	/* it stored no logits (and leaves no loss to go backward from) */
	ck_assert_uint_eq(f.ws->act_sizes[CS_BERT_NACTS - 1], 0);
	ck_assert_int_eq(cs_bert_backward(f.m, f.ws, f.ts, &err), -1);
	cs_scorer *sr = cs_scorer_new(f.m->params.wte, f.m->params.out_b, V, C, 2, "c", &err);
	ck_assert_ptr_nonnull(sr);
	const tensor *lg = get("logits");
	for (size_t i = 0; i < M; i++) {
		cs_scorer_scores(sr, h + i * C, sc);
		for (size_t v = 2; v < V; v++)
			ck_assert_float_eq_tol(sc[v], lg->data[i * V + v], 1e-4f);
	}
	cs_scorer_free(sr);
	free(full);
	free(sc);
	fix_free(&f);
	free_fixture();
}
END_TEST

/*
 * Causal attention: changing a token of a sequence leaves the hidden
 * states before it exactly as they were, and changes it and those after
 * it; with bidirectional attention (the same weights) the states before
 * it change too. Other sequences never change. Post-LN and pre-LN blocks.
 */
static const char *const causal_fixtures[] = { FIXTURE_SASREC, FIXTURE_PRELN };

START_TEST(test_causal)
{
	struct fix f;
	fix_load(&f, causal_fixtures[_i]);
	ck_assert_int_eq(f.m->cfg.prenorm, _i);
	ck_assert_int_eq(f.m->cfg.causal, 1);
	size_t C = f.m->cfg.C, N = f.off[f.b.B];
	size_t s0 = f.off[1], s1 = f.off[2], t = s0 + 4; /* sequence 1's fifth token */
	ck_assert(s1 - s0 == 8);
	uint32_t orig = f.tok[t];
	float *a = malloc(N * C * sizeof *a);
	for (int causal = 1; causal >= 0; causal--) {
		const float *h;
		f.m->cfg.causal = causal;
		f.tok[t] = orig;
		ck_assert_int_eq(cs_bert_encode(f.m, f.ws, &f.b, &h, NULL), 0);
		memcpy(a, h, N * C * sizeof *a);
		f.tok[t] = orig == 5 ? 6 : 5;
		ck_assert_int_eq(cs_bert_encode(f.m, f.ws, &f.b, &h, NULL), 0);
		for (size_t i = 0; i < N; i++) {
			float d = 0.0f;
			for (size_t c = 0; c < C; c++)
				d = fmaxf(d, fabsf(h[i * C + c] - a[i * C + c]));
			int changes = i >= s0 && i < s1 && (i >= t || !causal);
			ck_assert_msg(changes ? d > 1e-3f : d == 0.0f,
				      "%s attention: token %zu (token %zu changed) moved by %g",
				      causal ? "causal" : "bidirectional", i, t, (double)d);
		}
	}
	free(a);
	fix_free(&f);
	free_fixture();
}
END_TEST

/*
 * A causal model's scoring shortcut (the last block at the scored
 * positions only, each seeing itself and its past) gives the output layer
 * the final hidden states of the full forward there: PyTorch's, at every
 * token of the fixture scored in reverse order; its output equals
 * cs_bert_score's, and the scorer's scores are the reference logits.
 * Post-LN (the hidden states before the output transform) and pre-LN
 * (after the final LayerNorm, the output layer's input).
 */
START_TEST(test_causal_score_hidden)
{
	struct fix f;
	fix_load(&f, causal_fixtures[_i]);
	ck_assert_int_eq(f.m->cfg.prenorm, _i);
	ck_assert_int_eq(f.m->cfg.causal, 1);
	size_t V = f.m->cfg.V, C = f.m->cfg.C, N = f.off[f.b.B], M = N;
	ck_assert_uint_eq(f.b.M, N);
	size_t rev[64];
	float *want = malloc(M * C * sizeof *want), *full = malloc(M * C * sizeof *full);
	float *sc = malloc(V * sizeof *sc);
	const tensor *hid = get("hidden"), *lg = get("logits");
	for (size_t i = 0; i < M; i++) {
		rev[i] = f.mpos[M - 1 - i];
		memcpy(want + i * C, hid->data + rev[i] * C, C * sizeof *want);
	}
	tensor ref = {.n = M * C, .data = want};
	cs_batch b = f.b;
	b.mpos = rev;
	b.mtgt = NULL;
	b.K = 0;
	b.neg = NULL;
	const float *s, *h;
	ck_assert_int_eq(cs_bert_score(f.m, f.ws, &b, &s, NULL), 0);
	memcpy(full, f.ws->acts.hln, M * C * sizeof *full);
	ck_assert_int_eq(cs_bert_score_hidden(f.m, f.ws, &b, &h, NULL), 0);
	ck_assert_int_eq(compare("shortcut hidden", _i ? f.ws->acts.hln : f.ws->acts.hm, &ref,
				 M * C, 1e-5), 0);
	for (size_t i = 0; i < M * C; i++)
		ck_assert_float_eq_tol(h[i], full[i], 1e-5f);
	cs_error err;
	cs_scorer *sr = cs_scorer_new(f.m->params.wte, f.m->params.out_b, V, C, 2, "c", &err);
	ck_assert_ptr_nonnull(sr);
	for (size_t i = 0; i < M; i++) {
		size_t row = M - 1 - i; /* the fixture's logits follow mpos */
		ck_assert_uint_eq(f.mpos[row], rev[i]);
		cs_scorer_scores(sr, h + i * C, sc);
		for (size_t v = 2; v < V; v++)
			ck_assert_float_eq_tol(sc[v], lg->data[row * V + v], 1e-4f);
	}
	cs_scorer_free(sr);
	free(want);
	free(full);
	free(sc);
	fix_free(&f);
	free_fixture();
}
END_TEST

/* A sequence's hidden states do not depend on its batch neighbours. */
START_TEST(test_packing)
{
	struct fix f;
	fix_setup(&f);
	size_t C = f.m->cfg.C, N = f.off[f.b.B];
	const float *h;
	ck_assert_int_eq(cs_bert_encode(f.m, f.ws, &f.b, &h, NULL), 0);
	float *all = malloc(N * C * sizeof *all);
	memcpy(all, h, N * C * sizeof *all);
	for (size_t b = 0; b < f.b.B; b++) {
		size_t off[2] = {0, f.off[b + 1] - f.off[b]};
		cs_batch one = {.B = 1, .off = off, .tok = f.tok + f.off[b],
				.pos = f.pos + f.off[b]};
		ck_assert_int_eq(cs_bert_encode(f.m, f.ws, &one, &h, NULL), 0);
		for (size_t i = 0; i < off[1] * C; i++)
			ck_assert_float_eq_tol(h[i], all[f.off[b] * C + i],
					       1e-5f);
	}
	free(all);
	fix_free(&f);
	free_fixture();
}
END_TEST

/* A model of cfg with weights from seed, its workspace, and its training
 * state with the dropout stream of seed. */
typedef struct trained {
	cs_bert *m;
	cs_bert_work *ws;
	cs_bert_train *ts;
} trained;

static trained trained_new(const cs_bert_config *cfg, uint64_t seed)
{
	trained tr = { cs_bert_new(cfg, seed, NULL), cs_bert_work_new(NULL), NULL };
	ck_assert(tr.m && tr.ws);
	tr.ts = cs_bert_train_new(tr.m, seed, NULL);
	ck_assert_ptr_nonnull(tr.ts);
	return tr;
}

static void trained_free(trained *tr)
{
	cs_bert_work_free(tr->ws);
	cs_bert_train_free(tr->ts);
	cs_bert_free(tr->m);
}

/* Dropout: the same seed gives the same bits, another seed does not. */
START_TEST(test_dropout_seed)
{
	struct fix f;
	fix_setup(&f);
	cs_bert_config cfg = f.m->cfg;
	cfg.hidden_dropout = 0.3f;
	cfg.attn_dropout = 0.2f;
	float loss[3][2];
	size_t n = 0;
	float *g[3];
	uint64_t seeds[3] = {5, 5, 6};
	for (int k = 0; k < 3; k++) {
		trained tr = trained_new(&cfg, seeds[k]);
		cs_bert *m = tr.m;
		memcpy(m->params_memory, f.m->params_memory,
		       m->nparams * sizeof(float));
		for (int s = 0; s < 2; s++)
			ck_assert_int_eq(cs_bert_forward(m, tr.ws, tr.ts, &f.b, 1,
							 &loss[k][s], NULL), 0);
		cs_bert_zero_grad(m, tr.ts);
		ck_assert_int_eq(cs_bert_backward(m, tr.ws, tr.ts, NULL), 0);
		n = m->nparams;
		g[k] = malloc(n * sizeof(float));
		memcpy(g[k], tr.ts->grads_memory, n * sizeof(float));
		trained_free(&tr);
	}
	ck_assert(memcmp(loss[0], loss[1], sizeof loss[0]) == 0);
	ck_assert(memcmp(g[0], g[1], n * sizeof(float)) == 0);
	ck_assert(loss[0][0] != loss[0][1]); /* a new mask each forward */
	ck_assert(loss[0][0] != loss[2][0]);
	/* eval mode has no dropout: equals the dropout-free model */
	float l0, l1;
	ck_assert_int_eq(cs_bert_forward(f.m, f.ws, f.ts, &f.b, 0, &l0, NULL), 0);
	ck_assert_int_eq(compare("eval loss", &l0, get("loss"), 1, 1e-6), 0);
	cfg.hidden_dropout = cfg.attn_dropout = 0.0f;
	trained tr = trained_new(&cfg, 9);
	cs_bert *m = tr.m;
	memcpy(m->params_memory, f.m->params_memory, n * sizeof(float));
	ck_assert_int_eq(cs_bert_forward(m, tr.ws, tr.ts, &f.b, 1, &l1, NULL), 0);
	ck_assert_float_eq(l0, l1);
	trained_free(&tr);
	for (int k = 0; k < 3; k++)
		free(g[k]);
	fix_free(&f);
	free_fixture();
}
END_TEST

/*
 * Data parallel (cs_bert_train.shard): the batch split into two shares, each
 * run as a share of the whole (its dropout draws, the loss over the
 * whole batch's targets), gives the loss and gradients of the whole
 * batch summed, up to the order of the sums: what cs_train sums over
 * processes. Off by one share's tokens in the dropout stream, or divided
 * by the share's own targets, it does not.
 */
static void shard_run(const struct fix *f, const cs_bert_config *cfg, int skew, float *g,
		      double *loss)
{
	trained tr = trained_new(cfg, 7);
	cs_bert *m = tr.m;
	memcpy(m->params_memory, f->m->params_memory, m->nparams * sizeof(float));
	const cs_batch *w = &f->b;
	size_t B = w->B, cut = B / 2, NH = cfg->NH;
	cs_bert_zero_grad(m, tr.ts);
	*loss = 0;
	for (int s = 0; s < 2; s++) {
		size_t s0 = s ? cut : 0, s1 = s ? B : cut, t0 = w->off[s0], M = 0;
		size_t off[8], mpos[64];
		uint32_t mtgt[64];
		for (size_t i = s0; i <= s1; i++)
			off[i - s0] = w->off[i] - t0;
		for (size_t i = 0; i < w->M; i++)
			if (w->mpos[i] >= t0 && w->mpos[i] < w->off[s1]) {
				mpos[M] = w->mpos[i] - t0;
				mtgt[M++] = w->mtgt[i];
			}
		cs_batch b = {.B = s1 - s0, .off = off, .tok = w->tok + t0, .pos = w->pos + t0,
			      .M = M, .mpos = mpos, .mtgt = mtgt};
		tr.ts->nforward = 0; /* one step: the same stream for both */
		tr.ts->shard.N = w->off[B] + (skew == 1);
		tr.ts->shard.A = cs_attention_size(w->off, B, NH);
		tr.ts->shard.tok0 = t0 + (skew == 1);
		tr.ts->shard.att0 = cs_attention_size(w->off, s0, NH);
		tr.ts->shard.M = skew == 2 ? (double)M : (double)w->M;
		ck_assert_int_eq(cs_bert_forward(m, tr.ws, tr.ts, &b, 1, NULL, NULL), 0);
		*loss += tr.ws->loss;
		if (M) /* as cs_train: a share without targets adds nothing */
			ck_assert_int_eq(cs_bert_backward(m, tr.ws, tr.ts, NULL), 0);
	}
	memcpy(g, tr.ts->grads_memory, m->nparams * sizeof(float));
	trained_free(&tr);
}

START_TEST(test_shards)
{
	struct fix f;
	fix_setup(&f);
	cs_bert_config cfg = f.m->cfg;
	cfg.hidden_dropout = 0.3f;
	cfg.attn_dropout = 0.2f;
	ck_assert_uint_ge(f.b.B, 2);
	trained tr = trained_new(&cfg, 7);
	cs_bert *m = tr.m;
	size_t n = m->nparams;
	memcpy(m->params_memory, f.m->params_memory, n * sizeof(float));
	float whole, *g = malloc(n * sizeof *g), *gs = malloc(n * sizeof *gs);
	ck_assert_int_eq(cs_bert_forward(m, tr.ws, tr.ts, &f.b, 1, &whole, NULL), 0);
	cs_bert_zero_grad(m, tr.ts);
	ck_assert_int_eq(cs_bert_backward(m, tr.ws, tr.ts, NULL), 0);
	memcpy(g, tr.ts->grads_memory, n * sizeof *g);
	trained_free(&tr);
	double top = 0, loss;
	for (size_t i = 0; i < n; i++)
		top = fmax(top, fabs(g[i]));
	/* 0: as cs_train; 1: the dropout stream one token off; 2: each
	 * share's loss over its own targets */
	for (int skew = 0; skew < 3; skew++) {
		shard_run(&f, &cfg, skew, gs, &loss);
		double d = 0;
		for (size_t i = 0; i < n; i++)
			d = fmax(d, fabs(gs[i] - g[i]));
		if (skew == 0) {
			ck_assert_msg(d <= 1e-5 * top, "shares' gradients off by %g of %g", d, top);
			ck_assert_double_eq_tol(loss, whole, 1e-5 * whole);
		} else {
			ck_assert_msg(d > 1e-3 * top, "skew %d: gradients off by only %g", skew, d);
		}
	}
	free(g);
	free(gs);
	fix_free(&f);
	free_fixture();
}
END_TEST

START_TEST(test_batch_errors)
{
	struct fix f;
	fix_setup(&f);
	cs_error err;
	f.tok[2] = (uint32_t)f.m->cfg.V;
	ck_assert_int_eq(cs_bert_forward(f.m, f.ws, f.ts, &f.b, 0, NULL, &err), -1);
	ck_assert_int_eq(err.code, CS_ERR_USAGE);
	ck_assert_ptr_nonnull(strstr(err.msg, "item id"));
	f.tok[2] = 3;
	f.mtgt[0] = CS_ITEM_MASK;
	ck_assert_int_eq(cs_bert_forward(f.m, f.ws, f.ts, &f.b, 0, NULL, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "cannot be predicted"));
	f.mtgt[0] = 3;
	f.mpos[0] = f.off[f.b.B];
	ck_assert_int_eq(cs_bert_forward(f.m, f.ws, f.ts, &f.b, 0, NULL, &err), -1);
	f.mpos[0] = 0;
	f.pos[0] = (uint32_t)f.m->cfg.P;
	ck_assert_int_eq(cs_bert_forward(f.m, f.ws, f.ts, &f.b, 0, NULL, &err), -1);
	f.pos[0] = 0;
	/* negatives of the sampled losses: present and predictable */
	uint32_t neg[] = {3, (uint32_t)f.m->cfg.V};
	f.b.K = 2;
	ck_assert_int_eq(cs_bert_forward(f.m, f.ws, f.ts, &f.b, 0, NULL, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "lacks its 2 negatives"));
	f.b.neg = neg;
	ck_assert_int_eq(cs_bert_forward(f.m, f.ws, f.ts, &f.b, 0, NULL, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "negative item"));
	neg[1] = 4;
	ck_assert_int_eq(cs_bert_forward(f.m, f.ws, f.ts, &f.b, 0, NULL, &err), 0);
	f.b.K = 0;
	f.b.neg = NULL;
	size_t off[] = {0, 0};
	cs_batch empty = {.B = 1, .off = off, .tok = f.tok, .pos = f.pos};
	ck_assert_int_eq(cs_bert_forward(f.m, f.ws, f.ts, &empty, 0, NULL, &err), -1);
	ck_assert_int_eq(cs_bert_forward(f.m, f.ws, f.ts, &f.b, 0, NULL, &err), 0);
	/* backward needs targets */
	cs_batch noT = f.b;
	noT.mtgt = NULL;
	ck_assert_int_eq(cs_bert_forward(f.m, f.ws, f.ts, &noT, 0, NULL, &err), 0);
	ck_assert_int_eq(cs_bert_backward(f.m, f.ws, f.ts, &err), -1);
	cs_bert_config bad = f.m->cfg;
	bad.NH = 3;
	ck_assert_ptr_null(cs_bert_new(&bad, 1, &err));
	ck_assert_int_eq(err.code, CS_ERR_USAGE);
	fix_free(&f);
	cs_bert_free(NULL);
	free_fixture();
}
END_TEST

/*
 * Training sanity: sequences count up through the catalogue (s, s+1, ...
 * wrapping), a third of the positions masked, so a masked item is its
 * left neighbour's successor. The loss must fall from about log(37) to
 * under half of it in 400 steps of 32 sequences (about 1 s).
 */
/* A frozen encoder: the update changes the head only; unfrozen, both.
 * cs_bert_copy_encoder copies exactly the encoder. */
START_TEST(test_freeze)
{
	cs_bert_config cfg;
	cs_bert_config_default(&cfg, 30);
	cfg.C = 8;
	cfg.P = 8;
	cfg.FF = 16;
	cfg.head = CS_HEAD_SESSION;
	cfg.hidden_dropout = cfg.attn_dropout = 0.0f;
	trained tr = trained_new(&cfg, 3);
	cs_bert *m = tr.m;
	ck_assert_ptr_nonnull(m);
	size_t off[] = {0, 3, 7};
	uint32_t tok[] = {4, 5, 1, 9, 8, 7, 1}, pos[] = {0, 1, 2, 0, 1, 2, 3};
	size_t mpos[] = {2, 6};
	uint32_t y[] = {1, 0};
	cs_batch b = {.B = 2, .off = off, .tok = tok, .pos = pos, .M = 2, .mpos = mpos, .mtgt = y};
	cs_adamw o;
	cs_adamw_default(&o);
	o.lr = 0.01f;
	o.warmup = 0;
	o.total = 100;
	float *before = malloc(m->nparams * sizeof *before);
	for (int frozen = 1; frozen >= 0; frozen--) {
		memcpy(before, m->params_memory, m->nparams * sizeof *before);
		tr.ts->frozen = frozen;
		ck_assert_int_eq(cs_bert_forward(m, tr.ws, tr.ts, &b, 1, NULL, NULL), 0);
		cs_bert_zero_grad(m, tr.ts);
		ck_assert_int_eq(cs_bert_backward(m, tr.ws, tr.ts, NULL), 0);
		cs_bert_update(m, tr.ts, &o, NULL);
		size_t p = 0;
		for (int i = 0; i < CS_BERT_NPARAMS; i++) {
			size_t n = m->param_sizes[i];
			int same = !memcmp(before + p, m->params_memory + p, n * sizeof *before);
			if (n && (i == 0 || i == 4 || i == 24)) /* wte, qkv_w, pool_w */
				ck_assert_msg(same == (frozen && cs_bert_param_encoder(i)),
					      "%s %s with frozen=%d", cs_bert_param_name(i),
					      same ? "unchanged" : "changed", frozen);
			p += n;
		}
	}
	/* the encoder of m into a fresh model with a different head */
	cs_bert_config c2 = cfg;
	c2.head = CS_HEAD_CLOZE;
	cs_bert *m2 = cs_bert_new(&c2, 4, NULL);
	ck_assert_int_eq(cs_bert_copy_encoder(m2, m, NULL), 0);
	ck_assert(!memcmp(m2->params.qkv_w, m->params.qkv_w, m->param_sizes[4] * sizeof(float)));
	ck_assert(!memcmp(m2->params.wte, m->params.wte, m->param_sizes[0] * sizeof(float)));
	c2.P = 9;
	cs_bert *m3 = cs_bert_new(&c2, 4, NULL);
	cs_error err;
	ck_assert_int_eq(cs_bert_copy_encoder(m3, m, &err), -1);
	ck_assert_msg(strstr(err.msg, "'wpe'") != NULL, "%s", err.msg);
	free(before);
	trained_free(&tr);
	cs_bert_free(m2);
	cs_bert_free(m3);
}
END_TEST

/* A batch needs the memory cs_bert_mem_bytes says, and a model with a
 * limit refuses a batch beyond it before allocating anything for it. */
START_TEST(test_memory)
{
	cs_bert_config cfg;
	cs_bert_config_default(&cfg, 30);
	cfg.C = 8;
	cfg.P = 8;
	cfg.FF = 16;
	size_t off[] = {0, 3, 7};
	uint32_t tok[] = {4, 1, 6, 9, 8, 1, 5}, pos[] = {0, 1, 2, 0, 1, 2, 3};
	size_t mpos[] = {1, 5};
	uint32_t y[] = {5, 7};
	cs_batch b = {.B = 2, .off = off, .tok = tok, .pos = pos, .M = 2, .mpos = mpos, .mtgt = y};
	double A = (double)cs_attention_size(off, 2, cfg.NH);
	double train = cs_bert_mem_bytes(&cfg, 7, A, 2, 1), score = cs_bert_mem_bytes(&cfg, 7, A, 2, 0);
	trained tr = trained_new(&cfg, 3);
	cs_bert *m = tr.m;
	ck_assert_int_eq(cs_bert_forward(m, tr.ws, tr.ts, &b, 1, NULL, NULL), 0);
	ck_assert_int_eq(cs_bert_backward(m, tr.ws, tr.ts, NULL), 0);
	/* training takes the tiled loss: no logits stored, its scratch instead */
	ck_assert(tr.ws->tiled && tr.ws->act_sizes[CS_BERT_NACTS - 1] == 0);
	ck_assert(train == 4.0 * (4.0 * (double)m->nparams + 2.0 * (double)tr.ws->nacts +
				  (double)tr.ws->ce_cap));
	/* scoring stores the logits (M = 2, V), and needs no training state */
	ck_assert(score == 4.0 * ((double)m->nparams + (double)tr.ws->nacts + 2.0 * cfg.V));
	trained_free(&tr);
	/* exactly enough passes; a byte less is refused */
	tr = trained_new(&cfg, 3);
	m = tr.m;
	tr.ws->mem_limit = train;
	ck_assert_int_eq(cs_bert_forward(m, tr.ws, tr.ts, &b, 1, NULL, NULL), 0);
	trained_free(&tr);
	tr = trained_new(&cfg, 3);
	m = tr.m;
	tr.ws->mem_limit = train - 1;
	cs_error err;
	ck_assert_int_eq(cs_bert_forward(m, tr.ws, tr.ts, &b, 1, NULL, &err), -1);
	ck_assert_int_eq(err.code, CS_ERR_LIMIT);
	ck_assert_ptr_null(tr.ws->acts_memory);
	ck_assert_msg(strstr(err.msg, "to train on batches of 2 sequences of up to 4 events "
			     "(hidden 8, ff 16, layers 2, heads 2, max length 8, items 30)"),
		      "%s", err.msg);
	/* scoring needs no activation gradients */
	ck_assert_int_eq(cs_bert_forward(m, tr.ws, tr.ts, &b, 0, NULL, &err), 0);
	trained_free(&tr);
	/* a hostile config: 128 sequences of 65536 tokens need 10^17 bytes */
	cfg.C = 4;
	cfg.NH = 1;
	cfg.L = 1024;
	cfg.FF = 1048576;
	cfg.P = 65536;
	double big = cs_bert_mem_bytes(&cfg, 128.0 * 65536, 128.0 * 65536 * 65536, 128.0 * 65536, 1);
	ck_assert(big > 1e17 && isfinite(big));
	ck_assert_int_eq(cs_bert_mem_check(&cfg, 128, 65536, 128.0 * 65536, 128.0 * 65536 * 65536,
					   128.0 * 65536, 1, 8.0 * (1 << 30), "x.bin", &err), -1);
	ck_assert_str_eq(err.path, "x.bin");
	ck_assert_msg(strstr(err.msg, "over the limit of 8.0 GiB"), "%s", err.msg);
	ck_assert_int_eq(cs_bert_mem_check(&cfg, 128, 65536, 128.0 * 65536, 128.0 * 65536 * 65536,
					   128.0 * 65536, 1, 0, "x.bin", &err), 0);
}
END_TEST

/*
 * Finite weights whose scores overflow: the recommender refuses them
 * (CS_ERR_MODEL) where its top-k used to drop the NaN and inf scores. The
 * head's output is made exactly 1 in every channel, so that an item whose
 * embedding is 3e38 in all 8 channels scores 2.4e39 (inf as a float).
 */
START_TEST(test_recommend_overflow)
{
	cs_bert_config cfg;
	cs_bert_config_default(&cfg, 30);
	cfg.C = 8;
	cfg.P = 8;
	cfg.FF = 16;
	cs_bert *m = cs_bert_new(&cfg, 3, NULL);
	ck_assert_ptr_nonnull(m);
	for (size_t c = 0; c < cfg.C; c++) {
		m->params.headln_w[c] = 0;
		m->params.headln_b[c] = 1;
	}
	size_t off[] = { 0, 3, 5 };
	uint32_t item[] = { 4, 5, 6, 7, 8 }, ids[2 * 5];
	float vals[2 * 5];
	size_t n[2];
	cs_dataset d = { .n = 2, .off = off, .item = item };
	cs_error err;
	cs_recommender *r = cs_recommender_new(m, 2, "c", 0, &err);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(cs_recommender_run(r, &d, 0, 2, 5, 0, ids, vals, n, &err), 0);
	ck_assert_uint_eq(n[0], 5);
	cs_recommender_free(r);
	for (size_t c = 0; c < cfg.C; c++)
		m->params.wte[20 * cfg.C + c] = 3e38f;
	r = cs_recommender_new(m, 2, "c", 0, &err);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(cs_recommender_run(r, &d, 0, 2, 5, 0, ids, vals, n, &err), -1);
	ck_assert_int_eq(err.code, CS_ERR_MODEL);
	ck_assert_msg(strstr(err.msg, "out of the float range"), "%s", err.msg);
	cs_recommender_free(r);
	cs_bert_free(m);
}
END_TEST

/*
 * The training state (gradients, AdamW moments) is an object of its own,
 * which only training makes; two workspaces over one model score exactly
 * as one does, without copying its weights; a training forward needs a
 * training state; a recommender on two threads (each its own workspace)
 * ranks as one does.
 */
START_TEST(test_share)
{
	struct fix f;
	fix_setup(&f);
	const cs_bert *m = f.m;
	size_t M = f.b.M, C = m->cfg.C;
	const float *h;
	ck_assert_int_eq(cs_bert_score_hidden(m, f.ws, &f.b, &h, NULL), 0);
	float *want = malloc(M * C * sizeof *want);
	memcpy(want, h, M * C * sizeof *want);
	cs_error err;
	cs_bert_work *s = cs_bert_work_new(&err);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(cs_bert_score_hidden(m, s, &f.b, &h, NULL), 0);
	ck_assert_ptr_ne(h, f.ws->acts.hln); /* its own activations */
	ck_assert_mem_eq(h, want, M * C * sizeof *want);
	ck_assert_int_eq(cs_bert_forward(m, s, NULL, &f.b, 1, NULL, &err), -1);
	ck_assert_msg(strstr(err.msg, "needs a training state"), "%s", err.msg);
	cs_bert_work_free(s);
	/* m's weights are still there; training state in the parameters' layout */
	ck_assert_int_eq(cs_bert_score_hidden(m, f.ws, &f.b, &h, NULL), 0);
	ck_assert_mem_eq(h, want, M * C * sizeof *want);
	cs_bert_train *t = f.ts;
	ck_assert(t->grads_memory && t->m_memory && t->v_memory);
	ck_assert_ptr_eq(t->grads.wte, t->grads_memory);
	cs_bert_zero_grad(m, t);
	ck_assert_int_eq(cs_bert_forward(m, f.ws, t, &f.b, 1, NULL, NULL), 0);
	ck_assert_int_eq(cs_bert_backward(m, f.ws, t, NULL), 0);
	cs_adamw o;
	cs_adamw_default(&o);
	cs_bert_update(f.m, t, &o, NULL);
	/* a checkpoint holds the moments, a model file read back has none */
	cs_modelfile *mf = cs_bert_to_file(m, t, 42, 1, &err);
	ck_assert_ptr_nonnull(mf);
	uint64_t fp;
	cs_bert *b = cs_bert_from_file(mf, "x", &fp, &err);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_null(cs_bert_to_file(b, NULL, 42, 1, &err));
	cs_bert_train *bt = cs_bert_train_from_file(b, mf, "x", &err);
	ck_assert_ptr_nonnull(bt);
	ck_assert_mem_eq(bt->v_memory, t->v_memory, m->nparams * sizeof(float));
	ck_assert_int_eq(bt->step, 1);
	ck_assert_uint_eq(bt->nforward, t->nforward);
	ck_assert_uint_eq(bt->seed, t->seed);
	cs_bert_train_free(bt);
	cs_bert_free(b);
	cs_modelfile_free(mf);
	free(want);
	fix_free(&f);
	free_fixture();
}
END_TEST

/* The top items of a recommender on two threads (each its own activations,
 * the weights shared) are those of one thread, their scores too but for
 * the rounding of the encoder's products (the threads' chunks differ). */
START_TEST(test_recommend_threads)
{
	cs_bert_config cfg;
	cs_bert_config_default(&cfg, 40);
	cfg.C = 8;
	cfg.P = 8;
	cfg.FF = 16;
	cs_bert *m = cs_bert_new(&cfg, 5, NULL);
	ck_assert_ptr_nonnull(m);
	enum { NH = 9, K = 4 };
	size_t off[NH + 1] = { 0 };
	uint32_t item[NH * 6];
	for (size_t i = 0; i < NH; i++) {
		off[i + 1] = off[i] + 1 + i % 6;
		for (size_t j = off[i]; j < off[i + 1]; j++)
			item[j] = (uint32_t)(3 + (7 * j + i) % 37);
	}
	cs_dataset d = { .n = NH, .off = off, .item = item };
	uint32_t ids[2][NH * K];
	float vals[2][NH * K];
	size_t n[2][NH];
	cs_error err;
	for (int t = 0; t < 2; t++) {
#ifdef _OPENMP
		omp_set_num_threads(t + 1);
#endif
		cs_recommender *r = cs_recommender_new(m, NH, "c", 0, &err);
		ck_assert_ptr_nonnull(r);
		ck_assert_int_eq(cs_recommender_run(r, &d, 0, NH, K, 0, ids[t], vals[t], n[t],
						    &err), 0);
		cs_recommender_free(r);
	}
	ck_assert_mem_eq(n[0], n[1], sizeof n[0]);
	ck_assert_mem_eq(ids[0], ids[1], sizeof ids[0]);
	for (size_t i = 0; i < NH * K; i++)
		ck_assert_float_eq_tol(vals[0][i], vals[1][i], 1e-6f);
	cs_bert_free(m);
}
END_TEST

START_TEST(test_training)
{
	cs_bert_config cfg;
	cs_bert_config_default(&cfg, 40);
	cfg.C = 32;
	cfg.P = 16;
	cfg.FF = 4 * cfg.C;
	cfg.hidden_dropout = cfg.attn_dropout = 0.1f;
	trained tr = trained_new(&cfg, 42);
	cs_bert *m = tr.m;
	ck_assert_ptr_nonnull(m);
	cs_adamw o;
	cs_adamw_default(&o);
	o.lr = 5e-3f;
	o.warmup = 10;
	o.total = 400;
	enum { B = 32, NMAX = B * 16 };
	size_t off[B + 1], mpos[NMAX];
	uint32_t tok[NMAX], pos[NMAX], mtgt[NMAX];
	cs_nn_rng r;
	cs_nn_rng_seed(&r, 7);
	size_t items = cfg.V - CS_ITEM_FIRST;
	double first = 0.0, last = 0.0;
	for (long step = 0; step < o.total; step++) {
		size_t N = 0, M = 0;
		off[0] = 0;
		for (size_t b = 0; b < B; b++) {
			size_t T = 4 + cs_nn_rng_next(&r) % 13;
			size_t s = cs_nn_rng_next(&r) % items;
			for (size_t t = 0; t < T; t++, N++) {
				tok[N] = (uint32_t)(CS_ITEM_FIRST +
						    (s + t) % items);
				pos[N] = (uint32_t)t;
				if (cs_nn_rng_uniform(&r) < 0.3f ||
				    t == T - 1) {
					mpos[M] = N;
					mtgt[M++] = tok[N];
					tok[N] = CS_ITEM_MASK;
				}
			}
			off[b + 1] = N;
		}
		cs_batch bt = {.B = B, .off = off, .tok = tok, .pos = pos,
			       .M = M, .mpos = mpos, .mtgt = mtgt};
		float loss;
		ck_assert_int_eq(cs_bert_forward(m, tr.ws, tr.ts, &bt, 1, &loss, NULL), 0);
		cs_bert_zero_grad(m, tr.ts);
		ck_assert_int_eq(cs_bert_backward(m, tr.ws, tr.ts, NULL), 0);
		cs_bert_update(m, tr.ts, &o, NULL);
		if (step < 5)
			first += loss / 5;
		if (step >= o.total - 5)
			last += loss / 5;
	}
	fprintf(stderr, "training: loss %.3f -> %.3f\n", first, last);
	ck_assert_msg(first > 3.0 && last < 0.5 * first,
		      "loss %.3f -> %.3f", first, last);
	trained_free(&tr);
}
END_TEST

/*
 * A tiny model of V items with weights from seed, written (item vocabulary
 * fingerprint 42) to a new temporary file whose name goes into path.
 */
static cs_bert *tiny_model_file(size_t V, uint64_t seed, char path[28])
{
	cs_bert_config cfg;
	cs_bert_config_default(&cfg, V);
	cfg.C = 8;
	cfg.NH = 2;
	cfg.FF = 16;
	cfg.P = 8;
	cs_error err;
	cs_bert *m = cs_bert_new(&cfg, seed, &err);
	ck_assert_ptr_nonnull(m);
	strcpy(path, "/tmp/cs-check-model.XXXXXX");
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	cs_modelfile *w = cs_bert_to_file(m, NULL, 42, 0, &err);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(cs_modelfile_write(w, path, &err), 0);
	cs_modelfile_free(w);
	return m;
}

/* A model file read back both ways (tensors copied out, or left in the
 * file's image) holds the values written, and loads into the same model. */
START_TEST(test_modelfile_read)
{
	cs_error err;
	char path[28];
	cs_bert *m = tiny_model_file(50, 7, path);
	for (int lazy = 0; lazy < 2; lazy++) {
		cs_modelfile *mf = lazy ? cs_modelfile_open(path, &err) : cs_modelfile_read(path, &err);
		ck_assert_ptr_nonnull(mf);
		const float *p = m->params_memory;
		float *got = malloc(m->nparams * sizeof *got);
		for (int i = 0; i < CS_BERT_NPARAMS; i++) {
			if (!m->param_sizes[i])
				continue;
			const cs_tensor *t = cs_modelfile_find(mf, cs_bert_param_name(i));
			ck_assert_ptr_nonnull(t);
			ck_assert_uint_eq(t->n, m->param_sizes[i]);
			ck_assert(lazy ? !t->data && t->src : t->data && !t->src);
			cs_tensor_get(t, got);
			ck_assert_msg(!memcmp(got, p, t->n * sizeof *got), "%s, lazy %d", t->name, lazy);
			ck_assert_uint_eq(cs_tensor_first_nonfinite(t), t->n);
			ck_assert(cs_tensor_at(t, t->n - 1) == p[t->n - 1]);
			p += t->n;
		}
		uint64_t fp = 0;
		cs_bert *b = cs_bert_from_file(mf, path, &fp, &err);
		ck_assert_ptr_nonnull(b);
		ck_assert_uint_eq(fp, 42);
		ck_assert(!memcmp(b->params_memory, m->params_memory, m->nparams * sizeof(float)));
		cs_bert_free(b);
		free(got);
		cs_modelfile_free(mf);
	}
	unlink(path);
	cs_bert_free(m);
}
END_TEST

/* The bytes of a file (*n of them). */
static unsigned char *slurp_file(const char *path, size_t *n)
{
	FILE *fp = fopen(path, "rb");
	ck_assert_ptr_nonnull(fp);
	fseek(fp, 0, SEEK_END);
	long len = ftell(fp);
	rewind(fp);
	unsigned char *b = malloc((size_t)len);
	ck_assert(fread(b, 1, (size_t)len, fp) == (size_t)len);
	fclose(fp);
	*n = (size_t)len;
	return b;
}

static void spill_file(const char *path, const unsigned char *b, size_t n)
{
	FILE *fp = fopen(path, "wb");
	ck_assert_ptr_nonnull(fp);
	ck_assert(fwrite(b, 1, n, fp) == n);
	ck_assert_int_eq(fclose(fp), 0);
}

/* The model of a file, read through the file's image, or NULL with err. */
static cs_bert *load_model(const char *path, cs_error *err)
{
	cs_modelfile *mf = cs_modelfile_open(path, err);
	if (!mf)
		return NULL;
	uint64_t fp;
	cs_bert *b = cs_bert_from_file(mf, path, &fp, err);
	cs_modelfile_free(mf);
	return b;
}

/*
 * Files are written in version 2, checksummed with XXH64; a version 1 file
 * (the same bytes, FNV-1a's checksum: every file written before) loads as
 * before, into the same model. A flipped byte in either is refused as a
 * checksum mismatch, as is either version under the other's checksum.
 */
START_TEST(test_modelfile_versions)
{
	cs_error err;
	char path[28];
	cs_bert *m = tiny_model_file(40, 11, path);
	size_t n;
	unsigned char *b = slurp_file(path, &n);
	uint32_t version;
	uint64_t sum, fnv = cs_hash64(b, n - 8, CS_HASH64_INIT), xxh = cs_xxh64(b, n - 8, 0);
	memcpy(&version, b + 4, 4);
	memcpy(&sum, b + n - 8, 8);
	ck_assert_uint_eq(version, 2);
	ck_assert(CS_MODELFILE_VERSION == 2);
	ck_assert(sum == xxh && sum != fnv);
	ck_assert(cs_modelfile_checksum(2, b, n - 8) == xxh);
	ck_assert(cs_modelfile_checksum(1, b, n - 8) == fnv);
	for (int v = 1; v <= 2; v++) {
		unsigned char *c = malloc(n);
		memcpy(c, b, n);
		c[4] = (unsigned char)v;
		uint64_t s2 = cs_modelfile_checksum((uint32_t)v, c, n - 8);
		memcpy(c + n - 8, &s2, 8);
		spill_file(path, c, n);
		cs_bert *r = load_model(path, &err);
		ck_assert_msg(r != NULL, "version %d: %s", v, err.msg);
		ck_assert(r->nparams == m->nparams &&
			  !memcmp(r->params_memory, m->params_memory, m->nparams * sizeof(float)));
		cs_bert_free(r);
		cs_modelfile *mf = cs_modelfile_read(path, &err); /* copied out */
		ck_assert_ptr_nonnull(mf);
		cs_modelfile_free(mf);
		/* a byte of a tensor flipped, the checksum left */
		c[n / 2] ^= 0x40;
		spill_file(path, c, n);
		ck_assert_ptr_null(load_model(path, &err));
		ck_assert_str_eq(err.msg, "corrupt model file (checksum mismatch)");
		ck_assert_str_eq(err.path, path);
		ck_assert_ptr_null(cs_modelfile_read(path, &err));
		ck_assert_str_eq(err.msg, "corrupt model file (checksum mismatch)");
		c[n / 2] ^= 0x40;
		/* the other version's checksum */
		uint64_t s3 = cs_modelfile_checksum((uint32_t)(3 - v), c, n - 8);
		memcpy(c + n - 8, &s3, 8);
		spill_file(path, c, n);
		ck_assert_ptr_null(load_model(path, &err));
		ck_assert_str_eq(err.msg, "corrupt model file (checksum mismatch)");
		free(c);
	}
	/* cs_bert_load, which builds the model in the file's own buffer when
	 * the tensors lie in the parameters' order (as cs writes them), and
	 * copies them out otherwise: the tensors in reverse order */
	for (int rev = 0; rev < 2; rev++) {
		cs_modelfile *w2 = cs_bert_to_file(m, NULL, 42, 0, &err);
		for (size_t i = 0; rev && i < w2->ntensors / 2; i++) {
			cs_tensor t = w2->t[i];
			w2->t[i] = w2->t[w2->ntensors - 1 - i];
			w2->t[w2->ntensors - 1 - i] = t;
		}
		ck_assert_int_eq(cs_modelfile_write(w2, path, &err), 0);
		cs_modelfile_free(w2);
		uint64_t fp = 0;
		cs_bert *r = cs_bert_load(path, &fp, NULL, &err);
		ck_assert_msg(r != NULL, "%s", err.msg);
		ck_assert_uint_eq(fp, 42);
		ck_assert_msg(r->nparams == m->nparams && !memcmp(r->params_memory, m->params_memory,
								  m->nparams * sizeof(float)),
			      "reversed %d", rev);
		cs_bert_free(r);
	}
	/* a version this program does not know yet */
	b[4] = 3;
	spill_file(path, b, n);
	ck_assert_ptr_null(load_model(path, &err));
	ck_assert_int_eq(err.code, CS_ERR_VERSION);
	ck_assert_msg(strstr(err.msg, "version 3 is newer") != NULL, "%s", err.msg);
	free(b);
	unlink(path);
	cs_bert_free(m);
}
END_TEST

/* The first value that is not finite, in a tensor's own array or in a
 * file's image at any alignment: the one a scan value by value finds,
 * wherever it lies (in a block of 16, in the tail), NaNs and infinities
 * of either sign, and none in a finite tensor (the largest floats, zeros,
 * subnormals included). */
START_TEST(test_tensor_nonfinite)
{
	const float odd[] = { NAN, -NAN, INFINITY, -INFINITY };
	unsigned char *img = malloc(4 * 300 + 8);
	float *v = malloc(300 * sizeof *v);
	uint64_t r = 12345;
	for (int trial = 0; trial < 400; trial++) {
		r ^= r << 13, r ^= r >> 7, r ^= r << 17;
		size_t n = (size_t)(r % 300), off = (size_t)(r >> 20) % 8;
		for (size_t i = 0; i < n; i++) {
			r ^= r << 13, r ^= r >> 7, r ^= r << 17;
			v[i] = i % 7 == 3 ? FLT_MAX * (i % 2 ? -1 : 1) : i % 11 == 5 ? 1e-42f
									: (float)(int64_t)r * 1e-18f;
		}
		size_t at = n;
		if (n && trial % 4) {
			at = (size_t)(r >> 33) % n;
			v[at] = odd[trial % 4];
			if (trial % 3 == 0 && at + 1 < n) /* a second one after it */
				v[at + 1 + (size_t)(r >> 45) % (n - at - 1)] = odd[(trial + 1) % 4];
		}
		memcpy(img + off, v, n * sizeof *v);
		cs_tensor a = { .name = "a", .data = v, .n = n };
		cs_tensor b = { .name = "b", .n = n, .src = img + off };
		size_t want = n;
		for (size_t i = 0; i < n; i++)
			if (!isfinite(v[i])) {
				want = i;
				break;
			}
		ck_assert_uint_eq(want, at);
		ck_assert_uint_eq(cs_tensor_first_nonfinite(&a), want);
		ck_assert_uint_eq(cs_tensor_first_nonfinite(&b), want);
	}
	free(img);
	free(v);
}
END_TEST

int main(void)
{
	cs_blas_init(1);
	Suite *s = suite_create("model");
	TCase *tc = tcase_create("model");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_torch);
	tcase_add_test(tc, test_torch_reference);
	tcase_add_loop_test(tc, test_torch_tasks, 0, 6);
	tcase_add_loop_test(tc, test_torch_objectives, 0, 8);
	tcase_add_loop_test(tc, test_torch_lazy, 0, 4);
	tcase_add_test(tc, test_score);
	tcase_add_test(tc, test_score_hidden);
	tcase_add_test(tc, test_packing);
	tcase_add_loop_test(tc, test_causal, 0, 2);
	tcase_add_loop_test(tc, test_causal_score_hidden, 0, 2);
	tcase_add_test(tc, test_dropout_seed);
	tcase_add_test(tc, test_shards);
	tcase_add_test(tc, test_batch_errors);
	tcase_add_test(tc, test_training);
	tcase_add_test(tc, test_freeze);
	tcase_add_test(tc, test_memory);
	tcase_add_test(tc, test_recommend_overflow);
	tcase_add_test(tc, test_share);
	tcase_add_test(tc, test_recommend_threads);
	tcase_add_test(tc, test_modelfile_read);
	tcase_add_test(tc, test_modelfile_versions);
	tcase_add_test(tc, test_tensor_nonfinite);
	suite_add_tcase(s, tc);
	return check_run(s);
}
