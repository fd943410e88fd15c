/* check_csvread.c - unit tests of the CSV splitter and block reader: rows
 * of fields with their line numbers, quotes across lines, broken quoting,
 * blank lines, CRLF, runs of spaces, the header, blocks that end at a
 * record's end. */
#include <check.h>
#include "check_run.h"
#include <stdlib.h>
#include <string.h>
#include "csvread.h"

/* The rows of text as "line:field|field;" (broken rows as "line:!why;"). */
static char *rows(const char *text, char sep)
{
	static char out[1024];
	cs_csv c;
	long line;
	int r;
	size_t n = 0;
	cs_csv_init(&c, sep);
	cs_csv_start(&c, text, strlen(text), strchr(text, '"') != NULL);
	while ((r = cs_csv_next(&c, &line)) > 0) {
		n += (size_t)snprintf(out + n, sizeof out - n, "%ld:", line);
		if (r == 2)
			n += (size_t)snprintf(out + n, sizeof out - n, "!%s", c.bad);
		for (size_t i = 0; r == 1 && i < c.nf; i++)
			n += (size_t)snprintf(out + n, sizeof out - n, "%s%.*s", i ? "|" : "",
					      (int)c.f[i].n, c.f[i].p);
		n += (size_t)snprintf(out + n, sizeof out - n, ";");
	}
	ck_assert_int_eq(r, 0);
	cs_csv_free(&c);
	return out;
}

START_TEST(test_rows_and_lines)
{
	ck_assert_str_eq(rows("a,b\n\nc,,d\r\n", ','), "1:a|b;3:c||d;");
	ck_assert_str_eq(rows("x,\"two\nlines\",y\nz\n", ','), "1:x|two\nlines|y;3:z;");
	ck_assert_str_eq(rows("\"a\"\"b\",c\n", ','), "1:a\"b|c;");
	ck_assert_str_eq(rows("1 a\n2   b  c\n", ' '), "1:1|a;2:2|b|c;");
	/* sixteen bytes at a time and the tail: many fields on one line */
	ck_assert_str_eq(rows("a;b;c;d;e;f;g;h;i;j;k;l;m;n;o;p;q;r;s\n", ';'),
			 "1:a|b|c|d|e|f|g|h|i|j|k|l|m|n|o|p|q|r|s;");
}
END_TEST

START_TEST(test_broken_quoting)
{
	ck_assert_str_eq(rows("a,b\"c,d\ne,f\n", ','), "1:!broken quoting;2:e|f;");
	ck_assert_str_eq(rows("a,\"open\nb,c\n", ','), "1:!unterminated quoted field;");
}
END_TEST

START_TEST(test_first_record)
{
	cs_csv c;
	size_t used = 0;
	cs_csv_init(&c, ',');
	ck_assert_int_eq(cs_csv_first(&c, "u,i\r\n1,2\n", 9, &used), 1);
	ck_assert_int_eq(used, 5);
	ck_assert_int_eq(c.nf, 2);
	ck_assert_int_eq(cs_csv_first(&c, "\"u\",\"i\nx\"\n1,2\n", 14, &used), 1);
	ck_assert_int_eq(used, 10);
	ck_assert_int_eq(c.f[1].n, 3);
	ck_assert_int_eq(cs_csv_first(&c, "\n1,2\n", 5, &used), 1); /* blank, not skipped */
	ck_assert_int_eq(used, 1);
	ck_assert_int_eq(cs_csv_first(&c, "a\"b\",c\n", 7, &used), 2);
	cs_csv_free(&c);
}
END_TEST

START_TEST(test_blocks_end_at_records)
{
	const char *text = "a,\"x\ny\"\nb,c\nd,e\n";
	FILE *fp = fmemopen((void *)text, strlen(text), "r");
	ck_assert_ptr_nonnull(fp);
	cs_csv_reader rd = { fp, "mem", { 0 }, 0 };
	cs_buf b = { 0 };
	cs_error err;
	int quoted, r;
	char got[256] = "";
	/* 4-byte blocks: each grows to hold a whole record */
	while ((r = cs_csv_read_block(&rd, &b, 4, &quoted, &err)) > 0) {
		strncat(got, (char *)b.p, b.n);
		strcat(got, "|");
	}
	ck_assert_int_eq(r, 0);
	ck_assert_str_eq(got, "a,\"x\ny\"\n|b,c\n|d,e\n|");
	free(b.p);
	cs_csv_reader_free(&rd);
	fclose(fp);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("csvread");
	TCase *tc = tcase_create("csvread");
	tcase_add_test(tc, test_rows_and_lines);
	tcase_add_test(tc, test_broken_quoting);
	tcase_add_test(tc, test_first_record);
	tcase_add_test(tc, test_blocks_end_at_records);
	suite_add_tcase(s, tc);
	return check_run(s);
}
