/* util.c - error records, hashing, clocks and option parsing helpers. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>
#include "cs.h"

int cs_err(cs_error *err, int code, const char *path, long line,
	   const char *fmt, ...)
{
	if (!err)
		return -1;
	va_list ap;
	err->code = code;
	err->line = line;
	err->record = 0;
	snprintf(err->path, sizeof err->path, "%s", path ? path : "");
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	return -1;
}

const char *cs_strerror(const cs_error *err, char *buf, size_t n)
{
	if (err->path[0] && err->line > 0)
		snprintf(buf, n, "%s:%ld: %s", err->path, err->line, err->msg);
	else if (err->path[0] && err->record > 0)
		snprintf(buf, n, "%s: record %lld: %s", err->path, err->record, err->msg);
	else if (err->path[0])
		snprintf(buf, n, "%s: %s", err->path, err->msg);
	else
		snprintf(buf, n, "%s", err->msg);
	return buf;
}

uint64_t cs_hash64(const void *p, size_t n, uint64_t h)
{
	const unsigned char *s = p;
	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* ------------------------------------------------------------ XXH64 */

#define XP1 0x9E3779B185EBCA87ULL
#define XP2 0xC2B2AE3D27D4EB4FULL
#define XP3 0x165667B19E3779F9ULL
#define XP4 0x85EBCA77C2B2AE63ULL
#define XP5 0x27D4EB2F165667C5ULL

static inline uint64_t rotl64(uint64_t x, int r) { return x << r | x >> (64 - r); }

/* Little-endian loads at any alignment (one mov on x86). */
static inline uint64_t le64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static inline uint32_t le32(const unsigned char *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static inline uint64_t xround(uint64_t acc, uint64_t in)
{
	acc += in * XP2;
	return rotl64(acc, 31) * XP1;
}

static inline uint64_t xmerge(uint64_t h, uint64_t v)
{
	h ^= xround(0, v);
	return h * XP1 + XP4;
}

/* The 32-byte stripes of p[0, n & ~31) into the four lanes; returns the bytes taken. */
static size_t xstripes(uint64_t v[4], const unsigned char *p, size_t n)
{
	uint64_t a = v[0], b = v[1], c = v[2], d = v[3];
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		a = xround(a, le64(p + i));
		b = xround(b, le64(p + i + 8));
		c = xround(c, le64(p + i + 16));
		d = xround(d, le64(p + i + 24));
	}
	v[0] = a, v[1] = b, v[2] = c, v[3] = d;
	return i;
}

/* The tail (fewer than 32 bytes) and the final mix. */
static uint64_t xfinish(uint64_t h, const unsigned char *p, size_t n)
{
	for (; n >= 8; p += 8, n -= 8) {
		h ^= xround(0, le64(p));
		h = rotl64(h, 27) * XP1 + XP4;
	}
	if (n >= 4) {
		h ^= (uint64_t)le32(p) * XP1;
		h = rotl64(h, 23) * XP2 + XP3;
		p += 4, n -= 4;
	}
	for (; n; p++, n--) {
		h ^= *p * XP5;
		h = rotl64(h, 11) * XP1;
	}
	h ^= h >> 33;
	h *= XP2;
	h ^= h >> 29;
	h *= XP3;
	return h ^ h >> 32;
}

static uint64_t xlanes(const uint64_t v[4])
{
	uint64_t h = rotl64(v[0], 1) + rotl64(v[1], 7) + rotl64(v[2], 12) + rotl64(v[3], 18);
	for (int i = 0; i < 4; i++)
		h = xmerge(h, v[i]);
	return h;
}

void cs_xxh64_init(cs_xxh64_state *s, uint64_t seed)
{
	memset(s, 0, sizeof *s);
	s->seed = seed;
	s->v[0] = seed + XP1 + XP2;
	s->v[1] = seed + XP2;
	s->v[2] = seed;
	s->v[3] = seed - XP1;
}

void cs_xxh64_update(cs_xxh64_state *s, const void *p, size_t n)
{
	const unsigned char *b = p;
	s->total += n;
	if (s->nbuf + n < 32) {
		if (n)
			memcpy(s->buf + s->nbuf, b, n);
		s->nbuf += n;
		return;
	}
	if (s->nbuf) { /* fill the pending stripe first */
		size_t k = 32 - s->nbuf;
		memcpy(s->buf + s->nbuf, b, k);
		xstripes(s->v, s->buf, 32);
		b += k, n -= k;
		s->nbuf = 0;
	}
	size_t done = xstripes(s->v, b, n);
	s->nbuf = n - done;
	if (s->nbuf)
		memcpy(s->buf, b + done, s->nbuf);
}

uint64_t cs_xxh64_digest(const cs_xxh64_state *s)
{
	uint64_t h = s->total >= 32 ? xlanes(s->v) : s->seed + XP5;
	return xfinish(h + s->total, s->buf, s->nbuf);
}

uint64_t cs_xxh64(const void *p, size_t n, uint64_t seed)
{
	cs_xxh64_state s;
	cs_xxh64_init(&s, seed);
	const unsigned char *b = p;
	size_t done = xstripes(s.v, b, n);
	uint64_t h = n >= 32 ? xlanes(s.v) : seed + XP5;
	return xfinish(h + n, b + done, n - done);
}

struct cs_lines {
	int fd, eof;
	char *name;
	char *buf;        /* bytes [pos, len) not yet returned */
	size_t pos, scan, len, cap; /* scan: no newline in [pos, scan) */
};

cs_lines *cs_lines_new(int fd, const char *name)
{
	cs_lines *l = calloc(1, sizeof *l);
	if (!l || !(l->name = strdup(name ? name : "<input>")) ||
	    !(l->buf = malloc(l->cap = 1 << 16))) {
		cs_lines_free(l);
		return NULL;
	}
	l->fd = fd;
	return l;
}

void cs_lines_free(cs_lines *l)
{
	if (!l)
		return;
	free(l->name);
	free(l->buf);
	free(l);
}

int cs_lines_next(cs_lines *l, int wait, char **line, size_t *len, cs_error *err)
{
	for (;;) {
		char *nl = memchr(l->buf + l->scan, '\n', l->len - l->scan);
		if (nl || (l->eof && l->len > l->pos)) {
			size_t n = nl ? (size_t)(nl - l->buf) - l->pos : l->len - l->pos;
			*line = l->buf + l->pos;
			*len = n;
			(*line)[n] = 0; /* a read leaves room for it */
			l->pos = l->scan = l->pos + n + (nl != NULL);
			return 1;
		}
		l->scan = l->len;
		if (l->eof)
			return 0;
		/* the partial line to the front; room for a block and a NUL */
		if (l->pos) {
			memmove(l->buf, l->buf + l->pos, l->len - l->pos);
			l->len -= l->pos;
			l->scan = l->len;
			l->pos = 0;
		}
		if (l->cap - l->len < (1 << 12) + 1) {
			char *b = realloc(l->buf, l->cap * 2);
			if (!b)
				return cs_err(err, CS_ERR_NOMEM, l->name, 0, "out of memory");
			l->buf = b;
			l->cap *= 2;
		}
		if (!wait) {
			struct pollfd p = { .fd = l->fd, .events = POLLIN };
			if (poll(&p, 1, 0) == 0)
				return CS_LINES_LATER;
		}
		ssize_t n = read(l->fd, l->buf + l->len, l->cap - l->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cs_err(err, CS_ERR_IO, l->name, 0, "read error: %s", strerror(errno));
		if (n == 0)
			l->eof = 1;
		l->len += (size_t)n;
	}
}

void *cs_malloc_huge(size_t n)
{
	const size_t huge = (size_t)2 << 20;
	size_t len = n ? (n + huge - 1) / huge * huge : huge;
	void *p = aligned_alloc(huge, len);
#ifdef MADV_HUGEPAGE
	if (p)
		madvise(p, len, MADV_HUGEPAGE); /* a hint only */
#endif
	return p;
}

void *cs_malloc_large(size_t n)
{
	if (n < (size_t)4 << 20)
		return malloc(n ? n : 1);
	return cs_malloc_huge(n);
}

int cs_grow(void **p, size_t *cap, size_t need, size_t sz)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 64;
	while (c < need)
		c *= 2;
	void *q = realloc(*p, c * sz);
	if (!q)
		return -1;
	*p = q;
	*cap = c;
	return 0;
}

double cs_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* A non-negative decimal number; *unit points past it. */
static int number_unit(const char *s, double *v, const char **unit)
{
	char *end;
	if (!s || !*s || isspace((unsigned char)*s) || *s == '-')
		return -1;
	errno = 0;
	*v = strtod(s, &end);
	if (errno || end == s || !(*v >= 0))
		return -1;
	*unit = end;
	return 0;
}

int cs_parse_bytes(const char *s, uint64_t *out)
{
	double v, m;
	const char *u;
	if (number_unit(s, &v, &u) < 0)
		return -1;
	switch (*u) {
	case 0: m = 1; break;
	case 'k': case 'K': m = 1024.0; break;
	case 'm': case 'M': m = 1024.0 * 1024; break;
	case 'g': case 'G': m = 1024.0 * 1024 * 1024; break;
	case 't': case 'T': m = 1024.0 * 1024 * 1024 * 1024; break;
	default: return -1;
	}
	if (*u && u[1] && strcmp(u + 1, "B") != 0 && strcmp(u + 1, "iB") != 0)
		return -1;
	v *= m;
	if (v >= 18446744073709551615.0)
		return -1;
	*out = (uint64_t)v;
	return 0;
}

int cs_parse_duration(const char *s, int64_t *out)
{
	double v, m;
	const char *u;
	if (number_unit(s, &v, &u) < 0)
		return -1;
	switch (*u) {
	case 0: case 's': m = 1; break;
	case 'm': m = 60; break;
	case 'h': m = 3600; break;
	case 'd': m = 86400; break;
	case 'w': m = 7 * 86400; break;
	default: return -1;
	}
	if (*u && u[1])
		return -1;
	v *= m;
	if (v > 9.2e18)
		return -1;
	*out = (int64_t)v;
	return 0;
}
