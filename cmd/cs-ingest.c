/* cs-ingest - turn CSV exports of shop events into a sequence stream. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "ingest.h"

const char *progname = "cs-ingest";

static void usage(void)
{
	printf("usage: %s [options] [FILE...]\n"
	       "Read CSV exports of shop events and write one sequence per user or session.\n"
	       "\n"
	       "  -p, --preset NAME      kaggle, amazon, pairs, seqlines, retail, diginetica [none]\n"
	       "  -o, --output FILE      output stream [-]\n"
	       "  -b, --by user|session  group events by [user; session for diginetica]\n"
	       "  -g, --gap DURATION     split a user's events at gaps longer than this [off]\n"
	       "      --collapse         drop consecutive repeats of item and action [off]\n"
	       "  -l, --min-len N        drop sequences with fewer events [1]\n"
	       "      --purchases FILE   diginetica: purchases joined on the session [none]\n"
	       "mapping (columns by header name or 1-based number; presets fill these in):\n"
	       "  -s, --sep CHAR         field separator: a character, 'tab' or 'space' [,]\n"
	       "      --header           the first line names the columns [on]\n"
	       "  -H, --no-header        there is no header line\n"
	       "  -u, --user COL         user column [none]\n"
	       "  -S, --session COL      session column [none]\n"
	       "  -i, --item COL         item column [none]\n"
	       "  -a, --action COL       action column [none]\n"
	       "  -A, --action-value STR the same action for every row [none]\n"
	       "  -t, --time COL         time column [none: input order]\n"
	       "  -T, --time-format FMT  unix, unix-ms, iso, auto or a strptime pattern [iso]\n"
	       "      --time-offset COL  column of milliseconds added to the time [none]\n"
	       "      --keep [NAME=]COL[:TYPE]  keep a column, TYPE string, int64 or float32 [string]\n"
	       "      --skip-missing     skip rows with an empty or NA user/session [bad row]\n"
	       "processing:\n"
	       "  -M, --mem SIZE         memory budget; beyond it sorted runs go to $TMPDIR [256M]\n"
	       "  -j, --threads N        parser threads [2]\n"
	       "      --strict           the first bad row is fatal [skip and count]\n"
	       "      --max-report N     bad rows reported on stderr [5]\n"
	       "  -L, --level N          zstd level of the output [1]\n"
	       "  -f, --force            write a binary stream to a terminal\n"
	       "  -q, --quiet            no progress, no summary\n"
	       "  -h, --help             show this help\n"
	       "  -V, --version          show the version\n"
	       "\n"
	       "Sequences are written in group key order: digit-only keys first, in numeric\n"
	       "order, then other keys bytewise. Events are ordered by time, ties keep the\n"
	       "input order.\n",
	       progname);
	exit(0);
}

static int quiet;
static progress prog;

static void on_bad(void *ctx, const cs_error *e)
{
	progress_done(&prog);
	report(e);
}

static void on_progress(void *ctx, const cs_ingest_stats *st)
{
	if (st->phase == 0)
		progress_update(&prog, "%.1f MB read, %llu rows", st->bytes / 1e6,
				(unsigned long long)st->rows);
	else
		progress_update(&prog, "%llu sequences written", (unsigned long long)st->sequences);
}

static char parse_sep(const char *s)
{
	if (!strcmp(s, "tab") || !strcmp(s, "\\t"))
		return '\t';
	if (!strcmp(s, "space"))
		return ' ';
	if (strlen(s) != 1 || s[0] == '"' || s[0] == '\n' || s[0] == '\r')
		usage_error("invalid separator '%s'", s);
	return s[0];
}

/* --keep [NAME=]COL[:TYPE] */
static void parse_keep(cs_ingest_map *m, char *s)
{
	if (m->nkeep >= CS_INGEST_MAX_KEEP)
		usage_error("too many --keep columns (at most %d)", CS_INGEST_MAX_KEEP);
	cs_ingest_keep *k = &m->keep[m->nkeep];
	char *eq = strchr(s, '='), *colon = strrchr(s, ':');
	k->type = CS_STRING;
	k->name = NULL;
	if (colon && (!eq || colon > eq)) {
		*colon = 0;
		k->type = cs_type_parse(colon + 1);
		if (k->type != CS_STRING && k->type != CS_INT64 && k->type != CS_FLOAT32)
			usage_error("invalid --keep type '%s' (string, int64 or float32)", colon + 1);
	}
	if (eq) {
		*eq = 0;
		k->name = s;
		s = eq + 1;
	}
	if (!*s || (k->name && !*k->name))
		usage_error("invalid --keep '%s'", s);
	k->col = s;
	m->nkeep++;
}

enum { O_HEADER = 256, O_PURCHASES, O_TOFF, O_STRICT, O_MAXREP, O_SKIPMISS };

int main(int argc, char **argv)
{
	cleanup_on_signals();
	static const struct option lo[] = {
		{ "preset", required_argument, 0, 'p' }, { "output", required_argument, 0, 'o' },
		{ "by", required_argument, 0, 'b' }, { "gap", required_argument, 0, 'g' },
		{ "collapse", no_argument, 0, 'c' }, { "min-len", required_argument, 0, 'l' },
		{ "purchases", required_argument, 0, O_PURCHASES },
		{ "sep", required_argument, 0, 's' }, { "header", no_argument, 0, O_HEADER },
		{ "no-header", no_argument, 0, 'H' }, { "user", required_argument, 0, 'u' },
		{ "session", required_argument, 0, 'S' }, { "item", required_argument, 0, 'i' },
		{ "action", required_argument, 0, 'a' }, { "action-value", required_argument, 0, 'A' },
		{ "time", required_argument, 0, 't' }, { "time-format", required_argument, 0, 'T' },
		{ "time-offset", required_argument, 0, O_TOFF }, { "keep", required_argument, 0, 'k' },
		{ "skip-missing", no_argument, 0, O_SKIPMISS },
		{ "mem", required_argument, 0, 'M' }, { "threads", required_argument, 0, 'j' },
		{ "strict", no_argument, 0, O_STRICT }, { "max-report", required_argument, 0, O_MAXREP },
		{ "level", required_argument, 0, 'L' }, { "force", no_argument, 0, 'f' },
		{ "quiet", no_argument, 0, 'q' }, { "help", no_argument, 0, 'h' },
		{ "version", no_argument, 0, 'V' }, { 0, 0, 0, 0 }
	};
	/* -c, -m and -k: the spellings of --collapse, --min-len and --keep
	 * before the suite's option table (cs(7)), where they mean
	 * --min-count, --model and --top; kept, as cs-ingest has none of those */
	const char *sopts = "p:o:b:g:cl:m:s:Hu:S:i:a:A:t:T:k:M:j:L:fqhV";
	cs_ingest_opts o;
	cs_ingest_opts_init(&o);
	o.threads = 2;
	const char *out = "-", *preset = NULL, *by = NULL;
	int force = 0, c;
	cs_writer_opts wo = { 0, 0 };
	cs_error err;

	/* the preset first, so that mapping options can amend it */
	for (int i = 1; i < argc; i++) {
		if ((!strcmp(argv[i], "-p") || !strcmp(argv[i], "--preset")) && i + 1 < argc)
			preset = argv[i + 1];
		else if (!strncmp(argv[i], "--preset=", 9))
			preset = argv[i] + 9;
		else if (!strncmp(argv[i], "-p", 2) && argv[i][2])
			preset = argv[i] + 2;
		else if (!strcmp(argv[i], "--"))
			break;
	}
	if (preset && cs_ingest_preset(&o, preset, &err) < 0)
		usage_error("unknown preset '%s' (kaggle, amazon, pairs, seqlines, retail, diginetica)",
			    preset);
	if (!preset)
		o.map.time_format = CS_TIME_ISO;
	int tf_given = 0, mapped = 0;
	while ((c = getopt_long(argc, argv, sopts, lo, NULL)) != -1) {
		switch (c) {
		case 'p': break;
		case 'o': out = optarg; break;
		case 'b': by = optarg; break;
		case 'g':
			if (cs_parse_duration(optarg, &o.gap) < 0 || o.gap <= 0)
				usage_error("invalid duration '%s' for --gap", optarg);
			break;
		case 'c': o.collapse = 1; break;
		case 'l': case 'm': o.min_len = (size_t)parse_long("--min-len", optarg, 0, 1L << 30); break;
		case O_PURCHASES: o.second = optarg; break;
		case 's': o.map.sep = parse_sep(optarg); break;
		case O_HEADER: o.map.header = 1; break;
		case 'H': o.map.header = 0; break;
		case 'u': o.map.user = optarg; mapped = 1; break;
		case 'S': o.map.session = optarg; mapped = 1; break;
		case 'i': o.map.item = optarg; mapped = 1; break;
		case 'a':
			o.map.action = optarg;
			o.map.action_mode = CS_ACTION_COLUMN;
			mapped = 1;
			break;
		case 'A': o.map.action_value = optarg; o.map.action_mode = CS_ACTION_CONST; break;
		case 't': o.map.time = optarg; mapped = 1; break;
		case 'T':
			if ((o.map.time_format = cs_time_format(optarg)) < 0)
				usage_error("invalid time format '%s'", optarg);
			o.map.time_pattern = optarg;
			tf_given = 1;
			break;
		case O_TOFF: o.map.time_offset = optarg; mapped = 1; break;
		case 'k': parse_keep(&o.map, optarg); mapped = 1; break;
		case O_SKIPMISS: o.map.skip_missing_key = 1; break;
		case 'M':
			if (cs_parse_bytes(optarg, &o.mem) < 0 || o.mem < 4096)
				usage_error("invalid size '%s' for --mem", optarg);
			break;
		case 'j': o.threads = (int)parse_long("--threads", optarg, 1, 64); break;
		case O_STRICT: o.strict = 1; break;
		case O_MAXREP: o.max_report = (int)parse_long("--max-report", optarg, 0, 1000000); break;
		case 'L': wo.level = (int)parse_long("--level", optarg, 1, 19); break;
		case 'f': force = 1; break;
		case 'q': quiet = 1; break;
		case 'h': usage(); break;
		case 'V': print_version(); break;
		default:
			fprintf(stderr, "Try '%s --help' for more information.\n", progname);
			return EXIT_USAGE;
		}
	}
	if (o.map.time && !tf_given && o.map.time_format == CS_TIME_NONE)
		o.map.time_format = CS_TIME_ISO;
	if (!o.map.time && !(preset && o.map.time_format != CS_TIME_NONE))
		o.map.time_format = CS_TIME_NONE;
	if (by) {
		if (!strcmp(by, "user"))
			o.by = CS_BY_USER;
		else if (!strcmp(by, "session"))
			o.by = CS_BY_SESSION;
		else
			usage_error("invalid value '%s' for --by (user or session)", by);
	}
	if (o.second && !(preset && !strcmp(preset, "diginetica")))
		usage_error("--purchases needs the diginetica preset");
	if (o.gap && o.by == CS_BY_SESSION)
		usage_error("--gap splits users into sessions; it needs --by user");
	if (!o.map.item && !o.map.seqlines)
		usage_error("no item column: give --item or a --preset");
	if (o.threads > 1 && !wo.threads)
		wo.threads = o.threads;
	if (check_binary_out(out, force) < 0)
		return EXIT_USAGE;
	if (out)
		check_output(out);
	o.on_bad = on_bad;
	o.on_progress = on_progress;
	progress_init(&prog, quiet);

	cs_ingest_stats st;
	double t0 = cs_now();
	cs_writer *w = NULL;
	int rc = -1;
	cs_ingest *in = cs_ingest_open(&o, (const char *const *)argv + optind,
				       (size_t)(argc - optind), &st, &err);
	if (in && (w = cs_writer_open(out, cs_ingest_schema(in), &wo, &err)) &&
	    cs_ingest_run(in, w, &err) == 0) {
		rc = cs_writer_close(w, &err);
		w = NULL;
	}
	cs_writer_abort(w);
	cs_ingest_close(in);
	progress_done(&prog);
	if (rc < 0) {
		report(&err);
		/* a file that lacks the columns of its preset is not that export:
		 * bad data; columns named on the command line are a usage error */
		if (err.code == CS_ERR_USAGE && !(preset && !mapped && err.path[0]))
			return EXIT_USAGE;
		return EXIT_DATA;
	}
	if (!quiet) {
		double dt = cs_now() - t0;
		fprintf(stderr, "%s: %llu rows read, %llu bad, %llu skipped", progname,
			(unsigned long long)st.rows, (unsigned long long)st.bad,
			(unsigned long long)st.skipped);
		if (o.second)
			fprintf(stderr, ", %llu unmatched", (unsigned long long)st.unmatched);
		fprintf(stderr, "; %llu sequences, %llu events", (unsigned long long)st.sequences,
			(unsigned long long)st.events);
		for (size_t i = 0; i < st.nactions; i++)
			fprintf(stderr, "%s%s %llu", i ? ", " : " (", st.action[i],
				(unsigned long long)st.action_count[i]);
		fprintf(stderr, "%s", st.nactions ? ")" : "");
		if (st.collapsed)
			fprintf(stderr, ", %llu repeats dropped", (unsigned long long)st.collapsed);
		if (st.short_seqs)
			fprintf(stderr, ", %llu short sequences dropped", (unsigned long long)st.short_seqs);
		fprintf(stderr, "; %.1f MB in %.2f s (%.0f MB/s)", st.bytes / 1e6, dt,
			dt > 0 ? st.bytes / 1e6 / dt : 0.0);
		if (st.runs)
			fprintf(stderr, ", %llu runs spilled", (unsigned long long)st.runs);
		fputc('\n', stderr);
	}
	return 0;
}
