/*
 * stream.c - the sequence stream: zstd frames with checksums around a
 * header, records and a trailer. The layout is in cs-formats(5):
 *
 *   header:  "CSSQ" u32 version u32 schema_len schema
 *   schema:  u32 nfields { u8 level u8 type u16 namelen name u64 vocab }
 *            u32 nmeta { u16 keylen key u32 vallen val }
 *   record:  'R' u32 len payload
 *   payload: u32 nevents, then per field in schema order its values
 *            (1 for a seq field, nevents for an event field):
 *            id u32, int64 i64, float32 f32, string: u32 lengths then bytes
 *   trailer: 'E' u64 records u64 events
 *
 * All integers little-endian. The writer ends a zstd frame every
 * FRAME_BYTES of payload so that a checksum guards each part.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>
#include "cs.h"
#include "cursor.h"

#define MAGIC "CSSQ"
#define TAG_RECORD 'R'
#define TAG_END 'E'
#define FRAME_BYTES (8u << 20)
#define MAX_SCHEMA (64u << 20)

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "cs streams are little-endian; this host needs byte swapping added"
#endif

/* ------------------------------------------------------------ writer */

/*
 * With threads > 1 the writer compresses whole frames in parallel: each
 * FRAME_BYTES of payload becomes a job (its own thread and CCtx) and the
 * frames are written in order as they finish. One streaming CCtx would
 * serialise at every frame end, where ZSTD_e_end waits for all workers.
 */
typedef struct zjob {
	pthread_t tid;
	int active;
	ZSTD_CCtx *cctx;
	unsigned char *in;
	size_t len, incap;
	unsigned char *out;
	size_t outcap, outlen; /* outlen: a ZSTD error code when it failed */
} zjob;

#define MAX_ZJOBS 16

struct cs_writer {
	cs_ofile of;
	int owned; /* of was opened by cs_writer_open */
	char *name;
	cs_schema *schema;
	ZSTD_CCtx *cctx;
	unsigned char *buf; /* payload waiting for the compressor */
	size_t len, cap;
	unsigned char *zout;
	size_t zcap;
	size_t in_frame; /* payload bytes in the current frame */
	int level;
	zjob *jobs;      /* njobs slots used round-robin, next the oldest */
	size_t njobs, next;
	uint64_t records, events, bytes_out;
};

static int wgrow(cs_writer *w, size_t more)
{
	if (w->len + more <= w->cap)
		return 0;
	size_t cap = w->cap ? w->cap : 1 << 17;
	while (cap < w->len + more)
		cap *= 2;
	unsigned char *b = realloc(w->buf, cap);
	if (!b)
		return -1;
	w->buf = b;
	w->cap = cap;
	return 0;
}

static inline void put(cs_writer *w, const void *p, size_t n)
{
	if (n)
		memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static inline void put_u8(cs_writer *w, uint8_t v) { put(w, &v, 1); }
static inline void put_u16(cs_writer *w, uint16_t v) { put(w, &v, 2); }
static inline void put_u32(cs_writer *w, uint32_t v) { put(w, &v, 4); }
static inline void put_u64(cs_writer *w, uint64_t v) { put(w, &v, 8); }

static int write_out(cs_writer *w, const void *p, size_t n, cs_error *err)
{
	if (n && fwrite(p, 1, n, w->of.fp) != n)
		return cs_err(err, CS_ERR_IO, w->name, 0, "write error: %s", strerror(errno));
	w->bytes_out += n;
	return 0;
}

static void *zjob_run(void *arg)
{
	zjob *j = arg;
	j->outlen = ZSTD_compress2(j->cctx, j->out, j->outcap, j->in, j->len);
	return NULL;
}

/* Wait for job j and write its frame. */
static int zjob_finish(cs_writer *w, zjob *j, cs_error *err)
{
	if (!j->active)
		return 0;
	pthread_join(j->tid, NULL);
	j->active = 0;
	if (ZSTD_isError(j->outlen))
		return cs_err(err, CS_ERR_IO, w->name, 0, "compression failed: %s",
			      ZSTD_getErrorName(j->outlen));
	return write_out(w, j->out, j->outlen, err);
}

static int zjob_drain(cs_writer *w, cs_error *err);

/* Hand w->buf to the next slot as one frame, taking the slot's old input
 * buffer in exchange; compress here when no thread can be had. */
static int zjob_submit(cs_writer *w, cs_error *err)
{
	zjob *j = &w->jobs[w->next];
	w->next = (w->next + 1) % w->njobs;
	if (zjob_finish(w, j, err) < 0)
		return -1;
	size_t bound = ZSTD_compressBound(w->len);
	if (!j->cctx) {
		if (!(j->cctx = ZSTD_createCCtx()))
			return cs_err(err, CS_ERR_NOMEM, w->name, 0, "out of memory");
		ZSTD_CCtx_setParameter(j->cctx, ZSTD_c_compressionLevel, w->level);
		ZSTD_CCtx_setParameter(j->cctx, ZSTD_c_checksumFlag, 1);
	}
	if (j->outcap < bound) {
		free(j->out);
		if (!(j->out = malloc(bound))) {
			j->outcap = 0;
			return cs_err(err, CS_ERR_NOMEM, w->name, 0, "out of memory");
		}
		j->outcap = bound;
	}
	unsigned char *b = j->in;
	size_t bcap = j->incap;
	j->in = w->buf;
	j->incap = w->cap;
	j->len = w->len;
	w->buf = b;
	w->cap = bcap;
	w->len = 0;
	if (pthread_create(&j->tid, NULL, zjob_run, j) == 0) {
		j->active = 1;
		return 0;
	}
	/* no thread: compress here; the frames before are written first */
	zjob_run(j);
	if (zjob_drain(w, err) < 0)
		return -1;
	if (ZSTD_isError(j->outlen))
		return cs_err(err, CS_ERR_IO, w->name, 0, "compression failed: %s",
			      ZSTD_getErrorName(j->outlen));
	return write_out(w, j->out, j->outlen, err);
}

/* Write every frame in flight, oldest first. */
static int zjob_drain(cs_writer *w, cs_error *err)
{
	int rc = 0;
	for (size_t i = 0; i < w->njobs; i++) {
		zjob *j = &w->jobs[(w->next + i) % w->njobs];
		if (zjob_finish(w, j, err) < 0 && rc == 0)
			rc = -1;
	}
	return rc;
}

/* Compress w->buf; end the zstd frame when asked or when it is long. */
static int wflush(cs_writer *w, int end, cs_error *err)
{
	if (w->njobs) {
		if (w->len && zjob_submit(w, err) < 0)
			return -1;
		return end ? zjob_drain(w, err) : 0;
	}
	ZSTD_inBuffer in = { w->buf, w->len, 0 };
	w->in_frame += w->len;
	ZSTD_EndDirective mode = end || w->in_frame >= FRAME_BYTES ? ZSTD_e_end : ZSTD_e_continue;
	for (;;) {
		ZSTD_outBuffer out = { w->zout, w->zcap, 0 };
		size_t r = ZSTD_compressStream2(w->cctx, &out, &in, mode);
		if (ZSTD_isError(r))
			return cs_err(err, CS_ERR_IO, w->name, 0, "compression failed: %s",
				      ZSTD_getErrorName(r));
		if (write_out(w, w->zout, out.pos, err) < 0)
			return -1;
		if (mode == ZSTD_e_continue ? in.pos == in.size : r == 0)
			break;
	}
	if (mode == ZSTD_e_end)
		w->in_frame = 0;
	w->len = 0;
	return 0;
}

static cs_writer *writer_new(const char *name, const cs_schema *s,
			     const cs_writer_opts *opts, cs_error *err)
{
	cs_writer *w = calloc(1, sizeof *w);
	if (!w || !(w->name = strdup(name)) || !(w->schema = cs_schema_dup(s)) ||
	    !(w->cctx = ZSTD_createCCtx())) {
		cs_err(err, CS_ERR_NOMEM, name, 0, "out of memory");
		goto fail;
	}
	w->level = opts && opts->level ? opts->level : CS_STREAM_LEVEL;
	ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, w->level);
	ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1);
	if (opts && opts->threads > 1) {
		w->njobs = (size_t)(opts->threads < MAX_ZJOBS ? opts->threads : MAX_ZJOBS);
		if (!(w->jobs = calloc(w->njobs, sizeof *w->jobs))) {
			cs_err(err, CS_ERR_NOMEM, name, 0, "out of memory");
			goto fail;
		}
	}
	w->zcap = ZSTD_CStreamOutSize();
	if (!(w->zout = malloc(w->zcap))) {
		cs_err(err, CS_ERR_NOMEM, name, 0, "out of memory");
		goto fail;
	}
	return w;
fail:
	if (w) {
		ZSTD_freeCCtx(w->cctx);
		cs_schema_free(w->schema);
		free(w->name);
		free(w);
	}
	return NULL;
}

static void writer_free(cs_writer *w)
{
	for (size_t i = 0; i < w->njobs; i++) {
		zjob *j = &w->jobs[i];
		if (j->active)
			pthread_join(j->tid, NULL);
		ZSTD_freeCCtx(j->cctx);
		free(j->in);
		free(j->out);
	}
	free(w->jobs);
	ZSTD_freeCCtx(w->cctx);
	cs_schema_free(w->schema);
	free(w->buf);
	free(w->zout);
	free(w->name);
	free(w);
}

static int write_header(cs_writer *w, cs_error *err)
{
	const cs_schema *s = w->schema;
	size_t n = 8;
	for (size_t i = 0; i < s->nfields; i++)
		n += 12 + strlen(s->f[i].name);
	for (size_t i = 0; i < s->nmeta; i++)
		n += 6 + strlen(s->key[i]) + strlen(s->val[i]);
	if (n > MAX_SCHEMA)
		return cs_err(err, CS_ERR_LIMIT, w->name, 0, "schema too large");
	if (wgrow(w, 12 + n) < 0)
		return cs_err(err, CS_ERR_NOMEM, w->name, 0, "out of memory");
	put(w, MAGIC, 4);
	put_u32(w, CS_STREAM_VERSION);
	put_u32(w, (uint32_t)n);
	put_u32(w, (uint32_t)s->nfields);
	for (size_t i = 0; i < s->nfields; i++) {
		size_t l = strlen(s->f[i].name);
		put_u8(w, (uint8_t)s->f[i].level);
		put_u8(w, (uint8_t)s->f[i].type);
		put_u16(w, (uint16_t)l);
		put(w, s->f[i].name, l);
		put_u64(w, s->f[i].vocab);
	}
	put_u32(w, (uint32_t)s->nmeta);
	for (size_t i = 0; i < s->nmeta; i++) {
		size_t kl = strlen(s->key[i]), vl = strlen(s->val[i]);
		put_u16(w, (uint16_t)kl);
		put(w, s->key[i], kl);
		put_u32(w, (uint32_t)vl);
		put(w, s->val[i], vl);
	}
	return 0;
}

cs_writer *cs_writer_open(const char *path, const cs_schema *s,
			  const cs_writer_opts *opts, cs_error *err)
{
	const char *name = !path || strcmp(path, "-") == 0 ? "<stdout>" : path;
	cs_writer *w = writer_new(name, s, opts, err);
	if (!w)
		return NULL;
	if (cs_ofile_open(&w->of, path, err) < 0) {
		writer_free(w);
		return NULL;
	}
	w->owned = 1;
	if (write_header(w, err) < 0) {
		cs_writer_abort(w);
		return NULL;
	}
	return w;
}

cs_writer *cs_writer_open_file(FILE *fp, const char *name, const cs_schema *s,
			       const cs_writer_opts *opts, cs_error *err)
{
	cs_writer *w = writer_new(name ? name : "<stream>", s, opts, err);
	if (!w)
		return NULL;
	w->of.fp = fp; /* no path: commit only flushes, abort leaves fp open */
	if (write_header(w, err) < 0) {
		writer_free(w);
		return NULL;
	}
	return w;
}

/* Check that rec fits the schema; returns the payload size or 0 on error. */
static size_t record_size(const cs_writer *w, const cs_record *rec, cs_error *err)
{
	const cs_schema *s = w->schema;
	if (rec->ncols != s->nfields) {
		cs_err(err, CS_ERR_USAGE, w->name, 0, "record has %zu columns, schema %zu",
		       rec->ncols, s->nfields);
		return 0;
	}
	if (rec->nevents > CS_MAX_EVENTS) {
		cs_err(err, CS_ERR_LIMIT, w->name, 0, "sequence of %zu events is too long",
		       rec->nevents);
		return 0;
	}
	size_t n = 4;
	for (size_t i = 0; i < s->nfields; i++) {
		const cs_column *c = &rec->col[i];
		size_t want = s->f[i].level == CS_SEQ ? 1 : rec->nevents;
		if (c->type != s->f[i].type || c->n != want) {
			cs_err(err, CS_ERR_USAGE, w->name, 0,
			       "field '%s' holds %zu %s values, expected %zu %s",
			       s->f[i].name, c->n, cs_type_name(c->type), want,
			       cs_type_name(s->f[i].type));
			return 0;
		}
		if (c->type == CS_STRING)
			n += 4 * want + (want ? c->off[want] : 0);
		else
			n += want * (c->type == CS_INT64 ? 8 : 4);
	}
	if (n > CS_MAX_RECORD) {
		cs_err(err, CS_ERR_LIMIT, w->name, 0, "record of %zu bytes is too large", n);
		return 0;
	}
	return n;
}

int cs_writer_put(cs_writer *w, const cs_record *rec, cs_error *err)
{
	size_t n = record_size(w, rec, err);
	if (!n) {
		err->record = (long long)w->records + 1;
		return -1;
	}
	if (wgrow(w, 5 + n) < 0)
		return cs_err(err, CS_ERR_NOMEM, w->name, 0, "out of memory");
	put_u8(w, TAG_RECORD);
	put_u32(w, (uint32_t)n);
	put_u32(w, (uint32_t)rec->nevents);
	for (size_t i = 0; i < rec->ncols; i++) {
		const cs_column *c = &rec->col[i];
		size_t k = c->n;
		switch (c->type) {
		case CS_STRING:
			for (size_t j = 0; j < k; j++)
				put_u32(w, c->off[j + 1] - c->off[j]);
			put(w, c->str, k ? c->off[k] : 0);
			break;
		case CS_INT64:
			put(w, c->v.i64, 8 * k);
			break;
		default:
			put(w, c->v.u32, 4 * k);
			break;
		}
	}
	w->records++;
	w->events += rec->nevents;
	if (w->len >= (w->njobs ? FRAME_BYTES : 1u << 17) && wflush(w, 0, err) < 0)
		return -1;
	return 0;
}

int cs_writer_close(cs_writer *w, cs_error *err)
{
	if (!w)
		return 0;
	if (wgrow(w, 17) < 0) {
		cs_writer_abort(w);
		return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	}
	put_u8(w, TAG_END);
	put_u64(w, w->records);
	put_u64(w, w->events);
	if (wflush(w, 1, err) < 0) {
		cs_writer_abort(w);
		return -1;
	}
	int rc = 0;
	if (w->owned) {
		rc = cs_ofile_commit(&w->of, err);
	} else if (fflush(w->of.fp) != 0) {
		rc = cs_err(err, CS_ERR_IO, w->name, 0, "write error: %s", strerror(errno));
	}
	writer_free(w);
	return rc;
}

void cs_writer_abort(cs_writer *w)
{
	if (!w)
		return;
	if (w->owned)
		cs_ofile_abort(&w->of);
	writer_free(w);
}

uint64_t cs_writer_records(const cs_writer *w) { return w->records; }
uint64_t cs_writer_bytes_out(const cs_writer *w) { return w->bytes_out; }
const char *cs_writer_path(const cs_writer *w) { return w->name; }

/* ------------------------------------------------------------ reader */

struct cs_reader {
	FILE *fp;
	int own_fp;
	char *name;
	cs_schema *schema;
	ZSTD_DCtx *dctx;
	unsigned char *zin; /* compressed input */
	ZSTD_inBuffer in;
	size_t zcap;
	int eof;        /* no more compressed input */
	size_t zlast;   /* last ZSTD_decompressStream hint: 0 = frame complete */
	unsigned char *buf; /* decompressed bytes [pos, len) not yet parsed */
	size_t pos, len, cap;
	int done;
	uint64_t records, events, bytes_in;
};

/* Decompress more into buf; returns 1 when bytes were added, 0 at the clean
 * end, -1 on error. */
static int rfill(cs_reader *r, cs_error *err)
{
	if (r->len == r->cap) {
		if (r->pos > 0) {
			memmove(r->buf, r->buf + r->pos, r->len - r->pos);
			r->len -= r->pos;
			r->pos = 0;
		} else {
			size_t cap = r->cap * 2;
			unsigned char *b = realloc(r->buf, cap);
			if (!b)
				return cs_err(err, CS_ERR_NOMEM, r->name, 0, "out of memory");
			r->buf = b;
			r->cap = cap;
		}
	}
	for (;;) {
		if (r->in.pos == r->in.size && !r->eof) {
			size_t n = fread(r->zin, 1, r->zcap, r->fp);
			if (n == 0) {
				if (ferror(r->fp))
					return cs_err(err, CS_ERR_IO, r->name, 0, "read error: %s",
						      strerror(errno));
				r->eof = 1;
			}
			r->in.size = n;
			r->in.pos = 0;
			r->bytes_in += n;
		}
		if (r->in.pos == r->in.size && r->eof) {
			if (r->zlast != 0)
				return cs_err(err, CS_ERR_FORMAT, r->name, 0,
					      "truncated stream (incomplete zstd frame)");
			return 0;
		}
		ZSTD_outBuffer out = { r->buf, r->cap, r->len };
		size_t z = ZSTD_decompressStream(r->dctx, &out, &r->in);
		if (ZSTD_isError(z)) {
			if (r->records == 0 && r->schema == NULL && r->bytes_in <= r->zcap &&
			    ZSTD_getErrorCode(z) == ZSTD_error_prefix_unknown)
				return cs_err(err, CS_ERR_FORMAT, r->name, 0,
					      "not a cs sequence stream (not zstd-compressed)");
			return cs_err(err, CS_ERR_FORMAT, r->name, 0, "corrupt stream: %s",
				      ZSTD_getErrorName(z));
		}
		r->zlast = z;
		if (out.pos > r->len) {
			r->len = out.pos;
			return 1;
		}
	}
}

/* Make n bytes available at buf + pos. The buffer grows with the data
 * that arrives (rfill doubles it when full), never with the n a file
 * claims, so a corrupt length costs no memory. */
static int need(cs_reader *r, size_t n, const char *what, cs_error *err)
{
	while (r->len - r->pos < n) {
		int got = rfill(r, err);
		if (got < 0)
			return -1;
		if (got == 0)
			return cs_err(err, CS_ERR_FORMAT, r->name, 0,
				      "truncated stream (end of data inside %s)", what);
	}
	return 0;
}

static int read_header(cs_reader *r, cs_error *err)
{
	if (need(r, 12, "the header", err) < 0) {
		if (r->len - r->pos == 0 && err && err->code == CS_ERR_FORMAT && !r->bytes_in)
			cs_err(err, CS_ERR_FORMAT, r->name, 0, "empty input, not a cs sequence stream");
		return -1;
	}
	const unsigned char *h = r->buf + r->pos;
	if (memcmp(h, MAGIC, 4) != 0)
		return cs_err(err, CS_ERR_FORMAT, r->name, 0, "not a cs sequence stream (bad magic)");
	uint32_t version, n;
	memcpy(&version, h + 4, 4);
	memcpy(&n, h + 8, 4);
	if (version > CS_STREAM_VERSION)
		return cs_err(err, CS_ERR_VERSION, r->name, 0,
			      "stream format version %u is newer than this program reads (%d): "
			      "upgrade cs", version, CS_STREAM_VERSION);
	if (version == 0)
		return cs_err(err, CS_ERR_FORMAT, r->name, 0, "bad stream format version 0");
	if (n > MAX_SCHEMA)
		return cs_err(err, CS_ERR_FORMAT, r->name, 0, "corrupt header (schema of %u bytes)", n);
	r->pos += 12;
	if (need(r, n, "the header", err) < 0)
		return -1;
	cs_cursor c = { r->buf + r->pos, r->buf + r->pos + n, 0 };
	r->pos += n;
	cs_schema *s = cs_schema_new();
	if (!s)
		return cs_err(err, CS_ERR_NOMEM, r->name, 0, "out of memory");
	uint32_t nf = cs_take_u32(&c);
	if (nf > CS_MAX_FIELDS)
		goto corrupt;
	for (uint32_t i = 0; i < nf && !c.bad; i++) {
		int level = cs_take_u8(&c), type = cs_take_u8(&c);
		char *name = cs_take_str(&c, cs_take_u16(&c));
		uint64_t vocab = cs_take_u64(&c);
		if (!name || c.bad)
			goto corrupt_name;
		int k = cs_schema_add(s, name, level, type, NULL);
		free(name);
		if (k < 0)
			goto corrupt;
		s->f[k].vocab = vocab;
		continue;
corrupt_name:
		free(name);
		goto corrupt;
	}
	uint32_t nm = cs_take_u32(&c);
	for (uint32_t i = 0; i < nm && !c.bad; i++) {
		char *key = cs_take_str(&c, cs_take_u16(&c));
		uint32_t vl = cs_take_u32(&c);
		char *val = vl <= CS_MAX_META_VALUE && key ? cs_take_str(&c, vl) : NULL;
		int bad = !key || !val || cs_schema_set_meta(s, key, val, NULL) < 0;
		free(key);
		free(val);
		if (bad)
			goto corrupt;
	}
	if (c.bad || c.p != c.end)
		goto corrupt;
	r->schema = s;
	return 0;
corrupt:
	cs_schema_free(s);
	return cs_err(err, CS_ERR_FORMAT, r->name, 0, "corrupt header (bad schema)");
}

cs_reader *cs_reader_open_file(FILE *fp, const char *name, cs_error *err)
{
	cs_reader *r = calloc(1, sizeof *r);
	if (!r || !(r->name = strdup(name ? name : "<stream>")) ||
	    !(r->dctx = ZSTD_createDCtx())) {
		cs_err(err, CS_ERR_NOMEM, name, 0, "out of memory");
		goto fail;
	}
	r->fp = fp;
	r->zcap = ZSTD_DStreamInSize();
	r->cap = 1 << 18;
	r->zin = malloc(r->zcap);
	r->buf = malloc(r->cap);
	r->in.src = r->zin;
	if (!r->zin || !r->buf) {
		cs_err(err, CS_ERR_NOMEM, name, 0, "out of memory");
		goto fail;
	}
	/* The header's own bounds checks guard memory; cap zstd's window too. */
	ZSTD_DCtx_setParameter(r->dctx, ZSTD_d_windowLogMax, 27);
	if (read_header(r, err) < 0)
		goto fail;
	return r;
fail:
	cs_reader_close(r);
	return NULL;
}

cs_reader *cs_reader_open(const char *path, cs_error *err)
{
	if (!path || strcmp(path, "-") == 0) {
		cs_reader *r = cs_reader_open_file(stdin, "<stdin>", err);
		return r;
	}
	FILE *fp = fopen(path, "rb");
	if (!fp) {
		cs_err(err, CS_ERR_IO, path, 0, "cannot open: %s", strerror(errno));
		return NULL;
	}
	cs_reader *r = cs_reader_open_file(fp, path, err);
	if (!r) {
		fclose(fp);
		return NULL;
	}
	r->own_fp = 1;
	return r;
}

void cs_reader_close(cs_reader *r)
{
	if (!r)
		return;
	if (r->own_fp)
		fclose(r->fp);
	ZSTD_freeDCtx(r->dctx);
	cs_schema_free(r->schema);
	free(r->zin);
	free(r->buf);
	free(r->name);
	free(r);
}

const cs_schema *cs_reader_schema(const cs_reader *r) { return r->schema; }
const char *cs_reader_path(const cs_reader *r) { return r->name; }
uint64_t cs_reader_records(const cs_reader *r) { return r->records; }
uint64_t cs_reader_events(const cs_reader *r) { return r->events; }
uint64_t cs_reader_bytes_in(const cs_reader *r) { return r->bytes_in; }

/* Decode one record payload into rec. */
static int decode(cs_reader *r, cs_cursor *c, cs_record *rec)
{
	const cs_schema *s = r->schema;
	uint32_t ne = cs_take_u32(c);
	if (ne > CS_MAX_EVENTS)
		return -1;
	rec->nevents = ne;
	for (size_t i = 0; i < s->nfields; i++) {
		cs_column *col = &rec->col[i];
		size_t k = s->f[i].level == CS_SEQ ? 1 : ne;
		size_t avail = (size_t)(c->end - c->p);
		if (col->type == CS_STRING) {
			if (k > avail / 4 || cs_col_reserve(col, k) < 0)
				return -1;
			uint64_t total = 0;
			col->off[0] = 0;
			for (size_t j = 0; j < k; j++) {
				uint32_t l;
				memcpy(&l, c->p + 4 * j, 4);
				total += l;
				if (total > avail - 4 * k)
					return -1;
				col->off[j + 1] = (uint32_t)total;
			}
			c->p += 4 * k;
			col->n = 0;
			if (col->strcap < total) {
				char *b = realloc(col->str, total);
				if (!b)
					return -1;
				col->str = b;
				col->strcap = total;
			}
			if (total)
				memcpy(col->str, c->p, total);
			c->p += total;
			col->n = k;
		} else {
			size_t sz = col->type == CS_INT64 ? 8 : 4;
			if (k > avail / sz || cs_col_reserve(col, k) < 0)
				return -1;
			if (k)
				memcpy(col->v.p, c->p, k * sz);
			c->p += k * sz;
			col->n = k;
		}
	}
	return c->p == c->end ? 0 : -1;
}

/* The largest record of ne events the schema allows, in bytes: exact
 * for numbers and ids, strings up to CS_MAX_STRING each. */
static uint64_t record_most(const cs_schema *s, uint32_t ne)
{
	uint64_t n = 4;
	for (size_t i = 0; i < s->nfields; i++) {
		uint64_t k = s->f[i].level == CS_SEQ ? 1 : ne;
		n += k * (s->f[i].type == CS_STRING ? 4 + (uint64_t)CS_MAX_STRING :
			  s->f[i].type == CS_INT64 ? 8 : 4);
	}
	return n;
}

int cs_reader_next(cs_reader *r, cs_record *rec, cs_error *err)
{
	if (r->done)
		return 0;
	if (cs_record_init(rec, r->schema, err) < 0)
		return -1;
	/* The data ending between records: the trailer was cut off. */
	while (r->len == r->pos) {
		int got = rfill(r, err);
		if (got < 0)
			goto fail;
		if (got == 0) {
			if (r->records)
				return cs_err(err, CS_ERR_FORMAT, r->name, 0,
					      "truncated stream: it ends after record %llu, without "
					      "its end-of-stream trailer",
					      (unsigned long long)r->records);
			return cs_err(err, CS_ERR_FORMAT, r->name, 0,
				      "truncated stream: it ends after its header, without its "
				      "end-of-stream trailer");
		}
	}
	unsigned char tag = r->buf[r->pos++];
	if (tag == TAG_END) {
		if (need(r, 16, "the trailer", err) < 0)
			goto fail;
		uint64_t nrec, nev;
		memcpy(&nrec, r->buf + r->pos, 8);
		memcpy(&nev, r->buf + r->pos + 8, 8);
		r->pos += 16;
		if (nrec != r->records || nev != r->events) {
			cs_err(err, CS_ERR_FORMAT, r->name, 0,
			       "trailer counts %llu records and %llu events, stream holds %llu and %llu",
			       (unsigned long long)nrec, (unsigned long long)nev,
			       (unsigned long long)r->records, (unsigned long long)r->events);
			return -1;
		}
		/* Nothing may follow the trailer, and the last frame must be whole. */
		if (r->len > r->pos) {
			cs_err(err, CS_ERR_FORMAT, r->name, 0, "data after the end of the stream");
			return -1;
		}
		int more = rfill(r, err);
		if (more < 0)
			return -1;
		if (more > 0) {
			cs_err(err, CS_ERR_FORMAT, r->name, 0, "data after the end of the stream");
			return -1;
		}
		r->done = 1;
		cs_record_clear(rec);
		return 0;
	}
	if (tag != TAG_RECORD) {
		cs_err(err, CS_ERR_FORMAT, r->name, 0, "corrupt stream (bad record tag 0x%02x)", tag);
		goto fail;
	}
	if (need(r, 4, "a record", err) < 0)
		goto fail;
	uint32_t n;
	memcpy(&n, r->buf + r->pos, 4);
	r->pos += 4;
	if (n > CS_MAX_RECORD || n < 4) {
		cs_err(err, CS_ERR_FORMAT, r->name, 0, "corrupt stream (record of %u bytes)", n);
		goto fail;
	}
	/* its length is checked against its event count before the data is
	 * waited for: a record needs no more than the schema allows */
	if (need(r, 4, "a record", err) < 0)
		goto fail;
	uint32_t ne;
	memcpy(&ne, r->buf + r->pos, 4);
	uint64_t most = record_most(r->schema, ne);
	if (n > most) {
		cs_err(err, CS_ERR_FORMAT, r->name, 0, "corrupt stream (record of %u bytes, more "
		       "than %u events can hold)", n, ne);
		goto fail;
	}
	if (need(r, n, "a record", err) < 0)
		goto fail;
	cs_cursor c = { r->buf + r->pos, r->buf + r->pos + n, 0 };
	r->pos += n;
	if (decode(r, &c, rec) < 0) {
		cs_err(err, CS_ERR_FORMAT, r->name, 0, "corrupt record");
		goto fail;
	}
	r->records++;
	r->events += rec->nevents;
	return 1;
fail:
	if (err)
		err->record = (long long)r->records + 1;
	return -1;
}
