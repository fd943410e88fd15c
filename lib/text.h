/*
 * text.h - the text form of a sequence stream: tab-separated lines (one
 * per event, with a typed header line) that read back into a stream, JSON
 * lines (one object per sequence), and a schema summary. The format is
 * documented in cs-cat(1).
 */
#ifndef CS_TEXT_H
#define CS_TEXT_H

#include "cs.h"

/* Writer flags. */
#define CS_TEXT_JSON 0x1     /* JSON lines instead of tab-separated text */
#define CS_TEXT_META 0x2     /* write "#meta" lines before the header */
#define CS_TEXT_NOHEADER 0x4 /* no header line (the text cannot be read back) */
#define CS_TEXT_PLAIN 0x8    /* header of plain names, no ":level:type" (awk, pandas;
			      * the text cannot be read back) */

typedef struct cs_text_writer cs_text_writer;

/* Write to fp (not closed; name for messages); writes the header. */
cs_text_writer *cs_text_writer_new(FILE *fp, const char *name, const cs_schema *s,
				   int flags, cs_error *err);
int cs_text_writer_put(cs_text_writer *w, const cs_record *rec, cs_error *err);
/* Flush and check for write errors. Frees w. */
int cs_text_writer_close(cs_text_writer *w, cs_error *err);
/* Free without flushing. NULL is a no-op. */
void cs_text_writer_free(cs_text_writer *w);

/*
 * Schema, metadata and counts, one item per line:
 * "field NAME LEVEL TYPE [FINGERPRINT]", "meta KEY VALUE", "records N",
 * "events N" (tab-separated, values escaped).
 */
int cs_text_write_info(FILE *fp, const char *name, const cs_schema *s,
		       uint64_t records, uint64_t events, cs_error *err);
/*
 * The same as one JSON object: {"fields": [{"name", "level", "type"[,
 * "vocab"]}, ...], "meta": {KEY: VALUE, ...}, "records": N, "events": N}.
 */
int cs_text_write_info_json(FILE *fp, const char *name, const cs_schema *s,
			    uint64_t records, uint64_t events, cs_error *err);

typedef struct cs_text_reader cs_text_reader;

/* Read from fp (not closed); reads metadata lines and the header. */
cs_text_reader *cs_text_reader_open(FILE *fp, const char *name, cs_error *err);
void cs_text_reader_close(cs_text_reader *r);
const cs_schema *cs_text_reader_schema(const cs_text_reader *r);
/* Next sequence into rec: 1, 0 at the end, -1 on error ("file:line: ..."). */
int cs_text_reader_next(cs_text_reader *r, cs_record *rec, cs_error *err);

/* ------------------------------------------------------------ helpers */

/* Escape len bytes of s into dst (room for 4 * len + 1); returns the length. */
size_t cs_text_escape(char *dst, const char *s, size_t len);
/*
 * Write len bytes of s to fp escaped as cs_text_escape does: how every
 * program prints a key or token in a tab-separated line, so that a tab,
 * newline or NUL in it cannot forge or cut lines (cs-formats(5)).
 * Returns 0, or EOF on a write error.
 */
int cs_text_put(FILE *fp, const char *s, size_t len);
/*
 * Write len bytes of s to fp as a JSON string, quotes included (invalid
 * UTF-8 bytes become U+FFFD, as in cs-cat --json). 0, or EOF on a write
 * error or out of memory.
 */
int cs_text_put_json(FILE *fp, const char *s, size_t len);
/* Undo cs_text_escape into dst (room for len + 1); -1 on a bad escape. */
int cs_text_unescape(char *dst, size_t *dlen, const char *s, size_t len);
/* Shortest decimal that reads back as exactly v ("nan", "inf", "-inf"). */
int cs_text_format_float(char *buf, size_t n, float v);

#endif
