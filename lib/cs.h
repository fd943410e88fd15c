/*
 * cs.h - the public interface of libcs, the clickstream toolkit library.
 *
 * Conventions: the library never prints, never exits and never writes to
 * stdout. A failing function returns a negative value (or NULL) and fills a
 * cs_error. Who creates frees; every _close/_free accepts NULL.
 */
#ifndef CS_H
#define CS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CS_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------ errors */

enum {
	CS_OK = 0,
	CS_ERR_IO = 1,      /* a system call failed: errno is in the message */
	CS_ERR_FORMAT = 2,  /* bad data: wrong magic, truncated, corrupt, bad row */
	CS_ERR_VERSION = 3, /* a newer format version */
	CS_ERR_NOMEM = 4,
	CS_ERR_USAGE = 5,   /* the caller asked for something impossible */
	CS_ERR_LIMIT = 6,   /* a size beyond the sane limits below */
	CS_ERR_MODEL = 7    /* a model's outputs are not finite (its weights overflow) */
};

typedef struct cs_error {
	int code;
	char path[512]; /* file the error is about, "" if none */
	long line;      /* 1-based line of a text file, 0 if none */
	long long record; /* 1-based record of a stream, 0 if none */
	char msg[512];
} cs_error;

/* Fill err (if not NULL) and return -1. The message is printf-formatted. */
int cs_err(cs_error *err, int code, const char *path, long line,
	   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* "path:line: msg", "path: record N: msg" or "msg" into buf. */
const char *cs_strerror(const cs_error *err, char *buf, size_t n);

/* ------------------------------------------------------------ hashing */

/* 64-bit FNV-1a, seedable by chaining: h = cs_hash64(p, n, h). */
#define CS_HASH64_INIT 0xcbf29ce484222325ULL
uint64_t cs_hash64(const void *p, size_t n, uint64_t h);

/*
 * XXH64 (xxHash's 64-bit hash, its published algorithm and values): eight
 * bytes a step on four independent lanes, so a CPU hashes several bytes a
 * cycle where FNV-1a's one multiply per byte in a chain does one every
 * few. One call, or a running state fed in pieces of any size (the same
 * result for the same bytes however they are split).
 */
uint64_t cs_xxh64(const void *p, size_t n, uint64_t seed);
typedef struct cs_xxh64_state {
	uint64_t v[4], total;
	unsigned char buf[32];
	size_t nbuf;
	uint64_t seed;
} cs_xxh64_state;
void cs_xxh64_init(cs_xxh64_state *s, uint64_t seed);
void cs_xxh64_update(cs_xxh64_state *s, const void *p, size_t n);
uint64_t cs_xxh64_digest(const cs_xxh64_state *s);

/* ------------------------------------------------------------ schema */

enum cs_type { CS_STRING = 0, CS_ID = 1, CS_INT64 = 2, CS_FLOAT32 = 3 };
enum cs_level { CS_SEQ = 0, CS_EVENT = 1 };

#define CS_MAX_FIELDS 1024
#define CS_MAX_NAME 255            /* field and metadata key names */
#define CS_MAX_META_VALUE (1u << 20)
#define CS_MAX_STRING (64u << 20)  /* one string value */
#define CS_MAX_RECORD (1u << 30)   /* one encoded record, bytes */
#define CS_MAX_EVENTS (1u << 26)   /* events in one record */

typedef struct cs_field {
	char *name;
	int level;      /* enum cs_level */
	int type;       /* enum cs_type */
	uint64_t vocab; /* fingerprint of the vocabulary of an id field, 0 if none */
} cs_field;

typedef struct cs_schema {
	size_t nfields;
	cs_field *f;
	size_t nmeta;
	char **key; /* metadata, free-form key/value strings */
	char **val;
} cs_schema;

cs_schema *cs_schema_new(void);
void cs_schema_free(cs_schema *s);
cs_schema *cs_schema_dup(const cs_schema *s);
/* Append a field; returns its index, or -1 (duplicate name, bad type). */
int cs_schema_add(cs_schema *s, const char *name, int level, int type,
		  cs_error *err);
/* Index of the field called name, or -1. */
int cs_schema_find(const cs_schema *s, const char *name);
/* Remove field i (indices after it shift down by one). */
void cs_schema_remove(cs_schema *s, size_t i);
int cs_schema_set_meta(cs_schema *s, const char *key, const char *val,
		       cs_error *err);
const char *cs_schema_get_meta(const cs_schema *s, const char *key);
const char *cs_type_name(int type);   /* "string", "id", "int64", "float32" */
int cs_type_parse(const char *name);  /* inverse, -1 if unknown */
const char *cs_level_name(int level); /* "seq", "event" */
int cs_level_parse(const char *name);

/* ------------------------------------------------------------ records */

/*
 * One record is one sequence. Each schema field has one column; a
 * sequence-level column holds exactly one value, an event-level column
 * holds nevents values. Strings are stored back to back in str with n+1
 * offsets in off (off[0] == 0).
 */
typedef struct cs_column {
	size_t n, cap;
	union {
		uint32_t *u32;
		int64_t *i64;
		float *f32;
		void *p;
	} v;
	uint32_t *off; /* strings: n+1 offsets into str */
	char *str;
	size_t strcap;
	int type;
} cs_column;

typedef struct cs_record {
	size_t nevents;
	size_t ncols;
	cs_column *col;
} cs_record;

/* Make rec's columns match schema s (keeps buffers when it can). */
int cs_record_init(cs_record *rec, const cs_schema *s, cs_error *err);
void cs_record_free(cs_record *rec);
/* Empty every column and set nevents to 0, keeping the allocations. */
void cs_record_clear(cs_record *rec);

int cs_col_reserve(cs_column *c, size_t n);
int cs_col_push_u32(cs_column *c, uint32_t v);
int cs_col_push_i64(cs_column *c, int64_t v);
int cs_col_push_f32(cs_column *c, float v);
int cs_col_push_str(cs_column *c, const char *s, size_t len);
/* Pointer to string i (not NUL-terminated) and its length. */
static inline const char *cs_col_str(const cs_column *c, size_t i, size_t *len)
{
	*len = c->off[i + 1] - c->off[i];
	return c->str + c->off[i];
}
/* Copy value i of src onto the end of dst (same type). */
int cs_col_push_from(cs_column *dst, const cs_column *src, size_t i);
/* Append values [from, from + n) of src to dst (same type). */
int cs_col_append(cs_column *dst, const cs_column *src, size_t from, size_t n);
/*
 * Copy events [from, from + n) of src into dst, which must have the same
 * columns first (dst may have more, left empty); seq-level values are
 * copied whole. dst is cleared first.
 */
int cs_record_slice(cs_record *dst, const cs_schema *s, const cs_record *src,
		    size_t from, size_t n);

/* ------------------------------------------------------------ streams */

/*
 * The sequence stream: one zstd stream with frame checksums holding a
 * header (magic "CSSQ", version, schema, metadata), records, and a trailer
 * with the record and event counts. Documented in cs-formats(5).
 */
#define CS_STREAM_VERSION 1
/* zstd level by default: level 1 writes about twice as fast as 3 for 5% more bytes. */
#define CS_STREAM_LEVEL 1

typedef struct cs_reader cs_reader;
typedef struct cs_writer cs_writer;

/* Open path ("-" or NULL: stdin) and read its header. */
cs_reader *cs_reader_open(const char *path, cs_error *err);
/* Read from an open FILE (not closed by cs_reader_close); name for messages. */
cs_reader *cs_reader_open_file(FILE *fp, const char *name, cs_error *err);
void cs_reader_close(cs_reader *r);
const cs_schema *cs_reader_schema(const cs_reader *r);
const char *cs_reader_path(const cs_reader *r);
/*
 * Read the next record into rec (which cs_reader_next initialises to the
 * reader's schema). Returns 1 with a record, 0 at the end of the stream
 * (after the trailer has been checked), -1 on error.
 */
int cs_reader_next(cs_reader *r, cs_record *rec, cs_error *err);
/* Records and events read so far. */
uint64_t cs_reader_records(const cs_reader *r);
uint64_t cs_reader_events(const cs_reader *r);
/* Compressed bytes consumed so far (for progress). */
uint64_t cs_reader_bytes_in(const cs_reader *r);

typedef struct cs_writer_opts {
	int level;   /* zstd level, 0 = CS_STREAM_LEVEL */
	int threads; /* > 1: that many frames compressed at once, each in
		      * its own thread; 0 or 1: in the caller's thread */
} cs_writer_opts;

/*
 * Create path ("-" or NULL: stdout) and write the header. A named file is
 * written under a temporary name in the same directory and renamed into
 * place by cs_writer_close, so a reader never sees a half-written file.
 */
cs_writer *cs_writer_open(const char *path, const cs_schema *s,
			  const cs_writer_opts *opts, cs_error *err);
cs_writer *cs_writer_open_file(FILE *fp, const char *name, const cs_schema *s,
			       const cs_writer_opts *opts, cs_error *err);
/* Append a record; its columns must match the schema given at open. */
int cs_writer_put(cs_writer *w, const cs_record *rec, cs_error *err);
/* Write the trailer, flush, fsync and rename into place. Frees w. */
int cs_writer_close(cs_writer *w, cs_error *err);
/* Give up: remove the temporary file. Frees w. NULL is a no-op. */
void cs_writer_abort(cs_writer *w);
uint64_t cs_writer_records(const cs_writer *w);
uint64_t cs_writer_bytes_out(const cs_writer *w);
/* The name of the output in messages: its path, "<stdout>" or the name given. */
const char *cs_writer_path(const cs_writer *w);

/* ------------------------------------------------------------ files */

/*
 * An output file written atomically: data goes to a temporary file beside
 * path and cs_ofile_commit renames it into place. "-" writes to stdout;
 * an existing device or FIFO (/dev/null, a named pipe) is written in place.
 */
typedef struct cs_ofile {
	FILE *fp;
	char *path;  /* final name, NULL for stdout */
	char *tmp;   /* temporary name, NULL for stdout or a device */
	int dev;     /* path is a device or FIFO, written in place */
} cs_ofile;

int cs_ofile_open(cs_ofile *of, const char *path, cs_error *err);
int cs_ofile_commit(cs_ofile *of, cs_error *err);
void cs_ofile_abort(cs_ofile *of);
/* Unlink every temporary file still open; async-signal-safe, for handlers. */
void cs_ofile_remove_temps(void);
/*
 * Can path be written by cs_ofile? Checked before any work: CS_ERR_USAGE
 * for an empty name or a directory, CS_ERR_IO when its directory is
 * missing or not writable. "-" (stdout) always can.
 */
int cs_ofile_check(const char *path, cs_error *err);
/* Do two output names name one file (the same string, the same file, or
 * the same name in the same directory)? */
int cs_ofile_same(const char *a, const char *b);

/* ------------------------------------------------------------ lines */

/*
 * Text lines of a file descriptor, read in large blocks, that can say when
 * the next line is not at hand yet: a program answering lines one by one
 * (a service writing a request and waiting) answers what it has read
 * before it waits for more.
 */
typedef struct cs_lines cs_lines;

#define CS_LINES_LATER 2

/* Read fd (not closed by cs_lines_free); name for messages. NULL: no memory. */
cs_lines *cs_lines_new(int fd, const char *name);
void cs_lines_free(cs_lines *l);
/*
 * The next line into *line (its newline replaced by a NUL; valid until the
 * next call) and its length, without the newline, into *len (it may hold
 * NUL bytes). Returns 1 with a line (the last one may lack its newline),
 * 0 at the end of input, -1 with err filled on a read error or when out of
 * memory. With wait == 0, returns CS_LINES_LATER instead of waiting when
 * no whole line is buffered and the descriptor has nothing to read now.
 */
int cs_lines_next(cs_lines *l, int wait, char **line, size_t *len, cs_error *err);

/* ------------------------------------------------------------ utilities */

/*
 * Grow array *p of *cap elements of size sz to hold need elements
 * (doubling from 64). Returns 0, or -1 (and *p unchanged) when out of
 * memory.
 */
int cs_grow(void **p, size_t *cap, size_t need, size_t sz);
/*
 * malloc for a large buffer about to be filled at once (a model's
 * parameters): big ones are aligned to 2 MiB and offered transparent huge
 * pages, one page fault per 2 MiB rather than per 4 KiB (that is most of the
 * cost of filling fresh memory in a virtual machine). Freed with free().
 */
void *cs_malloc_large(size_t n);
/* The same, huge pages offered whatever n (rounded up to whole 2 MiB pages:
 * for a block of a few MiB filled soon, where 4 KiB faults would cost more
 * than the rounding). */
void *cs_malloc_huge(size_t n);
/* Monotonic clock in seconds. */
double cs_now(void);
/* "512M", "2G", "100k", "1000" (bytes, binary multiples) into *out. */
int cs_parse_bytes(const char *s, uint64_t *out);
/* "30m", "1h", "90s", "2d", "45" (seconds) into *out, in seconds. */
int cs_parse_duration(const char *s, int64_t *out);

#endif
