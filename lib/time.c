/*
 * time.c - times of CSV fields to milliseconds since the epoch (UTC), by
 * hand for the fixed formats (the ingest parses one a row) and through
 * strptime(3) for patterns.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "time.h"

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* Exactly k digits at s into *v. */
static int digits(const char *s, int k, unsigned *v)
{
	unsigned x = 0;
	for (int i = 0; i < k; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		x = x * 10 + (unsigned)(s[i] - '0');
	}
	*v = x;
	return 0;
}

/* One or two digits at *s, advancing it. */
static int digits12(const char **s, const char *e, unsigned *v)
{
	const char *p = *s;
	if (p >= e || *p < '0' || *p > '9')
		return -1;
	unsigned x = (unsigned)(*p++ - '0');
	if (p < e && *p >= '0' && *p <= '9')
		x = x * 10 + (unsigned)(*p++ - '0');
	*s = p;
	*v = x;
	return 0;
}

/* A real calendar date and time of day (a leap second allowed). */
static int valid_ymdhms(unsigned y, unsigned mo, unsigned d, unsigned h, unsigned mi,
			unsigned se)
{
	static const unsigned char mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return mo >= 1 && mo <= 12 && d >= 1 && d <= mdays[mo - 1] &&
	       !(mo == 2 && d == 29 && !leap) && h <= 23 && mi <= 59 && se <= 60;
}

/* Optional ':SS[.fff]', then an optional UTC marker, then the end. */
static int time_tail(const char *p, const char *e, unsigned *se, unsigned *frac)
{
	*se = 0;
	*frac = 0;
	if (p < e && *p == ':') {
		if (e - p < 3 || digits(p + 1, 2, se) < 0)
			return -1;
		p += 3;
		if (p < e && *p == '.') {
			unsigned scale = 100;
			for (p++; p < e && *p >= '0' && *p <= '9'; p++) {
				*frac += (unsigned)(*p - '0') * scale;
				scale /= 10;
			}
		}
	}
	if (p < e && *p == ' ')
		p++;
	size_t rest = (size_t)(e - p);
	if (rest == 0 || (rest == 1 && *p == 'Z') || (rest == 3 && !memcmp(p, "UTC", 3)) ||
	    (rest == 6 && !memcmp(p, "+00:00", 6)) || (rest == 5 && !memcmp(p, "+0000", 5)))
		return 0;
	return -1;
}

static int parse_iso(const char *s, size_t n, int64_t *ms)
{
	unsigned y, mo, d, h = 0, mi = 0, se = 0, frac = 0;
	const char *e = s + n;
	if (n < 10 || digits(s, 4, &y) < 0 || s[4] != '-' || digits(s + 5, 2, &mo) < 0 ||
	    s[7] != '-' || digits(s + 8, 2, &d) < 0)
		return -1;
	if (n > 10) {
		if ((s[10] != ' ' && s[10] != 'T') || n < 16 || digits(s + 11, 2, &h) < 0 ||
		    s[13] != ':' || digits(s + 14, 2, &mi) < 0 ||
		    time_tail(s + 16, e, &se, &frac) < 0)
			return -1;
	}
	if (!valid_ymdhms(y, mo, d, h, mi, se))
		return -1;
	*ms = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se) * 1000) + frac;
	return 0;
}

/* M/D/YYYY[ H:MM[:SS]] */
static int parse_us(const char *s, size_t n, int64_t *ms)
{
	const char *p = s, *e = s + n;
	unsigned y, mo, d, h = 0, mi = 0, se = 0, frac = 0;
	if (digits12(&p, e, &mo) < 0 || p >= e || *p++ != '/' || digits12(&p, e, &d) < 0 ||
	    p >= e || *p++ != '/' || e - p < 4 || digits(p, 4, &y) < 0)
		return -1;
	p += 4;
	if (p < e) {
		if (*p++ != ' ' || digits12(&p, e, &h) < 0 || p >= e || *p++ != ':' ||
		    e - p < 2 || digits(p, 2, &mi) < 0 || time_tail(p + 2, e, &se, &frac) < 0)
			return -1;
	}
	if (!valid_ymdhms(y, mo, d, h, mi, se))
		return -1;
	*ms = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se) * 1000) + frac;
	return 0;
}

/* [-]digits[.digits] scaled by mult (1000 for seconds, 1 for ms). */
static int parse_unix(const char *s, size_t n, int64_t mult, int64_t *ms)
{
	const char *p = s, *e = s + n;
	int neg = 0;
	if (p < e && *p == '-') {
		neg = 1;
		p++;
	}
	if (p >= e || *p < '0' || *p > '9')
		return -1;
	int64_t v = 0;
	for (; p < e && *p >= '0' && *p <= '9'; p++) {
		if (v > (INT64_MAX / 1000 - 9) / 10)
			return -1;
		v = v * 10 + (*p - '0');
	}
	v *= mult;
	if (p < e && *p == '.') {
		int64_t scale = mult / 10;
		for (p++; p < e && *p >= '0' && *p <= '9'; p++) {
			v += (*p - '0') * scale;
			scale /= 10;
		}
	}
	if (p != e)
		return -1;
	*ms = neg ? -v : v;
	return 0;
}

int cs_time_parse(const char *s, size_t n, int fmt, const char *pattern, int64_t *ms)
{
	switch (fmt) {
	case CS_TIME_UNIX:
		return parse_unix(s, n, 1000, ms);
	case CS_TIME_UNIX_MS:
		return parse_unix(s, n, 1, ms);
	case CS_TIME_ISO:
		return parse_iso(s, n, ms);
	case CS_TIME_AUTO:
		if (parse_iso(s, n, ms) == 0 || parse_us(s, n, ms) == 0)
			return 0;
		return parse_unix(s, n, 1000, ms);
	case CS_TIME_PATTERN: {
		char tmp[256];
		struct tm tm;
		if (!pattern || n >= sizeof tmp)
			return -1;
		memcpy(tmp, s, n);
		tmp[n] = 0;
		memset(&tm, 0, sizeof tm);
		tm.tm_mday = 1;
		const char *end = strptime(tmp, pattern, &tm);
		if (!end)
			return -1;
		while (*end == ' ')
			end++;
		if (*end)
			return -1;
		/* %s or a huge %Y would overflow the milliseconds */
		int64_t sec = (int64_t)timegm(&tm);
		if (sec > INT64_MAX / 1000 || sec < INT64_MIN / 1000)
			return -1;
		*ms = sec * 1000;
		return 0;
	}
	case CS_TIME_NONE:
		*ms = 0;
		return 0;
	}
	return -1;
}

int cs_time_format(const char *name)
{
	if (!name)
		return -1;
	if (strchr(name, '%'))
		return CS_TIME_PATTERN;
	static const struct { const char *n; int f; } t[] = {
		{ "unix", CS_TIME_UNIX }, { "s", CS_TIME_UNIX },
		{ "unix-ms", CS_TIME_UNIX_MS }, { "ms", CS_TIME_UNIX_MS },
		{ "iso", CS_TIME_ISO }, { "auto", CS_TIME_AUTO }, { "none", CS_TIME_NONE },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (!strcmp(name, t[i].n))
			return t[i].f;
	return -1;
}
