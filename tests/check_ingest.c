/* check_ingest.c - unit tests of CSV ingest: CSV quirks, grouping,
 * ordering, sessions, repeats, minimum length and the external sort. */
#include <check.h>
#include "check_run.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cs.h"
#include "ingest.h"

static char dir[256];

static void setup(void)
{
	snprintf(dir, sizeof dir, "%s/check_ingest.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static char *path_of(const char *name)
{
	static char p[4][400];
	static int k;
	k = (k + 1) % 4;
	snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
	return p[k];
}

static const char *write_file(const char *name, const char *text, size_t n)
{
	const char *p = path_of(name);
	FILE *fp = fopen(p, "wb");
	ck_assert_ptr_nonnull(fp);
	ck_assert_uint_eq(fwrite(text, 1, n, fp), n);
	fclose(fp);
	return p;
}

/* Text form of a stream: one line per record, "seqfields|ev;ev;..." with
 * each event's fields joined by ','. */
static char *dump(const char *path)
{
	static char out[1 << 16];
	size_t n = 0;
	cs_error err;
	cs_reader *r = cs_reader_open(path, &err);
	ck_assert_msg(r != NULL, "%s", err.msg);
	const cs_schema *s = cs_reader_schema(r);
	cs_record rec = { 0 };
	int k;
	out[0] = 0;
	while ((k = cs_reader_next(r, &rec, &err)) == 1) {
		for (int lvl = 0; lvl < 2; lvl++) {
			size_t ne = lvl == CS_SEQ ? 1 : rec.nevents;
			for (size_t e = 0; e < ne; e++) {
				int first = 1;
				for (size_t i = 0; i < s->nfields; i++) {
					if (s->f[i].level != lvl)
						continue;
					const cs_column *c = &rec.col[i];
					if (!first)
						n += (size_t)snprintf(out + n, sizeof out - n, ",");
					first = 0;
					if (c->type == CS_STRING) {
						size_t l;
						const char *p = cs_col_str(c, e, &l);
						n += (size_t)snprintf(out + n, sizeof out - n, "%.*s", (int)l, p);
					} else if (c->type == CS_INT64) {
						n += (size_t)snprintf(out + n, sizeof out - n, "%lld",
								      (long long)c->v.i64[e]);
					} else if (c->type == CS_FLOAT32) {
						n += (size_t)snprintf(out + n, sizeof out - n, "%g",
								      (double)c->v.f32[e]);
					}
				}
				n += (size_t)snprintf(out + n, sizeof out - n, "%s",
						      lvl == CS_SEQ ? "|" : e + 1 < ne ? ";" : "");
			}
		}
		n += (size_t)snprintf(out + n, sizeof out - n, "\n");
	}
	ck_assert_msg(k == 0, "%s", err.msg);
	cs_record_free(&rec);
	cs_reader_close(r);
	return out;
}

/* A generic mapping: user,item,action,time(unix) with a header. */
static void generic(cs_ingest_opts *o)
{
	cs_ingest_opts_init(o);
	o->map.user = "user";
	o->map.item = "item";
	o->map.action = "action";
	o->map.action_mode = CS_ACTION_COLUMN;
	o->map.time = "time";
	o->map.time_format = CS_TIME_UNIX;
	o->max_report = 0;
}

/* Ingest paths into the stream out (nothing left there on failure). */
static int ingest(const cs_ingest_opts *o, const char *const *paths, size_t n, const char *out,
		  cs_ingest_stats *st, cs_error *err)
{
	cs_writer *w = NULL;
	int rc = -1;
	cs_ingest *in = cs_ingest_open(o, paths, n, st, err);
	if (in && (w = cs_writer_open(out, cs_ingest_schema(in), NULL, err)) &&
	    cs_ingest_run(in, w, err) == 0) {
		rc = cs_writer_close(w, err);
		w = NULL;
	}
	cs_writer_abort(w);
	cs_ingest_close(in);
	return rc;
}

static int run1(const cs_ingest_opts *o, const char *in, const char *out,
		cs_ingest_stats *st, cs_error *err)
{
	const char *paths[] = { in };
	return ingest(o, paths, 1, out, st, err);
}

/* Ingest text with mapping o and return the dump. */
static char *ingest_text(const cs_ingest_opts *o, const char *text, cs_ingest_stats *st)
{
	cs_error err;
	const char *in = write_file("in.csv", text, strlen(text));
	const char *out = path_of("out.cseq");
	int rc = run1(o, in, out, st, &err);
	ck_assert_msg(rc == 0, "%s", err.msg);
	return dump(out);
}

START_TEST(test_key_order)
{
	ck_assert_int_lt(cs_ingest_keycmp("9", 1, "10", 2), 0);
	ck_assert_int_lt(cs_ingest_keycmp("10", 2, "a", 1), 0);
	ck_assert_int_lt(cs_ingest_keycmp("99999999999999999999", 20, "100000000000000000000", 21), 0);
	ck_assert_int_lt(cs_ingest_keycmp("007", 3, "8", 1), 0);
	ck_assert_int_lt(cs_ingest_keycmp("07", 2, "7", 1), 0); /* equal numbers: bytewise */
	ck_assert_int_lt(cs_ingest_keycmp("B", 1, "a", 1), 0);
	ck_assert_int_lt(cs_ingest_keycmp("ab", 2, "abc", 3), 0);
	ck_assert_int_eq(cs_ingest_keycmp("x1", 2, "x1", 2), 0);
}
END_TEST

/* ------------------------------------------------------------ CSV */

START_TEST(test_basic_order)
{
	cs_ingest_opts o;
	cs_ingest_stats st;
	generic(&o);
	/* users out of order, times out of order, ties keep input order */
	const char *csv =
		"user,item,action,time\n"
		"10,a,view,300\n"
		"9,b,view,200\n"
		"10,c,view,100\n"
		"10,d,cart,300\n"
		"x,e,view,5\n"
		"9,f,view,200\n"
		"10,g,view,300\n";
	ck_assert_str_eq(ingest_text(&o, csv, &st),
			 "9|b,view,200;f,view,200\n"
			 "10|c,view,100;a,view,300;d,cart,300;g,view,300\n"
			 "x|e,view,5\n");
	ck_assert_uint_eq(st.rows, 7);
	ck_assert_uint_eq(st.sequences, 3);
	ck_assert_uint_eq(st.events, 7);
	ck_assert_uint_eq(st.bad, 0);
}
END_TEST

START_TEST(test_quotes)
{
	cs_ingest_opts o;
	cs_ingest_stats st;
	generic(&o);
	o.map.keep[0].col = "note";
	o.map.keep[0].type = CS_STRING;
	o.map.nkeep = 1;
	const char *csv =
		"\"user\",item,action,time,note\r\n"
		"1,\"a,b\",view,1,\"say \"\"hi\"\"\"\r\n"
		"1,c,view,2,\"two\r\nlines\"\r\n"
		"1,d,view,3,plain\r\n";
	ck_assert_str_eq(ingest_text(&o, csv, &st),
			 "1|a,b,view,1,say \"hi\";c,view,2,two\r\nlines;d,view,3,plain\n");
	ck_assert_uint_eq(st.bad, 0);
	/* a broken quote is a bad row, the rest survives */
	const char *bad =
		"user,item,action,time\n"
		"1,\"a\"x,view,1\n"
		"1,b,view,2\n";
	o.map.nkeep = 0;
	ck_assert_str_eq(ingest_text(&o, bad, &st), "1|b,view,2\n");
	ck_assert_uint_eq(st.bad, 1);
	/* an unterminated quote at the end */
	const char *open = "user,item,action,time\n1,b,view,2\n1,\"c,view,3\n";
	ck_assert_str_eq(ingest_text(&o, open, &st), "1|b,view,2\n");
	ck_assert_uint_eq(st.bad, 1);
}
END_TEST

START_TEST(test_crlf_bom_trailing_comma)
{
	cs_ingest_opts o;
	cs_ingest_stats st;
	generic(&o);
	/* BOM, CRLF, a trailing comma on every line, no final newline */
	const char *csv =
		"\xef\xbb\xbfuser,item,action,time,\r\n"
		"u1,a,view,1,\r\n"
		"u1,b,view,2,\r\n"
		"u2,c,view,3";
	ck_assert_str_eq(ingest_text(&o, csv, &st), "u1|a,view,1;b,view,2\nu2|c,view,3\n");
	ck_assert_uint_eq(st.bad, 0);
	ck_assert_uint_eq(st.bytes, strlen(csv));
	/* without the trailing comma on data lines it works too */
	const char *csv2 = "user,item,action,time,\nu1,a,view,1\n";
	ck_assert_str_eq(ingest_text(&o, csv2, &st), "u1|a,view,1\n");
}
END_TEST

static char badmsg[8][200];
static int nbadmsg;

static void on_bad(void *ctx, const cs_error *e)
{
	char buf[1200];
	if (nbadmsg < 8)
		snprintf(badmsg[nbadmsg++], sizeof badmsg[0], "%s",
			 strstr(cs_strerror(e, buf, sizeof buf), "in.csv:"));
}

START_TEST(test_bad_rows)
{
	cs_ingest_opts o;
	cs_ingest_stats st;
	generic(&o);
	o.max_report = 3;
	o.on_bad = on_bad;
	nbadmsg = 0;
	const char *csv =
		"user,item,action,time\n"
		"1,a,view,1\n"
		"1,b,view\n"           /* 3: too few columns */
		"1,c,view,2,extra\n"   /* 4: too many */
		"1,,view,3\n"          /* 5: empty item */
		"1,d,view,yesterday\n" /* 6: bad time */
		",e,view,4\n"          /* 7: empty user */
		"\n"
		"1,f,view,5\n"
		"1,g,view,6,";         /* a trailing empty column is fine */
	ck_assert_str_eq(ingest_text(&o, csv, &st), "1|a,view,1;f,view,5;g,view,6\n");
	ck_assert_uint_eq(st.bad, 5);
	ck_assert_uint_eq(st.rows, 8);
	ck_assert_int_eq(nbadmsg, 3);
	ck_assert_str_eq(badmsg[0], "in.csv:3: expected 4 columns, got 3");
	ck_assert_str_eq(badmsg[1], "in.csv:4: expected 4 columns, got 5");
	ck_assert_str_eq(badmsg[2], "in.csv:5: empty item");

	/* --strict: the first bad row fails and leaves no output */
	cs_error err;
	o.strict = 1;
	const char *in = write_file("in.csv", csv, strlen(csv));
	const char *out = path_of("strict.cseq");
	ck_assert_int_eq(run1(&o, in, out, &st, &err), -1);
	ck_assert_int_eq(err.code, CS_ERR_FORMAT);
	ck_assert_int_eq(err.line, 3);
	ck_assert_int_eq(access(out, F_OK), -1);
	/* an unknown column is a usage error */
	generic(&o);
	o.map.item = "nope";
	ck_assert_int_eq(run1(&o, in, out, &st, &err), -1);
	ck_assert_int_eq(err.code, CS_ERR_USAGE);
	ck_assert_int_eq(access(out, F_OK), -1);
}
END_TEST

START_TEST(test_no_header_numbers)
{
	cs_ingest_opts o;
	cs_ingest_stats st;
	cs_ingest_opts_init(&o);
	o.map.sep = '\t';
	o.map.header = 0;
	o.map.user = "2";
	o.map.item = "1";
	o.map.time = "3";
	o.map.time_format = CS_TIME_ISO;
	o.map.keep[0] = (cs_ingest_keep){ "price", "4", CS_FLOAT32 };
	o.map.keep[1] = (cs_ingest_keep){ NULL, "5", CS_INT64 };
	o.map.nkeep = 2;
	const char *tsv = "i1\tu\t2020-01-01 00:00:01\t1.5\t-7\n"
			  "i2\tu\t2020-01-01 00:00:00\t2.25\t8\n";
	ck_assert_str_eq(ingest_text(&o, tsv, &st),
			 "u|i2,1577836800,2.25,8;i1,1577836801,1.5,-7\n");
}
END_TEST

/* ------------------------------------------------------------ grouping */

START_TEST(test_sessions_gap_collapse_minlen)
{
	cs_ingest_opts o;
	cs_ingest_stats st;
	generic(&o);
	const char *csv =
		"user,item,action,time\n"
		"1,a,view,0\n"
		"1,a,view,60\n"     /* repeat */
		"1,a,cart,120\n"    /* same item, other action: kept */
		"1,b,view,1900\n"   /* a gap of 1780 s */
		"1,b,view,1950\n"
		"2,c,view,10\n"
		"3,d,view,10\n"
		"3,e,view,20\n";
	ck_assert_str_eq(ingest_text(&o, csv, &st),
			 "1|a,view,0;a,view,60;a,cart,120;b,view,1900;b,view,1950\n"
			 "2|c,view,10\n3|d,view,10;e,view,20\n");
	o.gap = 1780; /* not longer than the gap: one part */
	ck_assert_str_eq(ingest_text(&o, csv, &st),
			 "1,1|a,view,0;a,view,60;a,cart,120;b,view,1900;b,view,1950\n"
			 "2,1|c,view,10\n3,1|d,view,10;e,view,20\n");
	o.gap = 1779;
	ck_assert_str_eq(ingest_text(&o, csv, &st),
			 "1,1|a,view,0;a,view,60;a,cart,120\n1,2|b,view,1900;b,view,1950\n"
			 "2,1|c,view,10\n3,1|d,view,10;e,view,20\n");
	o.gap = 1700;
	o.collapse = 1;
	ck_assert_str_eq(ingest_text(&o, csv, &st),
			 "1,1|a,view,0;a,cart,120\n1,2|b,view,1900\n"
			 "2,1|c,view,10\n3,1|d,view,10;e,view,20\n");
	ck_assert_uint_eq(st.collapsed, 2);
	o.min_len = 2;
	ck_assert_str_eq(ingest_text(&o, csv, &st),
			 "1,1|a,view,0;a,cart,120\n3,1|d,view,10;e,view,20\n");
	ck_assert_uint_eq(st.short_seqs, 2);
	ck_assert_uint_eq(st.sequences, 2);
	ck_assert_uint_eq(st.events, 4);
}
END_TEST

START_TEST(test_by_session)
{
	cs_ingest_opts o;
	cs_ingest_stats st;
	generic(&o);
	o.map.session = "s";
	o.by = CS_BY_SESSION;
	const char *csv =
		"user,s,item,action,time\n"
		"u1,sB,a,view,5\n"
		"u1,sA,b,view,3\n"
		"u2,sB,c,view,4\n";
	/* seq fields: user (from the first event), session */
	ck_assert_str_eq(ingest_text(&o, csv, &st), "u1,sA|b,view,3\nu2,sB|c,view,4;a,view,5\n");
	o.by = CS_BY_USER;
	ck_assert_str_eq(ingest_text(&o, csv, &st),
			 "u1|b,view,3,sA;a,view,5,sB\nu2|c,view,4,sB\n");
}
END_TEST

START_TEST(test_seqlines_and_files)
{
	cs_ingest_opts o;
	cs_ingest_stats st;
	cs_error err;
	cs_ingest_opts_init(&o);
	ck_assert_int_eq(cs_ingest_preset(&o, "seqlines", &err), 0);
	ck_assert_str_eq(ingest_text(&o, "2 x y\n1 a  b c\n", &st), "1|a;b;c\n2|x;y\n");
	ck_assert_uint_eq(st.events, 5);
	/* several inputs are one logical input */
	ck_assert_int_eq(cs_ingest_preset(&o, "pairs", &err), 0);
	const char *a = write_file("a.txt", "1 a\n2 b\n", 8);
	const char *b = write_file("b.txt", "1 c\n", 4);
	const char *paths[] = { a, b };
	const char *out = path_of("ab.cseq");
	ck_assert_int_eq(ingest(&o, paths, 2, out, &st, &err), 0);
	ck_assert_str_eq(dump(out), "1|a;c\n2|b\n");
	ck_assert_int_eq(cs_ingest_preset(&o, "nope", &err), -1);
}
END_TEST

/* ------------------------------------------------------------ external sort */

static char *read_all(const char *path, size_t *n)
{
	FILE *fp = fopen(path, "rb");
	ck_assert_ptr_nonnull(fp);
	fseek(fp, 0, SEEK_END);
	*n = (size_t)ftell(fp);
	rewind(fp);
	char *p = malloc(*n + 1);
	ck_assert_uint_eq(fread(p, 1, *n, fp), *n);
	fclose(fp);
	return p;
}

START_TEST(test_external_sort_identical)
{
	cs_ingest_opts o;
	cs_ingest_stats st;
	cs_error err;
	/* 20000 rows: 700 users, times with many ties, rows shuffled */
	size_t cap = 1 << 21, n = 0;
	char *csv = malloc(cap);
	n += (size_t)snprintf(csv + n, cap - n, "user,item,action,time,price\n");
	unsigned x = 12345;
	for (int i = 0; i < 20000; i++) {
		x = x * 1103515245u + 12345u;
		unsigned u = (x >> 8) % 700, t = (x >> 4) % 50;
		n += (size_t)snprintf(csv + n, cap - n, "%s%u,i%d,%s,%u,%d.5\n",
				      u % 3 ? "" : "k", u, i, i % 5 ? "view" : "cart", t, i % 100);
	}
	const char *in = write_file("big.csv", csv, n);
	free(csv);
	generic(&o);
	o.map.keep[0] = (cs_ingest_keep){ NULL, "price", CS_FLOAT32 };
	o.map.nkeep = 1;
	const char *out1 = path_of("mem.cseq"), *out2 = path_of("ext.cseq");
	ck_assert_int_eq(run1(&o, in, out1, &st, &err), 0);
	ck_assert_uint_eq(st.runs, 0);
	ck_assert_uint_eq(st.events, 20000);
	o.mem = 64 << 10;
	o.threads = 2;
	o.tmpdir = dir;
	ck_assert_int_eq(run1(&o, in, out2, &st, &err), 0);
	ck_assert_uint_ge(st.runs, 10);
	ck_assert_uint_eq(st.events, 20000);
	size_t n1, n2;
	char *a = read_all(out1, &n1), *b = read_all(out2, &n2);
	ck_assert_uint_eq(n1, n2);
	ck_assert(memcmp(a, b, n1) == 0);
	free(a);
	free(b);
	/* so many runs that they are merged into one on the way */
	o.mem = 4 << 10;
	o.block = 1000;
	ck_assert_int_eq(run1(&o, in, out2, &st, &err), 0);
	ck_assert_uint_gt(st.runs, 64);
	a = read_all(out1, &n1);
	b = read_all(out2, &n2);
	ck_assert_uint_eq(n1, n2);
	ck_assert(memcmp(a, b, n1) == 0);
	free(a);
	free(b);
	/* tiny blocks (records cut across block boundaries) agree as well */
	o.block = 100;
	ck_assert_int_eq(run1(&o, in, out2, &st, &err), 0);
	a = read_all(out1, &n1);
	b = read_all(out2, &n2);
	ck_assert_uint_eq(n1, n2);
	ck_assert(memcmp(a, b, n1) == 0);
	free(a);
	free(b);
	/* the temporary files are gone */
	char cmd[400];
	snprintf(cmd, sizeof cmd, "test -z \"$(ls '%s' | grep cs-ingest)\"", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ingest");
	TCase *tc = tcase_create("ingest");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_key_order);
	tcase_add_test(tc, test_basic_order);
	tcase_add_test(tc, test_quotes);
	tcase_add_test(tc, test_crlf_bom_trailing_comma);
	tcase_add_test(tc, test_bad_rows);
	tcase_add_test(tc, test_no_header_numbers);
	tcase_add_test(tc, test_sessions_gap_collapse_minlen);
	tcase_add_test(tc, test_by_session);
	tcase_add_test(tc, test_seqlines_and_files);
	tcase_add_test(tc, test_external_sort_identical);
	suite_add_tcase(s, tc);
	return check_run(s);
}
