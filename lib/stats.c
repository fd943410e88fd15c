/*
 * stats.c - descriptive statistics of a sequence stream in one pass.
 *
 * Two kinds of counters, both bounded by what the catalogue holds rather
 * than by the events:
 *   tally     value -> count, exact, for the fields whose distinct values
 *             are a catalogue (item, action, category, brand) and for days;
 *             string values are kept once, id and int64 values as numbers.
 *   distinct  unique users and sessions (overall and per action type),
 *             which grow with the data: an exact set of 64-bit hashes up
 *             to CS_STATS_EXACT values, then HyperLogLog with 2^16 one-byte
 *             registers (64 KiB) and Ertl's improved estimator (2017),
 *             unbiased from small to large counts without tables.
 * Sequence lengths go to a histogram of CS_LEN_MAX bins (longer ones share
 * the last bin; the maximum is kept exactly).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "stats.h"
#include "text.h"

#define CS_LEN_MAX 65536

static uint64_t mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* ------------------------------------------------------------ distinct */

typedef struct distinct {
	uint64_t *set; /* open addressing, 0 marks a free slot */
	size_t n, cap;
	uint8_t *reg;  /* HyperLogLog registers, once estimating */
} distinct;

#define HLL_M ((size_t)1 << CS_STATS_HLL_P)
#define HLL_Q (64 - CS_STATS_HLL_P)

static void hll_add(uint8_t *reg, uint64_t h)
{
	size_t i = h >> HLL_Q;
	uint64_t w = h << CS_STATS_HLL_P;
	int r = w ? __builtin_clzll(w) + 1 : HLL_Q + 1;
	if (r > HLL_Q + 1)
		r = HLL_Q + 1;
	if (reg[i] < r)
		reg[i] = (uint8_t)r;
}

static int set_put(uint64_t *set, size_t cap, uint64_t h)
{
	size_t i = (size_t)h & (cap - 1);
	while (set[i]) {
		if (set[i] == h)
			return 0;
		i = (i + 1) & (cap - 1);
	}
	set[i] = h;
	return 1;
}

/* Add a (well mixed) hash. */
static int distinct_add(distinct *d, uint64_t h)
{
	if (d->reg) {
		hll_add(d->reg, h);
		return 0;
	}
	if (!h)
		h = 1;
	if (2 * (d->n + 1) > d->cap) {
		if (d->n >= CS_STATS_EXACT) {
			if (!(d->reg = calloc(HLL_M, 1)))
				return -1;
			for (size_t i = 0; i < d->cap; i++)
				if (d->set[i])
					hll_add(d->reg, d->set[i]);
			free(d->set);
			d->set = NULL;
			d->n = d->cap = 0;
			hll_add(d->reg, h);
			return 0;
		}
		size_t ncap = d->cap ? 2 * d->cap : 64;
		uint64_t *ns = calloc(ncap, sizeof *ns);
		if (!ns)
			return -1;
		for (size_t i = 0; i < d->cap; i++)
			if (d->set[i])
				set_put(ns, ncap, d->set[i]);
		free(d->set);
		d->set = ns;
		d->cap = ncap;
	}
	d->n += (size_t)set_put(d->set, d->cap, h);
	return 0;
}

/* Ertl, "New cardinality estimation algorithms for HyperLogLog sketches" (2017). */
static double hll_sigma(double x)
{
	if (x == 1.0)
		return INFINITY;
	double y = 1.0, z = x, zp;
	do {
		x *= x;
		zp = z;
		z += x * y;
		y += y;
	} while (zp != z);
	return z;
}

static double hll_tau(double x)
{
	if (x == 0.0 || x == 1.0)
		return 0.0;
	double y = 1.0, z = 1.0 - x, zp;
	do {
		x = sqrt(x);
		zp = z;
		y *= 0.5;
		z -= (1.0 - x) * (1.0 - x) * y;
	} while (zp != z);
	return z / 3.0;
}

static uint64_t distinct_count(const distinct *d)
{
	if (!d->reg)
		return d->n;
	double c[HLL_Q + 2] = { 0 }, m = (double)HLL_M;
	for (size_t i = 0; i < HLL_M; i++)
		c[d->reg[i]] += 1.0;
	double z = m * hll_tau(1.0 - c[HLL_Q + 1] / m);
	for (int k = HLL_Q; k >= 1; k--)
		z = 0.5 * (z + c[k]);
	z += m * hll_sigma(c[0] / m);
	return (uint64_t)llround(m * m / (2.0 * log(2.0)) / z);
}

static void distinct_free(distinct *d)
{
	free(d->set);
	free(d->reg);
}

static size_t distinct_memory(const distinct *d)
{
	return d->cap * sizeof *d->set + (d->reg ? HLL_M : 0);
}

/* ------------------------------------------------------------ tally */

typedef struct entry {
	uint64_t key;   /* string hash, or the id or int64 value */
	uint64_t count;
	size_t off;     /* string values: bytes in names */
	uint32_t len;
} entry;

typedef struct tally {
	int strings;    /* values are strings (else numbers) */
	entry *e;
	size_t n, ecap;
	uint32_t *slot; /* entry index + 1, 0 free */
	size_t scap;
	char *names;
	size_t nlen, ncap;
	uint64_t total;
} tally;

static int tally_rehash(tally *t)
{
	size_t ncap = t->scap ? 2 * t->scap : 64;
	uint32_t *ns = calloc(ncap, sizeof *ns);
	if (!ns)
		return -1;
	for (size_t k = 0; k < t->n; k++) {
		size_t i = (size_t)mix64(t->e[k].key) & (ncap - 1);
		while (ns[i])
			i = (i + 1) & (ncap - 1);
		ns[i] = (uint32_t)(k + 1);
	}
	free(t->slot);
	t->slot = ns;
	t->scap = ncap;
	return 0;
}

/* Count one value (s, len for strings; key for numbers); its entry index or -1. */
static long tally_add(tally *t, uint64_t key, const char *s, size_t len)
{
	if (t->strings)
		key = cs_hash64(s, len, CS_HASH64_INIT);
	if (2 * (t->n + 1) > t->scap && tally_rehash(t) < 0)
		return -1;
	size_t i = (size_t)mix64(key) & (t->scap - 1);
	while (t->slot[i]) {
		entry *e = &t->e[t->slot[i] - 1];
		if (e->key == key && (!t->strings ||
				      (e->len == len && memcmp(t->names + e->off, s, len) == 0))) {
			e->count++;
			t->total++;
			return (long)(t->slot[i] - 1);
		}
		i = (i + 1) & (t->scap - 1);
	}
	if (t->n >= UINT32_MAX - 1 ||
	    cs_grow((void **)&t->e, &t->ecap, t->n + 1, sizeof *t->e) < 0)
		return -1;
	entry *e = &t->e[t->n];
	memset(e, 0, sizeof *e);
	e->key = key;
	e->count = 1;
	if (t->strings) {
		if (cs_grow((void **)&t->names, &t->ncap, t->nlen + len + 1, 1) < 0)
			return -1;
		memcpy(t->names + t->nlen, s, len);
		e->off = t->nlen;
		e->len = (uint32_t)len;
		t->nlen += len;
	}
	t->slot[i] = (uint32_t)(t->n + 1);
	t->total++;
	return (long)t->n++;
}

static void tally_free(tally *t)
{
	free(t->e);
	free(t->slot);
	free(t->names);
}

static size_t tally_memory(const tally *t)
{
	return t->ecap * sizeof *t->e + t->scap * sizeof *t->slot + t->ncap;
}

/* ------------------------------------------------------------ fields */

/* A field the statistics use, with how to name its values. */
typedef struct key {
	const char *name;
	int f;          /* schema index, -1 if absent */
	int level, type;
	int vs;         /* vocabulary section naming its ids, -1 if none */
	const char *why; /* why it cannot be used, NULL if it can */
} key;

enum { K_USER, K_SESSION, K_ITEM, K_ACTION, K_CATEGORY, K_CATEGORY_CODE, K_BRAND, NKEYS };
static const char *const key_names[NKEYS] = {
	"user", "session", "item", "action", "category", "category_code", "brand"
};
/* The tallied fields, in the order of their sections. */
static const int tallied[] = { K_ITEM, K_ACTION, K_CATEGORY, K_CATEGORY_CODE, K_BRAND };
#define NTALLIED (sizeof tallied / sizeof tallied[0])

struct cs_stats {
	const cs_schema *s;
	const cs_vocab *vocab;
	size_t top;
	key k[NKEYS];
	int f_time;
	const char *time_why;
	tally tal[NKEYS];       /* used for the tallied keys */
	tally days;             /* day number -> events */
	uint64_t hour[24];
	int64_t tmin, tmax;
	uint64_t ntime;
	distinct users, sessions;
	distinct users_a[CS_STATS_MAX_ACTIONS], sessions_a[CS_STATS_MAX_ACTIONS];
	uint64_t records, events;
	uint64_t *len;          /* CS_LEN_MAX + 1 bins */
	size_t len_max;
	long last_day_entry;
	int64_t last_day;
};

/* 64-bit hash of value i of column c (string, id or int64). */
static uint64_t value_hash(const cs_column *c, size_t i)
{
	if (c->type == CS_STRING) {
		size_t len;
		const char *p = cs_col_str(c, i, &len);
		return mix64(cs_hash64(p, len, CS_HASH64_INIT));
	}
	if (c->type == CS_ID)
		return mix64(c->v.u32[i] ^ 0x9e3779b97f4a7c15ULL);
	return mix64((uint64_t)c->v.i64[i] ^ 0x6a09e667f3bcc909ULL);
}

static void set_key(cs_stats *st, int k, const char *name)
{
	key *K = &st->k[k];
	K->name = name;
	K->f = cs_schema_find(st->s, name);
	K->vs = -1;
	K->why = NULL;
	if (K->f < 0) {
		K->why = "absent";
		return;
	}
	const cs_field *f = &st->s->f[K->f];
	K->level = f->level;
	K->type = f->type;
	if (f->type == CS_FLOAT32) {
		K->f = -1;
		K->why = "float32, not a key";
		return;
	}
	if (f->type == CS_ID && st->vocab) {
		int vs = cs_vocab_find(st->vocab, name);
		if (vs >= 0 && cs_vocab_fingerprint(st->vocab, (size_t)vs) == f->vocab)
			K->vs = vs;
	}
}

cs_stats *cs_stats_new(const cs_schema *s, const cs_stats_opts *o, cs_error *err)
{
	cs_stats *st = calloc(1, sizeof *st);
	if (!st || !(st->len = calloc(CS_LEN_MAX + 1, sizeof *st->len))) {
		free(st);
		cs_err(err, CS_ERR_NOMEM, "", 0, "out of memory");
		return NULL;
	}
	st->s = s;
	st->vocab = o ? o->vocab : NULL;
	st->top = o && o->top ? o->top : 10;
	for (int k = 0; k < NKEYS; k++) {
		set_key(st, k, key_names[k]);
		st->tal[k].strings = st->k[k].f >= 0 && st->k[k].type == CS_STRING;
	}
	st->f_time = cs_schema_find(s, "time");
	if (st->f_time < 0) {
		st->time_why = "absent";
	} else if (s->f[st->f_time].type != CS_INT64 || s->f[st->f_time].level != CS_EVENT) {
		st->time_why = "not an event-level int64";
		st->f_time = -1;
	}
	st->tmin = INT64_MAX;
	st->tmax = INT64_MIN;
	st->last_day_entry = -1;
	return st;
}

void cs_stats_free(cs_stats *st)
{
	if (!st)
		return;
	for (int k = 0; k < NKEYS; k++)
		tally_free(&st->tal[k]);
	tally_free(&st->days);
	distinct_free(&st->users);
	distinct_free(&st->sessions);
	for (int a = 0; a < CS_STATS_MAX_ACTIONS; a++) {
		distinct_free(&st->users_a[a]);
		distinct_free(&st->sessions_a[a]);
	}
	free(st->len);
	free(st);
}

size_t cs_stats_memory(const cs_stats *st)
{
	size_t m = sizeof *st + (CS_LEN_MAX + 1) * sizeof *st->len;
	for (int k = 0; k < NKEYS; k++)
		m += tally_memory(&st->tal[k]);
	m += tally_memory(&st->days);
	m += distinct_memory(&st->users) + distinct_memory(&st->sessions);
	for (int a = 0; a < CS_STATS_MAX_ACTIONS; a++)
		m += distinct_memory(&st->users_a[a]) + distinct_memory(&st->sessions_a[a]);
	return m;
}

/* Count value i of key k's column. */
static long tally_value(cs_stats *st, int k, const cs_column *c, size_t i)
{
	if (c->type == CS_STRING) {
		size_t len;
		const char *p = cs_col_str(c, i, &len);
		return tally_add(&st->tal[k], 0, p, len);
	}
	uint64_t v = c->type == CS_ID ? c->v.u32[i] : (uint64_t)c->v.i64[i];
	return tally_add(&st->tal[k], v, NULL, 0);
}

static int nomem(cs_error *err)
{
	return cs_err(err, CS_ERR_NOMEM, "", 0, "out of memory counting statistics");
}

int cs_stats_add(cs_stats *st, const cs_record *rec, cs_error *err)
{
	size_t n = rec->nevents;
	st->records++;
	st->events += n;
	st->len[n < CS_LEN_MAX ? n : CS_LEN_MAX]++;
	if (n > st->len_max)
		st->len_max = n;
	const key *ku = &st->k[K_USER], *ks = &st->k[K_SESSION];
	const cs_column *cu = ku->f >= 0 ? &rec->col[ku->f] : NULL;
	const cs_column *cse = ks->f >= 0 ? &rec->col[ks->f] : NULL;
	/* A sequence-level key is hashed once per record. */
	uint64_t hu = 0, hs = 0;
	int seq_u = cu && ku->level == CS_SEQ && cu->n, seq_s = cse && ks->level == CS_SEQ && cse->n;
	if (seq_u && distinct_add(&st->users, hu = value_hash(cu, 0)) < 0)
		return nomem(err);
	if (seq_s && distinct_add(&st->sessions, hs = value_hash(cse, 0)) < 0)
		return nomem(err);
	for (size_t j = 0; j < NTALLIED; j++) {
		int k = tallied[j];
		if (k == K_ACTION || st->k[k].f < 0 || st->k[k].level != CS_EVENT)
			continue;
		const cs_column *c = &rec->col[st->k[k].f];
		for (size_t i = 0; i < n; i++)
			if (tally_value(st, k, c, i) < 0)
				return nomem(err);
	}
	if (cu && ku->level == CS_EVENT)
		for (size_t i = 0; i < n; i++)
			if (distinct_add(&st->users, value_hash(cu, i)) < 0)
				return nomem(err);
	if (cse && ks->level == CS_EVENT)
		for (size_t i = 0; i < n; i++)
			if (distinct_add(&st->sessions, value_hash(cse, i)) < 0)
				return nomem(err);
	const key *ka = &st->k[K_ACTION];
	if (ka->f >= 0 && ka->level == CS_EVENT) {
		const cs_column *c = &rec->col[ka->f];
		uint32_t seen = 0;
		for (size_t i = 0; i < n; i++) {
			long a = tally_value(st, K_ACTION, c, i);
			if (a < 0)
				return nomem(err);
			if (a >= CS_STATS_MAX_ACTIONS)
				continue;
			seen |= 1u << a;
			if (cu && ku->level == CS_EVENT &&
			    distinct_add(&st->users_a[a], value_hash(cu, i)) < 0)
				return nomem(err);
			if (cse && ks->level == CS_EVENT &&
			    distinct_add(&st->sessions_a[a], value_hash(cse, i)) < 0)
				return nomem(err);
		}
		for (int a = 0; seen; a++, seen >>= 1) {
			if (!(seen & 1))
				continue;
			if (seq_u && distinct_add(&st->users_a[a], hu) < 0)
				return nomem(err);
			if (seq_s && distinct_add(&st->sessions_a[a], hs) < 0)
				return nomem(err);
		}
	}
	if (st->f_time >= 0) {
		const int64_t *t = rec->col[st->f_time].v.i64;
		for (size_t i = 0; i < n; i++) {
			if (t[i] == INT64_MIN)
				continue; /* no value */
			if (t[i] < st->tmin)
				st->tmin = t[i];
			if (t[i] > st->tmax)
				st->tmax = t[i];
			st->ntime++;
			int64_t day = t[i] / 86400 - (t[i] % 86400 < 0);
			int64_t sec = t[i] - day * 86400;
			st->hour[sec / 3600]++;
			if (day == st->last_day && st->last_day_entry >= 0) {
				st->days.e[st->last_day_entry].count++;
				st->days.total++;
				continue;
			}
			long e = tally_add(&st->days, (uint64_t)day, NULL, 0);
			if (e < 0)
				return nomem(err);
			st->last_day = day;
			st->last_day_entry = e;
		}
	}
	return 0;
}

/* ------------------------------------------------------------ output */

/* The name of entry e of key k's tally, into buf when made up. */
static const char *entry_name(const cs_stats *st, int k, const entry *e, size_t *len,
			      char *buf, size_t n)
{
	const tally *t = &st->tal[k];
	if (t->strings) {
		*len = e->len;
		return t->names + e->off;
	}
	if (st->k[k].type == CS_ID && st->k[k].vs >= 0) {
		const char *p = cs_vocab_token(st->vocab, (size_t)st->k[k].vs, (uint32_t)e->key, len);
		if (p)
			return p;
	}
	if (st->k[k].type == CS_ID)
		*len = (size_t)snprintf(buf, n, "%u", (unsigned)e->key);
	else
		*len = (size_t)snprintf(buf, n, "%lld", (long long)(int64_t)e->key);
	return buf;
}

typedef struct emitter {
	FILE *fp;
	int json, nsec, nkey;
	const char *sec;
	char *buf;
	size_t cap;
} emitter;

static void put_json_str(FILE *fp, const char *s, size_t len)
{
	putc('"', fp);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			fprintf(fp, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", fp);
		else if (c == '\t')
			fputs("\\t", fp);
		else if (c < 0x20 || c == 0x7f)
			fprintf(fp, "\\u%04x", c);
		else
			putc(c, fp);
	}
	putc('"', fp);
}

static void sec_begin(emitter *em, const char *name)
{
	em->sec = name;
	em->nkey = 0;
	if (em->json) {
		fputs(em->nsec ? ",\n" : "{\n", em->fp);
		fprintf(em->fp, "\"%s\":{", name);
	}
	em->nsec++;
}

static void sec_end(emitter *em)
{
	if (em->json)
		fputs("}", em->fp);
}

/* Start the row of key k (len bytes). */
static void key_begin(emitter *em, const char *k, size_t len)
{
	if (em->json) {
		if (em->nkey)
			putc(',', em->fp);
		put_json_str(em->fp, k, len);
		putc(':', em->fp);
	} else {
		if (cs_grow((void **)&em->buf, &em->cap, 4 * len + 1, 1) == 0) {
			size_t n = cs_text_escape(em->buf, k, len);
			fprintf(em->fp, "%s\t", em->sec);
			fwrite(em->buf, 1, n, em->fp);
			putc('\t', em->fp);
		}
	}
	em->nkey++;
}

static void key_end(emitter *em)
{
	if (!em->json)
		putc('\n', em->fp);
}

static void kv_u64(emitter *em, const char *k, uint64_t v)
{
	key_begin(em, k, strlen(k));
	fprintf(em->fp, "%llu", (unsigned long long)v);
	key_end(em);
}

static void kv_num(emitter *em, const char *k, size_t klen, double v)
{
	key_begin(em, k, klen);
	if (isfinite(v))
		fprintf(em->fp, "%.6g", v);
	else
		fputs(em->json ? "null" : "nan", em->fp);
	key_end(em);
}

static void kv_f(emitter *em, const char *k, double v)
{
	kv_num(em, k, strlen(k), v);
}

static void kv_str(emitter *em, const char *k, const char *v)
{
	key_begin(em, k, strlen(k));
	size_t len = strlen(v);
	if (em->json) {
		put_json_str(em->fp, v, len);
	} else if (cs_grow((void **)&em->buf, &em->cap, 4 * len + 1, 1) == 0) {
		size_t n = cs_text_escape(em->buf, v, len);
		fwrite(em->buf, 1, n, em->fp);
	}
	key_end(em);
}

static void kv_count(emitter *em, const char *k, size_t klen, uint64_t v)
{
	key_begin(em, k, klen);
	fprintf(em->fp, "%llu", (unsigned long long)v);
	key_end(em);
}

static void fmt_time(char *buf, size_t n, int64_t t, int date_only)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm)) {
		snprintf(buf, n, "%lld", (long long)t);
		return;
	}
	strftime(buf, n, date_only ? "%Y-%m-%d" : "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Entries of tally k, sorted by count descending then name. */
typedef struct sort_ctx {
	const cs_stats *st;
	int k;
} sort_ctx;

static int by_count(const void *a, const void *b, void *arg)
{
	const sort_ctx *c = arg;
	const tally *t = &c->st->tal[c->k];
	const entry *x = &t->e[*(const uint32_t *)a], *y = &t->e[*(const uint32_t *)b];
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	if (t->strings) {
		size_t n = x->len < y->len ? x->len : y->len;
		int r = memcmp(t->names + x->off, t->names + y->off, n);
		return r ? r : (x->len > y->len) - (x->len < y->len);
	}
	return (x->key > y->key) - (x->key < y->key);
}

static uint32_t *sorted(const cs_stats *st, int k)
{
	const tally *t = &st->tal[k];
	uint32_t *ix = malloc((t->n ? t->n : 1) * sizeof *ix);
	if (!ix)
		return NULL;
	for (size_t i = 0; i < t->n; i++)
		ix[i] = (uint32_t)i;
	sort_ctx c = { st, k };
	qsort_r(ix, t->n, sizeof *ix, by_count, &c);
	return ix;
}

static int is_empty(const cs_stats *st, int k, const entry *e)
{
	char buf[32];
	size_t len;
	entry_name(st, k, e, &len, buf, sizeof buf);
	return len == 0;
}

/* Index of the action called name, -1 if none or not followed. */
static int action_index(const cs_stats *st, const char *name)
{
	const tally *t = &st->tal[K_ACTION];
	for (size_t a = 0; a < t->n && a < CS_STATS_MAX_ACTIONS; a++) {
		char buf[32];
		size_t len;
		const char *p = entry_name(st, K_ACTION, &t->e[a], &len, buf, sizeof buf);
		if (len == strlen(name) && memcmp(p, name, len) == 0)
			return (int)a;
	}
	return -1;
}

static uint64_t len_quantile(const cs_stats *st, double q)
{
	uint64_t need = (uint64_t)ceil(q * (double)st->records), cum = 0;
	if (need == 0)
		need = 1;
	for (size_t l = 0; l <= CS_LEN_MAX; l++) {
		cum += st->len[l];
		if (cum >= need)
			return l < CS_LEN_MAX ? l : st->len_max;
	}
	return st->len_max;
}

static const char *why(const char *name, const char *reason, char *buf, size_t n)
{
	snprintf(buf, n, "no '%s' field%s%s", name, strcmp(reason, "absent") ? ": " : "",
		 strcmp(reason, "absent") ? reason : "");
	return buf;
}

int cs_stats_write(cs_stats *st, FILE *fp, const char *name, int format, cs_error *err)
{
	emitter em = { .fp = fp, .json = format == CS_STATS_JSON };
	char buf[256], nb[32];
	const key *K = st->k;
	int has_u = K[K_USER].f >= 0, has_s = K[K_SESSION].f >= 0, has_a = K[K_ACTION].f >= 0;
	uint32_t *ix = NULL;

	sec_begin(&em, "stream");
	kv_u64(&em, "records", st->records);
	kv_u64(&em, "events", st->events);
	const char *g = cs_schema_get_meta(st->s, "grouped_by");
	if (g)
		kv_str(&em, "grouped_by", g);
	const char *src = cs_schema_get_meta(st->s, "source");
	if (src)
		kv_str(&em, "source", src);
	sec_end(&em);

	sec_begin(&em, "unique");
	if (has_u)
		kv_u64(&em, "users", distinct_count(&st->users));
	if (has_s)
		kv_u64(&em, "sessions", distinct_count(&st->sessions));
	for (size_t j = 0; j < NTALLIED; j++) {
		int k = tallied[j];
		if (K[k].f < 0 || K[k].level != CS_EVENT)
			continue;
		uint64_t n = 0;
		for (size_t i = 0; i < st->tal[k].n; i++)
			n += !is_empty(st, k, &st->tal[k].e[i]);
		kv_u64(&em, K[k].name, n);
	}
	sec_end(&em);

	/* Counts estimated by HyperLogLog, with their relative standard error. */
	double rse = 1.04 / sqrt((double)HLL_M);
	int nest = 0;
	const distinct *est[2 + 2 * CS_STATS_MAX_ACTIONS];
	const char *estname[2 + 2 * CS_STATS_MAX_ACTIONS];
	char estbuf[2 * CS_STATS_MAX_ACTIONS][64];
	est[nest] = &st->users, estname[nest++] = "users";
	est[nest] = &st->sessions, estname[nest++] = "sessions";
	for (size_t a = 0; has_a && a < st->tal[K_ACTION].n && a < CS_STATS_MAX_ACTIONS; a++) {
		size_t len;
		const char *p = entry_name(st, K_ACTION, &st->tal[K_ACTION].e[a], &len, nb, sizeof nb);
		snprintf(estbuf[2 * a], 64, "sessions_with %.*s", (int)len, p);
		snprintf(estbuf[2 * a + 1], 64, "users_with %.*s", (int)len, p);
		est[nest] = &st->sessions_a[a], estname[nest++] = estbuf[2 * a];
		est[nest] = &st->users_a[a], estname[nest++] = estbuf[2 * a + 1];
	}
	int any = 0;
	for (int i = 0; i < nest; i++)
		any |= est[i]->reg != NULL;
	if (any) {
		sec_begin(&em, "estimated");
		for (int i = 0; i < nest; i++)
			if (est[i]->reg)
				kv_f(&em, estname[i], rse);
		sec_end(&em);
	}

	if (st->f_time >= 0 && st->ntime) {
		sec_begin(&em, "time");
		fmt_time(buf, sizeof buf, st->tmin, 0);
		kv_str(&em, "first", buf);
		fmt_time(buf, sizeof buf, st->tmax, 0);
		kv_str(&em, "last", buf);
		kv_u64(&em, "days", st->days.n);
		kv_f(&em, "span_days", (double)(st->tmax - st->tmin) / 86400.0);
		kv_f(&em, "events_per_day", (double)st->ntime / (double)st->days.n);
		sec_end(&em);
	}

	sec_begin(&em, "length");
	kv_u64(&em, "min", len_quantile(st, 0.0));
	kv_f(&em, "mean", st->records ? (double)st->events / (double)st->records : NAN);
	kv_u64(&em, "p50", len_quantile(st, 0.5));
	kv_u64(&em, "p90", len_quantile(st, 0.9));
	kv_u64(&em, "p99", len_quantile(st, 0.99));
	kv_u64(&em, "max", st->len_max);
	kv_u64(&em, "single_event", st->len[1]);
	sec_end(&em);

	if (has_a && K[K_ACTION].level == CS_EVENT) {
		if (!(ix = sorted(st, K_ACTION)))
			goto nomem;
		const tally *t = &st->tal[K_ACTION];
		sec_begin(&em, "action");
		for (size_t i = 0; i < t->n; i++) {
			size_t len;
			const char *p = entry_name(st, K_ACTION, &t->e[ix[i]], &len, nb, sizeof nb);
			kv_count(&em, p, len, t->e[ix[i]].count);
		}
		sec_end(&em);
		const char *who[2] = { "sessions_with", "users_with" };
		for (int w = 0; w < 2; w++) {
			if (!(w ? has_u : has_s))
				continue;
			sec_begin(&em, who[w]);
			for (size_t i = 0; i < t->n; i++) {
				if (ix[i] >= CS_STATS_MAX_ACTIONS)
					continue;
				size_t len;
				const char *p = entry_name(st, K_ACTION, &t->e[ix[i]], &len, nb, sizeof nb);
				kv_count(&em, p, len, distinct_count(w ? &st->users_a[ix[i]]
								  : &st->sessions_a[ix[i]]));
			}
			sec_end(&em);
		}
		free(ix);
		ix = NULL;
		/*
		 * The funnel: shares of all sessions (users) with at least one
		 * event of each step. Steps need not nest (the Kaggle export has
		 * purchases without a cart event), so no ratio of one to another.
		 */
		int av = action_index(st, "view"), ac = action_index(st, "cart"),
		    ap = action_index(st, "purchase");
		if ((has_s || has_u) && (av >= 0 || ac >= 0 || ap >= 0)) {
			sec_begin(&em, "funnel");
			for (int w = 0; w < 2; w++) {
				if (!(w ? has_u : has_s))
					continue;
				const distinct *d = w ? st->users_a : st->sessions_a;
				double all = (double)distinct_count(w ? &st->users : &st->sessions);
				const char *p = w ? "user" : "session";
				int step[3] = { av, ac, ap };
				const char *sn[3] = { "view", "cart", "purchase" };
				for (int i = 0; i < 3; i++) {
					if (step[i] < 0)
						continue;
					snprintf(buf, sizeof buf, "%s_%s", p, sn[i]);
					kv_f(&em, buf, (double)distinct_count(&d[step[i]]) / all);
				}
			}
			sec_end(&em);
		}
	}

	if (st->f_time >= 0 && st->ntime) {
		if (!(ix = malloc((st->days.n ? st->days.n : 1) * sizeof *ix)))
			goto nomem;
		for (size_t i = 0; i < st->days.n; i++)
			ix[i] = (uint32_t)i;
		/* days by date: bubble the few dozen entries into order */
		for (size_t i = 1; i < st->days.n; i++)
			for (size_t j = i; j > 0 && (int64_t)st->days.e[ix[j]].key <
				     (int64_t)st->days.e[ix[j - 1]].key; j--) {
				uint32_t x = ix[j];
				ix[j] = ix[j - 1];
				ix[j - 1] = x;
			}
		sec_begin(&em, "day");
		for (size_t i = 0; i < st->days.n; i++) {
			fmt_time(buf, sizeof buf, (int64_t)st->days.e[ix[i]].key * 86400, 1);
			kv_count(&em, buf, strlen(buf), st->days.e[ix[i]].count);
		}
		sec_end(&em);
		free(ix);
		ix = NULL;
		sec_begin(&em, "hour");
		for (int h = 0; h < 24; h++) {
			snprintf(buf, sizeof buf, "%02d", h);
			kv_u64(&em, buf, st->hour[h]);
		}
		sec_end(&em);
	}

	for (size_t j = 0; j < NTALLIED; j++) {
		int k = tallied[j];
		if (k == K_ACTION || K[k].f < 0 || K[k].level != CS_EVENT)
			continue;
		if (!(ix = sorted(st, k)))
			goto nomem;
		snprintf(buf, sizeof buf, "top_%s", K[k].name);
		sec_begin(&em, buf);
		const tally *t = &st->tal[k];
		for (size_t i = 0, shown = 0; i < t->n && shown < st->top; i++) {
			size_t len;
			const char *p = entry_name(st, k, &t->e[ix[i]], &len, nb, sizeof nb);
			if (!len)
				continue;
			kv_count(&em, p, len, t->e[ix[i]].count);
			shown++;
		}
		sec_end(&em);
		free(ix);
		ix = NULL;
	}

	int anytal = 0;
	for (size_t j = 0; j < NTALLIED; j++)
		anytal |= K[tallied[j]].f >= 0 && K[tallied[j]].level == CS_EVENT;
	if (anytal) {
		sec_begin(&em, "empty");
		for (size_t j = 0; j < NTALLIED; j++) {
			int k = tallied[j];
			if (K[k].f < 0 || K[k].level != CS_EVENT)
				continue;
			uint64_t n = 0;
			for (size_t i = 0; i < st->tal[k].n; i++)
				if (is_empty(st, k, &st->tal[k].e[i]))
					n += st->tal[k].e[i].count;
			kv_u64(&em, K[k].name, n);
		}
		sec_end(&em);
	}

	if (K[K_ITEM].f >= 0 && K[K_ITEM].level == CS_EVENT && st->tal[K_ITEM].n) {
		if (!(ix = sorted(st, K_ITEM)))
			goto nomem;
		const tally *t = &st->tal[K_ITEM];
		size_t n = 0;
		uint64_t total = 0;
		for (size_t i = 0; i < t->n; i++)
			if (!is_empty(st, K_ITEM, &t->e[ix[i]]))
				ix[n++] = ix[i], total += t->e[ix[i]].count;
		sec_begin(&em, "popularity");
		kv_u64(&em, "items", n);
		double pct[2] = { 0.01, 0.10 };
		const char *pn[2] = { "top1pct_share", "top10pct_share" };
		for (int p = 0; p < 2; p++) {
			size_t k = (size_t)ceil(pct[p] * (double)n);
			uint64_t sum = 0;
			for (size_t i = 0; i < k; i++)
				sum += t->e[ix[i]].count;
			kv_f(&em, pn[p], total ? (double)sum / (double)total : NAN);
		}
		uint64_t once = 0;
		for (size_t i = 0; i < n; i++)
			once += t->e[ix[i]].count == 1;
		kv_u64(&em, "items_seen_once", once);
		sec_end(&em);
		free(ix);
		ix = NULL;
	}

	/* Id fields named by no vocabulary: their values print as ids. */
	int nid = 0;
	for (int k = 0; k < NKEYS; k++)
		nid += K[k].f >= 0 && K[k].type == CS_ID && K[k].vs < 0;
	if (nid) {
		sec_begin(&em, "note");
		for (int k = 0; k < NKEYS; k++)
			if (K[k].f >= 0 && K[k].type == CS_ID && K[k].vs < 0)
				kv_str(&em, K[k].name, st->vocab ?
				       "ids: the vocabulary has no section of this fingerprint" :
				       "ids: give the vocabulary (--vocab) to name them and tell the empty value apart");
		sec_end(&em);
	}

	/* What the stream cannot tell, and why. */
	int nmiss = 0;
	for (int k = 0; k < NKEYS; k++)
		nmiss += K[k].why != NULL;
	nmiss += st->time_why != NULL;
	if (nmiss) {
		static const char *const lost[NKEYS] = {
			"no unique users, no funnel per user",
			"no unique sessions, no funnel per session",
			"no top items, no popularity",
			"no events per type, no funnel",
			"no top categories", "no top category codes", "no top brands"
		};
		sec_begin(&em, "missing");
		for (int k = 0; k < NKEYS; k++) {
			if (!K[k].why)
				continue;
			char w[128];
			snprintf(buf, sizeof buf, "%s: %s", why(K[k].name, K[k].why, w, sizeof w), lost[k]);
			kv_str(&em, K[k].name, buf);
		}
		if (st->time_why) {
			char w[128];
			snprintf(buf, sizeof buf, "%s: no time range, no events per day or hour",
				 why("time", st->time_why, w, sizeof w));
			kv_str(&em, "time", buf);
		}
		sec_end(&em);
	}
	if (em.json)
		fputs("\n}\n", fp);
	free(em.buf);
	if (fflush(fp) != 0 || ferror(fp))
		return cs_err(err, CS_ERR_IO, name, 0, "write error: %s", strerror(errno));
	return 0;
nomem:
	free(em.buf);
	return nomem(err);
}

/* ------------------------------------------------------------ plot data */

static FILE *open_in(const char *dir, const char *file, char *path, size_t n, cs_error *err)
{
	snprintf(path, n, "%s/%s", dir, file);
	FILE *fp = fopen(path, "w");
	if (!fp)
		cs_err(err, CS_ERR_IO, path, 0, "cannot create: %s", strerror(errno));
	return fp;
}

static int close_in(FILE *fp, const char *path, cs_error *err)
{
	int bad = ferror(fp);
	if (fclose(fp) != 0 || bad)
		return cs_err(err, CS_ERR_IO, path, 0, "write error: %s", strerror(errno));
	return 0;
}

int cs_stats_write_plot_data(cs_stats *st, const char *dir, unsigned *have, cs_error *err)
{
	char path[4096], nb[32];
	FILE *fp;
	*have = 0;
	if (st->records) {
		if (!(fp = open_in(dir, "length.tsv", path, sizeof path, err)))
			return -1;
		fputs("length\tsequences\n", fp);
		for (size_t l = 0; l <= CS_LEN_MAX; l++)
			if (st->len[l])
				fprintf(fp, "%zu\t%llu\n", l < CS_LEN_MAX ? l : st->len_max,
					(unsigned long long)st->len[l]);
		if (close_in(fp, path, err) < 0)
			return -1;
		*have |= CS_PLOT_LENGTH;
	}
	const tally *t = &st->tal[K_ITEM];
	if (st->k[K_ITEM].f >= 0 && st->k[K_ITEM].level == CS_EVENT && t->n) {
		uint32_t *ix = sorted(st, K_ITEM);
		if (!ix)
			return nomem(err);
		if (!(fp = open_in(dir, "popularity.tsv", path, sizeof path, err))) {
			free(ix);
			return -1;
		}
		fputs("rank\tevents\n", fp);
		/* log-spaced ranks: a few hundred points draw the curve */
		size_t n = 0;
		for (size_t i = 0; i < t->n; i++)
			if (!is_empty(st, K_ITEM, &t->e[ix[i]]))
				ix[n++] = ix[i];
		for (size_t r = 1; r <= n;) {
			fprintf(fp, "%zu\t%llu\n", r, (unsigned long long)t->e[ix[r - 1]].count);
			if (r == n)
				break;
			size_t next = (size_t)((double)r * 1.03);
			r = next > r ? next : r + 1;
			if (r > n)
				r = n;
		}
		free(ix);
		if (close_in(fp, path, err) < 0)
			return -1;
		*have |= CS_PLOT_POPULARITY;
	}
	if (st->f_time >= 0 && st->ntime) {
		if (!(fp = open_in(dir, "day.tsv", path, sizeof path, err)))
			return -1;
		fputs("day\tevents\n", fp);
		/* every day from the first to the last, zeros included */
		int64_t d0 = st->tmin / 86400 - (st->tmin % 86400 < 0);
		int64_t d1 = st->tmax / 86400 - (st->tmax % 86400 < 0);
		for (int64_t d = d0; d <= d1; d++) {
			uint64_t c = 0;
			for (size_t i = 0; i < st->days.n; i++)
				if ((int64_t)st->days.e[i].key == d)
					c = st->days.e[i].count;
			fmt_time(nb, sizeof nb, d * 86400, 1);
			fprintf(fp, "%s\t%llu\n", nb, (unsigned long long)c);
		}
		if (close_in(fp, path, err) < 0)
			return -1;
		*have |= CS_PLOT_DAY;
		if (!(fp = open_in(dir, "hour.tsv", path, sizeof path, err)))
			return -1;
		fputs("hour\tevents\n", fp);
		for (int h = 0; h < 24; h++)
			fprintf(fp, "%d\t%llu\n", h, (unsigned long long)st->hour[h]);
		if (close_in(fp, path, err) < 0)
			return -1;
		*have |= CS_PLOT_HOUR;
	}
	const tally *ta = &st->tal[K_ACTION];
	if (st->k[K_ACTION].f >= 0 && st->k[K_ACTION].level == CS_EVENT && ta->n) {
		if (!(fp = open_in(dir, "funnel.tsv", path, sizeof path, err)))
			return -1;
		fputs("action\tevents\tsessions\tusers\tsession_share\tuser_share\n", fp);
		/* the funnel's steps in order, then the other actions by count */
		static const char *const steps[] = { "view", "cart", "purchase" };
		int done[CS_STATS_MAX_ACTIONS] = { 0 };
		int order[CS_STATS_MAX_ACTIONS], no = 0;
		for (int i = 0; i < 3; i++) {
			int a = action_index(st, steps[i]);
			if (a >= 0)
				order[no++] = a, done[a] = 1;
		}
		uint32_t *ix = sorted(st, K_ACTION);
		if (!ix) {
			fclose(fp);
			return nomem(err);
		}
		for (size_t i = 0; i < ta->n; i++)
			if (ix[i] < CS_STATS_MAX_ACTIONS && !done[ix[i]])
				order[no++] = (int)ix[i];
		free(ix);
		for (int i = 0; i < no; i++) {
			size_t len;
			const char *p = entry_name(st, K_ACTION, &ta->e[order[i]], &len, nb, sizeof nb);
			char esc[4 * 32 + 1], *e = esc;
			if (len > 32)
				len = 32;
			e[cs_text_escape(esc, p, len)] = 0;
			fprintf(fp, "%s\t%llu\t", *e ? e : "(empty)",
				(unsigned long long)ta->e[order[i]].count);
			/* counts, then shares of all sessions and users; NaN without the field */
			double ns = NAN, nu = NAN;
			if (st->k[K_SESSION].f >= 0)
				ns = (double)distinct_count(&st->sessions_a[order[i]]);
			if (st->k[K_USER].f >= 0)
				nu = (double)distinct_count(&st->users_a[order[i]]);
			fprintf(fp, "%.0f\t%.0f\t%.6g\t%.6g\n", ns, nu,
				ns / (double)distinct_count(&st->sessions),
				nu / (double)distinct_count(&st->users));
		}
		if (close_in(fp, path, err) < 0)
			return -1;
		*have |= CS_PLOT_FUNNEL;
	}
	return 0;
}
