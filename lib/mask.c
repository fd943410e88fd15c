/* mask.c - leave-one-out and time splits; BERT4Rec's Cloze examples. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "mask.h"
#include "vocab.h"

/* ------------------------------------------------------------ splits */

struct cs_splitter {
	cs_split_opts o;
	cs_schema *eval; /* input fields + target + target_pos */
	const cs_schema *in;
	cs_schema *train;
	int item, time;  /* field indices in the input */
	size_t nin;      /* input fields */
};

cs_splitter *cs_splitter_new(const cs_schema *in, const char *stream,
			     const cs_split_opts *o, cs_error *err)
{
	cs_splitter *sp = calloc(1, sizeof *sp);
	if (!sp) {
		cs_err(err, CS_ERR_NOMEM, stream, 0, "out of memory");
		return NULL;
	}
	sp->o = *o;
	sp->nin = in->nfields;
	sp->item = cs_schema_find(in, "item");
	sp->time = cs_schema_find(in, "time");
	if (sp->item < 0 || in->f[sp->item].level != CS_EVENT) {
		cs_err(err, CS_ERR_FORMAT, stream, 0, "stream has no event field 'item'");
		goto fail;
	}
	if (o->by_time && (sp->time < 0 || in->f[sp->time].type != CS_INT64 ||
			   in->f[sp->time].level != CS_EVENT)) {
		cs_err(err, CS_ERR_FORMAT, stream, 0,
		       "a time split needs an int64 event field 'time', which the stream lacks");
		goto fail;
	}
	if (cs_schema_find(in, "target") >= 0 || cs_schema_find(in, "target_pos") >= 0) {
		cs_err(err, CS_ERR_FORMAT, stream, 0,
		       "stream already has a field 'target': is it already split or masked?");
		goto fail;
	}
	if (!(sp->train = cs_schema_dup(in)) || !(sp->eval = cs_schema_dup(in))) {
		cs_err(err, CS_ERR_NOMEM, stream, 0, "out of memory");
		goto fail;
	}
	int t = cs_schema_add(sp->eval, "target", CS_SEQ, in->f[sp->item].type, err);
	if (t < 0 || cs_schema_add(sp->eval, "target_pos", CS_SEQ, CS_INT64, err) < 0)
		goto fail;
	sp->eval->f[t].vocab = in->f[sp->item].vocab;
	const char *names[] = { "train", "valid", "test" };
	for (int p = 0; p < CS_NSPLIT; p++) {
		cs_schema *s = p == CS_SPLIT_TRAIN ? sp->train : sp->eval;
		if (cs_schema_set_meta(s, "split", names[p], err) < 0)
			goto fail;
	}
	return sp;
fail:
	cs_splitter_free(sp);
	return NULL;
}

void cs_splitter_free(cs_splitter *sp)
{
	if (!sp)
		return;
	cs_schema_free(sp->eval);
	cs_schema_free(sp->train);
	free(sp);
}

const cs_schema *cs_splitter_schema(const cs_splitter *sp, int part)
{
	return part == CS_SPLIT_TRAIN ? sp->train : sp->eval;
}

/* out = the first n events of in as history, event n as the target. */
static int held_out(cs_splitter *sp, cs_record *out, const cs_record *in,
		    size_t n, cs_error *err)
{
	if (cs_record_init(out, sp->eval, err) < 0)
		return -1;
	if (cs_record_slice(out, sp->eval, in, 0, n) < 0 ||
	    cs_col_push_from(&out->col[sp->nin], &in->col[sp->item], n) < 0 ||
	    cs_col_push_i64(&out->col[sp->nin + 1], (int64_t)n) < 0)
		return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	return 0;
}

int cs_splitter_run(cs_splitter *sp, const cs_record *in, cs_record out[CS_NSPLIT],
		    int has[CS_NSPLIT], cs_error *err)
{
	size_t n = in->nevents;
	has[0] = has[1] = has[2] = 0;
	if (n == 0 || n < sp->o.min_len)
		return 0;
	if (!sp->o.by_time) {
		/* Leave-one-out: train on n-2, validate on event n-2, test on n-1. */
		if (n < 3) {
			has[CS_SPLIT_TRAIN] = 1;
			if (cs_record_init(&out[0], sp->train, err) < 0)
				return -1;
			return cs_record_slice(&out[0], sp->train, in, 0, n) < 0 ?
			       cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory") : 0;
		}
		if (cs_record_init(&out[0], sp->train, err) < 0 ||
		    cs_record_slice(&out[0], sp->train, in, 0, n - 2) < 0)
			return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
		if (held_out(sp, &out[1], in, n - 2, err) < 0 ||
		    held_out(sp, &out[2], in, n - 1, err) < 0)
			return -1;
		has[0] = has[1] = has[2] = 1;
		return 0;
	}
	/* Time cut: by the time of the first event; held out: the last event. */
	int64_t t0 = in->col[sp->time].v.i64[0];
	int part = t0 >= sp->o.time_cut ? CS_SPLIT_TEST :
		   sp->o.valid_cut && t0 >= sp->o.valid_cut ? CS_SPLIT_VALID : CS_SPLIT_TRAIN;
	if (part == CS_SPLIT_TRAIN) {
		if (cs_record_init(&out[0], sp->train, err) < 0 ||
		    cs_record_slice(&out[0], sp->train, in, 0, n) < 0)
			return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	} else {
		if (n < 2)
			return 0;
		if (held_out(sp, &out[part], in, n - 1, err) < 0)
			return -1;
	}
	has[part] = 1;
	return 0;
}

/* ------------------------------------------------------------ Cloze */

struct cs_cloze {
	cs_cloze_opts o;
	cs_schema *schema; /* input + event id field target */
	size_t nin;
	int item;
	cs_nn_rng rng;
	cs_record ex;
	size_t *perm;
	size_t permcap;
};

void cs_cloze_defaults(cs_cloze_opts *o)
{
	o->mask_prob = 0.6;
	o->max_pred = 30;
	o->max_len = 50;
	o->slide = 0.1;
	o->dupe = 10;
	o->mask_last = 1;
	o->seed = 1;
}

cs_cloze *cs_cloze_new(const cs_schema *in, const char *stream,
		       const cs_cloze_opts *o, cs_error *err)
{
	cs_cloze *cz = calloc(1, sizeof *cz);
	if (!cz) {
		cs_err(err, CS_ERR_NOMEM, stream, 0, "out of memory");
		return NULL;
	}
	cz->o = *o;
	cz->nin = in->nfields;
	cz->item = cs_schema_find(in, "item");
	if (cz->item < 0 || in->f[cz->item].level != CS_EVENT) {
		cs_err(err, CS_ERR_FORMAT, stream, 0, "stream has no event field 'item'");
		goto fail;
	}
	if (in->f[cz->item].type != CS_ID) {
		cs_err(err, CS_ERR_FORMAT, stream, 0,
		       "field 'item' holds %s values, not ids: encode the stream with cs-vocab first",
		       cs_type_name(in->f[cz->item].type));
		goto fail;
	}
	if (cs_schema_find(in, "target") >= 0) {
		cs_err(err, CS_ERR_FORMAT, stream, 0,
		       "stream already has a field 'target': mask the training split, not an evaluation split");
		goto fail;
	}
	if (!(cz->schema = cs_schema_dup(in))) {
		cs_err(err, CS_ERR_NOMEM, stream, 0, "out of memory");
		goto fail;
	}
	int t = cs_schema_add(cz->schema, "target", CS_EVENT, CS_ID, err);
	if (t < 0 || cs_schema_set_meta(cz->schema, "split", "cloze", err) < 0)
		goto fail;
	cz->schema->f[t].vocab = in->f[cz->item].vocab;
	if (cs_record_init(&cz->ex, cz->schema, err) < 0)
		goto fail;
	cs_nn_rng_seed(&cz->rng, o->seed);
	return cz;
fail:
	cs_cloze_free(cz);
	return NULL;
}

void cs_cloze_free(cs_cloze *cz)
{
	if (!cz)
		return;
	cs_schema_free(cz->schema);
	cs_record_free(&cz->ex);
	free(cz->perm);
	free(cz);
}

const cs_schema *cs_cloze_schema(const cs_cloze *cz)
{
	return cz->schema;
}

/* Uniform integer in [0, n). */
static size_t below(cs_nn_rng *r, size_t n)
{
	return (size_t)(cs_nn_rng_next(r) % n);
}

/*
 * Emit window [from, from + w) of in with k positions masked: the k
 * first of a partial shuffle, or only the last position if last is set.
 */
static int emit_window(cs_cloze *cz, const cs_record *in, size_t from, size_t w,
		       size_t k, int last,
		       int (*emit)(void *, const cs_record *, cs_error *),
		       void *ctx, cs_error *err)
{
	cs_record *ex = &cz->ex;
	if (cs_record_slice(ex, cz->schema, in, from, w) < 0)
		return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	cs_column *item = &ex->col[cz->item], *tgt = &ex->col[cz->nin];
	if (cs_col_reserve(tgt, w) < 0)
		return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	memset(tgt->v.u32, 0, w * sizeof(uint32_t));
	tgt->n = w;
	if (last) {
		tgt->v.u32[w - 1] = item->v.u32[w - 1];
		item->v.u32[w - 1] = CS_VOCAB_MASK;
	} else {
		size_t *p = cz->perm;
		for (size_t i = 0; i < w; i++)
			p[i] = i;
		for (size_t i = 0; i < k; i++) {
			size_t j = i + below(&cz->rng, w - i);
			size_t t = p[i];
			p[i] = p[j];
			p[j] = t;
			tgt->v.u32[p[i]] = item->v.u32[p[i]];
			item->v.u32[p[i]] = CS_VOCAB_MASK;
		}
	}
	return emit(ctx, ex, err);
}

long cs_cloze_run(cs_cloze *cz, const cs_record *in,
		  int (*emit)(void *ctx, const cs_record *ex, cs_error *err),
		  void *ctx, cs_error *err)
{
	size_t n = in->nevents, L = cz->o.max_len;
	if (n == 0)
		return 0;
	if (cz->permcap < L) {
		free(cz->perm);
		if (!(cz->perm = malloc(L * sizeof *cz->perm)))
			return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
		cz->permcap = L;
	}
	/* Window starts, as BERT4Rec: n-L, n-L-step, ... while > 0, then 0. */
	size_t step = (size_t)(cz->o.slide * (double)L);
	if (step < 1)
		step = 1;
	size_t nwin = 1;
	if (n > L)
		nwin = 1 + (n - L + step - 1) / step;
	long made = 0;
	for (size_t wi = 0; wi < nwin; wi++) {
		/* Ascending order: window 0 starts at 0, the last ends at n. */
		size_t from = wi == 0 ? 0 : n - L - (nwin - 1 - wi) * step;
		size_t w = n < L ? n : L;
		size_t k = (size_t)lround((double)w * cz->o.mask_prob);
		if (k < 1)
			k = 1;
		if (k > cz->o.max_pred)
			k = cz->o.max_pred;
		if (k > w)
			k = w;
		for (size_t d = 0; d < cz->o.dupe; d++, made++)
			if (emit_window(cz, in, from, w, k, 0, emit, ctx, err) < 0)
				return -1;
		if (cz->o.mask_last && wi == nwin - 1) {
			if (emit_window(cz, in, from, w, 1, 1, emit, ctx, err) < 0)
				return -1;
			made++;
		}
	}
	return made;
}
