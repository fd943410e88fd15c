/*
 * model.c - BERT4Rec forward, backward and update over packed batches
 * (see model.h; the letters are nn.h's legend).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "model.h"

/* ------------------------------------------------------------ config */

void cs_bert_config_default(cs_bert_config *cfg, size_t V)
{
	cfg->V = V;
	cfg->C = 64;
	cfg->L = 2;
	cfg->NH = 2;
	cfg->P = 50;
	cfg->FF = 4 * cfg->C;
	cfg->hidden_dropout = 0.5f;
	cfg->attn_dropout = 0.2f;
	cfg->init_range = 0.02f;
	cfg->NF = 0;
	cfg->combine = CS_COMBINE_SUM;
	cfg->head = CS_HEAD_CLOZE;
	cfg->pool = CS_POOL_CLS;
	cfg->pred = 0;
	cfg->causal = 0;
	cfg->prenorm = 0;
}

static const char *const head_names[] = { "cloze", "session", "event" };
static const char *const pool_names[] = { "cls", "mean" };
static const char *const combine_names[] = { "sum", "concat" };

static int name_parse(const char *const *names, int n, const char *s)
{
	for (int i = 0; s && i < n; i++)
		if (!strcmp(names[i], s))
			return i;
	return -1;
}

const char *cs_bert_head_name(int h) { return h >= 0 && h < 3 ? head_names[h] : "?"; }
int cs_bert_head_parse(const char *s) { return name_parse(head_names, 3, s); }
const char *cs_bert_pool_name(int p) { return p >= 0 && p < 2 ? pool_names[p] : "?"; }
int cs_bert_pool_parse(const char *s) { return name_parse(pool_names, 2, s); }
const char *cs_bert_combine_name(int c) { return c >= 0 && c < 2 ? combine_names[c] : "?"; }
int cs_bert_combine_parse(const char *s) { return name_parse(combine_names, 2, s); }

int cs_bert_config_check(const cs_bert_config *cfg, cs_error *err)
{
	if (cfg->V <= CS_ITEM_FIRST || cfg->V > (1u << 31))
		return cs_err(err, CS_ERR_USAGE, NULL, 0,
			      "item count %zu out of range", cfg->V);
	if (cfg->C == 0 || cfg->L == 0 || cfg->NH == 0 || cfg->P == 0 ||
	    cfg->FF == 0)
		return cs_err(err, CS_ERR_USAGE, NULL, 0,
			      "zero size in model config");
	if (cfg->C % cfg->NH)
		return cs_err(err, CS_ERR_USAGE, NULL, 0,
			      "%zu heads do not divide hidden size %zu",
			      cfg->NH, cfg->C);
	if (cfg->C > 65536 || cfg->L > 1024 || cfg->P > 65536 ||
	    cfg->FF > 1048576)
		return cs_err(err, CS_ERR_LIMIT, NULL, 0,
			      "model config beyond limits");
	if (!(cfg->hidden_dropout >= 0.0f && cfg->hidden_dropout < 1.0f) ||
	    !(cfg->attn_dropout >= 0.0f && cfg->attn_dropout < 1.0f))
		return cs_err(err, CS_ERR_USAGE, NULL, 0,
			      "dropout probability not in [0, 1)");
	if (!(cfg->init_range > 0.0f))
		return cs_err(err, CS_ERR_USAGE, NULL, 0,
			      "init range must be positive");
	if (cfg->head < 0 || cfg->head > CS_HEAD_EVENT || cfg->pool < 0 ||
	    cfg->pool > CS_POOL_MEAN || cfg->combine < 0 ||
	    cfg->combine > CS_COMBINE_CONCAT)
		return cs_err(err, CS_ERR_USAGE, NULL, 0,
			      "unknown head, pooling or combination");
	if (cfg->causal < 0 || cfg->causal > 1)
		return cs_err(err, CS_ERR_USAGE, NULL, 0, "unknown attention");
	if (cfg->prenorm < 0 || cfg->prenorm > 1)
		return cs_err(err, CS_ERR_USAGE, NULL, 0, "unknown layer norm placement");
	if (cfg->pred < 0 || (size_t)cfg->pred > cfg->NF ||
	    (cfg->pred && cfg->head != CS_HEAD_CLOZE))
		return cs_err(err, CS_ERR_USAGE, NULL, 0,
			      "only the cloze head predicts an extra input, one of its inputs");
	if (cfg->NF > CS_BERT_MAXF)
		return cs_err(err, CS_ERR_LIMIT, NULL, 0,
			      "%zu extra inputs, at most %d", cfg->NF,
			      CS_BERT_MAXF);
	size_t sf = 0;
	for (size_t f = 0; f < cfg->NF; f++) {
		if (cfg->VF[f] < CS_ITEM_FIRST || cfg->VF[f] > (1u << 31))
			return cs_err(err, CS_ERR_USAGE, NULL, 0,
				      "input '%s' has %zu ids, out of range",
				      cfg->fname[f], cfg->VF[f]);
		sf += cfg->VF[f];
	}
	if (sf > (1u << 31))
		return cs_err(err, CS_ERR_LIMIT, NULL, 0,
			      "extra inputs have %zu ids in all", sf);
	return 0;
}

/* ------------------------------------------------------------ parameters */

/* kind: 'w' random matrix, weight-decayed; '1' LayerNorm weight; '0' bias */
static const struct {
	const char *name;
	char kind;
} ptab[CS_BERT_NPARAMS] = {
	{"wte", 'w'}, {"wpe", 'w'}, {"embln_w", '1'}, {"embln_b", '0'},
	{"qkv_w", 'w'}, {"qkv_b", '0'}, {"proj_w", 'w'}, {"proj_b", '0'},
	{"ln1_w", '1'}, {"ln1_b", '0'}, {"fc_w", 'w'}, {"fc_b", '0'},
	{"fc2_w", 'w'}, {"fc2_b", '0'}, {"ln2_w", '1'}, {"ln2_b", '0'},
	{"head_w", 'w'}, {"head_b", '0'}, {"headln_w", '1'},
	{"headln_b", '0'}, {"out_b", '0'}, {"fte", 'w'}, {"in_w", 'w'},
	{"in_b", '0'}, {"pool_w", 'w'}, {"pool_b", '0'}, {"cls_w", 'w'},
	{"cls_b", '0'}, {"fout_b", '0'}, {"fln_w", '1'}, {"fln_b", '0'},
};

/* Tensors 0 .. 15 (embeddings, blocks), the extra inputs' fte, in_w, in_b
 * and pre-LN's final LayerNorm. */
int cs_bert_param_encoder(int i)
{
	return (i >= 0 && i < 16) || (i >= 21 && i <= 23) || i == 29 || i == 30;
}

const char *cs_bert_param_name(int i)
{
	return i >= 0 && i < CS_BERT_NPARAMS ? ptab[i].name : NULL;
}

int cs_bert_param_decays(int i)
{
	return i >= 0 && i < CS_BERT_NPARAMS && ptab[i].kind == 'w';
}

size_t cs_bert_param_sizes(const cs_bert_config *cfg,
			   size_t s[CS_BERT_NPARAMS])
{
	size_t V = cfg->V, C = cfg->C, L = cfg->L, P = cfg->P, FF = cfg->FF;
	size_t cl = cfg->head == CS_HEAD_CLOZE, bin = !cl, sf = 0;
	size_t pre = cfg->prenorm != 0, tr = cl && !pre; /* the output transform */
	size_t cat = cfg->combine == CS_COMBINE_CONCAT && cfg->NF > 0;
	for (size_t f = 0; f < cfg->NF; f++)
		sf += cfg->VF[f];
	size_t t[CS_BERT_NPARAMS] = {
		V * C, P * C, C, C,
		L * 3 * C * C, L * 3 * C, L * C * C, L * C,
		L * C, L * C, L * FF * C, L * FF,
		L * C * FF, L * C, L * C, L * C,
		tr * C * C, tr * C, tr * C, tr * C, cl * V,
		sf * C, cat * C * (1 + cfg->NF) * C, cat * C,
		bin * C * C, bin * C, bin * C, bin,
		cfg->pred ? cfg->VF[cfg->pred - 1] : 0,
		pre * C, pre * C,
	};
	size_t n = 0;
	for (int i = 0; i < CS_BERT_NPARAMS; i++)
		n += (s[i] = t[i]);
	return n;
}

static void param_views(cs_bert_params *p, float *mem,
			const size_t s[CS_BERT_NPARAMS])
{
	float **ptr[CS_BERT_NPARAMS] = {
		&p->wte, &p->wpe, &p->embln_w, &p->embln_b,
		&p->qkv_w, &p->qkv_b, &p->proj_w, &p->proj_b,
		&p->ln1_w, &p->ln1_b, &p->fc_w, &p->fc_b,
		&p->fc2_w, &p->fc2_b, &p->ln2_w, &p->ln2_b,
		&p->head_w, &p->head_b, &p->headln_w, &p->headln_b,
		&p->out_b, &p->fte, &p->in_w, &p->in_b, &p->pool_w,
		&p->pool_b, &p->cls_w, &p->cls_b, &p->fout_b, &p->fln_w,
		&p->fln_b,
	};
	for (int i = 0; i < CS_BERT_NPARAMS; i++) {
		*ptr[i] = mem;
		mem += s[i];
	}
}

cs_bert *cs_bert_new(const cs_bert_config *cfg, uint64_t seed, cs_error *err)
{
	cs_bert *m = cs_bert_alloc(cfg, err);
	if (!m)
		return NULL;
	cs_nn_rng r;
	cs_nn_rng_seed(&r, seed);
	float *p = m->params_memory;
	for (int i = 0; i < CS_BERT_NPARAMS; i++) {
		for (size_t j = 0; j < m->param_sizes[i]; j++)
			p[j] = ptab[i].kind == 'w'
				? cs_nn_rng_truncnormal(&r, cfg->init_range)
				: ptab[i].kind == '1' ? 1.0f : 0.0f;
		p += m->param_sizes[i];
	}
	return m;
}

cs_bert *cs_bert_alloc(const cs_bert_config *cfg, cs_error *err)
{
	return cs_bert_alloc_on(cfg, NULL, err);
}

cs_bert *cs_bert_alloc_on(const cs_bert_config *cfg, float *params, cs_error *err)
{
	if (cs_bert_config_check(cfg, err) < 0) {
		free(params);
		return NULL;
	}
	cs_bert *m = calloc(1, sizeof *m);
	if (!m) {
		free(params);
		goto nomem;
	}
	m->cfg = *cfg;
	m->nparams = cs_bert_param_sizes(cfg, m->param_sizes);
	m->params_memory = params ? params : cs_malloc_large(m->nparams * sizeof(float));
	if (!m->params_memory)
		goto nomem;
	param_views(&m->params, m->params_memory, m->param_sizes);
	return m;
nomem:
	cs_bert_free(m);
	cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory for the model");
	return NULL;
}

void cs_bert_free(cs_bert *m)
{
	if (!m)
		return;
	free(m->params_memory);
	free(m);
}

cs_bert_work *cs_bert_work_new(cs_error *err)
{
	cs_bert_work *w = calloc(1, sizeof *w);
	if (!w)
		cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory for a workspace");
	return w;
}

void cs_bert_work_free(cs_bert_work *w)
{
	if (!w)
		return;
	free(w->acts_memory);
	free(w->dacts_memory);
	free(w->ce_scratch);
	free(w);
}

cs_bert_train *cs_bert_train_new(const cs_bert *m, uint64_t seed, cs_error *err)
{
	cs_bert_train *t = calloc(1, sizeof *t);
	if (!t)
		goto nomem;
	t->grads_memory = calloc(m->nparams, sizeof(float));
	t->m_memory = calloc(m->nparams, sizeof(float));
	t->v_memory = calloc(m->nparams, sizeof(float));
	if (!t->grads_memory || !t->m_memory || !t->v_memory)
		goto nomem;
	param_views(&t->grads, t->grads_memory, m->param_sizes);
	t->seed = seed;
	t->pos_weight = 1.0f;
	return t;
nomem:
	cs_bert_train_free(t);
	cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory for the model's training state");
	return NULL;
}

void cs_bert_train_free(cs_bert_train *t)
{
	if (!t)
		return;
	free(t->grads_memory);
	free(t->m_memory);
	free(t->v_memory);
	free(t->rows);
	free(t->rowmark);
	free(t);
}

/* Note the items of a lazy training step (see cs_bert_train.lazy). */
static int rows_add(const cs_bert *m, cs_bert_train *t, const uint32_t *id, size_t n,
		    cs_error *err)
{
	if (!t->rowmark && !(t->rowmark = calloc(m->cfg.V, 1)))
		goto nomem;
	if (t->nrows + n > t->rows_cap) {
		size_t cap = 2 * (t->nrows + n);
		uint32_t *r = realloc(t->rows, cap * sizeof *r);
		if (!r)
			goto nomem;
		t->rows = r;
		t->rows_cap = cap;
	}
	for (size_t i = 0; i < n; i++)
		if (!t->rowmark[id[i]]) {
			t->rowmark[id[i]] = 1;
			t->rows[t->nrows++] = id[i];
		}
	return 0;
nomem:
	return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
}

int cs_bert_rows_from_mark(const cs_bert *m, cs_bert_train *t, cs_error *err)
{
	size_t n = 0, V = m->cfg.V;
	for (size_t j = 0; j < V; j++)
		n += t->rowmark[j] != 0;
	if (n > t->rows_cap) {
		uint32_t *r = realloc(t->rows, n * sizeof *r);
		if (!r)
			return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
		t->rows = r;
		t->rows_cap = n;
	}
	t->nrows = 0;
	for (size_t j = 0; j < V; j++)
		if (t->rowmark[j])
			t->rows[t->nrows++] = (uint32_t)j;
	return 0;
}

/* need floats of loss scratch for M rows. */
static int scratch_prepare(cs_bert_work *w, size_t need, size_t M, cs_error *err)
{
	if (need <= w->ce_cap)
		return 0;
	free(w->ce_scratch);
	w->ce_cap = 0;
	if (!(w->ce_scratch = malloc(need * sizeof(float))))
		return cs_err(err, CS_ERR_NOMEM, NULL, 0,
			      "out of memory for the loss of %zu masked positions", M);
	w->ce_cap = need;
	return 0;
}

/* Scratch of the tiled loss for M rows. */
static int ce_prepare(const cs_bert *m, cs_bert_work *w, size_t M, cs_error *err)
{
	return scratch_prepare(w, cs_tiedce_scratch(M, m->cfg.C), M, err);
}

/* ------------------------------------------------------------ activations */

/* logits: whether the (M, V) logits are stored (not by the tiled loss). */
static size_t act_sizes(const cs_bert_config *cfg, size_t N, size_t A,
			size_t M, int logits, size_t s[CS_BERT_NACTS])
{
	size_t C = cfg->C, L = cfg->L, FF = cfg->FF;
	size_t V = cfg->head == CS_HEAD_CLOZE ? cfg->V : 1;
	size_t cat = cfg->combine == CS_COMBINE_CONCAT && cfg->NF > 0;
	size_t VP = cfg->pred ? cfg->VF[cfg->pred - 1] : 0;
	size_t pre = cfg->prenorm != 0;
	size_t t[CS_BERT_NACTS] = {
		N * C, N * C, N, N, N * C, N * C,              /* emb .. x0 */
		L * N * 3 * C, L * A, L * A, L * A,            /* qkv .. attd */
		L * N * C, L * N * C, L * N * C, L * N * C,    /* atty .. res1 */
		L * N * C, L * N, L * N,                       /* ln1 */
		L * N * FF, L * N * FF, L * N * C, L * N * C,  /* fch .. fc2m */
		L * N * C, L * N * C, L * N, L * N,            /* res2, ln2 */
		M * C, M * C, M * C, M * C, M, M, M,           /* hm .. lse */
		cat * N * (1 + cfg->NF) * C,                   /* ecat */
		VP ? M : 0, M * VP,                            /* flse, flogits */
		pre * N * C, pre * N, pre * N,                 /* fln */
		logits ? M * V : 0,                            /* logits */
	};
	size_t n = 0;
	for (int i = 0; i < CS_BERT_NACTS; i++)
		n += (s[i] = t[i]);
	return n;
}

/* The fields of a, in buffer order (act_sizes'). */
static void act_fields(cs_bert_acts *a, float **ptr[CS_BERT_NACTS])
{
	float **f[CS_BERT_NACTS] = {
		&a->emb, &a->embln, &a->embln_mean, &a->embln_rstd, &a->embm,
		&a->x0, &a->qkv, &a->att, &a->attm, &a->attd, &a->atty,
		&a->proj, &a->projm, &a->res1, &a->ln1, &a->ln1_mean,
		&a->ln1_rstd, &a->fch, &a->fch_gelu, &a->fc2, &a->fc2m,
		&a->res2, &a->ln2, &a->ln2_mean, &a->ln2_rstd, &a->hm, &a->hh,
		&a->hh_gelu, &a->hln, &a->hln_mean, &a->hln_rstd, &a->lse,
		&a->ecat, &a->flse, &a->flogits, &a->fln, &a->fln_mean,
		&a->fln_rstd, &a->logits,
	};
	memcpy(ptr, f, sizeof f);
}

static void act_views(cs_bert_acts *a, float *mem,
		      const size_t s[CS_BERT_NACTS])
{
	float **ptr[CS_BERT_NACTS];
	act_fields(a, ptr);
	for (int i = 0; i < CS_BERT_NACTS; i++) {
		*ptr[i] = mem;
		mem += s[i];
	}
}

/* ------------------------------------------------------------ memory */

double cs_bert_mem_bytes(const cs_bert_config *cfg, double N, double A, double M,
			 int training)
{
	size_t ps[CS_BERT_NPARAMS], as[CS_BERT_NACTS];
	double params = (double)cs_bert_param_sizes(cfg, ps);
	/* training a cloze model takes the tiled loss: no logits, its scratch */
	int tiled = training && cfg->head == CS_HEAD_CLOZE;
	double scratch = tiled ? (double)cs_tiedce_scratch((size_t)fmin(M, 1e12), cfg->C) : 0;
	/* every activation is a multiple of one of N, A and M */
	double acts = (double)act_sizes(cfg, 1, 0, 0, !tiled, as) * N +
		      (double)act_sizes(cfg, 0, 1, 0, !tiled, as) * A +
		      (double)act_sizes(cfg, 0, 0, 1, !tiled, as) * M;
	return sizeof(float) * ((training ? 4 : 1) * params + (training ? 2 : 1) * acts + scratch);
}

static const char *fmt_bytes(char *buf, size_t n, double b)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	int u = 0;
	for (b /= 1024; b >= 1024 && u < 5; u++)
		b /= 1024;
	snprintf(buf, n, "%.*f %s", b < 10 ? 1 : 0, b, unit[u]);
	return buf;
}

int cs_bert_mem_check(const cs_bert_config *cfg, size_t B, size_t T, double N, double A,
		      double M, int training, double limit, const char *path, cs_error *err)
{
	double need = cs_bert_mem_bytes(cfg, N, A, M, training);
	if (!(limit > 0) || need <= limit)
		return 0;
	char nb[32], lb[32];
	return cs_err(err, CS_ERR_LIMIT, path, 0,
		      "model needs %s to %s batches of %zu sequences of up to %zu events "
		      "(hidden %zu, ff %zu, layers %zu, heads %zu, max length %zu, items %zu), "
		      "over the limit of %s (try a smaller --batch, or set CS_MEM_LIMIT)",
		      fmt_bytes(nb, sizeof nb, need), training ? "train on" : "score",
		      B, T, cfg->C, cfg->FF, cfg->L, cfg->NH, cfg->P, cfg->V,
		      fmt_bytes(lb, sizeof lb, limit));
}

/*
 * Lay out activations for (N, A, M), growing the buffer if need be, by a
 * quarter more than asked: batches of long histories differ in size, and
 * each growth is a fresh mapping the kernel fills page by page (a fifth
 * of a step's time went to page faults while the largest batch was still
 * to come). Pages beyond what a batch uses are never touched. A large
 * buffer is offered huge pages (cs_malloc_large): in cs-recommend, 4 KiB
 * faults on fresh activations took a tenth of the time on a virtual
 * machine where each costs some 15 us.
 */
static int acts_prepare(const cs_bert *m, cs_bert_work *w, size_t N, size_t A, size_t M,
			int logits, cs_error *err)
{
	w->nacts = act_sizes(&m->cfg, N, A, M, logits, w->act_sizes);
	if (w->nacts > w->acts_cap) {
		size_t cap = w->nacts + w->nacts / 4;
		free(w->acts_memory);
		free(w->dacts_memory);
		w->dacts_memory = NULL;
		w->dacts_cap = 0;
		w->acts_cap = 0;
		w->acts_memory = cs_malloc_large(cap * sizeof(float));
		if (!w->acts_memory && !(w->acts_memory = malloc((cap = w->nacts) * sizeof(float))))
			return cs_err(err, CS_ERR_NOMEM, NULL, 0,
				      "out of memory for activations of %zu "
				      "tokens", N);
		w->acts_cap = cap;
	}
	act_views(&w->acts, w->acts_memory, w->act_sizes);
	w->N = N;
	w->A = A;
	w->M = M;
	return 0;
}

/* ------------------------------------------------------------ batches */

int cs_bert_batch_check(const cs_bert *m, const cs_batch *b, cs_error *err)
{
	const cs_bert_config *c = &m->cfg;
	if (!b->off || b->B == 0 || b->off[0] != 0)
		return cs_err(err, CS_ERR_USAGE, NULL, 0, "empty batch");
	for (size_t i = 0; i < b->B; i++) {
		size_t T = b->off[i + 1] - b->off[i];
		if (b->off[i + 1] <= b->off[i] || T > c->P)
			return cs_err(err, CS_ERR_USAGE, NULL, 0,
				      "sequence %zu of the batch has length "
				      "%zu, not in 1..%zu", i,
				      b->off[i + 1] < b->off[i] ? 0 : T, c->P);
	}
	size_t N = b->off[b->B];
	for (size_t i = 0; i < N; i++) {
		if (b->tok[i] >= c->V)
			return cs_err(err, CS_ERR_USAGE, NULL, 0,
				      "item id %u beyond the %zu items",
				      (unsigned)b->tok[i], c->V);
		if (b->pos[i] >= c->P)
			return cs_err(err, CS_ERR_USAGE, NULL, 0,
				      "position %u beyond the maximum "
				      "length %zu", (unsigned)b->pos[i], c->P);
	}
	if (c->NF && !b->ftok)
		return cs_err(err, CS_ERR_USAGE, NULL, 0,
			      "batch lacks the model's %zu extra inputs", c->NF);
	for (size_t i = 0; i < N * c->NF; i++)
		if (b->ftok[i] >= c->VF[i % c->NF])
			return cs_err(err, CS_ERR_USAGE, NULL, 0,
				      "id %u of '%s' beyond its %zu ids",
				      (unsigned)b->ftok[i], c->fname[i % c->NF],
				      c->VF[i % c->NF]);
	if (b->K && !b->neg)
		return cs_err(err, CS_ERR_USAGE, NULL, 0, "batch lacks its %zu negatives", b->K);
	for (size_t k = 0; k < b->K; k++)
		if (b->neg[k] < CS_BERT_V0 || b->neg[k] >= c->V)
			return cs_err(err, CS_ERR_USAGE, NULL, 0,
				      "negative item %u cannot be predicted", (unsigned)b->neg[k]);
	if (c->head != CS_HEAD_CLOZE) {
		int mean = c->head == CS_HEAD_SESSION && c->pool == CS_POOL_MEAN;
		if (mean && b->M != b->B)
			return cs_err(err, CS_ERR_USAGE, NULL, 0,
				      "mean pooling scores each sequence: "
				      "%zu of %zu", b->M, b->B);
		for (size_t i = 0; i < b->M; i++) {
			if (!mean && b->mpos[i] >= N)
				return cs_err(err, CS_ERR_USAGE, NULL, 0,
					      "scored position %zu beyond the "
					      "%zu tokens", b->mpos[i], N);
			if (b->mtgt && b->mtgt[i] > 1)
				return cs_err(err, CS_ERR_USAGE, NULL, 0,
					      "label %u is not 0 or 1",
					      (unsigned)b->mtgt[i]);
		}
		return 0;
	}
	for (size_t i = 0; i < b->M; i++) {
		if (b->mpos[i] >= N)
			return cs_err(err, CS_ERR_USAGE, NULL, 0,
				      "masked position %zu beyond the %zu "
				      "tokens", b->mpos[i], N);
		if (b->mtgt && (b->mtgt[i] < CS_BERT_V0 ||
				b->mtgt[i] >= c->V))
			return cs_err(err, CS_ERR_USAGE, NULL, 0,
				      "target item %u cannot be predicted",
				      (unsigned)b->mtgt[i]);
		if (c->pred && b->mtgt && (!b->ftgt || b->ftgt[i] < CS_BERT_V0 ||
					   b->ftgt[i] >= c->VF[c->pred - 1]))
			return cs_err(err, CS_ERR_USAGE, NULL, 0,
				      "no '%s' target at a masked position",
				      c->fname[c->pred - 1]);
	}
	return 0;
}

/* ------------------------------------------------------------ embedding */

/* First row of each extra input's table in fte. */
static void field_bases(const cs_bert_config *c, size_t base[CS_BERT_MAXF])
{
	size_t r = 0;
	for (size_t f = 0; f < c->NF; f++) {
		base[f] = r;
		r += c->VF[f];
	}
}

static void add_row(float *o, const float *x, size_t C)
{
	for (size_t k = 0; k < C; k++)
		o[k] += x[k];
}

/* a->emb (N, C): the item, its extra inputs and its position. */
static void embed_forward(const cs_bert *m, cs_bert_work *w, const cs_batch *b, size_t N)
{
	const cs_bert_config *c = &m->cfg;
	size_t C = c->C, NF = c->NF, W = (1 + NF) * C, base[CS_BERT_MAXF];
	const cs_bert_params *p = &m->params;
	cs_bert_acts *a = &w->acts;

	if (NF == 0 || c->combine == CS_COMBINE_SUM) {
		cs_embed_forward(a->emb, b->tok, b->pos, p->wte, p->wpe, N, C);
		field_bases(c, base);
		for (size_t i = 0; i < N; i++)
			for (size_t f = 0; f < NF; f++)
				add_row(a->emb + i * C, p->fte + (base[f] +
					b->ftok[i * NF + f]) * C, C);
		return;
	}
	field_bases(c, base);
	for (size_t i = 0; i < N; i++) {
		float *o = a->ecat + i * W;
		memcpy(o, p->wte + (size_t)b->tok[i] * C, C * sizeof *o);
		for (size_t f = 0; f < NF; f++)
			memcpy(o + (1 + f) * C, p->fte + (base[f] +
			       b->ftok[i * NF + f]) * C, C * sizeof *o);
	}
	cs_linear_forward(a->emb, a->ecat, p->in_w, p->in_b, N, W, C);
	for (size_t i = 0; i < N; i++)
		add_row(a->emb + i * C, p->wpe + (size_t)b->pos[i] * C, C);
}

static void embed_backward(const cs_bert *m, const cs_bert_work *w, cs_bert_train *t,
			   const cs_batch *b, size_t N)
{
	const cs_bert_config *c = &m->cfg;
	size_t C = c->C, NF = c->NF, W = (1 + NF) * C, base[CS_BERT_MAXF];
	cs_bert_params *g = &t->grads;
	const cs_bert_acts *a = &w->acts, *d = &w->dacts;

	field_bases(c, base);
	if (NF == 0 || c->combine == CS_COMBINE_SUM) {
		cs_embed_backward(g->wte, g->wpe, d->emb, b->tok, b->pos, N, C);
		for (size_t i = 0; i < N; i++)
			for (size_t f = 0; f < NF; f++)
				add_row(g->fte + (base[f] + b->ftok[i * NF + f]) * C,
					d->emb + i * C, C);
		return;
	}
	for (size_t i = 0; i < N; i++)
		add_row(g->wpe + (size_t)b->pos[i] * C, d->emb + i * C, C);
	cs_linear_backward(d->ecat, g->in_w, g->in_b, d->emb, a->ecat,
			   m->params.in_w, N, W, C);
	for (size_t i = 0; i < N; i++) {
		const float *e = d->ecat + i * W;
		add_row(g->wte + (size_t)b->tok[i] * C, e, C);
		for (size_t f = 0; f < NF; f++)
			add_row(g->fte + (base[f] + b->ftok[i * NF + f]) * C,
				e + (1 + f) * C, C);
	}
}

/* The embedding table of the predicted input within fte (of p). */
static float *pred_table(const cs_bert_config *c, const cs_bert_params *p)
{
	size_t base[CS_BERT_MAXF] = { 0 };
	field_bases(c, base);
	return p->fte + base[c->pred - 1] * c->C;
}

/* ------------------------------------------------------------ binary heads */

static int mean_pool(const cs_bert_config *c)
{
	return c->head == CS_HEAD_SESSION && c->pool == CS_POOL_MEAN;
}

/* Weight of example i: positives count pos_weight times. */
static float bin_weight(const cs_bert_train *t, uint32_t y)
{
	return y ? t->pos_weight : 1.0f;
}

/* hm (M, C) from the final hidden states x (N, C): gathered or averaged. */
static void pool_forward(const cs_bert *m, cs_bert_work *w, const cs_batch *b, const float *x)
{
	size_t C = m->cfg.C;
	float *hm = w->acts.hm;
	if (!mean_pool(&m->cfg)) {
		cs_gather_forward(hm, x, b->mpos, w->M, C);
		return;
	}
	for (size_t s = 0; s < b->B; s++) {
		size_t T = b->off[s + 1] - b->off[s];
		float *o = hm + s * C;
		memset(o, 0, C * sizeof *o);
		for (size_t t = b->off[s]; t < b->off[s + 1]; t++)
			add_row(o, x + t * C, C);
		for (size_t k = 0; k < C; k++)
			o[k] /= (float)T;
	}
}

static void pool_backward(const cs_bert *m, const cs_bert_work *w, const cs_batch *b, float *dx)
{
	size_t C = m->cfg.C;
	const float *dhm = w->dacts.hm;
	if (!mean_pool(&m->cfg)) {
		cs_gather_backward(dx, dhm, b->mpos, w->M, C);
		return;
	}
	for (size_t s = 0; s < b->B; s++) {
		float inv = 1.0f / (float)(b->off[s + 1] - b->off[s]);
		for (size_t t = b->off[s]; t < b->off[s + 1]; t++)
			for (size_t k = 0; k < C; k++)
				dx[t * C + k] += dhm[s * C + k] * inv;
	}
}

/* logits (M) = cls_w . tanh(pool_w hm + pool_b) + cls_b; the weighted loss. */
static void bin_forward(const cs_bert *m, cs_bert_work *w, const cs_bert_train *t,
			const cs_batch *b, const float *x)
{
	size_t C = m->cfg.C, M = w->M;
	const cs_bert_params *p = &m->params;
	cs_bert_acts *a = &w->acts;

	pool_forward(m, w, b, x);
	cs_linear_forward(a->hh, a->hm, p->pool_w, p->pool_b, M, C, C);
	for (size_t i = 0; i < M * C; i++)
		a->hh_gelu[i] = tanhf(a->hh[i]);
	cs_linear_forward(a->logits, a->hh_gelu, p->cls_w, p->cls_b, M, C, 1);
	if (!b->mtgt)
		return;
	double sum = 0, wsum = 0;
	for (size_t i = 0; i < M; i++) {
		double z = a->logits[i], wi = bin_weight(t, b->mtgt[i]);
		/* -log sigmoid(+-z), stably */
		double sp = (z > 0 ? z : 0) + log1p(exp(-fabs(z)));
		sum += wi * (sp - (b->mtgt[i] ? z : 0));
		wsum += wi;
	}
	if (t->shard.N) /* a share of a global batch (cs_bert_train.shard) */
		wsum = t->shard.W;
	w->loss = wsum > 0 ? sum / wsum : 0;
}

static void bin_backward(const cs_bert *m, cs_bert_work *w, cs_bert_train *t,
			 const cs_batch *b, float *dx)
{
	size_t C = m->cfg.C, M = w->M;
	const cs_bert_params *p = &m->params;
	cs_bert_params *g = &t->grads;
	const cs_bert_acts *a = &w->acts;
	cs_bert_acts *d = &w->dacts;

	double wsum = 0;
	for (size_t i = 0; i < M; i++)
		wsum += bin_weight(t, b->mtgt[i]);
	if (t->shard.N)
		wsum = t->shard.W;
	for (size_t i = 0; i < M; i++) {
		double z = a->logits[i], sg = 1.0 / (1.0 + exp(-z));
		d->logits[i] = (float)(bin_weight(t, b->mtgt[i]) *
				       (sg - b->mtgt[i]) / wsum);
	}
	cs_linear_backward(d->hh_gelu, g->cls_w, g->cls_b, d->logits,
			   a->hh_gelu, p->cls_w, M, C, 1);
	for (size_t i = 0; i < M * C; i++)
		d->hh[i] = d->hh_gelu[i] * (1.0f - a->hh_gelu[i] * a->hh_gelu[i]);
	cs_linear_backward(d->hm, g->pool_w, g->pool_b, d->hh, a->hm,
			   p->pool_w, M, C, C);
	pool_backward(m, w, b, dx);
}

/* ------------------------------------------------------------ forward */

/* What a forward computes. */
enum fwd {
	FWD_ENCODE, /* the encoder only: the final hidden states (cs_bert_encode) */
	FWD_LOSS,   /* the head and, with targets, the loss to go backward from
		     * (cs_bert_forward): the cloze loss tiled or sampled, without
		     * the (M, V) logits unless keep_logits is set */
	FWD_LOGITS, /* the head with all its logits (cs_bert_score, cs_bert_prob) */
	FWD_HIDDEN, /* eval: the cloze head's hidden states (hln) at b->mpos, the
		     * last block at those positions only (cs_bert_score_hidden) */
};

/* The output of block l of the last forward (pre-LN: before the final LayerNorm). */
static float *block_out(const cs_bert *m, const cs_bert_work *w, size_t l)
{
	const cs_bert_acts *a = &w->acts;
	return (m->cfg.prenorm ? a->res2 : a->ln2) + l * w->N * m->cfg.C;
}

/*
 * Scoring (eval, FWD_HIDDEN): the last block, from its input x (N, C), to
 * the hidden states at the M positions b->mpos only, into the first M
 * rows of the block's activations: hm (post-LN; the output transform
 * follows) or, through the final LayerNorm, hln (pre-LN). Keys and values
 * are needed for every token, the rest (attention of the queries,
 * projection, feed-forward, the LayerNorms after the first) only at the
 * positions scored: a tenth of the tokens for next-item scoring. Dropout
 * is off, so it is left out.
 */
static void last_block_at(const cs_bert *m, cs_bert_work *w, const cs_batch *b, const float *x,
			  size_t N)
{
	const cs_bert_config *c = &m->cfg;
	size_t C = c->C, L = c->L, NH = c->NH, FF = c->FF, M = b->M, l = L - 1;
	size_t NC = N * C;
	int pre = c->prenorm;
	const cs_bert_params *p = &m->params;
	cs_bert_acts *a = &w->acts;
	float *qkv = a->qkv + l * 3 * NC, *atty = a->atty + l * NC;
	float *proj = a->proj + l * NC, *res1 = a->res1 + l * NC;
	float *ln1 = a->ln1 + l * NC, *fch = a->fch + l * N * FF;
	float *fchg = a->fch_gelu + l * N * FF, *ln2 = a->ln2 + l * NC;
	float *fc2 = a->fc2 + l * NC, *res2 = a->res2 + l * NC;
	float *qw = a->att + l * w->A; /* (T) scratch: one query's weights */
	float *ln1_mean = a->ln1_mean + l * N, *ln1_rstd = a->ln1_rstd + l * N;
	float *ln2_mean = a->ln2_mean + l * N, *ln2_rstd = a->ln2_rstd + l * N;

	const float *ain = x; /* every token's keys and values */
	if (pre) {
		cs_layernorm_forward(ln1, ln1_mean, ln1_rstd, x, p->ln1_w + l * C,
				     p->ln1_b + l * C, N, C);
		ain = ln1;
	}
	cs_linear_forward(qkv, ain, p->qkv_w + l * 3 * C * C, p->qkv_b + l * 3 * C,
			  N, C, 3 * C);
	cs_attention_forward_at(atty, qw, qkv, b->off, b->B, b->mpos, M, C, NH, c->causal);
	cs_gather_forward(a->hh, x, b->mpos, M, C); /* the residual, in scratch */
	cs_linear_forward(proj, atty, p->proj_w + l * C * C, p->proj_b + l * C, M, C, C);
	cs_residual_forward(res1, proj, a->hh, M * C);
	/* the feed-forward's input, and the residual it adds to (as forward's) */
	float *fin = pre ? ln2 : ln1, *fres = pre ? res1 : ln1;
	if (pre)
		cs_layernorm_forward(ln2, ln2_mean, ln2_rstd, res1, p->ln2_w + l * C,
				     p->ln2_b + l * C, M, C);
	else
		cs_layernorm_forward(ln1, ln1_mean, ln1_rstd, res1, p->ln1_w + l * C,
				     p->ln1_b + l * C, M, C);
	cs_linear_forward(fch, fin, p->fc_w + l * FF * C, p->fc_b + l * FF, M, C, FF);
	cs_gelu_forward(fchg, fch, M * FF);
	cs_linear_forward(fc2, fchg, p->fc2_w + l * C * FF, p->fc2_b + l * C, M, FF, C);
	cs_residual_forward(res2, fc2, fres, M * C);
	if (pre)
		cs_layernorm_forward(a->hln, a->hln_mean, a->hln_rstd, res2, p->fln_w,
				     p->fln_b, M, C);
	else
		cs_layernorm_forward(a->hm, ln2_mean, ln2_rstd, res2, p->ln2_w + l * C,
				     p->ln2_b + l * C, M, C);
}

/* r (if not NULL) at draw k of the stream that starts at r0. */
static cs_nn_rng *rng_at(cs_nn_rng *r, const cs_nn_rng *r0, size_t k)
{
	if (!r)
		return NULL;
	*r = *r0;
	cs_nn_rng_skip(r, k);
	return r;
}

/* The training state of a forward without one: the full loss, positives
 * weighing 1, the batch all there is. */
static const cs_bert_train eval_state = { .pos_weight = 1.0f, .loss_kind = CS_LOSS_FULL };

/* t: the training state (NULL: eval_state's policy); train: dropout on, drawn from t. */
static int forward(const cs_bert *m, cs_bert_work *w, cs_bert_train *t, const cs_batch *b,
		   int train, enum fwd what, cs_error *err)
{
	const cs_bert_config *c = &m->cfg;
	size_t C = c->C, L = c->L, NH = c->NH, FF = c->FF, V = c->V;
	const cs_bert_train *ts = t ? t : &eval_state;

	if (train && !t)
		return cs_err(err, CS_ERR_USAGE, NULL, 0,
			      "a training forward needs a training state");
	if (cs_bert_batch_check(m, b, err) < 0)
		return -1;
	size_t N = b->off[b->B], M = what != FWD_ENCODE ? b->M : 0;
	size_t A = cs_attention_size(b->off, b->B, NH);
	if (w->mem_limit > 0) {
		size_t T = 0;
		for (size_t i = 0; i < b->B; i++)
			if (b->off[i + 1] - b->off[i] > T)
				T = b->off[i + 1] - b->off[i];
		int share = w->mem_share > 1 ? w->mem_share : 1;
		if (cs_bert_mem_check(c, b->B, T, (double)N, (double)A, (double)M, train,
				      w->mem_limit / share, NULL, err) < 0) {
			size_t n = strlen(err ? err->msg : "");
			if (err && share > 1)
				snprintf(err->msg + n, sizeof err->msg - n,
					 "; %d threads share the limit", share);
			return -1;
		}
	}
	w->sampled = what == FWD_LOSS && M && b->mtgt && c->head == CS_HEAD_CLOZE &&
		     ts->loss_kind != CS_LOSS_FULL && b->K > 0;
	w->tiled = what == FWD_LOSS && M && b->mtgt && c->head == CS_HEAD_CLOZE &&
		   !w->keep_logits && !w->sampled;
	/* the logits: not for the tiled loss, nor for scoring's hidden states */
	if (acts_prepare(m, w, N, A, M, what != FWD_HIDDEN && !w->tiled && !w->sampled, err) < 0)
		return -1;
	w->B = b->B;
	w->batch = b;
	/* a scoring forward (FWD_HIDDEN) leaves nothing to go backward from */
	w->have_targets = (what == FWD_LOSS || what == FWD_LOGITS) && b->mtgt != NULL;
	w->loss = 0.0;

	/*
	 * dropout stream: one per training forward, from (seed, count). The
	 * draws go in order: the embeddings' (N, C), then each block's
	 * attention weights (A), projection (N, C) and feed-forward (N, C),
	 * those of dropouts that are off left out; each dropout starts at its
	 * place (at) in that order, which is where the draws before it end
	 * unless this batch is a share of a larger one (t->shard).
	 */
	cs_nn_rng rng0 = { 0 }, rng, *r = NULL;
	float hp = c->hidden_dropout, ap = c->attn_dropout;
	size_t gN = ts->shard.N ? ts->shard.N : N, gA = ts->shard.N ? ts->shard.A : A;
	size_t t0 = ts->shard.N ? ts->shard.tok0 : 0, a0 = ts->shard.N ? ts->shard.att0 : 0;
	size_t hd = hp > 0.0f ? gN * C : 0, ad = ap > 0.0f ? gA : 0;
	if (train) {
		cs_nn_rng_seed(&rng0, t->seed ^ (t->nforward++ *
						 0xd1342543de82ef95ULL));
		cs_nn_rng_next(&rng0);
		r = &rng;
	}
	const cs_bert_params *p = &m->params;
	cs_bert_acts *a = &w->acts;

	if (train && t->lazy && c->head == CS_HEAD_CLOZE &&
	    (rows_add(m, t, b->tok, N, err) < 0 ||
	     (b->mtgt && rows_add(m, t, b->mtgt, b->M, err) < 0) ||
	     (b->neg && rows_add(m, t, b->neg, b->K, err) < 0)))
		return -1;
	embed_forward(m, w, b, N);
	cs_layernorm_forward(a->embln, a->embln_mean, a->embln_rstd, a->emb,
			     p->embln_w, p->embln_b, N, C);
	/* scoring: dropout is off and nothing goes backward: no copies */
	int scoring = what == FWD_HIDDEN && !r;
	const float *x0 = a->embln;
	if (!scoring) {
		cs_dropout_forward(a->x0, a->embm, a->embln, N * C, hp, rng_at(r, &rng0, t0 * C));
		x0 = a->x0;
	}

	int pre = c->prenorm;
	for (size_t l = 0; l < (scoring ? L - 1 : L); l++) {
		size_t NC = N * C;
		const float *x = l ? block_out(m, w, l - 1) : x0;
		float *qkv = a->qkv + l * 3 * NC, *atty = a->atty + l * NC;
		float *proj = a->proj + l * NC, *res1 = a->res1 + l * NC;
		float *ln1 = a->ln1 + l * NC, *fch = a->fch + l * N * FF;
		float *fchg = a->fch_gelu + l * N * FF;
		float *fc2 = a->fc2 + l * NC, *res2 = a->res2 + l * NC;
		float *ln2 = a->ln2 + l * NC;
		/* post-LN: attention on x, LayerNorm after each residual;
		 * pre-LN: on LayerNorm(x), the residuals left as they are */
		const float *ain = x;
		if (pre) {
			cs_layernorm_forward(ln1, a->ln1_mean + l * N, a->ln1_rstd + l * N, x,
					     p->ln1_w + l * C, p->ln1_b + l * C, N, C);
			ain = ln1;
		}
		cs_linear_forward(qkv, ain, p->qkv_w + l * 3 * C * C,
				  p->qkv_b + l * 3 * C, N, C, 3 * C);
		size_t at = hd + l * (ad + 2 * hd); /* the block's first draw */
		cs_attention_forward(atty, a->att + l * A, a->attd + l * A,
				     a->attm + l * A, qkv, b->off, b->B, C, NH,
				     c->causal, ap, rng_at(r, &rng0, at + a0));
		cs_linear_forward(proj, atty, p->proj_w + l * C * C,
				  p->proj_b + l * C, N, C, C);
		if (scoring) {
			cs_residual_forward(res1, proj, x, NC);
		} else {
			cs_dropout_forward(res1, a->projm + l * NC, proj, NC, hp,
					   rng_at(r, &rng0, at + ad + t0 * C));
			cs_residual_forward(res1, res1, x, NC);
		}
		/* the feed-forward's input, and the residual it adds to */
		float *fin = pre ? ln2 : ln1, *fres = pre ? res1 : ln1;
		if (pre)
			cs_layernorm_forward(ln2, a->ln2_mean + l * N, a->ln2_rstd + l * N, res1,
					     p->ln2_w + l * C, p->ln2_b + l * C, N, C);
		else
			cs_layernorm_forward(ln1, a->ln1_mean + l * N, a->ln1_rstd + l * N, res1,
					     p->ln1_w + l * C, p->ln1_b + l * C, N, C);
		cs_linear_forward(fch, fin, p->fc_w + l * FF * C,
				  p->fc_b + l * FF, N, C, FF);
		cs_gelu_forward(fchg, fch, N * FF);
		cs_linear_forward(fc2, fchg, p->fc2_w + l * C * FF,
				  p->fc2_b + l * C, N, FF, C);
		if (scoring) {
			cs_residual_forward(res2, fc2, fres, NC);
		} else {
			cs_dropout_forward(res2, a->fc2m + l * NC, fc2, NC, hp,
					   rng_at(r, &rng0, at + ad + hd + t0 * C));
			cs_residual_forward(res2, res2, fres, NC);
		}
		if (!pre)
			cs_layernorm_forward(ln2, a->ln2_mean + l * N, a->ln2_rstd + l * N, res2,
					     p->ln2_w + l * C, p->ln2_b + l * C, N, C);
	}
	if (pre && !scoring)
		cs_layernorm_forward(a->fln, a->fln_mean, a->fln_rstd, a->res2 + (L - 1) * N * C,
				     p->fln_w, p->fln_b, N, C);
	if (M == 0)
		return 0;
	if (c->head != CS_HEAD_CLOZE) {
		bin_forward(m, w, ts, b, cs_bert_hidden(m, w));
		return 0;
	}

	/* output layer at the M positions: (post-LN) transform, tied logits */
	if (scoring)
		last_block_at(m, w, b, L > 1 ? block_out(m, w, L - 2) : x0, N);
	else
		cs_gather_forward(pre ? a->hln : a->hm, cs_bert_hidden(m, w), b->mpos, M, C);
	if (!pre) {
		cs_linear_forward(a->hh, a->hm, p->head_w, p->head_b, M, C, C);
		cs_gelu_forward(a->hh_gelu, a->hh, M * C);
		cs_layernorm_forward(a->hln, a->hln_mean, a->hln_rstd, a->hh_gelu,
				     p->headln_w, p->headln_b, M, C);
	}
	if (what == FWD_HIDDEN)
		return 0;
	if (w->sampled) {
		if (scratch_prepare(w, cs_sampled_scratch(M, b->K, C), M, err) < 0)
			return -1;
		w->loss = cs_sampled_forward(w->ce_scratch, a->hln, p->wte, p->out_b, b->mtgt,
					     b->neg, ts->loss_kind == CS_LOSS_SAMPLED ? ts->logq
										      : NULL,
					     M, C, b->K, ts->loss_kind, ts->gbce_beta);
	} else if (w->tiled) {
		if (ce_prepare(m, w, M, err) < 0)
			return -1;
		w->loss = cs_tiedce_forward(a->lse, w->ce_scratch, a->hln, p->wte,
					    p->out_b, b->mtgt, M, C, V, CS_BERT_V0);
	} else {
		cs_linear_forward(a->logits, a->hln, p->wte, p->out_b, M, C, V);
		if (b->mtgt)
			w->loss = cs_crossentropy_forward(a->lse, a->logits, b->mtgt,
							  M, V, CS_BERT_V0);
	}
	if (c->pred && b->mtgt) {
		size_t VP = c->VF[c->pred - 1];
		cs_linear_forward(a->flogits, a->hln, pred_table(c, &m->params),
				  p->fout_b, M, C, VP);
		w->loss += cs_crossentropy_forward(a->flse, a->flogits, b->ftgt,
						   M, VP, CS_BERT_V0);
	}
	/* a share of a global batch: the means are over its targets */
	if (ts->shard.N && b->mtgt)
		w->loss *= (double)M / ts->shard.M;
	return 0;
}

int cs_bert_forward(const cs_bert *m, cs_bert_work *w, cs_bert_train *t, const cs_batch *b,
		    int train, float *loss, cs_error *err)
{
	if (forward(m, w, t, b, train, FWD_LOSS, err) < 0)
		return -1;
	if (loss)
		*loss = w->have_targets ? (float)w->loss : 0.0f;
	return 0;
}

const float *cs_bert_hidden(const cs_bert *m, const cs_bert_work *w)
{
	return m->cfg.prenorm ? w->acts.fln : block_out(m, w, m->cfg.L - 1);
}

int cs_bert_encode(const cs_bert *m, cs_bert_work *w, const cs_batch *b,
		   const float **hidden, cs_error *err)
{
	if (forward(m, w, NULL, b, 0, FWD_ENCODE, err) < 0)
		return -1;
	*hidden = cs_bert_hidden(m, w);
	return 0;
}

int cs_bert_prob(const cs_bert *m, cs_bert_work *w, const cs_batch *b, const float **prob,
		 cs_error *err)
{
	if (m->cfg.head == CS_HEAD_CLOZE)
		return cs_err(err, CS_ERR_USAGE, NULL, 0,
			      "a cloze model ranks items, it gives no probabilities");
	if (forward(m, w, NULL, b, 0, FWD_LOGITS, err) < 0)
		return -1;
	float *z = w->acts.logits;
	for (size_t i = 0; i < w->M; i++)
		z[i] = 1.0f / (1.0f + expf(-z[i]));
	*prob = z;
	return 0;
}

int cs_bert_score(const cs_bert *m, cs_bert_work *w, const cs_batch *b,
		  const float **scores, cs_error *err)
{
	if (m->cfg.head != CS_HEAD_CLOZE)
		return cs_err(err, CS_ERR_USAGE, NULL, 0,
			      "a %s model gives probabilities, it does not rank items",
			      cs_bert_head_name(m->cfg.head));
	if (forward(m, w, NULL, b, 0, FWD_LOGITS, err) < 0)
		return -1;
	size_t V = m->cfg.V;
	float *s = w->acts.logits;
	for (size_t i = 0; i < w->M; i++) {
		s[i * V + CS_ITEM_PAD] = -INFINITY;
		s[i * V + CS_ITEM_MASK] = -INFINITY;
	}
	*scores = s;
	return 0;
}

int cs_bert_score_hidden(const cs_bert *m, cs_bert_work *w, const cs_batch *b,
			 const float **h, cs_error *err)
{
	if (m->cfg.head != CS_HEAD_CLOZE)
		return cs_err(err, CS_ERR_USAGE, NULL, 0,
			      "a %s model gives probabilities, it does not rank items",
			      cs_bert_head_name(m->cfg.head));
	if (forward(m, w, NULL, b, 0, FWD_HIDDEN, err) < 0)
		return -1;
	*h = w->acts.hln;
	return 0;
}

/* ------------------------------------------------------------ backward */

/* The tensors a lazy update touches by rows: wte and out_b. */
static int lazy_tensor(const cs_bert *m, const cs_bert_train *t, int i)
{
	return t->lazy && m->cfg.head == CS_HEAD_CLOZE && (i == 0 || i == 20);
}

void cs_bert_zero_grad(const cs_bert *m, cs_bert_train *t)
{
	size_t off = 0;
	for (int i = 0; i < CS_BERT_NPARAMS; i++) {
		if (!lazy_tensor(m, t, i)) /* those stay zero between lazy steps */
			memset(t->grads_memory + off, 0, m->param_sizes[i] * sizeof(float));
		off += m->param_sizes[i];
	}
}

/*
 * Block l of a pre-LN model backward, from the gradient of its output
 * res2 to that of its input x (the previous block's res2, or x0).
 */
static void prenorm_block_backward(const cs_bert *m, cs_bert_work *w, cs_bert_train *t,
				   size_t l)
{
	const cs_bert_config *c = &m->cfg;
	size_t C = c->C, FF = c->FF, N = w->N, A = w->A, NC = N * C;
	const cs_batch *b = w->batch;
	const cs_bert_params *p = &m->params;
	cs_bert_params *g = &t->grads;
	const cs_bert_acts *a = &w->acts;
	cs_bert_acts *d = &w->dacts;
	const float *x = l ? a->res2 + (l - 1) * NC : a->x0;
	float *dx = l ? d->res2 + (l - 1) * NC : d->x0;
	float *dres2 = d->res2 + l * NC, *dres1 = d->res1 + l * NC;

	/* res2 = res1 + Dropout(FFN(LayerNorm(res1))) */
	for (size_t i = 0; i < NC; i++)
		dres1[i] += dres2[i];
	cs_dropout_backward(d->fc2 + l * NC, dres2, a->fc2m + l * NC, NC);
	cs_linear_backward_set(d->fch_gelu + l * N * FF, g->fc2_w + l * C * FF, g->fc2_b + l * C,
			       d->fc2 + l * NC, a->fch_gelu + l * N * FF, p->fc2_w + l * C * FF,
			       N, FF, C);
	cs_gelu_backward(d->fch + l * N * FF, a->fch + l * N * FF, d->fch_gelu + l * N * FF,
			 N * FF);
	cs_linear_backward(d->ln2 + l * NC, g->fc_w + l * FF * C, g->fc_b + l * FF,
			   d->fch + l * N * FF, a->ln2 + l * NC, p->fc_w + l * FF * C, N, C, FF);
	cs_layernorm_backward(dres1, g->ln2_w + l * C, g->ln2_b + l * C, d->ln2 + l * NC,
			      a->res1 + l * NC, p->ln2_w + l * C, a->ln2_mean + l * N,
			      a->ln2_rstd + l * N, N, C);
	/* res1 = x + Dropout(Proj(Attention(LayerNorm(x)))) */
	for (size_t i = 0; i < NC; i++)
		dx[i] += dres1[i];
	cs_dropout_backward(d->proj + l * NC, dres1, a->projm + l * NC, NC);
	cs_linear_backward_set(d->atty + l * NC, g->proj_w + l * C * C, g->proj_b + l * C,
			       d->proj + l * NC, a->atty + l * NC, p->proj_w + l * C * C, N, C, C);
	cs_attention_backward(d->qkv + l * 3 * NC, d->att + l * A, d->atty + l * NC,
			      a->qkv + l * 3 * NC, a->att + l * A, a->attd + l * A,
			      a->attm + l * A, b->off, b->B, C, c->NH, c->causal);
	cs_linear_backward(d->ln1 + l * NC, g->qkv_w + l * 3 * C * C, g->qkv_b + l * 3 * C,
			   d->qkv + l * 3 * NC, a->ln1 + l * NC, p->qkv_w + l * 3 * C * C,
			   N, C, 3 * C);
	cs_layernorm_backward(dx, g->ln1_w + l * C, g->ln1_b + l * C, d->ln1 + l * NC, x,
			      p->ln1_w + l * C, a->ln1_mean + l * N, a->ln1_rstd + l * N, N, C);
}

int cs_bert_backward(const cs_bert *m, cs_bert_work *w, cs_bert_train *t, cs_error *err)
{
	const cs_bert_config *c = &m->cfg;
	size_t C = c->C, L = c->L, NH = c->NH, FF = c->FF, V = c->V;
	size_t N = w->N, A = w->A, M = w->M;
	const cs_batch *b = w->batch;

	if (!b || !w->have_targets)
		return cs_err(err, CS_ERR_USAGE, NULL, 0,
			      "backward without a forward with targets");
	if (w->dacts_cap < w->nacts) { /* as large as the activations' buffer */
		size_t cap = w->acts_cap > w->nacts ? w->acts_cap : w->nacts;
		free(w->dacts_memory);
		w->dacts_cap = 0;
		w->dacts_memory = cs_malloc_large(cap * sizeof(float));
		if (!w->dacts_memory && !(w->dacts_memory = malloc((cap = w->nacts) * sizeof(float))))
			return cs_err(err, CS_ERR_NOMEM, NULL, 0,
				      "out of memory for gradients of %zu "
				      "tokens", N);
		w->dacts_cap = cap;
	}
	act_views(&w->dacts, w->dacts_memory, w->act_sizes);
	/*
	 * Zero the gradients that are added to, not those written whole
	 * before they are read: the logits' (the loss), the attention
	 * weights' three (the first is the backward pass's scratch, the
	 * others unused), and those whose one source writes them (dropout,
	 * GELU, attention and the _set linear backward): six of every
	 * block's ten C-or-wider arrays, two of them FF wide, which were
	 * most of the bytes zeroed.
	 */
	{
		cs_bert_acts *d = &w->dacts;
		float **f[CS_BERT_NACTS];
		float **written[] = { &d->embln, &d->qkv, &d->att, &d->attm, &d->attd,
				      &d->atty, &d->proj, &d->fch, &d->fch_gelu, &d->fc2,
				      &d->logits };
		act_fields(d, f);
		for (int i = 0; i < CS_BERT_NACTS; i++) {
			size_t k = 0, n = sizeof written / sizeof *written;
			while (k < n && written[k] != f[i])
				k++;
			if (k == n)
				memset(*f[i], 0, w->act_sizes[i] * sizeof(float));
		}
	}

	const cs_bert_params *p = &m->params;
	cs_bert_params *g = &t->grads;
	cs_bert_acts *a = &w->acts, *d = &w->dacts;
	size_t NC = N * C;

	int pre = c->prenorm;
	/* the gradient of the encoder's output (pre-LN: of the final LayerNorm's) */
	float *dout = pre ? d->fln : d->ln2 + (L - 1) * NC;
	if (c->head != CS_HEAD_CLOZE) {
		bin_backward(m, w, t, b, dout);
		goto blocks;
	}
	/* the mean is over the targets of the global batch (cs_bert_train.shard) */
	float dloss = t->shard.N ? (float)((double)M / t->shard.M) : 1.0f;
	if (w->sampled) {
		cs_sampled_backward(d->hln, g->wte, g->out_b, w->ce_scratch, a->hln, p->wte,
				    b->mtgt, b->neg, M, C, b->K, t->loss_kind, t->gbce_beta,
				    dloss);
	} else if (w->tiled) {
		if (ce_prepare(m, w, M, err) < 0)
			return -1;
		cs_tiedce_backward(d->hln, g->wte, g->out_b, w->ce_scratch, a->hln,
				   p->wte, p->out_b, a->lse, b->mtgt, M, C, V,
				   CS_BERT_V0, dloss);
	} else {
		cs_crossentropy_backward(d->logits, a->logits, a->lse, b->mtgt, M,
					 V, CS_BERT_V0, dloss);
		cs_linear_backward(d->hln, g->wte, g->out_b, d->logits, a->hln,
				   p->wte, M, C, V);
	}
	if (c->pred) {
		size_t VP = c->VF[c->pred - 1];
		cs_crossentropy_backward(d->flogits, a->flogits, a->flse, b->ftgt,
					 M, VP, CS_BERT_V0, dloss);
		cs_linear_backward(d->hln, pred_table(c, g), g->fout_b,
				   d->flogits, a->hln, pred_table(c, p), M, C,
				   VP);
	}
	if (pre) {
		cs_gather_backward(dout, d->hln, b->mpos, M, C);
		goto blocks;
	}
	cs_layernorm_backward(d->hh_gelu, g->headln_w, g->headln_b, d->hln,
			      a->hh_gelu, p->headln_w, a->hln_mean,
			      a->hln_rstd, M, C);
	cs_gelu_backward(d->hh, a->hh, d->hh_gelu, M * C);
	cs_linear_backward(d->hm, g->head_w, g->head_b, d->hh, a->hm,
			   p->head_w, M, C, C);
	cs_gather_backward(dout, d->hm, b->mpos, M, C);
blocks:
	if (t->frozen)
		return 0; /* the update leaves the encoder alone: no need for its gradients */
	if (pre)
		cs_layernorm_backward(d->res2 + (L - 1) * NC, g->fln_w, g->fln_b, d->fln,
				      a->res2 + (L - 1) * NC, p->fln_w, a->fln_mean,
				      a->fln_rstd, N, C);
	for (size_t l = L; l-- > 0 && pre;)
		prenorm_block_backward(m, w, t, l);
	for (size_t l = L; l-- > 0 && !pre;) {
		const float *x = l ? a->ln2 + (l - 1) * NC : a->x0;
		float *dx = l ? d->ln2 + (l - 1) * NC : d->x0;
		float *dres2 = d->res2 + l * NC, *dln1 = d->ln1 + l * NC;
		float *dres1 = d->res1 + l * NC;

		cs_layernorm_backward(dres2, g->ln2_w + l * C, g->ln2_b + l * C,
				      d->ln2 + l * NC, a->res2 + l * NC,
				      p->ln2_w + l * C, a->ln2_mean + l * N,
				      a->ln2_rstd + l * N, N, C);
		for (size_t i = 0; i < NC; i++)
			dln1[i] += dres2[i];
		cs_dropout_backward(d->fc2 + l * NC, dres2, a->fc2m + l * NC,
				    NC);
		cs_linear_backward_set(d->fch_gelu + l * N * FF, g->fc2_w + l * C * FF,
				       g->fc2_b + l * C, d->fc2 + l * NC,
				       a->fch_gelu + l * N * FF,
				       p->fc2_w + l * C * FF, N, FF, C);
		cs_gelu_backward(d->fch + l * N * FF, a->fch + l * N * FF,
				 d->fch_gelu + l * N * FF, N * FF);
		cs_linear_backward(dln1, g->fc_w + l * FF * C, g->fc_b + l * FF,
				   d->fch + l * N * FF, a->ln1 + l * NC,
				   p->fc_w + l * FF * C, N, C, FF);
		cs_layernorm_backward(dres1, g->ln1_w + l * C, g->ln1_b + l * C,
				      dln1, a->res1 + l * NC, p->ln1_w + l * C,
				      a->ln1_mean + l * N, a->ln1_rstd + l * N,
				      N, C);
		for (size_t i = 0; i < NC; i++)
			dx[i] += dres1[i];
		cs_dropout_backward(d->proj + l * NC, dres1, a->projm + l * NC,
				    NC);
		cs_linear_backward_set(d->atty + l * NC, g->proj_w + l * C * C,
				       g->proj_b + l * C, d->proj + l * NC,
				       a->atty + l * NC, p->proj_w + l * C * C, N,
				       C, C);
		cs_attention_backward(d->qkv + l * 3 * NC, d->att + l * A,
				      d->atty + l * NC, a->qkv + l * 3 * NC,
				      a->att + l * A, a->attd + l * A,
				      a->attm + l * A, b->off, b->B, C, NH, c->causal);
		cs_linear_backward(dx, g->qkv_w + l * 3 * C * C,
				   g->qkv_b + l * 3 * C, d->qkv + l * 3 * NC, x,
				   p->qkv_w + l * 3 * C * C, N, C, 3 * C);
	}
	cs_dropout_backward(d->embln, d->x0, a->embm, NC);
	cs_layernorm_backward(d->emb, g->embln_w, g->embln_b, d->embln, a->emb,
			      p->embln_w, a->embln_mean, a->embln_rstd, N, C);
	embed_backward(m, w, t, b, N);
	return 0;
}

/* ------------------------------------------------------------ update */

int cs_bert_copy_encoder(cs_bert *m, const cs_bert *src, cs_error *err)
{
	size_t off = 0, soff = 0;
	for (int i = 0; i < CS_BERT_NPARAMS; i++) {
		size_t n = m->param_sizes[i], sn = src->param_sizes[i];
		if (cs_bert_param_encoder(i) && n != sn)
			return cs_err(err, CS_ERR_USAGE, NULL, 0,
				      "encoder tensor '%s' has %zu values, this "
				      "model needs %zu (items, hidden size, "
				      "blocks, length, extra inputs and layer "
				      "norm placement must match)", ptab[i].name, sn, n);
		off += n;
		soff += sn;
	}
	off = soff = 0;
	for (int i = 0; i < CS_BERT_NPARAMS; i++) {
		if (cs_bert_param_encoder(i))
			memcpy(m->params_memory + off, src->params_memory + soff,
			       m->param_sizes[i] * sizeof(float));
		off += m->param_sizes[i];
		soff += src->param_sizes[i];
	}
	return 0;
}

void cs_bert_update(cs_bert *m, cs_bert_train *t, const cs_adamw *o, float *gnorm)
{
	if (t->frozen) {
		/* the norm and the clipping see the head alone */
		size_t off = 0;
		for (int i = 0; i < CS_BERT_NPARAMS; i++) {
			if (cs_bert_param_encoder(i))
				memset(t->grads_memory + off, 0,
				       m->param_sizes[i] * sizeof(float));
			off += m->param_sizes[i];
		}
	}
	double norm;
	if (t->lazy) {
		/* the rows not touched have zero gradients: leave them out */
		double ss = 0.0, nt;
		size_t off = 0;
		for (int i = 0; i < CS_BERT_NPARAMS; i++) {
			size_t n = m->param_sizes[i], rw = i ? 1 : m->cfg.C;
			if (!lazy_tensor(m, t, i)) {
				nt = cs_grad_norm(t->grads_memory + off, n);
				ss += nt * nt;
			} else {
				for (size_t r = 0; r < t->nrows; r++) {
					nt = cs_grad_norm(t->grads_memory + off + t->rows[r] * rw, rw);
					ss += nt * nt;
				}
			}
			off += n;
		}
		norm = sqrt(ss);
	} else {
		norm = cs_grad_norm(t->grads_memory, m->nparams);
	}
	float gs = cs_clip_scale(o, norm);
	float lr = cs_adamw_lr(o, t->step);
	size_t off = 0;

	t->step++;
	for (int i = 0; i < CS_BERT_NPARAMS; i++) {
		float wd = cs_bert_param_decays(i) ? o->weight_decay : 0.0f;
		size_t n = m->param_sizes[i], rw = i ? 1 : m->cfg.C;
		int skip = t->frozen && cs_bert_param_encoder(i);
		if (lazy_tensor(m, t, i)) {
			for (size_t r = 0; r < t->nrows; r++) {
				size_t at = off + t->rows[r] * rw;
				if (!skip)
					cs_adamw_update(o, m->params_memory + at,
							t->grads_memory + at, t->m_memory + at,
							t->v_memory + at, rw, lr, wd, gs, t->step);
				memset(t->grads_memory + at, 0, rw * sizeof(float));
			}
		} else if (!skip) {
			cs_adamw_update(o, m->params_memory + off,
					t->grads_memory + off, t->m_memory + off,
					t->v_memory + off, n, lr, wd, gs, t->step);
		}
		off += n;
	}
	for (size_t r = 0; r < t->nrows; r++)
		t->rowmark[t->rows[r]] = 0;
	t->nrows = 0;
	if (gnorm)
		*gnorm = (float)norm;
}
