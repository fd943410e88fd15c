/* check_text.c - unit tests of the text form of streams. */
#include <check.h>
#include "check_run.h"
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "text.h"

/* Read text into records; returns the count, or -1 with err filled. */
static long parse(const char *text, cs_schema **schema, cs_record *recs, size_t max,
		  cs_error *err)
{
	FILE *fp = *text ? fmemopen((void *)text, strlen(text), "r") : tmpfile();
	ck_assert_ptr_nonnull(fp);
	cs_text_reader *r = cs_text_reader_open(fp, "t.txt", err);
	long n = -1;
	if (r) {
		int k;
		for (n = 0; (size_t)n < max && (k = cs_text_reader_next(r, &recs[n], err)) > 0; n++)
			;
		if ((size_t)n < max && k < 0)
			n = -1;
		if (schema)
			*schema = cs_schema_dup(cs_text_reader_schema(r));
	}
	cs_text_reader_close(r);
	fclose(fp);
	return n;
}

/* Write records as text with flags; returns a malloc'd string. */
static char *print(const cs_schema *s, const cs_record *recs, size_t n, int flags)
{
	char *p = NULL;
	size_t sz = 0;
	FILE *fp = open_memstream(&p, &sz);
	cs_error err;
	cs_text_writer *w = cs_text_writer_new(fp, "mem", s, flags, &err);
	ck_assert_msg(w != NULL, "%s", err.msg);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(cs_text_writer_put(w, &recs[i], &err), 0);
	ck_assert_int_eq(cs_text_writer_close(w, &err), 0);
	fclose(fp);
	return p;
}

/* text -> records -> text must give the same bytes. */
static void round_trip(const char *text, long nseq, int flags)
{
	cs_record recs[32] = { { 0 } };
	cs_schema *s = NULL;
	cs_error err;
	long n = parse(text, &s, recs, 32, &err);
	ck_assert_msg(n >= 0, "%s:%ld: %s", err.path, err.line, err.msg);
	ck_assert_int_eq(n, nseq);
	char *again = print(s, recs, (size_t)n, flags);
	ck_assert_str_eq(again, text);
	free(again);
	for (size_t i = 0; i < 32; i++)
		cs_record_free(&recs[i]);
	cs_schema_free(s);
}

START_TEST(test_escape)
{
	char all[256], esc[1100], back[300];
	for (int i = 0; i < 256; i++)
		all[i] = (char)i;
	size_t n = cs_text_escape(esc, all, 256);
	ck_assert_uint_eq(strlen(esc), n);
	ck_assert_ptr_null(memchr(esc, '\t', n));
	ck_assert_ptr_null(memchr(esc, '\n', n));
	ck_assert_ptr_null(memchr(esc, '\r', n));
	size_t m;
	ck_assert_int_eq(cs_text_unescape(back, &m, esc, n), 0);
	ck_assert_uint_eq(m, 256);
	ck_assert(memcmp(back, all, 256) == 0);
	n = cs_text_escape(esc, "a\\b\tc\nd\re\x01", 10);
	ck_assert_str_eq(esc, "a\\\\b\\tc\\nd\\re\\x01");
	ck_assert_int_eq(cs_text_unescape(back, &m, "x\\&y\\x4A\\x4a", 12), 0);
	ck_assert_uint_eq(m, 4);
	ck_assert(memcmp(back, "xyJJ", 4) == 0);
	const char *bad[] = { "\\", "a\\q", "\\x4", "\\xg0", "\\N" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		ck_assert_msg(cs_text_unescape(back, &m, bad[i], strlen(bad[i])) < 0,
			      "accepted '%s'", bad[i]);
}
END_TEST

static void float_exact(float v)
{
	char buf[64];
	cs_text_format_float(buf, sizeof buf, v);
	float w = strtof(buf, NULL);
	ck_assert_msg(memcmp(&v, &w, sizeof v) == 0, "%a printed as '%s' reads %a", v, buf, w);
}

START_TEST(test_float)
{
	char buf[64];
	float edge[] = { 0.0f, -0.0f, 0.1f, 1.0f / 3, 35.79f, FLT_MAX, -FLT_MAX, FLT_MIN,
			 FLT_TRUE_MIN, -FLT_TRUE_MIN, FLT_EPSILON, 16777216.0f, 16777215.0f,
			 1e-10f, 123456789.0f, 1e30f, INFINITY, -INFINITY };
	for (size_t i = 0; i < sizeof edge / sizeof *edge; i++)
		float_exact(edge[i]);
	cs_text_format_float(buf, sizeof buf, 0.1f);
	ck_assert_str_eq(buf, "0.1");
	cs_text_format_float(buf, sizeof buf, -0.0f);
	ck_assert_str_eq(buf, "-0");
	cs_text_format_float(buf, sizeof buf, 35.79f);
	ck_assert_str_eq(buf, "35.79");
	cs_text_format_float(buf, sizeof buf, NAN);
	ck_assert_str_eq(buf, "nan");
	cs_text_format_float(buf, sizeof buf, -INFINITY);
	ck_assert_str_eq(buf, "-inf");
	/* random bit patterns */
	uint32_t x = 12345;
	for (int i = 0; i < 200000; i++) {
		x = x * 1664525u + 1013904223u;
		float v;
		memcpy(&v, &x, 4);
		if (!isnan(v))
			float_exact(v);
	}
}
END_TEST

START_TEST(test_round_trips)
{
	/* escapes, empty strings, extreme int64s, float edges, empty sequences,
	 * equal neighbours kept apart by a blank line */
	round_trip("user:seq:string\titem:event:string\ttime:event:int64\tprice:event:float32\n"
		   "u1\ta\t-9223372036854775808\t0.1\n"
		   "u1\tb\\tc\\nd\\\\e\\x01\t9223372036854775807\t-0\n"
		   "u1\t\t0\t3.4028235e+38\n"
		   "u2\t\\N\t\\N\t\\N\n"
		   "u2\tx\t1\tnan\n"
		   "\n"
		   "u2\ty\t2\t-inf\n"
		   "\t\t-1\t1.4013e-45\n"
		   "\t\\N\t\\N\t\\N\n"
		   "\t\\N\t\\N\t\\N\n"
		   "\xc3\xa9\\\\N\t\\\\N\t3\t1e-10\n", 8, 0);
	/* no sequence-level fields: every sequence after the first follows a blank line */
	round_trip("item:event:id=0123456789abcdef\taction:event:string\n"
		   "3\tview\n4\tbuy\n\n5\tview\n\\N\t\\N\n7\t\n", 4, 0);
	/* one event string field: an empty value is written \& */
	round_trip("item:event:string\n\\&\na\n\n\\&\n\\N\n", 3, 0);
	/* only sequence-level fields: one line per sequence */
	round_trip("user:seq:string\tlabel:seq:int64\nu1\t1\nu1\t1\n\t0\n", 3, 0);
	round_trip("user:seq:string\n\\&\nx\n", 2, 0);
	/* metadata and a first field name starting with '#' */
	round_trip("#meta\tsource\ta\\tb\n#meta\tempty\t\n\\x23n:seq:int64\tv:event:float32\n"
		   "1\t2.5\n", 1, CS_TEXT_META);
}
END_TEST

START_TEST(test_grouping)
{
	/* comments before the header; consecutive lines with the same sequence-level
	 * text form one sequence; a blank line ends one; trailing newline optional */
	const char *text = "# a comment\n\n#another\n"
			   "user:seq:string\titem:event:string\tn:seq:int64\n"
			   "u1\ta\t1\nu1\tb\t1\nu1\tc\t2\n\n\nu1\td\t2\n"
			   "u2\t\\N\t5\nu2\te\t5";
	cs_record recs[8] = { { 0 } };
	cs_schema *s;
	cs_error err;
	long n = parse(text, &s, recs, 8, &err);
	ck_assert_msg(n >= 0, "%s:%ld: %s", err.path, err.line, err.msg);
	ck_assert_int_eq(n, 5);
	size_t want[] = { 2, 1, 1, 0, 1 };
	int64_t wn[] = { 1, 2, 2, 5, 5 };
	for (long i = 0; i < n; i++) {
		ck_assert_uint_eq(recs[i].nevents, want[i]);
		ck_assert_uint_eq(recs[i].col[1].n, want[i]);
		ck_assert_uint_eq(recs[i].col[0].n, 1);
		ck_assert_int_eq(recs[i].col[2].v.i64[0], wn[i]);
	}
	ck_assert_int_eq(s->f[2].level, CS_SEQ);
	ck_assert_int_eq(s->f[2].type, CS_INT64);
	for (size_t i = 0; i < 8; i++)
		cs_record_free(&recs[i]);
	cs_schema_free(s);
}
END_TEST

/* Text that must be rejected at line with a message containing what. */
static void expect_bad(const char *text, long line, const char *what)
{
	cs_record recs[8] = { { 0 } };
	cs_error err;
	long n = parse(text, NULL, recs, 8, &err);
	ck_assert_msg(n < 0, "accepted '%s'", text);
	ck_assert_str_eq(err.path, "t.txt");
	ck_assert_msg(err.line == line, "'%s': line %ld, expected %ld (%s)", text, err.line, line,
		      err.msg);
	ck_assert_msg(strstr(err.msg, what) != NULL, "'%s' lacks '%s'", err.msg, what);
	ck_assert_int_eq(err.code, CS_ERR_FORMAT);
	for (size_t i = 0; i < 8; i++)
		cs_record_free(&recs[i]);
}

START_TEST(test_errors)
{
	const char *H = "u:seq:string\ti:event:int64\tf:event:float32\tk:event:id\n";
	char buf[512];
#define BAD(body, line, what) \
	(snprintf(buf, sizeof buf, "%s%s", H, body), expect_bad(buf, line, what))
	BAD("u\t1\n", 2, "2 columns, the header has 4");
	BAD("u\t1\t2\t3\t4\n", 2, "5 columns");
	BAD("u\t1\t2\t3\nu\tx\t2\t3\n", 3, "invalid int64 'x' for field 'i'");
	BAD("u\t99999999999999999999\t2\t3\n", 2, "invalid int64");
	BAD("u\t 1\t2\t3\n", 2, "invalid int64");
	BAD("u\t1\t1e39\t3\n", 2, "invalid float32 '1e39'");
	BAD("u\t1\t\t3\n", 2, "invalid float32 ''");
	BAD("u\t1\t2\t4294967296\n", 2, "invalid id");
	BAD("u\t1\t2\t-1\n", 2, "invalid id");
	BAD("u\\q\t1\t2\t3\n", 2, "bad escape");
	BAD("u\t\\N\t2\t3\n", 2, "must fill every event column");
	BAD("u\t1\t2\t3\r\n", 2, "carriage return");
	expect_bad("", 0, "no header");
	expect_bad("# only a comment\n", 1, "no header");
	expect_bad("a:seq:string\tb:event\n", 1, "not 'name:level:type'");
	expect_bad("a:sequence:string\n", 1, "unknown level 'sequence'");
	expect_bad("a:seq:text\n", 1, "unknown type 'text'");
	expect_bad("a:seq:string\ta:event:int64\n", 1, "duplicate");
	expect_bad("a:event:string=0123456789abcdef\n", 1, "bad fingerprint");
	expect_bad("a:event:id=0123\n", 1, "bad fingerprint");
	expect_bad("#meta\tkey\n", 1, "#meta");
#undef BAD
}
END_TEST

START_TEST(test_json_info)
{
	const char *text = "#meta\tsrc\tx\"y\n"
			   "user:seq:string\titem:event:id=00000000000000ff\tp:event:float32\n"
			   "q\"\\\\\\t\\x01\xff\xc3\xa9\t3\t0.5\nq\"\\\\\\t\\x01\xff\xc3\xa9\t4\tinf\n"
			   "v\t\\N\t\\N\n";
	cs_record recs[4] = { { 0 } };
	cs_schema *s;
	cs_error err;
	long n = parse(text, &s, recs, 4, &err);
	ck_assert_msg(n == 2, "%ld %s", n, err.msg);
	char *j = print(s, recs, 2, CS_TEXT_JSON);
	ck_assert_str_eq(j, "{\"user\":\"q\\\"\\\\\\t\\u0001\\ufffd\xc3\xa9\",\"item\":[3,4],"
			    "\"p\":[0.5,null]}\n{\"user\":\"v\",\"item\":[],\"p\":[]}\n");
	free(j);
	char *p = NULL;
	size_t sz;
	FILE *fp = open_memstream(&p, &sz);
	ck_assert_int_eq(cs_text_write_info(fp, "mem", s, 2, 2, &err), 0);
	fclose(fp);
	ck_assert_str_eq(p, "field\tuser\tseq\tstring\n"
			    "field\titem\tevent\tid\t00000000000000ff\n"
			    "field\tp\tevent\tfloat32\n"
			    "meta\tsrc\tx\"y\n"
			    "records\t2\nevents\t2\n");
	free(p);
	/* no header: the data lines only */
	char *h = print(s, recs, 1, CS_TEXT_NOHEADER);
	ck_assert_str_eq(h, "q\"\\\\\\t\\x01\xff\xc3\xa9\t3\t0.5\nq\"\\\\\\t\\x01\xff\xc3\xa9\t4\tinf\n");
	free(h);
	for (size_t i = 0; i < 4; i++)
		cs_record_free(&recs[i]);
	cs_schema_free(s);
}
END_TEST

/* cs_text_put_json: a JSON string as cs-cat --json writes one. */
START_TEST(test_put_json)
{
	char *p = NULL;
	size_t sz;
	FILE *fp = open_memstream(&p, &sz);
	static const char key[] = "q\"\\\t\n\x01\xff\xc3\xa9\0z";
	ck_assert_int_eq(cs_text_put_json(fp, key, sizeof key - 1), 0);
	ck_assert_int_eq(cs_text_put_json(fp, "", 0), 0);
	fclose(fp);
	ck_assert_str_eq(p, "\"q\\\"\\\\\\t\\n\\u0001\\ufffd\xc3\xa9\\u0000z\"\"\"");
	free(p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("text");
	TCase *tc = tcase_create("text");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_escape);
	tcase_add_test(tc, test_float);
	tcase_add_test(tc, test_round_trips);
	tcase_add_test(tc, test_grouping);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_json_info);
	tcase_add_test(tc, test_put_json);
	suite_add_tcase(s, tc);
	return check_run(s);
}
