/* schema.c - stream schemas (named, typed fields; metadata) and records. */
#include <stdlib.h>
#include <string.h>
#include "cs.h"

/* Metadata keys of one schema: a lookup is linear, so reading a file of
 * millions of keys would take hours. */
#define MAX_META 4096

static const char *type_names[] = { "string", "id", "int64", "float32" };
static const char *level_names[] = { "seq", "event" };

const char *cs_type_name(int type)
{
	return type >= 0 && type < 4 ? type_names[type] : "?";
}

int cs_type_parse(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(name, type_names[i]) == 0)
			return i;
	return -1;
}

const char *cs_level_name(int level)
{
	return level >= 0 && level < 2 ? level_names[level] : "?";
}

int cs_level_parse(const char *name)
{
	for (int i = 0; i < 2; i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

cs_schema *cs_schema_new(void)
{
	return calloc(1, sizeof(cs_schema));
}

void cs_schema_free(cs_schema *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nfields; i++)
		free(s->f[i].name);
	for (size_t i = 0; i < s->nmeta; i++) {
		free(s->key[i]);
		free(s->val[i]);
	}
	free(s->f);
	free(s->key);
	free(s->val);
	free(s);
}

cs_schema *cs_schema_dup(const cs_schema *s)
{
	cs_schema *d = cs_schema_new();
	if (!d)
		return NULL;
	for (size_t i = 0; i < s->nfields; i++) {
		if (cs_schema_add(d, s->f[i].name, s->f[i].level, s->f[i].type, NULL) < 0)
			goto fail;
		d->f[i].vocab = s->f[i].vocab;
	}
	for (size_t i = 0; i < s->nmeta; i++)
		if (cs_schema_set_meta(d, s->key[i], s->val[i], NULL) < 0)
			goto fail;
	return d;
fail:
	cs_schema_free(d);
	return NULL;
}

static int valid_name(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > CS_MAX_NAME)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = name[i];
		if (c <= ' ' || c == ':' || c == 0x7f)
			return 0;
	}
	return 1;
}

int cs_schema_add(cs_schema *s, const char *name, int level, int type,
		  cs_error *err)
{
	if (!valid_name(name))
		return cs_err(err, CS_ERR_USAGE, NULL, 0, "invalid field name '%s'", name);
	if (level < 0 || level > 1 || type < 0 || type > 3)
		return cs_err(err, CS_ERR_USAGE, NULL, 0, "invalid level or type for field '%s'", name);
	if (cs_schema_find(s, name) >= 0)
		return cs_err(err, CS_ERR_USAGE, NULL, 0, "duplicate field '%s'", name);
	if (s->nfields >= CS_MAX_FIELDS)
		return cs_err(err, CS_ERR_LIMIT, NULL, 0, "too many fields (limit %d)", CS_MAX_FIELDS);
	cs_field *f = realloc(s->f, (s->nfields + 1) * sizeof *f);
	if (!f)
		return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	s->f = f;
	f += s->nfields;
	if (!(f->name = strdup(name)))
		return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	f->level = level;
	f->type = type;
	f->vocab = 0;
	return (int)s->nfields++;
}

int cs_schema_find(const cs_schema *s, const char *name)
{
	for (size_t i = 0; i < s->nfields; i++)
		if (strcmp(s->f[i].name, name) == 0)
			return (int)i;
	return -1;
}

void cs_schema_remove(cs_schema *s, size_t i)
{
	if (i >= s->nfields)
		return;
	free(s->f[i].name);
	memmove(s->f + i, s->f + i + 1, (s->nfields - i - 1) * sizeof *s->f);
	s->nfields--;
}

int cs_schema_set_meta(cs_schema *s, const char *key, const char *val,
		       cs_error *err)
{
	if (!valid_name(key))
		return cs_err(err, CS_ERR_USAGE, NULL, 0, "invalid metadata key '%s'", key);
	if (strlen(val) > CS_MAX_META_VALUE)
		return cs_err(err, CS_ERR_LIMIT, NULL, 0, "metadata value for '%s' too long", key);
	char *v = strdup(val);
	if (!v)
		return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	for (size_t i = 0; i < s->nmeta; i++)
		if (strcmp(s->key[i], key) == 0) {
			free(s->val[i]);
			s->val[i] = v;
			return 0;
		}
	if (s->nmeta >= MAX_META) {
		free(v);
		return cs_err(err, CS_ERR_LIMIT, NULL, 0, "too many metadata keys (limit %d)",
			      MAX_META);
	}
	char **k = realloc(s->key, (s->nmeta + 1) * sizeof *k);
	if (k)
		s->key = k;
	char **vv = realloc(s->val, (s->nmeta + 1) * sizeof *vv);
	if (vv)
		s->val = vv;
	char *kd = strdup(key);
	if (!k || !vv || !kd) {
		free(v);
		free(kd);
		return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	}
	s->key[s->nmeta] = kd;
	s->val[s->nmeta++] = v;
	return 0;
}

const char *cs_schema_get_meta(const cs_schema *s, const char *key)
{
	for (size_t i = 0; i < s->nmeta; i++)
		if (strcmp(s->key[i], key) == 0)
			return s->val[i];
	return NULL;
}

/* ------------------------------------------------------------ records */

static size_t type_size(int type)
{
	return type == CS_INT64 ? 8 : 4;
}

int cs_record_init(cs_record *rec, const cs_schema *s, cs_error *err)
{
	if (rec->ncols != s->nfields) {
		cs_record_free(rec);
		rec->col = calloc(s->nfields ? s->nfields : 1, sizeof *rec->col);
		if (!rec->col)
			return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
		rec->ncols = s->nfields;
	}
	for (size_t i = 0; i < s->nfields; i++) {
		cs_column *c = &rec->col[i];
		if (c->type != s->f[i].type) {
			free(c->v.p);
			free(c->off);
			free(c->str);
			memset(c, 0, sizeof *c);
			c->type = s->f[i].type;
		}
		if (c->type == CS_STRING && cs_col_reserve(c, 0) < 0)
			return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	}
	cs_record_clear(rec);
	return 0;
}

void cs_record_free(cs_record *rec)
{
	if (!rec)
		return;
	for (size_t i = 0; i < rec->ncols; i++) {
		free(rec->col[i].v.p);
		free(rec->col[i].off);
		free(rec->col[i].str);
	}
	free(rec->col);
	rec->col = NULL;
	rec->ncols = 0;
	rec->nevents = 0;
}

void cs_record_clear(cs_record *rec)
{
	rec->nevents = 0;
	for (size_t i = 0; i < rec->ncols; i++)
		rec->col[i].n = 0;
}

/* A string column always has off and str, even empty, so that
 * c->str + c->off[i] is a valid pointer. */
int cs_col_reserve(cs_column *c, size_t n)
{
	if (n <= c->cap && (c->type != CS_STRING || (c->off && c->str)))
		return 0;
	size_t cap = c->cap ? c->cap : 16;
	while (cap < n)
		cap *= 2;
	if (c->type == CS_STRING) {
		if (!c->str) {
			if (!(c->str = malloc(256)))
				return -1;
			c->strcap = 256;
		}
		uint32_t *off = realloc(c->off, (cap + 1) * sizeof *off);
		if (!off)
			return -1;
		if (!c->off)
			off[0] = 0;
		c->off = off;
	} else {
		void *p = realloc(c->v.p, cap * type_size(c->type));
		if (!p)
			return -1;
		c->v.p = p;
	}
	c->cap = cap;
	return 0;
}

int cs_col_push_u32(cs_column *c, uint32_t v)
{
	if (c->n >= c->cap && cs_col_reserve(c, c->n + 1) < 0)
		return -1;
	c->v.u32[c->n++] = v;
	return 0;
}

int cs_col_push_i64(cs_column *c, int64_t v)
{
	if (c->n >= c->cap && cs_col_reserve(c, c->n + 1) < 0)
		return -1;
	c->v.i64[c->n++] = v;
	return 0;
}

int cs_col_push_f32(cs_column *c, float v)
{
	if (c->n >= c->cap && cs_col_reserve(c, c->n + 1) < 0)
		return -1;
	c->v.f32[c->n++] = v;
	return 0;
}

/* Make room for len more string bytes. */
static int str_room(cs_column *c, size_t len)
{
	size_t used = c->off[c->n];
	if (len > CS_MAX_STRING || used + len > UINT32_MAX)
		return -1;
	if (used + len <= c->strcap)
		return 0;
	size_t cap = c->strcap ? c->strcap : 256;
	while (cap < used + len)
		cap *= 2;
	char *s = realloc(c->str, cap);
	if (!s)
		return -1;
	c->str = s;
	c->strcap = cap;
	return 0;
}

int cs_col_push_str(cs_column *c, const char *s, size_t len)
{
	if ((c->n >= c->cap || !c->off) && cs_col_reserve(c, c->n + 1) < 0)
		return -1;
	if (str_room(c, len) < 0)
		return -1;
	uint32_t at = c->off[c->n];
	if (len)
		memcpy(c->str + at, s, len);
	c->off[++c->n] = at + (uint32_t)len;
	return 0;
}

int cs_col_push_from(cs_column *dst, const cs_column *src, size_t i)
{
	switch (src->type) {
	case CS_STRING: {
		size_t len;
		const char *s = cs_col_str(src, i, &len);
		return cs_col_push_str(dst, s, len);
	}
	case CS_INT64:
		return cs_col_push_i64(dst, src->v.i64[i]);
	case CS_FLOAT32:
		return cs_col_push_f32(dst, src->v.f32[i]);
	default:
		return cs_col_push_u32(dst, src->v.u32[i]);
	}
}

int cs_col_append(cs_column *dst, const cs_column *src, size_t from, size_t n)
{
	if (cs_col_reserve(dst, dst->n + n) < 0)
		return -1;
	if (src->type == CS_STRING) {
		size_t len = src->off[from + n] - src->off[from];
		if (str_room(dst, len) < 0)
			return -1;
		uint32_t base = dst->off[dst->n];
		if (len)
			memcpy(dst->str + base, src->str + src->off[from], len);
		for (size_t j = 1; j <= n; j++)
			dst->off[dst->n + j] = base + (src->off[from + j] - src->off[from]);
	} else {
		size_t sz = type_size(src->type);
		memcpy((char *)dst->v.p + dst->n * sz, (const char *)src->v.p + from * sz, n * sz);
	}
	dst->n += n;
	return 0;
}

int cs_record_slice(cs_record *dst, const cs_schema *s, const cs_record *src,
		    size_t from, size_t n)
{
	cs_record_clear(dst);
	for (size_t i = 0; i < src->ncols; i++) {
		int seq = s->f[i].level == CS_SEQ;
		if (cs_col_append(&dst->col[i], &src->col[i], seq ? 0 : from, seq ? 1 : n) < 0)
			return -1;
	}
	dst->nevents = n;
	return 0;
}
