/*
 * extsort.c - the external sort of the ingest (see extsort.h). Filled
 * chunks pile up until the memory budget is spent, then become one sorted
 * run (keys ranked, rows counting-sorted by key rank, each group stably
 * sorted by time) that is either handed out directly (everything fitted)
 * or spilled to an unlinked temporary file by a background thread.
 * Spilled runs are merged group by group; ties in time go to the earlier
 * run, so both paths give the same groups. The merge hands batches of
 * merged groups to an emitter thread, so merging and consuming share the
 * cores. Spilled chunks go back to a pool with their buffers for the next
 * ones.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "buf.h"
#include "extsort.h"

/* ------------------------------------------------------------ keys */

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

int cs_sort_keycmp(const char *a, size_t na, const char *b, size_t nb)
{
	return keycmp2(a, na, all_digits(a, na), b, nb, all_digits(b, nb));
}

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

/* A chunk: rows of payloads in an arena, each with a local key id; keys
 * interned (by a hash table, dropped once the chunk is filled) into the
 * same arena. */
struct cs_sort_chunk {
	cs_buf arena;
	crow *rows;
	size_t nrows, caprows;
	ckey *keys;
	size_t nkeys, capkeys;
	uint32_t *ht;
	size_t htcap;
};

/* Interned local id of key s, adding it. */
static int intern(cs_sort_chunk *c, const char *s, size_t n, uint32_t *id)
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

uint8_t *cs_sort_row_begin(cs_sort_chunk *c, const char *key, size_t klen, int64_t t,
			   size_t need)
{
	uint32_t id;
	if (intern(c, key, klen, &id) < 0 ||
	    cs_grow((void **)&c->rows, &c->caprows, c->nrows + 1, sizeof *c->rows) < 0 ||
	    cs_buf_reserve(&c->arena, need) < 0)
		return NULL;
	crow *r = &c->rows[c->nrows++];
	r->t = t;
	r->off = c->arena.n;
	r->key = id;
	return c->arena.p + c->arena.n;
}

void cs_sort_row_end(cs_sort_chunk *c, uint8_t *end)
{
	crow *r = &c->rows[c->nrows - 1];
	r->len = (uint32_t)(end - (c->arena.p + r->off));
	c->arena.n = (size_t)(end - c->arena.p);
}

/* ------------------------------------------------------------ runs */

/* Stable sort of rows by time (usually they are sorted already). */
static int sort_rows(cs_sort_row *r, size_t n, cs_sort_row **tmp, size_t *tmpcap)
{
	size_t i;
	for (i = 1; i < n; i++)
		if (r[i].t < r[i - 1].t)
			break;
	if (i >= n)
		return 0;
	if (n <= 32) {
		for (i = 1; i < n; i++) {
			cs_sort_row x = r[i];
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
	cs_sort_row *a = r, *b = *tmp;
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
		cs_sort_row *t = a;
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
	cs_sort_row *rows;
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
static int run_build(cs_sort_chunk **ch, size_t nch, run *r, cs_sort_row **tmp, size_t *tmpcap)
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
		cs_sort_chunk *c = ch[i];
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
		cs_sort_chunk *c = ch[i];
		const uint32_t *lm = lmap[i];
		for (size_t k = 0; k < c->nrows; k++) {
			const crow *cr = &c->rows[k];
			cs_sort_row *s = &r->rows[pos[rank[lm[cr->key]]]++];
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

/* ------------------------------------------------------------ the sort */

#define POOL_MAX 32
#define MAX_RUNS 64

typedef struct runfile runfile;

/* Chunks handed over and not yet spilled. */
typedef struct pending {
	cs_sort_chunk **c;
	size_t n, cap;
	size_t mem;
} pending;

/* A background thread's handle and outcome (the emitter's, the flusher's):
 * each thread fills its own error record, which becomes the caller's when
 * it is joined. */
typedef struct bgjob {
	pthread_t tid;
	int active, rc;
	cs_error err;
} bgjob;

/* Spills pending chunks in the background while parsing goes on. */
typedef struct flusher {
	cs_sort *s;
	pending p;
	bgjob job;
	int done; /* the thread has finished (atomic) */
} flusher;

struct cs_sort {
	size_t limit;
	char tmpdir[400];
	pending pend;
	flusher fl;
	runfile *runs;
	size_t nruns, capruns;
	uint64_t nspilled;
	cs_sort_row *tmp; /* scratch of sort_rows */
	size_t tmpcap;
	/* spilled chunks come back here with their buffers, so that the
	 * next ones need no fresh (page-faulting) memory */
	pthread_mutex_t pool_mu;
	cs_sort_chunk *pool[POOL_MAX];
	size_t npool;
};

static int nomem(cs_error *err)
{
	return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
}

/* Wait for a background job; its error becomes err. */
static int bgjob_wait(bgjob *j, cs_error *err)
{
	if (!j->active)
		return 0;
	pthread_join(j->tid, NULL);
	j->active = 0;
	if (j->rc < 0) {
		*err = j->err;
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ spilling */

static int io_err(cs_sort *s, cs_error *err, const char *what)
{
	return cs_err(err, CS_ERR_IO, s->tmpdir, 0, "%s: %s", what, strerror(errno));
}

/* A run on disk: an unlinked temporary file (gone even if we crash) and
 * its stdio buffer. Group: u32 keylen, key, u64 rows, u64 bytes, then rows
 * of i64 time, u32 len, payload (host byte order: the file never leaves
 * this process). */
struct runfile {
	FILE *fp;
	char *buf;
};

#define RUN_BUF (1u << 18)

static void runfile_close(runfile *rf)
{
	if (rf->fp)
		fclose(rf->fp);
	free(rf->buf);
	rf->fp = NULL;
	rf->buf = NULL;
}

static int tmp_run(cs_sort *s, runfile *rf, cs_error *err)
{
	char path[512];
	snprintf(path, sizeof path, "%s/cs-ingest.XXXXXX", s->tmpdir);
	rf->fp = NULL;
	/* glibc sizes a buffer it allocates by the block size (4 KiB reads in
	 * the merge), and a buffer set after the first I/O is ignored. */
	if (!(rf->buf = malloc(RUN_BUF)))
		return nomem(err);
	int fd = mkstemp(path);
	if (fd < 0) {
		io_err(s, err, "cannot create a temporary file");
		runfile_close(rf);
		return -1;
	}
	unlink(path);
	if (!(rf->fp = fdopen(fd, "w+b"))) {
		close(fd);
		io_err(s, err, "cannot open a temporary file");
		runfile_close(rf);
		return -1;
	}
	setvbuf(rf->fp, rf->buf, _IOFBF, RUN_BUF);
	return 0;
}

static int spill(cs_sort *s, const run *r, cs_error *err)
{
	if (cs_grow((void **)&s->runs, &s->capruns, s->nruns + 1, sizeof *s->runs) < 0)
		return nomem(err);
	if (tmp_run(s, &s->runs[s->nruns], err) < 0)
		return -1;
	FILE *fp = s->runs[s->nruns++].fp;
	cs_buf b = { 0 };
	int rc = 0;
	for (size_t i = 0; i < r->nkeys && rc == 0; i++) {
		const gkey *k = &r->keys[r->order[i]];
		uint32_t kl = k->len;
		uint64_t n = r->start[i + 1] - r->start[i], bytes = 0;
		for (size_t j = r->start[i]; j < r->start[i + 1]; j++)
			bytes += 12 + r->rows[j].len;
		if (cs_buf_reserve(&b, 20 + kl + bytes) < 0) {
			rc = nomem(err);
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
			const cs_sort_row *x = &r->rows[j];
			if (j + 8 < r->nrows)
				__builtin_prefetch(r->rows[j + 8].p);
			memcpy(d, &x->t, 8);
			memcpy(d + 8, &x->len, 4);
			memcpy(d + 12, x->p, x->len);
			d += 12 + x->len;
		}
		b.n = (size_t)(d - b.p);
		if (b.n >= (1u << 20) || i + 1 == r->nkeys) {
			if (fwrite(b.p, 1, b.n, fp) != b.n)
				rc = io_err(s, err, "cannot write a temporary file");
			b.n = 0;
		}
	}
	free(b.p);
	if (rc == 0 && fflush(fp) != 0)
		rc = io_err(s, err, "cannot write a temporary file");
	if (rc == 0)
		s->nspilled++;
	return rc;
}

typedef struct cursor {
	FILE *fp;
	int has;
	cs_buf key;
	uint64_t n, bytes;
} cursor;

static int cursor_head(cs_sort *s, cursor *c, cs_error *err)
{
	uint32_t kl;
	c->has = 0;
	if (fread_unlocked(&kl, 4, 1, c->fp) != 1)
		return ferror(c->fp) ? io_err(s, err, "cannot read a temporary file") : 0;
	c->key.n = 0;
	if (cs_buf_reserve(&c->key, kl + 1) < 0)
		return nomem(err);
	if (fread_unlocked(c->key.p, 1, kl, c->fp) != kl || fread_unlocked(&c->n, 8, 1, c->fp) != 1 ||
	    fread_unlocked(&c->bytes, 8, 1, c->fp) != 1)
		return cs_err(err, CS_ERR_IO, s->tmpdir, 0, "temporary file cut short");
	c->key.n = kl;
	c->has = 1;
	return 0;
}

/* Write one group in the run file layout. */
static int put_group(cs_sort *s, FILE *to, const char *key, uint32_t kl,
		     const cs_sort_row *rows, size_t nr, cs_error *err)
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
	return ferror(to) ? io_err(s, err, "cannot write a temporary file") : 0;
}

/* ------------------------------------------------------------ merging */

/* Merged groups on their way out: keys and payloads in pay, rows sorted
 * by time within each group (p an offset into pay until handed over). */
typedef struct mgroup {
	size_t koff, klen, r0, n;
} mgroup;

typedef struct mbatch {
	cs_buf pay;
	cs_sort_row *rows;
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

/* Hands batches to the group function in its own thread while the merge
 * goes on. */
typedef struct emitter {
	cs_sort_group_fn fn;
	void *ctx;
	mbatch *b;
	bgjob job;
} emitter;

static int emit_batch(const emitter *e, const mbatch *b, cs_error *err)
{
	for (size_t i = 0; i < b->ngrp; i++) {
		const mgroup *m = &b->grp[i];
		if (e->fn(e->ctx, (const char *)b->pay.p + m->koff, m->klen, b->rows + m->r0,
			  m->n, b->nrows - m->r0, err) < 0)
			return -1;
	}
	return 0;
}

static void *emit_thread(void *arg)
{
	emitter *e = arg;
	e->job.rc = emit_batch(e, e->b, &e->job.err);
	return NULL;
}

/* Write out the batch: into the run file to, or to the group function (in
 * the background, swapping *b for the batch the emitter is done with). */
static int batch_out(cs_sort *s, FILE *to, emitter *e, mbatch **b, mbatch **spare,
		     cs_error *err)
{
	mbatch *x = *b;
	for (size_t j = 0; j < x->nrows; j++)
		x->rows[j].p = x->pay.p + (uintptr_t)x->rows[j].p;
	if (to) {
		for (size_t i = 0; i < x->ngrp; i++) {
			const mgroup *m = &x->grp[i];
			if (put_group(s, to, (const char *)x->pay.p + m->koff, (uint32_t)m->klen,
				      x->rows + m->r0, m->n, err) < 0)
				return -1;
		}
	} else {
		if (bgjob_wait(&e->job, err) < 0)
			return -1;
		e->b = x;
		e->job.rc = 0;
		if (pthread_create(&e->job.tid, NULL, emit_thread, e) != 0) {
			if (emit_batch(e, x, err) < 0)
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

/* Merge the spilled runs group by group into fn, or (fn NULL) into one
 * run that replaces them. */
static int merge_runs(cs_sort *s, cs_sort_group_fn fn, void *ctx, cs_error *err)
{
	size_t k = s->nruns;
	runfile tr = { 0 };
	if (!fn && tmp_run(s, &tr, err) < 0)
		return -1;
	FILE *to = tr.fp;
	cursor *cs = calloc(k ? k : 1, sizeof *cs);
	mbatch bb[2];
	mbatch *b = &bb[0], *spare = &bb[1];
	emitter em;
	int rc = -1;
	memset(bb, 0, sizeof bb);
	memset(&em, 0, sizeof em);
	em.fn = fn;
	em.ctx = ctx;
	if (!cs) {
		runfile_close(&tr);
		return nomem(err);
	}
	for (size_t i = 0; i < k; i++) {
		cs[i].fp = s->runs[i].fp;
		if (fseeko(cs[i].fp, 0, SEEK_SET) != 0) {
			io_err(s, err, "cannot rewind a temporary file");
			goto out;
		}
		if (cursor_head(s, &cs[i], err) < 0)
			goto out;
	}
	for (;;) {
		cursor *min = NULL;
		for (size_t i = 0; i < k; i++) {
			if (!cs[i].has)
				continue;
			if (!min || cs_sort_keycmp((char *)cs[i].key.p, cs[i].key.n,
						   (char *)min->key.p, min->key.n) < 0)
				min = &cs[i];
		}
		if (!min)
			break;
		/* the key goes first into pay: min's buffer is reused when it advances */
		size_t kl = min->key.n, koff = b->pay.n, r0 = b->nrows, nr = r0;
		if (cs_buf_reserve(&b->pay, kl) < 0 ||
		    cs_grow((void **)&b->grp, &b->capgrp, b->ngrp + 1, sizeof *b->grp) < 0) {
			nomem(err);
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
				nomem(err);
				goto out;
			}
			if (fread_unlocked(b->pay.p + b->pay.n, 1, c->bytes, c->fp) != c->bytes) {
				cs_err(err, CS_ERR_IO, s->tmpdir, 0, "cannot read a temporary file");
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
			if (cursor_head(s, c, err) < 0)
				goto out;
		}
		if (sort_rows(b->rows + r0, nr - r0, &s->tmp, &s->tmpcap) < 0) {
			nomem(err);
			goto out;
		}
		b->nrows = nr;
		b->grp[b->ngrp++] = (mgroup){ koff, kl, r0, nr - r0 };
		if (b->pay.n >= MBATCH_BYTES && batch_out(s, to, &em, &b, &spare, err) < 0)
			goto out;
	}
	if (b->ngrp && batch_out(s, to, &em, &b, &spare, err) < 0)
		goto out;
	if (bgjob_wait(&em.job, err) < 0)
		goto out;
	rc = 0;
	if (to) {
		if (fflush(to) != 0) {
			rc = io_err(s, err, "cannot write a temporary file");
		} else {
			for (size_t i = 0; i < k; i++)
				runfile_close(&s->runs[i]);
			s->runs[0] = tr;
			s->nruns = 1;
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

static int emit_run(const run *r, cs_sort_group_fn fn, void *ctx, cs_error *err)
{
	for (size_t i = 0; i < r->nkeys; i++) {
		const gkey *k = &r->keys[r->order[i]];
		if (fn(ctx, k->s, k->len, r->rows + r->start[i], r->start[i + 1] - r->start[i],
		       r->nrows - r->start[i], err) < 0)
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ chunks */

cs_sort_chunk *cs_sort_chunk_new(cs_sort *s)
{
	cs_sort_chunk *c = NULL;
	pthread_mutex_lock(&s->pool_mu);
	if (s->npool)
		c = s->pool[--s->npool];
	pthread_mutex_unlock(&s->pool_mu);
	if (!c)
		return calloc(1, sizeof(cs_sort_chunk));
	cs_sort_chunk k = *c; /* keep the buffers, reset the rest */
	memset(c, 0, sizeof *c);
	c->arena.p = k.arena.p;
	c->arena.cap = k.arena.cap;
	c->rows = k.rows;
	c->caprows = k.caprows;
	c->keys = k.keys;
	c->capkeys = k.capkeys;
	return c;
}

void cs_sort_chunk_free(cs_sort_chunk *c)
{
	if (!c)
		return;
	free(c->arena.p);
	free(c->rows);
	free(c->keys);
	free(c->ht);
	free(c);
}

int cs_sort_chunk_reserve(cs_sort_chunk *c, size_t len)
{
	/* payloads are about as long as the text: size the arena once */
	if (cs_buf_reserve(&c->arena, len + 256) < 0 ||
	    cs_grow((void **)&c->rows, &c->caprows, len / 64 + 16, sizeof *c->rows) < 0)
		return -1;
	/* and the key table for a key every 64 bytes, sparing the rehashes */
	if (!c->ht) {
		size_t cap = 1024;
		while (cap < len / 32)
			cap *= 2;
		if (!(c->ht = calloc(cap, sizeof *c->ht)))
			return -1;
		c->htcap = cap;
	}
	return 0;
}

/* What a filled chunk holds (its key table dropped): its allocations, not
 * the bytes in use, which can be half of them. */
static size_t chunk_mem(const cs_sort_chunk *c)
{
	return c->arena.cap + c->caprows * sizeof(crow) + c->capkeys * sizeof(ckey);
}

/* Give a spent chunk back to the pool (or free it). */
static void chunk_put(cs_sort *s, cs_sort_chunk *c)
{
	if (!c)
		return;
	if (s) {
		pthread_mutex_lock(&s->pool_mu);
		if (s->npool < POOL_MAX) {
			s->pool[s->npool++] = c;
			c = NULL;
		}
		pthread_mutex_unlock(&s->pool_mu);
	}
	cs_sort_chunk_free(c);
}

/* ------------------------------------------------------------ flushing */

static void pending_clear(cs_sort *s, pending *p)
{
	for (size_t i = 0; i < p->n; i++)
		chunk_put(s, p->c[i]);
	p->n = 0;
	p->mem = 0;
}

/* Turn the pending chunks into a run on disk (in the flush thread). */
static int flush_pending(cs_sort *s, pending *p, cs_error *err)
{
	run r;
	if (!p->n)
		return 0;
	if (run_build(p->c, p->n, &r, &s->tmp, &s->tmpcap) < 0)
		return nomem(err);
	int rc = spill(s, &r, err);
	run_free(&r);
	pending_clear(s, p);
	/* bound the open files: merge the runs so far into one */
	if (rc == 0 && s->nruns >= MAX_RUNS)
		rc = merge_runs(s, NULL, NULL, err);
	return rc;
}

static void *flush_thread(void *arg)
{
	flusher *f = arg;
	f->job.rc = flush_pending(f->s, &f->p, &f->job.err);
	__atomic_store_n(&f->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Hand the pending chunks to the background flusher (or flush them here). */
static int flush_async(cs_sort *s, cs_error *err)
{
	flusher *f = &s->fl;
	pending *p = &s->pend;
	if (bgjob_wait(&f->job, err) < 0)
		return -1;
	pending t = f->p;
	f->p = *p;
	*p = t;
	p->n = 0;
	p->mem = 0;
	f->s = s;
	f->job.rc = 0;
	f->done = 0;
	if (pthread_create(&f->job.tid, NULL, flush_thread, f) != 0)
		return flush_pending(s, &f->p, err);
	f->job.active = 1;
	return 0;
}

/* ------------------------------------------------------------ the sort */

cs_sort *cs_sort_new(size_t limit, const char *tmpdir)
{
	cs_sort *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->limit = limit;
	snprintf(s->tmpdir, sizeof s->tmpdir, "%s", tmpdir);
	pthread_mutex_init(&s->pool_mu, NULL);
	return s;
}

int cs_sort_add(cs_sort *s, cs_sort_chunk *c, cs_error *err)
{
	pending *p = &s->pend;
	/* the key table is of no more use */
	free(c->ht);
	c->ht = NULL;
	c->htcap = 0;
	if (cs_grow((void **)&p->c, &p->cap, p->n + 1, sizeof *p->c) < 0) {
		cs_sort_chunk_free(c);
		return nomem(err);
	}
	p->c[p->n++] = c;
	p->mem += chunk_mem(c);
	return 0;
}

int cs_sort_spill(cs_sort *s, cs_error *err)
{
	/* while the last flush runs, parsing goes on up to 1.5 times the limit
	 * rather than wait for it */
	if (s->pend.mem > s->limit &&
	    (!s->fl.job.active || __atomic_load_n(&s->fl.done, __ATOMIC_ACQUIRE) ||
	     s->pend.mem > s->limit + s->limit / 2))
		return flush_async(s, err);
	return 0;
}

int cs_sort_finish(cs_sort *s, cs_sort_group_fn fn, void *ctx, cs_error *err)
{
	if (bgjob_wait(&s->fl.job, err) < 0)
		return -1;
	if (s->nruns == 0) {
		run r;
		if (run_build(s->pend.c, s->pend.n, &r, &s->tmp, &s->tmpcap) < 0)
			return nomem(err);
		int rc = emit_run(&r, fn, ctx, err);
		run_free(&r);
		return rc;
	}
	if (flush_pending(s, &s->pend, err) < 0)
		return -1;
	return merge_runs(s, fn, ctx, err);
}

uint64_t cs_sort_runs(const cs_sort *s)
{
	return s->nspilled;
}

void cs_sort_free(cs_sort *s)
{
	if (!s)
		return;
	if (s->fl.job.active) {
		pthread_join(s->fl.job.tid, NULL);
		s->fl.job.active = 0;
	}
	pending_clear(NULL, &s->fl.p);
	free(s->fl.p.c);
	pending_clear(NULL, &s->pend);
	free(s->pend.c);
	for (size_t i = 0; i < s->nruns; i++)
		runfile_close(&s->runs[i]);
	free(s->runs);
	free(s->tmp);
	while (s->npool)
		cs_sort_chunk_free(s->pool[--s->npool]);
	pthread_mutex_destroy(&s->pool_mu);
	free(s);
}
