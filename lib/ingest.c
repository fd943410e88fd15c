/*
 * ingest.c - CSV exports to sequence streams.
 *
 * Pipeline: the main thread cuts each input into blocks of whole lines;
 * worker threads parse blocks into chunks (packed rows in an arena, group
 * keys interned per chunk); chunks pile up until the memory budget is
 * spent, then become one sorted run (keys ranked, rows counting-sorted by
 * key rank, each group stably sorted by time) that is either emitted
 * directly (everything fitted) or spilled to an unlinked temporary file.
 * Spilled runs are merged group by group; ties in time go to the earlier
 * run, so both paths give the same records byte for byte. The merge hands
 * batches of merged groups to an emitter thread that builds the records
 * and feeds the writer, so merging and writing share the cores. Spilled
 * chunks go back to a pool with their buffers for the next ones.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "buf.h"
#include "csvread.h"
#include "ingest.h"

/* ------------------------------------------------------------ varints */

static uint8_t *put_varint(uint8_t *d, uint64_t v)
{
	while (v >= 0x80) {
		*d++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*d++ = (uint8_t)v;
	return d;
}

static const uint8_t *get_varint(const uint8_t *s, uint64_t *v)
{
	uint64_t x = 0;
	int sh = 0;
	while (*s & 0x80) {
		x |= (uint64_t)(*s++ & 0x7f) << sh;
		sh += 7;
	}
	*v = x | (uint64_t)*s++ << sh;
	return s;
}

/* A fast 64-bit hash of a short string. */
static uint64_t khash(const char *s, size_t n)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, s, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
		s += 8;
		n -= 8;
	}
	uint64_t w = 0;
	memcpy(&w, s, n);
	h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 29;
	return h * 0x9e3779b97f4a7c15ULL;
}

/* ------------------------------------------------------------ key order */

static int all_digits(const char *s, size_t n)
{
	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

static int bytecmp(const char *a, size_t na, const char *b, size_t nb)
{
	int c = memcmp(a, b, na < nb ? na : nb);
	if (c)
		return c;
	return na < nb ? -1 : na > nb;
}

/* Digit-only keys first in numeric order, then the rest bytewise: a total
 * order, unlike "numeric if both are numbers". */
static int keycmp2(const char *a, size_t na, int da, const char *b, size_t nb, int db)
{
	if (da != db)
		return da ? -1 : 1;
	if (da) {
		const char *pa = a, *pb = b;
		size_t la = na, lb = nb;
		while (la > 1 && *pa == '0')
			pa++, la--;
		while (lb > 1 && *pb == '0')
			pb++, lb--;
		if (la != lb)
			return la < lb ? -1 : 1;
		int c = memcmp(pa, pb, la);
		if (c)
			return c;
	}
	return bytecmp(a, na, b, nb);
}

int cs_ingest_keycmp(const char *a, size_t na, const char *b, size_t nb)
{
	return keycmp2(a, na, all_digits(a, na), b, nb, all_digits(b, nb));
}

/* ------------------------------------------------------------ mappings */

/* Payload layout of a row: flags byte, [user], item, [action], [session],
 * keeps..., all strings as varint length + bytes. */
enum { F_SECOND = 1 };

typedef struct cmap {
	const cs_ingest_map *m;
	int secondary;
	int expected;  /* columns per row, -1: at least maxcol */
	int total;     /* header fields including unnamed trailing ones */
	int maxcol;    /* highest referenced column index */
	int c_key, c_user, c_session, c_item, c_action, c_time, c_toff;
	int seq_user;  /* payload holds the user (grouped by session) */
	int ev_session; /* payload holds the session (grouped by user) */
	int c_keep[CS_INGEST_MAX_KEEP];
	const char *path;
} cmap;

/* Resolve a column spec against header names. -1 absent, -2 unknown. */
static int resolve(const char *spec, char **names, int nnames)
{
	if (!spec)
		return -1;
	if (all_digits(spec, strlen(spec))) {
		long v = strtol(spec, NULL, 10);
		return v >= 1 && v <= 100000 ? (int)v - 1 : -2;
	}
	for (int i = 0; i < nnames; i++)
		if (!strcmp(names[i], spec))
			return i;
	return -2;
}

static int compile_map(cmap *cm, const cs_ingest_opts *o, const cs_ingest_map *m,
		       char **names, int nnames, const char *path, cs_error *err)
{
	memset(cm, 0, sizeof *cm);
	cm->m = m;
	cm->path = path;
	cm->expected = m->header ? nnames : -1;
	struct { const char *spec, *what; int *dst; } c[] = {
		{ m->user, "user", &cm->c_user }, { m->session, "session", &cm->c_session },
		{ m->item, "item", &cm->c_item }, { m->action, "action", &cm->c_action },
		{ m->time, "time", &cm->c_time }, { m->time_offset, "time offset", &cm->c_toff },
	};
	cm->maxcol = 0;
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		const char *spec = c[i].spec;
		if (c[i].dst == &cm->c_action && m->action_mode != CS_ACTION_COLUMN &&
		    m->action_mode != CS_ACTION_INVOICE)
			spec = NULL;
		if (c[i].dst == &cm->c_time && m->time_format == CS_TIME_NONE)
			spec = NULL;
		int k = resolve(spec, names, m->header ? nnames : 0);
		if (k == -2)
			return cs_err(err, CS_ERR_USAGE, path, 0, "no %s column '%s'%s",
				      c[i].what, spec, m->header ? "" : " (the input has no header)");
		*c[i].dst = k;
		if (k > cm->maxcol)
			cm->maxcol = k;
	}
	if (cm->c_item < 0 && !m->seqlines)
		return cs_err(err, CS_ERR_USAGE, path, 0, "no item column given");
	if (m->time_format != CS_TIME_NONE && cm->c_time < 0)
		return cs_err(err, CS_ERR_USAGE, path, 0, "no time column given");
	cm->c_key = o->by == CS_BY_SESSION ? cm->c_session : cm->c_user;
	if (m->seqlines)
		cm->c_key = cm->c_user < 0 ? 0 : cm->c_user;
	if (cm->c_key < 0)
		return cs_err(err, CS_ERR_USAGE, path, 0, "no %s column given to group by",
			      o->by == CS_BY_SESSION ? "session" : "user");
	cm->seq_user = o->by == CS_BY_SESSION && cm->c_user >= 0;
	cm->ev_session = o->by == CS_BY_USER && cm->c_session >= 0;
	for (size_t i = 0; i < m->nkeep; i++) {
		int k = resolve(m->keep[i].col, names, m->header ? nnames : 0);
		if (k < 0)
			return cs_err(err, CS_ERR_USAGE, path, 0, "no column '%s' to keep%s",
				      m->keep[i].col, m->header ? "" : " (the input has no header)");
		cm->c_keep[i] = k;
		if (k > cm->maxcol)
			cm->maxcol = k;
	}
	if (cm->expected >= 0 && cm->maxcol >= cm->expected)
		return cs_err(err, CS_ERR_USAGE, path, 0, "column %d beyond the %d in the header",
			      cm->maxcol + 1, cm->expected);
	return 0;
}

/* ------------------------------------------------------------ chunks */

typedef struct crow {
	int64_t t;    /* milliseconds */
	uint64_t off; /* payload in the arena */
	uint32_t len;
	uint32_t key; /* local key id */
} crow;

typedef struct ckey {
	uint64_t hash;
	uint64_t off;
	uint32_t len;
	uint32_t count;
} ckey;

#define MAX_BADREC 8

typedef struct chunk {
	/* input */
	const char *text;
	size_t len;
	const cmap *cm;
	int quoted; /* the text holds a quote somewhere */
	/* output */
	cs_buf arena;
	crow *rows;
	size_t nrows, caprows;
	ckey *keys;
	size_t nkeys, capkeys;
	uint32_t *ht;
	size_t htcap;
	long nlines;
	uint64_t nread, nbad, nskipped;
	struct { long line; char msg[200]; } bad[MAX_BADREC];
	int nbadrec;
	int nomem;
	/* scratch */
	cs_csv csv;
} chunk;

/* What a parsed chunk holds (after chunk_trim): its allocations, not the
 * bytes in use, which can be half of them. */
static size_t chunk_mem(const chunk *c)
{
	return c->arena.cap + c->caprows * sizeof(crow) + c->capkeys * sizeof(ckey);
}

static void chunk_free(chunk *c)
{
	if (!c)
		return;
	free(c->arena.p);
	free(c->rows);
	free(c->keys);
	free(c->ht);
	cs_csv_free(&c->csv);
	free(c);
}

static void bad_row(chunk *c, long line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void bad_row(chunk *c, long line, const char *fmt, ...)
{
	c->nbad++;
	if (c->nbadrec >= MAX_BADREC)
		return;
	va_list ap;
	c->bad[c->nbadrec].line = line;
	va_start(ap, fmt);
	vsnprintf(c->bad[c->nbadrec].msg, sizeof c->bad[0].msg, fmt, ap);
	va_end(ap);
	c->nbadrec++;
}

/* Interned local id of key s, adding it. */
static int intern(chunk *c, const char *s, size_t n, uint32_t *id)
{
	if (c->nkeys * 2 >= c->htcap) {
		size_t cap = c->htcap ? c->htcap * 2 : 1024;
		uint32_t *ht = calloc(cap, sizeof *ht);
		if (!ht)
			return -1;
		for (size_t i = 0; i < c->nkeys; i++) {
			size_t j = c->keys[i].hash & (cap - 1);
			while (ht[j])
				j = (j + 1) & (cap - 1);
			ht[j] = (uint32_t)i + 1;
		}
		free(c->ht);
		c->ht = ht;
		c->htcap = cap;
	}
	uint64_t h = khash(s, n);
	size_t j = h & (c->htcap - 1);
	while (c->ht[j]) {
		ckey *k = &c->keys[c->ht[j] - 1];
		if (k->hash == h && k->len == n && !memcmp(c->arena.p + k->off, s, n)) {
			*id = c->ht[j] - 1;
			k->count++;
			return 0;
		}
		j = (j + 1) & (c->htcap - 1);
	}
	if (cs_grow((void **)&c->keys, &c->capkeys, c->nkeys + 1, sizeof *c->keys) < 0 ||
	    cs_buf_reserve(&c->arena, n) < 0)
		return -1;
	ckey *k = &c->keys[c->nkeys];
	k->hash = h;
	k->off = c->arena.n;
	k->len = (uint32_t)n;
	k->count = 1;
	memcpy(c->arena.p + c->arena.n, s, n);
	c->arena.n += n;
	c->ht[j] = (uint32_t)c->nkeys + 1;
	*id = (uint32_t)c->nkeys++;
	return 0;
}

static int is_missing(const cs_csv_field *f)
{
	return f->n == 0 || (f->n == 2 && f->p[0] == 'N' && f->p[1] == 'A');
}

static uint8_t *put_str(uint8_t *d, const char *s, size_t n)
{
	d = put_varint(d, n);
	memcpy(d, s, n);
	return d + n;
}

/* An integer of the whole int64 range, exactly: -1 not a number, -2 a
 * fraction (zeros after a point, as "3.0", are allowed), -3 out of range. */
static int parse_i64(const char *s, size_t n, int64_t *v)
{
	const char *p = s, *e = s + n;
	int neg = p < e && *p == '-';
	p += neg;
	if (p >= e || *p < '0' || *p > '9')
		return -1;
	uint64_t u = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	int over = 0;
	for (; p < e && *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (u > (lim - d) / 10)
			over = 1;
		else
			u = u * 10 + d;
	}
	int frac = 0;
	if (p < e && *p == '.')
		for (p++; p < e && *p >= '0' && *p <= '9'; p++)
			frac |= *p != '0';
	if (p != e)
		return -1;
	if (frac)
		return -2;
	if (over)
		return -3;
	*v = neg ? (int64_t)(0 - u) : (int64_t)u;
	return 0;
}

static int parse_f32(const char *s, size_t n, float *v)
{
	static const double p10[] = { 1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9 };
	/* fast path: [-]digits[.digits], at most 15 digits in all */
	size_t i = 0, nd = 0, fd = 0;
	int neg = 0, dot = 0;
	uint64_t m = 0;
	if (n && s[0] == '-')
		neg = 1, i = 1;
	for (; i < n; i++) {
		if (s[i] >= '0' && s[i] <= '9') {
			m = m * 10 + (uint64_t)(s[i] - '0');
			nd++;
			fd += dot;
		} else if (s[i] == '.' && !dot) {
			dot = 1;
		} else {
			break;
		}
	}
	if (i == n && nd > 0 && nd <= 15 && fd <= 9) {
		double d = (double)m / p10[fd];
		*v = (float)(neg ? -d : d);
		return 0;
	}
	char tmp[64], *end;
	if (n == 0 || n >= sizeof tmp)
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = 0;
	*v = strtof(tmp, &end);
	if (*end)
		return -1;
	/* beyond float32: strtof's infinity, unless the text says inf */
	return isinf(*v) && !memchr(tmp, 'i', n) && !memchr(tmp, 'I', n) ? -3 : 0;
}

/* Start a row of key at time t with room for need payload bytes; *out is
 * where its payload goes (finish_row ends it). -1 out of memory. */
static int add_row(chunk *c, long line, int64_t t, const cs_csv_field *key, size_t need,
		   uint8_t **out)
{
	uint32_t id;
	if (intern(c, key->p, key->n, &id) < 0 ||
	    cs_grow((void **)&c->rows, &c->caprows, c->nrows + 1, sizeof *c->rows) < 0 ||
	    cs_buf_reserve(&c->arena, need) < 0)
		return -1;
	crow *r = &c->rows[c->nrows++];
	r->t = t;
	r->off = c->arena.n;
	r->key = id;
	*out = c->arena.p + c->arena.n;
	return 0;
}

static void finish_row(chunk *c, uint8_t *end)
{
	crow *r = &c->rows[c->nrows - 1];
	r->len = (uint32_t)(end - (c->arena.p + r->off));
	c->arena.n = (size_t)(end - c->arena.p);
}

/* The bad row of a number that parse_f32 or parse_i64 refused with e. */
static void bad_number(chunk *c, long line, int e, const cs_csv_field *k, const char *what)
{
	int n = (int)(k->n > 60 ? 60 : k->n);
	if (e == -3)
		bad_row(c, line, "number out of range '%.*s'", n, k->p);
	else if (e == -2)
		bad_row(c, line, "not an integer '%.*s'", n, k->p);
	else
		bad_row(c, line, "bad %s '%.*s'", what, n, k->p);
}

/* 1 (a bad row) when field k of a row, a string of the stream, is longer
 * than a stream string may be. */
static int too_long(chunk *c, long line, const cs_csv_field *f, int k)
{
	if (k < 0 || f[k].n <= CS_MAX_STRING)
		return 0;
	bad_row(c, line, "field %d of %zu bytes exceeds the %u MiB limit of a string",
		k + 1, f[k].n, CS_MAX_STRING >> 20);
	return 1;
}

static int process_row(chunk *c, const cs_csv_field *f, size_t nf, long line)
{
	const cmap *cm = c->cm;
	const cs_ingest_map *m = cm->m;
	uint8_t *d;
	if (m->seqlines) {
		if (nf < 2 || is_missing(&f[0])) {
			bad_row(c, line, nf < 2 ? "no items" : "empty user");
			return 0;
		}
		for (size_t i = 0; i < nf; i++)
			if (too_long(c, line, f, (int)i))
				return 0;
		for (size_t i = 1; i < nf; i++) {
			if (!f[i].n)
				continue;
			c->nread++;
			if (add_row(c, line, 0, &f[0], f[i].n + 12, &d) < 0)
				return -1;
			*d++ = cm->secondary ? F_SECOND : 0;
			d = put_str(d, f[i].p, f[i].n);
			finish_row(c, d);
		}
		return 0;
	}
	while ((int)nf > cm->expected && nf > 0 && f[nf - 1].n == 0 && cm->expected >= 0)
		nf--;
	c->nread++;
	if (cm->expected >= 0 ? (int)nf < cm->expected || (int)nf > cm->total :
	    (int)nf <= cm->maxcol) {
		if (cm->expected >= 0)
			bad_row(c, line, "expected %d columns, got %zu", cm->expected, nf);
		else
			bad_row(c, line, "expected at least %d columns, got %zu", cm->maxcol + 1, nf);
		return 0;
	}
	if (too_long(c, line, f, cm->c_key) || too_long(c, line, f, cm->c_item) ||
	    (m->action_mode == CS_ACTION_COLUMN && too_long(c, line, f, cm->c_action)) ||
	    (cm->seq_user && too_long(c, line, f, cm->c_user)) ||
	    (cm->ev_session && too_long(c, line, f, cm->c_session)))
		return 0;
	for (size_t i = 0; i < m->nkeep; i++)
		if (m->keep[i].type == CS_STRING && too_long(c, line, f, cm->c_keep[i]))
			return 0;
	const cs_csv_field *key = &f[cm->c_key];
	if (is_missing(key)) {
		if (m->skip_missing_key)
			c->nskipped++;
		else
			bad_row(c, line, "empty %s", cm->c_key == cm->c_session ? "session" : "user");
		return 0;
	}
	if (f[cm->c_item].n == 0) {
		bad_row(c, line, "empty item");
		return 0;
	}
	int64_t t = 0;
	if (cm->c_time >= 0) {
		const cs_csv_field *tf = &f[cm->c_time];
		if (cs_time_parse(tf->p, tf->n, m->time_format, m->time_pattern, &t) < 0) {
			bad_row(c, line, "unparsable time '%.*s'", (int)(tf->n > 60 ? 60 : tf->n), tf->p);
			return 0;
		}
		if (cm->c_toff >= 0) {
			int64_t off;
			const cs_csv_field *of = &f[cm->c_toff];
			if (parse_i64(of->p, of->n, &off) < 0 ||
			    (off > 0 ? t > INT64_MAX - off : t < INT64_MIN - off)) {
				bad_row(c, line, "bad time offset '%.*s'", (int)(of->n > 60 ? 60 : of->n), of->p);
				return 0;
			}
			t += off;
		}
	}
	float fv[CS_INGEST_MAX_KEEP];
	int64_t iv[CS_INGEST_MAX_KEEP];
	int e;
	size_t need = 16 + f[cm->c_item].n;
	for (size_t i = 0; i < m->nkeep; i++) {
		const cs_csv_field *k = &f[cm->c_keep[i]];
		switch (m->keep[i].type) {
		case CS_FLOAT32:
			if (k->n == 0)
				fv[i] = 0.0f / 0.0f;
			else if ((e = parse_f32(k->p, k->n, &fv[i])) < 0) {
				bad_number(c, line, e, k, "number");
				return 0;
			}
			need += 4;
			break;
		case CS_INT64:
			if (k->n == 0)
				iv[i] = 0;
			else if ((e = parse_i64(k->p, k->n, &iv[i])) < 0) {
				bad_number(c, line, e, k, "integer");
				return 0;
			}
			need += 8;
			break;
		default:
			need += 10 + k->n;
		}
	}
	const char *act = NULL;
	size_t nact = 0;
	switch (m->action_mode) {
	case CS_ACTION_COLUMN:
		act = f[cm->c_action].p;
		nact = f[cm->c_action].n;
		break;
	case CS_ACTION_CONST:
		act = m->action_value ? m->action_value : "";
		nact = strlen(act);
		break;
	case CS_ACTION_INVOICE:
		if (f[cm->c_action].n && (f[cm->c_action].p[0] == 'C' || f[cm->c_action].p[0] == 'c'))
			act = "return", nact = 6;
		else
			act = "purchase", nact = 8;
		break;
	}
	need += nact + 10;
	if (cm->seq_user)
		need += 10 + f[cm->c_user].n;
	if (cm->ev_session)
		need += 10 + f[cm->c_session].n;
	if (add_row(c, line, t, key, need, &d) < 0)
		return -1;
	*d++ = cm->secondary ? F_SECOND : 0;
	if (cm->seq_user) {
		const cs_csv_field *u = &f[cm->c_user];
		d = is_missing(u) ? put_str(d, "", 0) : put_str(d, u->p, u->n);
	}
	d = put_str(d, f[cm->c_item].p, f[cm->c_item].n);
	if (m->action_mode != CS_ACTION_NONE)
		d = put_str(d, act, nact);
	if (cm->ev_session)
		d = put_str(d, f[cm->c_session].p, f[cm->c_session].n);
	for (size_t i = 0; i < m->nkeep; i++) {
		const cs_csv_field *k = &f[cm->c_keep[i]];
		switch (m->keep[i].type) {
		case CS_FLOAT32:
			memcpy(d, &fv[i], 4);
			d += 4;
			break;
		case CS_INT64:
			memcpy(d, &iv[i], 8);
			d += 8;
			break;
		default:
			d = put_str(d, k->p, k->n);
		}
	}
	finish_row(c, d);
	return 0;
}

/* Parse the chunk's text into rows. */
static void chunk_parse(chunk *c)
{
	cs_csv *x = &c->csv;
	long line = 0;
	int r;
	/* payloads are about as long as the text: size the arena once */
	if (cs_buf_reserve(&c->arena, c->len + 256) < 0 ||
	    cs_grow((void **)&c->rows, &c->caprows, c->len / 64 + 16, sizeof *c->rows) < 0)
		goto nomem;
	/* and the key table for a key every 64 bytes, sparing the rehashes */
	if (!c->ht) {
		size_t cap = 1024;
		while (cap < c->len / 32)
			cap *= 2;
		if (!(c->ht = calloc(cap, sizeof *c->ht)))
			goto nomem;
		c->htcap = cap;
	}
	x->sep = c->cm->m->sep;
	cs_csv_start(x, c->text, c->len, c->quoted);
	while ((r = cs_csv_next(x, &line)) > 0) {
		if (r == 2) { /* broken quoting */
			bad_row(c, line, "%s", x->bad);
			c->nread++;
		} else if (process_row(c, x->f, x->nf, line) < 0) {
			goto nomem;
		}
	}
	if (r < 0)
		goto nomem;
	c->nlines = x->line;
	return;
nomem:
	c->nomem = 1;
	c->nlines = x->line;
}

/* ------------------------------------------------------------ runs */

typedef struct srow {
	int64_t t;
	const uint8_t *p;
	uint32_t len;
} srow;

/* Stable sort of rows by time (usually they are sorted already). */
static int sort_rows(srow *r, size_t n, srow **tmp, size_t *tmpcap)
{
	size_t i;
	for (i = 1; i < n; i++)
		if (r[i].t < r[i - 1].t)
			break;
	if (i >= n)
		return 0;
	if (n <= 32) {
		for (i = 1; i < n; i++) {
			srow x = r[i];
			size_t j = i;
			while (j > 0 && r[j - 1].t > x.t) {
				r[j] = r[j - 1];
				j--;
			}
			r[j] = x;
		}
		return 0;
	}
	if (cs_grow((void **)tmp, tmpcap, n, sizeof **tmp) < 0)
		return -1;
	srow *a = r, *b = *tmp;
	for (size_t w = 1; w < n; w *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * w) {
			size_t mid = lo + w < n ? lo + w : n;
			size_t hi = lo + 2 * w < n ? lo + 2 * w : n;
			size_t x = lo, y = mid, k = lo;
			while (x < mid && y < hi)
				b[k++] = a[y].t < a[x].t ? a[y++] : a[x++];
			while (x < mid)
				b[k++] = a[x++];
			while (y < hi)
				b[k++] = a[y++];
		}
		srow *t = a;
		a = b;
		b = t;
	}
	if (a != r)
		memcpy(r, a, n * sizeof *r);
	return 0;
}

typedef struct gkey {
	const char *s;
	uint64_t hash;
	uint64_t num;   /* value of a short digit-only key, else the first 8
			 * bytes big-endian */
	uint32_t len;
	uint8_t digits; /* 1 digit-only, 2 digit-only and short enough for num */
	size_t count;
} gkey;

typedef struct run {
	gkey *keys;
	size_t nkeys;
	uint32_t *order; /* key ids by rank */
	size_t *start;   /* rows of rank i: start[i] .. start[i+1] */
	srow *rows;
	size_t nrows;
} run;

static void run_free(run *r)
{
	free(r->keys);
	free(r->order);
	free(r->start);
	free(r->rows);
	memset(r, 0, sizeof *r);
}

static int gkey_cmp(const void *pa, const void *pb, void *ctx)
{
	const gkey *keys = ctx;
	const gkey *a = &keys[*(const uint32_t *)pa], *b = &keys[*(const uint32_t *)pb];
	if (((a->digits == 2 && b->digits == 2) || (!a->digits && !b->digits)) &&
	    a->num != b->num)
		return a->num < b->num ? -1 : 1;
	return keycmp2(a->s, a->len, a->digits != 0, b->s, b->len, b->digits != 0);
}

/* Rank the keys of the chunks and sort their rows into one run. */
static int run_build(chunk **ch, size_t nch, run *r, srow **tmp, size_t *tmpcap)
{
	memset(r, 0, sizeof *r);
	size_t total = 0, nrows = 0;
	for (size_t i = 0; i < nch; i++) {
		total += ch[i]->nkeys;
		nrows += ch[i]->nrows;
	}
	size_t cap = 1024;
	while (cap < 2 * total)
		cap *= 2;
	uint32_t *ht = calloc(cap, sizeof *ht);
	uint32_t **lmap = calloc(nch ? nch : 1, sizeof *lmap);
	r->keys = malloc((total ? total : 1) * sizeof *r->keys);
	int rc = -1;
	if (!ht || !lmap || !r->keys)
		goto out;
	for (size_t i = 0; i < nch; i++) {
		chunk *c = ch[i];
		if (!(lmap[i] = malloc((c->nkeys ? c->nkeys : 1) * sizeof **lmap)))
			goto out;
		for (size_t k = 0; k < c->nkeys; k++) {
			const ckey *lk = &c->keys[k];
			const char *s = (const char *)c->arena.p + lk->off;
			size_t j = lk->hash & (cap - 1);
			for (;;) {
				if (!ht[j]) {
					gkey *g = &r->keys[r->nkeys];
					g->s = s;
					g->hash = lk->hash;
					g->len = lk->len;
					g->count = 0;
					g->digits = (uint8_t)all_digits(s, lk->len);
					g->num = 0;
					if (g->digits && lk->len <= 19) {
						g->digits = 2;
						for (size_t d = 0; d < lk->len; d++)
							g->num = g->num * 10 + (uint64_t)(s[d] - '0');
					} else if (!g->digits) {
						for (size_t d = 0; d < 8; d++)
							g->num = g->num << 8 |
								 (d < lk->len ? (uint8_t)s[d] : 0);
					}
					ht[j] = (uint32_t)++r->nkeys;
					break;
				}
				gkey *g = &r->keys[ht[j] - 1];
				if (g->hash == lk->hash && g->len == lk->len && !memcmp(g->s, s, lk->len))
					break;
				j = (j + 1) & (cap - 1);
			}
			lmap[i][k] = ht[j] - 1;
			r->keys[ht[j] - 1].count += lk->count;
		}
	}
	free(ht);
	ht = NULL;
	r->order = malloc((r->nkeys ? r->nkeys : 1) * sizeof *r->order);
	r->start = malloc((r->nkeys + 1) * sizeof *r->start);
	r->rows = malloc((nrows ? nrows : 1) * sizeof *r->rows);
	uint32_t *rank = malloc((r->nkeys ? r->nkeys : 1) * sizeof *rank);
	size_t *pos = malloc((r->nkeys ? r->nkeys : 1) * sizeof *pos);
	if (!r->order || !r->start || !r->rows || !rank || !pos) {
		free(rank);
		free(pos);
		goto out;
	}
	for (size_t i = 0; i < r->nkeys; i++)
		r->order[i] = (uint32_t)i;
	qsort_r(r->order, r->nkeys, sizeof *r->order, gkey_cmp, r->keys);
	size_t at = 0;
	for (size_t i = 0; i < r->nkeys; i++) {
		rank[r->order[i]] = (uint32_t)i;
		r->start[i] = at;
		pos[i] = at;
		at += r->keys[r->order[i]].count;
	}
	r->start[r->nkeys] = at;
	r->nrows = nrows;
	/* counting sort by rank keeps input order within a group */
	for (size_t i = 0; i < nch; i++) {
		chunk *c = ch[i];
		const uint32_t *lm = lmap[i];
		for (size_t k = 0; k < c->nrows; k++) {
			const crow *cr = &c->rows[k];
			srow *s = &r->rows[pos[rank[lm[cr->key]]]++];
			s->t = cr->t;
			s->p = c->arena.p + cr->off;
			s->len = cr->len;
		}
	}
	free(rank);
	free(pos);
	for (size_t i = 0; i < r->nkeys; i++)
		if (sort_rows(r->rows + r->start[i], r->start[i + 1] - r->start[i], tmp, tmpcap) < 0)
			goto out;
	rc = 0;
out:
	free(ht);
	if (lmap)
		for (size_t i = 0; i < nch; i++)
			free(lmap[i]);
	free(lmap);
	if (rc < 0)
		run_free(r);
	return rc;
}

/* ------------------------------------------------------------ the job */

#define POOL_MAX 32


typedef struct ing {
	const cs_ingest_opts *o;
	cs_ingest_stats *st;
	cs_error *err;
	cs_schema *schema;
	cs_writer *w;
	cs_record rec;
	int f_user, f_session, f_part, f_item, f_action, f_time, f_evsession;
	int f_keep[CS_INGEST_MAX_KEEP];
	int seq_user, ev_session, has_action, has_time;
	const cs_ingest_map *m;
	int have_second;
	srow *tmp;
	size_t tmpcap;
	char tmpdir[400];
	struct runfile *runs;
	size_t nruns, capruns;
	int last_action;
	double last_progress;
	const char *out;
	const cs_writer_opts *wo;
	cmap cm1;
	struct flusher *fl;
	/* parsed chunks come back here after a spill, buffers and all, so
	 * that the next ones need no fresh (page-faulting) memory */
	pthread_mutex_t pool_mu;
	struct chunk *pool[POOL_MAX];
	size_t npool;
} ing;

/* Errors of the background flush go to its own record. */
static _Thread_local cs_error *thread_err;

static int nomem(ing *g)
{
	return cs_err(thread_err ? thread_err : g->err, CS_ERR_NOMEM, NULL, 0, "out of memory");
}

static void progress(ing *g, int force)
{
	if (!g->o->on_progress)
		return;
	double t = cs_now();
	if (!force && t - g->last_progress < 0.2)
		return;
	g->last_progress = t;
	g->o->on_progress(g->o->ctx, g->st);
}

static void count_action(ing *g, const char *s, size_t n)
{
	cs_ingest_stats *st = g->st;
	if (n >= sizeof st->action[0])
		n = sizeof st->action[0] - 1;
	int k = g->last_action;
	if (k >= 0 && (size_t)k < st->nactions && strlen(st->action[k]) == n &&
	    !memcmp(st->action[k], s, n)) {
		st->action_count[k]++;
		return;
	}
	for (size_t i = 0; i < st->nactions; i++)
		if (strlen(st->action[i]) == n && !memcmp(st->action[i], s, n)) {
			st->action_count[i]++;
			g->last_action = (int)i;
			return;
		}
	if (st->nactions < 16) {
		memcpy(st->action[st->nactions], s, n);
		st->action[st->nactions][n] = 0;
		st->action_count[st->nactions] = 1;
		g->last_action = (int)st->nactions++;
	}
}

static const uint8_t *skip_str(const uint8_t *q)
{
	uint64_t n;
	q = get_varint(q, &n);
	return q + n;
}

/* cs_col_push_* with the common case (room left) inline: emitting calls
 * them for every value. */
static inline int col_str(cs_column *c, const void *s, size_t len)
{
	if (c->n < c->cap && c->off) {
		size_t at = c->off[c->n];
		if (at + len <= c->strcap && at + len <= UINT32_MAX) {
			memcpy(c->str + at, s, len);
			c->off[++c->n] = (uint32_t)(at + len);
			return 0;
		}
	}
	return cs_col_push_str(c, s, len);
}

static inline int col_i64(cs_column *c, int64_t v)
{
	if (c->n < c->cap) {
		c->v.i64[c->n++] = v;
		return 0;
	}
	return cs_col_push_i64(c, v);
}

static inline int col_f32(cs_column *c, float v)
{
	if (c->n < c->cap) {
		c->v.f32[c->n++] = v;
		return 0;
	}
	return cs_col_push_f32(c, v);
}

/* Write the finished record if it is long enough. */
static int put_record(ing *g, size_t ev)
{
	const cs_ingest_opts *o = g->o;
	if (ev == 0)
		return 0;
	if (ev < o->min_len) {
		g->st->short_seqs++;
		return 0;
	}
	g->rec.nevents = ev;
	if (cs_writer_put(g->w, &g->rec, thread_err ? thread_err : g->err) < 0)
		return -1;
	g->st->sequences++;
	g->st->events += ev;
	if (g->has_action) {
		const cs_column *c = &g->rec.col[g->f_action];
		for (size_t i = 0; i < ev; i++) {
			size_t n;
			const char *s = cs_col_str(c, i, &n);
			count_action(g, s, n);
		}
	}
	return 0;
}

/*
 * A group that cannot become a record: past a record's limits, or past
 * the 4 GiB of strings a column holds. The message names the group, the
 * one thing in the input that can be looked for.
 */
static int group_fail(ing *g, const char *key, size_t klen, int put_failed)
{
	cs_error *err = thread_err ? thread_err : g->err;
	const char *kind = g->o->by == CS_BY_SESSION ? "session" : "user";
	int kl = klen > 60 ? 60 : (int)klen;
	if (put_failed) {
		if (err->code == CS_ERR_LIMIT) {
			char msg[sizeof err->msg + 128];
			snprintf(msg, sizeof msg, "%s '%.*s%s': %s", kind, kl, key,
				 klen > 60 ? "..." : "", err->msg);
			msg[sizeof err->msg - 1] = 0;
			memcpy(err->msg, msg, sizeof err->msg);
			err->record = 0;
		}
		return -1;
	}
	for (size_t k = 0; k < g->rec.ncols; k++) {
		const cs_column *c = &g->rec.col[k];
		if (c->type == CS_STRING && c->off && c->off[c->n] > UINT32_MAX - (128u << 20))
			return cs_err(err, CS_ERR_LIMIT, g->out ? g->out : "<stdout>", 0,
				      "%s '%.*s%s': field '%s' passes the 4 GiB of strings a "
				      "sequence can hold", kind, kl, key, klen > 60 ? "..." : "",
				      g->schema->f[k].name);
	}
	return nomem(g);
}

/* Turn one group (rows sorted by time) into records: split at gaps, drop
 * repeats and short sequences. rows[0 .. avail) may be read ahead. */
static int emit_group(ing *g, const char *key, size_t klen, const srow *rows, size_t n,
		      size_t avail)
{
	const cs_ingest_opts *o = g->o;
	cs_record *rec = &g->rec;
	if (g->have_second) {
		size_t i;
		for (i = 0; i < n && (rows[i].p[0] & F_SECOND); i++)
			;
		if (i == n) {
			g->st->unmatched += n;
			return 0;
		}
	}
	g->st->groups++;
	int64_t gap = o->gap > 0 ? o->gap * 1000 : 0;
	int64_t part = 0;
	size_t i = 0;
	while (i < n) {
		cs_record_clear(rec);
		part++;
		const uint8_t *q = rows[i].p + 1;
		int e = 0;
		if (g->seq_user) {
			uint64_t un;
			q = get_varint(q, &un);
			e |= col_str(&rec->col[g->f_user], (const char *)q, un);
		} else if (g->f_user >= 0) {
			e |= col_str(&rec->col[g->f_user], key, klen);
		}
		if (g->f_session >= 0)
			e |= col_str(&rec->col[g->f_session], key, klen);
		if (g->f_part >= 0)
			e |= col_i64(&rec->col[g->f_part], part);
		if (e)
			return group_fail(g, key, klen, 0);
		size_t ev = 0, first = i;
		const uint8_t *last = NULL;
		size_t lastn = 0;
		for (; i < n; i++) {
			const srow *r = &rows[i];
			/* payloads are scattered: fetch ahead of use */
			if (i + 8 < avail)
				__builtin_prefetch(rows[i + 8].p);
			if (gap && i > first && r->t - rows[i - 1].t > gap)
				break;
			q = r->p + 1;
			if (g->seq_user)
				q = skip_str(q);
			const uint8_t *ia = q;
			uint64_t len;
			const uint8_t *item = get_varint(q, &len);
			size_t nitem = len;
			q = item + len;
			const uint8_t *act = NULL;
			size_t nact = 0;
			if (g->has_action) {
				act = get_varint(q, &len);
				nact = len;
				q = act + len;
			}
			if (o->collapse && last && lastn == (size_t)(q - ia) && !memcmp(last, ia, lastn)) {
				g->st->collapsed++;
				continue;
			}
			last = ia;
			lastn = (size_t)(q - ia);
			e |= col_str(&rec->col[g->f_item], (const char *)item, nitem);
			if (g->has_action)
				e |= col_str(&rec->col[g->f_action], (const char *)act, nact);
			if (g->has_time) {
				int64_t t = r->t >= 0 ? r->t / 1000 : -((-r->t + 999) / 1000);
				e |= col_i64(&rec->col[g->f_time], t);
			}
			if (g->ev_session) {
				const uint8_t *s = get_varint(q, &len);
				e |= col_str(&rec->col[g->f_evsession], (const char *)s, len);
				q = s + len;
			}
			for (size_t k = 0; k < g->m->nkeep; k++) {
				cs_column *c = &rec->col[g->f_keep[k]];
				switch (g->m->keep[k].type) {
				case CS_FLOAT32: {
					float f;
					memcpy(&f, q, 4);
					q += 4;
					e |= col_f32(c, f);
					break;
				}
				case CS_INT64: {
					int64_t v;
					memcpy(&v, q, 8);
					q += 8;
					e |= col_i64(c, v);
					break;
				}
				default: {
					const uint8_t *s = get_varint(q, &len);
					e |= col_str(c, (const char *)s, len);
					q = s + len;
				}
				}
			}
			if (e)
				return group_fail(g, key, klen, 0);
			ev++;
		}
		if (put_record(g, ev) < 0)
			return group_fail(g, key, klen, 1);
	}
	if ((g->st->groups & 4095) == 0)
		progress(g, 0);
	return 0;
}

static int emit_run(ing *g, const run *r)
{
	for (size_t i = 0; i < r->nkeys; i++) {
		const gkey *k = &r->keys[r->order[i]];
		if (emit_group(g, k->s, k->len, r->rows + r->start[i],
			       r->start[i + 1] - r->start[i], r->nrows - r->start[i]) < 0)
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ spilling */

static int io_err(ing *g, const char *what)
{
	return cs_err(thread_err ? thread_err : g->err, CS_ERR_IO, g->tmpdir, 0, "%s: %s", what,
		      strerror(errno));
}

/* A run on disk: an unlinked temporary file (gone even if we crash) and
 * its stdio buffer. Group: u32 keylen, key, u64 rows, u64 bytes, then rows
 * of i64 time, u32 len, payload (host byte order: the file never leaves
 * this process). */
typedef struct runfile {
	FILE *fp;
	char *buf;
} runfile;

#define RUN_BUF (1u << 18)

static void runfile_close(runfile *rf)
{
	if (rf->fp)
		fclose(rf->fp);
	free(rf->buf);
	rf->fp = NULL;
	rf->buf = NULL;
}

static int tmp_run(ing *g, runfile *rf)
{
	char path[512];
	snprintf(path, sizeof path, "%s/cs-ingest.XXXXXX", g->tmpdir);
	rf->fp = NULL;
	/* glibc sizes a buffer it allocates by the block size (4 KiB reads in
	 * the merge), and a buffer set after the first I/O is ignored. */
	if (!(rf->buf = malloc(RUN_BUF)))
		return nomem(g);
	int fd = mkstemp(path);
	if (fd < 0) {
		io_err(g, "cannot create a temporary file");
		runfile_close(rf);
		return -1;
	}
	unlink(path);
	if (!(rf->fp = fdopen(fd, "w+b"))) {
		close(fd);
		io_err(g, "cannot open a temporary file");
		runfile_close(rf);
		return -1;
	}
	setvbuf(rf->fp, rf->buf, _IOFBF, RUN_BUF);
	return 0;
}

static int spill(ing *g, const run *r)
{
	if (cs_grow((void **)&g->runs, &g->capruns, g->nruns + 1, sizeof *g->runs) < 0)
		return nomem(g);
	if (tmp_run(g, &g->runs[g->nruns]) < 0)
		return -1;
	FILE *fp = g->runs[g->nruns++].fp;
	cs_buf b = { 0 };
	int rc = 0;
	for (size_t i = 0; i < r->nkeys && rc == 0; i++) {
		const gkey *k = &r->keys[r->order[i]];
		uint32_t kl = k->len;
		uint64_t n = r->start[i + 1] - r->start[i], bytes = 0;
		for (size_t j = r->start[i]; j < r->start[i + 1]; j++)
			bytes += 12 + r->rows[j].len;
		if (cs_buf_reserve(&b, 20 + kl + bytes) < 0) {
			rc = nomem(g);
			break;
		}
		uint8_t *d = b.p + b.n;
		memcpy(d, &kl, 4);
		memcpy(d + 4, k->s, kl);
		d += 4 + kl;
		memcpy(d, &n, 8);
		memcpy(d + 8, &bytes, 8);
		d += 16;
		for (size_t j = r->start[i]; j < r->start[i + 1]; j++) {
			const srow *s = &r->rows[j];
			if (j + 8 < r->nrows)
				__builtin_prefetch(r->rows[j + 8].p);
			memcpy(d, &s->t, 8);
			memcpy(d + 8, &s->len, 4);
			memcpy(d + 12, s->p, s->len);
			d += 12 + s->len;
		}
		b.n = (size_t)(d - b.p);
		if (b.n >= (1u << 20) || i + 1 == r->nkeys) {
			if (fwrite(b.p, 1, b.n, fp) != b.n)
				rc = io_err(g, "cannot write a temporary file");
			b.n = 0;
		}
	}
	free(b.p);
	if (rc == 0 && fflush(fp) != 0)
		rc = io_err(g, "cannot write a temporary file");
	if (rc == 0)
		g->st->runs++;
	return rc;
}

#define MAX_RUNS 64

typedef struct cursor {
	FILE *fp;
	int has;
	cs_buf key;
	uint64_t n, bytes;
} cursor;

static int cursor_head(ing *g, cursor *c)
{
	uint32_t kl;
	c->has = 0;
	if (fread_unlocked(&kl, 4, 1, c->fp) != 1)
		return ferror(c->fp) ? io_err(g, "cannot read a temporary file") : 0;
	c->key.n = 0;
	if (cs_buf_reserve(&c->key, kl + 1) < 0)
		return nomem(g);
	if (fread_unlocked(c->key.p, 1, kl, c->fp) != kl || fread_unlocked(&c->n, 8, 1, c->fp) != 1 ||
	    fread_unlocked(&c->bytes, 8, 1, c->fp) != 1)
		return cs_err(g->err, CS_ERR_IO, g->tmpdir, 0, "temporary file cut short");
	c->key.n = kl;
	c->has = 1;
	return 0;
}

/* Write one group in the run file layout. */
static int put_group(ing *g, FILE *to, const char *key, uint32_t kl, const srow *rows,
		     size_t nr)
{
	uint64_t n = nr, bytes = 0;
	for (size_t j = 0; j < nr; j++)
		bytes += 12 + rows[j].len;
	fwrite(&kl, 4, 1, to);
	fwrite(key, 1, kl, to);
	fwrite(&n, 8, 1, to);
	fwrite(&bytes, 8, 1, to);
	for (size_t j = 0; j < nr; j++) {
		fwrite(&rows[j].t, 8, 1, to);
		fwrite(&rows[j].len, 4, 1, to);
		fwrite(rows[j].p, 1, rows[j].len, to);
	}
	return ferror(to) ? io_err(g, "cannot write a temporary file") : 0;
}

/* Merged groups on their way out: keys and payloads in pay, rows sorted
 * by time within each group (p an offset into pay until handed over). */
typedef struct mgroup {
	size_t koff, klen, r0, n;
} mgroup;

typedef struct mbatch {
	cs_buf pay;
	srow *rows;
	size_t nrows, caprows;
	mgroup *grp;
	size_t ngrp, capgrp;
} mbatch;

static void mbatch_free(mbatch *b)
{
	free(b->pay.p);
	free(b->rows);
	free(b->grp);
	memset(b, 0, sizeof *b);
}

/* Turns a batch into records in its own thread while the merge goes on. */
/* A background thread's handle and outcome (the emitter's, the flusher's). */
typedef struct bgjob {
	pthread_t tid;
	int active, rc;
	cs_error err;
} bgjob;

/* Wait for a background job; its error becomes the run's. */
static int bgjob_wait(ing *g, bgjob *j)
{
	if (!j->active)
		return 0;
	pthread_join(j->tid, NULL);
	j->active = 0;
	if (j->rc < 0) {
		*g->err = j->err;
		return -1;
	}
	return 0;
}

typedef struct emitter {
	ing *g;
	mbatch *b;
	bgjob job;
} emitter;

static int emit_batch(ing *g, const mbatch *b)
{
	for (size_t i = 0; i < b->ngrp; i++) {
		const mgroup *m = &b->grp[i];
		if (emit_group(g, (const char *)b->pay.p + m->koff, m->klen, b->rows + m->r0,
			       m->n, b->nrows - m->r0) < 0)
			return -1;
	}
	return 0;
}

static void *emit_thread(void *arg)
{
	emitter *e = arg;
	thread_err = &e->job.err;
	e->job.rc = emit_batch(e->g, e->b);
	thread_err = NULL;
	return NULL;
}


/* Write out the batch: into the run file to, or as records (in the
 * background, swapping *b for the batch the emitter is done with). */
static int batch_out(ing *g, FILE *to, emitter *e, mbatch **b, mbatch **spare)
{
	mbatch *x = *b;
	for (size_t j = 0; j < x->nrows; j++)
		x->rows[j].p = x->pay.p + (uintptr_t)x->rows[j].p;
	if (to) {
		for (size_t i = 0; i < x->ngrp; i++) {
			const mgroup *m = &x->grp[i];
			if (put_group(g, to, (const char *)x->pay.p + m->koff, (uint32_t)m->klen,
				      x->rows + m->r0, m->n) < 0)
				return -1;
		}
	} else {
		if (bgjob_wait(g, &e->job) < 0)
			return -1;
		e->g = g;
		e->b = x;
		e->job.rc = 0;
		if (pthread_create(&e->job.tid, NULL, emit_thread, e) != 0) {
			if (emit_batch(g, x) < 0)
				return -1;
		} else {
			e->job.active = 1;
			*b = *spare;
			*spare = x;
		}
	}
	x = *b;
	x->pay.n = 0;
	x->nrows = 0;
	x->ngrp = 0;
	return 0;
}

#define MBATCH_BYTES (2u << 20)

/* Merge the spilled runs group by group into records, or (compact) into
 * one run that replaces them. */
static int merge_runs(ing *g, int compact)
{
	size_t k = g->nruns;
	runfile tr = { 0 };
	if (compact && tmp_run(g, &tr) < 0)
		return -1;
	FILE *to = tr.fp;
	cursor *cs = calloc(k ? k : 1, sizeof *cs);
	mbatch bb[2];
	mbatch *b = &bb[0], *spare = &bb[1];
	emitter em;
	int rc = -1;
	memset(bb, 0, sizeof bb);
	memset(&em, 0, sizeof em);
	if (!cs) {
		runfile_close(&tr);
		return nomem(g);
	}
	for (size_t i = 0; i < k; i++) {
		cs[i].fp = g->runs[i].fp;
		if (fseeko(cs[i].fp, 0, SEEK_SET) != 0) {
			io_err(g, "cannot rewind a temporary file");
			goto out;
		}
		if (cursor_head(g, &cs[i]) < 0)
			goto out;
	}
	for (;;) {
		cursor *min = NULL;
		for (size_t i = 0; i < k; i++) {
			if (!cs[i].has)
				continue;
			if (!min || cs_ingest_keycmp((char *)cs[i].key.p, cs[i].key.n,
						     (char *)min->key.p, min->key.n) < 0)
				min = &cs[i];
		}
		if (!min)
			break;
		/* the key goes first into pay: min's buffer is reused when it advances */
		size_t kl = min->key.n, koff = b->pay.n, r0 = b->nrows, nr = r0;
		if (cs_buf_reserve(&b->pay, kl) < 0 ||
		    cs_grow((void **)&b->grp, &b->capgrp, b->ngrp + 1, sizeof *b->grp) < 0) {
			nomem(g);
			goto out;
		}
		memcpy(b->pay.p + koff, min->key.p, kl);
		b->pay.n += kl;
		for (size_t i = 0; i < k; i++) {
			cursor *c = &cs[i];
			if (!c->has || c->key.n != kl || memcmp(c->key.p, b->pay.p + koff, kl))
				continue;
			if (cs_buf_reserve(&b->pay, c->bytes) < 0 ||
			    cs_grow((void **)&b->rows, &b->caprows, nr + c->n + 1, sizeof *b->rows) < 0) {
				nomem(g);
				goto out;
			}
			if (fread_unlocked(b->pay.p + b->pay.n, 1, c->bytes, c->fp) != c->bytes) {
				cs_err(g->err, CS_ERR_IO, g->tmpdir, 0, "cannot read a temporary file");
				goto out;
			}
			/* offsets for now: pay may move */
			size_t at = b->pay.n;
			for (uint64_t j = 0; j < c->n; j++) {
				uint32_t len;
				memcpy(&b->rows[nr].t, b->pay.p + at, 8);
				memcpy(&len, b->pay.p + at + 8, 4);
				b->rows[nr].p = (const uint8_t *)(uintptr_t)(at + 12);
				b->rows[nr].len = len;
				at += 12 + (size_t)len;
				nr++;
			}
			b->pay.n += c->bytes;
			if (cursor_head(g, c) < 0)
				goto out;
		}
		if (sort_rows(b->rows + r0, nr - r0, &g->tmp, &g->tmpcap) < 0) {
			nomem(g);
			goto out;
		}
		b->nrows = nr;
		b->grp[b->ngrp++] = (mgroup){ koff, kl, r0, nr - r0 };
		if (b->pay.n >= MBATCH_BYTES && batch_out(g, to, &em, &b, &spare) < 0)
			goto out;
	}
	if (b->ngrp && batch_out(g, to, &em, &b, &spare) < 0)
		goto out;
	if (bgjob_wait(g, &em.job) < 0)
		goto out;
	rc = 0;
	if (to) {
		if (fflush(to) != 0) {
			rc = io_err(g, "cannot write a temporary file");
		} else {
			for (size_t i = 0; i < k; i++)
				runfile_close(&g->runs[i]);
			g->runs[0] = tr;
			g->nruns = 1;
			tr.fp = NULL;
			tr.buf = NULL;
		}
	}
out:
	if (em.job.active) {
		pthread_join(em.job.tid, NULL);
		em.job.active = 0;
	}
	runfile_close(&tr);
	for (size_t i = 0; i < k; i++)
		free(cs[i].key.p);
	free(cs);
	mbatch_free(&bb[0]);
	mbatch_free(&bb[1]);
	return rc;
}

static void close_runs(ing *g)
{
	for (size_t i = 0; i < g->nruns; i++)
		runfile_close(&g->runs[i]);
	free(g->runs);
	g->runs = NULL;
	g->nruns = 0;
}

/* ------------------------------------------------------------ reading */

typedef struct thread_arg {
	chunk *c;
	pthread_t tid;
} thread_arg;

static void *parse_thread(void *p)
{
	chunk_parse(p);
	return NULL;
}

/* A fresh chunk, from the pool when it has one. */
static chunk *chunk_new(ing *g)
{
	chunk *c = NULL;
	if (g) {
		pthread_mutex_lock(&g->pool_mu);
		if (g->npool)
			c = g->pool[--g->npool];
		pthread_mutex_unlock(&g->pool_mu);
	}
	if (!c)
		return calloc(1, sizeof(chunk));
	chunk k = *c; /* keep the buffers, reset the rest */
	memset(c, 0, sizeof *c);
	c->arena.p = k.arena.p;
	c->arena.cap = k.arena.cap;
	c->rows = k.rows;
	c->caprows = k.caprows;
	c->keys = k.keys;
	c->capkeys = k.capkeys;
	return c;
}

/* Give a chunk back to the pool (or free it). */
static void chunk_put(ing *g, chunk *c)
{
	if (!c)
		return;
	if (g) {
		pthread_mutex_lock(&g->pool_mu);
		if (g->npool < POOL_MAX) {
			g->pool[g->npool++] = c;
			c = NULL;
		}
		pthread_mutex_unlock(&g->pool_mu);
	}
	chunk_free(c);
}

/* Drop what a parsed chunk no longer needs. */
static void chunk_trim(chunk *c)
{
	free(c->ht);
	c->ht = NULL;
	c->htcap = 0;
	cs_csv_free(&c->csv);
}

typedef struct pending {
	chunk **c;
	size_t n, cap;
	size_t mem;
} pending;

static void pending_clear(ing *g, pending *p)
{
	for (size_t i = 0; i < p->n; i++)
		chunk_put(g, p->c[i]);
	p->n = 0;
	p->mem = 0;
}

/* Turn the pending chunks into a run on disk (in the flush thread). */
static int flush_pending(ing *g, pending *p)
{
	run r;
	if (!p->n)
		return 0;
	if (run_build(p->c, p->n, &r, &g->tmp, &g->tmpcap) < 0)
		return nomem(g);
	int rc = spill(g, &r);
	run_free(&r);
	pending_clear(g, p);
	/* bound the open files: merge the runs so far into one */
	if (rc == 0 && g->nruns >= MAX_RUNS)
		rc = merge_runs(g, 1);
	return rc;
}

/* Flush pending chunks in the background while parsing goes on. */
typedef struct flusher {
	ing *g;
	pending p;
	bgjob job;
	int done; /* the thread has finished (atomic) */
} flusher;

static void *flush_thread(void *arg)
{
	flusher *f = arg;
	thread_err = &f->job.err;
	f->job.rc = flush_pending(f->g, &f->p);
	thread_err = NULL;
	__atomic_store_n(&f->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Hand the pending chunks to the background flusher (or flush them here). */
static int flush_async(ing *g, flusher *f, pending *p)
{
	if (bgjob_wait(g, &f->job) < 0)
		return -1;
	pending t = f->p;
	f->p = *p;
	*p = t;
	p->n = 0;
	p->mem = 0;
	f->g = g;
	f->job.rc = 0;
	f->done = 0;
	if (pthread_create(&f->job.tid, NULL, flush_thread, f) != 0)
		return flush_pending(g, &f->p);
	f->job.active = 1;
	return 0;
}

/* Header names of the first record of text (after a BOM); *used bytes. */
static int read_header(const cs_ingest_map *m, const char *text, size_t len,
		       size_t *used, char ***names, int *nnames, int *total,
		       const char *path, cs_error *err)
{
	cs_csv x;
	cs_csv_init(&x, m->sep);
	int rc = 0, r = cs_csv_first(&x, text, len, used);
	if (r < 0)
		rc = cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	else if (r == 2)
		rc = cs_err(err, CS_ERR_FORMAT, path, 1, "broken quoting in the header");
	if (rc == 0) {
		size_t nf = x.nf;
		*total = (int)nf;
		while (nf > 0 && x.f[nf - 1].n == 0)
			nf--;
		*names = calloc(nf + 1, sizeof **names);
		if (!*names)
			rc = cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
		for (size_t i = 0; rc == 0 && i < nf; i++)
			if (!((*names)[i] = strndup(x.f[i].p, x.f[i].n)))
				rc = cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
		*nnames = (int)nf;
	}
	cs_csv_free(&x);
	return rc;
}

static void free_names(char **names, int n)
{
	if (!names)
		return;
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* Output schema from the primary mapping (names from its header). */
static int make_schema(ing *g, const cmap *cm, char **names, int nnames)
{
	const cs_ingest_opts *o = g->o;
	const cs_ingest_map *m = cm->m;
	cs_error *err = g->err;
	cs_schema *s = cs_schema_new();
	if (!s)
		return nomem(g);
	g->schema = s;
	g->f_user = g->f_session = g->f_part = g->f_action = g->f_time = g->f_evsession = -1;
	g->seq_user = cm->seq_user;
	g->ev_session = cm->ev_session;
	g->has_action = m->action_mode != CS_ACTION_NONE;
	g->has_time = m->time_format != CS_TIME_NONE;
	g->m = m;
	if ((o->by == CS_BY_USER || g->seq_user) &&
	    (g->f_user = cs_schema_add(s, "user", CS_SEQ, CS_STRING, err)) < 0)
		return -1;
	if (o->by == CS_BY_SESSION &&
	    (g->f_session = cs_schema_add(s, "session", CS_SEQ, CS_STRING, err)) < 0)
		return -1;
	if (o->gap > 0 && (g->f_part = cs_schema_add(s, "part", CS_SEQ, CS_INT64, err)) < 0)
		return -1;
	if ((g->f_item = cs_schema_add(s, "item", CS_EVENT, CS_STRING, err)) < 0)
		return -1;
	if (g->has_action && (g->f_action = cs_schema_add(s, "action", CS_EVENT, CS_STRING, err)) < 0)
		return -1;
	if (g->has_time && (g->f_time = cs_schema_add(s, "time", CS_EVENT, CS_INT64, err)) < 0)
		return -1;
	if (g->ev_session &&
	    (g->f_evsession = cs_schema_add(s, "session", CS_EVENT, CS_STRING, err)) < 0)
		return -1;
	for (size_t i = 0; i < m->nkeep; i++) {
		char nm[64];
		const char *name = m->keep[i].name;
		if (!name) {
			if (m->header && cm->c_keep[i] < nnames)
				name = names[cm->c_keep[i]];
			else {
				snprintf(nm, sizeof nm, "col%d", cm->c_keep[i] + 1);
				name = nm;
			}
		}
		if ((g->f_keep[i] = cs_schema_add(s, name, CS_EVENT, m->keep[i].type, err)) < 0) {
			err->line = 0;
			return cs_err(err, CS_ERR_USAGE, NULL, 0, "field '%s' kept twice or clashes with a standard field", name);
		}
	}
	char v[64];
	if (cs_schema_set_meta(s, "source", o->source ? o->source : "csv", err) < 0 ||
	    cs_schema_set_meta(s, "grouped_by", o->by == CS_BY_SESSION ? "session" : "user", err) < 0 ||
	    cs_schema_set_meta(s, "key_order", "digit-only keys numerically, then bytewise", err) < 0 ||
	    cs_schema_set_meta(s, "time_unit", "s", err) < 0)
		return -1;
	if (o->gap > 0) {
		snprintf(v, sizeof v, "%lld", (long long)o->gap);
		if (cs_schema_set_meta(s, "session_gap", v, err) < 0)
			return -1;
	}
	if (o->collapse && cs_schema_set_meta(s, "collapse_repeats", "1", err) < 0)
		return -1;
	if (o->min_len > 1) {
		snprintf(v, sizeof v, "%zu", o->min_len);
		if (cs_schema_set_meta(s, "min_len", v, err) < 0)
			return -1;
	}
	return cs_record_init(&g->rec, s, err);
}

/* The second mapping must lay out rows as the first does. */
static int same_layout(const cmap *a, const cmap *b)
{
	if (a->seq_user != b->seq_user || a->ev_session != b->ev_session ||
	    (a->m->action_mode == CS_ACTION_NONE) != (b->m->action_mode == CS_ACTION_NONE) ||
	    (a->m->time_format == CS_TIME_NONE) != (b->m->time_format == CS_TIME_NONE) ||
	    a->m->nkeep != b->m->nkeep)
		return 0;
	for (size_t i = 0; i < a->m->nkeep; i++)
		if (a->m->keep[i].type != b->m->keep[i].type)
			return 0;
	return 1;
}

/* Read one input into chunks (spilling runs when over budget). */
static int read_input(ing *g, const char *path, int secondary, pending *pend,
		      cs_buf *bufs, size_t block, size_t limit, long *reported)
{
	const cs_ingest_opts *o = g->o;
	const cs_ingest_map *m = secondary ? &o->map2 : &o->map;
	cs_error *err = g->err;
	int nthreads = o->threads > 0 ? o->threads : 1;
	int use_stdin = !path || !strcmp(path, "-");
	const char *name = use_stdin ? "<stdin>" : path;
	cs_csv_reader rd = { 0 };
	cmap cm;
	char **names = NULL;
	int nnames = 0, rc = -1;
	chunk **batch = calloc((size_t)nthreads, sizeof *batch);
	thread_arg *ta = calloc((size_t)nthreads, sizeof *ta);
	if (!batch || !ta) {
		nomem(g);
		goto out;
	}
	rd.name = name;
	rd.fp = use_stdin ? stdin : fopen(path, "rb");
	if (!rd.fp) {
		cs_err(err, CS_ERR_IO, path, 0, "cannot open: %s", strerror(errno));
		goto out;
	}
	long base = 0;
	int first = 1, total = 0;
	for (;;) {
		int nb = 0;
		for (; nb < nthreads; nb++) {
			int quoted = 0;
			int r = cs_csv_read_block(&rd, &bufs[nb], block, &quoted, err);
			if (r < 0)
				goto out;
			if (r == 0)
				break;
			size_t off = 0;
			if (first) {
				first = 0;
				if (bufs[nb].n >= 3 && !memcmp(bufs[nb].p, "\xef\xbb\xbf", 3))
					off = 3;
				if (m->header) {
					size_t used = 0;
					if (read_header(m, (char *)bufs[nb].p + off, bufs[nb].n - off, &used,
							&names, &nnames, &total, name, err) < 0)
						goto out;
					off += used;
					base = 1;
					g->st->bytes += off;
				}
				if (compile_map(&cm, o, m, names, nnames, name, err) < 0)
					goto out;
				cm.secondary = secondary;
				cm.total = total > nnames ? total : nnames;
				if (!g->schema) {
					if (make_schema(g, &cm, names, nnames) < 0)
						goto out;
					if (!(g->w = cs_writer_open(g->out, g->schema, g->wo, err)))
						goto out;
					g->cm1 = cm;
				} else if (!same_layout(&g->cm1, &cm)) {
					cs_err(err, CS_ERR_USAGE, name, 0,
					       "the second input's fields do not match the first's");
					goto out;
				}
			}
			chunk *c = chunk_new(g);
			if (!c) {
				nomem(g);
				goto out;
			}
			c->text = (char *)bufs[nb].p + off;
			c->len = bufs[nb].n - off;
			c->quoted = quoted;
			c->cm = &cm;
			batch[nb] = c;
		}
		if (nb == 0)
			break;
		for (int i = 1; i < nb; i++) {
			ta[i].c = batch[i];
			if (pthread_create(&ta[i].tid, NULL, parse_thread, batch[i]) != 0)
				chunk_parse(batch[i]), ta[i].c = NULL;
		}
		chunk_parse(batch[0]);
		for (int i = 1; i < nb; i++)
			if (ta[i].c)
				pthread_join(ta[i].tid, NULL);
		for (int i = 0; i < nb; i++) {
			chunk *c = batch[i];
			batch[i] = NULL;
			cs_ingest_stats *st = g->st;
			st->bytes += c->len;
			st->rows += c->nread;
			st->bad += c->nbad;
			st->skipped += c->nskipped;
			if (c->nomem) {
				chunk_free(c);
				nomem(g);
				goto out;
			}
			if (c->nbad && o->strict) {
				cs_err(err, CS_ERR_FORMAT, name, base + c->bad[0].line, "%s",
				       c->bad[0].msg);
				chunk_free(c);
				goto out;
			}
			for (int k = 0; k < c->nbadrec && *reported < o->max_report; k++) {
				cs_error e;
				cs_err(&e, CS_ERR_FORMAT, name, base + c->bad[k].line, "%s", c->bad[k].msg);
				(*reported)++;
				if (o->on_bad)
					o->on_bad(o->ctx, &e);
			}
			base += c->nlines;
			chunk_trim(c);
			c->text = NULL;
			if (cs_grow((void **)&pend->c, &pend->cap, pend->n + 1, sizeof *pend->c) < 0) {
				chunk_free(c);
				nomem(g);
				goto out;
			}
			pend->c[pend->n++] = c;
			pend->mem += chunk_mem(c);
		}
		progress(g, 0);
		/* while the last flush runs, parsing goes on up to 1.5 times the limit
		 * rather than wait for it */
		if (pend->mem > limit &&
		    (!g->fl->job.active || __atomic_load_n(&g->fl->done, __ATOMIC_ACQUIRE) ||
		     pend->mem > limit + limit / 2) &&
		    flush_async(g, g->fl, pend) < 0)
			goto out;
	}
	if (first) { /* empty input: still needs a mapping and a schema */
		if (m->header && (m->user || m->item) &&
		    !all_digits(m->item ? m->item : m->user, strlen(m->item ? m->item : m->user))) {
			cs_err(err, CS_ERR_FORMAT, name, 0, "empty input: no header line");
			goto out;
		}
		if (compile_map(&cm, o, m, NULL, 0, name, err) < 0)
			goto out;
		if (!g->schema && (make_schema(g, &cm, NULL, 0) < 0 ||
				   !(g->w = cs_writer_open(g->out, g->schema, g->wo, err))))
			goto out;
	}
	rc = 0;
out:
	for (int i = 0; batch && i < nthreads; i++)
		chunk_free(batch[i]);
	free(batch);
	free(ta);
	cs_csv_reader_free(&rd);
	free_names(names, nnames);
	if (rd.fp && !use_stdin)
		fclose(rd.fp);
	return rc;
}

/* ------------------------------------------------------------ driver */

int cs_ingest(const cs_ingest_opts *o, const char *const *paths, size_t npaths,
	      const char *out, const cs_writer_opts *wo, cs_ingest_stats *st,
	      cs_error *err)
{
	ing g;
	cs_ingest_stats st0;
	memset(&g, 0, sizeof g);
	if (!st)
		st = &st0;
	memset(st, 0, sizeof *st);
	g.o = o;
	g.st = st;
	g.err = err;
	g.out = out;
	g.wo = wo;
	g.last_action = -1;
	pthread_mutex_init(&g.pool_mu, NULL);
	g.have_second = o->second != NULL;
	const char *td = o->tmpdir ? o->tmpdir : getenv("TMPDIR");
	snprintf(g.tmpdir, sizeof g.tmpdir, "%s", td && *td ? td : "/tmp");
	int nthreads = o->threads > 0 ? o->threads : 1;
	uint64_t mem = o->mem ? o->mem : (uint64_t)256 << 20;
	size_t block = o->block;
	if (!block) {
		block = (size_t)(mem / 16 / (uint64_t)nthreads);
		if (block > (4u << 20))
			block = 4u << 20;
		if (block < 4096)
			block = 4096;
	}
	/* pending chunks, plus as much again being flushed, plus the sort */
	size_t limit = (size_t)(mem / 4) > nthreads * block ?
		(size_t)(mem / 4) - nthreads * block : block;
	pending pend = { 0 };
	flusher fl;
	memset(&fl, 0, sizeof fl);
	g.fl = &fl;
	cs_buf *bufs = calloc((size_t)nthreads, sizeof *bufs);
	long reported = 0;
	int rc = -1;
	run r = { 0 };
	if (!bufs) {
		nomem(&g);
		goto out;
	}
	if (o->by == CS_BY_SESSION && o->map.seqlines) {
		cs_err(err, CS_ERR_USAGE, NULL, 0, "'seqlines' input has no sessions");
		goto out;
	}
	const char *stdin_only[] = { "-" };
	if (npaths == 0) {
		paths = stdin_only;
		npaths = 1;
	}
	for (size_t i = 0; i < npaths; i++)
		if (read_input(&g, paths[i], 0, &pend, bufs, block, limit, &reported) < 0)
			goto out;
	if (o->second && read_input(&g, o->second, 1, &pend, bufs, block, limit, &reported) < 0)
		goto out;
	for (int i = 0; i < nthreads; i++) {
		free(bufs[i].p);
		bufs[i].p = NULL;
	}
	if (bgjob_wait(&g, &fl.job) < 0)
		goto out;
	st->phase = 1;
	progress(&g, 1);
	if (g.nruns == 0) {
		if (run_build(pend.c, pend.n, &r, &g.tmp, &g.tmpcap) < 0) {
			nomem(&g);
			goto out;
		}
		if (emit_run(&g, &r) < 0)
			goto out;
	} else {
		if (flush_pending(&g, &pend) < 0 || merge_runs(&g, 0) < 0)
			goto out;
	}
	rc = cs_writer_close(g.w, err);
	g.w = NULL;
	progress(&g, 1);
out:
	if (fl.job.active) {
		pthread_join(fl.job.tid, NULL);
		fl.job.active = 0;
	}
	pending_clear(NULL, &fl.p);
	free(fl.p.c);
	if (g.w)
		cs_writer_abort(g.w);
	run_free(&r);
	pending_clear(NULL, &pend);
	free(pend.c);
	for (int i = 0; bufs && i < nthreads; i++)
		free(bufs[i].p);
	free(bufs);
	close_runs(&g);
	cs_record_free(&g.rec);
	cs_schema_free(g.schema);
	free(g.tmp);
	while (g.npool)
		chunk_free(g.pool[--g.npool]);
	pthread_mutex_destroy(&g.pool_mu);
	return rc;
}

/* ------------------------------------------------------------ presets */

const char *const cs_ingest_presets[] = {
	"kaggle", "amazon", "pairs", "seqlines", "retail", "diginetica", NULL
};

void cs_ingest_opts_init(cs_ingest_opts *o)
{
	memset(o, 0, sizeof *o);
	o->map.sep = ',';
	o->map.header = 1;
	o->map.time_format = CS_TIME_NONE;
	o->by = CS_BY_USER;
	o->max_report = 5;
	o->threads = 1;
}

/* What a preset sets: the mapping of its export, the grouping of diginetica
 * (by session) and its second input, the purchases. */
typedef struct preset {
	const char *name;
	cs_ingest_map map;
	int by_session;
	const cs_ingest_map *second;
} preset;

static const cs_ingest_map diginetica_purchases = {
	.sep = ';', .header = 1, .user = "userId", .session = "sessionId", .item = "itemId",
	.time = "eventdate", .time_offset = "timeframe", .time_format = CS_TIME_ISO,
	.action_mode = CS_ACTION_CONST, .action_value = "purchase",
};

static const preset presets[] = {
	{ .name = "kaggle", .map = {
		.sep = ',', .header = 1, .user = "user_id", .session = "user_session",
		.item = "product_id", .action = "event_type", .action_mode = CS_ACTION_COLUMN,
		.time = "event_time", .time_format = CS_TIME_ISO,
		.nkeep = 4, .keep = {
			{ "category", "category_id", CS_STRING },
			{ "category_code", "category_code", CS_STRING },
			{ "brand", "brand", CS_STRING },
			{ "price", "price", CS_FLOAT32 } } } },
	{ .name = "amazon", .map = {
		.sep = ',', .header = 1, .user = "1", .item = "2", .time = "4",
		.time_format = CS_TIME_UNIX, .action_mode = CS_ACTION_CONST, .action_value = "rate",
		.nkeep = 1, .keep = { { "rating", "3", CS_FLOAT32 } } } },
	{ .name = "pairs", .map = { .sep = ' ', .header = 0, .user = "1", .item = "2" } },
	{ .name = "seqlines", .map = { .sep = ' ', .header = 0, .seqlines = 1, .user = "1" } },
	{ .name = "retail", .map = {
		.sep = ',', .header = 1, .user = "CustomerID", .item = "StockCode",
		.action = "InvoiceNo", .action_mode = CS_ACTION_INVOICE, .time = "InvoiceDate",
		.time_format = CS_TIME_AUTO, .skip_missing_key = 1,
		.nkeep = 3, .keep = {
			{ "quantity", "Quantity", CS_INT64 },
			{ "price", "UnitPrice", CS_FLOAT32 },
			{ "invoice", "InvoiceNo", CS_STRING } } } },
	{ .name = "diginetica", .map = {
		.sep = ';', .header = 1, .user = "user_id", .session = "session_id",
		.item = "item_id", .time = "eventdate", .time_offset = "timeframe",
		.time_format = CS_TIME_ISO, .action_mode = CS_ACTION_CONST, .action_value = "view" },
	  .by_session = 1, .second = &diginetica_purchases },
};

int cs_ingest_preset(cs_ingest_opts *o, const char *name, cs_error *err)
{
	for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
		const preset *p = &presets[i];
		if (strcmp(name, p->name))
			continue;
		o->map = p->map;
		o->source = name;
		if (p->by_session)
			o->by = CS_BY_SESSION;
		if (p->second)
			o->map2 = *p->second;
		return 0;
	}
	return cs_err(err, CS_ERR_USAGE, NULL, 0, "unknown preset '%s'", name);
}
