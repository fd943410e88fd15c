/* cs-vocab - build vocabularies, encode string fields to ids and back. */
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "vocab.h"

const char *progname = "cs-vocab";

static void usage(FILE *fp)
{
	fprintf(fp,
		"usage: cs-vocab build [options] [-o VOCAB] [FILE]\n"
		"       cs-vocab encode -v VOCAB [options] [-o OUT] [FILE]\n"
		"       cs-vocab decode -v VOCAB [options] [-o OUT] [FILE]\n"
		"       cs-vocab info [-J] [VOCAB]\n"
		"Build vocabularies for the string fields of a sequence stream, encode\n"
		"those fields to ids, or decode ids back to strings. FILE is a stream\n"
		"(stdin if none or '-').\n"
		"\n"
		"build:\n"
		"  -F, --field LIST      fields, comma-separated [item,action where present]\n"
		"  -c, --min-count N     drop tokens seen fewer than N times [1]\n"
		"      --max-size N      keep the N most frequent tokens, 0: all [0]\n"
		"      --kcore K         keep the K-core of sequences and items, 0: off [0]\n"
		"      --item-field NAME the item field of --kcore and --drop-unknown [item]\n"
		"encode:\n"
		"  -v, --vocab FILE      vocabulary file (encode, decode) [none]\n"
		"  -d, --drop-unknown    drop events whose item is unknown [off]\n"
		"  -l, --min-len N       drop sequences with fewer than N events [0]\n"
		"info:\n"
		"  -J, --json            one JSON object of sections [off]\n"
		"all:\n"
		"  -o, --output FILE     output file ('-': stdout) [-]\n"
		"  -f, --force           write a stream to a terminal [off]\n"
		"  -q, --quiet           no progress or summary [off]\n"
		"  -h, --help            show this help\n"
		"  -V, --version         show the version\n");
}

static void version(void) __attribute__((noreturn));
static void version(void)
{
	printf("%s (cs) %s\nsequence stream format version %d\nvocabulary file version %d\n",
	       progname, CS_VERSION_STRING, CS_STREAM_VERSION, CS_VOCAB_FILE_VERSION);
	exit(0);
}

enum { OPT_ITEM = 256 };

static const struct option longopts[] = {
	{ "field", required_argument, NULL, 'F' },
	{ "min-count", required_argument, NULL, 'c' },
	{ "max-size", required_argument, NULL, 's' },
	{ "kcore", required_argument, NULL, 'k' },
	{ "item-field", required_argument, NULL, OPT_ITEM },
	{ "vocab", required_argument, NULL, 'v' },
	{ "drop-unknown", no_argument, NULL, 'd' },
	{ "min-len", required_argument, NULL, 'l' },
	{ "output", required_argument, NULL, 'o' },
	{ "force", no_argument, NULL, 'f' },
	{ "json", no_argument, NULL, 'J' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};

static struct {
	char *fields;
	long min_count, max_size, kcore, min_len;
	const char *item, *vocab, *out, *in;
	int drop, force, quiet, json;
} o = { NULL, 1, 0, 0, 0, "item", NULL, "-", NULL, 0, 0, 0, 0 };

static int build(void)
{
	cs_error err;
	cs_reader *r = NULL;
	cs_vocab_builder *b = NULL;
	cs_vocab *v = NULL;
	cs_record rec = { 0 };
	const char *fields[CS_MAX_FIELDS];
	size_t nf = 0;
	int rc = EXIT_DATA;
	progress pg;
	progress_init(&pg, o.quiet);
	if (!(r = cs_reader_open(o.in, &err)))
		goto out;
	const cs_schema *s = cs_reader_schema(r);
	if (o.fields) {
		for (char *t = strtok(o.fields, ","); t && nf < CS_MAX_FIELDS; t = strtok(NULL, ","))
			fields[nf++] = t;
	} else {
		static const char *const def[] = { "item", "action" };
		for (size_t i = 0; i < 2; i++) {
			int k = cs_schema_find(s, def[i]);
			if (k >= 0 && s->f[k].type == CS_STRING)
				fields[nf++] = def[i];
		}
		if (nf == 0) {
			cs_err(&err, CS_ERR_FORMAT, NULL, 0,
			       "'%s' has no string field 'item' or 'action': name fields with --field",
			       cs_reader_path(r));
			goto out;
		}
	}
	cs_vocab_opts vo = { (uint64_t)o.min_count, (uint64_t)o.max_size, (uint64_t)o.kcore,
			     o.item };
	if (!(b = cs_vocab_builder_new(fields, nf, &vo, &err)) ||
	    cs_vocab_builder_bind(b, s, cs_reader_path(r), &err) < 0)
		goto out;
	int k;
	while ((k = cs_reader_next(r, &rec, &err)) > 0) {
		if (cs_vocab_builder_add(b, &rec, &err) < 0)
			goto out;
		progress_update(&pg, "%" PRIu64 " sequences", cs_reader_records(r));
	}
	if (k < 0)
		goto out;
	progress_done(&pg);
	cs_vocab_build_stats st;
	if (!(v = cs_vocab_builder_finish(b, &st, &err)) || cs_vocab_write(v, o.out, &err) < 0)
		goto out;
	if (!o.quiet) {
		if (o.kcore)
			warnx_("%ld-core: %" PRIu64 " of %" PRIu64 " sequences, %" PRIu64 " of %" PRIu64
			       " events (%d rounds)", o.kcore, st.kept_records, st.records,
			       st.kept_events, st.events, st.kcore_rounds);
		for (size_t i = 0; i < cs_vocab_nfields(v); i++) {
			char fp[17];
			warnx_("%s: %u tokens + %u reserved, fingerprint %s", cs_vocab_field(v, i),
			       cs_vocab_size(v, i) - CS_VOCAB_RESERVED, CS_VOCAB_RESERVED,
			       cs_vocab_fpstr(cs_vocab_fingerprint(v, i), fp));
		}
	}
	rc = 0;
out:
	progress_done(&pg);
	if (rc)
		report(&err);
	cs_record_free(&rec);
	cs_vocab_free(v);
	cs_vocab_builder_free(b);
	cs_reader_close(r);
	return rc;
}

static int code(int dir)
{
	cs_error err;
	cs_vocab *v = NULL;
	cs_reader *r = NULL;
	cs_vocab_coder *c = NULL;
	cs_writer *w = NULL;
	cs_record in = { 0 }, out = { 0 };
	int rc = EXIT_DATA;
	progress pg;
	progress_init(&pg, o.quiet);
	if (!(v = cs_vocab_read(o.vocab, &err)) || !(r = cs_reader_open(o.in, &err)))
		goto out;
	cs_vocab_coder_opts co = { o.drop, o.item, (uint64_t)o.min_len };
	if (!(c = cs_vocab_coder_new(v, cs_reader_schema(r), cs_reader_path(r), dir, &co, &err)) ||
	    !(w = cs_writer_open(o.out, cs_vocab_coder_schema(c), NULL, &err)))
		goto out;
	int k;
	while ((k = cs_reader_next(r, &in, &err)) > 0) {
		int n = cs_vocab_coder_run(c, &in, &out, &err);
		if (n < 0 || (n > 0 && cs_writer_put(w, &out, &err) < 0))
			goto out;
		progress_update(&pg, "%" PRIu64 " sequences", cs_reader_records(r));
	}
	if (k < 0)
		goto out;
	cs_writer *t = w;
	w = NULL;
	if (cs_writer_close(t, &err) < 0)
		goto out;
	progress_done(&pg);
	if (!o.quiet) {
		const cs_vocab_stat *st;
		size_t n = cs_vocab_coder_stats(c, &st);
		for (size_t i = 0; i < n; i++) {
			if (!st[i].unknown)
				continue;
			int dropped = dir == CS_VOCAB_ENCODE && o.drop && strcmp(st[i].field, o.item) == 0;
			warnx_("%s: %" PRIu64 " of %" PRIu64 " values unknown (%.2f%%)%s", st[i].field,
			       st[i].unknown, st[i].values, 100.0 * st[i].unknown / st[i].values,
			       dropped ? ", their events dropped" : "");
		}
		if (cs_vocab_coder_dropped_records(c))
			warnx_("%" PRIu64 " sequences with fewer than %ld events dropped",
			       cs_vocab_coder_dropped_records(c), o.min_len);
	}
	rc = 0;
out:
	progress_done(&pg);
	if (rc)
		report(&err);
	cs_writer_abort(w);
	cs_record_free(&in);
	cs_record_free(&out);
	cs_vocab_coder_free(c);
	cs_reader_close(r);
	cs_vocab_free(v);
	return rc;
}

static int info(void)
{
	cs_error err;
	cs_vocab *v = o.in && strcmp(o.in, "-") ? cs_vocab_read(o.in, &err)
						 : cs_vocab_read_file(stdin, "-", &err);
	if (!v) {
		report(&err);
		return EXIT_DATA;
	}
	for (size_t i = 0; i < cs_vocab_nfields(v); i++) {
		char fp[17];
		uint64_t total = 0;
		uint32_t n = cs_vocab_size(v, i);
		for (uint32_t id = 0; id < n; id++)
			total += cs_vocab_count(v, i, id);
		if (o.json) {
			/* field names have no control characters: escape quotes and backslashes */
			printf("%s\"", i ? "," : "{");
			for (const char *p = cs_vocab_field(v, i); *p; p++)
				printf(*p == '"' || *p == '\\' ? "\\%c" : "%c", *p);
			printf("\":{\"size\":%u,\"tokens\":%u,\"fingerprint\":\"%s\",\"count\":%" PRIu64
			       ",\"unknown\":%" PRIu64 "}", n, n - CS_VOCAB_RESERVED,
			       cs_vocab_fpstr(cs_vocab_fingerprint(v, i), fp), total,
			       cs_vocab_count(v, i, CS_VOCAB_UNK));
			continue;
		}
		printf("%s\tsize %u\ttokens %u\tfingerprint %s\tcount %" PRIu64 "\tunknown %" PRIu64 "\n",
		       cs_vocab_field(v, i), n, n - CS_VOCAB_RESERVED,
		       cs_vocab_fpstr(cs_vocab_fingerprint(v, i), fp), total,
		       cs_vocab_count(v, i, CS_VOCAB_UNK));
	}
	if (o.json)
		puts(cs_vocab_nfields(v) ? "}" : "{}");
	cs_vocab_free(v);
	if (fflush(stdout) != 0) {
		warnx_("write error on stdout");
		return EXIT_DATA;
	}
	return 0;
}

int main(int argc, char **argv)
{
	cleanup_on_signals();
	if (argc < 2)
		usage_error("missing command (build, encode, decode or info)");
	const char *cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version"))
		version();
	int which;
	if (!strcmp(cmd, "build"))
		which = 0;
	else if (!strcmp(cmd, "encode"))
		which = 1;
	else if (!strcmp(cmd, "decode"))
		which = 2;
	else if (!strcmp(cmd, "info"))
		which = 3;
	else
		usage_error("unknown command '%s' (build, encode, decode or info)", cmd);
	argc--;
	argv++;
	int c;
	/* -s and -k: the spellings of --max-size and --kcore before the suite's
	 * option table (cs(7)), where they mean --sep and --top; kept, as
	 * cs-vocab has neither */
	while ((c = getopt_long(argc, argv, "F:c:s:k:v:dl:Jo:fqhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'F': o.fields = optarg; break;
		case 'c': o.min_count = parse_long("--min-count", optarg, 0, LONG_MAX); break;
		case 's': o.max_size = parse_long("--max-size", optarg, 0, UINT32_MAX - 4); break;
		case 'k': o.kcore = parse_long("--kcore", optarg, 0, LONG_MAX); break;
		case OPT_ITEM: o.item = optarg; break;
		case 'J': o.json = 1; break;
		case 'v': o.vocab = optarg; break;
		case 'd': o.drop = 1; break;
		case 'l': o.min_len = parse_long("--min-len", optarg, 0, LONG_MAX); break;
		case 'o': o.out = optarg; break;
		case 'f': o.force = 1; break;
		case 'q': o.quiet = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V': version();
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (argc - optind > 1)
		usage_error("too many input files (one at most)");
	o.in = optind < argc ? argv[optind] : NULL;
	if (which == 0 && (o.vocab || o.drop || o.min_len))
		usage_error("build takes no --vocab, --drop-unknown or --min-len");
	if (which != 0 && (o.fields || o.min_count != 1 || o.max_size || o.kcore))
		usage_error("%s takes no --field, --min-count, --max-size or --kcore", cmd);
	if ((which == 1 || which == 2) && !o.vocab)
		usage_error("%s needs a vocabulary (-v FILE)", cmd);
	if (which == 2 && o.drop)
		usage_error("decode takes no --drop-unknown");
	if (which != 3 && o.json)
		usage_error("only info takes --json");
	if (which == 3 && strcmp(o.out, "-"))
		usage_error("info writes to stdout only");
	check_output(o.out);
	switch (which) {
	case 0:
		return build();
	case 3:
		return info();
	default:
		if (check_binary_out(o.out, o.force) < 0)
			return EXIT_USAGE;
		return code(which == 1 ? CS_VOCAB_ENCODE : CS_VOCAB_DECODE);
	}
}
