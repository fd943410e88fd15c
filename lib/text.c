/*
 * text.c - the text form of sequence streams (see cs-cat(1)).
 *
 * Tab-separated form: optional "#meta<TAB>key<TAB>value" lines, a header
 * line "name:level:type[=fingerprint]" per field, then one line per event
 * with the sequence-level values repeated. Consecutive event lines with
 * the same sequence-level text form one sequence; a blank line ends a
 * sequence; a line whose event columns are all "\N" is a sequence without
 * events. Values are escaped: \\ \t \n \r \xHH, and \& for nothing.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "text.h"

/* ------------------------------------------------------------ buffers */

typedef struct sbuf {
	char *p;
	size_t n, cap;
} sbuf;

static int sb_room(sbuf *b, size_t more)
{
	if (b->n + more + 1 <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->n + more + 1)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p)
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

static int sb_add(sbuf *b, const char *s, size_t len)
{
	if (sb_room(b, len) < 0)
		return -1;
	memcpy(b->p + b->n, s, len);
	b->n += len;
	b->p[b->n] = 0;
	return 0;
}

static int sb_putc(sbuf *b, char c)
{
	return sb_add(b, &c, 1);
}

static int sb_esc(sbuf *b, const char *s, size_t len)
{
	if (sb_room(b, 4 * len) < 0)
		return -1;
	b->n += cs_text_escape(b->p + b->n, s, len);
	return 0;
}

/* ------------------------------------------------------------ values */

size_t cs_text_escape(char *dst, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	char *d = dst;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];
		switch (c) {
		case '\\': *d++ = '\\'; *d++ = '\\'; break;
		case '\t': *d++ = '\\'; *d++ = 't'; break;
		case '\n': *d++ = '\\'; *d++ = 'n'; break;
		case '\r': *d++ = '\\'; *d++ = 'r'; break;
		default:
			if (c < 0x20 || c == 0x7f) {
				*d++ = '\\';
				*d++ = 'x';
				*d++ = hex[c >> 4];
				*d++ = hex[c & 15];
			} else {
				*d++ = c;
			}
		}
	}
	*d = 0;
	return (size_t)(d - dst);
}

int cs_text_put(FILE *fp, const char *s, size_t len)
{
	char buf[4 * 256 + 1];
	while (len) {
		size_t n = len < 256 ? len : 256;
		size_t k = cs_text_escape(buf, s, n);
		if (fwrite(buf, 1, k, fp) != k)
			return EOF;
		s += n;
		len -= n;
	}
	return 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int cs_text_unescape(char *dst, size_t *dlen, const char *s, size_t len)
{
	char *d = dst;
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '\\') {
			*d++ = s[i];
			continue;
		}
		if (++i == len)
			return -1;
		switch (s[i]) {
		case '\\': *d++ = '\\'; break;
		case 't': *d++ = '\t'; break;
		case 'n': *d++ = '\n'; break;
		case 'r': *d++ = '\r'; break;
		case '&': break;
		case 'x': {
			int hi = i + 1 < len ? hexval(s[i + 1]) : -1;
			int lo = i + 2 < len ? hexval(s[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return -1;
			*d++ = (char)(hi << 4 | lo);
			i += 2;
			break;
		}
		default:
			return -1;
		}
	}
	*d = 0;
	*dlen = (size_t)(d - dst);
	return 0;
}

int cs_text_format_float(char *buf, size_t n, float v)
{
	if (isnan(v))
		return snprintf(buf, n, "nan");
	if (isinf(v))
		return snprintf(buf, n, v < 0 ? "-inf" : "inf");
	/* %.6g strips trailing zeros, so when it reads back exactly it is
	 * also the shortest form; 9 digits always read back exactly */
	int r = 0;
	for (int p = 6; p <= 9; p++) {
		r = snprintf(buf, n, "%.*g", p, (double)v);
		if (strtof(buf, NULL) == v)
			break;
	}
	return r;
}

/* Append value i of column c as text (escaped). */
static int fmt_value(sbuf *b, const cs_column *c, size_t i)
{
	char num[48];
	int k;
	switch (c->type) {
	case CS_STRING: {
		size_t len;
		const char *s = cs_col_str(c, i, &len);
		return sb_esc(b, s, len);
	}
	case CS_ID:
		k = snprintf(num, sizeof num, "%" PRIu32, c->v.u32[i]);
		break;
	case CS_INT64:
		k = snprintf(num, sizeof num, "%" PRId64, c->v.i64[i]);
		break;
	default:
		k = cs_text_format_float(num, sizeof num, c->v.f32[i]);
		break;
	}
	return sb_add(b, num, (size_t)k);
}

/* ------------------------------------------------------------ JSON */

/* Length of a valid UTF-8 sequence at s, 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (len > n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

/* A JSON string; invalid UTF-8 bytes become U+FFFD. */
static int json_str(sbuf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	if (sb_room(b, 6 * len + 2) < 0)
		return -1;
	char *d = b->p + b->n;
	*d++ = '"';
	for (size_t i = 0; i < len;) {
		unsigned char c = s[i];
		if (c >= 0x80) {
			size_t k = utf8_len((const unsigned char *)s + i, len - i);
			if (k) {
				memcpy(d, s + i, k);
				d += k;
				i += k;
			} else {
				memcpy(d, "\\ufffd", 6);
				d += 6;
				i++;
			}
			continue;
		}
		i++;
		switch (c) {
		case '"': *d++ = '\\'; *d++ = '"'; break;
		case '\\': *d++ = '\\'; *d++ = '\\'; break;
		case '\n': *d++ = '\\'; *d++ = 'n'; break;
		case '\t': *d++ = '\\'; *d++ = 't'; break;
		case '\r': *d++ = '\\'; *d++ = 'r'; break;
		default:
			if (c < 0x20) {
				memcpy(d, "\\u00", 4);
				d[4] = hex[c >> 4];
				d[5] = hex[c & 15];
				d += 6;
			} else {
				*d++ = c;
			}
		}
	}
	*d++ = '"';
	b->n = (size_t)(d - b->p);
	b->p[b->n] = 0;
	return 0;
}

int cs_text_put_json(FILE *fp, const char *s, size_t len)
{
	sbuf b = { 0 };
	int rc = json_str(&b, s, len) < 0 || fwrite(b.p, 1, b.n, fp) != b.n ? EOF : 0;
	free(b.p);
	return rc;
}

static int json_value(sbuf *b, const cs_column *c, size_t i)
{
	if (c->type == CS_STRING) {
		size_t len;
		const char *s = cs_col_str(c, i, &len);
		return json_str(b, s, len);
	}
	if (c->type == CS_FLOAT32 && !isfinite(c->v.f32[i]))
		return sb_add(b, "null", 4);
	return fmt_value(b, c, i);
}

/* ------------------------------------------------------------ writer */

struct cs_text_writer {
	FILE *fp;
	char *name;
	const cs_schema *s;
	int flags;
	sbuf line, key, prevkey;
	int prev_events; /* the last sequence printed had events */
	size_t nseqf;    /* sequence-level fields */
};

void cs_text_writer_free(cs_text_writer *w)
{
	if (!w)
		return;
	free(w->name);
	free(w->line.p);
	free(w->key.p);
	free(w->prevkey.p);
	free(w);
}

static int wr(cs_text_writer *w, const sbuf *b, cs_error *err)
{
	if (b->n && fwrite(b->p, 1, b->n, w->fp) != b->n)
		return cs_err(err, CS_ERR_IO, w->name, 0, "write error: %s", strerror(errno));
	return 0;
}

cs_text_writer *cs_text_writer_new(FILE *fp, const char *name, const cs_schema *s,
				   int flags, cs_error *err)
{
	cs_text_writer *w = calloc(1, sizeof *w);
	if (!w || !(w->name = strdup(name ? name : "stdout"))) {
		free(w);
		cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
		return NULL;
	}
	w->fp = fp;
	w->s = s;
	w->flags = flags;
	for (size_t i = 0; i < s->nfields; i++)
		w->nseqf += s->f[i].level == CS_SEQ;
	if (s->nfields == 0) {
		cs_err(err, CS_ERR_FORMAT, NULL, 0, "a stream without fields has no text form");
		goto fail;
	}
	if ((flags & CS_TEXT_JSON) || (flags & CS_TEXT_NOHEADER))
		return w;
	sbuf *b = &w->line;
	b->n = 0;
	int ok = 0;
	if (flags & CS_TEXT_META)
		for (size_t i = 0; i < s->nmeta; i++) {
			ok |= sb_add(b, "#meta\t", 6);
			ok |= sb_esc(b, s->key[i], strlen(s->key[i]));
			ok |= sb_putc(b, '\t');
			ok |= sb_esc(b, s->val[i], strlen(s->val[i]));
			ok |= sb_putc(b, '\n');
		}
	for (size_t i = 0; i < s->nfields; i++) {
		const cs_field *f = &s->f[i];
		char tmp[600];
		if (i)
			ok |= sb_putc(b, '\t');
		/* a leading '#' would read as a comment, a leading byte-order
		 * mark be skipped (the line may be the first) */
		int lead = i == 0 && (f->name[0] == '#' || !strncmp(f->name, "\xef\xbb\xbf", 3));
		if (lead)
			ok |= sb_add(b, f->name[0] == '#' ? "\\x23" : "\\xef", 4);
		ok |= sb_esc(b, f->name + lead, strlen(f->name) - lead);
		if (flags & CS_TEXT_PLAIN)
			continue;
		int k = snprintf(tmp, sizeof tmp, ":%s:%s", cs_level_name(f->level),
				 cs_type_name(f->type));
		if (f->type == CS_ID && f->vocab)
			k += snprintf(tmp + k, sizeof tmp - k, "=%016" PRIx64, f->vocab);
		ok |= sb_add(b, tmp, (size_t)k);
	}
	ok |= sb_putc(b, '\n');
	if (ok < 0) {
		cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
		goto fail;
	}
	if (wr(w, b, err) < 0)
		goto fail;
	return w;
fail:
	cs_text_writer_free(w);
	return NULL;
}

static int put_json(cs_text_writer *w, const cs_record *rec, cs_error *err)
{
	sbuf *b = &w->line;
	const cs_schema *s = w->s;
	int r = sb_putc(b, '{');
	for (size_t i = 0; i < s->nfields; i++) {
		const cs_column *c = &rec->col[i];
		if (i)
			r |= sb_putc(b, ',');
		r |= json_str(b, s->f[i].name, strlen(s->f[i].name));
		r |= sb_putc(b, ':');
		if (s->f[i].level == CS_SEQ) {
			r |= c->n ? json_value(b, c, 0) : sb_add(b, "null", 4);
			continue;
		}
		r |= sb_putc(b, '[');
		for (size_t e = 0; e < c->n; e++) {
			if (e)
				r |= sb_putc(b, ',');
			r |= json_value(b, c, e);
		}
		r |= sb_putc(b, ']');
	}
	r |= sb_add(b, "}\n", 2);
	if (r < 0)
		return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	return wr(w, b, err);
}

int cs_text_writer_put(cs_text_writer *w, const cs_record *rec, cs_error *err)
{
	const cs_schema *s = w->s;
	sbuf *b = &w->line;
	int r = 0;
	b->n = 0;
	if (rec->ncols != s->nfields)
		return cs_err(err, CS_ERR_USAGE, NULL, 0, "record does not match the schema");
	if (w->flags & CS_TEXT_JSON)
		return put_json(w, rec, err);
	size_t nev = s->nfields > w->nseqf ? rec->nevents : 0;
	w->key.n = 0;
	for (size_t i = 0, k = 0; i < s->nfields; i++)
		if (s->f[i].level == CS_SEQ) {
			if (k++)
				r |= sb_putc(&w->key, '\t');
			if (rec->col[i].n)
				r |= fmt_value(&w->key, &rec->col[i], 0);
		}
	if (nev == 0) {
		/* a sequence without events: "\N" in every event column */
		for (size_t i = 0; i < s->nfields; i++) {
			if (i)
				r |= sb_putc(b, '\t');
			if (s->f[i].level == CS_EVENT)
				r |= sb_add(b, "\\N", 2);
			else if (rec->col[i].n)
				r |= fmt_value(b, &rec->col[i], 0);
		}
		if (b->n == 0)
			r |= sb_add(b, "\\&", 2);
		r |= sb_putc(b, '\n');
		w->prev_events = 0;
	} else {
		/* a blank line keeps apart two sequences that would merge */
		if (w->prev_events && w->key.n == w->prevkey.n &&
		    memcmp(w->key.p ? w->key.p : "", w->prevkey.p ? w->prevkey.p : "",
			   w->key.n) == 0)
			r |= sb_putc(b, '\n');
		for (size_t e = 0; e < nev; e++) {
			size_t start = b->n;
			for (size_t i = 0; i < s->nfields; i++) {
				const cs_column *c = &rec->col[i];
				if (i)
					r |= sb_putc(b, '\t');
				if (s->f[i].level == CS_EVENT) {
					if (e < c->n)
						r |= fmt_value(b, c, e);
				} else if (c->n) {
					r |= fmt_value(b, c, 0);
				}
			}
			if (b->n == start)
				r |= sb_add(b, "\\&", 2);
			r |= sb_putc(b, '\n');
		}
		w->prevkey.n = 0;
		r |= sb_add(&w->prevkey, w->key.p ? w->key.p : "", w->key.n);
		w->prev_events = 1;
	}
	if (r < 0)
		return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	return wr(w, b, err);
}

int cs_text_writer_close(cs_text_writer *w, cs_error *err)
{
	int r = 0;
	if (fflush(w->fp) != 0 || ferror(w->fp))
		r = cs_err(err, CS_ERR_IO, w->name, 0, "write error: %s", strerror(errno));
	cs_text_writer_free(w);
	return r;
}

/* Write b to fp and free it; r < 0: building it ran out of memory. */
static int sb_emit(sbuf *b, int r, FILE *fp, const char *name, cs_error *err)
{
	int rc = 0;
	if (r < 0)
		rc = cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	else if (fwrite(b->p, 1, b->n, fp) != b->n || fflush(fp) != 0)
		rc = cs_err(err, CS_ERR_IO, name, 0, "write error: %s", strerror(errno));
	free(b->p);
	return rc;
}

int cs_text_write_info(FILE *fp, const char *name, const cs_schema *s,
		       uint64_t records, uint64_t events, cs_error *err)
{
	sbuf b = { 0 };
	int r = 0;
	for (size_t i = 0; i < s->nfields; i++) {
		const cs_field *f = &s->f[i];
		char tmp[64];
		r |= sb_add(&b, "field\t", 6);
		r |= sb_esc(&b, f->name, strlen(f->name));
		int k = snprintf(tmp, sizeof tmp, "\t%s\t%s", cs_level_name(f->level),
				 cs_type_name(f->type));
		if (f->type == CS_ID)
			k += snprintf(tmp + k, sizeof tmp - k, "\t%016" PRIx64, f->vocab);
		r |= sb_add(&b, tmp, (size_t)k);
		r |= sb_putc(&b, '\n');
	}
	for (size_t i = 0; i < s->nmeta; i++) {
		r |= sb_add(&b, "meta\t", 5);
		r |= sb_esc(&b, s->key[i], strlen(s->key[i]));
		r |= sb_putc(&b, '\t');
		r |= sb_esc(&b, s->val[i], strlen(s->val[i]));
		r |= sb_putc(&b, '\n');
	}
	char tmp[96];
	int k = snprintf(tmp, sizeof tmp, "records\t%" PRIu64 "\nevents\t%" PRIu64 "\n",
			 records, events);
	r |= sb_add(&b, tmp, (size_t)k);
	return sb_emit(&b, r, fp, name, err);
}

int cs_text_write_info_json(FILE *fp, const char *name, const cs_schema *s,
			    uint64_t records, uint64_t events, cs_error *err)
{
	sbuf b = { 0 };
	int r = sb_add(&b, "{\"fields\":[", 11);
	char tmp[128];
	for (size_t i = 0; i < s->nfields; i++) {
		const cs_field *f = &s->f[i];
		r |= sb_add(&b, i ? ",{\"name\":" : "{\"name\":", i ? 9 : 8);
		r |= json_str(&b, f->name, strlen(f->name));
		int k = snprintf(tmp, sizeof tmp, ",\"level\":\"%s\",\"type\":\"%s\"",
				 cs_level_name(f->level), cs_type_name(f->type));
		if (f->type == CS_ID)
			k += snprintf(tmp + k, sizeof tmp - k, ",\"vocab\":\"%016" PRIx64 "\"", f->vocab);
		r |= sb_add(&b, tmp, (size_t)k);
		r |= sb_putc(&b, '}');
	}
	r |= sb_add(&b, "],\"meta\":{", 10);
	for (size_t i = 0; i < s->nmeta; i++) {
		if (i)
			r |= sb_putc(&b, ',');
		r |= json_str(&b, s->key[i], strlen(s->key[i]));
		r |= sb_putc(&b, ':');
		r |= json_str(&b, s->val[i], strlen(s->val[i]));
	}
	int k = snprintf(tmp, sizeof tmp, "},\"records\":%" PRIu64 ",\"events\":%" PRIu64 "}\n",
			 records, events);
	r |= sb_add(&b, tmp, (size_t)k);
	return sb_emit(&b, r, fp, name, err);
}

/* ------------------------------------------------------------ reader */

struct cs_text_reader {
	FILE *fp;
	char *name;
	cs_schema *s;
	char *line;      /* current line, NUL-terminated, no newline */
	size_t cap, len;
	long lineno;
	int held;        /* line is the first line of the next sequence */
	int eof;
	int nonl;        /* the line had no newline: the last line of the file */
	size_t ncol;     /* = nfields */
	char **col;
	size_t *clen;
	sbuf key, tmp;
};

void cs_text_reader_close(cs_text_reader *r)
{
	if (!r)
		return;
	free(r->name);
	cs_schema_free(r->s);
	free(r->line);
	free(r->col);
	free(r->clen);
	free(r->key.p);
	free(r->tmp.p);
	free(r);
}

const cs_schema *cs_text_reader_schema(const cs_text_reader *r) { return r->s; }

/* Read the next line: 1, 0 at the end, -1 on error. */
static int getl(cs_text_reader *r, cs_error *err)
{
	errno = 0;
	ssize_t n = getline(&r->line, &r->cap, r->fp);
	if (n < 0) {
		if (ferror(r->fp))
			return cs_err(err, CS_ERR_IO, r->name, 0, "read error: %s", strerror(errno));
		r->eof = 1;
		return 0;
	}
	r->lineno++;
	r->len = (size_t)n;
	/* a byte-order mark some editors put first is no part of a name */
	if (r->lineno == 1 && r->len >= 3 && !memcmp(r->line, "\xef\xbb\xbf", 3)) {
		memmove(r->line, r->line + 3, r->len - 2);
		r->len -= 3;
	}
	r->nonl = !(r->len && r->line[r->len - 1] == '\n');
	if (!r->nonl)
		r->line[--r->len] = 0;
	if (memchr(r->line, '\r', r->len))
		return cs_err(err, CS_ERR_FORMAT, r->name, r->lineno,
			      "carriage return in line (CRLF line ends? write it as \\r)");
	if (strlen(r->line) != r->len)
		return cs_err(err, CS_ERR_FORMAT, r->name, r->lineno,
			      "NUL byte in line (write it as \\x00)");
	return 1;
}

/* Split the current line at tabs into r->col (grown as needed). */
static size_t split(cs_text_reader *r, char **col, size_t *clen, size_t max)
{
	size_t n = 0, start = 0;
	for (size_t i = 0; i <= r->len; i++)
		if (i == r->len || r->line[i] == '\t') {
			if (n < max) {
				col[n] = r->line + start;
				clen[n] = i - start;
			}
			n++;
			start = i + 1;
		}
	return n;
}

/* Unescape column text into r->tmp. */
static int unesc(cs_text_reader *r, const char *s, size_t len, const char *what,
		 cs_error *err)
{
	if (sb_room(&r->tmp, len) < 0)
		return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	if (cs_text_unescape(r->tmp.p, &r->tmp.n, s, len) < 0)
		return cs_err(err, CS_ERR_FORMAT, r->name, r->lineno,
			      "bad escape in %s '%.*s' (use \\\\ \\t \\n \\r \\xHH)", what,
			      (int)(len > 60 ? 60 : len), s);
	return 0;
}

static int parse_header(cs_text_reader *r, cs_error *err)
{
	size_t n = split(r, NULL, NULL, 0);
	char **col = calloc(n, sizeof *col);
	size_t *clen = calloc(n, sizeof *clen);
	if (!col || !clen) {
		free(col);
		free(clen);
		return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	}
	r->col = col;
	r->clen = clen;
	r->ncol = n;
	split(r, col, clen, n);
	for (size_t i = 0; i < n; i++) {
		char *c = col[i];
		c[clen[i]] = 0;
		char *t = strrchr(c, ':');
		char *l = t ? memrchr(c, ':', (size_t)(t - c)) : NULL;
		if (!l)
			return cs_err(err, CS_ERR_FORMAT, r->name, r->lineno,
				      "header column %zu '%s' is not 'name:level:type'", i + 1, c);
		*l++ = 0;
		*t++ = 0;
		char *fp = strchr(t, '=');
		if (fp)
			*fp++ = 0;
		int level = cs_level_parse(l), type = cs_type_parse(t);
		if (level < 0)
			return cs_err(err, CS_ERR_FORMAT, r->name, r->lineno,
				      "unknown level '%s' for field '%s' (seq or event)", l, c);
		if (type < 0)
			return cs_err(err, CS_ERR_FORMAT, r->name, r->lineno,
				      "unknown type '%s' for field '%s' (string, id, int64 or float32)",
				      t, c);
		uint64_t vocab = 0;
		if (fp) {
			char *end;
			errno = 0;
			vocab = strtoull(fp, &end, 16);
			if (type != CS_ID || strlen(fp) != 16 || *end || errno || !vocab)
				return cs_err(err, CS_ERR_FORMAT, r->name, r->lineno,
					      "bad fingerprint '%s' for field '%s' "
					      "(16 hex digits, id fields only)", fp, c);
		}
		if (unesc(r, c, strlen(c), "field name", err) < 0)
			return -1;
		cs_error e2;
		int k = cs_schema_add(r->s, r->tmp.p, level, type, &e2);
		if (k < 0)
			return cs_err(err, CS_ERR_FORMAT, r->name, r->lineno, "%s", e2.msg);
		r->s->f[k].vocab = vocab;
	}
	return 0;
}

cs_text_reader *cs_text_reader_open(FILE *fp, const char *name, cs_error *err)
{
	cs_text_reader *r = calloc(1, sizeof *r);
	if (!r || !(r->name = strdup(name ? name : "-")) || !(r->s = cs_schema_new())) {
		cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
		goto fail;
	}
	r->fp = fp;
	for (;;) {
		int k = getl(r, err);
		if (k < 0)
			goto fail;
		if (k == 0) {
			cs_err(err, CS_ERR_FORMAT, r->name, r->lineno,
			       "no header line ('name:level:type' per field)");
			goto fail;
		}
		if (r->len == 0)
			continue;
		if (r->line[0] != '#')
			break;
		if (strncmp(r->line, "#meta\t", 6) != 0)
			continue; /* a comment */
		char *col[4];
		size_t cl[4];
		if (split(r, col, cl, 4) != 3) {
			cs_err(err, CS_ERR_FORMAT, r->name, r->lineno,
			       "expected '#meta<TAB>key<TAB>value'");
			goto fail;
		}
		if (unesc(r, col[1], cl[1], "metadata key", err) < 0)
			goto fail;
		char *key = strdup(r->tmp.p);
		if (!key) {
			cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
			goto fail;
		}
		cs_error e2;
		int bad = unesc(r, col[2], cl[2], "metadata value", err) < 0;
		if (!bad && cs_schema_set_meta(r->s, key, r->tmp.p, &e2) < 0) {
			cs_err(err, CS_ERR_FORMAT, r->name, r->lineno, "%s", e2.msg);
			bad = 1;
		}
		free(key);
		if (bad)
			goto fail;
	}
	if (parse_header(r, err) < 0)
		goto fail;
	return r;
fail:
	cs_text_reader_close(r);
	return NULL;
}

static int parse_value(cs_text_reader *r, cs_column *c, const cs_field *f,
		       const char *s, size_t len, cs_error *err)
{
	char num[64];
	char *end;
	int bad = 0;
	if (c->type == CS_STRING) {
		if (unesc(r, s, len, "value", err) < 0)
			return -1;
		if (cs_col_push_str(c, r->tmp.p, r->tmp.n) < 0)
			return cs_err(err, CS_ERR_LIMIT, r->name, r->lineno,
				      "string too long or out of memory");
		return 0;
	}
	if (len == 0 || len >= sizeof num)
		bad = 1;
	else {
		memcpy(num, s, len);
		num[len] = 0;
	}
	errno = 0;
	if (!bad && c->type == CS_FLOAT32) {
		float v = strtof(num, &end);
		if (*end || (isinf(v) && !strpbrk(num, "iI")) || num[0] == ' ')
			bad = 1;
		else if (cs_col_push_f32(c, v) < 0)
			goto nomem;
	} else if (!bad && c->type == CS_INT64) {
		long long v = strtoll(num, &end, 10);
		if (*end || errno || !(num[0] == '-' || (num[0] >= '0' && num[0] <= '9')))
			bad = 1;
		else if (cs_col_push_i64(c, (int64_t)v) < 0)
			goto nomem;
	} else if (!bad) {
		unsigned long long v = strtoull(num, &end, 10);
		if (*end || errno || v > UINT32_MAX || !(num[0] >= '0' && num[0] <= '9'))
			bad = 1;
		else if (cs_col_push_u32(c, (uint32_t)v) < 0)
			goto nomem;
	}
	if (bad)
		return cs_err(err, CS_ERR_FORMAT, r->name, r->lineno,
			      "invalid %s '%.*s' for field '%s'", cs_type_name(c->type),
			      (int)(len > 60 ? 60 : len), s, f->name);
	return 0;
nomem:
	return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
}

static int is_null(const char *s, size_t len)
{
	return len == 2 && s[0] == '\\' && s[1] == 'N';
}

static int text_next(cs_text_reader *r, cs_record *rec, cs_error *err);

/* A last line without a newline is read like any other (text from printf
 * often lacks it), but when it is broken the message says the file may be
 * cut short. */
int cs_text_reader_next(cs_text_reader *r, cs_record *rec, cs_error *err)
{
	int k = text_next(r, rec, err);
	if (k < 0 && err && r->nonl && err->code == CS_ERR_FORMAT && err->line == r->lineno) {
		size_t n = strlen(err->msg);
		snprintf(err->msg + n, sizeof err->msg - n,
			 " (the last line has no newline: is the file cut short?)");
	}
	return k;
}

static int text_next(cs_text_reader *r, cs_record *rec, cs_error *err)
{
	const cs_schema *s = r->s;
	int have = 0;
	if (cs_record_init(rec, s, err) < 0)
		return -1;
	for (;;) {
		if (r->held)
			r->held = 0;
		else {
			int k = r->eof ? 0 : getl(r, err);
			if (k < 0)
				return -1;
			if (k == 0)
				return have;
		}
		if (r->len == 0) {
			if (have)
				return 1;
			continue;
		}
		size_t n = split(r, r->col, r->clen, r->ncol);
		if (n != r->ncol)
			return cs_err(err, CS_ERR_FORMAT, r->name, r->lineno,
				      "%zu columns, the header has %zu", n, r->ncol);
		size_t nev = 0, nnull = 0;
		for (size_t i = 0; i < n; i++)
			if (s->f[i].level == CS_EVENT) {
				nev++;
				nnull += is_null(r->col[i], r->clen[i]);
			}
		if (nnull && nnull != nev)
			return cs_err(err, CS_ERR_FORMAT, r->name, r->lineno,
				      "'\\N' marks a sequence without events and must fill "
				      "every event column");
		int empty = nnull == nev;
		/* the sequence-level text decides where a sequence ends */
		size_t klen = 0;
		for (size_t i = 0; i < n; i++)
			if (s->f[i].level == CS_SEQ)
				klen += r->clen[i] + 1;
		if (sb_room(&r->tmp, klen) < 0)
			return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
		r->tmp.n = 0;
		for (size_t i = 0; i < n; i++)
			if (s->f[i].level == CS_SEQ) {
				memcpy(r->tmp.p + r->tmp.n, r->col[i], r->clen[i]);
				r->tmp.n += r->clen[i];
				r->tmp.p[r->tmp.n++] = '\t';
			}
		if (have && (empty || r->tmp.n != r->key.n ||
			     memcmp(r->tmp.p, r->key.p, r->key.n) != 0)) {
			r->held = 1;
			return 1;
		}
		if (!have) {
			r->key.n = 0;
			if (sb_add(&r->key, r->tmp.p ? r->tmp.p : "", r->tmp.n) < 0)
				return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
			for (size_t i = 0; i < n; i++)
				if (s->f[i].level == CS_SEQ &&
				    parse_value(r, &rec->col[i], &s->f[i], r->col[i], r->clen[i],
						err) < 0)
					return -1;
			have = 1;
		}
		if (empty)
			return 1;
		if (rec->nevents >= CS_MAX_EVENTS)
			return cs_err(err, CS_ERR_LIMIT, r->name, r->lineno,
				      "more than %u events in one sequence", CS_MAX_EVENTS);
		for (size_t i = 0; i < n; i++)
			if (s->f[i].level == CS_EVENT &&
			    parse_value(r, &rec->col[i], &s->f[i], r->col[i], r->clen[i], err) < 0)
				return -1;
		rec->nevents++;
	}
}
