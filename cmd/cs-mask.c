/* cs-mask - split sequence streams and make BERT4Rec's Cloze examples. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "ingest.h"
#include "mask.h"

const char *progname = "cs-mask";

static void __attribute__((noreturn)) usage(void)
{
	cs_cloze_opts d;
	cs_cloze_defaults(&d);
	printf("usage: cs-mask split [options] -o PREFIX [IN]\n"
	       "       cs-mask cloze [options] [-o OUT] [IN]\n"
	       "\n"
	       "split: write PREFIX.train.cseq, PREFIX.valid.cseq and PREFIX.test.cseq\n"
	       "  --loo               leave-one-out: last event to test, second last to\n"
	       "                      validation, the rest to training [default]\n"
	       "  --time-cut TIME     sequences starting at or after TIME go to test\n"
	       "  --valid-cut TIME    those starting in [TIME, time cut) go to validation\n"
	       "  --min-len N         drop shorter sequences [1]\n"
	       "  --train FILE, --valid FILE, --test FILE   name one output\n"
	       "\n"
	       "cloze: Cloze examples from a training split (item encoded by cs-vocab)\n"
	       "  --mask-prob P       share of positions to mask [%g]\n"
	       "  --max-pred N        at most N masked positions per example [%zu]\n"
	       "  --max-len N         window length [%zu]\n"
	       "  --slide F           window step as a share of --max-len [%g]\n"
	       "  --dupe N            differently masked copies of each window [%zu]\n"
	       "  --no-mask-last      no extra example masking only the last item\n"
	       "  --seed N            random seed [%llu]\n"
	       "\n"
	       "  -o FILE             output (cloze: '-' is stdout [-])\n"
	       "  -f, --force         write a binary stream to a terminal\n"
	       "  -q, --quiet         no summary or progress\n"
	       "  -h, --help          this help\n"
	       "  -V, --version       version\n"
	       "TIME is seconds since the epoch or YYYY-MM-DD[ HH:MM:SS] (UTC).\n",
	       d.mask_prob, d.max_pred, d.max_len, d.slide, d.dupe,
	       (unsigned long long)d.seed);
	exit(0);
}

enum { O_LOO = 256, O_TIME_CUT, O_VALID_CUT, O_MIN_LEN, O_TRAIN, O_VALID, O_TEST,
       O_MASK_PROB, O_MAX_PRED, O_MAX_LEN, O_SLIDE, O_DUPE, O_NO_LAST, O_SEED };

static const struct option longopts[] = {
	{ "loo", no_argument, 0, O_LOO },
	{ "time-cut", required_argument, 0, O_TIME_CUT },
	{ "valid-cut", required_argument, 0, O_VALID_CUT },
	{ "min-len", required_argument, 0, O_MIN_LEN },
	{ "train", required_argument, 0, O_TRAIN },
	{ "valid", required_argument, 0, O_VALID },
	{ "test", required_argument, 0, O_TEST },
	{ "mask-prob", required_argument, 0, O_MASK_PROB },
	{ "max-pred", required_argument, 0, O_MAX_PRED },
	{ "max-len", required_argument, 0, O_MAX_LEN },
	{ "slide", required_argument, 0, O_SLIDE },
	{ "dupe", required_argument, 0, O_DUPE },
	{ "no-mask-last", no_argument, 0, O_NO_LAST },
	{ "seed", required_argument, 0, O_SEED },
	{ "output", required_argument, 0, 'o' },
	{ "force", no_argument, 0, 'f' },
	{ "quiet", no_argument, 0, 'q' },
	{ "help", no_argument, 0, 'h' },
	{ "version", no_argument, 0, 'V' },
	{ 0, 0, 0, 0 }
};

static int64_t parse_time(const char *opt, const char *s)
{
	int64_t ms;
	if (cs_ingest_parse_time(s, strlen(s), CS_TIME_AUTO, NULL, &ms) < 0)
		usage_error("invalid time '%s' for %s", s, opt);
	return ms / 1000; /* streams hold seconds */
}

static int emit(void *ctx, const cs_record *ex, cs_error *err)
{
	return cs_writer_put(ctx, ex, err);
}

static int run_cloze(const char *in, const char *out, const cs_cloze_opts *o, int quiet)
{
	cs_error err;
	cs_record rec = { 0 };
	cs_writer *w = NULL;
	cs_cloze *cz = NULL;
	int rc = EXIT_DATA, got;
	long long examples = 0;
	progress pr;
	progress_init(&pr, quiet);
	cs_reader *r = cs_reader_open(in, &err);
	if (!r)
		goto fail;
	if (!(cz = cs_cloze_new(cs_reader_schema(r), cs_reader_path(r), o, &err)) ||
	    !(w = cs_writer_open(out, cs_cloze_schema(cz), NULL, &err)))
		goto fail;
	while ((got = cs_reader_next(r, &rec, &err)) == 1) {
		long n = cs_cloze_run(cz, &rec, emit, w, &err);
		if (n < 0)
			goto fail;
		examples += n;
		progress_update(&pr, "%llu sequences, %lld examples",
				(unsigned long long)cs_reader_records(r), examples);
	}
	if (got < 0)
		goto fail;
	progress_done(&pr);
	if (cs_writer_close(w, &err) < 0) {
		w = NULL;
		goto fail;
	}
	w = NULL;
	if (!quiet)
		warnx_("%llu sequences -> %lld examples", (unsigned long long)cs_reader_records(r),
		       examples);
	rc = 0;
	goto out;
fail:
	progress_done(&pr);
	report(&err);
out:
	cs_writer_abort(w);
	cs_cloze_free(cz);
	cs_record_free(&rec);
	cs_reader_close(r);
	return rc;
}

static int run_split(const char *in, char *const names[CS_NSPLIT], const cs_split_opts *o,
		     int quiet)
{
	cs_error err;
	cs_record rec = { 0 }, out[CS_NSPLIT] = { { 0 } };
	cs_writer *w[CS_NSPLIT] = { 0 };
	cs_splitter *sp = NULL;
	unsigned long long count[CS_NSPLIT] = { 0 }, dropped = 0;
	int rc = EXIT_DATA, got, has[CS_NSPLIT];
	cs_reader *r = cs_reader_open(in, &err);
	if (!r)
		goto fail;
	if (!(sp = cs_splitter_new(cs_reader_schema(r), cs_reader_path(r), o, &err)))
		goto fail;
	for (int p = 0; p < CS_NSPLIT; p++)
		if (!(w[p] = cs_writer_open(names[p], cs_splitter_schema(sp, p), NULL, &err)))
			goto fail;
	while ((got = cs_reader_next(r, &rec, &err)) == 1) {
		if (cs_splitter_run(sp, &rec, out, has, &err) < 0)
			goto fail;
		int any = 0;
		for (int p = 0; p < CS_NSPLIT; p++) {
			if (!has[p])
				continue;
			any = 1;
			count[p]++;
			if (cs_writer_put(w[p], &out[p], &err) < 0)
				goto fail;
		}
		dropped += !any;
	}
	if (got < 0)
		goto fail;
	for (int p = 0; p < CS_NSPLIT; p++)
		if (count[p] == 0 && p != CS_SPLIT_VALID) {
			cs_err(&err, CS_ERR_FORMAT, cs_reader_path(r), 0,
			       "the %s split is empty", p == CS_SPLIT_TRAIN ? "training" : "test");
			goto fail;
		}
	for (int p = 0; p < CS_NSPLIT; p++) {
		int bad = cs_writer_close(w[p], &err) < 0;
		w[p] = NULL;
		if (bad)
			goto fail;
	}
	if (!quiet)
		warnx_("%llu sequences: train %llu, valid %llu, test %llu, dropped %llu",
		       (unsigned long long)cs_reader_records(r), count[0], count[1], count[2],
		       dropped);
	rc = 0;
	goto out;
fail:
	report(&err);
out:
	for (int p = 0; p < CS_NSPLIT; p++) {
		cs_writer_abort(w[p]);
		cs_record_free(&out[p]);
	}
	cs_splitter_free(sp);
	cs_record_free(&rec);
	cs_reader_close(r);
	return rc;
}

int main(int argc, char **argv)
{
	cs_split_opts so = { 0, 0, 0, 1 };
	cs_cloze_opts co;
	cs_cloze_defaults(&co);
	const char *out = NULL, *named[CS_NSPLIT] = { 0 };
	int c, force = 0, quiet = 0, time_set = 0;
	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
		usage();
	if (argc > 1 && (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")))
		print_version();
	if (argc < 2)
		usage_error("missing command: split or cloze");
	const char *cmd = argv[1];
	int split = !strcmp(cmd, "split");
	if (!split && strcmp(cmd, "cloze") != 0)
		usage_error("unknown command '%s' (split or cloze)", cmd);
	argc--, argv++;
	while ((c = getopt_long(argc, argv, "o:fqhV", longopts, NULL)) != -1) {
		switch (c) {
		case O_LOO: so.by_time = 0; break;
		case O_TIME_CUT: so.by_time = 1; time_set = 1;
			so.time_cut = parse_time("--time-cut", optarg); break;
		case O_VALID_CUT: so.valid_cut = parse_time("--valid-cut", optarg); break;
		case O_MIN_LEN: so.min_len = (size_t)parse_long("--min-len", optarg, 1, 1L << 30); break;
		case O_TRAIN: named[CS_SPLIT_TRAIN] = optarg; break;
		case O_VALID: named[CS_SPLIT_VALID] = optarg; break;
		case O_TEST: named[CS_SPLIT_TEST] = optarg; break;
		case O_MASK_PROB: co.mask_prob = parse_double("--mask-prob", optarg, 0, 1); break;
		case O_MAX_PRED: co.max_pred = (size_t)parse_long("--max-pred", optarg, 1, 1 << 20); break;
		case O_MAX_LEN: co.max_len = (size_t)parse_long("--max-len", optarg, 1, 1 << 20); break;
		case O_SLIDE: co.slide = parse_double("--slide", optarg, 0, 1); break;
		case O_DUPE: co.dupe = (size_t)parse_long("--dupe", optarg, 0, 1000); break;
		case O_NO_LAST: co.mask_last = 0; break;
		case O_SEED: co.seed = (uint64_t)parse_long("--seed", optarg, 0, 0x7fffffffffffffffL); break;
		case 'o': out = optarg; break;
		case 'f': force = 1; break;
		case 'q': quiet = 1; break;
		case 'h': usage();
		case 'V': print_version();
		default: usage_error("bad option");
		}
	}
	if (optind + 1 < argc)
		usage_error("too many inputs");
	const char *in = optind < argc ? argv[optind] : "-";
	if (!split) {
		if (co.dupe == 0 && !co.mask_last)
			usage_error("--dupe 0 with --no-mask-last makes no examples");
		if (check_binary_out(out, force) < 0)
			return EXIT_DATA;
		return run_cloze(in, out, &co, quiet);
	}
	if (so.valid_cut && (!time_set || so.valid_cut >= so.time_cut))
		usage_error("--valid-cut needs a later --time-cut");
	static const char *suffix[CS_NSPLIT] = { "train", "valid", "test" };
	char *names[CS_NSPLIT] = { 0 };
	for (int p = 0; p < CS_NSPLIT; p++) {
		if (named[p]) {
			names[p] = strdup(named[p]);
		} else if (out && strcmp(out, "-") != 0) {
			if (asprintf(&names[p], "%s.%s.cseq", out, suffix[p]) < 0)
				names[p] = NULL;
		} else {
			usage_error("split needs -o PREFIX (or --train, --valid and --test)");
		}
		if (!names[p]) {
			warnx_("out of memory");
			return EXIT_DATA;
		}
	}
	int rc = run_split(in, names, &so, quiet);
	for (int p = 0; p < CS_NSPLIT; p++)
		free(names[p]);
	return rc;
}
