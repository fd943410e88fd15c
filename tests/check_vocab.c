/* check_vocab.c - unit tests of vocabularies: counting, k-core, files, coding. */
#include <check.h>
#include "check_run.h"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "vocab.h"

/* user (seq string), item, action (event strings), time (event int64). */
static cs_schema *schema(void)
{
	cs_schema *s = cs_schema_new();
	ck_assert_int_eq(cs_schema_add(s, "user", CS_SEQ, CS_STRING, NULL), 0);
	ck_assert_int_eq(cs_schema_add(s, "item", CS_EVENT, CS_STRING, NULL), 1);
	ck_assert_int_eq(cs_schema_add(s, "action", CS_EVENT, CS_STRING, NULL), 2);
	ck_assert_int_eq(cs_schema_add(s, "time", CS_EVENT, CS_INT64, NULL), 3);
	return s;
}

/* A sequence: items as a space-separated list, action "view" except "buy" on the last. */
static void seq(cs_record *rec, const cs_schema *s, const char *user, const char *items)
{
	ck_assert_int_eq(cs_record_init(rec, s, NULL), 0);
	cs_col_push_str(&rec->col[0], user, strlen(user));
	char buf[256];
	snprintf(buf, sizeof buf, "%s", items);
	size_t n = 0;
	for (char *t = strtok(buf, " "); t; t = strtok(NULL, " "), n++) {
		cs_col_push_str(&rec->col[1], t, strlen(t));
		cs_col_push_i64(&rec->col[3], 1000 + (int64_t)n);
	}
	for (size_t i = 0; i < n; i++)
		cs_col_push_str(&rec->col[2], i + 1 == n ? "buy" : "view", i + 1 == n ? 3 : 4);
	rec->nevents = n;
}

/* Build a vocabulary over sequences "user:items" separated by '|'. */
static cs_vocab *build(const char *data, const char *const *fields, size_t nf,
		       cs_vocab_opts *o, cs_vocab_build_stats *st)
{
	cs_error err;
	cs_schema *s = schema();
	cs_vocab_builder *b = cs_vocab_builder_new(fields, nf, o, &err);
	ck_assert_msg(b != NULL, "%s", err.msg);
	ck_assert_int_eq(cs_vocab_builder_bind(b, s, "test", &err), 0);
	cs_record rec = { 0 };
	char buf[1024];
	snprintf(buf, sizeof buf, "%s", data);
	char *save = NULL;
	for (char *t = strtok_r(buf, "|", &save); t; t = strtok_r(NULL, "|", &save)) {
		char *colon = strchr(t, ':');
		*colon = 0;
		seq(&rec, s, t, colon + 1);
		ck_assert_int_eq(cs_vocab_builder_add(b, &rec, &err), 0);
	}
	cs_vocab *v = cs_vocab_builder_finish(b, st, &err);
	ck_assert_msg(v != NULL, "%s", err.msg);
	cs_record_free(&rec);
	cs_vocab_builder_free(b);
	cs_schema_free(s);
	return v;
}

static const char *const ITEM[] = { "item" };

/* Token of id as a NUL-terminated string. */
static const char *tok(const cs_vocab *v, size_t f, uint32_t id)
{
	static char buf[256];
	size_t len;
	const char *t = cs_vocab_token(v, f, id, &len);
	ck_assert_ptr_nonnull(t);
	snprintf(buf, sizeof buf, "%.*s", (int)len, t);
	return buf;
}

static const char *DATA = "u1:a b a c|u2:b a|u3:d";

START_TEST(test_build_order)
{
	cs_vocab_opts o = { 0 };
	cs_vocab *v = build(DATA, ITEM, 1, &o, NULL);
	ck_assert_uint_eq(cs_vocab_nfields(v), 1);
	ck_assert_str_eq(cs_vocab_field(v, 0), "item");
	ck_assert_uint_eq(cs_vocab_size(v, 0), 7);
	ck_assert_str_eq(tok(v, 0, 0), "[PAD]");
	ck_assert_str_eq(tok(v, 0, 1), "[MASK]");
	ck_assert_str_eq(tok(v, 0, 2), "[UNK]");
	/* by count descending, ties (c, d: 1 each) by token bytes */
	ck_assert_str_eq(tok(v, 0, 3), "a");
	ck_assert_str_eq(tok(v, 0, 4), "b");
	ck_assert_str_eq(tok(v, 0, 5), "c");
	ck_assert_str_eq(tok(v, 0, 6), "d");
	ck_assert_uint_eq(cs_vocab_count(v, 0, 3), 3);
	ck_assert_uint_eq(cs_vocab_count(v, 0, 4), 2);
	ck_assert_uint_eq(cs_vocab_count(v, 0, 6), 1);
	ck_assert_uint_eq(cs_vocab_count(v, 0, CS_VOCAB_UNK), 0);
	ck_assert_ptr_null(cs_vocab_token(v, 0, 7, &(size_t){ 0 }));
	ck_assert_uint_eq(cs_vocab_lookup(v, 0, "c", 1), 5);
	ck_assert_uint_eq(cs_vocab_lookup(v, 0, "zz", 2), CS_VOCAB_UNK);
	ck_assert_uint_eq(cs_vocab_lookup(v, 0, "[PAD]", 5), CS_VOCAB_UNK);
	ck_assert_uint_eq(cs_vocab_lookup(v, 0, "", 0), CS_VOCAB_UNK);
	cs_vocab_free(v);
	/* the same data in another order gives the same ids */
	cs_vocab *w = build("u3:d|u2:b a|u1:c a b a", ITEM, 1, &o, NULL);
	v = build(DATA, ITEM, 1, &o, NULL);
	ck_assert_uint_eq(cs_vocab_fingerprint(v, 0), cs_vocab_fingerprint(w, 0));
	cs_vocab_free(v);
	cs_vocab_free(w);
}
END_TEST

START_TEST(test_min_count_max_size)
{
	cs_vocab_opts o = { .min_count = 2 };
	cs_vocab *v = build(DATA, ITEM, 1, &o, NULL);
	ck_assert_uint_eq(cs_vocab_size(v, 0), 5);
	ck_assert_str_eq(tok(v, 0, 4), "b");
	ck_assert_uint_eq(cs_vocab_count(v, 0, CS_VOCAB_UNK), 2); /* c and d */
	ck_assert_uint_eq(cs_vocab_lookup(v, 0, "d", 1), CS_VOCAB_UNK);
	cs_vocab_free(v);
	o = (cs_vocab_opts){ .max_size = 3 };
	v = build(DATA, ITEM, 1, &o, NULL);
	ck_assert_uint_eq(cs_vocab_size(v, 0), 6);
	ck_assert_str_eq(tok(v, 0, 5), "c");
	ck_assert_uint_eq(cs_vocab_count(v, 0, CS_VOCAB_UNK), 1);
	cs_vocab_free(v);
	o = (cs_vocab_opts){ .max_size = 1, .min_count = 1 };
	v = build(DATA, ITEM, 1, &o, NULL);
	ck_assert_uint_eq(cs_vocab_size(v, 0), 4);
	ck_assert_str_eq(tok(v, 0, 3), "a");
	cs_vocab_free(v);
	/* two fields, one section each */
	const char *const two[] = { "item", "action" };
	o = (cs_vocab_opts){ 0 };
	v = build(DATA, two, 2, &o, NULL);
	ck_assert_uint_eq(cs_vocab_nfields(v), 2);
	ck_assert_int_eq(cs_vocab_find(v, "action"), 1);
	ck_assert_str_eq(tok(v, 1, 3), "view");
	ck_assert_uint_eq(cs_vocab_count(v, 1, 3), 4);
	ck_assert_uint_eq(cs_vocab_count(v, 1, 4), 3);
	cs_vocab_free(v);
}
END_TEST

START_TEST(test_kcore)
{
	/*
	 * 2-core: e (1 event) goes, so s4 keeps only c and goes; then c has
	 * 1 event and goes, so s3 keeps only d and goes; then d goes. s5 has
	 * one event from the start. What remains: s1, s2 with a and b.
	 */
	const char *data = "s1:a b|s2:a b|s3:c d|s4:c e|s5:d";
	const char *const two[] = { "item", "action" };
	cs_vocab_opts o = { .kcore = 2 };
	cs_vocab_build_stats st;
	cs_vocab *v = build(data, two, 2, &o, &st);
	ck_assert_uint_eq(st.records, 5);
	ck_assert_uint_eq(st.events, 9);
	ck_assert_uint_eq(st.kept_records, 2);
	ck_assert_uint_eq(st.kept_events, 4);
	ck_assert_int_ge(st.kcore_rounds, 3);
	ck_assert_uint_eq(cs_vocab_size(v, 0), 5);
	ck_assert_str_eq(tok(v, 0, 3), "a");
	ck_assert_str_eq(tok(v, 0, 4), "b");
	ck_assert_uint_eq(cs_vocab_count(v, 0, 3), 2);
	/* the other fields are counted over the core only */
	ck_assert_uint_eq(cs_vocab_count(v, 1, cs_vocab_lookup(v, 1, "view", 4)), 2);
	ck_assert_uint_eq(cs_vocab_count(v, 1, cs_vocab_lookup(v, 1, "buy", 3)), 2);
	cs_vocab_free(v);
	/* a 3-core of this data is empty */
	o.kcore = 3;
	v = build(data, two, 2, &o, &st);
	ck_assert_uint_eq(st.kept_records, 0);
	ck_assert_uint_eq(cs_vocab_size(v, 0), 3);
	cs_vocab_free(v);
	/* the k-core needs the item field */
	cs_error err;
	const char *const act[] = { "action" };
	ck_assert_ptr_null(cs_vocab_builder_new(act, 1, &o, &err));
	ck_assert_ptr_nonnull(strstr(err.msg, "item"));
}
END_TEST

/* Write v to a string. */
static char *to_text(const cs_vocab *v)
{
	char *p = NULL;
	size_t n = 0;
	FILE *fp = open_memstream(&p, &n);
	cs_error err;
	ck_assert_int_eq(cs_vocab_write_file(v, fp, "mem", &err), 0);
	fclose(fp);
	return p;
}

static cs_vocab *from_text(const char *text, cs_error *err)
{
	FILE *fp = *text ? fmemopen((void *)text, strlen(text), "r") : tmpfile();
	ck_assert_ptr_nonnull(fp);
	cs_vocab *v = cs_vocab_read_file(fp, "v.txt", err);
	fclose(fp);
	return v;
}

START_TEST(test_file_round_trip)
{
	const char *const two[] = { "item", "action" };
	cs_vocab_opts o = { 0 };
	cs_vocab *v = build(DATA, two, 2, &o, NULL);
	char *text = to_text(v);
	ck_assert(strncmp(text, "# cs-vocab 1\n", 13) == 0);
	cs_error err;
	cs_vocab *w = from_text(text, &err);
	ck_assert_msg(w != NULL, "%s:%ld: %s", err.path, err.line, err.msg);
	ck_assert_str_eq(cs_vocab_path(w), "v.txt");
	ck_assert_uint_eq(cs_vocab_nfields(w), 2);
	for (size_t f = 0; f < 2; f++) {
		ck_assert_str_eq(cs_vocab_field(w, f), cs_vocab_field(v, f));
		ck_assert_uint_eq(cs_vocab_size(w, f), cs_vocab_size(v, f));
		ck_assert_uint_eq(cs_vocab_fingerprint(w, f), cs_vocab_fingerprint(v, f));
		for (uint32_t id = 0; id < cs_vocab_size(v, f); id++) {
			char a[64];
			snprintf(a, sizeof a, "%s", tok(v, f, id));
			ck_assert_str_eq(tok(w, f, id), a);
			ck_assert_uint_eq(cs_vocab_count(w, f, id), cs_vocab_count(v, f, id));
			if (id >= CS_VOCAB_RESERVED)
				ck_assert_uint_eq(cs_vocab_lookup(w, f, a, strlen(a)), id);
		}
	}
	char *again = to_text(w);
	/* the options comment is not kept; everything else is */
	ck_assert_str_eq(strchr(strstr(text, "\nfield"), 'f'), strchr(again, 'f'));
	free(text);
	free(again);
	cs_vocab_free(v);
	cs_vocab_free(w);
}
END_TEST

/* A valid one-section file over the given real tokens. */
static char *valid_file(const char *field, const char *const *toks, size_t n)
{
	const char *all[64] = { 0 };
	size_t len[64] = { 0 };
	const char *res[] = { "[PAD]", "[MASK]", "[UNK]" };
	for (size_t i = 0; i < 3; i++)
		all[i] = res[i];
	for (size_t i = 0; i < n; i++)
		all[3 + i] = toks[i];
	for (size_t i = 0; i < n + 3; i++)
		len[i] = strlen(all[i]);
	char fp[17];
	cs_vocab_fpstr(cs_vocab_hash(field, all, len, n + 3), fp);
	char *p = NULL;
	size_t sz = 0;
	FILE *f = open_memstream(&p, &sz);
	fprintf(f, "# cs-vocab 1\nfield\t%s\t%zu\t%s\n", field, n + 3, fp);
	for (size_t i = 0; i < n + 3; i++)
		fprintf(f, "%zu\t%s\t%zu\n", i, all[i], 10 - i);
	fclose(f);
	return p;
}

START_TEST(test_hand_written)
{
	const char *toks[] = { "x", "y", "" };
	char *text = valid_file("item", toks, 3);
	cs_error err;
	cs_vocab *v = from_text(text, &err);
	ck_assert_msg(v != NULL, "%s:%ld: %s", err.path, err.line, err.msg);
	ck_assert_uint_eq(cs_vocab_lookup(v, 0, "", 0), 5);
	ck_assert_uint_eq(cs_vocab_lookup(v, 0, "y", 1), 4);
	cs_vocab_free(v);
	free(text);
}
END_TEST

/* A file whose text is the valid one with `from` replaced by `to`. */
static void expect_bad(const char *from, const char *to, long line, const char *what, int code)
{
	const char *toks[] = { "x", "y", "z" };
	char *text = valid_file("item", toks, 3);
	char buf[1024];
	char *at = strstr(text, from);
	ck_assert_msg(at != NULL, "'%s' not in the test file", from);
	snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
	cs_error err;
	cs_vocab *v = from_text(buf, &err);
	ck_assert_msg(v == NULL, "accepted a file with '%s' for '%s'", to, from);
	ck_assert_str_eq(err.path, "v.txt");
	ck_assert_msg(err.line == line, "'%s': line %ld, expected %ld (%s)", to, err.line, line,
		      err.msg);
	ck_assert_msg(strstr(err.msg, what) != NULL, "'%s' lacks '%s'", err.msg, what);
	ck_assert_int_eq(err.code, code);
	free(text);
}

START_TEST(test_corrupt)
{
	/* lines: 1 header, 2 field, 3..5 reserved, 6 x, 7 y, 8 z */
	expect_bad("# cs-vocab 1", "# cs-vocab 2", 1, "newer", CS_ERR_VERSION);
	expect_bad("# cs-vocab 1", "id\ttoken", 1, "not a vocabulary", CS_ERR_FORMAT);
	expect_bad("4\ty\t", "5\ty\t", 7, "out of order", CS_ERR_FORMAT);
	expect_bad("5\tz\t", "5\tx\t", 8, "duplicate token 'x'", CS_ERR_FORMAT);
	expect_bad("5\tz\t", "5\t[UNK]\t", 8, "duplicate token '[UNK]'", CS_ERR_FORMAT);
	expect_bad("5\tz\t", "5\tz\tq\t", 8, "columns", CS_ERR_FORMAT);
	/* duplicates are found together at the section's end: still at their
	 * line (comment lines counted), and before any error further on */
	expect_bad("5\tz\t", "# a\n# b\n5\tx\t", 10, "duplicate token 'x' in 'item' (also id 3)",
		   CS_ERR_FORMAT);
	expect_bad("3\tx\t7\n4\ty\t6\n5\tz", "# a\n3\tx\t7\n4\ty\t6\n5\tx", 9, "(also id 3)",
		   CS_ERR_FORMAT);
	expect_bad("5\tz\t5\n", "5\ty\t5\n6\tq\t-1\n", 8, "duplicate token 'y'", CS_ERR_FORMAT);
	expect_bad("5\tz\t5\n", "5\ty\t5\n6\tq\n", 8, "duplicate token 'y'", CS_ERR_FORMAT);
	expect_bad("5\tz\t5\n", "5\tx\t5\nfield\taction\t3\t0000000000000000\n", 8,
		   "duplicate token 'x'", CS_ERR_FORMAT);
	expect_bad("4\ty\t", "4\tx\t", 7, "duplicate token 'x'", CS_ERR_FORMAT);
	expect_bad("1\t[MASK]", "1\tmask", 4, "reserved token '[MASK]'", CS_ERR_FORMAT);
	expect_bad("5\tz\t5", "5\tzz\t5", 2, "fingerprint mismatch", CS_ERR_FORMAT);
	expect_bad("5\tz\t5", "5\tz\t-5", 8, "invalid count", CS_ERR_FORMAT);
	expect_bad("\t6\t", "\t7\t", 2, "truncated", CS_ERR_FORMAT);
	expect_bad("\t6\t", "\t5\t", 8, "more ids", CS_ERR_FORMAT);
	expect_bad("\t6\t", "\tsix\t", 2, "invalid size", CS_ERR_FORMAT);
	expect_bad("\titem\t", "\tit em\t", 2, "invalid field name", CS_ERR_FORMAT);
	expect_bad("3\tx\t7\n", "3\tx\t7\r\n", 6, "carriage return", CS_ERR_FORMAT);
	expect_bad("5\tz\t5\n", "5\tz\t5", 8, "no newline", CS_ERR_FORMAT);
	expect_bad("field\titem", "field\titem\t1\nfield\titem", 2, "expected 'field", CS_ERR_FORMAT);
	expect_bad("field\titem", "0\tfoo\t1\nfield\titem", 2, "before the tokens", CS_ERR_FORMAT);

	/* a second section with the same name */
	const char *toks[] = { "x" };
	char *a = valid_file("item", toks, 1);
	char buf[512];
	snprintf(buf, sizeof buf, "%s%s", a, strchr(a, '\n') + 1);
	cs_error err;
	ck_assert_ptr_null(from_text(buf, &err));
	ck_assert_int_eq(err.line, 7);
	ck_assert_ptr_nonnull(strstr(err.msg, "duplicate section"));
	ck_assert_ptr_null(from_text("", &err));
	ck_assert_msg(strstr(err.msg, "empty") != NULL, "%s", err.msg);
	ck_assert_ptr_null(from_text("# cs-vocab 1\n", &err));
	ck_assert_ptr_nonnull(strstr(err.msg, "no 'field'"));
	free(a);
}
END_TEST

START_TEST(test_fingerprint)
{
	const char *a[] = { "[PAD]", "[MASK]", "[UNK]", "x", "y" };
	const char *b[] = { "[PAD]", "[MASK]", "[UNK]", "y", "x" };
	size_t len[] = { 5, 6, 5, 1, 1 };
	uint64_t fa = cs_vocab_hash("item", a, len, 5);
	ck_assert_uint_ne(fa, 0);
	ck_assert_uint_eq(fa, cs_vocab_hash("item", a, len, 5));
	ck_assert_uint_ne(fa, cs_vocab_hash("item", b, len, 5));  /* ids swapped */
	ck_assert_uint_ne(fa, cs_vocab_hash("items", a, len, 5)); /* field renamed */
	ck_assert_uint_ne(fa, cs_vocab_hash("item", a, len, 4));  /* token removed */
	/* token boundaries count: "ab","c" differs from "a","bc" */
	const char *c[] = { "ab", "c" }, *d[] = { "a", "bc" };
	size_t lc[] = { 2, 1 }, ld[] = { 1, 2 };
	ck_assert_uint_ne(cs_vocab_hash("f", c, lc, 2), cs_vocab_hash("f", d, ld, 2));
	/* a built vocabulary carries the hash of its tokens in id order */
	cs_vocab_opts o = { 0 };
	cs_vocab *v = build("u:x y y", ITEM, 1, &o, NULL);
	ck_assert_uint_eq(cs_vocab_fingerprint(v, 0), cs_vocab_hash("item", b, len, 5));
	cs_vocab_free(v);
	/* one more occurrence of x changes the order, so the fingerprint */
	v = build("u:x y y x x", ITEM, 1, &o, NULL);
	ck_assert_uint_eq(cs_vocab_fingerprint(v, 0), fa);
	cs_vocab_free(v);
}
END_TEST

START_TEST(test_code_round_trip)
{
	const char *const two[] = { "item", "action" };
	cs_vocab_opts o = { .min_count = 2 };
	cs_vocab *v = build(DATA, two, 2, &o, NULL); /* item: a b; action: view buy */
	cs_schema *s = schema();
	cs_error err;
	cs_vocab_coder *enc = cs_vocab_coder_new(v, s, "in.cseq", CS_VOCAB_ENCODE, NULL, &err);
	ck_assert_msg(enc != NULL, "%s", err.msg);
	const cs_schema *es = cs_vocab_coder_schema(enc);
	ck_assert_int_eq(es->f[0].type, CS_STRING);
	ck_assert_int_eq(es->f[1].type, CS_ID);
	ck_assert_uint_eq(es->f[1].vocab, cs_vocab_fingerprint(v, 0));
	ck_assert_int_eq(es->f[2].type, CS_ID);
	ck_assert_int_eq(es->f[3].type, CS_INT64);
	ck_assert_int_eq(s->f[1].type, CS_STRING); /* the input schema is untouched */

	cs_record in = { 0 }, mid = { 0 }, out = { 0 };
	seq(&in, s, "u9", "a q b");
	ck_assert_int_eq(cs_vocab_coder_run(enc, &in, &mid, &err), 1);
	ck_assert_uint_eq(mid.nevents, 3);
	ck_assert_uint_eq(mid.col[1].v.u32[0], 3);
	ck_assert_uint_eq(mid.col[1].v.u32[1], CS_VOCAB_UNK);
	ck_assert_uint_eq(mid.col[1].v.u32[2], 4);
	ck_assert_uint_eq(mid.col[3].v.i64[2], 1002);
	size_t len;
	ck_assert(memcmp(cs_col_str(&mid.col[0], 0, &len), "u9", 2) == 0);
	const cs_vocab_stat *st;
	ck_assert_uint_eq(cs_vocab_coder_stats(enc, &st), 2);
	ck_assert_str_eq(st[0].field, "item");
	ck_assert_uint_eq(st[0].values, 3);
	ck_assert_uint_eq(st[0].unknown, 1);
	ck_assert_uint_eq(st[1].unknown, 0);

	cs_vocab_coder *dec = cs_vocab_coder_new(v, es, "mid.cseq", CS_VOCAB_DECODE, NULL, &err);
	ck_assert_msg(dec != NULL, "%s", err.msg);
	ck_assert_int_eq(cs_vocab_coder_schema(dec)->f[1].type, CS_STRING);
	ck_assert_uint_eq(cs_vocab_coder_schema(dec)->f[1].vocab, 0);
	ck_assert_int_eq(cs_vocab_coder_run(dec, &mid, &out, &err), 1);
	const char *want[] = { "a", "[UNK]", "b" };
	for (size_t i = 0; i < 3; i++) {
		const char *t = cs_col_str(&out.col[1], i, &len);
		ck_assert_uint_eq(len, strlen(want[i]));
		ck_assert(memcmp(t, want[i], len) == 0);
	}
	ck_assert_uint_eq(cs_vocab_coder_stats(dec, &st), 2);
	ck_assert_uint_eq(st[0].unknown, 1);

	/* an id beyond the vocabulary */
	mid.col[1].v.u32[1] = 99;
	ck_assert_int_eq(cs_vocab_coder_run(dec, &mid, &out, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "out of range"));
	ck_assert_int_eq(err.record, 2);

	/* decoding a string stream, encoding an encoded one with another vocabulary */
	ck_assert_ptr_null(cs_vocab_coder_new(v, s, "in.cseq", CS_VOCAB_DECODE, NULL, &err));
	ck_assert_ptr_nonnull(strstr(err.msg, "no id field"));
	cs_schema *other = cs_schema_dup(es);
	other->f[1].vocab ^= 1;
	ck_assert_ptr_null(cs_vocab_coder_new(v, other, "x.cseq", CS_VOCAB_ENCODE, NULL, &err));
	ck_assert_ptr_nonnull(strstr(err.msg, "already encoded"));
	ck_assert_ptr_null(cs_vocab_coder_new(v, other, "x.cseq", CS_VOCAB_DECODE, NULL, &err));
	ck_assert_ptr_nonnull(strstr(err.msg, "another vocabulary for 'item'"));

	cs_schema_free(other);
	cs_record_free(&in);
	cs_record_free(&mid);
	cs_record_free(&out);
	cs_vocab_coder_free(enc);
	cs_vocab_coder_free(dec);
	cs_schema_free(s);
	cs_vocab_free(v);
}
END_TEST

START_TEST(test_drop_unknown)
{
	cs_vocab_opts o = { .min_count = 2 };
	cs_vocab *v = build(DATA, ITEM, 1, &o, NULL); /* a b */
	cs_schema *s = schema();
	cs_error err;
	cs_vocab_coder_opts co = { .drop_unknown = 1, .min_len = 2 };
	cs_vocab_coder *c = cs_vocab_coder_new(v, s, "in", CS_VOCAB_ENCODE, &co, &err);
	ck_assert_msg(c != NULL, "%s", err.msg);
	cs_record in = { 0 }, out = { 0 };
	seq(&in, s, "u1", "q a z b a");
	ck_assert_int_eq(cs_vocab_coder_run(c, &in, &out, &err), 1);
	ck_assert_uint_eq(out.nevents, 3);
	for (size_t i = 0; i < out.ncols; i++)
		if (s->f[i].level == CS_EVENT)
			ck_assert_uint_eq(out.col[i].n, 3);
	ck_assert_uint_eq(out.col[1].v.u32[1], 4);
	ck_assert_int_eq(out.col[3].v.i64[0], 1001); /* the times of the kept events */
	ck_assert_int_eq(out.col[3].v.i64[2], 1004);
	size_t len;
	const char *t = cs_col_str(&out.col[2], 2, &len);
	ck_assert(len == 3 && memcmp(t, "buy", 3) == 0);
	seq(&in, s, "u2", "q a z");
	ck_assert_int_eq(cs_vocab_coder_run(c, &in, &out, &err), 0);
	ck_assert_uint_eq(cs_vocab_coder_dropped_records(c), 1);
	ck_assert_uint_eq(cs_vocab_coder_dropped_events(c), 4);
	cs_vocab_coder_free(c);
	/* dropping needs the item field */
	co.item_field = "action";
	ck_assert_ptr_null(cs_vocab_coder_new(v, s, "in", CS_VOCAB_ENCODE, &co, &err));
	cs_record_free(&in);
	cs_record_free(&out);
	cs_schema_free(s);
	cs_vocab_free(v);
}
END_TEST

START_TEST(test_check_field)
{
	cs_vocab_opts o = { 0 };
	cs_vocab *v = build(DATA, ITEM, 1, &o, NULL);
	cs_schema *s = schema();
	cs_error err;
	ck_assert_int_eq(cs_vocab_check_field(v, s, "in.cseq", "item", &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "not encoded"));
	s->f[1].type = CS_ID;
	s->f[1].vocab = 0x1234;
	ck_assert_int_eq(cs_vocab_check_field(v, s, "in.cseq", "item", &err), -1);
	char want[256], fp[17];
	snprintf(want, sizeof want,
		 "'in.cseq' was encoded with another vocabulary for 'item' "
		 "(fingerprint 0000000000001234, vocabulary '' has %s): re-run cs-vocab encode",
		 cs_vocab_fpstr(cs_vocab_fingerprint(v, 0), fp));
	ck_assert_str_eq(err.msg, want);
	s->f[1].vocab = cs_vocab_fingerprint(v, 0);
	ck_assert_int_eq(cs_vocab_check_field(v, s, "in.cseq", "item", &err), 0);
	ck_assert_int_eq(cs_vocab_check_field(v, s, "in.cseq", "action", &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "no vocabulary for 'action'"));
	cs_schema_free(s);
	cs_vocab_free(v);
}
END_TEST

START_TEST(test_bad_token)
{
	cs_error err;
	cs_schema *s = schema();
	cs_vocab_builder *b = cs_vocab_builder_new(ITEM, 1, NULL, &err);
	ck_assert_int_eq(cs_vocab_builder_bind(b, s, "in", &err), 0);
	cs_record rec = { 0 };
	ck_assert_int_eq(cs_record_init(&rec, s, NULL), 0);
	/* the message names the record where the token first came */
	for (int r = 0; r < 3; r++) {
		const char *item = r == 1 ? "a\tb" : "x";
		cs_record_clear(&rec);
		cs_col_push_str(&rec.col[0], "u", 1);
		cs_col_push_str(&rec.col[1], item, strlen(item));
		cs_col_push_str(&rec.col[2], "v", 1);
		cs_col_push_i64(&rec.col[3], 1);
		rec.nevents = 1;
		ck_assert_int_eq(cs_vocab_builder_add(b, &rec, &err), 0);
	}
	ck_assert_ptr_null(cs_vocab_builder_finish(b, NULL, &err));
	ck_assert_ptr_nonnull(strstr(err.msg, "tab or line break"));
	ck_assert_int_eq(err.record, 2);
	cs_vocab_builder_free(b);
	/* a NUL byte, first in record 3 */
	b = cs_vocab_builder_new(ITEM, 1, NULL, &err);
	ck_assert_int_eq(cs_vocab_builder_bind(b, s, "in", &err), 0);
	for (int r = 0; r < 3; r++) {
		cs_record_clear(&rec);
		cs_col_push_str(&rec.col[0], "u", 1);
		cs_col_push_str(&rec.col[1], r == 2 ? "a\0b" : "x", r == 2 ? 3 : 1);
		cs_col_push_str(&rec.col[2], "v", 1);
		cs_col_push_i64(&rec.col[3], 1);
		rec.nevents = 1;
		ck_assert_int_eq(cs_vocab_builder_add(b, &rec, &err), 0);
	}
	ck_assert_ptr_null(cs_vocab_builder_finish(b, NULL, &err));
	ck_assert_ptr_nonnull(strstr(err.msg, "NUL byte"));
	ck_assert_int_eq(err.record, 3);
	cs_vocab_builder_free(b);
	/* fields must be strings that exist */
	const char *const t[] = { "time" };
	b = cs_vocab_builder_new(t, 1, NULL, &err);
	ck_assert_int_eq(cs_vocab_builder_bind(b, s, "in", &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "not a string"));
	cs_vocab_builder_free(b);
	const char *const nope[] = { "brand" };
	b = cs_vocab_builder_new(nope, 1, NULL, &err);
	ck_assert_int_eq(cs_vocab_builder_bind(b, s, "in", &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "no field 'brand'"));
	cs_vocab_builder_free(b);
	cs_record_free(&rec);
	cs_schema_free(s);
}
END_TEST

/* w holds the tokens, ids and counts of v, and finds each token. */
static void same_vocab(const cs_vocab *v, const cs_vocab *w)
{
	ck_assert_uint_eq(cs_vocab_nfields(w), cs_vocab_nfields(v));
	for (size_t f = 0; f < cs_vocab_nfields(v); f++) {
		ck_assert_uint_eq(cs_vocab_size(w, f), cs_vocab_size(v, f));
		ck_assert(cs_vocab_fingerprint(w, f) == cs_vocab_fingerprint(v, f));
		for (uint32_t id = 0; id < cs_vocab_size(v, f); id++) {
			size_t a, b;
			const char *s = cs_vocab_token(v, f, id, &a), *t = cs_vocab_token(w, f, id, &b);
			ck_assert(a == b && !memcmp(s, t, a));
			ck_assert_uint_eq(cs_vocab_count(w, f, id), cs_vocab_count(v, f, id));
			if (id >= CS_VOCAB_RESERVED)
				ck_assert_uint_eq(cs_vocab_lookup(w, f, s, a), id);
		}
	}
}

/* v written out and read back, from a file and from a stream (fmemopen:
 * no size to go by), is v again both ways. */
static void read_back_same(const cs_vocab *v)
{
	cs_error err;
	char *text = to_text(v);
	cs_vocab *m = from_text(text, &err);
	ck_assert_msg(m != NULL, "%s", err.msg);
	same_vocab(v, m);
	FILE *fp = tmpfile();
	ck_assert(fputs(text, fp) >= 0 && fflush(fp) == 0);
	rewind(fp);
	cs_vocab *f = cs_vocab_read_file(fp, "tmp", &err);
	fclose(fp);
	ck_assert_msg(f != NULL, "%s", err.msg);
	same_vocab(v, f);
	char *a = to_text(m), *b = to_text(f); /* v's comment is not read */
	ck_assert_msg(strcmp(a, b) == 0, "the two copies write different texts");
	free(a);
	free(b);
	free(text);
	cs_vocab_free(m);
	cs_vocab_free(f);
}

/* Long tokens (past the bytes a file's table is sized for at first), in
 * two fields. */
START_TEST(test_long_tokens)
{
	cs_error err;
	cs_schema *s = schema();
	const char *const two[] = { "item", "action" };
	cs_vocab_builder *b = cs_vocab_builder_new(two, 2, NULL, &err);
	ck_assert_int_eq(cs_vocab_builder_bind(b, s, "in", &err), 0);
	cs_record rec = { 0 };
	ck_assert_int_eq(cs_record_init(&rec, s, NULL), 0);
	cs_col_push_str(&rec.col[0], "u", 1);
	char buf[400];
	for (int i = 0; i < 3000; i++) {
		int n = snprintf(buf, sizeof buf, "%0*d", 100 + i % 250, i);
		cs_col_push_str(&rec.col[1], buf, (size_t)n);
		cs_col_push_str(&rec.col[2], buf, (size_t)(i % 7 + 1));
		cs_col_push_i64(&rec.col[3], 0);
		rec.nevents++;
	}
	ck_assert_int_eq(cs_vocab_builder_add(b, &rec, &err), 0);
	cs_vocab *v = cs_vocab_builder_finish(b, NULL, &err);
	ck_assert_ptr_nonnull(v);
	ck_assert_uint_eq(cs_vocab_size(v, 0), 3003);
	read_back_same(v);
	cs_vocab_free(v);
	cs_vocab_builder_free(b);
	cs_record_free(&rec);
	cs_schema_free(s);
}
END_TEST

/* Many tokens: the table grows and every lookup still finds its id. */
START_TEST(test_many_tokens)
{
	cs_error err;
	cs_schema *s = schema();
	cs_vocab_builder *b = cs_vocab_builder_new(ITEM, 1, NULL, &err);
	ck_assert_int_eq(cs_vocab_builder_bind(b, s, "in", &err), 0);
	cs_record rec = { 0 };
	enum { N = 200000 };
	char buf[32];
	ck_assert_int_eq(cs_record_init(&rec, s, NULL), 0);
	cs_col_push_str(&rec.col[0], "u", 1);
	for (int i = 0; i < N; i++) {
		int n = snprintf(buf, sizeof buf, "tok%d", i);
		/* token i appears 1 + (i % 5) times */
		for (int k = 0; k <= i % 5; k++) {
			cs_col_push_str(&rec.col[1], buf, (size_t)n);
			cs_col_push_str(&rec.col[2], "v", 1);
			cs_col_push_i64(&rec.col[3], 0);
			rec.nevents++;
		}
	}
	ck_assert_int_eq(cs_vocab_builder_add(b, &rec, &err), 0);
	cs_vocab *v = cs_vocab_builder_finish(b, NULL, &err);
	ck_assert_uint_eq(cs_vocab_size(v, 0), N + 3);
	for (int i = 0; i < N; i++) {
		int n = snprintf(buf, sizeof buf, "tok%d", i);
		uint32_t id = cs_vocab_lookup(v, 0, buf, (size_t)n);
		ck_assert_uint_ge(id, 3);
		ck_assert_uint_eq(cs_vocab_count(v, 0, id), (uint64_t)(1 + i % 5));
		size_t len;
		const char *t = cs_vocab_token(v, 0, id, &len);
		ck_assert(len == (size_t)n && memcmp(t, buf, len) == 0);
	}
	/* counts never increase with the id */
	for (uint32_t id = 4; id < cs_vocab_size(v, 0); id++)
		ck_assert_uint_le(cs_vocab_count(v, 0, id), cs_vocab_count(v, 0, id - 1));
	/* read back from a file (the table sized once from its 'field' line)
	 * and from a stream of unknown size (sized for 65536, then grown) */
	read_back_same(v);
	cs_vocab_free(v);
	cs_vocab_builder_free(b);
	cs_record_free(&rec);
	cs_schema_free(s);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vocab");
	TCase *tc = tcase_create("vocab");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_build_order);
	tcase_add_test(tc, test_min_count_max_size);
	tcase_add_test(tc, test_kcore);
	tcase_add_test(tc, test_file_round_trip);
	tcase_add_test(tc, test_hand_written);
	tcase_add_test(tc, test_corrupt);
	tcase_add_test(tc, test_fingerprint);
	tcase_add_test(tc, test_code_round_trip);
	tcase_add_test(tc, test_drop_unknown);
	tcase_add_test(tc, test_check_field);
	tcase_add_test(tc, test_bad_token);
	tcase_add_test(tc, test_many_tokens);
	tcase_add_test(tc, test_long_tokens);
	suite_add_tcase(s, tc);
	return check_run(s);
}
