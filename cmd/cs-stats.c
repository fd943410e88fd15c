/* cs-stats - describe a sequence stream in one pass; draw it and training logs with gnuplot. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common.h"
#include "plot.h"
#include "stats.h"
#include "vocab.h"

const char *progname = "cs-stats";

static void usage(FILE *fp)
{
	fprintf(fp,
		"usage: cs-stats [options] [FILE]\n"
		"Describe a sequence stream (FILE, or stdin if none or '-'): events per type,\n"
		"the funnel per session and user, unique counts, time range, events per day\n"
		"and hour, sequence lengths, top values and how concentrated popularity is.\n"
		"\n"
		"  -J, --json            one JSON object instead of TSV rows [off]\n"
		"  -k, --top N           values listed per field [10]\n"
		"  -v, --vocab FILE      name the values of id fields [none]\n"
		"  -o, --output FILE     output file ('-': stdout) [-]\n"
		"      --plot DIR        also draw PNG and SVG plots into DIR with gnuplot [off]\n"
		"      --train-log FILE  draw the training curves of a cs-train --log into\n"
		"                        DIR (with --plot; no stream is read unless FILE\n"
		"                        is given) [none]\n"
		"  -q, --quiet           no progress [off]\n"
		"  -h, --help            show this help\n"
		"  -V, --version         show the version\n");
}

/* Run gnuplot on script in directory dir; 0 or -1 (message printed). */
static int run_gnuplot(const char *dir, const char *script)
{
	pid_t pid = fork();
	if (pid < 0) {
		warnx_("cannot run 'gnuplot': %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		if (chdir(dir) < 0) {
			warnx_("%s: %s", dir, strerror(errno));
			_exit(126);
		}
		execlp("gnuplot", "gnuplot", script, (char *)NULL);
		warnx_("cannot run 'gnuplot': %s (install gnuplot-nox)", strerror(errno));
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			warnx_("gnuplot: %s", strerror(errno));
			return -1;
		}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) < 126)
		warnx_("gnuplot failed on '%s/%s'", dir, script);
	return -1;
}

/* Write the gnuplot script of the plots and run it. */
static int plot(const char *dir, const char *file, unsigned have, const char *title,
		const char *train_log)
{
	cs_error err;
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", dir, file);
	FILE *fp = fopen(path, "w");
	if (!fp) {
		cs_err(&err, CS_ERR_IO, path, 0, "cannot create: %s", strerror(errno));
		report(&err);
		return -1;
	}
	int r = train_log ? cs_plot_train_script(fp, train_log, &err)
			  : cs_plot_stats_script(fp, have, title, &err);
	int bad = ferror(fp);
	if (fclose(fp) != 0 || bad) {
		if (r == 0)
			cs_err(&err, CS_ERR_IO, path, 0, "write error: %s", strerror(errno));
		r = -1;
	}
	if (r < 0) {
		report(&err);
		return -1;
	}
	return run_gnuplot(dir, file);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'J' },
		{ "top", required_argument, NULL, 'k' },
		{ "vocab", required_argument, NULL, 'v' },
		{ "output", required_argument, NULL, 'o' },
		{ "plot", required_argument, NULL, 'p' },
		{ "train-log", required_argument, NULL, 'L' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	const char *out = "-", *vocab_path = NULL, *dir = NULL, *train_log = NULL;
	int json = 0, quiet = 0, c;
	size_t top = 10;
	/* -j, -n, -p and -L: the spellings of --json, --top, --plot and
	 * --train-log before the suite's option table (cs(7)), where they mean
	 * --threads, --negatives, --preset and --level; kept, as cs-stats has
	 * none of those */
	while ((c = getopt_long(argc, argv, "Jjk:n:v:o:p:L:qhV", opts, NULL)) != -1) {
		switch (c) {
		case 'J': case 'j': json = 1; break;
		case 'k': case 'n': top = (size_t)parse_long("--top", optarg, 1, 1000000); break;
		case 'v': vocab_path = optarg; break;
		case 'o': out = optarg; break;
		case 'p': dir = optarg; break;
		case 'L': train_log = optarg; break;
		case 'q': quiet = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V': print_version();
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (argc - optind > 1)
		usage_error("too many input files (one at most)");
	if (train_log && !dir)
		usage_error("--train-log needs --plot DIR");
	const char *in = optind < argc ? argv[optind] : NULL;
	int read_stream = in || !train_log;

	cs_error err;
	cs_vocab *voc = NULL;
	cs_reader *r = NULL;
	cs_stats *st = NULL;
	cs_record rec = { 0 };
	cs_ofile of = { 0 };
	int opened = 0, rc = EXIT_DATA;
	char logpath[PATH_MAX];
	progress pg;
	progress_init(&pg, quiet);
	if (dir && mkdir(dir, 0777) < 0 && errno != EEXIST) {
		cs_err(&err, CS_ERR_IO, dir, 0, "cannot create directory: %s", strerror(errno));
		goto fail;
	}
	/* gnuplot runs in DIR: name the log absolutely */
	if (train_log && !realpath(train_log, logpath)) {
		cs_err(&err, CS_ERR_IO, train_log, 0, "cannot open: %s", strerror(errno));
		goto fail;
	}
	if (train_log && plot(dir, "train.gp", 0, NULL, logpath) < 0)
		goto out;
	if (!read_stream) {
		rc = 0;
		goto out;
	}
	if (vocab_path && !(voc = cs_vocab_read(vocab_path, &err)))
		goto fail;
	if (!(r = cs_reader_open(in, &err)))
		goto fail;
	cs_stats_opts so = { top, voc, cs_reader_path(r) };
	if (!(st = cs_stats_new(cs_reader_schema(r), &so, &err)))
		goto fail;
	int k;
	while ((k = cs_reader_next(r, &rec, &err)) > 0) {
		if (cs_stats_add(st, &rec, &err) < 0)
			goto fail;
		progress_update(&pg, "%llu sequences", (unsigned long long)cs_reader_records(r));
	}
	if (k < 0)
		goto fail;
	progress_done(&pg);
	if (cs_ofile_open(&of, out, &err) < 0)
		goto fail;
	opened = 1;
	if (cs_stats_write(st, of.fp, strcmp(out, "-") ? out : "stdout",
			   json ? CS_STATS_JSON : CS_STATS_TSV, &err) < 0)
		goto fail;
	opened = 0;
	if (cs_ofile_commit(&of, &err) < 0)
		goto fail;
	if (dir) {
		unsigned have;
		if (cs_stats_write_plot_data(st, dir, &have, &err) < 0)
			goto fail;
		const char *base = strrchr(cs_reader_path(r), '/');
		if (plot(dir, "stats.gp", have, base ? base + 1 : cs_reader_path(r), NULL) < 0)
			goto out;
	}
	rc = 0;
	goto out;
fail:
	progress_done(&pg);
	report(&err);
out:
	if (opened)
		cs_ofile_abort(&of);
	cs_record_free(&rec);
	cs_stats_free(st);
	cs_reader_close(r);
	cs_vocab_free(voc);
	return rc;
}
