/*
 * fuzz_text.c - the text reader of cs-cat -r (cs_text_reader over an
 * fmemopen of the bytes). What it accepts must hold together: written
 * back as text (cs_text_writer, metadata included) it reads again into
 * the same sequences, and that text written once more is the same bytes.
 */
#include "cs.h"
#include "text.h"
#include "fuzz.h"

/* Read every sequence of the text in [p, p + n) and write it back as text
 * into *out (malloc'd, *olen bytes); returns the sequences, -1 if refused. */
static long roundtrip(const char *p, size_t n, char **out, size_t *olen)
{
	cs_error err;
	cs_record rec = { 0 };
	FILE *in = fmemopen((void *)p, n, "r");
	FUZZ_ASSERT(in);
	cs_text_reader *r = cs_text_reader_open(in, "fuzz", &err);
	long got = -1, k;
	*out = NULL;
	*olen = 0;
	if (!r) {
		FUZZ_ASSERT(err.code != CS_OK && err.msg[0]);
		fclose(in);
		return -1;
	}
	FILE *o = open_memstream(out, olen);
	FUZZ_ASSERT(o);
	cs_text_writer *w = cs_text_writer_new(o, "out", cs_text_reader_schema(r), CS_TEXT_META,
					       &err);
	FUZZ_ASSERT(w);
	long seqs = 0;
	while ((k = cs_text_reader_next(r, &rec, &err)) == 1) {
		FUZZ_ASSERT(cs_text_writer_put(w, &rec, &err) == 0);
		seqs++;
	}
	if (k == 0) {
		FUZZ_ASSERT(cs_text_writer_close(w, &err) == 0);
		got = seqs;
	} else {
		FUZZ_ASSERT(err.code != CS_OK && err.msg[0]);
		cs_text_writer_free(w);
	}
	fclose(o);
	cs_record_free(&rec);
	cs_text_reader_close(r);
	fclose(in);
	return got;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *t1, *t2;
	size_t n1, n2;
	long s0 = roundtrip((const char *)data, size, &t1, &n1);
	if (s0 >= 0) {
		long s1 = roundtrip(t1, n1, &t2, &n2);
		FUZZ_ASSERT(s1 == s0);
		FUZZ_ASSERT(n2 == n1 && !memcmp(t1, t2, n1));
		free(t2);
	}
	free(t1);
	return 0;
}
