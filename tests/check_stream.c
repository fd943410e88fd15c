/* check_stream.c - unit tests of schemas, records and the sequence stream. */
#include <check.h>
#include "check_run.h"
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>
#include "cs.h"

/* A schema with every type at both levels. */
static cs_schema *test_schema(void)
{
	cs_schema *s = cs_schema_new();
	ck_assert_int_eq(cs_schema_add(s, "user", CS_SEQ, CS_STRING, NULL), 0);
	ck_assert_int_eq(cs_schema_add(s, "label", CS_SEQ, CS_INT64, NULL), 1);
	ck_assert_int_eq(cs_schema_add(s, "item", CS_EVENT, CS_ID, NULL), 2);
	ck_assert_int_eq(cs_schema_add(s, "action", CS_EVENT, CS_STRING, NULL), 3);
	ck_assert_int_eq(cs_schema_add(s, "time", CS_EVENT, CS_INT64, NULL), 4);
	ck_assert_int_eq(cs_schema_add(s, "price", CS_EVENT, CS_FLOAT32, NULL), 5);
	s->f[2].vocab = 0x0123456789abcdefULL;
	ck_assert_int_eq(cs_schema_set_meta(s, "source", "test", NULL), 0);
	return s;
}

/* Record i of the test data: i % 7 events, so some records are empty. */
static void fill(cs_record *rec, const cs_schema *s, int i)
{
	char buf[64];
	ck_assert_int_eq(cs_record_init(rec, s, NULL), 0);
	snprintf(buf, sizeof buf, "user-%d", i);
	cs_col_push_str(&rec->col[0], buf, strlen(buf));
	cs_col_push_i64(&rec->col[1], (int64_t)i * -1000000007LL);
	rec->nevents = (size_t)(i % 7);
	for (size_t j = 0; j < rec->nevents; j++) {
		cs_col_push_u32(&rec->col[2], (uint32_t)(i * 31 + j));
		const char *a = j % 3 ? "view" : (j % 2 ? "" : "purchase");
		cs_col_push_str(&rec->col[3], a, strlen(a));
		cs_col_push_i64(&rec->col[4], 1570000000LL + i * 60 + (int64_t)j);
		cs_col_push_f32(&rec->col[5], (float)i / 3.0f + (float)j);
	}
}

/* Where a and b differ, or NULL: plain C, so that a check of 400,000
 * records costs one assertion each, not one per value. */
static const char *record_diff(const cs_record *a, const cs_record *b)
{
	if (a->nevents != b->nevents)
		return "event count";
	if (a->ncols != b->ncols)
		return "column count";
	for (size_t i = 0; i < a->ncols; i++) {
		const cs_column *x = &a->col[i], *y = &b->col[i];
		if (x->type != y->type || x->n != y->n)
			return "column type or length";
		if (x->type == CS_STRING) {
			if (memcmp(x->off, y->off, (x->n + 1) * 4) != 0 ||
			    (x->n && memcmp(x->str, y->str, x->off[x->n]) != 0))
				return "string values";
		} else {
			size_t sz = x->type == CS_INT64 ? 8 : 4;
			if (x->n && memcmp(x->v.p, y->v.p, x->n * sz) != 0)
				return "values";
		}
	}
	return NULL;
}

static void expect_equal(const cs_record *a, const cs_record *b)
{
	const char *d = record_diff(a, b);
	ck_assert_msg(d == NULL, "records differ: %s", d ? d : "");
}

/* Write n test records into a memory buffer with the given zstd level and
 * threads; returns its size. */
static size_t write_mem_threads(char **out, int n, int level, int threads)
{
	size_t size;
	FILE *fp = open_memstream(out, &size);
	cs_schema *s = test_schema();
	cs_writer_opts o = { level, threads };
	cs_error err;
	cs_writer *w = cs_writer_open_file(fp, "mem", s, &o, &err);
	ck_assert_ptr_nonnull(w);
	cs_record rec = { 0 };
	for (int i = 0; i < n; i++) {
		fill(&rec, s, i);
		ck_assert_int_eq(cs_writer_put(w, &rec, &err), 0);
	}
	ck_assert_int_eq(cs_writer_close(w, &err), 0);
	fclose(fp);
	cs_record_free(&rec);
	cs_schema_free(s);
	return size;
}

static size_t write_mem(char **out, int n, int level)
{
	return write_mem_threads(out, n, level, 0);
}

/* The zstd frames of buf, decompressed one after another. */
static char *frames_payload(const char *buf, size_t size, size_t *len, int *nframes)
{
	size_t cap = 1 << 20, n = 0;
	char *out = malloc(cap);
	*nframes = 0;
	while (size) {
		size_t fs = ZSTD_findFrameCompressedSize(buf, size);
		ck_assert(!ZSTD_isError(fs));
		unsigned long long ds = ZSTD_getFrameContentSize(buf, fs);
		ck_assert(ds != ZSTD_CONTENTSIZE_ERROR);
		if (ds == ZSTD_CONTENTSIZE_UNKNOWN)
			ds = 16u << 20;
		while (n + ds > cap)
			out = realloc(out, cap *= 2);
		size_t got = ZSTD_decompress(out + n, (size_t)ds, buf, fs);
		ck_assert(!ZSTD_isError(got));
		n += got;
		buf += fs;
		size -= fs;
		(*nframes)++;
	}
	*len = n;
	return out;
}

/* Read a whole stream from memory; returns records read or -1 on error. */
static long read_mem(const char *buf, size_t size, int verify, cs_error *err)
{
	FILE *fp = fmemopen((void *)buf, size, "rb");
	if (size == 0)
		fp = fopen("/dev/null", "rb");
	ck_assert_ptr_nonnull(fp);
	cs_reader *r = cs_reader_open_file(fp, "mem", err);
	long n = 0;
	if (!r) {
		fclose(fp);
		return -1;
	}
	cs_record rec = { 0 }, want = { 0 };
	int rc;
	while ((rc = cs_reader_next(r, &rec, err)) == 1) {
		if (verify) {
			fill(&want, cs_reader_schema(r), (int)n);
			expect_equal(&rec, &want);
		}
		n++;
	}
	cs_record_free(&rec);
	cs_record_free(&want);
	cs_reader_close(r);
	fclose(fp);
	return rc < 0 ? -1 : n;
}

START_TEST(test_round_trip)
{
	char *buf;
	size_t size = write_mem(&buf, 500, 0);
	cs_error err;
	ck_assert_int_eq(read_mem(buf, size, 1, &err), 500);

	FILE *fp = fmemopen(buf, size, "rb");
	cs_reader *r = cs_reader_open_file(fp, "mem", &err);
	const cs_schema *s = cs_reader_schema(r);
	ck_assert_uint_eq(s->nfields, 6);
	ck_assert_str_eq(s->f[3].name, "action");
	ck_assert_int_eq(s->f[5].type, CS_FLOAT32);
	ck_assert_int_eq(s->f[5].level, CS_EVENT);
	ck_assert(s->f[2].vocab == 0x0123456789abcdefULL);
	ck_assert_str_eq(cs_schema_get_meta(s, "source"), "test");
	cs_record rec = { 0 };
	while (cs_reader_next(r, &rec, &err) == 1)
		;
	ck_assert_uint_eq(cs_reader_records(r), 500);
	cs_record_free(&rec);
	cs_reader_close(r);
	fclose(fp);
	free(buf);
}
END_TEST

/* Enough data for several zstd frames, at the fastest level. */
START_TEST(test_many_frames)
{
	char *buf;
	size_t size = write_mem(&buf, 400000, 1);
	cs_error err;
	ck_assert_int_eq(read_mem(buf, size, 1, &err), 400000);
	free(buf);
}
END_TEST

/* Frames compressed in parallel: the same payload, in order, readable. */
START_TEST(test_threaded_writer)
{
	char *one;
	size_t size1 = write_mem(&one, 400000, 1), len1;
	int f1;
	char *p1 = frames_payload(one, size1, &len1, &f1);
	for (int t = 2; t <= 3; t++) {
		char *buf;
		size_t size = write_mem_threads(&buf, 400000, 1, t), len;
		int f;
		cs_error err;
		ck_assert_int_eq(read_mem(buf, size, 1, &err), 400000);
		char *p = frames_payload(buf, size, &len, &f);
		ck_assert_uint_eq(len, len1);
		ck_assert(memcmp(p, p1, len) == 0);
		ck_assert_int_ge(f, 3);
		free(p);
		free(buf);
	}
	free(p1);
	free(one);
}
END_TEST

START_TEST(test_truncated_everywhere)
{
	char *buf;
	size_t size = write_mem(&buf, 40, 0);
	cs_error err;
	for (size_t n = 0; n < size; n++) {
		memset(&err, 0, sizeof err);
		ck_assert_msg(read_mem(buf, n, 0, &err) == -1, "prefix %zu of %zu accepted", n, size);
		ck_assert_int_eq(err.code, CS_ERR_FORMAT);
	}
	free(buf);
}
END_TEST

START_TEST(test_flipped_bytes)
{
	char *buf;
	size_t size = write_mem(&buf, 40, 0);
	cs_error err;
	size_t rejected = 0;
	for (size_t i = 0; i < size; i++) {
		for (int bit = 0; bit < 8; bit += 3) {
			buf[i] ^= (char)(1 << bit);
			/* Rejected, or (a flip in bits zstd ignores) read intact. */
			long n = read_mem(buf, size, 1, &err);
			ck_assert_msg(n == -1 || n == 40,
				      "flip of bit %d at byte %zu of %zu gave %ld records", bit, i, size, n);
			rejected += n == -1;
			buf[i] ^= (char)(1 << bit);
		}
	}
	/* Nearly every flip changes the data; those must all be caught. */
	ck_assert_msg(rejected > size * 3 * 95 / 100, "only %zu of %zu flips rejected",
		      rejected, size * 3);
	ck_assert_int_eq(read_mem(buf, size, 1, &err), 40);
	free(buf);
}
END_TEST

/* Compress raw bytes as one frame. */
static size_t raw_stream(char *dst, size_t cap, const void *src, size_t n)
{
	size_t z = ZSTD_compress(dst, cap, src, n, 1);
	ck_assert(!ZSTD_isError(z));
	return z;
}

START_TEST(test_newer_version)
{
	unsigned char raw[64] = "CSSQ";
	uint32_t v = CS_STREAM_VERSION + 1, zero = 0;
	memcpy(raw + 4, &v, 4);
	memcpy(raw + 8, &zero, 4);
	char z[256];
	size_t n = raw_stream(z, sizeof z, raw, 12);
	cs_error err;
	ck_assert_int_eq(read_mem(z, n, 0, &err), -1);
	ck_assert_int_eq(err.code, CS_ERR_VERSION);
	ck_assert_ptr_nonnull(strstr(err.msg, "newer"));
	ck_assert_ptr_nonnull(strstr(err.msg, "upgrade"));
}
END_TEST

START_TEST(test_bad_magic_and_not_zstd)
{
	char z[256];
	size_t n = raw_stream(z, sizeof z, "CSXX\1\0\0\0\0\0\0\0", 12);
	cs_error err;
	ck_assert_int_eq(read_mem(z, n, 0, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "bad magic"));
	const char *text = "user,item\n1,2\n";
	ck_assert_int_eq(read_mem(text, strlen(text), 0, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "not zstd"));
	ck_assert_int_eq(read_mem("", 0, 0, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "empty input"));
}
END_TEST

START_TEST(test_data_after_end)
{
	char *buf;
	size_t size = write_mem(&buf, 5, 0);
	char *two = malloc(2 * size);
	memcpy(two, buf, size);
	memcpy(two + size, buf, size);
	cs_error err;
	ck_assert_int_eq(read_mem(two, 2 * size, 0, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "after the end"));
	free(two);
	free(buf);
}
END_TEST

/* A hand-made record whose string lengths overrun the payload. */
START_TEST(test_lying_lengths)
{
	unsigned char raw[128];
	size_t k = 0;
	memcpy(raw, "CSSQ", 4); k = 4;
	uint32_t u;
	u = 1; memcpy(raw + k, &u, 4); k += 4;
	/* schema: 1 field "s" event string, no metadata */
	uint32_t slen = 4 + 1 + 1 + 2 + 1 + 8 + 4;
	memcpy(raw + k, &slen, 4); k += 4;
	u = 1; memcpy(raw + k, &u, 4); k += 4;
	raw[k++] = CS_EVENT; raw[k++] = CS_STRING;
	uint16_t nl = 1; memcpy(raw + k, &nl, 2); k += 2;
	raw[k++] = 's';
	memset(raw + k, 0, 8); k += 8;
	u = 0; memcpy(raw + k, &u, 4); k += 4;
	raw[k++] = 'R';
	u = 4 + 4 + 3; memcpy(raw + k, &u, 4); k += 4; /* payload length */
	u = 1; memcpy(raw + k, &u, 4); k += 4;          /* one event */
	u = 0xfffffff0u; memcpy(raw + k, &u, 4); k += 4; /* string length: a lie */
	memcpy(raw + k, "abc", 3); k += 3;
	char z[256];
	size_t n = raw_stream(z, sizeof z, raw, k);
	cs_error err;
	ck_assert_int_eq(read_mem(z, n, 0, &err), -1);
	ck_assert_int_eq(err.code, CS_ERR_FORMAT);
	ck_assert_int_eq(err.record, 1);
}
END_TEST

START_TEST(test_writer_checks_records)
{
	cs_schema *s = test_schema();
	char tmpl[] = "/tmp/cs-check-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	char path[256];
	snprintf(path, sizeof path, "%s/out.cseq", tmpl);
	cs_error err;
	cs_writer *w = cs_writer_open(path, s, NULL, &err);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(access(path, F_OK), -1); /* not there until closed */
	cs_record rec = { 0 };
	fill(&rec, s, 3);
	rec.nevents = 5; /* columns hold 3 */
	ck_assert_int_eq(cs_writer_put(w, &rec, &err), -1);
	ck_assert_int_eq(err.code, CS_ERR_USAGE);
	cs_writer_abort(w);
	ck_assert_int_eq(access(path, F_OK), -1);

	w = cs_writer_open(path, s, NULL, &err);
	fill(&rec, s, 3);
	ck_assert_int_eq(cs_writer_put(w, &rec, &err), 0);
	ck_assert_int_eq(cs_writer_close(w, &err), 0);
	ck_assert_int_eq(access(path, F_OK), 0);
	cs_reader *r = cs_reader_open(path, &err);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(cs_reader_next(r, &rec, &err), 1);
	ck_assert_int_eq(cs_reader_next(r, &rec, &err), 0);
	cs_reader_close(r);
	unlink(path);
	rmdir(tmpl);

	/* A device is written in place, never replaced by a regular file. */
	w = cs_writer_open("/dev/null", s, NULL, &err);
	ck_assert_ptr_nonnull(w);
	fill(&rec, s, 4);
	ck_assert_int_eq(cs_writer_put(w, &rec, &err), 0);
	ck_assert_int_eq(cs_writer_close(w, &err), 0);
	struct stat st;
	ck_assert_int_eq(stat("/dev/null", &st), 0);
	ck_assert(S_ISCHR(st.st_mode));

	ck_assert_ptr_null(cs_writer_open("/nonexistent/dir/x.cseq", s, NULL, &err));
	ck_assert_int_eq(err.code, CS_ERR_IO);
	ck_assert_str_eq(err.path, "/nonexistent/dir/x.cseq");
	cs_record_free(&rec);
	cs_schema_free(s);
}
END_TEST

START_TEST(test_schema_rules)
{
	cs_schema *s = cs_schema_new();
	cs_error err;
	ck_assert_int_eq(cs_schema_add(s, "item", CS_EVENT, CS_ID, &err), 0);
	ck_assert_int_eq(cs_schema_add(s, "item", CS_SEQ, CS_ID, &err), -1);
	ck_assert_int_eq(cs_schema_add(s, "", CS_SEQ, CS_ID, &err), -1);
	ck_assert_int_eq(cs_schema_add(s, "a b", CS_SEQ, CS_ID, &err), -1);
	ck_assert_int_eq(cs_schema_add(s, "x", 7, CS_ID, &err), -1);
	ck_assert_int_eq(cs_schema_add(s, "time", CS_EVENT, CS_INT64, &err), 1);
	ck_assert_int_eq(cs_schema_find(s, "time"), 1);
	cs_schema_remove(s, 0);
	ck_assert_int_eq(cs_schema_find(s, "time"), 0);
	ck_assert_int_eq(cs_schema_find(s, "item"), -1);
	ck_assert_int_eq(cs_schema_set_meta(s, "k", "v1", &err), 0);
	ck_assert_int_eq(cs_schema_set_meta(s, "k", "v2", &err), 0);
	ck_assert_uint_eq(s->nmeta, 1);
	ck_assert_str_eq(cs_schema_get_meta(s, "k"), "v2");
	ck_assert_int_eq(cs_type_parse("float32"), CS_FLOAT32);
	ck_assert_int_eq(cs_type_parse("float"), -1);
	ck_assert_int_eq(cs_level_parse("event"), CS_EVENT);
	cs_schema_free(s);
	cs_schema_free(NULL);
}
END_TEST

START_TEST(test_parse_units)
{
	uint64_t b;
	int64_t d;
	ck_assert_int_eq(cs_parse_bytes("2G", &b), 0);
	ck_assert(b == 2ULL << 30);
	ck_assert_int_eq(cs_parse_bytes("512MiB", &b), 0);
	ck_assert(b == 512ULL << 20);
	ck_assert_int_eq(cs_parse_bytes("1000", &b), 0);
	ck_assert(b == 1000);
	ck_assert_int_eq(cs_parse_bytes("-1G", &b), -1);
	ck_assert_int_eq(cs_parse_bytes("2X", &b), -1);
	ck_assert_int_eq(cs_parse_bytes("", &b), -1);
	ck_assert_int_eq(cs_parse_duration("30m", &d), 0);
	ck_assert(d == 1800);
	ck_assert_int_eq(cs_parse_duration("1.5h", &d), 0);
	ck_assert(d == 5400);
	ck_assert_int_eq(cs_parse_duration("45", &d), 0);
	ck_assert(d == 45);
	ck_assert_int_eq(cs_parse_duration("30mm", &d), -1);
	ck_assert_int_eq(cs_parse_duration("x", &d), -1);
}
END_TEST

/* XXH64 against xxHash's own values (libxxhash 0.8.1's XXH64, through
 * Python's ctypes): three strings, and a 300-byte pattern cut at every
 * length where the code changes path (tail words, the 4-byte step, bytes,
 * whole 32-byte stripes), with seeds 0 and 12345. */
START_TEST(test_xxh64_values)
{
	ck_assert(cs_xxh64("", 0, 0) == 0xef46db3751d8e999ULL);
	ck_assert(cs_xxh64("abc", 3, 0) == 0x44bc2cf5ad770999ULL);
	ck_assert(cs_xxh64("The quick brown fox jumps over the lazy dog", 43, 0) ==
		  0x0b242d361fda71bcULL);
	static const struct { size_t n; uint64_t h0, h1; } want[] = {
		{ 0, 0xef46db3751d8e999ULL, 0x95584af7701f808dULL },
		{ 1, 0xa96c7f0ce858bbb7ULL, 0x496fc29a1e753bd7ULL },
		{ 3, 0xbed43740ee6332bbULL, 0xb6b19aedc2948346ULL },
		{ 4, 0xfa212ae44b3bb23dULL, 0x14172bb7250877afULL },
		{ 7, 0x2744460dd675d2c0ULL, 0x8652f10a98d4ca79ULL },
		{ 8, 0x994b676b71ce94ddULL, 0xaf294d209690c736ULL },
		{ 31, 0x6711d55e306b5d8fULL, 0x17dd097895721fa7ULL },
		{ 32, 0x07f7b8e3bc5d6e25ULL, 0xf3a05319bc5e3718ULL },
		{ 33, 0x09f85eeb4e1cbe9fULL, 0x16b78ac8c6986979ULL },
		{ 63, 0xb7c9968c066cb6a5ULL, 0xee9799100775ac1dULL },
		{ 64, 0x50d4159a0411632eULL, 0x1fa49a6ecd161475ULL },
		{ 100, 0x9ddada11d3dc2d8fULL, 0x21fc897b6959f33aULL },
		{ 255, 0x15a6db05d4e83df4ULL, 0x7be396535dd846cbULL },
		{ 300, 0xc68e7ef39b5ca10eULL, 0xf7e0604153d21356ULL },
	};
	unsigned char b[300];
	for (int i = 0; i < 300; i++)
		b[i] = (unsigned char)(i * 131 + 7);
	for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
		ck_assert_msg(cs_xxh64(b, want[i].n, 0) == want[i].h0, "length %zu", want[i].n);
		ck_assert_msg(cs_xxh64(b, want[i].n, 12345) == want[i].h1, "length %zu", want[i].n);
	}
}
END_TEST

/* The running state, fed random buffers in random pieces from any
 * alignment, gives the one-call hash of the same bytes; and any flipped
 * bit changes it. */
START_TEST(test_xxh64_pieces)
{
	enum { MAX = 2000 };
	unsigned char *b = malloc(MAX + 8);
	uint64_t r = 88172645463325252ULL;
	for (int trial = 0; trial < 500; trial++) {
		size_t n = 0, off;
		for (size_t i = 0; i < MAX + 8; i++) {
			r ^= r << 13, r ^= r >> 7, r ^= r << 17;
			b[i] = (unsigned char)(r >> 24);
		}
		n = (size_t)(r % (trial < 100 ? 70 : MAX));
		off = (size_t)(r >> 40) % 8;
		uint64_t seed = trial & 1 ? r : 0;
		uint64_t want = cs_xxh64(b + off, n, seed);
		cs_xxh64_state st;
		cs_xxh64_init(&st, seed);
		for (size_t i = 0; i < n;) {
			r ^= r << 13, r ^= r >> 7, r ^= r << 17;
			size_t k = (size_t)(r % (trial % 3 == 0 ? 5 : 80));
			if (k > n - i)
				k = n - i;
			cs_xxh64_update(&st, b + off + i, k);
			i += k;
		}
		ck_assert_msg(cs_xxh64_digest(&st) == want, "trial %d, %zu bytes", trial, n);
		ck_assert(cs_xxh64_digest(&st) == want); /* the digest leaves the state */
		if (n) {
			size_t bit = (size_t)(r % (n * 8));
			b[off + bit / 8] ^= (unsigned char)(1u << bit % 8);
			ck_assert_msg(cs_xxh64(b + off, n, seed) != want, "trial %d, bit %zu", trial,
				      bit);
		}
	}
	free(b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("stream");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_many_frames);
	tcase_add_test(tc, test_threaded_writer);
	tcase_add_test(tc, test_truncated_everywhere);
	tcase_add_test(tc, test_flipped_bytes);
	tcase_add_test(tc, test_newer_version);
	tcase_add_test(tc, test_bad_magic_and_not_zstd);
	tcase_add_test(tc, test_data_after_end);
	tcase_add_test(tc, test_lying_lengths);
	tcase_add_test(tc, test_writer_checks_records);
	tcase_add_test(tc, test_schema_rules);
	tcase_add_test(tc, test_parse_units);
	tcase_add_test(tc, test_xxh64_values);
	tcase_add_test(tc, test_xxh64_pieces);
	suite_add_tcase(s, tc);
	return check_run(s);
}
