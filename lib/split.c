/* split.c - sequences into training, validation and test parts. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "split.h"

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
