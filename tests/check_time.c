/* check_time.c - unit tests of time parsing: every format, the calendar's
 * limits, format names. */
#include <check.h>
#include "check_run.h"
#include "time.h"

START_TEST(test_time_formats)
{
	int64_t ms;
	ck_assert_int_eq(cs_time_parse("2019-10-01 00:00:00 UTC", 23, CS_TIME_ISO, NULL, &ms), 0);
	ck_assert_int_eq(ms, 1569888000000LL);
	ck_assert_int_eq(cs_time_parse("2019-10-01T02:50:07Z", 20, CS_TIME_ISO, NULL, &ms), 0);
	ck_assert_int_eq(ms, (1569888000LL + 2 * 3600 + 50 * 60 + 7) * 1000);
	ck_assert_int_eq(cs_time_parse("2016-05-09", 10, CS_TIME_ISO, NULL, &ms), 0);
	ck_assert_int_eq(ms, 1462752000000LL);
	ck_assert_int_eq(cs_time_parse("1970-01-01 00:00:00.250", 23, CS_TIME_ISO, NULL, &ms), 0);
	ck_assert_int_eq(ms, 250);
	ck_assert_int_eq(cs_time_parse("1969-12-31 23:59:59", 19, CS_TIME_ISO, NULL, &ms), 0);
	ck_assert_int_eq(ms, -1000);
	/* days beyond their month are not dates */
	static const char *const bad_dates[] = { "2019-02-30", "2019-02-29", "1900-02-29",
						 "2019-04-31", "2019-13-01", "2019-00-10" };
	for (size_t i = 0; i < sizeof bad_dates / sizeof *bad_dates; i++)
		ck_assert_msg(cs_time_parse(bad_dates[i], 10, CS_TIME_ISO, NULL, &ms) < 0,
			      "%s accepted", bad_dates[i]);
	ck_assert_int_eq(cs_time_parse("2020-02-29", 10, CS_TIME_AUTO, NULL, &ms), 0);
	ck_assert_int_eq(cs_time_parse("2000-02-29", 10, CS_TIME_ISO, NULL, &ms), 0);
	ck_assert_int_eq(cs_time_parse("12/31/2010 8:26", 15, CS_TIME_AUTO, NULL, &ms), 0);
	ck_assert_int_lt(cs_time_parse("4/31/2011 8:26", 14, CS_TIME_AUTO, NULL, &ms), 0);
	ck_assert_int_eq(cs_time_parse("2000-02-29 12:00:00", 19, CS_TIME_ISO, NULL, &ms), 0);
	ck_assert_int_eq(ms, 951825600000LL);
	ck_assert_int_eq(cs_time_parse("12/1/2010 8:26", 14, CS_TIME_AUTO, NULL, &ms), 0);
	ck_assert_int_eq(ms, 1291191960000LL);
	ck_assert_int_eq(cs_time_parse("2010-12-01 08:26:00", 19, CS_TIME_AUTO, NULL, &ms), 0);
	ck_assert_int_eq(ms, 1291191960000LL);
	ck_assert_int_eq(cs_time_parse("1369699200", 10, CS_TIME_UNIX, NULL, &ms), 0);
	ck_assert_int_eq(ms, 1369699200000LL);
	ck_assert_int_eq(cs_time_parse("1369699200123", 13, CS_TIME_UNIX_MS, NULL, &ms), 0);
	ck_assert_int_eq(ms, 1369699200123LL);
	ck_assert_int_eq(cs_time_parse("01.12.2010 08:26", 16, CS_TIME_PATTERN,
					      "%d.%m.%Y %H:%M", &ms), 0);
	ck_assert_int_eq(ms, 1291191960000LL);
	/* junk */
	ck_assert_int_eq(cs_time_parse("2019-13-01 00:00:00", 19, CS_TIME_ISO, NULL, &ms), -1);
	ck_assert_int_eq(cs_time_parse("2019-10-01 00:00:00 CET", 23, CS_TIME_ISO, NULL, &ms), -1);
	ck_assert_int_eq(cs_time_parse("2019-10-0", 9, CS_TIME_ISO, NULL, &ms), -1);
	ck_assert_int_eq(cs_time_parse("12x", 3, CS_TIME_UNIX, NULL, &ms), -1);
	ck_assert_int_eq(cs_time_parse("", 0, CS_TIME_UNIX, NULL, &ms), -1);
	ck_assert_int_eq(cs_time_parse("13/1/2010 8:26", 14, CS_TIME_AUTO, NULL, &ms), -1);
	ck_assert_int_eq(cs_time_parse("1.12.2010", 9, CS_TIME_PATTERN, "%d.%m.%Y %H", &ms), -1);
	ck_assert_int_eq(cs_time_format("unix-ms"), CS_TIME_UNIX_MS);
	ck_assert_int_eq(cs_time_format("%Y"), CS_TIME_PATTERN);
	ck_assert_int_eq(cs_time_format("bogus"), -1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("time");
	TCase *tc = tcase_create("time");
	tcase_add_test(tc, test_time_formats);
	suite_add_tcase(s, tc);
	return check_run(s);
}
