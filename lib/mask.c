/* mask.c - BERT4Rec's Cloze examples and next-item examples. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "mask.h"

struct cs_cloze {
	cs_cloze_opts o;
	cs_schema *schema; /* input + event id field target */
	size_t nin;
	int item;
	int *mfield;       /* other event id fields masked with the item */
	size_t nmfield;
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
	o->mask_field = NULL;
	o->nmask_field = 0;
	o->next = 0;
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
	if (o->nmask_field && !(cz->mfield = calloc(o->nmask_field, sizeof *cz->mfield))) {
		cs_err(err, CS_ERR_NOMEM, stream, 0, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < o->nmask_field; i++) {
		const char *name = o->mask_field[i];
		int f = cs_schema_find(in, name);
		if (f < 0 || in->f[f].level != CS_EVENT) {
			cs_err(err, CS_ERR_FORMAT, stream, 0, "no event field '%s' to mask", name);
			goto fail;
		}
		if (in->f[f].type != CS_ID) {
			cs_err(err, CS_ERR_FORMAT, stream, 0,
			       "field '%s' holds %s values, not ids: only id fields can be masked",
			       name, cs_type_name(in->f[f].type));
			goto fail;
		}
		size_t j = 0;
		while (j < cz->nmfield && cz->mfield[j] != f)
			j++;
		if (f != cz->item && j == cz->nmfield)
			cz->mfield[cz->nmfield++] = f;
	}
	cz->o.mask_field = NULL; /* the caller's; resolved above */
	cz->o.nmask_field = 0;
	if (!(cz->schema = cs_schema_dup(in))) {
		cs_err(err, CS_ERR_NOMEM, stream, 0, "out of memory");
		goto fail;
	}
	int t = cs_schema_add(cz->schema, "target", CS_EVENT, CS_ID, err);
	char window[32];
	snprintf(window, sizeof window, "%zu", o->max_len);
	if (t < 0 || cs_schema_set_meta(cz->schema, "split", o->next ? "next" : "cloze",
					err) < 0 ||
	    cs_schema_set_meta(cz->schema, "max_len", window, err) < 0)
		goto fail;
	cz->schema->f[t].vocab = in->f[cz->item].vocab;
	/* target_<field>: the original value of each other masked field */
	for (size_t f = 0; f < cz->nmfield; f++) {
		char name[CS_MAX_NAME + 8];
		snprintf(name, sizeof name, "target_%s", in->f[cz->mfield[f]].name);
		if ((t = cs_schema_add(cz->schema, name, CS_EVENT, CS_ID, err)) < 0)
			goto fail;
		cz->schema->f[t].vocab = in->f[cz->mfield[f]].vocab;
	}
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
	free(cz->mfield);
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

/* Mask position i of ex: the item (kept in target) and the other masked
 * fields (kept in their target_ fields). */
static void mask_at(cs_cloze *cz, cs_record *ex, size_t i)
{
	ex->col[cz->nin].v.u32[i] = ex->col[cz->item].v.u32[i];
	ex->col[cz->item].v.u32[i] = CS_VOCAB_MASK;
	for (size_t f = 0; f < cz->nmfield; f++) {
		ex->col[cz->nin + 1 + f].v.u32[i] = ex->col[cz->mfield[f]].v.u32[i];
		ex->col[cz->mfield[f]].v.u32[i] = CS_VOCAB_MASK;
	}
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
	for (size_t c = 0; c <= cz->nmfield; c++) {
		cs_column *tgt = &ex->col[cz->nin + c];
		if (cs_col_reserve(tgt, w) < 0)
			return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
		memset(tgt->v.u32, 0, w * sizeof(uint32_t));
		tgt->n = w;
	}
	if (last) {
		mask_at(cz, ex, w - 1);
	} else {
		size_t *p = cz->perm;
		for (size_t i = 0; i < w; i++)
			p[i] = i;
		for (size_t i = 0; i < k; i++) {
			size_t j = i + below(&cz->rng, w - i);
			size_t t = p[i];
			p[i] = p[j];
			p[j] = t;
			mask_at(cz, ex, p[i]);
		}
	}
	return emit(ctx, ex, err);
}

/*
 * Emit next-item window [from, from + w + 1) of in: its first w events,
 * each with the item (and the other predicted fields) of the event after
 * it as target.
 */
static int emit_next(cs_cloze *cz, const cs_record *in, size_t from, size_t w,
		     int (*emit)(void *, const cs_record *, cs_error *),
		     void *ctx, cs_error *err)
{
	cs_record *ex = &cz->ex;
	if (cs_record_slice(ex, cz->schema, in, from, w) < 0)
		return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	for (size_t c = 0; c <= cz->nmfield; c++) {
		cs_column *tgt = &ex->col[cz->nin + c];
		const uint32_t *src = in->col[c ? cz->mfield[c - 1] : cz->item].v.u32;
		if (cs_col_reserve(tgt, w) < 0)
			return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
		memcpy(tgt->v.u32, src + from + 1, w * sizeof(uint32_t));
		tgt->n = w;
	}
	return emit(ctx, ex, err);
}

/*
 * Next-item examples: windows of max_len + 1 events, the last ending at
 * the end of the sequence, each slide * max_len earlier than the next
 * (the first starts at 0); every event of a window but the last is an
 * input whose target is the item after it.
 */
static long next_run(cs_cloze *cz, const cs_record *in,
		     int (*emit)(void *, const cs_record *, cs_error *),
		     void *ctx, cs_error *err)
{
	size_t n = in->nevents, L = cz->o.max_len;
	if (n < 2)
		return 0;
	size_t step = (size_t)(cz->o.slide * (double)L);
	if (step < 1)
		step = 1;
	size_t nwin = 1;
	if (n > L + 1)
		nwin = 1 + (n - L - 1 + step - 1) / step;
	for (size_t wi = 0; wi < nwin; wi++) {
		size_t from = wi == 0 ? 0 : n - L - 1 - (nwin - 1 - wi) * step;
		size_t w = n - 1 < L ? n - 1 : L;
		if (emit_next(cz, in, from, w, emit, ctx, err) < 0)
			return -1;
	}
	return (long)nwin;
}

long cs_cloze_run(cs_cloze *cz, const cs_record *in,
		  int (*emit)(void *ctx, const cs_record *ex, cs_error *err),
		  void *ctx, cs_error *err)
{
	if (cz->o.next)
		return next_run(cz, in, emit, ctx, err);
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
