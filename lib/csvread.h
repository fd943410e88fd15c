/*
 * csvread.h - CSV text in blocks of whole records, and rows of fields with
 * their line numbers out of a block (not installed).
 *
 * Named so as not to hide libcsv's <csv.h>, which parses the quoted rows.
 */
#ifndef CS_CSVREAD_H
#define CS_CSVREAD_H

#include <csv.h>
#include <stdio.h>
#include "buf.h"
#include "cs.h"

/* ------------------------------------------------------------ blocks */

/* A file read in blocks that end at a record's end. */
typedef struct cs_csv_reader {
	FILE *fp;
	const char *name; /* for messages */
	cs_buf carry;     /* the start of the next block */
	int eof;
} cs_csv_reader;

/* Fill b with whole records (about want bytes, all that is left at the
 * end); *quoted says whether the block holds a '"'. Returns 1 with data,
 * 0 at the end, -1 on error. */
int cs_csv_read_block(cs_csv_reader *rd, cs_buf *b, size_t want, int *quoted, cs_error *err);
void cs_csv_reader_free(cs_csv_reader *rd);

/* ------------------------------------------------------------ rows */

typedef struct cs_csv_field {
	const char *p;
	size_t n;
} cs_csv_field;

/* Splits a block into rows. A quote-free line is split at sep (runs of
 * spaces are one separator when sep is ' '); a line holding a quote goes to
 * libcsv, and its record may span lines. Fields point into the text, or
 * into the splitter's own buffer for quoted rows, until the next row. */
typedef struct cs_csv {
	char sep;
	const char *p, *end; /* what is left of the text */
	int quoted;          /* the text holds a quote somewhere */
	long line;           /* lines consumed so far */
	cs_csv_field *f;     /* the row */
	size_t nf, capf;
	const char *bad;     /* why the last row was broken */
	/* libcsv's state and the fields of a quoted row */
	cs_buf fb;
	size_t *foff;
	size_t capfoff, nfq;
	int row_done;
	struct csv_parser csv;
	int csv_ready;
} cs_csv;

void cs_csv_init(cs_csv *c, char sep);
/* Free the buffers (c can be used again). */
void cs_csv_free(cs_csv *c);
/* Split text[0 .. len) from now on, lines counted from 1. */
void cs_csv_start(cs_csv *c, const char *text, size_t len, int quoted);
/* The next row, blank lines skipped: 1 a row in c->f[0 .. nf), 2 a broken
 * row (c->bad says why), both with the line it starts on in *line; 0 at
 * the end of the text, -1 out of memory. */
int cs_csv_next(cs_csv *c, long *line);
/* Exactly one record at the start of text (a header), blank or not: 1 a
 * row in c->f[0 .. nf) and *used its bytes, 2 broken quoting, -1 out of
 * memory. */
int cs_csv_first(cs_csv *c, const char *text, size_t len, size_t *used);

#endif
