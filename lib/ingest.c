/*
 * ingest.c - CSV exports to sequence streams: the mapping of columns to
 * fields, and the driver.
 *
 * The main thread reads each input in blocks of whole records
 * (csvread.c); parser threads turn the rows of a block into payloads
 * (the layout in group.h), each with its group key and time, in a chunk of
 * the external sort (extsort.c), which hands the groups back in key order,
 * rows by time, to become records (group.c) written to the caller's
 * writer.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "buf.h"
#include "csvread.h"
#include "extsort.h"
#include "group.h"
#include "ingest.h"

int cs_ingest_keycmp(const char *a, size_t na, const char *b, size_t nb)
{
	return cs_sort_keycmp(a, na, b, nb);
}

/* ------------------------------------------------------------ mappings */

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

/* A non-empty string of digits only. */
static int all_digits(const char *s)
{
	return *s && strspn(s, "0123456789") == strlen(s);
}

/* Resolve a column spec against header names. -1 absent, -2 unknown. */
static int resolve(const char *spec, char **names, int nnames)
{
	if (!spec)
		return -1;
	if (all_digits(spec)) {
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

/* ------------------------------------------------------------ parsing */

#define MAX_BADREC 8

/* A block of text and what its parse found: rows into a chunk of the
 * sort, counts, and the first bad rows. */
typedef struct pjob {
	const char *text;
	size_t len;
	const cmap *cm;
	int quoted; /* the text holds a quote somewhere */
	cs_csv *csv;
	cs_sort_chunk *sc;
	long nlines;
	uint64_t nread, nbad, nskipped;
	struct { long line; char msg[200]; } bad[MAX_BADREC];
	int nbadrec;
	int nomem;
} pjob;

static void bad_row(pjob *c, long line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void bad_row(pjob *c, long line, const char *fmt, ...)
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

static int is_missing(const cs_csv_field *f)
{
	return f->n == 0 || (f->n == 2 && f->p[0] == 'N' && f->p[1] == 'A');
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

/* The bad row of a number that parse_f32 or parse_i64 refused with e. */
static void bad_number(pjob *c, long line, int e, const cs_csv_field *k, const char *what)
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
static int too_long(pjob *c, long line, const cs_csv_field *f, int k)
{
	if (k < 0 || f[k].n <= CS_MAX_STRING)
		return 0;
	bad_row(c, line, "field %d of %zu bytes exceeds the %u MiB limit of a string",
		k + 1, f[k].n, CS_MAX_STRING >> 20);
	return 1;
}

static int process_row(pjob *c, const cs_csv_field *f, size_t nf, long line)
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
			if (!(d = cs_sort_row_begin(c->sc, f[0].p, f[0].n, 0, f[i].n + 12)))
				return -1;
			*d++ = cm->secondary ? CS_ROW_SECOND : 0;
			d = cs_row_put_str(d, f[i].p, f[i].n);
			cs_sort_row_end(c->sc, d);
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
	if (!(d = cs_sort_row_begin(c->sc, key->p, key->n, t, need)))
		return -1;
	*d++ = cm->secondary ? CS_ROW_SECOND : 0;
	if (cm->seq_user) {
		const cs_csv_field *u = &f[cm->c_user];
		d = is_missing(u) ? cs_row_put_str(d, "", 0) : cs_row_put_str(d, u->p, u->n);
	}
	d = cs_row_put_str(d, f[cm->c_item].p, f[cm->c_item].n);
	if (m->action_mode != CS_ACTION_NONE)
		d = cs_row_put_str(d, act, nact);
	if (cm->ev_session)
		d = cs_row_put_str(d, f[cm->c_session].p, f[cm->c_session].n);
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
			d = cs_row_put_str(d, k->p, k->n);
		}
	}
	cs_sort_row_end(c->sc, d);
	return 0;
}

/* Parse the job's text into rows. */
static void job_parse(pjob *c)
{
	cs_csv *x = c->csv;
	long line = 0;
	int r;
	if (cs_sort_chunk_reserve(c->sc, c->len) < 0)
		goto nomem;
	cs_csv_init(x, c->cm->m->sep);
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
	cs_csv_free(x);
	return;
nomem:
	c->nomem = 1;
	c->nlines = x->line;
	cs_csv_free(x);
}

static void *parse_thread(void *p)
{
	job_parse(p);
	return NULL;
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

/* ------------------------------------------------------------ the driver */

/* An input being read. */
typedef struct input {
	cs_csv_reader rd;
	int use_stdin, secondary, first;
	const cs_ingest_map *m;
	cmap cm;
	char **names;
	int nnames;
	long base;   /* lines before the current block */
	int ahead;   /* its first block is read, in bufs[0] from ahead_off */
	size_t ahead_off;
	int ahead_quoted;
} input;

struct cs_ingest {
	const cs_ingest_opts *o;
	cs_ingest_stats *st, st0;
	const char *const *paths;
	size_t npaths;
	int nthreads;
	size_t block;
	cs_buf *bufs;    /* a block per thread */
	cs_csv *csv;     /* a splitter per thread */
	cs_sort *sort;
	cs_grouper gr;
	int have_schema;
	cmap cm1;        /* the first input's mapping */
	input in;        /* the input being read */
	int in_open;
	long reported;
};

static int nomem(cs_error *err)
{
	return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
}

static void input_close(input *in)
{
	cs_csv_reader_free(&in->rd);
	free_names(in->names, in->nnames);
	if (in->rd.fp && !in->use_stdin)
		fclose(in->rd.fp);
	memset(in, 0, sizeof *in);
}

static int input_open(cs_ingest *g, input *in, const char *path, int secondary, cs_error *err)
{
	memset(in, 0, sizeof *in);
	in->use_stdin = !path || !strcmp(path, "-");
	in->rd.name = in->use_stdin ? "<stdin>" : path;
	in->secondary = secondary;
	in->first = 1;
	in->m = secondary ? &g->o->map2 : &g->o->map;
	in->rd.fp = in->use_stdin ? stdin : fopen(path, "rb");
	if (!in->rd.fp)
		return cs_err(err, CS_ERR_IO, path, 0, "cannot open: %s", strerror(errno));
	return 0;
}

/* The output schema, from the first input's mapping and header. */
static int make_schema(cs_ingest *g, const cmap *cm, char **names, int nnames, cs_error *err)
{
	const cs_ingest_map *m = cm->m;
	cs_group_layout l;
	char nm[CS_INGEST_MAX_KEEP][64];
	memset(&l, 0, sizeof l);
	l.m = m;
	l.seq_user = cm->seq_user;
	l.ev_session = cm->ev_session;
	for (size_t i = 0; i < m->nkeep; i++) {
		l.keep_name[i] = m->keep[i].name;
		if (!l.keep_name[i]) {
			if (m->header && cm->c_keep[i] < nnames) {
				l.keep_name[i] = names[cm->c_keep[i]];
			} else {
				snprintf(nm[i], sizeof nm[i], "col%d", cm->c_keep[i] + 1);
				l.keep_name[i] = nm[i];
			}
		}
	}
	g->have_schema = 1;
	g->cm1 = *cm;
	return cs_grouper_init(&g->gr, g->o, &l, g->st, err);
}

/* The start of an input in its first block b: a BOM, the header, the
 * mapping (the schema for the first input). *off: where the rows begin. */
static int input_start(cs_ingest *g, input *in, const cs_buf *b, size_t *off, cs_error *err)
{
	const cs_ingest_map *m = in->m;
	const char *name = in->rd.name;
	int total = 0;
	in->first = 0;
	*off = 0;
	if (b->n >= 3 && !memcmp(b->p, "\xef\xbb\xbf", 3))
		*off = 3;
	if (m->header) {
		size_t used = 0;
		if (read_header(m, (char *)b->p + *off, b->n - *off, &used, &in->names, &in->nnames,
				&total, name, err) < 0)
			return -1;
		*off += used;
		in->base = 1;
		g->st->bytes += *off;
	}
	if (compile_map(&in->cm, g->o, m, in->names, in->nnames, name, err) < 0)
		return -1;
	in->cm.secondary = in->secondary;
	in->cm.total = total > in->nnames ? total : in->nnames;
	if (!g->have_schema)
		return make_schema(g, &in->cm, in->names, in->nnames, err);
	if (!same_layout(&g->cm1, &in->cm))
		return cs_err(err, CS_ERR_USAGE, name, 0,
			      "the second input's fields do not match the first's");
	return 0;
}

/* An input without a byte: it still needs a mapping and a schema. */
static int input_empty(cs_ingest *g, input *in, cs_error *err)
{
	const cs_ingest_map *m = in->m;
	in->first = 0;
	if (m->header && (m->user || m->item) && !all_digits(m->item ? m->item : m->user))
		return cs_err(err, CS_ERR_FORMAT, in->rd.name, 0, "empty input: no header line");
	if (compile_map(&in->cm, g->o, m, NULL, 0, in->rd.name, err) < 0)
		return -1;
	if (!g->have_schema)
		return make_schema(g, &in->cm, NULL, 0, err);
	return 0;
}

/* Read the rest of an input into the sort, nthreads blocks at a time. */
static int input_read(cs_ingest *g, input *in, cs_error *err)
{
	const cs_ingest_opts *o = g->o;
	cs_ingest_stats *st = g->st;
	int nthreads = g->nthreads, rc = -1;
	pjob *jobs = calloc((size_t)nthreads, sizeof *jobs);
	pthread_t *tid = calloc((size_t)nthreads, sizeof *tid);
	int *threaded = calloc((size_t)nthreads, sizeof *threaded);
	if (!jobs || !tid || !threaded) {
		nomem(err);
		goto out;
	}
	for (;;) {
		int nb = 0;
		for (; nb < nthreads; nb++) {
			int quoted = 0;
			size_t off = 0;
			if (nb == 0 && in->ahead) {
				in->ahead = 0;
				off = in->ahead_off;
				quoted = in->ahead_quoted;
			} else {
				int r = cs_csv_read_block(&in->rd, &g->bufs[nb], g->block, &quoted, err);
				if (r < 0)
					goto out;
				if (r == 0)
					break;
				if (in->first && input_start(g, in, &g->bufs[nb], &off, err) < 0)
					goto out;
			}
			pjob *c = &jobs[nb];
			memset(c, 0, sizeof *c);
			if (!(c->sc = cs_sort_chunk_new(g->sort))) {
				nomem(err);
				goto out;
			}
			c->text = (char *)g->bufs[nb].p + off;
			c->len = g->bufs[nb].n - off;
			c->quoted = quoted;
			c->cm = &in->cm;
			c->csv = &g->csv[nb];
		}
		if (nb == 0)
			break;
		for (int i = 1; i < nb; i++) {
			threaded[i] = pthread_create(&tid[i], NULL, parse_thread, &jobs[i]) == 0;
			if (!threaded[i])
				job_parse(&jobs[i]);
		}
		job_parse(&jobs[0]);
		for (int i = 1; i < nb; i++)
			if (threaded[i])
				pthread_join(tid[i], NULL);
		for (int i = 0; i < nb; i++) {
			pjob *c = &jobs[i];
			st->bytes += c->len;
			st->rows += c->nread;
			st->bad += c->nbad;
			st->skipped += c->nskipped;
			if (c->nomem) {
				nomem(err);
				goto out;
			}
			if (c->nbad && o->strict) {
				cs_err(err, CS_ERR_FORMAT, in->rd.name, in->base + c->bad[0].line, "%s",
				       c->bad[0].msg);
				goto out;
			}
			for (int k = 0; k < c->nbadrec && g->reported < o->max_report; k++) {
				cs_error e;
				cs_err(&e, CS_ERR_FORMAT, in->rd.name, in->base + c->bad[k].line, "%s",
				       c->bad[k].msg);
				g->reported++;
				if (o->on_bad)
					o->on_bad(o->ctx, &e);
			}
			in->base += c->nlines;
			cs_sort_chunk *sc = c->sc;
			c->sc = NULL;
			if (cs_sort_add(g->sort, sc, err) < 0)
				goto out;
		}
		cs_grouper_progress(&g->gr, 0);
		if (cs_sort_spill(g->sort, err) < 0)
			goto out;
	}
	if (in->first && input_empty(g, in, err) < 0)
		goto out;
	rc = 0;
out:
	for (int i = 0; jobs && i < nthreads; i++)
		cs_sort_chunk_free(jobs[i].sc);
	free(jobs);
	free(tid);
	free(threaded);
	return rc;
}

cs_ingest *cs_ingest_open(const cs_ingest_opts *o, const char *const *paths, size_t npaths,
			  cs_ingest_stats *st, cs_error *err)
{
	static const char *const stdin_only[] = { "-" };
	cs_ingest *g = calloc(1, sizeof *g);
	if (!g) {
		nomem(err);
		return NULL;
	}
	g->o = o;
	g->st = st ? st : &g->st0;
	memset(g->st, 0, sizeof *g->st);
	g->paths = npaths ? paths : stdin_only;
	g->npaths = npaths ? npaths : 1;
	g->nthreads = o->threads > 0 ? o->threads : 1;
	uint64_t mem = o->mem ? o->mem : (uint64_t)256 << 20;
	size_t block = o->block;
	if (!block) {
		block = (size_t)(mem / 16 / (uint64_t)g->nthreads);
		if (block > (4u << 20))
			block = 4u << 20;
		if (block < 4096)
			block = 4096;
	}
	g->block = block;
	/* pending chunks, plus as much again being spilled, plus the sort */
	size_t limit = (size_t)(mem / 4) > g->nthreads * block ?
		(size_t)(mem / 4) - g->nthreads * block : block;
	const char *td = o->tmpdir ? o->tmpdir : getenv("TMPDIR");
	g->bufs = calloc((size_t)g->nthreads, sizeof *g->bufs);
	g->csv = calloc((size_t)g->nthreads, sizeof *g->csv);
	g->sort = cs_sort_new(limit, td && *td ? td : "/tmp");
	if (!g->bufs || !g->csv || !g->sort) {
		nomem(err);
		goto fail;
	}
	if (o->by == CS_BY_SESSION && o->map.seqlines) {
		cs_err(err, CS_ERR_USAGE, NULL, 0, "'seqlines' input has no sessions");
		goto fail;
	}
	/* the first block of the first input settles the schema */
	input *in = &g->in;
	if (input_open(g, in, g->paths[0], 0, err) < 0)
		goto fail;
	g->in_open = 1;
	int quoted = 0;
	int r = cs_csv_read_block(&in->rd, &g->bufs[0], g->block, &quoted, err);
	if (r < 0)
		goto fail;
	if (r == 0) {
		if (input_empty(g, in, err) < 0)
			goto fail;
	} else {
		if (input_start(g, in, &g->bufs[0], &in->ahead_off, err) < 0)
			goto fail;
		in->ahead = 1;
		in->ahead_quoted = quoted;
	}
	return g;
fail:
	cs_ingest_close(g);
	return NULL;
}

const cs_schema *cs_ingest_schema(const cs_ingest *g)
{
	return g->gr.schema;
}

int cs_ingest_run(cs_ingest *g, cs_writer *w, cs_error *err)
{
	const cs_ingest_opts *o = g->o;
	g->gr.w = w;
	for (size_t i = 0; i < g->npaths; i++) {
		if (!g->in_open && input_open(g, &g->in, g->paths[i], 0, err) < 0)
			return -1;
		g->in_open = 1;
		int rc = input_read(g, &g->in, err);
		input_close(&g->in);
		g->in_open = 0;
		if (rc < 0)
			return -1;
	}
	if (o->second) {
		if (input_open(g, &g->in, o->second, 1, err) < 0)
			return -1;
		g->in_open = 1;
		int rc = input_read(g, &g->in, err);
		input_close(&g->in);
		g->in_open = 0;
		if (rc < 0)
			return -1;
	}
	for (int i = 0; i < g->nthreads; i++) {
		free(g->bufs[i].p);
		memset(&g->bufs[i], 0, sizeof g->bufs[i]);
	}
	g->st->phase = 1;
	cs_grouper_progress(&g->gr, 1);
	if (cs_sort_finish(g->sort, cs_grouper_put, &g->gr, err) < 0)
		return -1;
	g->st->runs = cs_sort_runs(g->sort);
	return 0;
}

void cs_ingest_close(cs_ingest *g)
{
	if (!g)
		return;
	if (g->in_open)
		input_close(&g->in);
	cs_sort_free(g->sort);
	for (int i = 0; g->bufs && i < g->nthreads; i++)
		free(g->bufs[i].p);
	free(g->bufs);
	for (int i = 0; g->csv && i < g->nthreads; i++)
		cs_csv_free(&g->csv[i]);
	free(g->csv);
	cs_grouper_free(&g->gr);
	free(g);
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
