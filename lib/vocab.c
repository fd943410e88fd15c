/*
 * vocab.c - vocabularies: token tables, counting with k-core filtering,
 * the text file, and encoding/decoding stream records.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "vocab.h"

static const char *const reserved[CS_VOCAB_RESERVED] = { "[PAD]", "[MASK]", "[UNK]" };

/* ------------------------------------------------------------ token table */

/*
 * Tokens back to back in buf, token t at off[t]..off[t+1]. An open
 * addressing table (linear probing, load <= 1/2) maps token bytes to t;
 * tokens pushed with index=0 (the reserved ones) are not in it. Tokens
 * from nidx on were pushed with index=2: their hashes kept, to be put in
 * the table together (dict_index_pending), a few slots fetched ahead.
 */
typedef struct dict {
	char *buf;
	size_t blen, bcap;
	size_t *off; /* ntok + 1 */
	uint64_t *hash;
	uint64_t *count;
	size_t ntok, cap;
	uint64_t *slot; /* high half: hash >> 32; low half: token + 1, 0: empty */
	size_t mask;    /* slots - 1 */
	void *arena;    /* set: off, hash, count, slot and buf lie in it (dict_reserve) */
	size_t nidx;    /* tokens [nidx, ntok) wait to be indexed */
} dict;

/* In memory only (the fingerprints of the file are FNV-1a's): XXH64 reads
 * a token eight bytes a step. */
static uint64_t tok_hash(const char *s, size_t len)
{
	uint64_t h = cs_xxh64(s, len, 0);
	return h ? h : 1; /* 0 marks a token outside the table */
}

static void dict_free(dict *d)
{
	if (d->arena) {
		free(d->arena);
	} else {
		free(d->buf);
		free(d->off);
		free(d->hash);
		free(d->count);
		free(d->slot);
	}
	memset(d, 0, sizeof *d);
}

/*
 * Room for ntok tokens of nbytes bytes in all, so that they are pushed
 * without a reallocation or a rehash, in one block (on huge pages when
 * large: filled at once, its 4 KiB pages one fault each were most of the
 * time of reading a vocabulary). d must be empty. -1 when out of memory.
 */
static int dict_reserve(dict *d, size_t ntok, size_t nbytes)
{
	size_t cap = ntok + 1, nslot = 1024; /* dict_push grows at ntok + 1 >= cap */
	while (nslot < 2 * ntok)
		nslot *= 2;
	size_t len = ((cap + 1) + 2 * cap + nslot) * 8 + (nbytes ? nbytes : 1);
	char *a = len >= (1u << 19) ? cs_malloc_huge(len) : malloc(len);
	if (!a)
		return -1;
	d->arena = a;
	d->off = (size_t *)a;
	d->hash = (uint64_t *)(a + (cap + 1) * 8);
	d->count = d->hash + cap;
	d->slot = d->count + cap;
	memset(d->slot, 0, nslot * 8);
	d->mask = nslot - 1;
	d->buf = (char *)(d->slot + nslot); /* last: what is not filled is not touched */
	d->bcap = nbytes ? nbytes : 1;
	d->cap = cap;
	d->off[0] = 0;
	return 0;
}

/* Out of the arena into arrays of their own, before one of them grows. */
static int dict_detach(dict *d)
{
	if (!d->arena)
		return 0;
	size_t nslot = d->mask + 1;
	size_t *off = malloc((d->cap + 1) * sizeof *off);
	uint64_t *hash = malloc(d->cap * sizeof *hash), *count = malloc(d->cap * sizeof *count),
		 *slot = malloc(nslot * sizeof *slot);
	char *buf = malloc(d->bcap);
	if (!off || !hash || !count || !slot || !buf) {
		free(off), free(hash), free(count), free(slot), free(buf);
		return -1;
	}
	memcpy(off, d->off, (d->ntok + 1) * sizeof *off);
	memcpy(hash, d->hash, d->ntok * sizeof *hash);
	memcpy(count, d->count, d->ntok * sizeof *count);
	memcpy(slot, d->slot, nslot * sizeof *slot);
	memcpy(buf, d->buf, d->blen);
	free(d->arena);
	d->arena = NULL;
	d->off = off, d->hash = hash, d->count = count, d->slot = slot, d->buf = buf;
	return 0;
}

static inline const char *dict_tok(const dict *d, size_t t, size_t *len)
{
	*len = d->off[t + 1] - d->off[t];
	return d->buf + d->off[t];
}

static long dict_find(const dict *d, const char *s, size_t len, uint64_t h)
{
	if (!d->slot)
		return -1;
	uint32_t tag = (uint32_t)(h >> 32);
	for (size_t i = h & d->mask;; i = (i + 1) & d->mask) {
		uint64_t e = d->slot[i];
		uint32_t t = (uint32_t)e;
		if (!t)
			return -1;
		t--;
		if ((uint32_t)(e >> 32) == tag && d->off[t + 1] - d->off[t] == len &&
		    memcmp(d->buf + d->off[t], s, len) == 0)
			return t;
	}
}

static void slot_put(dict *d, size_t t)
{
	size_t i = d->hash[t] & d->mask;
	while (d->slot[i])
		i = (i + 1) & d->mask;
	d->slot[i] = (d->hash[t] >> 32) << 32 | ((uint64_t)t + 1);
}

/* Rebuild the table with nslot slots; unindexed tokens have hash 0. */
static int dict_rehash(dict *d, size_t nslot)
{
	uint64_t *s = dict_detach(d) < 0 ? NULL : calloc(nslot, sizeof *s);
	if (!s)
		return -1;
	free(d->slot);
	d->slot = s;
	d->mask = nslot - 1;
	for (size_t t = 0; t < d->nidx; t++)
		if (d->hash[t])
			slot_put(d, t);
	return 0;
}

/* Append a token: index 1 indexes it, 0 never (a reserved one), 2 later
 * (dict_index_pending; until then no token may be pushed with 0 or 1).
 * Returns t or -1. */
static long dict_push(dict *d, const char *s, size_t len, uint64_t h, int index)
{
	if (d->ntok >= UINT32_MAX - 1)
		return -1;
	if ((d->ntok + 1 >= d->cap || d->blen + len > d->bcap) && dict_detach(d) < 0)
		return -1;
	if (d->ntok + 1 >= d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		size_t *off = realloc(d->off, (cap + 1) * sizeof *off);
		if (!off)
			return -1;
		d->off = off;
		uint64_t *hh = realloc(d->hash, cap * sizeof *hh);
		if (!hh)
			return -1;
		d->hash = hh;
		uint64_t *c = realloc(d->count, cap * sizeof *c);
		if (!c)
			return -1;
		d->count = c;
		d->cap = cap;
		if (d->ntok == 0)
			d->off[0] = 0;
	}
	if (!d->buf || d->blen + len > d->bcap) { /* buf even for "": tokens point into it */
		size_t cap = d->bcap ? d->bcap : 1024;
		while (cap < d->blen + len)
			cap *= 2;
		char *b = realloc(d->buf, cap);
		if (!b)
			return -1;
		d->buf = b;
		d->bcap = cap;
	}
	size_t t = d->ntok++;
	if (len)
		memcpy(d->buf + d->blen, s, len);
	d->blen += len;
	d->off[t + 1] = d->blen;
	d->hash[t] = index ? h : 0;
	d->count[t] = 0;
	if (index == 2)
		return (long)t;
	d->nidx = d->ntok;
	if (!index)
		return (long)t;
	if (!d->slot || d->ntok * 2 > d->mask + 1) {
		size_t n = d->slot ? (d->mask + 1) * 2 : 1024;
		while (n < d->ntok * 2)
			n *= 2;
		if (dict_rehash(d, n) < 0) {
			d->nidx = --d->ntok;
			d->blen -= len;
			return -1;
		}
		return (long)t;
	}
	slot_put(d, t);
	return (long)t;
}

/*
 * Put the waiting tokens in the table, each checked against those before
 * it. Returns 0; 1 with *dup a token equal to an earlier one, *orig (the
 * tokens after it are left out: the caller fails); -1 when out of memory.
 * The slot of the token 16 ahead is fetched while one is placed: the table
 * is too large for the caches, and one miss a token was most of the time
 * of reading a vocabulary.
 */
static int dict_index_pending(dict *d, size_t *dup, size_t *orig)
{
	if (d->nidx == d->ntok)
		return 0;
	if (!d->slot || d->ntok * 2 > d->mask + 1) {
		size_t n = d->slot ? (d->mask + 1) * 2 : 1024;
		while (n < d->ntok * 2)
			n *= 2;
		if (dict_rehash(d, n) < 0)
			return -1;
	}
	for (size_t t = d->nidx; t < d->ntok; t++) {
		if (t + 16 < d->ntok)
			__builtin_prefetch(&d->slot[d->hash[t + 16] & d->mask]);
		uint64_t h = d->hash[t];
		uint32_t tag = (uint32_t)(h >> 32);
		size_t len, i;
		const char *s = dict_tok(d, t, &len);
		for (i = h & d->mask; d->slot[i]; i = (i + 1) & d->mask) {
			uint64_t e = d->slot[i];
			size_t u = (uint32_t)e - 1;
			if ((uint32_t)(e >> 32) == tag && d->off[u + 1] - d->off[u] == len &&
			    memcmp(d->buf + d->off[u], s, len) == 0) {
				*dup = t;
				*orig = u;
				d->nidx = d->ntok; /* not again */
				return 1;
			}
		}
		d->slot[i] = (uint64_t)tag << 32 | ((uint64_t)t + 1);
	}
	d->nidx = d->ntok;
	return 0;
}

/* Find or add a token. */
static long dict_intern(dict *d, const char *s, size_t len)
{
	uint64_t h = tok_hash(s, len);
	long t = dict_find(d, s, len, h);
	return t >= 0 ? t : dict_push(d, s, len, h, 1);
}

/* ------------------------------------------------------------ vocabulary */

typedef struct vsec {
	char *name;
	dict d;
	uint64_t fp;
	long line;    /* of the section line, when read */
	size_t *comm; /* reading: the ids that follow comment lines, ncomm of them */
	size_t ncomm, comm_cap;
} vsec;

struct cs_vocab {
	size_t nf;
	vsec *s;
	char *path;
	char *note; /* build options, written as a comment */
};

void cs_vocab_free(cs_vocab *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->nf; i++) {
		free(v->s[i].name);
		free(v->s[i].comm);
		dict_free(&v->s[i].d);
	}
	free(v->s);
	free(v->path);
	free(v->note);
	free(v);
}

const char *cs_vocab_fpstr(uint64_t fp, char buf[17])
{
	snprintf(buf, 17, "%016" PRIx64, fp);
	return buf;
}

static uint64_t fp_start(const char *name)
{
	return cs_hash64(name, strlen(name) + 1, CS_HASH64_INIT);
}

static uint64_t fp_add(uint64_t h, const char *tok, size_t len)
{
	unsigned char le[4] = { len & 0xff, (len >> 8) & 0xff, (len >> 16) & 0xff,
				(len >> 24) & 0xff };
	h = cs_hash64(le, 4, h);
	return cs_hash64(tok, len, h);
}

static uint64_t fp_end(uint64_t h)
{
	return h ? h : 1; /* 0 means "no vocabulary" in a schema */
}

uint64_t cs_vocab_hash(const char *name, const char *const *tok,
		       const size_t *len, size_t n)
{
	uint64_t h = fp_start(name);
	for (size_t i = 0; i < n; i++)
		h = fp_add(h, tok[i], len[i]);
	return fp_end(h);
}

static uint64_t fp_dict(const char *name, const dict *d)
{
	uint64_t h = fp_start(name);
	for (size_t t = 0; t < d->ntok; t++) {
		size_t len;
		const char *s = dict_tok(d, t, &len);
		h = fp_add(h, s, len);
	}
	return fp_end(h);
}

const char *cs_vocab_path(const cs_vocab *v) { return v->path ? v->path : ""; }
size_t cs_vocab_nfields(const cs_vocab *v) { return v->nf; }
const char *cs_vocab_field(const cs_vocab *v, size_t f) { return v->s[f].name; }
uint32_t cs_vocab_size(const cs_vocab *v, size_t f) { return (uint32_t)v->s[f].d.ntok; }
uint64_t cs_vocab_fingerprint(const cs_vocab *v, size_t f) { return v->s[f].fp; }

int cs_vocab_find(const cs_vocab *v, const char *field)
{
	for (size_t i = 0; i < v->nf; i++)
		if (strcmp(v->s[i].name, field) == 0)
			return (int)i;
	return -1;
}

const char *cs_vocab_token(const cs_vocab *v, size_t f, uint32_t id, size_t *len)
{
	if (id >= v->s[f].d.ntok)
		return NULL;
	return dict_tok(&v->s[f].d, id, len);
}

uint64_t cs_vocab_count(const cs_vocab *v, size_t f, uint32_t id)
{
	return id < v->s[f].d.ntok ? v->s[f].d.count[id] : 0;
}

uint32_t cs_vocab_lookup(const cs_vocab *v, size_t f, const char *tok, size_t len)
{
	long t = dict_find(&v->s[f].d, tok, len, tok_hash(tok, len));
	return t < 0 ? CS_VOCAB_UNK : (uint32_t)t;
}

static int is_reserved(const char *s, size_t len)
{
	for (size_t i = 0; i < CS_VOCAB_RESERVED; i++)
		if (strlen(reserved[i]) == len && memcmp(reserved[i], s, len) == 0)
			return 1;
	return 0;
}

/* A new empty section with the reserved tokens. */
static vsec *vocab_add_section(cs_vocab *v, const char *name)
{
	vsec *s = realloc(v->s, (v->nf + 1) * sizeof *s);
	if (!s)
		return NULL;
	v->s = s;
	s = &v->s[v->nf];
	memset(s, 0, sizeof *s);
	if (!(s->name = strdup(name)))
		return NULL;
	v->nf++;
	for (size_t i = 0; i < CS_VOCAB_RESERVED; i++)
		if (dict_push(&s->d, reserved[i], strlen(reserved[i]), 0, 0) < 0)
			return NULL;
	return s;
}

/* ------------------------------------------------------------ file */

int cs_vocab_write_file(const cs_vocab *v, FILE *fp, const char *name,
			cs_error *err)
{
	char fps[17];
	fprintf(fp, "# cs-vocab %d\n", CS_VOCAB_FILE_VERSION);
	if (v->note)
		fprintf(fp, "# %s\n", v->note);
	for (size_t i = 0; i < v->nf; i++) {
		const vsec *s = &v->s[i];
		fprintf(fp, "field\t%s\t%zu\t%s\n", s->name, s->d.ntok,
			cs_vocab_fpstr(s->fp, fps));
		for (size_t t = 0; t < s->d.ntok; t++) {
			size_t len;
			const char *tok = dict_tok(&s->d, t, &len);
			fprintf(fp, "%zu\t%.*s\t%" PRIu64 "\n", t, (int)len, tok,
				s->d.count[t]);
		}
	}
	if (fflush(fp) != 0 || ferror(fp))
		return cs_err(err, CS_ERR_IO, name, 0, "write error: %s", strerror(errno));
	return 0;
}

int cs_vocab_write(const cs_vocab *v, const char *path, cs_error *err)
{
	cs_ofile of;
	if (cs_ofile_open(&of, path, err) < 0)
		return -1;
	if (cs_vocab_write_file(v, of.fp, path && strcmp(path, "-") ? path : "stdout",
				err) < 0) {
		cs_ofile_abort(&of);
		return -1;
	}
	return cs_ofile_commit(&of, err);
}

static int valid_field_name(const char *s, size_t n)
{
	if (n == 0 || n > CS_MAX_NAME)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == ':' || s[i] == 0x7f)
			return 0;
	return 1;
}

/* Strict unsigned decimal. */
static int parse_u64(const char *s, size_t n, uint64_t *out)
{
	if (n == 0 || n > 20)
		return -1;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		unsigned d = s[i] - '0';
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (n > 1 && s[0] == '0')
		return -1;
	*out = v;
	return 0;
}

static int parse_hex64(const char *s, size_t n, uint64_t *out)
{
	if (n != 16)
		return -1;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		int c = s[i], d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else
			return -1;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return 0;
}

/* Split line (no newline) at tabs into at most max columns; returns count. */
static size_t split_tabs(char *line, size_t len, char **col, size_t *clen, size_t max)
{
	size_t n = 0, start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || line[i] == '\t') {
			if (n < max) {
				col[n] = line + start;
				clen[n] = i - start;
			}
			n++;
			start = i + 1;
		}
	}
	return n;
}

/*
 * Index the tokens of section s read so far: a token equal to an earlier
 * one is refused at its line, s->line + 1 + its id + the comment lines
 * before it (s->comm: for each, the id of the token after it).
 */
static int section_index(const char *name, vsec *s, cs_error *err)
{
	size_t t, u;
	int rc = dict_index_pending(&s->d, &t, &u);
	if (rc < 0)
		return cs_err(err, CS_ERR_NOMEM, name, 0, "out of memory");
	if (rc == 0)
		return 0;
	long line = s->line + 1 + (long)t;
	for (size_t i = 0; i < s->ncomm; i++)
		line += s->comm[i] <= t;
	size_t len;
	const char *tok = dict_tok(&s->d, t, &len);
	return cs_err(err, CS_ERR_FORMAT, name, line, "duplicate token '%.*s' in '%s' (also id %zu)",
		      (int)len, tok, s->name, u);
}

/* Check the section that just ended: its tokens, size and fingerprint. */
static int section_done(const char *name, vsec *s, uint64_t size, cs_error *err)
{
	char a[17], b[17];
	if (section_index(name, s, err) < 0)
		return -1;
	if (s->d.ntok != size)
		return cs_err(err, CS_ERR_FORMAT, name, s->line,
			      "section '%s' says %" PRIu64 " ids but has %zu (truncated file?)",
			      s->name, size, s->d.ntok);
	uint64_t fp = fp_dict(s->name, &s->d);
	if (fp != s->fp)
		return cs_err(err, CS_ERR_FORMAT, name, s->line,
			      "fingerprint mismatch for '%s': the file says %s, its tokens give %s "
			      "(edited by hand? rebuild it with cs-vocab build)",
			      s->name, cs_vocab_fpstr(s->fp, a), cs_vocab_fpstr(fp, b));
	return 0;
}

cs_vocab *cs_vocab_read_file(FILE *fp, const char *name, cs_error *err)
{
	cs_vocab *v = calloc(1, sizeof *v);
	char *line = NULL;
	size_t cap = 0;
	long lineno = 0;
	vsec *cur = NULL;
	uint64_t cursize = 0;
	int newline = 1;
	struct stat st; /* a regular file's size bounds the bytes of its tokens */
	off_t fsize = fstat(fileno(fp), &st) == 0 && S_ISREG(st.st_mode) ? st.st_size : -1;
	if (!v || !(v->path = strdup(name))) {
		cs_err(err, CS_ERR_NOMEM, name, 0, "out of memory");
		goto fail;
	}
	for (;;) {
		errno = 0;
		ssize_t n = getline(&line, &cap, fp);
		if (n < 0) {
			if (ferror(fp)) {
				cs_err(err, CS_ERR_IO, name, 0, "read error: %s", strerror(errno));
				goto fail;
			}
			break;
		}
		lineno++;
		size_t len = (size_t)n;
		newline = len && line[len - 1] == '\n';
		if (newline)
			line[--len] = 0;
		if (strlen(line) != len) {
			cs_err(err, CS_ERR_FORMAT, name, lineno, "NUL byte in line");
			goto fail;
		}
		if (memchr(line, '\r', len)) {
			cs_err(err, CS_ERR_FORMAT, name, lineno,
			       "carriage return in line (CRLF line ends?)");
			goto fail;
		}
		if (lineno == 1) {
			int ver;
			char extra;
			if (sscanf(line, "# cs-vocab %d%c", &ver, &extra) != 1 || ver < 1) {
				cs_err(err, CS_ERR_FORMAT, name, lineno,
				       "not a vocabulary file (no '# cs-vocab %d' header line)",
				       CS_VOCAB_FILE_VERSION);
				goto fail;
			}
			if (ver > CS_VOCAB_FILE_VERSION) {
				cs_err(err, CS_ERR_VERSION, name, lineno,
				       "vocabulary file version %d is newer than this program reads (%d): "
				       "upgrade cs or re-run cs-vocab build", ver, CS_VOCAB_FILE_VERSION);
				goto fail;
			}
			continue;
		}
		if (line[0] == '#') {
			if (cur && cs_grow((void **)&cur->comm, &cur->comm_cap, cur->ncomm + 1,
					   sizeof *cur->comm) < 0) {
				cs_err(err, CS_ERR_NOMEM, name, lineno, "out of memory");
				goto fail;
			}
			if (cur)
				cur->comm[cur->ncomm++] = cur->d.ntok;
			continue;
		}
		char *col[4];
		size_t cl[4];
		size_t nc = split_tabs(line, len, col, cl, 4);
		if (len >= 5 && memcmp(line, "field", 5) == 0 && (len == 5 || line[5] == '\t')) {
			uint64_t size, fpv;
			if (cur && section_done(name, cur, cursize, err) < 0)
				goto fail;
			if (nc != 4) {
				cs_err(err, CS_ERR_FORMAT, name, lineno,
				       "expected 'field<TAB>name<TAB>size<TAB>fingerprint'");
				goto fail;
			}
			col[1][cl[1]] = 0;
			if (!valid_field_name(col[1], cl[1])) {
				cs_err(err, CS_ERR_FORMAT, name, lineno, "invalid field name '%s'", col[1]);
				goto fail;
			}
			if (cs_vocab_find(v, col[1]) >= 0) {
				cs_err(err, CS_ERR_FORMAT, name, lineno, "duplicate section for '%s'",
				       col[1]);
				goto fail;
			}
			if (parse_u64(col[2], cl[2], &size) < 0 || size < CS_VOCAB_RESERVED ||
			    size > UINT32_MAX - 1) {
				cs_err(err, CS_ERR_FORMAT, name, lineno, "invalid size '%.*s'",
				       (int)cl[2], col[2]);
				goto fail;
			}
			if (parse_hex64(col[3], cl[3], &fpv) < 0) {
				cs_err(err, CS_ERR_FORMAT, name, lineno,
				       "invalid fingerprint '%.*s' (expected 16 hex digits)",
				       (int)cl[3], col[3]);
				goto fail;
			}
			/* the section starts empty: tokens come from the file */
			vsec *s = realloc(v->s, (v->nf + 1) * sizeof *s);
			if (!s || !(s[v->nf].name = strdup(col[1]))) {
				if (s)
					v->s = s;
				cs_err(err, CS_ERR_NOMEM, name, lineno, "out of memory");
				goto fail;
			}
			v->s = s;
			cur = &v->s[v->nf++];
			memset(&cur->d, 0, sizeof cur->d);
			cur->comm = NULL;
			cur->ncomm = cur->comm_cap = 0;
			cur->fp = fpv;
			cur->line = lineno;
			cursize = size;
			/* room for the tokens the line announces, as many as the
			 * rest of the file can hold (a line takes 5 bytes at least):
			 * a wrong size is refused at the section's end as before,
			 * and more or longer tokens grow the table as usual */
			off_t left = fsize >= 0 ? fsize - ftello(fp) : -1;
			uint64_t room = left >= 0 ? (uint64_t)left / 5 + 1 : 1 << 16;
			uint64_t bytes = left >= 0 ? (uint64_t)left : 16 * room;
			room = size < room ? size : room;
			if (bytes > 64 * room)
				bytes = 64 * room;
			if (dict_reserve(&cur->d, (size_t)room, (size_t)bytes) < 0) {
				cs_err(err, CS_ERR_NOMEM, name, lineno, "out of memory");
				goto fail;
			}
			continue;
		}
		if (!cur) {
			cs_err(err, CS_ERR_FORMAT, name, lineno,
			       "expected a 'field' line before the tokens");
			goto fail;
		}
		if (nc != 3) {
			cs_err(err, CS_ERR_FORMAT, name, lineno,
			       "expected 'id<TAB>token<TAB>count', got %zu columns", nc);
			goto fail;
		}
		uint64_t id, count;
		if (parse_u64(col[0], cl[0], &id) < 0) {
			cs_err(err, CS_ERR_FORMAT, name, lineno, "invalid id '%.*s'",
			       (int)cl[0], col[0]);
			goto fail;
		}
		if (id != cur->d.ntok) {
			cs_err(err, CS_ERR_FORMAT, name, lineno,
			       "id %" PRIu64 " out of order (expected %zu)", id, cur->d.ntok);
			goto fail;
		}
		if (id >= cursize) {
			cs_err(err, CS_ERR_FORMAT, name, lineno,
			       "more ids than the size %" PRIu64 " of section '%s'", cursize,
			       cur->name);
			goto fail;
		}
		if (parse_u64(col[2], cl[2], &count) < 0) {
			cs_err(err, CS_ERR_FORMAT, name, lineno, "invalid count '%.*s'",
			       (int)cl[2], col[2]);
			goto fail;
		}
		long t;
		if (id < CS_VOCAB_RESERVED) {
			const char *r = reserved[id];
			if (strlen(r) != cl[1] || memcmp(r, col[1], cl[1]) != 0) {
				cs_err(err, CS_ERR_FORMAT, name, lineno,
				       "id %" PRIu64 " must be the reserved token '%s'", id, r);
				goto fail;
			}
			t = dict_push(&cur->d, col[1], cl[1], 0, 0);
		} else {
			/* checked against the others at the section's end (or
			 * before an error further on is reported) */
			if (is_reserved(col[1], cl[1])) {
				cs_err(err, CS_ERR_FORMAT, name, lineno,
				       "duplicate token '%.*s' in '%s' (also id %ld)", (int)cl[1],
				       col[1], cur->name,
				       (long)(strcmp(col[1], "[PAD]") == 0 ? 0 :
					      strcmp(col[1], "[MASK]") == 0 ? 1 : 2));
				goto fail;
			}
			t = dict_push(&cur->d, col[1], cl[1], tok_hash(col[1], cl[1]), 2);
		}
		if (t < 0) {
			cs_err(err, CS_ERR_NOMEM, name, lineno, "out of memory");
			goto fail;
		}
		cur->d.count[t] = count;
	}
	if (!newline) {
		cs_err(err, CS_ERR_FORMAT, name, lineno, "last line has no newline (truncated file?)");
		goto fail;
	}
	if (lineno == 0) {
		cs_err(err, CS_ERR_FORMAT, name, 0, "empty file: not a vocabulary");
		goto fail;
	}
	if (!cur) {
		cs_err(err, CS_ERR_FORMAT, name, lineno, "no 'field' section");
		goto fail;
	}
	if (section_done(name, cur, cursize, err) < 0)
		goto fail;
	for (size_t i = 0; i < v->nf; i++) {
		free(v->s[i].comm);
		v->s[i].comm = NULL;
	}
	free(line);
	return v;
fail:
	/* a duplicate among the tokens not yet indexed lies on an earlier
	 * line than the error found: it is the one to report */
	if (cur && cur->d.nidx < cur->d.ntok) {
		cs_error e2;
		if (section_index(name, cur, &e2) < 0 && e2.code == CS_ERR_FORMAT && err)
			*err = e2;
	}
	free(line);
	cs_vocab_free(v);
	return NULL;
}

cs_vocab *cs_vocab_read(const char *path, cs_error *err)
{
	FILE *fp = fopen(path, "r");
	if (!fp) {
		cs_err(err, CS_ERR_IO, path, 0, "cannot open: %s", strerror(errno));
		return NULL;
	}
	setvbuf(fp, NULL, _IOFBF, 1 << 16);
	cs_vocab *v = cs_vocab_read_file(fp, path, err);
	fclose(fp);
	return v;
}

int cs_vocab_check_field(const cs_vocab *v, const cs_schema *s,
			 const char *stream, const char *field, cs_error *err)
{
	char a[17], b[17];
	int sec = cs_vocab_find(v, field);
	if (sec < 0)
		return cs_err(err, CS_ERR_FORMAT, cs_vocab_path(v), 0,
			      "no vocabulary for '%s' in this file", field);
	int i = cs_schema_find(s, field);
	if (i < 0)
		return cs_err(err, CS_ERR_FORMAT, NULL, 0, "'%s' has no field '%s'", stream,
			      field);
	const cs_field *f = &s->f[i];
	if (f->type == CS_STRING)
		return cs_err(err, CS_ERR_FORMAT, NULL, 0,
			      "field '%s' of '%s' is not encoded: run cs-vocab encode", field,
			      stream);
	if (f->type != CS_ID)
		return cs_err(err, CS_ERR_FORMAT, NULL, 0,
			      "field '%s' of '%s' is %s, not an id field", field, stream,
			      cs_type_name(f->type));
	if (f->vocab != v->s[sec].fp)
		return cs_err(err, CS_ERR_FORMAT, NULL, 0,
			      "'%s' was encoded with another vocabulary for '%s' "
			      "(fingerprint %s, vocabulary '%s' has %s): re-run cs-vocab encode",
			      stream, field, cs_vocab_fpstr(f->vocab, a), cs_vocab_path(v),
			      cs_vocab_fpstr(v->s[sec].fp, b));
	return sec;
}

/* ------------------------------------------------------------ building */

typedef struct bfield {
	char *name;
	int col, level;
	dict d;
	uint32_t *ids; /* token per value, kept for the k-core */
	size_t n, cap;
	uint64_t (*bad)[2]; /* tokens a vocabulary file cannot hold (NUL, tab,
			       line break): (token, first record) */
	size_t nbad;
} bfield;

struct cs_vocab_builder {
	size_t nf;
	bfield *f;
	cs_vocab_opts o;
	char *item_field;
	int kf; /* builder field of the k-core items, -1 without k-core */
	int bound;
	size_t *seqoff; /* event offsets, nseq + 1 */
	size_t nseq, seqcap;
	uint64_t records, events;
	char *stream;
};

void cs_vocab_builder_free(cs_vocab_builder *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->nf; i++) {
		free(b->f[i].name);
		free(b->f[i].ids);
		free(b->f[i].bad);
		dict_free(&b->f[i].d);
	}
	free(b->f);
	free(b->item_field);
	free(b->seqoff);
	free(b->stream);
	free(b);
}

cs_vocab_builder *cs_vocab_builder_new(const char *const *fields, size_t n,
				       const cs_vocab_opts *o, cs_error *err)
{
	cs_vocab_builder *b = calloc(1, sizeof *b);
	if (!b)
		goto nomem;
	if (o)
		b->o = *o;
	b->item_field = strdup(b->o.item_field ? b->o.item_field : "item");
	b->f = calloc(n ? n : 1, sizeof *b->f);
	if (!b->item_field || !b->f)
		goto nomem;
	b->kf = -1;
	if (n == 0) {
		cs_err(err, CS_ERR_USAGE, NULL, 0, "no field to build a vocabulary for");
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < i; j++)
			if (strcmp(fields[i], fields[j]) == 0) {
				cs_err(err, CS_ERR_USAGE, NULL, 0, "field '%s' given twice", fields[i]);
				goto fail;
			}
		if (!(b->f[i].name = strdup(fields[i])))
			goto nomem;
		b->nf++;
		if (b->o.kcore && strcmp(fields[i], b->item_field) == 0)
			b->kf = (int)i;
	}
	if (b->o.kcore && b->kf < 0) {
		cs_err(err, CS_ERR_USAGE, NULL, 0,
		       "the k-core needs a vocabulary for the item field '%s'", b->item_field);
		goto fail;
	}
	return b;
nomem:
	cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
fail:
	cs_vocab_builder_free(b);
	return NULL;
}

int cs_vocab_builder_bind(cs_vocab_builder *b, const cs_schema *s,
			  const char *stream, cs_error *err)
{
	free(b->stream);
	if (!(b->stream = strdup(stream ? stream : "-")))
		return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	for (size_t i = 0; i < b->nf; i++) {
		bfield *f = &b->f[i];
		int c = cs_schema_find(s, f->name);
		if (c < 0)
			return cs_err(err, CS_ERR_USAGE, NULL, 0, "'%s' has no field '%s'",
				      b->stream, f->name);
		if (s->f[c].type != CS_STRING)
			return cs_err(err, CS_ERR_USAGE, NULL, 0,
				      "field '%s' of '%s' is %s, not a string", f->name, b->stream,
				      cs_type_name(s->f[c].type));
		if ((int)i == b->kf && s->f[c].level != CS_EVENT)
			return cs_err(err, CS_ERR_USAGE, NULL, 0,
				      "the k-core item field '%s' must be an event-level field",
				      f->name);
		f->col = c;
		f->level = s->f[c].level;
	}
	b->bound = 1;
	return 0;
}

static int push_id(bfield *f, uint32_t id)
{
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 4096;
		uint32_t *p = realloc(f->ids, cap * sizeof *p);
		if (!p)
			return -1;
		f->ids = p;
		f->cap = cap;
	}
	f->ids[f->n++] = id;
	return 0;
}

/* The record where token t, which no vocabulary file can hold, first came. */
static void bad_token_record(const bfield *f, uint64_t t, cs_error *err)
{
	for (size_t i = 0; err && i < f->nbad; i++)
		if (f->bad[i][0] == t)
			err->record = (long long)f->bad[i][1];
}

int cs_vocab_builder_add(cs_vocab_builder *b, const cs_record *rec, cs_error *err)
{
	if (!b->bound)
		return cs_err(err, CS_ERR_USAGE, NULL, 0, "vocabulary builder not bound to a schema");
	int keep = b->kf >= 0;
	for (size_t i = 0; i < b->nf; i++) {
		bfield *f = &b->f[i];
		const cs_column *c = &rec->col[f->col];
		for (size_t j = 0; j < c->n; j++) {
			size_t len;
			const char *s = cs_col_str(c, j, &len);
			size_t ntok = f->d.ntok;
			long t = dict_intern(&f->d, s, len);
			if (t < 0 || (keep && push_id(f, (uint32_t)t) < 0))
				return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
			f->d.count[t]++;
			/* a new token no vocabulary file can hold: its record, for
			 * the message if it is kept */
			if (f->d.ntok > ntok && len && (memchr(s, 0, len) || memchr(s, '\t', len) ||
							memchr(s, '\n', len) || memchr(s, '\r', len))) {
				void *p = realloc(f->bad, (f->nbad + 1) * sizeof *f->bad);
				if (!p)
					return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
				f->bad = p;
				f->bad[f->nbad][0] = (uint64_t)t;
				f->bad[f->nbad++][1] = b->records + 1;
			}
		}
	}
	if (keep) {
		if (b->nseq + 2 > b->seqcap) {
			size_t cap = b->seqcap ? b->seqcap * 2 : 4096;
			size_t *p = realloc(b->seqoff, cap * sizeof *p);
			if (!p)
				return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
			b->seqoff = p;
			b->seqcap = cap;
			if (b->nseq == 0)
				b->seqoff[0] = 0;
		}
		b->seqoff[b->nseq + 1] = b->seqoff[b->nseq] + rec->nevents;
		b->nseq++;
	}
	b->records++;
	b->events += rec->nevents;
	return 0;
}

/*
 * The k-core: drop items with fewer than K events and sequences with fewer
 * than K events (of surviving items), until nothing changes. Then recount
 * every field over the surviving sequences and events.
 */
static int kcore(cs_vocab_builder *b, cs_vocab_build_stats *st, cs_error *err)
{
	uint64_t K = b->o.kcore;
	bfield *it = &b->f[b->kf];
	size_t ni = it->d.ntok, ns = b->nseq;
	uint8_t *item_ok = malloc(ni ? ni : 1), *seq_ok = malloc(ns ? ns : 1);
	uint64_t *cnt = malloc((ni ? ni : 1) * sizeof *cnt);
	if (!item_ok || !seq_ok || !cnt) {
		free(item_ok);
		free(seq_ok);
		free(cnt);
		return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	}
	memset(item_ok, 1, ni);
	memset(seq_ok, 1, ns);
	if (ni) /* no items at all: an empty stream */
		memcpy(cnt, it->d.count, ni * sizeof *cnt);
	int rounds = 0;
	for (int changed = 1; changed;) {
		changed = 0;
		rounds++;
		for (size_t i = 0; i < ni; i++)
			if (item_ok[i] && cnt[i] < K) {
				item_ok[i] = 0;
				changed = 1;
			}
		memset(cnt, 0, ni * sizeof *cnt);
		for (size_t s = 0; s < ns; s++) {
			if (!seq_ok[s])
				continue;
			uint64_t len = 0;
			for (size_t e = b->seqoff[s]; e < b->seqoff[s + 1]; e++)
				len += item_ok[it->ids[e]];
			if (len < K) {
				seq_ok[s] = 0;
				changed = 1;
				continue;
			}
			for (size_t e = b->seqoff[s]; e < b->seqoff[s + 1]; e++)
				cnt[it->ids[e]] += item_ok[it->ids[e]];
		}
	}
	/* recount every field over the core */
	for (size_t i = 0; i < b->nf; i++)
		if (b->f[i].d.ntok)
			memset(b->f[i].d.count, 0, b->f[i].d.ntok * sizeof(uint64_t));
	for (size_t s = 0; s < ns; s++) {
		if (!seq_ok[s])
			continue;
		st->kept_records++;
		for (size_t i = 0; i < b->nf; i++) {
			bfield *f = &b->f[i];
			if (f->level == CS_SEQ) {
				f->d.count[f->ids[s]]++;
				continue;
			}
			for (size_t e = b->seqoff[s]; e < b->seqoff[s + 1]; e++)
				if (item_ok[it->ids[e]])
					f->d.count[f->ids[e]]++;
		}
		for (size_t e = b->seqoff[s]; e < b->seqoff[s + 1]; e++)
			st->kept_events += item_ok[it->ids[e]];
	}
	st->kcore_rounds = rounds;
	free(item_ok);
	free(seq_ok);
	free(cnt);
	return 0;
}

/* Count descending, then token bytes, then length. */
static int cmp_tok(const void *pa, const void *pb, void *arg)
{
	const dict *d = arg;
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
	if (d->count[a] != d->count[b])
		return d->count[a] > d->count[b] ? -1 : 1;
	size_t la, lb;
	const char *sa = dict_tok(d, a, &la), *sb = dict_tok(d, b, &lb);
	int c = memcmp(sa, sb, la < lb ? la : lb);
	if (c)
		return c;
	return la < lb ? -1 : la > lb;
}

cs_vocab *cs_vocab_builder_finish(cs_vocab_builder *b, cs_vocab_build_stats *stp,
				  cs_error *err)
{
	cs_vocab_build_stats st = { b->records, b->events, b->records, b->events, 0 };
	cs_vocab *v = calloc(1, sizeof *v);
	uint32_t *idx = NULL;
	char note[256];
	if (!v)
		goto nomem;
	if (b->kf >= 0) {
		st.kept_records = st.kept_events = 0;
		if (kcore(b, &st, err) < 0)
			goto fail;
	}
	snprintf(note, sizeof note,
		 "min-count %" PRIu64 ", max-size %" PRIu64 ", kcore %" PRIu64 " (item field %s)",
		 b->o.min_count, b->o.max_size, b->o.kcore, b->item_field);
	if (!(v->note = strdup(note)) || !(v->path = strdup("")))
		goto nomem;
	for (size_t i = 0; i < b->nf; i++) {
		bfield *f = &b->f[i];
		size_t n = 0;
		uint64_t total = 0, kept = 0;
		free(idx);
		if (!(idx = malloc((f->d.ntok ? f->d.ntok : 1) * sizeof *idx)))
			goto nomem;
		for (size_t t = 0; t < f->d.ntok; t++) {
			size_t len;
			const char *s = dict_tok(&f->d, t, &len);
			total += f->d.count[t];
			if (f->d.count[t] == 0 || f->d.count[t] < b->o.min_count ||
			    is_reserved(s, len))
				continue;
			idx[n++] = (uint32_t)t;
		}
		qsort_r(idx, n, sizeof *idx, cmp_tok, &f->d);
		if (b->o.max_size && n > b->o.max_size)
			n = b->o.max_size;
		if (n > UINT32_MAX - 1 - CS_VOCAB_RESERVED) {
			cs_err(err, CS_ERR_LIMIT, NULL, 0, "too many tokens in '%s'", f->name);
			goto fail;
		}
		vsec *s = vocab_add_section(v, f->name);
		if (!s)
			goto nomem;
		for (size_t k = 0; k < n; k++) {
			size_t len;
			const char *tok = dict_tok(&f->d, idx[k], &len);
			if (memchr(tok, 0, len)) {
				cs_err(err, CS_ERR_FORMAT, b->stream, 0,
				       "a token of field '%s' holds a NUL byte: it cannot be written "
				       "to a vocabulary file", f->name);
				bad_token_record(f, idx[k], err);
				goto fail;
			}
			if (memchr(tok, '\t', len) || memchr(tok, '\n', len) || memchr(tok, '\r', len)) {
				cs_err(err, CS_ERR_FORMAT, b->stream, 0,
				       "token '%.*s' of field '%s' has a tab or line break: "
				       "it cannot be written to a vocabulary file",
				       (int)(len > 40 ? 40 : len), tok, f->name);
				bad_token_record(f, idx[k], err);
				goto fail;
			}
			long t = dict_push(&s->d, tok, len, tok_hash(tok, len), 1);
			if (t < 0)
				goto nomem;
			s->d.count[t] = f->d.count[idx[k]];
			kept += s->d.count[t];
		}
		s->d.count[CS_VOCAB_UNK] = total - kept;
		s->fp = fp_dict(s->name, &s->d);
	}
	free(idx);
	if (stp)
		*stp = st;
	return v;
nomem:
	cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
fail:
	free(idx);
	cs_vocab_free(v);
	return NULL;
}

/* ------------------------------------------------------------ coding */

enum { OP_PASS, OP_ENC, OP_DEC };

struct cs_vocab_coder {
	const cs_vocab *v;
	cs_schema *out;
	int dir;
	size_t ncols;
	int *op, *sec, *stat; /* per column */
	cs_vocab_stat *st;
	size_t nst;
	int item_col; /* column whose unknowns drop events, -1 */
	uint64_t min_len;
	uint32_t *tmp;
	size_t tmpcap;
	uint64_t dropped_events, dropped_records, records;
	char *stream;
};

void cs_vocab_coder_free(cs_vocab_coder *c)
{
	if (!c)
		return;
	cs_schema_free(c->out);
	free(c->op);
	free(c->sec);
	free(c->stat);
	free(c->st);
	free(c->tmp);
	free(c->stream);
	free(c);
}

cs_vocab_coder *cs_vocab_coder_new(const cs_vocab *v, const cs_schema *in,
				   const char *stream, int direction,
				   const cs_vocab_coder_opts *o, cs_error *err)
{
	char a[17], b[17];
	cs_vocab_coder_opts opts = { 0, NULL, 0 };
	if (o)
		opts = *o;
	const char *item = opts.item_field ? opts.item_field : "item";
	cs_vocab_coder *c = calloc(1, sizeof *c);
	size_t n = in->nfields ? in->nfields : 1;
	if (!c || !(c->out = cs_schema_dup(in)) || !(c->op = calloc(n, sizeof(int))) ||
	    !(c->sec = calloc(n, sizeof(int))) || !(c->stat = calloc(n, sizeof(int))) ||
	    !(c->st = calloc(n, sizeof *c->st)) ||
	    !(c->stream = strdup(stream ? stream : "-"))) {
		cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
		goto fail;
	}
	c->v = v;
	c->dir = direction;
	c->ncols = in->nfields;
	c->item_col = -1;
	c->min_len = opts.min_len;
	for (size_t i = 0; i < in->nfields; i++) {
		const cs_field *f = &in->f[i];
		int sec = cs_vocab_find(v, f->name);
		c->stat[i] = -1;
		if (sec < 0)
			continue;
		uint64_t fp = v->s[sec].fp;
		if (direction == CS_VOCAB_ENCODE) {
			if (f->type == CS_ID) {
				if (f->vocab == fp)
					continue; /* already encoded with this vocabulary */
				cs_err(err, CS_ERR_FORMAT, NULL, 0,
				       "field '%s' of '%s' is already encoded with another vocabulary "
				       "(fingerprint %s, vocabulary '%s' has %s): decode it first",
				       f->name, c->stream, cs_vocab_fpstr(f->vocab, a),
				       cs_vocab_path(v), cs_vocab_fpstr(fp, b));
				goto fail;
			}
			if (f->type != CS_STRING) {
				cs_err(err, CS_ERR_FORMAT, NULL, 0,
				       "field '%s' of '%s' is %s, not a string", f->name, c->stream,
				       cs_type_name(f->type));
				goto fail;
			}
			c->op[i] = OP_ENC;
			c->out->f[i].type = CS_ID;
			c->out->f[i].vocab = fp;
		} else {
			if (f->type != CS_ID)
				continue;
			if (f->vocab != fp) {
				cs_err(err, CS_ERR_FORMAT, NULL, 0,
				       "'%s' was encoded with another vocabulary for '%s' "
				       "(fingerprint %s, vocabulary '%s' has %s): decode it with "
				       "the vocabulary it was encoded with", c->stream, f->name,
				       cs_vocab_fpstr(f->vocab, a), cs_vocab_path(v),
				       cs_vocab_fpstr(fp, b));
				goto fail;
			}
			c->op[i] = OP_DEC;
			c->out->f[i].type = CS_STRING;
			c->out->f[i].vocab = 0;
		}
		c->sec[i] = sec;
		c->stat[i] = (int)c->nst;
		c->st[c->nst++].field = in->f[i].name;
	}
	if (c->nst == 0) {
		cs_err(err, CS_ERR_FORMAT, NULL, 0, direction == CS_VOCAB_ENCODE ?
		       "no string field of '%s' has a vocabulary in '%s'" :
		       "no id field of '%s' has a vocabulary in '%s'", c->stream, cs_vocab_path(v));
		goto fail;
	}
	if (opts.drop_unknown && direction == CS_VOCAB_ENCODE) {
		int i = cs_schema_find(in, item);
		if (i < 0 || c->op[i] != OP_ENC || in->f[i].level != CS_EVENT) {
			cs_err(err, CS_ERR_USAGE, NULL, 0,
			       "cannot drop unknown items: '%s' is not an event-level string field "
			       "of '%s' with a vocabulary", item, c->stream);
			goto fail;
		}
		c->item_col = i;
	}
	return c;
fail:
	cs_vocab_coder_free(c);
	return NULL;
}

const cs_schema *cs_vocab_coder_schema(const cs_vocab_coder *c) { return c->out; }
uint64_t cs_vocab_coder_dropped_events(const cs_vocab_coder *c) { return c->dropped_events; }
uint64_t cs_vocab_coder_dropped_records(const cs_vocab_coder *c) { return c->dropped_records; }

size_t cs_vocab_coder_stats(const cs_vocab_coder *c, const cs_vocab_stat **st)
{
	*st = c->st;
	return c->nst;
}

/* Copy a whole column. */
static int col_copy(cs_column *d, const cs_column *s)
{
	if (s->type == CS_STRING) {
		for (size_t i = 0; i < s->n; i++) {
			size_t len;
			const char *p = cs_col_str(s, i, &len);
			if (cs_col_push_str(d, p, len) < 0)
				return -1;
		}
		return 0;
	}
	if (cs_col_reserve(d, s->n) < 0)
		return -1;
	size_t w = s->type == CS_INT64 ? 8 : 4;
	if (s->n)
		memcpy(d->v.p, s->v.p, s->n * w);
	d->n = s->n;
	return 0;
}

int cs_vocab_coder_run(cs_vocab_coder *c, const cs_record *in, cs_record *out,
		       cs_error *err)
{
	c->records++;
	if (in->ncols != c->ncols) {
		cs_err(err, CS_ERR_USAGE, c->stream, 0, "record does not match the schema");
		err->record = (long long)c->records;
		return -1;
	}
	if (cs_record_init(out, c->out, err) < 0)
		return -1;
	size_t n = in->nevents, kept = n;
	uint32_t *ids = NULL;
	if (c->item_col >= 0) {
		if (n > c->tmpcap) {
			uint32_t *p = realloc(c->tmp, n * sizeof *p);
			if (!p)
				goto nomem;
			c->tmp = p;
			c->tmpcap = n;
		}
		ids = c->tmp;
		const cs_column *ic = &in->col[c->item_col];
		int sec = c->sec[c->item_col];
		kept = 0;
		for (size_t e = 0; e < n; e++) {
			size_t len;
			const char *s = cs_col_str(ic, e, &len);
			ids[e] = cs_vocab_lookup(c->v, sec, s, len);
			kept += ids[e] != CS_VOCAB_UNK;
		}
		cs_vocab_stat *st = &c->st[c->stat[c->item_col]];
		st->values += n;
		st->unknown += n - kept;
		c->dropped_events += n - kept;
	}
	if (kept < c->min_len) {
		c->dropped_records++;
		return 0;
	}
	for (size_t i = 0; i < c->ncols; i++) {
		const cs_column *ic = &in->col[i];
		cs_column *oc = &out->col[i];
		int op = c->op[i];
		int filter = ids && c->out->f[i].level == CS_EVENT && kept != n;
		if (op == OP_PASS && !filter) {
			if (col_copy(oc, ic) < 0)
				goto nomem;
			continue;
		}
		cs_vocab_stat *st = op == OP_PASS ? NULL : &c->st[c->stat[i]];
		int sec = c->sec[i];
		for (size_t e = 0; e < ic->n; e++) {
			if (filter && ids[e] == CS_VOCAB_UNK)
				continue;
			int r;
			if (op == OP_PASS) {
				r = cs_col_push_from(oc, ic, e);
			} else if (op == OP_ENC) {
				uint32_t id;
				if ((int)i == c->item_col) {
					id = ids[e];
				} else {
					size_t len;
					const char *s = cs_col_str(ic, e, &len);
					id = cs_vocab_lookup(c->v, sec, s, len);
					st->values++;
					st->unknown += id == CS_VOCAB_UNK;
				}
				r = cs_col_push_u32(oc, id);
			} else {
				uint32_t id = ic->v.u32[e];
				size_t len;
				const char *s = cs_vocab_token(c->v, sec, id, &len);
				if (!s) {
					cs_err(err, CS_ERR_FORMAT, c->stream, 0,
					       "id %u of '%s' is out of range (vocabulary size %u)",
					       id, c->v->s[sec].name, cs_vocab_size(c->v, sec));
					err->record = (long long)c->records;
					return -1;
				}
				st->values++;
				st->unknown += id == CS_VOCAB_UNK;
				r = cs_col_push_str(oc, s, len);
			}
			if (r < 0)
				goto nomem;
		}
	}
	out->nevents = kept;
	return 1;
nomem:
	return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
}
