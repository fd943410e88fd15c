/*
 * time.h - times in CSV fields: the formats cs reads and their parser.
 * Include it as "time.h" (or <cs/time.h> when installed): the build puts
 * lib/ on the quote path only (-iquote), so <time.h> stays the system's.
 */
#ifndef CS_TIME_H
#define CS_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Time column formats. */
enum cs_time_format {
	CS_TIME_NONE = 0,  /* no time column: input order */
	CS_TIME_UNIX,      /* seconds since the epoch */
	CS_TIME_UNIX_MS,   /* milliseconds since the epoch */
	CS_TIME_ISO,       /* YYYY-MM-DD[ T]HH:MM[:SS[.fff]][ UTC|Z], or a date */
	CS_TIME_AUTO,      /* ISO, M/D/YYYY H:MM[:SS] or unix seconds */
	CS_TIME_PATTERN    /* a strptime(3) pattern, read as UTC */
};

/* Parse a time in format fmt (pattern for CS_TIME_PATTERN) into
 * milliseconds since the epoch. Returns 0 or -1. */
int cs_time_parse(const char *s, size_t n, int fmt, const char *pattern, int64_t *ms);
/* Parse a time format name: unix, unix-ms, iso, auto, none, or a pattern
 * containing '%'. Returns the format or -1. */
int cs_time_format(const char *name);

#endif
