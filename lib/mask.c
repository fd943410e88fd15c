/* mask.c - splits; BERT4Rec's Cloze examples; labels of purchase intention and returns. */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "mask.h"
#include "vocab.h"

/* ------------------------------------------------------------ splits */

struct cs_splitter {
	cs_split_opts o;
	cs_schema *part[CS_NSPLIT]; /* train: the input's; valid, test: + target, target_pos */
	int item, time;  /* field indices in the input */
	size_t nin;      /* input fields */
	uint64_t index;  /* records seen, for the random split and errors */
	char *stream;    /* the input's name, for errors */
};

/* Whether the evaluation parts hold whole sequences (the input's schema). */
static int whole(const cs_split_opts *o)
{
	return o->mode == CS_SPLIT_RANDOM || (o->mode == CS_SPLIT_TIME && o->whole);
}

cs_splitter *cs_splitter_new(const cs_schema *in, const char *stream,
			     const cs_split_opts *o, cs_error *err)
{
	static const char *names[CS_NSPLIT] = { "train", "valid", "test" };
	cs_splitter *sp = calloc(1, sizeof *sp);
	if (!sp) {
		cs_err(err, CS_ERR_NOMEM, stream, 0, "out of memory");
		return NULL;
	}
	sp->o = *o;
	sp->nin = in->nfields;
	if (!(sp->stream = strdup(stream ? stream : ""))) {
		cs_err(err, CS_ERR_NOMEM, stream, 0, "out of memory");
		goto fail;
	}
	sp->item = cs_schema_find(in, "item");
	sp->time = cs_schema_find(in, "time");
	if (o->mode == CS_SPLIT_RANDOM &&
	    (!(o->valid_frac >= 0 && o->test_frac >= 0) || o->valid_frac + o->test_frac >= 1)) {
		cs_err(err, CS_ERR_USAGE, stream, 0,
		       "shares of validation and test must be at least 0 and sum to less than 1");
		goto fail;
	}
	if (!whole(o) && (sp->item < 0 || in->f[sp->item].level != CS_EVENT)) {
		cs_err(err, CS_ERR_FORMAT, stream, 0, "stream has no event field 'item'");
		goto fail;
	}
	if (o->mode == CS_SPLIT_AT && o->valid_at && o->valid_cut >= o->time_cut) {
		cs_err(err, CS_ERR_USAGE, stream, 0,
		       "the validation cut must be earlier than the test cut");
		goto fail;
	}
	if ((o->mode == CS_SPLIT_TIME || o->mode == CS_SPLIT_AT) &&
	    (sp->time < 0 || in->f[sp->time].type != CS_INT64 ||
	     in->f[sp->time].level != CS_EVENT)) {
		cs_err(err, CS_ERR_FORMAT, stream, 0,
		       "a time split needs an int64 event field 'time', which the stream lacks");
		goto fail;
	}
	if (!whole(o) &&
	    (cs_schema_find(in, "target") >= 0 || cs_schema_find(in, "target_pos") >= 0)) {
		cs_err(err, CS_ERR_FORMAT, stream, 0,
		       "stream already has a field 'target': is it already split or masked?");
		goto fail;
	}
	for (int p = 0; p < CS_NSPLIT; p++) {
		cs_schema *s = sp->part[p] = cs_schema_dup(in);
		if (!s) {
			cs_err(err, CS_ERR_NOMEM, stream, 0, "out of memory");
			goto fail;
		}
		if (p != CS_SPLIT_TRAIN && !whole(o)) {
			int t = cs_schema_add(s, "target", CS_SEQ, in->f[sp->item].type, err);
			if (t < 0 || cs_schema_add(s, "target_pos", CS_SEQ, CS_INT64, err) < 0)
				goto fail;
			s->f[t].vocab = in->f[sp->item].vocab;
		}
		if (cs_schema_set_meta(s, "split", names[p], err) < 0)
			goto fail;
		if (o->mode == CS_SPLIT_AT) {
			char v[24];
			snprintf(v, sizeof v, "%" PRId64, o->time_cut);
			if (cs_schema_set_meta(s, "split_at", v, err) < 0)
				goto fail;
			snprintf(v, sizeof v, "%" PRId64, o->valid_cut);
			if (o->valid_at && cs_schema_set_meta(s, "split_valid_at", v, err) < 0)
				goto fail;
		}
		/* Marks the examples made from it, for cs-train's warning. */
		if (p == CS_SPLIT_TRAIN && o->train_valid &&
		    cs_schema_set_meta(s, "holds_valid", "1", err) < 0)
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
	for (int p = 0; p < CS_NSPLIT; p++)
		cs_schema_free(sp->part[p]);
	free(sp->stream);
	free(sp);
}

const cs_schema *cs_splitter_schema(const cs_splitter *sp, int part)
{
	return sp->part[part];
}

/* out = the first n events of in as history, event n as the target. */
static int held_out(cs_splitter *sp, cs_record *out, const cs_schema *s,
		    const cs_record *in, size_t n, cs_error *err)
{
	if (cs_record_init(out, s, err) < 0)
		return -1;
	if (cs_record_slice(out, s, in, 0, n) < 0 ||
	    cs_col_push_from(&out->col[sp->nin], &in->col[sp->item], n) < 0 ||
	    cs_col_push_i64(&out->col[sp->nin + 1], (int64_t)n) < 0)
		return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	return 0;
}

/* out = the first n events of in, every field as it is. */
static int prefix(cs_record *out, const cs_schema *s, const cs_record *in, size_t n,
		  cs_error *err)
{
	if (cs_record_init(out, s, err) < 0)
		return -1;
	if (cs_record_slice(out, s, in, 0, n) < 0)
		return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	return 0;
}

/* SplitMix64's finaliser: a well-mixed 64-bit hash of x. */
static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/*
 * Global time split of one sequence, whose events must be in time order:
 * training gets the events before the first cut (valid_cut with
 * validation, else time_cut); validation and test each hold out the first
 * event at or after their cut (before time_cut for validation), with all
 * the events before it. Parts that would be empty, or would have no
 * history, are left out.
 */
static int split_at(cs_splitter *sp, const cs_record *in, cs_record out[CS_NSPLIT],
		    int has[CS_NSPLIT], uint64_t index, cs_error *err)
{
	const int64_t *t = in->col[sp->time].v.i64;
	size_t n = in->nevents, v = n, a = n;
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && t[i] < t[i - 1]) {
			cs_err(err, CS_ERR_FORMAT, sp->stream, 0,
			       "events out of time order (event %zu at %" PRId64 " after one at %"
			       PRId64 "): a global time split needs each sequence sorted by time, "
			       "as cs-ingest writes them", i + 1, t[i], t[i - 1]);
			err->record = (long long)index + 1;
			return -1;
		}
		if (v == n && t[i] >= (sp->o.valid_at ? sp->o.valid_cut : sp->o.time_cut))
			v = i;
		if (a == n && t[i] >= sp->o.time_cut)
			a = i;
	}
	if (v > 0) {
		if (prefix(&out[CS_SPLIT_TRAIN], sp->part[CS_SPLIT_TRAIN], in, v, err) < 0)
			return -1;
		has[CS_SPLIT_TRAIN] = 1;
	}
	if (v > 0 && v < a) {
		if (held_out(sp, &out[CS_SPLIT_VALID], sp->part[CS_SPLIT_VALID], in, v, err) < 0)
			return -1;
		has[CS_SPLIT_VALID] = 1;
	}
	if (a > 0 && a < n) {
		if (held_out(sp, &out[CS_SPLIT_TEST], sp->part[CS_SPLIT_TEST], in, a, err) < 0)
			return -1;
		has[CS_SPLIT_TEST] = 1;
	}
	return 0;
}

int cs_splitter_run(cs_splitter *sp, const cs_record *in, cs_record out[CS_NSPLIT],
		    int has[CS_NSPLIT], cs_error *err)
{
	size_t n = in->nevents;
	uint64_t index = sp->index++;
	int part;
	has[0] = has[1] = has[2] = 0;
	if (n == 0 || n < sp->o.min_len)
		return 0;
	switch (sp->o.mode) {
	case CS_SPLIT_LOO:
		/*
		 * Leave-one-out: train on n-2 (n-1 with train_valid, as the
		 * BERT4Rec code trains for its reported figures), validate on
		 * event n-2, test on n-1.
		 */
		if (n < 3) {
			has[CS_SPLIT_TRAIN] = 1;
			return prefix(&out[0], sp->part[0], in, n, err);
		}
		if (prefix(&out[0], sp->part[0], in, n - 2 + (sp->o.train_valid != 0), err) < 0 ||
		    held_out(sp, &out[1], sp->part[1], in, n - 2, err) < 0 ||
		    held_out(sp, &out[2], sp->part[2], in, n - 1, err) < 0)
			return -1;
		has[0] = has[1] = has[2] = 1;
		return 0;
	case CS_SPLIT_AT:
		return split_at(sp, in, out, has, index, err);
	case CS_SPLIT_RANDOM: {
		/* A uniform draw in [0, 1) from the seed and the record's index. */
		double u = (double)(mix64(sp->o.seed ^ mix64(index)) >> 11) * 0x1p-53;
		part = u < sp->o.test_frac ? CS_SPLIT_TEST :
		       u < sp->o.test_frac + sp->o.valid_frac ? CS_SPLIT_VALID : CS_SPLIT_TRAIN;
		break;
	}
	default: {
		/* Time cut: by the time of the first event. */
		int64_t t0 = in->col[sp->time].v.i64[0];
		part = t0 >= sp->o.time_cut ? CS_SPLIT_TEST :
		       sp->o.valid_cut && t0 >= sp->o.valid_cut ? CS_SPLIT_VALID : CS_SPLIT_TRAIN;
		break;
	}
	}
	if (part == CS_SPLIT_TRAIN || whole(&sp->o)) {
		if (prefix(&out[part], sp->part[part], in, n, err) < 0)
			return -1;
	} else {
		/* An evaluation record holds out the last event. */
		if (n < 2)
			return 0;
		if (held_out(sp, &out[part], sp->part[part], in, n - 1, err) < 0)
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

/* ------------------------------------------------------------ labels */

void cs_label_defaults(cs_label_opts *o)
{
	o->action = "action";
	o->purchase = "purchase";
	o->ret = "return";
	o->first = 0;
	o->vocab = NULL;
}

/* One event type: a token of a string action field, or its id. */
typedef struct token {
	const char *s;
	size_t len;
	uint32_t id;
} token;

/*
 * Find the action field of schema in and the tokens tok[0..n) in it.
 * Returns the field's index, or -1.
 */
static int bind_action(const cs_schema *in, const char *stream, const cs_label_opts *o,
		       const char *const *tok, token *t, size_t n, cs_error *err)
{
	int a = cs_schema_find(in, o->action);
	if (a < 0 || in->f[a].level != CS_EVENT)
		return cs_err(err, CS_ERR_FORMAT, stream, 0, "stream has no event field '%s'",
			      o->action);
	int type = in->f[a].type, sec = -1;
	if (type != CS_STRING && type != CS_ID)
		return cs_err(err, CS_ERR_FORMAT, stream, 0,
			      "field '%s' holds %s values, not event types (strings or ids)",
			      o->action, cs_type_name(type));
	if (type == CS_ID) {
		if (!o->vocab)
			return cs_err(err, CS_ERR_USAGE, stream, 0,
				      "field '%s' holds ids: pass its vocabulary with --vocab to find '%s'",
				      o->action, tok[0]);
		if ((sec = cs_vocab_check_field(o->vocab, in, stream, o->action, err)) < 0)
			return -1;
	}
	for (size_t i = 0; i < n; i++) {
		t[i].s = tok[i];
		t[i].len = strlen(tok[i]);
		if (i > 0 && !strcmp(tok[i], tok[0]))
			return cs_err(err, CS_ERR_USAGE, stream, 0,
				      "the purchase and return tokens are both '%s'", tok[i]);
		if (type != CS_ID)
			continue;
		t[i].id = cs_vocab_lookup(o->vocab, (size_t)sec, t[i].s, t[i].len);
		if (t[i].id == CS_VOCAB_UNK)
			return cs_err(err, CS_ERR_FORMAT, cs_vocab_path(o->vocab), 0,
				      "no token '%s' in the vocabulary of '%s'", tok[i], o->action);
	}
	return a;
}

/* Whether event i of column c is of type t. */
static int is_token(const cs_column *c, size_t i, const token *t)
{
	if (c->type == CS_ID)
		return c->v.u32[i] == t->id;
	size_t len;
	const char *s = cs_col_str(c, i, &len);
	return len == t->len && !memcmp(s, t->s, len);
}

/* The input's schema plus an int64 field "label" at level; metadata task. */
static cs_schema *label_schema(const cs_schema *in, const char *stream, int level,
			       const char *task, cs_error *err)
{
	if (cs_schema_find(in, "label") >= 0) {
		cs_err(err, CS_ERR_FORMAT, stream, 0,
		       "stream already has a field 'label': is it already labelled?");
		return NULL;
	}
	cs_schema *s = cs_schema_dup(in);
	if (!s) {
		cs_err(err, CS_ERR_NOMEM, stream, 0, "out of memory");
		return NULL;
	}
	if (cs_schema_add(s, "label", level, CS_INT64, err) < 0 ||
	    cs_schema_set_meta(s, "task", task, err) < 0) {
		cs_schema_free(s);
		return NULL;
	}
	return s;
}

struct cs_session_labeler {
	cs_label_opts o;
	cs_schema *schema;
	size_t nin;
	int action;
	token purchase;
	cs_label_stats st;
};

cs_session_labeler *cs_session_labeler_new(const cs_schema *in, const char *stream,
					   const cs_label_opts *o, cs_error *err)
{
	cs_session_labeler *sl = calloc(1, sizeof *sl);
	if (!sl) {
		cs_err(err, CS_ERR_NOMEM, stream, 0, "out of memory");
		return NULL;
	}
	sl->o = *o;
	sl->nin = in->nfields;
	if ((sl->action = bind_action(in, stream, o, &o->purchase, &sl->purchase, 1, err)) < 0 ||
	    !(sl->schema = label_schema(in, stream, CS_SEQ, "session", err))) {
		cs_session_labeler_free(sl);
		return NULL;
	}
	return sl;
}

void cs_session_labeler_free(cs_session_labeler *sl)
{
	if (!sl)
		return;
	cs_schema_free(sl->schema);
	free(sl);
}

const cs_schema *cs_session_labeler_schema(const cs_session_labeler *sl)
{
	return sl->schema;
}

const cs_label_stats *cs_session_labeler_stats(const cs_session_labeler *sl)
{
	return &sl->st;
}

int cs_session_labeler_run(cs_session_labeler *sl, const cs_record *in, cs_record *out,
			   cs_error *err)
{
	const cs_column *a = &in->col[sl->action];
	size_t n = in->nevents, keep = 0;
	sl->st.sequences++;
	while (keep < n && !is_token(a, keep, &sl->purchase))
		keep++;
	int64_t label = keep < n;
	if (sl->o.first && keep > sl->o.first)
		keep = sl->o.first;
	if (keep == 0) {
		sl->st.dropped++;
		return 0;
	}
	if (cs_record_init(out, sl->schema, err) < 0)
		return -1;
	if (cs_record_slice(out, sl->schema, in, 0, keep) < 0 ||
	    cs_col_push_i64(&out->col[sl->nin], label) < 0)
		return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	sl->st.examples++;
	sl->st.positives += (uint64_t)label;
	return 1;
}

/* Event kinds of the return labeler. */
enum { EV_OTHER = 0, EV_PURCHASE = 1, EV_RETURN = 2 };

struct cs_return_labeler {
	cs_label_opts o;
	cs_schema *schema;
	size_t nin;
	int action, item;
	token tok[2];     /* purchase, return */
	unsigned char *kind;
	int64_t *label;
	size_t cap;
	cs_label_stats st;
};

cs_return_labeler *cs_return_labeler_new(const cs_schema *in, const char *stream,
					 const cs_label_opts *o, cs_error *err)
{
	const char *tok[2] = { o->purchase, o->ret };
	cs_return_labeler *rl = calloc(1, sizeof *rl);
	if (!rl) {
		cs_err(err, CS_ERR_NOMEM, stream, 0, "out of memory");
		return NULL;
	}
	rl->o = *o;
	rl->nin = in->nfields;
	rl->item = cs_schema_find(in, "item");
	if (rl->item < 0 || in->f[rl->item].level != CS_EVENT) {
		cs_err(err, CS_ERR_FORMAT, stream, 0, "stream has no event field 'item'");
		goto fail;
	}
	if ((rl->action = bind_action(in, stream, o, tok, rl->tok, 2, err)) < 0 ||
	    !(rl->schema = label_schema(in, stream, CS_EVENT, "returns", err)))
		goto fail;
	return rl;
fail:
	cs_return_labeler_free(rl);
	return NULL;
}

void cs_return_labeler_free(cs_return_labeler *rl)
{
	if (!rl)
		return;
	cs_schema_free(rl->schema);
	free(rl->kind);
	free(rl->label);
	free(rl);
}

const cs_schema *cs_return_labeler_schema(const cs_return_labeler *rl)
{
	return rl->schema;
}

const cs_label_stats *cs_return_labeler_stats(const cs_return_labeler *rl)
{
	return &rl->st;
}

/* Whether values i and j of column c are equal (strings byte for byte). */
static int same_value(const cs_column *c, size_t i, size_t j)
{
	switch (c->type) {
	case CS_STRING: {
		size_t m, n;
		const char *a = cs_col_str(c, i, &m), *b = cs_col_str(c, j, &n);
		return m == n && !memcmp(a, b, m);
	}
	case CS_INT64:
		return c->v.i64[i] == c->v.i64[j];
	case CS_FLOAT32:
		return c->v.f32[i] == c->v.f32[j];
	default:
		return c->v.u32[i] == c->v.u32[j];
	}
}

int cs_return_labeler_run(cs_return_labeler *rl, const cs_record *in, cs_record *out,
			  cs_error *err)
{
	const cs_column *a = &in->col[rl->action], *item = &in->col[rl->item];
	size_t n = in->nevents, kept = 0;
	rl->st.sequences++;
	if (n > rl->cap) {
		size_t cap = rl->cap;
		if (cs_grow((void **)&rl->kind, &cap, n, sizeof *rl->kind) < 0 ||
		    cs_grow((void **)&rl->label, &rl->cap, n, sizeof *rl->label) < 0)
			return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	}
	unsigned char *kind = rl->kind;
	int64_t *label = rl->label;
	for (size_t j = 0; j < n; j++) {
		kind[j] = is_token(a, j, &rl->tok[0]) ? EV_PURCHASE :
			  is_token(a, j, &rl->tok[1]) ? EV_RETURN : EV_OTHER;
		label[j] = kind[j] == EV_PURCHASE ? 0 : -1;
		if (kind[j] != EV_RETURN) {
			kept++;
			continue;
		}
		/* The latest earlier purchase of the item not yet matched. */
		size_t i = j;
		while (i-- > 0)
			if (kind[i] == EV_PURCHASE && label[i] == 0 && same_value(item, i, j))
				break;
		if (i < j) {
			label[i] = 1;
			rl->st.returned++;
		} else {
			rl->st.unmatched++;
		}
	}
	if (kept == 0) {
		rl->st.dropped++;
		return 0;
	}
	if (cs_record_init(out, rl->schema, err) < 0)
		return -1;
	cs_column *lab = &out->col[rl->nin];
	for (size_t c = 0; c < rl->nin; c++) {
		const cs_column *src = &in->col[c];
		cs_column *dst = &out->col[c];
		if (rl->schema->f[c].level == CS_SEQ) {
			if (cs_col_append(dst, src, 0, 1) < 0)
				goto nomem;
			continue;
		}
		/* Runs of events between returns. */
		for (size_t j = 0; j < n;) {
			size_t e = j;
			while (e < n && kind[e] != EV_RETURN)
				e++;
			if (e > j && cs_col_append(dst, src, j, e - j) < 0)
				goto nomem;
			j = e + 1;
		}
	}
	if (cs_col_reserve(lab, kept) < 0)
		goto nomem;
	for (size_t j = 0; j < n; j++) {
		if (kind[j] == EV_RETURN)
			continue;
		lab->v.i64[lab->n++] = label[j];
		rl->st.purchases += kind[j] == EV_PURCHASE;
	}
	out->nevents = kept;
	rl->st.examples++;
	return 1;
nomem:
	return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
}
