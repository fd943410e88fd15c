/* dataset.c - encoded sequence streams read into memory. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "dataset.h"

/* Index of a field of level and type, or -1 with a message. */
static int find_field(const cs_schema *s, const char *path, const char *name, int level,
		      int type, cs_error *err)
{
	int i = cs_schema_find(s, name);
	if (i < 0)
		return cs_err(err, CS_ERR_FORMAT, path, 0, "stream has no %s field '%s'%s",
			      cs_level_name(level), name,
			      !strcmp(name, "target") ? (level == CS_EVENT ?
				" (make training examples with cs-mask cloze)" :
				" (make evaluation splits with cs-mask split)") :
			      !strcmp(name, "label") ? (level == CS_EVENT ?
				" (make return examples with cs-mask returns)" :
				" (make session examples with cs-mask session)") : "");
	if (s->f[i].level != level || s->f[i].type != type)
		return cs_err(err, CS_ERR_FORMAT, path, 0,
			      "field '%s' is %s %s %s field, expected %s %s%s", name,
			      s->f[i].level == CS_EVENT ? "an" : "a", cs_level_name(s->f[i].level),
			      cs_type_name(s->f[i].type), cs_level_name(level), cs_type_name(type),
			      s->f[i].type == CS_STRING && type == CS_ID ?
			      ": encode the stream with cs-vocab first" : "");
	return i;
}

typedef struct reader_ctx {
	cs_dataset *d;
	size_t cap_off, cap_tok, cap_ftok, cap_tgt, cap_t, cap_lab, ntok;
	size_t cap_keys, cap_koff, cap_start, keys_len;
	int item, tgt, lab, key, ftgt, fcol[64];
	size_t cap_ftgt;
	char kbuf[CS_KEY_BUF];
	const char *kstr; /* the current record's key */
	size_t klen;
} reader_ctx;

/* Append events [from, from + n) of rec as one sequence. */
static int push(reader_ctx *x, const cs_record *rec, size_t from, size_t n, int kind)
{
	cs_dataset *d = x->d;
	size_t nt = x->ntok, nf = d->nf;
	if (cs_grow((void **)&d->off, &x->cap_off, d->n + 2, sizeof *d->off) < 0 ||
	    cs_grow((void **)&d->item, &x->cap_tok, nt + n + 1, sizeof *d->item) < 0 ||
	    (nf && cs_grow((void **)&d->ftok, &x->cap_ftok, (nt + n + 1) * nf,
			   sizeof *d->ftok) < 0))
		return -1;
	memcpy(d->item + nt, rec->col[x->item].v.u32 + from, n * sizeof *d->item);
	for (size_t f = 0; f < nf; f++) {
		const uint32_t *v = rec->col[x->fcol[f]].v.u32 + from;
		for (size_t j = 0; j < n; j++)
			d->ftok[(nt + j) * nf + f] = v[j];
	}
	switch (kind) {
	case CS_DATA_CLOZE:
		if (cs_grow((void **)&d->mtgt, &x->cap_tgt, nt + n, sizeof *d->mtgt) < 0)
			return -1;
		memcpy(d->mtgt + nt, rec->col[x->tgt].v.u32 + from, n * sizeof *d->mtgt);
		if (x->ftgt >= 0) {
			if (cs_grow((void **)&d->fmtgt, &x->cap_ftgt, nt + n, sizeof *d->fmtgt) < 0)
				return -1;
			memcpy(d->fmtgt + nt, rec->col[x->ftgt].v.u32 + from, n * sizeof *d->fmtgt);
		}
		break;
	case CS_DATA_EVAL:
		if (cs_grow((void **)&d->target, &x->cap_t, d->n + 1, sizeof *d->target) < 0)
			return -1;
		d->target[d->n] = rec->col[x->tgt].v.u32[0];
		break;
	case CS_DATA_SESSION:
		if (cs_grow((void **)&d->label, &x->cap_lab, d->n + 1, sizeof *d->label) < 0)
			return -1;
		d->label[d->n] = (uint8_t)rec->col[x->lab].v.i64[0];
		d->nlabels++;
		d->npos += d->label[d->n];
		break;
	case CS_DATA_EVENT:
		if (cs_grow((void **)&d->label, &x->cap_lab, nt + n, sizeof *d->label) < 0)
			return -1;
		for (size_t j = 0; j < n; j++) {
			int64_t y = rec->col[x->lab].v.i64[from + j];
			d->label[nt + j] = y < 0 ? CS_NO_LABEL : (uint8_t)y;
			d->nlabels += y >= 0;
			d->npos += y == 1;
		}
		break;
	}
	if (x->kstr) {
		if (cs_grow((void **)&d->keys, &x->cap_keys, x->keys_len + x->klen + 1, 1) < 0 ||
		    cs_grow((void **)&d->key_off, &x->cap_koff, d->n + 2, sizeof *d->key_off) < 0 ||
		    cs_grow((void **)&d->start, &x->cap_start, d->n + 1, sizeof *d->start) < 0)
			return -1;
		d->key_off[d->n] = x->keys_len;
		memcpy(d->keys + x->keys_len, x->kstr, x->klen);
		x->keys_len += x->klen;
		d->keys[x->keys_len++] = 0;
		d->key_off[d->n + 1] = x->keys_len;
		d->start[d->n] = from;
	}
	d->off[d->n] = nt;
	x->ntok = nt + n;
	d->off[++d->n] = x->ntok;
	return 0;
}

const char *cs_dataset_key(const cs_schema *s, int key, const cs_record *rec, uint64_t recno,
			   char buf[CS_KEY_BUF], size_t *len)
{
	const cs_column *c = key >= 0 ? &rec->col[key] : NULL;
	if (!c)
		*len = (size_t)snprintf(buf, CS_KEY_BUF, "%" PRIu64, recno);
	else if (s->f[key].type == CS_STRING)
		return cs_col_str(c, 0, len);
	else if (s->f[key].type == CS_INT64)
		*len = (size_t)snprintf(buf, CS_KEY_BUF, "%" PRId64, c->v.i64[0]);
	else if (s->f[key].type == CS_ID)
		*len = (size_t)snprintf(buf, CS_KEY_BUF, "%" PRIu32, c->v.u32[0]);
	else
		*len = (size_t)snprintf(buf, CS_KEY_BUF, "%.9g", c->v.f32[0]);
	return buf;
}

int cs_dataset_key_field(const cs_schema *s, const char *key, const char *path, cs_error *err)
{
	int k = -1;
	if (!key || !strcmp(key, "#"))
		return -1;
	if (!*key) { /* the default: user, else session */
		k = cs_schema_find(s, "user");
		if (k < 0 || s->f[k].level != CS_SEQ)
			k = cs_schema_find(s, "session");
		return k >= 0 && s->f[k].level == CS_SEQ ? k : -1;
	}
	k = cs_schema_find(s, key);
	if (k < 0 || s->f[k].level != CS_SEQ) {
		cs_err(err, CS_ERR_FORMAT, path, 0, "stream has no sequence field '%s'", key);
		return -2;
	}
	return k;
}

/* Labels must be 0 or 1 (events: or -1). */
static int check_labels(const reader_ctx *x, const cs_record *rec, int kind, const char *name,
			uint64_t recno, cs_error *err)
{
	const int64_t *y = rec->col[x->lab].v.i64;
	size_t n = kind == CS_DATA_SESSION ? 1 : rec->nevents;
	for (size_t j = 0; j < n; j++)
		if (y[j] > 1 || y[j] < (kind == CS_DATA_SESSION ? 0 : -1)) {
			cs_err(err, CS_ERR_FORMAT, name, 0, "label %" PRId64 " is not %s", y[j],
			       kind == CS_DATA_SESSION ? "0 or 1" : "1, 0 or -1");
			err->record = (long long)recno;
			return -1;
		}
	return 0;
}

/* Every id of rec below the limits of in: the item and target fields,
 * each extra input and the predicted input's Cloze target. */
static int check_ids(const reader_ctx *x, const cs_schema *s, const cs_record *rec,
		     const cs_dataset_inputs *in, const char *name, uint64_t recno,
		     cs_error *err)
{
	size_t nf = x->d->nf;
	for (size_t k = 0; k < 3 + nf; k++) {
		int col = k == 0 ? x->item : k == 1 ? x->tgt : k == 2 ? x->ftgt : x->fcol[k - 3];
		size_t lim = k < 2 ? in->nitems : !in->nids ? 0 :
			     k == 2 ? (in->pred ? in->nids[in->pred - 1] : 0) : in->nids[k - 3];
		if (col < 0 || lim == 0)
			continue;
		const cs_column *c = &rec->col[col];
		for (size_t j = 0; j < c->n; j++)
			if (c->v.u32[j] >= lim) {
				cs_err(err, CS_ERR_FORMAT, name, 0,
				       "id %" PRIu32 " of field '%s' is beyond the model's %zu ids "
				       "(the stream does not match its vocabulary)", c->v.u32[j],
				       s->f[col].name, lim);
				err->record = (long long)recno;
				return -1;
			}
	}
	return 0;
}

cs_dataset *cs_dataset_read(const char *path, int kind, size_t keep,
			    uint64_t vocab, const cs_dataset_inputs *in,
			    cs_error *err)
{
	cs_record rec = { 0 };
	cs_dataset *d = calloc(1, sizeof *d);
	reader_ctx x = { .d = d, .tgt = -1, .lab = -1, .key = -1, .ftgt = -1 };
	int got;
	cs_reader *r = cs_reader_open(path, err);
	if (!d || !r) {
		if (!d)
			cs_err(err, CS_ERR_NOMEM, path, 0, "out of memory");
		goto fail;
	}
	const cs_schema *s = cs_reader_schema(r);
	const char *name = cs_reader_path(r);
	d->kind = kind;
	const char *hv = cs_schema_get_meta(s, "holds_valid");
	d->holds_valid = hv && !strcmp(hv, "1");
	const char *sp = cs_schema_get_meta(s, "split");
	d->next = sp && !strcmp(sp, "next");
	const char *ml = cs_schema_get_meta(s, "max_len");
	if (ml) {
		char *end;
		errno = 0;
		unsigned long long w = strtoull(ml, &end, 10);
		d->window = !errno && end != ml && !*end && w <= (1u << 14) ? (size_t)w : 0;
	}
	if ((x.item = find_field(s, name, "item", CS_EVENT, CS_ID, err)) < 0)
		goto fail;
	if (kind == CS_DATA_CLOZE || kind == CS_DATA_EVAL) {
		x.tgt = find_field(s, name, "target", kind == CS_DATA_CLOZE ? CS_EVENT : CS_SEQ,
				   CS_ID, err);
		if (x.tgt < 0)
			goto fail;
	} else {
		x.lab = find_field(s, name, "label", kind == CS_DATA_SESSION ? CS_SEQ : CS_EVENT,
				   CS_INT64, err);
		if (x.lab < 0)
			goto fail;
	}
	d->nf = in ? in->n : 0;
	if (d->nf > sizeof x.fcol / sizeof x.fcol[0]) {
		cs_err(err, CS_ERR_LIMIT, name, 0, "too many extra inputs");
		goto fail;
	}
	for (size_t f = 0; f < d->nf; f++) {
		if ((x.fcol[f] = find_field(s, name, in->name[f], CS_EVENT, CS_ID, err)) < 0)
			goto fail;
		uint64_t fv = s->f[x.fcol[f]].vocab;
		if (in->vocab && in->vocab[f] && fv != in->vocab[f]) {
			cs_err(err, CS_ERR_FORMAT, name, 0,
			       "field '%s' was encoded with another vocabulary than the model's "
			       "(fingerprint %016" PRIx64 ", expected %016" PRIx64 "): re-run "
			       "cs-vocab encode with the model's vocabulary", in->name[f], fv,
			       in->vocab[f]);
			goto fail;
		}
	}
	if (kind == CS_DATA_CLOZE && in && in->pred && in->pred <= d->nf) {
		char tn[CS_MAX_NAME + 8];
		snprintf(tn, sizeof tn, "target_%s", in->name[in->pred - 1]);
		if ((x.ftgt = find_field(s, name, tn, CS_EVENT, CS_ID, err)) < 0) {
			snprintf(err->msg + strlen(err->msg), sizeof err->msg - strlen(err->msg),
				 " (make the examples with cs-mask cloze --mask-field %s)",
				 in->name[in->pred - 1]);
			goto fail;
		}
	}
	if ((x.key = cs_dataset_key_field(s, in ? in->key : NULL, name, err)) < -1)
		goto fail;
	d->vocab = s->f[x.item].vocab;
	if (vocab && d->vocab != vocab) {
		cs_err(err, CS_ERR_FORMAT, name, 0,
		       "stream was encoded with another item vocabulary than the model's "
		       "(fingerprint %016" PRIx64 ", expected %016" PRIx64 "): re-run cs-vocab encode "
		       "with the model's vocabulary", d->vocab, vocab);
		goto fail;
	}
	while ((got = cs_reader_next(r, &rec, err)) == 1) {
		size_t n = rec.nevents, from = 0;
		d->events += n;
		if (in && in->key)
			x.kstr = cs_dataset_key(s, x.key, &rec, cs_reader_records(r), x.kbuf, &x.klen);
		if (x.lab >= 0 && check_labels(&x, &rec, kind, name, cs_reader_records(r), err) < 0)
			goto fail;
		if (in && check_ids(&x, s, &rec, in, name, cs_reader_records(r), err) < 0)
			goto fail;
		if (n > keep)
			d->truncated++;
		if (kind == CS_DATA_EVENT) {
			/* windows of keep events, each with at least one label */
			for (from = 0; from < n; from += keep) {
				size_t len = n - from < keep ? n - from : keep, k = 0;
				const int64_t *y = rec.col[x.lab].v.i64 + from;
				while (k < len && y[k] < 0)
					k++;
				if (k == len)
					d->skipped++;
				else if (push(&x, &rec, from, len, kind) < 0)
					goto nomem;
			}
			continue;
		}
		/* Cloze and session examples are cut to the model; histories are
		 * kept whole (exclusion and popularity see all of them; the model
		 * reads the last keep). */
		if (n > keep && kind != CS_DATA_EVAL) {
			from = n - keep;
			n = keep;
		}
		if (n == 0) {
			d->skipped++;
			continue;
		}
		if (kind == CS_DATA_CLOZE) {
			const uint32_t *mt = rec.col[x.tgt].v.u32 + from;
			size_t m = 0;
			for (size_t j = 0; j < n; j++)
				m += mt[j] != 0;
			if (m == 0) {
				d->skipped++;
				continue;
			}
			const uint32_t *ft = x.ftgt >= 0 ? rec.col[x.ftgt].v.u32 + from : NULL;
			for (size_t j = 0; ft && j < n; j++)
				if (mt[j] && !ft[j]) {
					cs_err(err, CS_ERR_FORMAT, name, 0,
					       "masked item without a masked '%s' (make the examples "
					       "with cs-mask cloze --mask-field %s)",
					       in->name[in->pred - 1], in->name[in->pred - 1]);
					err->record = (long long)cs_reader_records(r);
					goto fail;
				}
		}
		if (push(&x, &rec, from, n, kind) < 0)
			goto nomem;
	}
	if (got < 0)
		goto fail;
	if (d->n == 0) {
		cs_err(err, CS_ERR_FORMAT, name, 0, "no sequences to %s",
		       kind == CS_DATA_CLOZE ? "train on" : "evaluate");
		goto fail;
	}
	cs_record_free(&rec);
	cs_reader_close(r);
	return d;
nomem:
	cs_err(err, CS_ERR_NOMEM, path, 0, "out of memory");
fail:
	cs_record_free(&rec);
	cs_reader_close(r);
	cs_dataset_free(d);
	return NULL;
}

void cs_dataset_free(cs_dataset *d)
{
	if (!d)
		return;
	free(d->off);
	free(d->item);
	free(d->ftok);
	free(d->mtgt);
	free(d->fmtgt);
	free(d->target);
	free(d->label);
	free(d->keys);
	free(d->key_off);
	free(d->start);
	free(d);
}

int cs_histories_add(cs_histories *h, const char *key, size_t klen, const uint32_t *items,
		     size_t n, cs_error *err)
{
	cs_dataset *d = &h->d;
	size_t i = d->n, ntok = i ? d->off[i] : 0;
	if (cs_grow((void **)&d->off, &h->cap_off, i + 2, sizeof *d->off) < 0 ||
	    cs_grow((void **)&d->key_off, &h->cap_koff, i + 3, sizeof *d->key_off) < 0 ||
	    cs_grow((void **)&d->item, &h->cap_tok, ntok + n + 1, sizeof *d->item) < 0 ||
	    cs_grow((void **)&d->keys, &h->cap_keys, h->keys_len + klen + 1, 1) < 0)
		return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	if (n)
		memcpy(d->item + ntok, items, n * sizeof *items);
	d->off[i] = ntok;
	d->off[i + 1] = ntok + n;
	d->key_off[i] = h->keys_len;
	memcpy(d->keys + h->keys_len, key, klen);
	h->keys_len += klen;
	d->keys[h->keys_len++] = 0;
	d->key_off[i + 1] = h->keys_len;
	d->n++;
	return 0;
}

void cs_histories_clear(cs_histories *h)
{
	h->d.n = 0;
	h->keys_len = 0;
}

void cs_histories_free(cs_histories *h)
{
	free(h->d.off);
	free(h->d.item);
	free(h->d.keys);
	free(h->d.key_off);
	memset(h, 0, sizeof *h);
}
