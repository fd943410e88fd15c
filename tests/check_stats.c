/* check_stats.c - unit tests of stream statistics: counts, funnel, lengths, estimates, memory. */
#include <check.h>
#include "check_run.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "stats.h"

/* user, session (seq strings), item, action, brand (event strings), time (event int64). */
static cs_schema *schema(int with_actions)
{
	cs_schema *s = cs_schema_new();
	cs_schema_add(s, "user", CS_SEQ, CS_STRING, NULL);
	cs_schema_add(s, "item", CS_EVENT, CS_STRING, NULL);
	if (with_actions) {
		cs_schema_add(s, "session", CS_SEQ, CS_STRING, NULL);
		cs_schema_add(s, "action", CS_EVENT, CS_STRING, NULL);
		cs_schema_add(s, "brand", CS_EVENT, CS_STRING, NULL);
		cs_schema_add(s, "time", CS_EVENT, CS_INT64, NULL);
	}
	return s;
}

static void push(cs_column *c, const char *v)
{
	ck_assert_int_eq(cs_col_push_str(c, v, strlen(v)), 0);
}

/* One session: events "item/action/brand" separated by spaces, times t0, t0+60, ... */
static void add(cs_stats *st, const cs_schema *s, const char *user, const char *session,
		int64_t t0, const char *events)
{
	cs_record rec = { 0 };
	cs_error err;
	ck_assert_int_eq(cs_record_init(&rec, s, NULL), 0);
	push(&rec.col[0], user);
	int full = s->nfields > 2;
	if (full)
		push(&rec.col[2], session);
	char buf[512];
	snprintf(buf, sizeof buf, "%s", events);
	char *save = NULL;
	size_t n = 0;
	for (char *e = strtok_r(buf, " ", &save); e; e = strtok_r(NULL, " ", &save), n++) {
		char *a = strchr(e, '/');
		char *b = a ? strchr(a + 1, '/') : NULL;
		if (a)
			*a++ = 0;
		if (b)
			*b++ = 0;
		push(&rec.col[1], e);
		if (full) {
			push(&rec.col[3], a ? a : "view");
			push(&rec.col[4], b ? b : "");
			cs_col_push_i64(&rec.col[5], t0 + 60 * (int64_t)n);
		}
	}
	rec.nevents = n;
	ck_assert_msg(cs_stats_add(st, &rec, &err) == 0, "%s", err.msg);
	cs_record_free(&rec);
}

static char *output(cs_stats *st, int format)
{
	char *buf = NULL;
	size_t len = 0;
	cs_error err;
	FILE *fp = open_memstream(&buf, &len);
	ck_assert_ptr_nonnull(fp);
	ck_assert_msg(cs_stats_write(st, fp, "mem", format, &err) == 0, "%s", err.msg);
	fclose(fp);
	return buf;
}

/* The value of row "section key", or NULL. */
static const char *row(const char *out, const char *sec, const char *key)
{
	static char val[256];
	char want[256];
	snprintf(want, sizeof want, "%s\t%s\t", sec, key);
	for (const char *p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, want, strlen(want)) == 0) {
			const char *v = p + strlen(want);
			size_t n = strcspn(v, "\n");
			snprintf(val, sizeof val, "%.*s", (int)n, v);
			return val;
		}
	}
	return NULL;
}

#define ROW_EQ(out, sec, key, want)                                                   \
	do {                                                                          \
		const char *v_ = row(out, sec, key);                                  \
		ck_assert_msg(v_ && strcmp(v_, want) == 0, "%s %s: got %s, want %s", \
			      sec, key, v_ ? v_ : "(none)", want);                    \
	} while (0)

START_TEST(test_counts_and_funnel)
{
	cs_schema *s = schema(1);
	cs_error err;
	cs_stats_opts o = { 2, NULL, "t" };
	cs_stats *st = cs_stats_new(s, &o, &err);
	ck_assert_ptr_nonnull(st);
	/* 2019-10-01 00:00:00 UTC = 1569888000 */
	add(st, s, "u1", "s1", 1569888000, "a b/cart/acme b/purchase/acme");
	add(st, s, "u1", "s2", 1569888000 + 3600, "a c/view/zeta");
	add(st, s, "u2", "s3", 1569888000 + 86400, "a/purchase");
	char *out = output(st, CS_STATS_TSV);
	ROW_EQ(out, "stream", "records", "3");
	ROW_EQ(out, "stream", "events", "6");
	ROW_EQ(out, "unique", "users", "2");
	ROW_EQ(out, "unique", "sessions", "3");
	ROW_EQ(out, "unique", "item", "3");
	ROW_EQ(out, "unique", "brand", "2");
	ROW_EQ(out, "action", "view", "3");
	ROW_EQ(out, "action", "purchase", "2");
	ROW_EQ(out, "action", "cart", "1");
	ROW_EQ(out, "sessions_with", "view", "2");
	ROW_EQ(out, "sessions_with", "purchase", "2");
	ROW_EQ(out, "users_with", "purchase", "2");
	ROW_EQ(out, "users_with", "cart", "1");
	ROW_EQ(out, "funnel", "session_view", "0.666667");
	ROW_EQ(out, "funnel", "session_cart", "0.333333");
	ROW_EQ(out, "funnel", "user_purchase", "1");
	ROW_EQ(out, "time", "first", "2019-10-01T00:00:00Z");
	ROW_EQ(out, "time", "last", "2019-10-02T00:00:00Z");
	ROW_EQ(out, "time", "days", "2");
	ROW_EQ(out, "day", "2019-10-01", "5");
	ROW_EQ(out, "day", "2019-10-02", "1");
	ROW_EQ(out, "hour", "00", "4");
	ROW_EQ(out, "hour", "01", "2");
	ROW_EQ(out, "top_item", "a", "3");
	ROW_EQ(out, "top_item", "b", "2");
	ck_assert_ptr_null(row(out, "top_item", "c")); /* top 2 */
	ROW_EQ(out, "top_brand", "acme", "2");
	ROW_EQ(out, "empty", "brand", "3");
	ROW_EQ(out, "empty", "item", "0");
	ROW_EQ(out, "popularity", "items", "3");
	ROW_EQ(out, "popularity", "top1pct_share", "0.5");
	ROW_EQ(out, "popularity", "items_seen_once", "1");
	ROW_EQ(out, "length", "min", "1");
	ROW_EQ(out, "length", "max", "3");
	ROW_EQ(out, "length", "single_event", "1");
	ck_assert_ptr_null(row(out, "missing", "action"));
	ck_assert_ptr_null(row(out, "missing", "session"));
	ck_assert_ptr_null(row(out, "missing", "time"));
	ROW_EQ(out, "missing", "category", "no 'category' field: no top categories");
	ck_assert_ptr_null(strstr(out, "estimated\t"));
	free(out);
	cs_stats_free(st);
	cs_schema_free(s);
}
END_TEST

START_TEST(test_missing_rows)
{
	cs_schema *s = schema(0);
	cs_error err;
	cs_stats *st = cs_stats_new(s, NULL, &err);
	add(st, s, "u1", NULL, 0, "a b");
	add(st, s, "u2", NULL, 0, "a");
	char *out = output(st, CS_STATS_TSV);
	ROW_EQ(out, "unique", "users", "2");
	ROW_EQ(out, "missing", "action", "no 'action' field: no events per type, no funnel");
	ROW_EQ(out, "missing", "session",
	       "no 'session' field: no unique sessions, no funnel per session");
	ROW_EQ(out, "missing", "time", "no 'time' field: no time range, no events per day or hour");
	/* nothing printed as zeros for what is missing */
	ck_assert_ptr_null(strstr(out, "\nfunnel\t"));
	ck_assert_ptr_null(strstr(out, "\naction\t"));
	ck_assert_ptr_null(strstr(out, "\nday\t"));
	ck_assert_ptr_null(row(out, "unique", "sessions"));
	free(out);
	out = output(st, CS_STATS_JSON);
	ck_assert_ptr_nonnull(strstr(out, "\"missing\":{\"session\":\"no 'session' field"));
	ck_assert_ptr_nonnull(strstr(out, "\"unique\":{\"users\":2,\"item\":2}"));
	free(out);
	cs_stats_free(st);
	cs_schema_free(s);
}
END_TEST

START_TEST(test_length_quantiles)
{
	cs_schema *s = schema(0);
	cs_error err;
	cs_stats *st = cs_stats_new(s, NULL, &err);
	cs_record rec = { 0 };
	ck_assert_int_eq(cs_record_init(&rec, s, NULL), 0);
	for (int n = 1; n <= 100; n++) {
		cs_record_clear(&rec);
		push(&rec.col[0], "u");
		for (int i = 0; i < n; i++)
			push(&rec.col[1], "x");
		rec.nevents = (size_t)n;
		ck_assert_int_eq(cs_stats_add(st, &rec, &err), 0);
	}
	char *out = output(st, CS_STATS_TSV);
	ROW_EQ(out, "length", "p50", "50");
	ROW_EQ(out, "length", "p90", "90");
	ROW_EQ(out, "length", "p99", "99");
	ROW_EQ(out, "length", "mean", "50.5");
	ROW_EQ(out, "length", "max", "100");
	free(out);
	cs_record_free(&rec);
	cs_stats_free(st);
	cs_schema_free(s);
}
END_TEST

/* n records of one view each, users and sessions all distinct. */
static cs_stats *many(cs_schema *s, long n)
{
	cs_error err;
	cs_stats *st = cs_stats_new(s, NULL, &err);
	cs_record rec = { 0 };
	ck_assert_int_eq(cs_record_init(&rec, s, NULL), 0);
	char buf[32];
	for (long i = 0; i < n; i++) {
		cs_record_clear(&rec);
		int len = snprintf(buf, sizeof buf, "u%ld", i);
		cs_col_push_str(&rec.col[0], buf, (size_t)len);
		cs_col_push_str(&rec.col[1], "item", 4);
		cs_col_push_str(&rec.col[2], buf + 1, (size_t)len - 1);
		cs_col_push_str(&rec.col[3], "view", 4);
		cs_col_push_str(&rec.col[4], "", 0);
		cs_col_push_i64(&rec.col[5], 1569888000 + i);
		rec.nevents = 1;
		ck_assert_int_eq(cs_stats_add(st, &rec, &err), 0);
	}
	cs_record_free(&rec);
	return st;
}

START_TEST(test_exact_up_to_limit)
{
	cs_schema *s = schema(1);
	cs_stats *st = many(s, CS_STATS_EXACT);
	char *out = output(st, CS_STATS_TSV);
	ROW_EQ(out, "unique", "users", "65536");
	ROW_EQ(out, "users_with", "view", "65536");
	ck_assert_ptr_null(strstr(out, "estimated\t"));
	free(out);
	cs_stats_free(st);
	cs_schema_free(s);
}
END_TEST

/* Beyond the exact limit: HyperLogLog within 4 standard errors, in bounded memory. */
START_TEST(test_estimate)
{
	cs_schema *s = schema(1);
	long ns[] = { 70000, 300000, 2000000 };
	for (size_t k = 0; k < 3; k++) {
		cs_stats *st = many(s, ns[k]);
		char *out = output(st, CS_STATS_TSV);
		const char *v = row(out, "unique", "users");
		ck_assert_ptr_nonnull(v);
		double got = atof(v), rel = fabs(got - (double)ns[k]) / (double)ns[k];
		ck_assert_msg(rel < 4 * 0.0041, "%ld users estimated as %.0f", ns[k], got);
		ROW_EQ(out, "estimated", "users", "0.0040625");
		ROW_EQ(out, "estimated", "sessions_with view", "0.0040625");
		ROW_EQ(out, "stream", "records", k == 0 ? "70000" : k == 1 ? "300000" : "2000000");
		/* the counters hold 64 KiB each, whatever the users */
		ck_assert_msg(cs_stats_memory(st) < (2u << 20), "%zu bytes", cs_stats_memory(st));
		free(out);
		cs_stats_free(st);
	}
	cs_schema_free(s);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("stats");
	TCase *tc = tcase_create("stats");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_counts_and_funnel);
	tcase_add_test(tc, test_missing_rows);
	tcase_add_test(tc, test_length_quantiles);
	tcase_add_test(tc, test_exact_up_to_limit);
	tcase_add_test(tc, test_estimate);
	suite_add_tcase(s, tc);
	return check_run(s);
}
