/* common.c - command-line glue shared by the cs-* programs. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "blas.h"
#include "common.h"
#include "cpu.h"
#include "modelfile.h"

void warnx_(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void report(const cs_error *err)
{
	char buf[1200];
	fprintf(stderr, "%s: %s\n", progname, cs_strerror(err, buf, sizeof buf));
}

void usage_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help' for more information.\n", progname);
	exit(EXIT_USAGE);
}

const char *version_note;

void print_version(void)
{
	printf("%s (cs) %s\nsequence stream format version %d\nmodel file format version %d\n",
	       progname, CS_VERSION_STRING, CS_STREAM_VERSION, CS_MODELFILE_VERSION);
	if (version_note)
		printf("%s\n", version_note);
	exit(0);
}

int check_binary_out(const char *path, int force)
{
	if (force || (path && strcmp(path, "-") != 0) || !isatty(STDOUT_FILENO))
		return 0;
	warnx_("refusing to write a binary stream to a terminal (use -o FILE, a pipe, or -f)");
	return -1;
}

void check_output(const char *path)
{
	cs_error err;
	if (cs_ofile_check(path, &err) == 0)
		return;
	if (err.code == CS_ERR_USAGE)
		usage_error("%s%s%s", err.path, err.path[0] ? ": " : "", err.msg);
	report(&err);
	exit(EXIT_DATA);
}

long parse_long(const char *opt, const char *s, long min, long max)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		usage_error("invalid value '%s' for %s (expected an integer in %ld..%ld)",
			    s, opt, min, max);
	return v;
}

double parse_double(const char *opt, const char *s, double min, double max)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < min || v > max)
		usage_error("invalid value '%s' for %s (expected a number in %g..%g)",
			    s, opt, min, max);
	return v;
}

double mem_limit(void)
{
	const char *s = getenv("CS_MEM_LIMIT");
	uint64_t v;
	if (s && *s) {
		if (cs_parse_bytes(s, &v) < 0)
			usage_error("invalid size '%s' in CS_MEM_LIMIT", s);
		return (double)v;
	}
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
	return pages > 0 && size > 0 ? 0.75 * (double)pages * (double)size : 0;
}

void check_env(void)
{
	static const char *kernels[] = { "auto", "amx", "bf16", "fp32", "avx512", "c" };
	const char *k = getenv("CS_KERNEL");
	size_t i = 0;
	mem_limit();
	if (!k || !*k)
		return;
	while (i < sizeof kernels / sizeof *kernels && strcmp(k, kernels[i]))
		i++;
	if (i == sizeof kernels / sizeof *kernels)
		usage_error("invalid value '%s' in CS_KERNEL (expected auto, amx, bf16, fp32, avx512 or c)", k);
}

void progress_init(progress *p, int quiet)
{
	p->on = !quiet && isatty(STDERR_FILENO);
	p->start = p->last = cs_now();
	p->shown = 0;
}

void progress_update(progress *p, const char *fmt, ...)
{
	if (!p->on)
		return;
	double t = cs_now();
	if (t - p->last < 0.25)
		return;
	p->last = t;
	va_list ap;
	fprintf(stderr, "\r%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\033[K", stderr);
	p->shown = 1;
}

void progress_done(progress *p)
{
	if (p->on && p->shown)
		fputs("\r\033[K", stderr);
	p->shown = 0;
}

/*
 * Every program removes its half-written temporary outputs when it is
 * interrupted, then dies of the same signal: main() calls
 * cleanup_on_signals() first thing. Signals ignored at the start (nohup,
 * a background job of a script) stay ignored.
 */
static void on_signal(int sig)
{
	cs_ofile_remove_temps();
	signal(sig, SIG_DFL);
	raise(sig);
}

void cleanup_on_signals(void)
{
	/*
	 * Past a file size limit (ulimit -f) write() fails with EFBIG instead
	 * of the process dying of SIGXFSZ, so the error path names the file
	 * and removes the temporary one, as on a full disk.
	 */
	signal(SIGXFSZ, SIG_IGN);
	int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGPIPE };
	for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
		struct sigaction sa;
		if (sigaction(sigs[i], NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
			continue;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_signal;
		sigemptyset(&sa.sa_mask);
		sigaction(sigs[i], &sa, NULL);
	}
}

void model_setup(char **argv, int threads, int blas_flags, int verbose)
{
	cs_error err;
	if (cs_cpu_kernel(&err) < 0)
		usage_error("%s", err.msg);
	if (cs_blas_restart(argv, blas_flags, &err) < 0 && verbose)
		report(&err);
	cs_blas_init(threads);
}
