/* label.c - labels of purchase intention and returns. */
#include <stdlib.h>
#include <string.h>
#include "label.h"

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
