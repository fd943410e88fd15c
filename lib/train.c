/* train.c - the BERT4Rec training loop, validation and checkpoints. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "bertfile.h"
#include "train.h"
#include "vocab.h"

void cs_train_defaults(cs_train_opts *o)
{
	memset(o, 0, sizeof *o);
	o->epochs = 20;
	o->batch = 128;
	cs_adamw_default(&o->adamw);
	o->adamw.lr = 1e-3f;
	o->eval_every = 1;
	o->patience = 3;
	o->seed = 1;
	o->pos_weight = 1.0f;
	o->loss = CS_LOSS_FULL;
	o->negatives = 256;
	o->sampler = CS_NEG_UNIFORM;
	o->logq = 1;
	o->gbce_t = 0.75f;
}

/* ------------------------------------------------------------ negatives */

/* What draws the negatives of the sampled losses. */
typedef struct sampler {
	int kind;            /* CS_NEG_* */
	size_t K, V;
	double *cdf;         /* pop: (V) cumulative counts of the training targets */
	float *logq;         /* pop, batch: (V) log of each item's expected count */
	uint32_t *neg;       /* (K) */
} sampler;

static void sampler_free(sampler *s)
{
	free(s->cdf);
	free(s->logq);
	free(s->neg);
	memset(s, 0, sizeof *s);
}

/*
 * Negatives are catalogue items (ids from CS_ITEM_FIRST). Popularity is
 * the count of each item as a training target, plus one so that every
 * item can be drawn; the batch sampler takes the batch's own targets,
 * each about as often as popularity says, so both correct by it.
 */
static int sampler_init(sampler *s, const cs_train_opts *o, const cs_dataset *d, size_t V,
			cs_error *err)
{
	memset(s, 0, sizeof *s);
	s->kind = o->sampler;
	s->K = o->negatives;
	s->V = V;
	if (o->loss == CS_LOSS_FULL)
		return 0;
	if (!(s->neg = malloc(s->K * sizeof *s->neg)))
		goto nomem;
	if (s->kind == CS_NEG_UNIFORM)
		return 0;
	s->cdf = calloc(V, sizeof *s->cdf);
	s->logq = malloc(V * sizeof *s->logq);
	if (!s->cdf || !s->logq)
		goto nomem;
	size_t nt = d->off[d->n];
	for (size_t i = 0; i < nt; i++)
		if (d->mtgt[i] >= CS_ITEM_FIRST && d->mtgt[i] < V)
			s->cdf[d->mtgt[i]] += 1.0;
	double total = 0;
	for (size_t j = CS_ITEM_FIRST; j < V; j++)
		total += s->cdf[j] + 1.0;
	for (size_t j = 0; j < V; j++) {
		double q = j >= CS_ITEM_FIRST ? (s->cdf[j] + 1.0) / total : 1.0 / total;
		s->logq[j] = (float)log((double)s->K * q);
	}
	double run = 0;
	for (size_t j = 0; j < V; j++) {
		run += j >= CS_ITEM_FIRST ? s->cdf[j] + 1.0 : 0.0;
		s->cdf[j] = run;
	}
	return 0;
nomem:
	sampler_free(s);
	return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory for the negative sampler");
}

/* The negatives of the batch at optimiser step `step` (from seed alone,
 * so that a resumed run draws the same ones). */
static void sampler_draw(sampler *s, const cs_batch *b, uint64_t seed, long step)
{
	cs_nn_rng r;
	cs_nn_rng_seed(&r, (seed ^ 0x5851f42d4c957f2dULL) * 0x9e3779b97f4a7c15ULL +
			   (uint64_t)step);
	size_t items = s->V - CS_ITEM_FIRST;
	for (size_t k = 0; k < s->K; k++) {
		uint64_t u = cs_nn_rng_next(&r);
		if (s->kind == CS_NEG_UNIFORM) {
			s->neg[k] = (uint32_t)(CS_ITEM_FIRST + u % items);
		} else if (s->kind == CS_NEG_BATCH && b->M) {
			uint32_t t = b->mtgt[u % b->M];
			/* the unknown item is a target, not an item to recommend */
			s->neg[k] = t >= CS_ITEM_FIRST ? t : (uint32_t)(CS_ITEM_FIRST + u % items);
		} else {
			double x = (double)(u >> 11) * 0x1p-53 * s->cdf[s->V - 1];
			size_t lo = CS_ITEM_FIRST, hi = s->V - 1;
			while (lo < hi) {
				size_t mid = (lo + hi) / 2;
				if (s->cdf[mid] > x)
					hi = mid;
				else
					lo = mid + 1;
			}
			s->neg[k] = (uint32_t)lo;
		}
	}
}

/* The order of the examples in epoch e: a seeded Fisher-Yates shuffle. */
static void epoch_order(size_t *perm, size_t n, uint64_t seed, size_t e)
{
	cs_nn_rng r;
	cs_nn_rng_seed(&r, seed * 0x9e3779b97f4a7c15ULL + e + 1);
	for (size_t i = 0; i < n; i++)
		perm[i] = i;
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)(cs_nn_rng_next(&r) % i);
		size_t t = perm[i - 1];
		perm[i - 1] = perm[j];
		perm[j] = t;
	}
}

/* "NaN", "inf" or "-inf". */
static const char *nonfinite_name(double v)
{
	return isnan(v) ? "NaN" : v > 0 ? "inf" : "-inf";
}

/*
 * Whether every weight of m (and with_optim, every AdamW moment of t) is
 * finite; if not, what is not into what ("a weight of 'wte' is NaN").
 */
static int all_finite(const cs_bert *m, const cs_bert_train *t, int with_optim, char *what,
		      size_t n)
{
	const float *buf[3] = { m->params_memory, t ? t->m_memory : NULL, t ? t->v_memory : NULL };
	static const char *name[3] = { "a weight", "an AdamW first moment", "an AdamW second moment" };
	for (int k = 0; k < (with_optim && t ? 3 : 1); k++) {
		const float *p = buf[k];
		size_t i = 0;
		while (i < m->nparams && isfinite(p[i]))
			i++;
		if (i == m->nparams)
			continue;
		size_t off = 0;
		int ti = 0;
		while (ti < CS_BERT_NPARAMS - 1 && i >= off + m->param_sizes[ti])
			off += m->param_sizes[ti++];
		snprintf(what, n, "%s of '%s' is %s", name[k], cs_bert_param_name(ti),
			 nonfinite_name(p[i]));
		return 0;
	}
	return 1;
}

static int write_checkpoint(const cs_bert *m, const cs_train_opts *o,
			    const cs_train_state *st, const char *path, cs_error *err)
{
	cs_modelfile *mf = cs_bert_to_file(m, st->ts, o->item_vocab, 1, err);
	if (!mf)
		return -1;
	int bad = 0;
	bad |= cs_modelfile_set(mf, "train.epoch", "%zu", st->epoch);
	bad |= cs_modelfile_set(mf, "train.batch_pos", "%zu", st->batch_pos);
	bad |= cs_modelfile_set(mf, "train.best", "%.17g", st->best);
	bad |= cs_modelfile_set(mf, "train.best_epoch", "%zu", st->best_epoch);
	bad |= cs_modelfile_set(mf, "train.bad_evals", "%zu", st->bad_evals);
	bad |= cs_modelfile_set(mf, "train.loss_sum", "%.17g", st->loss_sum);
	bad |= cs_modelfile_set(mf, "train.loss_n", "%zu", st->loss_n);
	bad |= cs_modelfile_set(mf, "train.examples", "%zu", st->examples);
	bad |= cs_modelfile_set(mf, "train.validated", "%d", st->validated);
	bad |= cs_modelfile_set(mf, "train.epochs", "%zu", o->epochs);
	bad |= cs_modelfile_set(mf, "train.batch", "%zu", o->batch);
	bad |= cs_modelfile_set(mf, "train.lr", "%.9g", o->adamw.lr);
	bad |= cs_modelfile_set(mf, "train.beta1", "%.9g", o->adamw.beta1);
	bad |= cs_modelfile_set(mf, "train.beta2", "%.9g", o->adamw.beta2);
	bad |= cs_modelfile_set(mf, "train.eps", "%.9g", o->adamw.eps);
	bad |= cs_modelfile_set(mf, "train.weight_decay", "%.9g", o->adamw.weight_decay);
	bad |= cs_modelfile_set(mf, "train.clip", "%.9g", o->adamw.clip);
	bad |= cs_modelfile_set(mf, "train.warmup", "%ld", o->adamw.warmup);
	bad |= cs_modelfile_set(mf, "train.eval_every", "%zu", o->eval_every);
	bad |= cs_modelfile_set(mf, "train.patience", "%zu", o->patience);
	bad |= cs_modelfile_set(mf, "train.seed", "%llu", (unsigned long long)o->seed);
	bad |= cs_modelfile_set(mf, "train.pos_weight", "%.9g", o->pos_weight);
	bad |= cs_modelfile_set(mf, "train.freeze", "%zu", o->freeze);
	bad |= cs_modelfile_set(mf, "train.loss", "%s", cs_loss_name(o->loss));
	bad |= cs_modelfile_set(mf, "train.negatives", "%zu", o->negatives);
	bad |= cs_modelfile_set(mf, "train.sampler", "%s", cs_sampler_name(o->sampler));
	bad |= cs_modelfile_set(mf, "train.logq", "%d", o->logq);
	bad |= cs_modelfile_set(mf, "train.gbce_t", "%.9g", o->gbce_t);
	if (st->best_params && !st->best_in_model) { /* the best model is behind */
		bad |= cs_modelfile_set(mf, "train.best_step", "%ld", st->best_step);
		bad |= cs_modelfile_set(mf, "train.best_nforward", "%llu",
					(unsigned long long)st->best_nforward);
		bad |= cs_modelfile_add(mf, "train.best_params", st->best_params, m->nparams, NULL);
	}
	int rc = bad ? cs_err(err, CS_ERR_NOMEM, path, 0, "out of memory")
		     : cs_modelfile_write(mf, path, err);
	cs_modelfile_free(mf);
	return rc;
}

int cs_train_checkpoint(const cs_bert *m, const cs_train_opts *o,
			const cs_train_state *st, const char *path, cs_error *err)
{
	char what[200];
	if (!all_finite(m, st->ts, 1, what, sizeof what))
		return cs_err(err, CS_ERR_FORMAT, path, 0, "checkpoint not written: %s", what);
	return write_checkpoint(m, o, st, path, err);
}

/*
 * Numbers of a checkpoint's metadata, checked as the command line checks
 * them: an unsigned integer up to max, or a finite float in [lo, hi].
 * Absent keys keep *v when optional; otherwise, or when malformed or out
 * of range, the key goes to *bad (the first one only).
 */
static void ck_u64(const cs_modelfile *mf, const char *key, uint64_t max, int optional,
		   uint64_t *v, const char **bad)
{
	const char *s = cs_modelfile_get(mf, key);
	char *end;
	if (*bad || (!s && optional))
		return;
	errno = 0;
	unsigned long long x = s && *s >= '0' && *s <= '9' ? strtoull(s, &end, 10) : 0;
	if (!s || *s < '0' || *s > '9' || errno || *end || x > max)
		*bad = key;
	else
		*v = x;
}

static void ck_f64(const cs_modelfile *mf, const char *key, double lo, double hi, int optional,
		   double *v, const char **bad)
{
	const char *s = cs_modelfile_get(mf, key);
	char *end;
	if (*bad || (!s && optional))
		return;
	double x = s ? strtod(s, &end) : 0;
	if (!s || !*s || *end || !(x >= lo && x <= hi))
		*bad = key;
	else
		*v = x;
}

void cs_train_state_free(cs_train_state *st)
{
	free(st->best_params);
	st->best_params = NULL;
	st->best_in_model = 0;
	cs_bert_train_free(st->ts);
	st->ts = NULL;
}

/*
 * The best model of checkpoint mf into st: its tensor train.best_params,
 * or the checkpoint's own weights when they are the best (taken at the
 * end of the epoch that set it). Older checkpoints taken after the best
 * have neither: st->best_params stays NULL.
 */
static int resume_best(const cs_modelfile *mf, const cs_bert *m, const cs_bert_train *ts,
		       cs_train_state *st, const char *path, cs_error *err)
{
	const cs_tensor *t = cs_modelfile_find(mf, "train.best_params");
	uint64_t step = 0, nf = 0;
	const char *bad = NULL;
	if (!t && (st->best_epoch == 0 || st->best_epoch != st->epoch || st->batch_pos))
		return 0;
	if (t) {
		ck_u64(mf, "train.best_step", (uint64_t)ts->step, 0, &step, &bad);
		ck_u64(mf, "train.best_nforward", ts->nforward, 0, &nf, &bad);
		if (bad)
			return cs_err(err, CS_ERR_FORMAT, path, 0, "bad or missing '%s' in "
				      "checkpoint", bad);
		if (t->n != m->nparams || cs_tensor_first_nonfinite(t) != t->n)
			return cs_err(err, CS_ERR_FORMAT, path, 0, "the best model of the "
				      "checkpoint does not fit its model (%zu parameters)",
				      m->nparams);
	}
	if (!(st->best_params = malloc(m->nparams * sizeof *st->best_params)))
		return cs_err(err, CS_ERR_NOMEM, path, 0, "out of memory");
	if (t) {
		cs_tensor_get(t, st->best_params);
		st->best_step = (long)step;
		st->best_nforward = nf;
	} else {
		memcpy(st->best_params, m->params_memory, m->nparams * sizeof *st->best_params);
		st->best_step = ts->step;
		st->best_nforward = ts->nforward;
	}
	return 0;
}

cs_bert *cs_train_resume(const char *path, cs_train_state *st, cs_train_opts *o,
			 uint64_t *item_vocab, cs_error *err)
{
	cs_modelfile *mf = NULL;
	cs_bert_train *ts = NULL;
	cs_bert *m = cs_bert_load(path, item_vocab, &mf, err);
	if (!m)
		return NULL;
	const cs_tensor *am = cs_modelfile_find(mf, "adam.m"), *av = cs_modelfile_find(mf, "adam.v");
	if (!cs_modelfile_get(mf, "train.epoch") || !am) {
		cs_err(err, CS_ERR_FORMAT, path, 0, "not a training checkpoint (a model file?)");
		goto fail;
	}
	if (!av || am->n != m->nparams || av->n != m->nparams) {
		cs_err(err, CS_ERR_FORMAT, path, 0, "the optimiser state of the checkpoint does "
		       "not fit its model (%zu parameters)", m->nparams);
		goto fail;
	}
	if (!(ts = cs_bert_train_from_file(m, mf, path, err)))
		goto fail;
	const char *bad = NULL;
	uint64_t epoch = 0, bpos = 0, best_epoch = 0, bad_evals = 0, loss_n = 0, examples = 0,
		 validated = 0, epochs = 0, batch = 0, warmup = 0, eval_every = 0, patience = 0,
		 seed = 0, freeze = 0;
	double best = -1, loss_sum = 0, lr = 0, b1 = 0, b2 = 0, eps = 0, wd = 0, clip = 0, pw = 1;
	const uint64_t big = 1ULL << 40;
	ck_u64(mf, "train.epoch", 1000000, 0, &epoch, &bad);
	ck_u64(mf, "train.batch_pos", big, 0, &bpos, &bad);
	ck_f64(mf, "train.best", -1, 1, 0, &best, &bad);
	ck_u64(mf, "train.best_epoch", 1000000, 0, &best_epoch, &bad);
	ck_u64(mf, "train.bad_evals", 1000000, 0, &bad_evals, &bad);
	/* absent from checkpoints written before they were kept */
	ck_f64(mf, "train.loss_sum", 0, HUGE_VAL, 1, &loss_sum, &bad);
	ck_u64(mf, "train.loss_n", big, 1, &loss_n, &bad);
	ck_u64(mf, "train.examples", big, 1, &examples, &bad);
	ck_u64(mf, "train.validated", 1, 1, &validated, &bad);
	/* the options the run was started with, in cs-train's ranges */
	ck_u64(mf, "train.epochs", 1000000, 0, &epochs, &bad);
	ck_u64(mf, "train.batch", 1 << 16, 0, &batch, &bad);
	ck_f64(mf, "train.lr", 0, 10, 0, &lr, &bad);
	ck_f64(mf, "train.beta1", 0, 0.999999, 0, &b1, &bad);
	ck_f64(mf, "train.beta2", 0, 0.999999999, 0, &b2, &bad);
	ck_f64(mf, "train.eps", 1e-30, 1, 0, &eps, &bad);
	ck_f64(mf, "train.weight_decay", 0, 10, 0, &wd, &bad);
	ck_f64(mf, "train.clip", 0, 1e9, 0, &clip, &bad);
	ck_u64(mf, "train.warmup", big, 0, &warmup, &bad);
	ck_u64(mf, "train.eval_every", 1000000, 0, &eval_every, &bad);
	ck_u64(mf, "train.patience", 1000000, 0, &patience, &bad);
	ck_u64(mf, "train.seed", 0x7fffffffffffffffULL, 0, &seed, &bad);
	ck_f64(mf, "train.pos_weight", 0, 1e6, 1, &pw, &bad);
	ck_u64(mf, "train.freeze", UINT64_MAX, 1, &freeze, &bad);
	/* absent from checkpoints of runs before the sampled losses: full */
	uint64_t negatives = 256;
	double gt = 0.75;
	int loss = CS_LOSS_FULL, smp = CS_NEG_UNIFORM;
	ck_u64(mf, "train.negatives", 1 << 20, 1, &negatives, &bad);
	uint64_t logq = 1; /* absent before --logq: on */
	ck_u64(mf, "train.logq", 1, 1, &logq, &bad);
	ck_f64(mf, "train.gbce_t", 0, 1, 1, &gt, &bad);
	const char *ls = cs_modelfile_get(mf, "train.loss"), *ss = cs_modelfile_get(mf, "train.sampler");
	if (!bad && ls && (loss = cs_loss_parse(ls)) < 0)
		bad = "train.loss";
	if (!bad && ss && (smp = cs_sampler_parse(ss)) < 0)
		bad = "train.sampler";
	if (!bad && negatives == 0)
		bad = "train.negatives";
	if (!bad && (epochs == 0 || batch == 0 || eval_every == 0 || patience == 0))
		bad = epochs == 0 ? "train.epochs" : batch == 0 ? "train.batch" :
		      eval_every == 0 ? "train.eval_every" : "train.patience";
	if (!bad && best_epoch > epoch)
		bad = "train.best_epoch";
	if (bad) {
		const char *v = cs_modelfile_get(mf, bad);
		if (v)
			cs_err(err, CS_ERR_FORMAT, path, 0, "bad '%s' in checkpoint ('%.40s')", bad, v);
		else
			cs_err(err, CS_ERR_FORMAT, path, 0, "checkpoint lacks its training options "
			       "('%s')", bad);
		goto fail;
	}
	memset(st, 0, sizeof *st);
	st->epoch = epoch;
	st->batch_pos = bpos;
	st->best = best;
	st->best_epoch = best_epoch;
	st->bad_evals = bad_evals;
	st->loss_sum = loss_sum;
	st->loss_n = loss_n;
	st->examples = examples;
	st->validated = (int)validated;
	o->epochs = epochs;
	o->batch = batch;
	o->adamw.lr = (float)lr;
	o->adamw.beta1 = (float)b1;
	o->adamw.beta2 = (float)b2;
	o->adamw.eps = (float)eps;
	o->adamw.weight_decay = (float)wd;
	o->adamw.clip = (float)clip;
	o->adamw.warmup = (long)warmup;
	o->eval_every = eval_every;
	o->patience = patience;
	o->seed = seed;
	o->pos_weight = (float)pw;
	o->freeze = freeze > SIZE_MAX ? SIZE_MAX : (size_t)freeze;
	o->loss = loss;
	o->negatives = (size_t)negatives;
	o->sampler = smp;
	o->logq = (int)logq;
	o->gbce_t = (float)gt;
	if (st->epoch >= o->epochs) {
		cs_err(err, CS_ERR_USAGE, path, 0,
		       "checkpoint has finished all its %zu epochs: nothing to resume", o->epochs);
		goto fail;
	}
	if (resume_best(mf, m, ts, st, path, err) < 0)
		goto fail;
	st->ts = ts;
	cs_modelfile_free(mf);
	return m;
fail:
	cs_bert_train_free(ts);
	cs_bert_free(m);
	cs_modelfile_free(mf);
	return NULL;
}

/* ------------------------------------------------------------ a run's model */

int cs_train_vocab(cs_bert_config *cfg, uint64_t *item_vocab, const cs_vocab *voc,
		   const char *vpath, const char *inputs, cs_error *err)
{
	int f = cs_vocab_find(voc, "item");
	if (f < 0)
		return cs_err(err, CS_ERR_FORMAT, vpath, 0, "vocabulary has no field 'item'");
	*item_vocab = cs_vocab_fingerprint(voc, (size_t)f);
	cfg->V = cs_vocab_size(voc, (size_t)f);
	if (!inputs)
		return 0;
	char *list = strdup(inputs), *save = NULL;
	int rc = 0;
	if (!list)
		return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	cfg->NF = 0;
	for (char *t = strtok_r(list, ",", &save); t && !rc; t = strtok_r(NULL, ",", &save)) {
		int fi = cs_vocab_find(voc, t);
		if (cfg->NF == CS_BERT_MAXF) {
			rc = cs_err(err, CS_ERR_USAGE, NULL, 0, "at most %d --inputs", CS_BERT_MAXF);
		} else if (!strcmp(t, "item")) {
			rc = cs_err(err, CS_ERR_USAGE, NULL, 0, "the item is always an input");
		} else if (fi < 0) {
			rc = cs_err(err, CS_ERR_USAGE, vpath, 0, "vocabulary has no field '%s' (build "
				    "it with cs-vocab build -F item,%s)", t, t);
		} else if (strlen(t) >= sizeof cfg->fname[0]) {
			rc = cs_err(err, CS_ERR_USAGE, NULL, 0, "input name '%s' too long", t);
		} else {
			for (size_t i = 0; i < cfg->NF && !rc; i++)
				if (!strcmp(cfg->fname[i], t))
					rc = cs_err(err, CS_ERR_USAGE, NULL, 0, "input '%s' given twice", t);
			if (rc)
				break;
			strcpy(cfg->fname[cfg->NF], t);
			cfg->VF[cfg->NF] = cs_vocab_size(voc, (size_t)fi);
			cfg->fvocab[cfg->NF] = cs_vocab_fingerprint(voc, (size_t)fi);
			cfg->NF++;
		}
	}
	free(list);
	return rc;
}

cs_bert *cs_train_new_model(const cs_bert_config *cfg, uint64_t seed, double mem_limit,
			    const char *path, cs_error *err)
{
	if (cs_bert_config_check(cfg, err) < 0)
		return NULL;
	double need = cs_bert_mem_bytes(cfg, 0, 0, 0, 1);
	if (mem_limit > 0 && need > mem_limit) {
		int gn = need >= 1 << 30, gl = mem_limit >= 1 << 30;
		cs_err(err, CS_ERR_LIMIT, path, 0, "model needs %.*f %s for its parameters, "
		       "gradients and optimiser state (hidden %zu, ff %zu, layers %zu, items %zu), "
		       "over the limit of %.*f %s (set CS_MEM_LIMIT)", gn,
		       need / (gn ? 1 << 30 : 1 << 20), gn ? "GiB" : "MiB", cfg->C, cfg->FF,
		       cfg->L, cfg->V, gl, mem_limit / (gl ? 1 << 30 : 1 << 20), gl ? "GiB" : "MiB");
		return NULL;
	}
	return cs_bert_new(cfg, seed, err);
}

static int same_inputs(const cs_bert_config *a, const cs_bert_config *b)
{
	if (a->NF != b->NF)
		return 0;
	for (size_t i = 0; i < a->NF; i++)
		if (strcmp(a->fname[i], b->fname[i]) || a->fvocab[i] != b->fvocab[i])
			return 0;
	return 1;
}

/*
 * Was the model of mc (fp: its items' fingerprint), read from path (a
 * "model" or a "checkpoint"), trained on the run's vocabulary: the items
 * of cfg and item_vocab; with voc, each extra input of mc too, after
 * those of cfg when the run gave them (inputs: --inputs, or NULL)?
 */
static int same_vocab(const cs_bert_config *mc, uint64_t fp, const char *what,
		      const char *path, const cs_bert_config *cfg, uint64_t item_vocab,
		      const cs_vocab *voc, const char *vpath, const char *inputs, cs_error *err)
{
	if (fp != item_vocab || mc->V != cfg->V)
		return cs_err(err, CS_ERR_FORMAT, path, 0,
			      "%s was trained with another item vocabulary than '%s'", what, vpath);
	if (inputs && !same_inputs(cfg, mc))
		return cs_err(err, CS_ERR_USAGE, path, 0,
			      "model's extra inputs differ from --inputs %s", inputs);
	for (size_t i = 0; voc && i < mc->NF; i++) {
		int fi = cs_vocab_find(voc, mc->fname[i]);
		if (fi < 0 || cs_vocab_fingerprint(voc, (size_t)fi) != mc->fvocab[i])
			return cs_err(err, CS_ERR_FORMAT, path, 0,
				      "%s's input '%s' was trained with another vocabulary than "
				      "'%s'", what, mc->fname[i], vpath);
	}
	return 0;
}

cs_bert *cs_train_model(cs_bert_config *cfg, const char *inputs, const cs_vocab *voc,
			const char *vpath, const char *init, const char *resume,
			cs_train_opts *o, cs_train_state *st, double mem_limit, cs_error *err)
{
	uint64_t fp;
	cs_bert *m, *src;
	if (resume) {
		if (!(m = cs_train_resume(resume, st, o, &fp, err)))
			return NULL;
		if (same_vocab(&m->cfg, fp, "checkpoint", resume, cfg, o->item_vocab, NULL, vpath,
			       NULL, err) < 0) {
			cs_bert_free(m);
			return NULL;
		}
		*cfg = m->cfg;
		return m;
	}
	if (!init)
		return cs_train_new_model(cfg, o->seed, mem_limit, NULL, err);
	if (!(src = cs_bert_load(init, &fp, NULL, err)))
		return NULL;
	m = NULL;
	if (same_vocab(&src->cfg, fp, "model", init, cfg, o->item_vocab, voc, vpath, inputs,
		       err) == 0) {
		/* the encoder's shape and inputs come from the model; the head,
		 * its pooling and the dropouts from the run */
		cs_bert_config c = src->cfg;
		c.head = cfg->head;
		c.pool = cfg->pool;
		if (c.head != CS_HEAD_CLOZE)
			c.pred = 0;
		c.hidden_dropout = cfg->hidden_dropout;
		c.attn_dropout = cfg->attn_dropout;
		m = cs_train_new_model(&c, o->seed, mem_limit, init, err);
		if (m && cs_bert_copy_encoder(m, src, err) < 0) {
			cs_bert_free(m);
			m = NULL;
		}
		if (m)
			*cfg = c;
	}
	cs_bert_free(src);
	return m;
}

cs_dataset *cs_train_examples(const char *path, cs_bert **m, cs_bert_config *cfg, int fresh,
			      int fixed_len, int attention, int norm, uint64_t seed,
			      uint64_t item_vocab, double mem_limit, size_t *window, cs_error *err)
{
	cs_dataset *d = cs_dataset_for_model(path, cfg, item_vocab, 1, NULL, err);
	*window = 0;
	if (!d)
		return NULL;
	if (fresh && !fixed_len && cfg->head == CS_HEAD_CLOZE && d->window > cfg->P) {
		/* a new model's length covers the examples' windows (cs-mask
		 * --max-len) unless --max-len says otherwise: read them again,
		 * which stdin cannot */
		if (!strcmp(path, "-")) {
			*window = d->window;
		} else {
			cfg->P = d->window;
			cs_dataset_free(d);
			cs_bert_free(*m);
			if (!(*m = cs_train_new_model(cfg, seed, mem_limit, NULL, err)) ||
			    !(d = cs_dataset_for_model(path, cfg, item_vocab, 1, NULL, err)))
				return NULL;
		}
	}
	if (cfg->head != CS_HEAD_CLOZE)
		return d;
	/* the attention follows the examples unless said (it sizes no
	 * tensor); the blocks are pre-LN for causal attention unless said,
	 * which sizes tensors: a new model then */
	if (fresh) {
		(*m)->cfg.causal = cfg->causal = attention >= 0 ? attention : d->next;
		int pre = norm >= 0 ? norm : cfg->causal;
		if (pre != cfg->prenorm) {
			cfg->prenorm = pre;
			cs_bert_free(*m);
			if (!(*m = cs_train_new_model(cfg, seed, mem_limit, NULL, err))) {
				cs_dataset_free(d);
				return NULL;
			}
		}
	}
	if (cfg->causal != d->next) {
		cs_err(err, CS_ERR_USAGE, path, 0, "%s examples for a %s model: make them with "
		       "cs-mask %s", d->next ? "next-item" : "Cloze",
		       cfg->causal ? "causal" : "bidirectional", cfg->causal ? "next" : "cloze");
		cs_dataset_free(d);
		return NULL;
	}
	return d;
}

/* What a run has written so far, for the message when it diverges. */
typedef struct kept {
	long ckpt_step;     /* step of the last checkpoint written, -1: none */
	size_t model_epoch; /* epoch of the last model written, 0: none */
} kept;

/*
 * Stop a diverging run: what went wrong (what, at step) and which of the
 * files written before are kept as they were.
 */
static int diverged(cs_error *err, const cs_train_opts *o, const kept *k, const char *what,
		    long step)
{
	char ck[600] = "", mo[600] = "";
	if (k->ckpt_step >= 0)
		snprintf(ck, sizeof ck, "checkpoint '%s' (step %ld)", o->ckpt, k->ckpt_step);
	if (k->model_epoch)
		snprintf(mo, sizeof mo, "model '%s' (epoch %zu)", o->output, k->model_epoch);
	return cs_err(err, CS_ERR_FORMAT, NULL, 0,
		      "training diverged: %s at step %ld (try a lower --lr); %s%s%s%s", what, step,
		      mo, *ck && *mo ? " and " : "", ck,
		      *ck && *mo ? " are kept" : *ck || *mo ? " is kept" :
		      "this run wrote no model or checkpoint");
}

/*
 * rc of what rank 0 alone did (wrote a file), made everyone's: -1 on
 * every process when it failed (and on rank 0 too when another failed).
 */
static int agree_rc(cs_comm *cm, int rc, cs_error *err)
{
	if (cm->size > 1 && !cs_comm_agree(cm, rc == 0, err))
		return -1;
	return rc;
}

/* Rank 0 writes; every process checks the weights (all hold the same). */
static int save_model(const cs_bert *m, const cs_bert_train *t, const cs_train_opts *o,
		      cs_comm *cm, kept *k, size_t epoch, cs_error *err)
{
	char what[200];
	int rc = 0;
	if (!all_finite(m, t, 0, what, sizeof what))
		return diverged(err, o, k, what, t->step);
	if (cm->rank == 0) {
		cs_modelfile *mf = cs_bert_to_file(m, t, o->item_vocab, 0, err);
		rc = mf ? cs_modelfile_write(mf, o->output, err) : -1;
		cs_modelfile_free(mf);
	}
	if ((rc = agree_rc(cm, rc, err)) == 0)
		k->model_epoch = epoch;
	return rc;
}

/*
 * The best model, just written, kept for the checkpoints that come after
 * it (rank 0 writes them).
 */
static int keep_best(const cs_bert *m, const cs_train_opts *o, const cs_comm *cm,
		     cs_train_state *st, cs_error *err)
{
	if (!o->ckpt || cm->rank != 0)
		return 0;
	if (!st->best_params && !(st->best_params = malloc(m->nparams * sizeof *st->best_params)))
		return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	memcpy(st->best_params, m->params_memory, m->nparams * sizeof *st->best_params);
	st->best_step = st->ts->step;
	st->best_nforward = st->ts->nforward;
	st->best_in_model = 1;
	return 0;
}

/* The best model of st to o->output, as it was written when it was the best. */
static int save_best(const cs_bert *m, const cs_train_opts *o, const cs_train_state *st,
		     cs_error *err)
{
	cs_modelfile *mf = cs_bert_weights_to_file(m, st->ts, st->best_params, st->best_step,
						   st->best_nforward, o->item_vocab, err);
	int rc = mf ? cs_modelfile_write(mf, o->output, err) : -1;
	cs_modelfile_free(mf);
	return rc;
}

static int save_checkpoint(const cs_bert *m, const cs_train_opts *o, const cs_train_state *st,
			   cs_comm *cm, kept *k, cs_error *err)
{
	char what[200];
	if (!all_finite(m, st->ts, 1, what, sizeof what))
		return diverged(err, o, k, what, st->ts->step);
	if (agree_rc(cm, cm->rank == 0 ? write_checkpoint(m, o, st, o->ckpt, err) : 0, err) < 0)
		return -1;
	k->ckpt_step = st->ts->step;
	return 0;
}

/* ------------------------------------------------------------ data parallel */

/*
 * One step of data-parallel training: this process's share of the
 * global batch g (sequences seq[0..g->B) of d, negatives and all) is its
 * sequences B rank / size .. B (rank + 1) / size. Forward and backward
 * of the share as part of g (cs_bert_train.shard), then the losses and
 * gradients (and the rows of a lazy step) summed over the processes:
 * *loss and m's gradients end as one process's for g.
 */
static int share_step(const cs_bert *m, cs_bert_work *w, cs_bert_train *t, cs_batcher *sbt,
		      const cs_batch *g, const cs_dataset *d, const size_t *seq, cs_comm *cm,
		      float *loss, double *comm_s, cs_error *err)
{
	size_t B = g->B, NH = m->cfg.NH;
	size_t s0 = B * (size_t)cm->rank / (size_t)cm->size;
	size_t s1 = B * (size_t)(cm->rank + 1) / (size_t)cm->size;
	double W = 0, sum[2] = { 0, 0 }; /* the share's part of the loss, failures */
	for (size_t i = 0; m->cfg.head != CS_HEAD_CLOZE && i < g->M; i++)
		W += g->mtgt[i] ? t->pos_weight : 1.0f; /* as the loss weighs them */
	t->shard.N = g->off[B];
	t->shard.A = cs_attention_size(g->off, B, NH);
	t->shard.tok0 = g->off[s0];
	t->shard.att0 = cs_attention_size(g->off, s0, NH);
	t->shard.M = (double)g->M;
	t->shard.W = W;
	cs_bert_zero_grad(m, t);
	int ok = 1;
	if (s1 > s0) {
		cs_batch *b = cs_batcher_fill(sbt, d, seq + s0, 0, s1 - s0);
		b->K = g->K;
		b->neg = g->neg;
		ok = cs_bert_forward(m, w, t, b, 1, NULL, err) == 0;
		/* a share with nothing to predict adds nothing to the gradient */
		if (ok && b->M) {
			sum[0] = w->loss;
			ok = cs_bert_backward(m, w, t, err) == 0;
		}
	} else {
		t->nforward++; /* the dropout stream of the step goes on */
	}
	memset(&t->shard, 0, sizeof t->shard);
	sum[1] = !ok;
	double t0 = cs_now();
	if (cm->sum_f64(cm, sum, 2, err) < 0)
		return -1;
	if (sum[1] > 0) {
		cs_comm_agree(cm, ok, err);
		return -1;
	}
	*loss = (float)sum[0];
	if (cm->sum_f32(cm, t->grads_memory, m->nparams, err) < 0)
		return -1;
	if (t->lazy && (cm->or_u8(cm, t->rowmark, m->cfg.V, err) < 0 ||
			cs_bert_rows_from_mark(m, t, err) < 0))
		return -1;
	*comm_s += cs_now() - t0;
	return 0;
}

/* Sequences [s0, s1) of d, sharing its arrays. */
static cs_dataset dataset_view(const cs_dataset *d, size_t s0, size_t s1)
{
	cs_dataset v = *d;
	v.n = s1 - s0;
	v.off = d->off + s0; /* token offsets stay those of d's arrays */
	if (d->target)
		v.target = d->target + s0;
	if (d->label && d->kind == CS_DATA_SESSION)
		v.label = d->label + s0;
	if (d->key_off)
		v.key_off = d->key_off + s0;
	if (d->start)
		v.start = d->start + s0;
	return v;
}

/* This process's share of the validation sequences: [*s0, *s1). */
static void valid_share(const cs_comm *cm, size_t n, size_t *s0, size_t *s1)
{
	*s0 = n * (size_t)cm->rank / (size_t)cm->size;
	*s1 = n * (size_t)(cm->rank + 1) / (size_t)cm->size;
}

/* cs_evaluate over the processes: each ranks its share, the counts summed. */
static int validate_cloze(const cs_bert *m, cs_bert_work *w, const cs_dataset *valid,
			  const cs_eval_opts *eo, cs_comm *cm, cs_eval_result *res, cs_error *err)
{
	if (cm->size == 1)
		return cs_evaluate(m, w, valid, eo, res, err);
	size_t s0, s1;
	valid_share(cm, valid->n, &s0, &s1);
	cs_dataset v = dataset_view(valid, s0, s1);
	if (!cs_comm_agree(cm, cs_evaluate(m, w, &v, eo, res, err) == 0, err))
		return -1;
	cs_metrics *f = &res->full;
	double sum[2 * CS_METRICS_MAXK + 3];
	size_t nk = f->nk, k = 0;
	for (size_t i = 0; i < nk; i++) {
		sum[k++] = f->hr[i];
		sum[k++] = f->ndcg[i];
	}
	sum[k++] = f->mrr;
	sum[k++] = (double)f->n;
	sum[k++] = (double)res->skipped;
	if (cm->sum_f64(cm, sum, k, err) < 0)
		return -1;
	for (size_t i = 0, j = 0; i < nk; i++) {
		f->hr[i] = sum[j++];
		f->ndcg[i] = sum[j++];
	}
	f->mrr = sum[2 * nk];
	f->n = (uint64_t)sum[2 * nk + 1];
	res->skipped = (uint64_t)sum[2 * nk + 2];
	return 0;
}

/* Labels that batches of bt take from sequences [s0, s1) of d. */
static size_t labels_in(cs_batcher *bt, const cs_dataset *d, size_t s0, size_t s1)
{
	size_t k = 0;
	for (size_t first = s0; first < s1; first += bt->cap) {
		size_t B = s1 - first < bt->cap ? s1 - first : bt->cap;
		k += cs_batcher_fill(bt, d, NULL, first, B)->M;
	}
	return k;
}

/*
 * cs_evaluate_binary over the processes: each predicts its share into
 * its place of one array of every label's probability and label, summed
 * (the others' places hold zeros), then all compute the metrics.
 */
static int validate_binary(const cs_bert *m, cs_bert_work *w, const cs_dataset *valid,
			   cs_comm *cm, cs_binmetrics *bm, cs_error *err)
{
	if (cm->size == 1)
		return cs_evaluate_binary(m, w, valid, 0, 0.5, bm, err);
	size_t s0, s1, n = valid->nlabels, k0 = 0;
	valid_share(cm, valid->n, &s0, &s1);
	cs_dataset v = dataset_view(valid, s0, s1);
	cs_batcher bt = { 0 };
	float *py = calloc(2 * n + 1, sizeof *py); /* (n) probabilities, (n) labels */
	uint8_t *y = malloc(n + 1);
	int ok = py && y;
	if (!ok)
		cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	if (ok && (ok = cs_batcher_init(&bt, &m->cfg, valid->kind, 256, err) == 0)) {
		k0 = labels_in(&bt, valid, 0, s0);
		v.nlabels = labels_in(&bt, valid, s0, s1);
	}
	if (ok && k0 + v.nlabels > n) {
		cs_err(err, CS_ERR_USAGE, NULL, 0, "labels do not match the model's head");
		ok = 0;
	}
	if (ok && v.nlabels && (ok = cs_predict(m, w, &v, 0, py + k0, y + k0, err) == 0))
		for (size_t i = 0; i < v.nlabels; i++)
			py[n + k0 + i] = y[k0 + i];
	int rc = -1;
	if (cs_comm_agree(cm, ok, err) && cm->sum_f32(cm, py, 2 * n, err) == 0) {
		for (size_t i = 0; i < n; i++)
			y[i] = py[n + i] != 0.0f;
		rc = cs_binmetrics_compute(py, y, n, 0.5, bm, err);
	}
	cs_batcher_free(&bt);
	free(py);
	free(y);
	return rc;
}

/* 32-bit FNV-1a of the weights and moments. */
static uint32_t model_hash(const cs_bert *m, const cs_bert_train *t)
{
	uint32_t h = 2166136261u;
	const float *buf[3] = { m->params_memory, t->m_memory, t->v_memory };
	for (int k = 0; k < 3; k++) {
		const unsigned char *p = (const unsigned char *)buf[k];
		for (size_t i = 0; i < m->nparams * sizeof(float); i++)
			h = (h ^ p[i]) * 16777619u;
	}
	return h;
}

/*
 * Do all processes hold the same model? They should, bit for bit (the
 * same sums, the same steps): a difference is a fault, not noise.
 */
static int same_model(const cs_bert *m, const cs_bert_train *t, cs_comm *cm, cs_error *err)
{
	double h = (double)model_hash(m, t), sum = h;
	if (cm->size == 1)
		return 0;
	if (cm->sum_f64(cm, &sum, 1, err) < 0)
		return -1;
	int ok = sum == h * cm->size;
	if (!ok)
		cs_err(err, CS_ERR_MODEL, NULL, 0, "the processes' models differ after step %ld "
		       "(their sums disagree)", t->step);
	return cs_comm_agree(cm, ok, err) ? 0 : -1;
}

int cs_train_check_data(const cs_train_state *st, const cs_train_opts *o,
			const cs_dataset *train, const cs_dataset *valid, const char *path,
			cs_error *err)
{
	size_t n = train->n, per_epoch = (n + o->batch - 1) / o->batch;
	const char *the = path ? "" : "the ";
	/* a resumed run goes on exactly only on the same data */
	if (st->examples && st->examples != n)
		return cs_err(err, CS_ERR_USAGE, path, 0, "%scheckpoint was trained on %zu "
			      "examples, not %zu: resume with the same training data", the,
			      st->examples, n);
	if (st->batch_pos > per_epoch)
		return cs_err(err, CS_ERR_FORMAT, path, 0, "%scheckpoint is %zu batches into an "
			      "epoch of %zu", the, st->batch_pos, per_epoch);
	if (st->validated && !valid)
		return cs_err(err, CS_ERR_USAGE, path, 0, "%scheckpoint's run was validated: "
			      "resume with the same --valid split", the);
	return 0;
}

int cs_train(cs_bert *m, const cs_dataset *train, const cs_dataset *valid,
	     const cs_train_opts *o, cs_train_state *st, cs_train_cb cb, void *ctx,
	     cs_error *err)
{
	size_t BS = o->batch, n = train->n;
	size_t per_epoch = (n + BS - 1) / BS;
	int head = m->cfg.head;
	int kind = cs_data_kind(&m->cfg, 1);
	cs_adamw aw = o->adamw;
	aw.total = (long)(per_epoch * o->epochs);
	int rc = -1;
	cs_comm *cm = o->comm ? o->comm : cs_comm_single();
	int par = cm->size > 1;
	cs_batcher bt = { 0 }, sbt = { 0 };
	sampler smp = { 0 };
	kept k = { -1, 0 };
	char what[200];
	cs_bert_train *t = NULL;
	cs_bert_work *w = cs_bert_work_new(err);
	size_t *perm = malloc(n * sizeof *perm);
	cs_eval_opts eo;
	cs_eval_defaults(&eo);
	eo.negatives = 0; /* validation: full ranking */
	if (!w)
		goto out;
	w->mem_limit = o->mem_limit;
	if (!perm) {
		cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
		goto out;
	}
	if (train->kind != kind || (valid && valid->kind != cs_data_kind(&m->cfg, 0))) {
		cs_err(err, CS_ERR_USAGE, NULL, 0, "the data does not suit a %s head",
		       cs_bert_head_name(head));
		goto out;
	}
	if (cs_train_check_data(st, o, train, valid, NULL, err) < 0)
		goto out;
	st->examples = n;
	st->validated = valid != NULL;
	if (cs_dataset_check(train, &m->cfg, err) < 0 ||
	    (valid && cs_dataset_check(valid, &m->cfg, err) < 0) ||
	    cs_batcher_init(&bt, &m->cfg, kind, BS, err) < 0 ||
	    (par && cs_batcher_init(&sbt, &m->cfg, kind, BS / (size_t)cm->size + 1, err) < 0))
		goto out;
	if (o->loss != CS_LOSS_FULL && (head != CS_HEAD_CLOZE || o->negatives == 0)) {
		cs_err(err, CS_ERR_USAGE, NULL, 0, "the %s loss is for the cloze head, with "
		       "negatives", cs_loss_name(o->loss));
		goto out;
	}
	if (sampler_init(&smp, o, train, m->cfg.V, err) < 0)
		goto out;
	/* a run resumed has the checkpoint's training state; a new one, its own */
	if (!st->ts && !(st->ts = cs_bert_train_new(m, o->seed, err)))
		goto out;
	t = st->ts;
	t->loss_kind = o->loss;
	/* the sampled losses touch a few rows of the output layer a step;
	 * their gradients start zero (lazy steps keep them so) */
	t->lazy = 0;
	cs_bert_zero_grad(m, t);
	t->lazy = o->loss != CS_LOSS_FULL;
	t->logq = o->logq ? smp.logq : NULL;
	t->gbce_beta = cs_gbce_beta(o->negatives, m->cfg.V - CS_ITEM_FIRST, o->gbce_t);
	if (head != CS_HEAD_CLOZE) {
		uint64_t np = train->npos, nn = train->nlabels - train->npos;
		t->pos_weight = o->pos_weight > 0 ? o->pos_weight :
				np && nn ? (float)((double)nn / (double)np) : 1.0f;
	}
	/* from here on every process fails together */
	if (par && !cs_comm_agree(cm, 1, err))
		goto out;
	double t_start = cs_now();
	for (; st->epoch < o->epochs; st->epoch++, st->batch_pos = 0) {
		epoch_order(perm, n, o->seed, st->epoch);
		double t0 = cs_now();
		size_t seen = 0;
		float gnorm = 0;
		double comm_s = 0;
		if (st->batch_pos == 0)
			st->loss_sum = 0, st->loss_n = 0;
		t->frozen = st->epoch < o->freeze;
		for (size_t bi = st->batch_pos; bi < per_epoch; bi++) {
			size_t first = bi * BS, B = n - first < BS ? n - first : BS;
			cs_batch *b = cs_batcher_fill(&bt, train, perm + first, 0, B);
			float loss;
			if (smp.neg) {
				sampler_draw(&smp, b, o->seed, t->step);
				b->K = smp.K;
				b->neg = smp.neg;
			}
			if (b->M == 0) { /* nothing labelled in this batch */
				st->batch_pos = bi + 1;
				continue;
			}
			if (par) {
				if (share_step(m, w, t, &sbt, b, train, perm + first, cm, &loss,
					       &comm_s, err) < 0)
					goto out;
			} else if (cs_bert_forward(m, w, t, b, 1, &loss, err) < 0) {
				goto out;
			}
			if (!isfinite(loss)) {
				snprintf(what, sizeof what, "the loss is %s", nonfinite_name(loss));
				diverged(err, o, &k, what, t->step + 1);
				goto out;
			}
			if (!par) {
				cs_bert_zero_grad(m, t);
				if (cs_bert_backward(m, w, t, err) < 0)
					goto out;
			}
			float lr = cs_adamw_lr(&aw, t->step);
			/* a gradient that is not finite spoils the weights: nothing is saved after it */
			cs_bert_update(m, t, &aw, &gnorm);
			st->best_in_model = 0;
			if (!isfinite(gnorm)) {
				snprintf(what, sizeof what, "the gradient norm is %s", nonfinite_name(gnorm));
				diverged(err, o, &k, what, t->step);
				goto out;
			}
			st->loss_sum += loss;
			st->loss_n++;
			seen += B;
			st->batch_pos = bi + 1;
			double now = cs_now(), rate = seen / (now - t0 + 1e-9);
			long left = aw.total - t->step;
			cs_train_event ev = { CS_TRAIN_STEP, st->epoch, o->epochs, t->step, aw.total,
					      st->loss_sum / st->loss_n, rate, now - t_start,
					      left * (double)BS / (rate + 1e-9), lr, gnorm, NULL, NULL, 0, NULL,
					      loss, 0, 0 };
			int stop = cb && cb(ctx, &ev);
			if (par) { /* one stops, all stop */
				int go = !stop;
				double t1 = cs_now();
				if (cm->min_int(cm, &go, err) < 0)
					goto out;
				comm_s += cs_now() - t1;
				stop = !go;
			}
			if (o->ckpt && (stop || (o->ckpt_every && t->step % o->ckpt_every == 0))) {
				if (save_checkpoint(m, o, st, cm, &k, err) < 0)
					goto out;
				ev.kind = CS_TRAIN_CKPT;
				ev.path = o->ckpt;
				if (cb)
					cb(ctx, &ev);
			}
			if (stop) {
				rc = 1;
				goto out;
			}
		}
		/* End of an epoch: validate, keep the best, maybe stop. */
		double now = cs_now();
		cs_train_event ev = { 0, st->epoch + 1, o->epochs, t->step, aw.total,
				      st->loss_n ? st->loss_sum / st->loss_n : 0,
				      seen / (now - t0 + 1e-9), now - t_start, 0,
				      t->step ? cs_adamw_lr(&aw, t->step - 1) : 0, gnorm, NULL, NULL, 0,
				      NULL, 0, comm_s, now - t0 };
		int last = st->epoch + 1 == o->epochs;
		if (same_model(m, t, cm, err) < 0)
			goto out;
		if (valid && ((st->epoch + 1) % o->eval_every == 0 || last)) {
			cs_eval_result res;
			cs_binmetrics bm;
			double score;
			if (head == CS_HEAD_CLOZE) {
				if (validate_cloze(m, w, valid, &eo, cm, &res, err) < 0)
					goto out;
				score = cs_metrics_ndcg(&res.full, 2); /* K = 10 */
				ev.eval = &res;
			} else {
				if (validate_binary(m, w, valid, cm, &bm, err) < 0)
					goto out;
				score = isnan(bm.auc) ? 0 : bm.auc;
				ev.bin = &bm;
			}
			ev.kind = CS_TRAIN_EVAL;
			ev.improved = score > st->best;
			if (ev.improved) {
				st->best = score;
				st->best_epoch = st->epoch + 1;
				st->bad_evals = 0;
				if (save_model(m, t, o, cm, &k, st->epoch + 1, err) < 0 ||
				    agree_rc(cm, keep_best(m, o, cm, st, err), err) < 0)
					goto out;
			} else {
				st->bad_evals++;
			}
			if (cb)
				cb(ctx, &ev);
			if (st->bad_evals >= o->patience) {
				st->stopped_early = 1;
				st->epoch++;
				st->batch_pos = 0;
				break;
			}
		} else if (!valid) {
			if (save_model(m, t, o, cm, &k, st->epoch + 1, err) < 0)
				goto out;
			ev.kind = CS_TRAIN_SAVE;
			ev.path = o->output;
			if (cb)
				cb(ctx, &ev);
		} else if (cb) {
			ev.kind = CS_TRAIN_EPOCH;
			cb(ctx, &ev);
		}
		if (o->ckpt) {
			cs_train_state next = *st;
			next.epoch++;
			next.batch_pos = 0;
			next.loss_sum = 0;
			next.loss_n = 0;
			if (save_checkpoint(m, o, &next, cm, &k, err) < 0)
				goto out;
		}
	}
	/* resumed after its best and never better since: -o gets the best */
	if (valid && !k.model_epoch && st->best_params &&
	    agree_rc(cm, cm->rank == 0 ? save_best(m, o, st, err) : 0, err) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0 && par && cm->failed < 0) { /* a failure the others share, or wait for */
		cs_error e2;
		cs_comm_agree(cm, 0, &e2);
	}
	free(perm);
	cs_batcher_free(&bt);
	cs_batcher_free(&sbt);
	if (t) {
		t->logq = NULL; /* the sampler's */
		t->lazy = 0;
	}
	cs_bert_work_free(w);
	sampler_free(&smp);
	return rc;
}
