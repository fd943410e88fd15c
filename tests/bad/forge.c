/*
 * forge - make damaged cs files for tests/t-bad-input.sh: model files
 * edited with a valid checksum (so that the checks behind the checksum are
 * reached), vocabularies with their fingerprints recomputed, and bytes
 * poked into any file. Formats in cs-formats(5) and cs-vocab(1).
 *
 *   forge model IN OUT EDIT...   copy a model file, edited:
 *       KEY=VALUE      set a metadata key (added when absent)
 *       -KEY           drop a metadata key
 *       t:NAME=N       resize tensor NAME to N values (zero-filled; added
 *                      when absent)
 *       t:-NAME        drop a tensor
 *       t:NAME[I]=F    set value I of a tensor (strtof: nan, inf)
 *       t:+NAME        write tensor NAME twice
 *       %version=N     the format version
 *       %ntensors=N    the tensor count written (not the tensors)
 *       %nosum         leave the checksum wrong
 *   forge vocab IN OUT           recompute each field's fingerprint
 *   forge put FILE OFF TYPE VAL  write u8/u16/u32/u64 VAL (little-endian)
 *                                at OFF (negative: from the end)
 *   forge get FILE OFF TYPE      print the value there
 *   forge sum FILE               rewrite a model file's checksum
 *
 * Standalone (no libcs), so that it builds with a bare cc.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *fmt, const char *s)
{
	fprintf(stderr, "forge: ");
	fprintf(stderr, fmt, s);
	fputc('\n', stderr);
	exit(1);
}

static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
	const unsigned char *s = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 0x100000001b3ULL;
	return h;
}
#define FNV_INIT 0xcbf29ce484222325ULL

/* XXH64 with seed 0, written from xxHash's specification apart from
 * lib/util.c's (tests/check_stream.c holds the library's to its published
 * values). */
static uint64_t rotl(uint64_t x, int r) { return x << r | x >> (64 - r); }
static uint64_t ld(const unsigned char *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}
static const uint64_t P1 = 0x9E3779B185EBCA87ULL, P2 = 0xC2B2AE3D27D4EB4FULL,
	P3 = 0x165667B19E3779F9ULL, P4 = 0x85EBCA77C2B2AE63ULL, P5 = 0x27D4EB2F165667C5ULL;
static uint64_t xr(uint64_t a, uint64_t in) { return rotl(a + in * P2, 31) * P1; }
static uint64_t xxh64(const unsigned char *p, size_t n)
{
	size_t i = 0;
	uint64_t h;
	if (n >= 32) {
		uint64_t v[4] = { P1 + P2, P2, 0, -P1 };
		for (; i + 32 <= n; i += 32)
			for (int k = 0; k < 4; k++)
				v[k] = xr(v[k], ld(p + i + 8 * k, 8));
		h = rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18);
		for (int k = 0; k < 4; k++)
			h = (h ^ xr(0, v[k])) * P1 + P4;
	} else {
		h = P5;
	}
	h += n;
	for (; i + 8 <= n; i += 8)
		h = rotl(h ^ xr(0, ld(p + i, 8)), 27) * P1 + P4;
	if (i + 4 <= n) {
		h = rotl(h ^ ld(p + i, 4) * P1, 23) * P2 + P3;
		i += 4;
	}
	for (; i < n; i++)
		h = rotl(h ^ p[i] * P5, 11) * P1;
	h = (h ^ h >> 33) * P2;
	h = (h ^ h >> 29) * P3;
	return h ^ h >> 32;
}

/* The checksum of a model file of this version over p[0, n): cs-formats(5). */
static uint64_t modelsum(uint32_t version, const unsigned char *p, size_t n)
{
	return version >= 2 ? xxh64(p, n) : fnv(p, n, FNV_INIT);
}

static unsigned char *slurp(const char *path, size_t *n)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		die("cannot open '%s'", path);
	size_t cap = 1 << 16, len = 0, k;
	unsigned char *b = malloc(cap);
	while (b && (k = fread(b + len, 1, cap - len, fp)) > 0)
		if ((len += k) == cap && !(b = realloc(b, cap *= 2)))
			break;
	if (!b)
		die("out of memory reading '%s'", path);
	fclose(fp);
	*n = len;
	return b;
}

static void spill(const char *path, const void *p, size_t n)
{
	FILE *fp = fopen(path, "wb");
	if (!fp || fwrite(p, 1, n, fp) != n || fclose(fp) != 0)
		die("cannot write '%s'", path);
}

/* ---------------------------------------------------------------- models */

typedef struct { char *k, *v; } meta;
typedef struct { char *name; float *d; uint64_t n; int twice; } tensor;
static meta M[4096];
static tensor TS[4096];
static size_t nm, nt;

static uint64_t rd(const unsigned char **p, const unsigned char *end, int w)
{
	uint64_t v = 0;
	if (end - *p < w)
		die("%s", "model file too short to edit");
	memcpy(&v, *p, (size_t)w);
	*p += w;
	return v;
}

static char *rdstr(const unsigned char **p, const unsigned char *end, uint64_t n)
{
	if ((uint64_t)(end - *p) < n)
		die("%s", "model file too short to edit");
	char *s = malloc(n + 1);
	memcpy(s, *p, n);
	s[n] = 0;
	*p += n;
	return s;
}

static tensor *tfind(const char *name)
{
	for (size_t i = 0; i < nt; i++)
		if (!strcmp(TS[i].name, name))
			return &TS[i];
	return NULL;
}

/* Output into memory, checksummed and written at the end. */
static unsigned char *obuf;
static size_t olen, ocap;
static void w(const void *p, size_t n)
{
	while (olen + n > ocap)
		if (!(obuf = realloc(obuf, ocap = ocap ? 2 * ocap : 1 << 16)))
			die("%s", "out of memory");
	memcpy(obuf + olen, p, n);
	olen += n;
}
static void w16(uint16_t v) { w(&v, 2); }
static void w32(uint32_t v) { w(&v, 4); }
static void w64(uint64_t v) { w(&v, 8); }

static int model(int argc, char **argv)
{
	size_t size;
	unsigned char *b = slurp(argv[0], &size);
	const unsigned char *p = b + 8, *end = b + size - 8;
	uint32_t version;
	if (size < 24 || memcmp(b, "CSMF", 4))
		die("'%s' is not a model file", argv[0]);
	memcpy(&version, b + 4, 4);
	nm = rd(&p, end, 4);
	if (nm > 4096)
		die("%s", "too many metadata entries");
	for (size_t i = 0; i < nm; i++) {
		M[i].k = rdstr(&p, end, rd(&p, end, 2));
		M[i].v = rdstr(&p, end, rd(&p, end, 4));
	}
	nt = rd(&p, end, 4);
	if (nt > 4096)
		die("%s", "too many tensors");
	for (size_t i = 0; i < nt; i++) {
		TS[i].name = rdstr(&p, end, rd(&p, end, 2));
		TS[i].n = rd(&p, end, 8);
		TS[i].d = (float *)(void *)rdstr(&p, end, TS[i].n * 4);
	}
	long long ntensors = -1;
	int nosum = 0;
	for (int a = 2; a < argc; a++) {
		char *e = argv[a], *eq = strchr(e, '=');
		if (!strcmp(e, "%nosum")) {
			nosum = 1;
		} else if (!strncmp(e, "%version=", 9)) {
			version = (uint32_t)strtoul(e + 9, NULL, 10);
		} else if (!strncmp(e, "%ntensors=", 10)) {
			ntensors = strtoll(e + 10, NULL, 10);
		} else if (!strncmp(e, "t:-", 3)) {
			tensor *t = tfind(e + 3);
			if (!t)
				die("no tensor '%s'", e + 3);
			*t = TS[--nt];
		} else if (!strncmp(e, "t:+", 3)) {
			tensor *t = tfind(e + 3);
			if (!t)
				die("no tensor '%s'", e + 3);
			t->twice = 1;
		} else if (!strncmp(e, "t:", 2) && eq) {
			char *br = strchr(e, '[');
			*eq = 0;
			if (br) {
				*br = 0;
				tensor *t = tfind(e + 2);
				uint64_t i = strtoull(br + 1, NULL, 10);
				if (!t || i >= t->n)
					die("no such tensor value '%s'", e + 2);
				t->d[i] = strtof(eq + 1, NULL);
				continue;
			}
			tensor *t = tfind(e + 2);
			if (!t) {
				t = &TS[nt++];
				t->name = strdup(e + 2);
				t->n = 0;
				t->d = NULL;
			}
			uint64_t n = strtoull(eq + 1, NULL, 10);
			float *d = calloc(n ? n : 1, sizeof *d);
			if (!d)
				die("%s", "out of memory");
			memcpy(d, t->d, (n < t->n ? n : t->n) * sizeof *d);
			free(t->d);
			t->d = d;
			t->n = n;
		} else if (e[0] == '-') {
			size_t i = 0;
			while (i < nm && strcmp(M[i].k, e + 1))
				i++;
			if (i == nm)
				die("no metadata key '%s'", e + 1);
			M[i] = M[--nm];
		} else if (eq) {
			*eq = 0;
			size_t i = 0;
			while (i < nm && strcmp(M[i].k, e))
				i++;
			if (i == nm)
				M[nm++].k = strdup(e);
			M[i].v = strdup(eq + 1);
		} else {
			die("bad edit '%s'", e);
		}
	}
	olen = 0;
	w("CSMF", 4);
	w32(version);
	w32((uint32_t)nm);
	for (size_t i = 0; i < nm; i++) {
		w16((uint16_t)strlen(M[i].k));
		w(M[i].k, strlen(M[i].k));
		w32((uint32_t)strlen(M[i].v));
		w(M[i].v, strlen(M[i].v));
	}
	size_t nw = 0;
	for (size_t i = 0; i < nt; i++)
		nw += 1 + TS[i].twice;
	w32(ntensors >= 0 ? (uint32_t)ntensors : (uint32_t)nw);
	for (size_t i = 0; i < nt; i++)
		for (int k = 0; k <= TS[i].twice; k++) {
			w16((uint16_t)strlen(TS[i].name));
			w(TS[i].name, strlen(TS[i].name));
			w64(TS[i].n);
			w(TS[i].d, TS[i].n * sizeof(float));
		}
	w64(modelsum(version, obuf, olen) ^ (uint64_t)nosum);
	spill(argv[1], obuf, olen);
	free(b);
	return 0;
}

/* ---------------------------------------------------------- vocabularies */

/* The fingerprint of a field: FNV-1a of its name and NUL, then per id the
 * token's length (u32 LE) and bytes; 0 becomes 1. */
static int vocab(char **argv)
{
	size_t size;
	char *b = (char *)slurp(argv[0], &size);
	b = realloc(b, size + 1);
	b[size] = 0;
	/* two passes over the lines: hash each section, then write */
	size_t nsec = 0;
	uint64_t h[256];
	for (int pass = 0; pass < 2; pass++) {
		FILE *fp = pass ? fopen(argv[1], "wb") : NULL;
		if (pass && !fp)
			die("cannot write '%s'", argv[1]);
		long sec = -1;
		for (char *l = b; *l;) {
			char *nl = strchr(l, '\n');
			size_t len = nl ? (size_t)(nl - l) : strlen(l);
			if (!strncmp(l, "field\t", 6)) {
				char *t1 = l + 6, *t2 = memchr(t1, '\t', len - 6);
				sec++;
				if (sec >= 256 || !t2)
					die("%s", "bad field line");
				if (!pass) {
					h[sec] = fnv(t1, (size_t)(t2 - t1), FNV_INIT);
					h[sec] = fnv("", 1, h[sec]);
					nsec++;
				} else {
					char *t3 = memchr(t2 + 1, '\t', len - (size_t)(t2 + 1 - l));
					if (!t3)
						die("%s", "bad field line");
					uint64_t v = h[sec] ? h[sec] : 1;
					fprintf(fp, "%.*s\t%016llx\n", (int)(t3 - l), l,
						(unsigned long long)v);
					l = nl ? nl + 1 : l + len;
					continue;
				}
			} else if (!pass && sec >= 0 && l[0] != '#' && len) {
				char *t1 = memchr(l, '\t', len), *t2;
				if (t1 && (t2 = memchr(t1 + 1, '\t', len - (size_t)(t1 + 1 - l)))) {
					uint32_t n = (uint32_t)(t2 - t1 - 1);
					unsigned char le[4] = { n, n >> 8, n >> 16, n >> 24 };
					h[sec] = fnv(le, 4, h[sec]);
					h[sec] = fnv(t1 + 1, n, h[sec]);
				}
			}
			if (pass)
				fwrite(l, 1, len + (nl != NULL), fp);
			l = nl ? nl + 1 : l + len;
		}
		if (pass && fclose(fp) != 0)
			die("cannot write '%s'", argv[1]);
	}
	(void)nsec;
	free(b);
	return 0;
}

/* ------------------------------------------------------------------ bytes */

static int width(const char *t)
{
	int n = !strcmp(t, "u8") ? 1 : !strcmp(t, "u16") ? 2 : !strcmp(t, "u32") ? 4 :
		!strcmp(t, "u64") ? 8 : 0;
	if (!n)
		die("bad type '%s'", t);
	return n;
}

static int poke(char **argv, int get)
{
	size_t size;
	unsigned char *b = slurp(argv[0], &size);
	long long off = strtoll(argv[1], NULL, 10);
	int n = width(argv[2]);
	if (off < 0)
		off += (long long)size;
	if (off < 0 || (size_t)off + (size_t)n > size)
		die("offset %s beyond the file", argv[1]);
	uint64_t v = 0;
	if (get) {
		memcpy(&v, b + off, (size_t)n);
		printf("%llu\n", (unsigned long long)v);
	} else {
		v = strtoull(argv[3], NULL, 0);
		memcpy(b + off, &v, (size_t)n);
		spill(argv[0], b, size);
	}
	free(b);
	return 0;
}

static int sum(char **argv)
{
	size_t size;
	unsigned char *b = slurp(argv[0], &size);
	if (size < 8)
		die("'%s' is too short", argv[0]);
	uint32_t version = size >= 8 ? (uint32_t)ld(b + 4, 4) : 0;
	uint64_t s = modelsum(version, b, size - 8);
	memcpy(b + size - 8, &s, 8);
	spill(argv[0], b, size);
	free(b);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "model"))
		return model(argc - 2, argv + 2);
	if (argc == 4 && !strcmp(argv[1], "vocab"))
		return vocab(argv + 2);
	if (argc == 6 && !strcmp(argv[1], "put"))
		return poke(argv + 2, 0);
	if (argc == 5 && !strcmp(argv[1], "get"))
		return poke(argv + 2, 1);
	if (argc == 3 && !strcmp(argv[1], "sum"))
		return sum(argv + 2);
	fprintf(stderr, "usage: forge model|vocab|put|get|sum ... (see forge.c)\n");
	return 2;
}
