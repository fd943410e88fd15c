/*
 * fuzz_vocab.c - the vocabulary file reader (cs_vocab_read_file over an
 * fmemopen of the bytes). A vocabulary it accepts must hold together:
 * every token looks up to its own id, and the file written back reads
 * again with the same fingerprints.
 *
 * A section's fingerprint hashes its tokens, so a changed token is refused
 * before the rest of the reader runs; a 'field' line whose fingerprint is
 * 'auto' gets the right one here, computed from the token lines after it.
 */
#include "cs.h"
#include "vocab.h"
#include "fuzz.h"

/* Every token of every section maps back to its id; returns a hash of all. */
static uint64_t check(const cs_vocab *v)
{
	uint64_t h = CS_HASH64_INIT;
	for (size_t f = 0; f < cs_vocab_nfields(v); f++) {
		const char *name = cs_vocab_field(v, f);
		FUZZ_ASSERT(name && cs_vocab_find(v, name) == (int)f);
		uint32_t n = cs_vocab_size(v, f);
		FUZZ_ASSERT(n >= CS_VOCAB_RESERVED);
		for (uint32_t id = 0; id < n; id++) {
			size_t len;
			const char *tok = cs_vocab_token(v, f, id, &len);
			FUZZ_ASSERT(tok);
			h = cs_hash64(tok, len, h);
			uint32_t got = cs_vocab_lookup(v, f, tok, len);
			FUZZ_ASSERT(id < CS_VOCAB_RESERVED ? got == CS_VOCAB_UNK : got == id);
			(void)cs_vocab_count(v, f, id);
		}
		FUZZ_ASSERT(!cs_vocab_token(v, f, n, &(size_t){ 0 }));
		uint64_t fp = cs_vocab_fingerprint(v, f);
		h = cs_hash64(&fp, 8, h);
	}
	return h;
}

/* Split [p, e) at tabs into at most max columns; returns the count. */
static size_t tabs(const char *p, const char *e, const char **col, size_t *len, size_t max)
{
	size_t n = 0;
	for (;;) {
		const char *t = memchr(p, '\t', (size_t)(e - p));
		if (n < max) {
			col[n] = p;
			len[n] = (size_t)((t ? t : e) - p);
		}
		n++;
		if (!t)
			return n;
		p = t + 1;
	}
}

/* A copy of data with every 'auto' fingerprint filled in (malloc'd); its
 * length in *n. */
static char *fill_fingerprints(const uint8_t *data, size_t size, size_t *n_out)
{
	char *text = malloc(size + 1);
	FUZZ_ASSERT(text);
	memcpy(text, data, size);
	text[size] = 0;
	char *end = text + size;
	for (char *l = text; l < end;) {
		char *le = memchr(l, '\n', (size_t)(end - l));
		le = le ? le : end;
		const char *col[4];
		size_t len[4];
		if (tabs(l, le, col, len, 4) == 4 && len[0] == 5 && !memcmp(l, "field", 5) &&
		    len[3] == 4 && !memcmp(col[3], "auto", 4) && len[1] < 256) {
			/* the tokens: column 2 of the lines up to the next 'field' line */
			const char *tok[4096];
			size_t tl[4096], n = 0;
			char name[256];
			memcpy(name, col[1], len[1]);
			name[len[1]] = 0;
			for (char *t = le + (le < end); t < end && n < 4096;) {
				char *te = memchr(t, '\n', (size_t)(end - t));
				te = te ? te : end;
				const char *c[4];
				size_t cl[4];
				size_t k = tabs(t, te, c, cl, 4);
				if (k >= 1 && cl[0] == 5 && !memcmp(t, "field", 5))
					break;
				if (*t != '#' && k == 3) {
					tok[n] = c[1];
					tl[n++] = cl[1];
				}
				t = te + (te < end);
			}
			char hex[17];
			cs_vocab_fpstr(cs_vocab_hash(name, tok, tl, n), hex);
			/* 'auto' is 4 bytes, the fingerprint 16: room made by shifting */
			size_t at = (size_t)(col[3] - text), tail = (size_t)(end - (col[3] + 4));
			char *b = realloc(text, (size_t)(end - text) + 12 + 1);
			FUZZ_ASSERT(b);
			text = b;
			memmove(text + at + 16, text + at + 4, tail + 1);
			memcpy(text + at, hex, 16);
			end = text + at + 16 + tail;
			le = text + at + 16;
			l = le;
		}
		l = le + (le < end);
	}
	*n_out = (size_t)(end - text);
	return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fill_fingerprints(data, size, &size);
	FILE *fp = size ? fmemopen(text, size, "rb") : fopen("/dev/null", "rb");
	FUZZ_ASSERT(fp);
	cs_error err;
	cs_vocab *v = cs_vocab_read_file(fp, "fuzz", &err);
	fclose(fp);
	if (!v) {
		FUZZ_ASSERT(err.code != CS_OK && err.msg[0]);
		free(text);
		return 0;
	}
	uint64_t h = check(v);
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	FUZZ_ASSERT(out);
	FUZZ_ASSERT(cs_vocab_write_file(v, out, "copy", &err) == 0);
	fclose(out);
	fp = fmemopen(buf, len, "rb");
	FUZZ_ASSERT(fp);
	cs_vocab *w = cs_vocab_read_file(fp, "copy", &err);
	fclose(fp);
	FUZZ_ASSERT(w && cs_vocab_nfields(w) == cs_vocab_nfields(v));
	FUZZ_ASSERT(check(w) == h);
	cs_vocab_free(w);
	cs_vocab_free(v);
	free(buf);
	free(text);
	return 0;
}
