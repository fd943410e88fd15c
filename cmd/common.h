/*
 * common.h - command-line glue shared by the cs-* programs: messages,
 * exit codes, progress and output checks. Logic lives in lib/.
 */
#ifndef CS_COMMON_H
#define CS_COMMON_H

#include <stdio.h>
#include "cs.h"

/* Exit statuses: 0 success, 1 bad data or runtime failure, 2 usage error. */
enum { EXIT_DATA = 1, EXIT_USAGE = 2 };

extern const char *progname;

/* "prog: msg\n" on stderr. */
void warnx_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "prog: <error>" for a library error. */
void report(const cs_error *err);
/* Usage error: "prog: msg" and "Try 'prog --help'." then exit 2. */
void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Print "prog VERSION", the format versions and version_note (if set), exit 0. */
void print_version(void) __attribute__((noreturn));
extern const char *version_note;
/* Refuse to write a binary stream to a terminal unless forced. 0 ok, -1 refused (message printed). */
int check_binary_out(const char *path, int force);
/*
 * Before any work: can path be written (its directory exists and is
 * writable)? If not, a message and exit 1 (2 for an empty name or a
 * directory).
 */
void check_output(const char *path);
/* Strict numeric option parsing: exit 2 with a message on junk. */
long parse_long(const char *opt, const char *s, long min, long max);
double parse_double(const char *opt, const char *s, double min, double max);

/*
 * The memory a model program may plan for, in bytes: CS_MEM_LIMIT (a size
 * such as 8G; 0: no limit), else three quarters of physical memory. A bad
 * value is a usage error.
 */
double mem_limit(void);
/*
 * The environment of the model programs, checked before any work:
 * CS_MEM_LIMIT and CS_KERNEL. A bad value is a usage error (exit 2), as a
 * bad option is.
 */
void check_env(void);

/*
 * Remove temporary outputs on SIGINT, SIGTERM, SIGHUP and SIGPIPE, then
 * die of the signal; ignore SIGXFSZ (the write fails, EFBIG). Every main
 * calls it first.
 */
void cleanup_on_signals(void);

/*
 * The model programs' set-up, before any other thread: CS_KERNEL checked
 * (a bad value is a usage error), OpenBLAS's settings (in place, or by
 * starting the program again: cs_blas_restart with blas_flags; a failure
 * is reported when verbose), then its thread count (0: OpenBLAS's
 * default).
 */
void model_setup(char **argv, int threads, int blas_flags, int verbose);

/* Progress on stderr, only when it is a terminal and not quiet; rate-limited to ~4/s. */
typedef struct progress {
	int on;
	double last, start;
	int shown;
} progress;
void progress_init(progress *p, int quiet);
/* Rewrites the current progress line (no newline) when due. */
void progress_update(progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Clear the progress line. */
void progress_done(progress *p);

#endif
