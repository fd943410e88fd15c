/*
 * csvread.c - CSV blocks and rows (see csvread.h). The common row, free of
 * quotes, is split here sixteen bytes at a time; libcsv takes the rows
 * that hold a quote.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "csvread.h"
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* ------------------------------------------------------------ blocks */

int cs_csv_read_block(cs_csv_reader *rd, cs_buf *b, size_t want, int *quoted, cs_error *err)
{
	b->n = 0;
	if (cs_buf_reserve(b, rd->carry.n + want) < 0)
		return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	if (rd->carry.n)
		memcpy(b->p, rd->carry.p, rd->carry.n);
	b->n = rd->carry.n;
	rd->carry.n = 0;
	for (;;) {
		while (!rd->eof && b->n < want) {
			if (cs_buf_reserve(b, want - b->n) < 0)
				return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
			size_t k = fread(b->p + b->n, 1, want - b->n, rd->fp);
			b->n += k;
			if (k == 0) {
				if (ferror(rd->fp))
					return cs_err(err, CS_ERR_IO, rd->name, 0, "read error: %s",
						      strerror(errno));
				rd->eof = 1;
			}
		}
		if (b->n == 0)
			return 0;
		const char *q = memchr(b->p, '"', b->n);
		*quoted = q != NULL;
		if (rd->eof)
			return 1;
		const uint8_t *cut = NULL;
		if (!q) {
			cut = memrchr(b->p, '\n', b->n);
		} else {
			int inq = 0;
			for (const uint8_t *p = b->p, *e = b->p + b->n; p < e; p++) {
				if (*p == '"')
					inq ^= 1;
				else if (*p == '\n' && !inq)
					cut = p;
			}
		}
		if (!cut && b->n >= (64u << 20)) /* a stray quote: do not swallow the file */
			cut = memrchr(b->p, '\n', b->n);
		if (cut) {
			size_t keep = (size_t)(cut + 1 - b->p);
			if (cs_buf_reserve(&rd->carry, b->n - keep + 1) < 0)
				return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
			memcpy(rd->carry.p, b->p + keep, b->n - keep);
			rd->carry.n = b->n - keep;
			b->n = keep;
			return 1;
		}
		want = b->n * 2; /* a record longer than a block */
	}
}

void cs_csv_reader_free(cs_csv_reader *rd)
{
	free(rd->carry.p);
	memset(&rd->carry, 0, sizeof rd->carry);
}

/* ------------------------------------------------------------ rows */

void cs_csv_init(cs_csv *c, char sep)
{
	memset(c, 0, sizeof *c);
	c->sep = sep;
}

void cs_csv_free(cs_csv *c)
{
	free(c->f);
	c->f = NULL;
	c->capf = 0;
	free(c->fb.p);
	memset(&c->fb, 0, sizeof c->fb);
	free(c->foff);
	c->foff = NULL;
	c->capfoff = 0;
	if (c->csv_ready)
		csv_free(&c->csv);
	c->csv_ready = 0;
}

void cs_csv_start(cs_csv *c, const char *text, size_t len, int quoted)
{
	c->p = text;
	c->end = text + len;
	c->quoted = quoted;
	c->line = 0;
}

static int csv_nospace(unsigned char ch)
{
	(void)ch;
	return 0;
}

static void cb_field(void *s, size_t n, void *data)
{
	cs_csv *c = data;
	if (c->nfq == (size_t)-1)
		return;
	if (cs_buf_reserve(&c->fb, n) < 0 ||
	    cs_grow((void **)&c->foff, &c->capfoff, c->nfq + 2, sizeof *c->foff) < 0) {
		c->nfq = (size_t)-1; /* out of memory */
		return;
	}
	if (n)
		memcpy(c->fb.p + c->fb.n, s, n);
	c->fb.n += n;
	c->foff[++c->nfq] = c->fb.n;
}

static void cb_row(int ch, void *data)
{
	(void)ch;
	((cs_csv *)data)->row_done = 1;
}

static int csv_reset(cs_csv *c)
{
	if (c->csv_ready)
		csv_free(&c->csv);
	c->csv_ready = 0;
	if (csv_init(&c->csv, CSV_STRICT | CSV_STRICT_FINI) != 0)
		return -1;
	c->csv_ready = 1;
	csv_set_delim(&c->csv, (unsigned char)c->sep);
	csv_set_space_func(&c->csv, csv_nospace);
	return 0;
}

/* Make room for n fields. */
static int room_fields(cs_csv *c, size_t n)
{
	return cs_grow((void **)&c->f, &c->capf, n, sizeof *c->f);
}

/* Parse one record with libcsv starting at p (a line holding a quote); it may
 * span lines. *next is set past it. Returns the number of lines used, minus
 * that for a broken row (c->bad says why), or 0 when out of memory. */
static long parse_quoted(cs_csv *c, const char *p, const char *end, const char **next)
{
	if (!c->csv_ready && csv_reset(c) < 0)
		return 0;
	c->row_done = 0;
	c->nfq = 0;
	c->fb.n = 0;
	/* fb.p must exist even when every field is empty: fields point into it */
	if (cs_buf_reserve(&c->fb, 1) < 0 ||
	    cs_grow((void **)&c->foff, &c->capfoff, 2, sizeof *c->foff) < 0)
		return 0;
	c->foff[0] = 0;
	long used = 0;
	const char *q = p;
	int broken = 0;
	while (q < end && !c->row_done) {
		const char *nl = memchr(q, '\n', (size_t)(end - q));
		const char *e = nl ? nl + 1 : end;
		size_t k = csv_parse(&c->csv, q, (size_t)(e - q), cb_field, cb_row, c);
		used++;
		if (k != (size_t)(e - q)) {
			q = e;
			broken = 1;
			break;
		}
		q = e;
	}
	if (!broken && !c->row_done) {
		if (csv_fini(&c->csv, cb_field, cb_row, c) != 0)
			broken = 2;
	}
	if (c->nfq == (size_t)-1)
		return 0;
	*next = q;
	if (broken) {
		c->bad = broken == 2 ? "unterminated quoted field" : "broken quoting";
		if (csv_reset(c) < 0)
			return 0;
		return -used;
	}
	if (room_fields(c, c->nfq + 1) < 0)
		return 0;
	for (size_t i = 0; i < c->nfq; i++) {
		c->f[i].p = (const char *)c->fb.p + c->foff[i];
		c->f[i].n = c->foff[i + 1] - c->foff[i];
	}
	c->nf = c->nfq;
	return used;
}

/* Split the quote-free line [p, e) at sep: sixteen bytes at a time where
 * SSE2 is there (every x86-64), one memchr per field elsewhere. */
static int split_line(cs_csv *c, const char *p, const char *e)
{
	char sep = c->sep;
	size_t n = 0;
	const char *s = p; /* start of the current field */
#ifdef __SSE2__
	const __m128i vs = _mm_set1_epi8(sep);
	for (const char *q = p; e - q >= 16; q += 16) {
		unsigned m = (unsigned)_mm_movemask_epi8(
			_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)q), vs));
		if (m && n + 16 >= c->capf && room_fields(c, n + 17) < 0)
			return -1;
		while (m) {
			const char *x = q + __builtin_ctz(m);
			m &= m - 1;
			c->f[n].p = s;
			c->f[n++].n = (size_t)(x - s);
			s = x + 1;
		}
		p = q + 16;
	}
#endif
	for (;;) {
		if (n >= c->capf && room_fields(c, n + 1) < 0)
			return -1;
		const char *x = memchr(p, sep, (size_t)(e - p));
		if (!x) {
			c->f[n].p = s;
			c->f[n++].n = (size_t)(e - s);
			break;
		}
		c->f[n].p = s;
		c->f[n++].n = (size_t)(x - s);
		s = p = x + 1;
	}
	if (sep == ' ') { /* runs of spaces separate one field */
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (c->f[i].n)
				c->f[k++] = c->f[i];
		n = k;
	}
	c->nf = n;
	return 0;
}

int cs_csv_next(cs_csv *c, long *line)
{
	while (c->p < c->end) {
		const char *p = c->p, *end = c->end;
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		const char *next = nl ? nl + 1 : end;
		c->line++;
		if (c->quoted && memchr(p, '"', (size_t)(e - p))) {
			long first = c->line;
			long used = parse_quoted(c, p, end, &next);
			if (used == 0)
				return -1;
			c->p = next;
			*line = first;
			if (used < 0) {
				c->line += -used - 1;
				return 2;
			}
			c->line += used - 1;
			if (c->nf == 1 && c->f[0].n == 0)
				continue;
			return 1;
		}
		c->p = next;
		if (e > p && e[-1] == '\r')
			e--;
		if (e == p)
			continue; /* blank line */
		if (split_line(c, p, e) < 0)
			return -1;
		*line = c->line;
		return 1;
	}
	return 0;
}

int cs_csv_first(cs_csv *c, const char *text, size_t len, size_t *used)
{
	const char *nl = memchr(text, '\n', len);
	const char *e = nl ? nl : text + len, *next = nl ? nl + 1 : text + len;
	if (memchr(text, '"', (size_t)(e - text))) {
		long k = parse_quoted(c, text, text + len, &next);
		if (k == 0)
			return -1;
		if (k < 0)
			return 2;
	} else {
		if (e > text && e[-1] == '\r')
			e--;
		if (split_line(c, text, e) < 0)
			return -1;
	}
	*used = (size_t)(next - text);
	return 1;
}
