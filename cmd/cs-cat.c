/* cs-cat - print a sequence stream as text or JSON, or write one from text. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "text.h"

const char *progname = "cs-cat";

static void usage(FILE *fp)
{
	fprintf(fp,
		"usage: cs-cat [options] [FILE]\n"
		"       cs-cat --to-stream [options] [FILE]\n"
		"Print a sequence stream (FILE, or stdin if none or '-') as text, or\n"
		"with -r read that text back into a stream.\n"
		"\n"
		"  -J, --json        one JSON object per sequence (with --info: one object) [off]\n"
		"      --info        print schema, metadata and counts [off]\n"
		"      --meta        print '#meta' lines before the header [off]\n"
		"  -H, --no-header   leave out the header line [off]\n"
		"  -P, --plain-header  plain field names in the header, without\n"
		"                    ':level:type' (for awk, pandas; not read back) [off]\n"
		"  -r, --to-stream   read text, write a stream [off]\n"
		"  -o, --output FILE output file ('-': stdout) [-]\n"
		"  -f, --force       write a stream to a terminal [off]\n"
		"  -q, --quiet       no progress [off]\n"
		"  -h, --help        show this help\n"
		"  -V, --version     show the version\n");
}

/* Text to stream. */
static int to_stream(const char *in, const char *out, int quiet)
{
	cs_error err;
	FILE *fp = stdin;
	const char *name = in ? in : "-";
	cs_text_reader *r = NULL;
	cs_writer *w = NULL;
	cs_record rec = { 0 };
	int rc = EXIT_DATA;
	progress pg;
	if (in && strcmp(in, "-") != 0 && !(fp = fopen(in, "r"))) {
		cs_err(&err, CS_ERR_IO, in, 0, "cannot open: %s", strerror(errno));
		report(&err);
		return EXIT_DATA;
	}
	progress_init(&pg, quiet);
	if (!(r = cs_text_reader_open(fp, name, &err)) ||
	    !(w = cs_writer_open(out, cs_text_reader_schema(r), NULL, &err)))
		goto out;
	int k;
	while ((k = cs_text_reader_next(r, &rec, &err)) > 0) {
		if (cs_writer_put(w, &rec, &err) < 0)
			goto out;
		progress_update(&pg, "%llu sequences", (unsigned long long)cs_writer_records(w));
	}
	if (k < 0)
		goto out;
	cs_writer *tmp = w;
	w = NULL;
	if (cs_writer_close(tmp, &err) < 0)
		goto out;
	rc = 0;
out:
	progress_done(&pg);
	if (rc)
		report(&err);
	cs_writer_abort(w);
	cs_record_free(&rec);
	cs_text_reader_close(r);
	if (fp != stdin)
		fclose(fp);
	return rc;
}

/* Stream to text, JSON or info. */
static int to_text(const char *in, const char *out, int flags, int info, int quiet)
{
	cs_error err;
	cs_reader *r = NULL;
	cs_text_writer *tw = NULL;
	cs_record rec = { 0 };
	cs_ofile of = { 0 };
	int opened = 0, rc = EXIT_DATA;
	progress pg;
	progress_init(&pg, quiet);
	if (!(r = cs_reader_open(in, &err)))
		goto out;
	if (cs_ofile_open(&of, out, &err) < 0)
		goto out;
	opened = 1;
	const char *oname = out && strcmp(out, "-") ? out : "stdout";
	if (!info && !(tw = cs_text_writer_new(of.fp, oname, cs_reader_schema(r), flags, &err)))
		goto out;
	int k;
	while ((k = cs_reader_next(r, &rec, &err)) > 0) {
		if (tw && cs_text_writer_put(tw, &rec, &err) < 0)
			goto out;
		progress_update(&pg, "%llu sequences", (unsigned long long)cs_reader_records(r));
	}
	if (k < 0)
		goto out;
	if (info && ((flags & CS_TEXT_JSON) ?
		     cs_text_write_info_json(of.fp, oname, cs_reader_schema(r), cs_reader_records(r),
					     cs_reader_events(r), &err) :
		     cs_text_write_info(of.fp, oname, cs_reader_schema(r), cs_reader_records(r),
					cs_reader_events(r), &err)) < 0)
		goto out;
	if (tw) {
		cs_text_writer *t = tw;
		tw = NULL;
		if (cs_text_writer_close(t, &err) < 0)
			goto out;
	}
	opened = 0;
	if (cs_ofile_commit(&of, &err) < 0)
		goto out;
	rc = 0;
out:
	progress_done(&pg);
	if (rc)
		report(&err);
	cs_text_writer_free(tw);
	if (opened)
		cs_ofile_abort(&of);
	cs_record_free(&rec);
	cs_reader_close(r);
	return rc;
}

int main(int argc, char **argv)
{
	cleanup_on_signals();
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'J' },
		{ "info", no_argument, NULL, 'i' },
		{ "meta", no_argument, NULL, 'm' },
		{ "no-header", no_argument, NULL, 'H' },
		{ "plain-header", no_argument, NULL, 'P' },
		{ "to-stream", no_argument, NULL, 'r' },
		{ "output", required_argument, NULL, 'o' },
		{ "force", no_argument, NULL, 'f' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	const char *out = "-";
	int flags = 0, info = 0, reverse = 0, force = 0, quiet = 0, c;
	/* -j, -i and -m: the spellings of --json, --info and --meta before
	 * the suite's option table (cs(7)); kept, as cs-cat has no --threads,
	 * --item or --model */
	while ((c = getopt_long(argc, argv, "JjimHPro:fqhV", opts, NULL)) != -1) {
		switch (c) {
		case 'J': case 'j': flags |= CS_TEXT_JSON; break;
		case 'i': info = 1; break;
		case 'm': flags |= CS_TEXT_META; break;
		case 'H': flags |= CS_TEXT_NOHEADER; break;
		case 'P': flags |= CS_TEXT_PLAIN; break;
		case 'r': reverse = 1; break;
		case 'o': out = optarg; break;
		case 'f': force = 1; break;
		case 'q': quiet = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V': print_version();
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (argc - optind > 1)
		usage_error("too many input files (one at most)");
	const char *in = optind < argc ? argv[optind] : NULL;
	if (reverse && (flags || info))
		usage_error("--to-stream cannot be combined with --json, --info, --meta or --no-header");
	if (info && (flags & ~CS_TEXT_JSON))
		usage_error("--info cannot be combined with --meta, --no-header or --plain-header");
	if ((flags & CS_TEXT_JSON) && (flags & (CS_TEXT_META | CS_TEXT_NOHEADER | CS_TEXT_PLAIN)))
		usage_error("--json cannot be combined with --meta, --no-header or --plain-header");
	if ((flags & CS_TEXT_PLAIN) && (flags & CS_TEXT_NOHEADER))
		usage_error("--plain-header cannot be combined with --no-header");
	check_output(out);
	if (reverse) {
		if (check_binary_out(out, force) < 0)
			return EXIT_USAGE;
		return to_stream(in, out, quiet);
	}
	return to_text(in, out, flags, info, quiet);
}
