/* dataset.c - encoded sequence streams read into memory. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "dataset.h"

/* Index of an id field at level, or -1 with a message. */
static int id_field(const cs_schema *s, const char *path, const char *name, int level,
		    cs_error *err)
{
	int i = cs_schema_find(s, name);
	if (i < 0)
		return cs_err(err, CS_ERR_FORMAT, path, 0, "stream has no %s field '%s'%s",
			      cs_level_name(level), name,
			      strcmp(name, "target") ? "" :
			      level == CS_EVENT ? " (make training examples with cs-mask cloze)" :
			      " (make evaluation splits with cs-mask split)");
	if (s->f[i].level != level || s->f[i].type != CS_ID)
		return cs_err(err, CS_ERR_FORMAT, path, 0,
			      "field '%s' is a %s %s field, expected %s id%s", name,
			      cs_level_name(s->f[i].level), cs_type_name(s->f[i].type),
			      cs_level_name(level),
			      s->f[i].type == CS_STRING ? ": encode the stream with cs-vocab first" : "");
	return i;
}

cs_dataset *cs_dataset_read(const char *path, int kind, size_t keep,
			    uint64_t vocab, cs_error *err)
{
	cs_record rec = { 0 };
	cs_dataset *d = calloc(1, sizeof *d);
	size_t cap_off = 0, cap_tok = 0, cap_tgt = 0, cap_t = 0, ntok = 0;
	int got;
	cs_reader *r = cs_reader_open(path, err);
	if (!d || !r) {
		if (!d)
			cs_err(err, CS_ERR_NOMEM, path, 0, "out of memory");
		goto fail;
	}
	const cs_schema *s = cs_reader_schema(r);
	const char *name = cs_reader_path(r);
	int item = id_field(s, name, "item", CS_EVENT, err);
	int tgt = item < 0 ? -1 : id_field(s, name, "target",
					   kind == CS_DATA_CLOZE ? CS_EVENT : CS_SEQ, err);
	if (item < 0 || tgt < 0)
		goto fail;
	d->vocab = s->f[item].vocab;
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
		/* Cloze examples are cut to the model; histories are kept whole
		 * (exclusion and popularity see all of them; the model reads the
		 * last keep). */
		if (n > keep) {
			if (kind == CS_DATA_CLOZE) {
				from = n - keep;
				n = keep;
			}
			d->truncated++;
		}
		const uint32_t *it = rec.col[item].v.u32 + from;
		if (kind == CS_DATA_CLOZE) {
			const uint32_t *mt = rec.col[tgt].v.u32 + from;
			size_t m = 0;
			for (size_t j = 0; j < n; j++)
				m += mt[j] != 0;
			if (m == 0) {
				d->skipped++;
				continue;
			}
			if (cs_grow((void **)&d->mtgt, &cap_tgt, ntok + n, sizeof *d->mtgt) < 0)
				goto nomem;
			memcpy(d->mtgt + ntok, mt, n * sizeof *mt);
		} else {
			if (cs_grow((void **)&d->target, &cap_t, d->n + 1, sizeof *d->target) < 0)
				goto nomem;
			d->target[d->n] = rec.col[tgt].v.u32[0];
		}
		if (cs_grow((void **)&d->off, &cap_off, d->n + 2, sizeof *d->off) < 0 ||
		    cs_grow((void **)&d->item, &cap_tok, ntok + n + 1, sizeof *d->item) < 0)
			goto nomem;
		memcpy(d->item + ntok, it, n * sizeof *it);
		d->off[d->n] = ntok;
		ntok += n;
		d->off[++d->n] = ntok;
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
	free(d->mtgt);
	free(d->target);
	free(d);
}
