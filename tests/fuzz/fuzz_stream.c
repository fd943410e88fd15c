/*
 * fuzz_stream.c - the sequence stream reader (cs_reader_open_file over an
 * fmemopen of the bytes, every record read and every value touched).
 *
 * The first byte picks the mode: even, the rest is the stream as it would
 * be on disk; odd, the rest is the decompressed payload (header, records,
 * trailer), compressed here with frame checksums so that the fuzzer
 * reaches the parser instead of stopping at zstd's checks. Whatever the
 * reader accepts is written back with cs_writer and read again: the copy
 * must hold the same records.
 */
#include <zstd.h>
#include "cs.h"
#include "fuzz.h"

/* A hash over every value of rec, so that each byte is read. */
static uint64_t touch(const cs_record *rec)
{
	uint64_t h = CS_HASH64_INIT;
	h = cs_hash64(&rec->nevents, sizeof rec->nevents, h);
	for (size_t i = 0; i < rec->ncols; i++) {
		const cs_column *c = &rec->col[i];
		if (c->type == CS_STRING) {
			for (size_t j = 0; j < c->n; j++) {
				size_t len;
				const char *s = cs_col_str(c, j, &len);
				h = cs_hash64(s, len, h);
			}
		} else if (c->n) {
			h = cs_hash64(c->v.p, c->n * (c->type == CS_INT64 ? 8 : 4), h);
		}
	}
	return h;
}

/* Read all of a stream; its records' hashes are chained into *h. Returns
 * the records read, or -1 if the reader refused the stream. */
static long read_all(FILE *fp, uint64_t *h, FILE *copy)
{
	cs_error err;
	cs_reader *r = cs_reader_open_file(fp, "fuzz", &err);
	if (!r)
		return -1;
	cs_record rec = { 0 };
	cs_writer *w = NULL;
	if (copy) {
		w = cs_writer_open_file(copy, "copy", cs_reader_schema(r), NULL, &err);
		FUZZ_ASSERT(w);
	}
	long n = 0;
	int rc;
	while ((rc = cs_reader_next(r, &rec, &err)) == 1) {
		FUZZ_ASSERT(rec.ncols == cs_reader_schema(r)->nfields);
		*h = cs_hash64(&(uint64_t){ touch(&rec) }, 8, *h);
		if (w)
			FUZZ_ASSERT(cs_writer_put(w, &rec, &err) == 0);
		n++;
	}
	FUZZ_ASSERT((uint64_t)n == cs_reader_records(r));
	if (w) {
		if (rc == 0)
			FUZZ_ASSERT(cs_writer_close(w, &err) == 0);
		else
			cs_writer_abort(w);
	}
	cs_record_free(&rec);
	cs_reader_close(r);
	return rc == 0 ? n : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const uint8_t *p = data + 1;
	size_t n = size - 1;
	void *z = NULL;
	if (data[0] & 1) {
		ZSTD_CCtx *cc = ZSTD_createCCtx();
		size_t cap = ZSTD_compressBound(n);
		FUZZ_ASSERT(cc && (z = malloc(cap)));
		ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, 1);
		ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
		size_t zn = ZSTD_compress2(cc, z, cap, p, n);
		FUZZ_ASSERT(!ZSTD_isError(zn));
		ZSTD_freeCCtx(cc);
		p = z;
		n = zn;
	}
	/* fmemopen refuses a zero size */
	FILE *fp = n ? fmemopen((void *)p, n, "rb") : fopen("/dev/null", "rb");
	FUZZ_ASSERT(fp);
	char *copy = NULL;
	size_t copylen = 0;
	FILE *cp = open_memstream(&copy, &copylen);
	FUZZ_ASSERT(cp);
	uint64_t h1 = 0, h2 = 0;
	long n1 = read_all(fp, &h1, cp);
	fclose(fp);
	fclose(cp);
	if (n1 >= 0) {
		/* the copy reads back the same */
		fp = fmemopen(copy, copylen, "rb");
		FUZZ_ASSERT(fp);
		long n2 = read_all(fp, &h2, NULL);
		fclose(fp);
		FUZZ_ASSERT(n2 == n1 && h1 == h2);
	}
	free(copy);
	free(z);
	return 0;
}
