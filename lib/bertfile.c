/* bertfile.c - BERT4Rec models and checkpoints in model files. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "bertfile.h"

int cs_bert_param_shape(const cs_bert_config *c, int i, uint64_t d[3])
{
	uint64_t V = c->V, C = c->C, L = c->L, P = c->P, FF = c->FF, sf = 0;
	for (size_t f = 0; f < c->NF; f++)
		sf += c->VF[f];
	switch (i) {
	case 0: d[0] = V, d[1] = C; return 2;
	case 1: d[0] = P, d[1] = C; return 2;
	case 4: d[0] = L, d[1] = 3 * C, d[2] = C; return 3;
	case 5: d[0] = L, d[1] = 3 * C; return 2;
	case 6: d[0] = L, d[1] = C, d[2] = C; return 3;
	case 10: d[0] = L, d[1] = FF, d[2] = C; return 3;
	case 11: d[0] = L, d[1] = FF; return 2;
	case 12: d[0] = L, d[1] = C, d[2] = FF; return 3;
	case 7: case 8: case 9: case 13: case 14: case 15:
		d[0] = L, d[1] = C; return 2;
	case 16: case 24: d[0] = C, d[1] = C; return 2;
	case 20: d[0] = V; return 1;
	case 21: d[0] = sf, d[1] = C; return 2;
	case 22: d[0] = C, d[1] = (1 + c->NF) * C; return 2;
	case 27: d[0] = 1; return 1;
	case 28: d[0] = c->pred ? c->VF[c->pred - 1] : 0; return 1;
	default: d[0] = C; return 1; /* LayerNorms, biases, cls_w */
	}
}

/* Metadata "shape.NAME": the dimensions of tensor NAME, comma-separated. */
static int set_shape(cs_modelfile *mf, const char *name, const uint64_t *d, int rank)
{
	char key[64], val[96];
	size_t n = 0;
	for (int k = 0; k < rank; k++)
		n += (size_t)snprintf(val + n, sizeof val - n, "%s%" PRIu64, k ? "," : "", d[k]);
	snprintf(key, sizeof key, "shape.%s", name);
	return cs_modelfile_set(mf, key, "%s", val);
}

/* The file of m with the weights params at step and nforward of t's dropout
 * stream (t NULL: none, all 0); with_optim, t's moments. */
static cs_modelfile *to_file(const cs_bert *m, const cs_bert_train *t, float *params,
			     long step, uint64_t nforward, uint64_t item_vocab, int with_optim,
			     cs_error *err)
{
	cs_modelfile *mf = cs_modelfile_new();
	if (!mf) {
		cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
		return NULL;
	}
	const cs_bert_config *c = &m->cfg;
	int bad = 0;
	/* a causal or pre-LN model is another architecture to readers that
	 * predate it, which refuse it rather than misread it */
	bad |= cs_modelfile_set(mf, "arch", "%s%s", c->causal ? "sasrec" : "bert4rec",
				c->prenorm ? "-preln" : "");
	bad |= cs_modelfile_set(mf, "V", "%zu", c->V);
	bad |= cs_modelfile_set(mf, "C", "%zu", c->C);
	bad |= cs_modelfile_set(mf, "L", "%zu", c->L);
	bad |= cs_modelfile_set(mf, "NH", "%zu", c->NH);
	bad |= cs_modelfile_set(mf, "P", "%zu", c->P);
	bad |= cs_modelfile_set(mf, "FF", "%zu", c->FF);
	bad |= cs_modelfile_set(mf, "hidden_dropout", "%.9g", c->hidden_dropout);
	bad |= cs_modelfile_set(mf, "attn_dropout", "%.9g", c->attn_dropout);
	bad |= cs_modelfile_set(mf, "init_range", "%.9g", c->init_range);
	bad |= cs_modelfile_set(mf, "item_vocab", "%016" PRIx64, item_vocab);
	bad |= cs_modelfile_set(mf, "head", "%s", cs_bert_head_name(c->head));
	bad |= cs_modelfile_set(mf, "pool", "%s", cs_bert_pool_name(c->pool));
	bad |= cs_modelfile_set(mf, "combine", "%s", cs_bert_combine_name(c->combine));
	bad |= cs_modelfile_set(mf, "NF", "%zu", c->NF);
	if (c->pred)
		bad |= cs_modelfile_set(mf, "predict", "%s", c->fname[c->pred - 1]);
	for (size_t f = 0; f < c->NF && !bad; f++) {
		char key[32];
		snprintf(key, sizeof key, "input%zu", f);
		bad |= cs_modelfile_set(mf, key, "%s", c->fname[f]);
		snprintf(key, sizeof key, "input%zu.ids", f);
		bad |= cs_modelfile_set(mf, key, "%zu", c->VF[f]);
		snprintf(key, sizeof key, "input%zu.vocab", f);
		bad |= cs_modelfile_set(mf, key, "%016" PRIx64, c->fvocab[f]);
	}
	bad |= cs_modelfile_set(mf, "step", "%ld", step);
	bad |= cs_modelfile_set(mf, "seed", "%" PRIu64, t ? t->seed : 0);
	bad |= cs_modelfile_set(mf, "nforward", "%" PRIu64, nforward);
	float *p = params;
	for (int i = 0; i < CS_BERT_NPARAMS && !bad; i++) {
		if (m->param_sizes[i]) {
			uint64_t d[3], n = 1;
			int rank = cs_bert_param_shape(c, i, d);
			for (int k = 0; k < rank; k++)
				n *= d[k];
			if (n != m->param_sizes[i]) /* a tensor this table does not know */
				d[0] = m->param_sizes[i], rank = 1;
			bad |= cs_modelfile_add(mf, cs_bert_param_name(i), p, m->param_sizes[i], NULL);
			bad |= set_shape(mf, cs_bert_param_name(i), d, rank);
		}
		p += m->param_sizes[i];
	}
	if (with_optim && !bad && !t) {
		cs_modelfile_free(mf);
		cs_err(err, CS_ERR_USAGE, NULL, 0, "the model has no optimiser state to save");
		return NULL;
	}
	if (with_optim && !bad) {
		uint64_t d[1] = { m->nparams };
		bad |= cs_modelfile_add(mf, "adam.m", t->m_memory, m->nparams, NULL);
		bad |= cs_modelfile_add(mf, "adam.v", t->v_memory, m->nparams, NULL);
		bad |= set_shape(mf, "adam.m", d, 1) | set_shape(mf, "adam.v", d, 1);
	}
	if (bad) {
		cs_modelfile_free(mf);
		cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
		return NULL;
	}
	return mf;
}

cs_modelfile *cs_bert_to_file(const cs_bert *m, const cs_bert_train *t, uint64_t item_vocab,
			      int with_optim, cs_error *err)
{
	return to_file(m, t, m->params_memory, t ? t->step : 0, t ? t->nforward : 0, item_vocab,
		       with_optim, err);
}

cs_modelfile *cs_bert_weights_to_file(const cs_bert *m, const cs_bert_train *t,
				      float *params, long step, uint64_t nforward,
				      uint64_t item_vocab, cs_error *err)
{
	return to_file(m, t, params, step, nforward, item_vocab, 0, err);
}

/* An unsigned decimal metadata value up to max; -1 if missing or malformed. */
static int meta_u64(const cs_modelfile *mf, const char *key, uint64_t max, uint64_t *out)
{
	const char *s = cs_modelfile_get(mf, key);
	char *end;
	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

static int meta_size(const cs_modelfile *mf, const char *key, size_t *out)
{
	uint64_t v;
	if (meta_u64(mf, key, 1ULL << 40, &v) < 0)
		return -1;
	*out = (size_t)v;
	return 0;
}

static int meta_float(const cs_modelfile *mf, const char *key, float *out)
{
	const char *s = cs_modelfile_get(mf, key);
	char *end;
	if (!s || !*s)
		return -1;
	*out = strtof(s, &end);
	return *end ? -1 : 0;
}

/*
 * The parameters' tensors (sizes: cs_bert_param_sizes) moved to the front
 * of image, back to back in their order, when they lie in it in that
 * order (each then moves towards the front, over bytes already read);
 * NULL, nothing moved, otherwise.
 */
static float *compact(const cs_modelfile *mf, const size_t *sizes, void *image)
{
	const unsigned char *last = image;
	for (int i = 0; i < CS_BERT_NPARAMS; i++) {
		const cs_tensor *t = sizes[i] ? cs_modelfile_find(mf, cs_bert_param_name(i)) : NULL;
		if (t && (!t->src || (const unsigned char *)t->src < last))
			return NULL;
		if (t)
			last = (const unsigned char *)t->src + t->n * sizeof(float);
	}
	unsigned char *dst = image;
	for (int i = 0; i < CS_BERT_NPARAMS; i++) {
		if (!sizes[i])
			continue;
		const cs_tensor *t = cs_modelfile_find(mf, cs_bert_param_name(i));
		memmove(dst, t->src, sizes[i] * sizeof(float));
		dst += sizes[i] * sizeof(float);
	}
	return image;
}

/* cs_bert_from_file; with image (mf's, which cs_bert_load frees next)
 * the model may take it for its parameters (*image then NULL). */
static cs_bert *from_file(const cs_modelfile *mf, const char *path, uint64_t *item_vocab,
			  void **image, cs_error *err)
{
	static const char *const archs[] = { "bert4rec", "sasrec", "bert4rec-preln",
					     "sasrec-preln" };
	const char *arch = cs_modelfile_get(mf, "arch");
	int ai = -1;
	for (int i = 0; arch && i < 4; i++)
		if (!strcmp(arch, archs[i]))
			ai = i;
	if (ai < 0) {
		cs_err(err, CS_ERR_FORMAT, path, 0,
		       "not a BERT4Rec or SASRec model (arch '%s')", arch ? arch : "");
		return NULL;
	}
	cs_bert_config c = { 0 };
	c.causal = ai & 1;
	c.prenorm = ai >> 1;
	size_t step = 0;
	uint64_t nf = 0, seed = 0;
	static const char *const sizes_keys[] = { "V", "C", "L", "NH", "P", "FF", "step" };
	size_t *sizes_dst[] = { &c.V, &c.C, &c.L, &c.NH, &c.P, &c.FF, &step };
	static const char *const float_keys[] = { "hidden_dropout", "attn_dropout", "init_range" };
	float *float_dst[] = { &c.hidden_dropout, &c.attn_dropout, &c.init_range };
	const char *bad = NULL;
	for (size_t i = 0; i < sizeof sizes_keys / sizeof *sizes_keys && !bad; i++)
		if (meta_size(mf, sizes_keys[i], sizes_dst[i]))
			bad = sizes_keys[i];
	for (size_t i = 0; i < sizeof float_keys / sizeof *float_keys && !bad; i++)
		if (meta_float(mf, float_keys[i], float_dst[i]))
			bad = float_keys[i];
	/* optional: absent in old files, but never malformed */
	if (!bad && cs_modelfile_get(mf, "nforward") && meta_u64(mf, "nforward", UINT64_MAX, &nf))
		bad = "nforward";
	if (!bad && cs_modelfile_get(mf, "seed") && meta_u64(mf, "seed", UINT64_MAX, &seed))
		bad = "seed";
	if (bad) {
		const char *v = cs_modelfile_get(mf, bad);
		if (v)
			cs_err(err, CS_ERR_FORMAT, path, 0, "bad hyperparameter %s '%.40s' in model file",
			       bad, v);
		else
			cs_err(err, CS_ERR_FORMAT, path, 0, "model file lacks the hyperparameter %s",
			       bad);
		return NULL;
	}
	/* the task-head keys are absent from plain BERT4Rec files */
	const char *h = cs_modelfile_get(mf, "head"), *pl = cs_modelfile_get(mf, "pool"),
		   *cb = cs_modelfile_get(mf, "combine");
	c.head = h ? cs_bert_head_parse(h) : CS_HEAD_CLOZE;
	c.pool = pl ? cs_bert_pool_parse(pl) : CS_POOL_CLS;
	c.combine = cb ? cs_bert_combine_parse(cb) : CS_COMBINE_SUM;
	c.NF = 0;
	if (cs_modelfile_get(mf, "NF") && (meta_size(mf, "NF", &c.NF) || c.NF > CS_BERT_MAXF)) {
		cs_err(err, CS_ERR_FORMAT, path, 0, "bad 'NF' in model file");
		return NULL;
	}
	for (size_t f = 0; f < c.NF; f++) {
		char key[32];
		snprintf(key, sizeof key, "input%zu", f);
		const char *name = cs_modelfile_get(mf, key);
		snprintf(key, sizeof key, "input%zu.vocab", f);
		const char *fv = cs_modelfile_get(mf, key);
		char *e = NULL;
		if (fv)
			c.fvocab[f] = strtoull(fv, &e, 16);
		snprintf(key, sizeof key, "input%zu.ids", f);
		if (!name || strlen(name) >= sizeof c.fname[f] || !fv || !*fv || *e ||
		    meta_size(mf, key, &c.VF[f])) {
			cs_err(err, CS_ERR_FORMAT, path, 0, "bad extra input %zu in model file", f);
			return NULL;
		}
		strcpy(c.fname[f], name);
	}
	const char *pr = cs_modelfile_get(mf, "predict");
	for (size_t f = 0; pr && f < c.NF; f++)
		if (!strcmp(c.fname[f], pr))
			c.pred = (int)f + 1;
	if (pr && !c.pred) {
		cs_err(err, CS_ERR_FORMAT, path, 0, "model predicts '%s', not one of its inputs", pr);
		return NULL;
	}
	if (c.head < 0 || c.pool < 0 || c.combine < 0) {
		cs_err(err, CS_ERR_FORMAT, path, 0, "unknown head, pooling or combination in model file");
		return NULL;
	}
	const char *fp = cs_modelfile_get(mf, "item_vocab");
	char *end;
	if (!fp || !*fp) {
		cs_err(err, CS_ERR_FORMAT, path, 0, "model file lacks 'item_vocab'");
		return NULL;
	}
	*item_vocab = strtoull(fp, &end, 16);
	if (*end) {
		cs_err(err, CS_ERR_FORMAT, path, 0, "bad 'item_vocab' in model file");
		return NULL;
	}
	if (cs_bert_config_check(&c, err) < 0) {
		snprintf(err->path, sizeof err->path, "%s", path);
		return NULL;
	}
	/* The sizes must fit before anything is allocated. */
	size_t sizes[CS_BERT_NPARAMS];
	cs_bert_param_sizes(&c, sizes);
	for (int i = 0; i < CS_BERT_NPARAMS; i++) {
		const cs_tensor *t = cs_modelfile_find(mf, cs_bert_param_name(i));
		if (!t && sizes[i] == 0)
			continue;
		if (!t) {
			cs_err(err, CS_ERR_FORMAT, path, 0, "tensor '%s' is missing",
			       cs_bert_param_name(i));
			return NULL;
		}
		if (t->n != sizes[i]) {
			cs_err(err, CS_ERR_FORMAT, path, 0, "tensor '%s' holds %" PRIu64 " values, "
			       "its hyperparameters imply %zu", cs_bert_param_name(i), t->n, sizes[i]);
			return NULL;
		}
	}
	/* a model that diverged would score NaN: such a file is refused */
	for (size_t i = 0; i < mf->ntensors; i++) {
		const cs_tensor *t = &mf->t[i];
		uint64_t j = cs_tensor_first_nonfinite(t);
		if (j < t->n) {
			cs_err(err, CS_ERR_FORMAT, path, 0, "tensor '%s' holds %s at index %" PRIu64,
			       t->name, isnan(cs_tensor_at(t, j)) ? "a NaN" : "an infinity", j);
			return NULL;
		}
	}
	/* step, nforward and seed are the training state's (cs_bert_train_from_file).
	 * The file's image as the parameters, its tensors moved together in
	 * place, where it can: no second buffer as large as the model to fill
	 * (fresh memory was most of the loading's time on a virtual machine) */
	float *own = image && *image ? compact(mf, sizes, *image) : NULL;
	if (own)
		*image = NULL; /* the model's now, even if it fails */
	cs_bert *m = cs_bert_alloc_on(&c, own, err);
	if (!m)
		return NULL;
	float *p = m->params_memory;
	for (int i = 0; i < CS_BERT_NPARAMS && !own; i++) {
		if (sizes[i])
			cs_tensor_get(cs_modelfile_find(mf, cs_bert_param_name(i)), p);
		p += sizes[i];
	}
	return m;
}

cs_bert *cs_bert_from_file(const cs_modelfile *mf, const char *path,
			   uint64_t *item_vocab, cs_error *err)
{
	return from_file(mf, path, item_vocab, NULL, err);
}

cs_bert_train *cs_bert_train_from_file(const cs_bert *m, const cs_modelfile *mf,
				       const char *path, cs_error *err)
{
	const cs_tensor *am = cs_modelfile_find(mf, "adam.m"), *av = cs_modelfile_find(mf, "adam.v");
	uint64_t step = 0, nf = 0, seed = 0;
	if (!am || !av || am->n != m->nparams || av->n != m->nparams) {
		cs_err(err, CS_ERR_FORMAT, path, 0, "the optimiser state of the checkpoint "
		       "does not fit its model (%zu parameters)", m->nparams);
		return NULL;
	}
	/* as cs_bert_from_file reads them: nforward and seed absent in old files */
	if (meta_u64(mf, "step", 1ULL << 40, &step) < 0 ||
	    (cs_modelfile_get(mf, "nforward") && meta_u64(mf, "nforward", UINT64_MAX, &nf) < 0) ||
	    (cs_modelfile_get(mf, "seed") && meta_u64(mf, "seed", UINT64_MAX, &seed) < 0)) {
		cs_err(err, CS_ERR_FORMAT, path, 0, "bad step, nforward or seed in checkpoint");
		return NULL;
	}
	cs_bert_train *t = cs_bert_train_new(m, seed, err);
	if (!t)
		return NULL;
	t->step = (long)step;
	t->nforward = nf;
	cs_tensor_get(am, t->m_memory);
	cs_tensor_get(av, t->v_memory);
	return t;
}

cs_bert *cs_bert_load(const char *path, uint64_t *item_vocab, cs_modelfile **mfp,
		      cs_error *err)
{
	cs_modelfile *mf = cs_modelfile_open(path, err);
	if (!mf)
		return NULL;
	cs_bert *m = from_file(mf, path, item_vocab, mfp ? NULL : &mf->image, err);
	if (mfp && m)
		*mfp = mf;
	else
		cs_modelfile_free(mf);
	return m;
}
