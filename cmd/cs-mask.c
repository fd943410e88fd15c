/*
 * cs-mask - split sequence streams, make BERT4Rec's Cloze examples and the
 * labelled examples of purchase intention and returns.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "time.h"
#include "mask.h"

const char *progname = "cs-mask";

static void __attribute__((noreturn)) usage(void)
{
	cs_cloze_opts d;
	cs_label_opts l;
	cs_cloze_defaults(&d);
	cs_label_defaults(&l);
	printf("usage: cs-mask split [options] -o PREFIX [IN]\n"
	       "       cs-mask cloze [options] [-o OUT] [IN]\n"
	       "       cs-mask next [options] [-o OUT] [IN]\n"
	       "       cs-mask session [options] [-o OUT] [IN]\n"
	       "       cs-mask returns [options] [-o OUT] [IN]\n"
	       "\n"
	       "split: write PREFIX.train.cseq, PREFIX.valid.cseq and PREFIX.test.cseq\n"
	       "  --loo               leave-one-out: last event to test, second last to\n"
	       "                      validation, the rest to training [default]\n"
	       "  --train-valid       leave-one-out: training also keeps the validation\n"
	       "                      item, as BERT4Rec's code trains for its figures\n"
	       "                      (validation is then no longer held out) [off]\n"
	       "  --time-cut TIME     sequences starting at or after TIME go to test\n"
	       "  --valid-cut TIME    those starting in [TIME, time cut) go to validation\n"
	       "  --whole             time cut: whole sequences in valid and test [off]\n"
	       "  --at TIME           global time split: events before TIME to training,\n"
	       "                      each sequence's first event at or after TIME to\n"
	       "                      test, with all the events before it as history\n"
	       "  --valid-at TIME     with --at: training ends at TIME instead, and the\n"
	       "                      first event in [TIME, --at) goes to validation\n"
	       "  --random VALID,TEST whole sequences at random, these shares to\n"
	       "                      validation and test (e.g. 0.1,0.1) [off]\n"
	       "  --seed N            seed of --random [%llu]\n"
	       "  -l, --min-len N     drop shorter sequences [1]\n"
	       "  --train FILE, --valid FILE, --test FILE   name one output\n"
	       "\n"
	       "cloze: Cloze examples from a training split (item encoded by cs-vocab)\n"
	       "  --mask-prob P       share of positions to mask [%g]\n"
	       "  --max-pred N        at most N masked positions per example [%zu]\n"
	       "  --max-len N         window length [%zu]\n"
	       "  --slide F           window step as a share of --max-len [%g]\n"
	       "  --dupe N            differently masked copies of each window [%zu]\n"
	       "  --no-mask-last      no extra example masking only the last item\n"
	       "  --mask-field LIST   event id fields masked with the item, e.g. action\n"
	       "                      [none: only the item]\n"
	       "  --seed N            random seed [%llu]\n"
	       "\n"
	       "next: next-item examples for causal models (cs-train --attention causal):\n"
	       "every event of a window is an input whose target is the item after it\n"
	       "  --max-len N         events a window feeds the model [%zu]\n"
	       "  --slide F           window step as a share of --max-len [1: every\n"
	       "                      target once]\n"
	       "  --mask-field LIST   event id fields whose next value is also a target\n"
	       "\n"
	       "session: purchase intention, label 1 if a session has a purchase; keeps\n"
	       "the events before the first purchase\n"
	       "  --first K           keep at most the first K of them [all]\n"
	       "returns: label 1 on purchases returned later, 0 on the others, -1 on\n"
	       "other events; return events are left out\n"
	       "  --return TOKEN      the return event type [%s]\n"
	       "session and returns:\n"
	       "  -a, --action FIELD  the event-type field [%s]\n"
	       "  --purchase TOKEN    the purchase event type [%s]\n"
	       "  -v, --vocab FILE    vocabulary of an id (encoded) action field [none]\n"
	       "\n"
	       "  -o, --output FILE   output (not split: '-' is stdout [-])\n"
	       "  -f, --force         write a binary stream to a terminal\n"
	       "  -q, --quiet         no summary or progress\n"
	       "  -h, --help          this help\n"
	       "  -V, --version       version\n"
	       "TIME is seconds since the epoch or YYYY-MM-DD[ HH:MM:SS] (UTC).\n",
	       (unsigned long long)d.seed, d.mask_prob, d.max_pred, d.max_len, d.slide,
	       d.dupe, (unsigned long long)d.seed, d.max_len, l.ret, l.action, l.purchase);
	exit(0);
}

enum { O_LOO = 256, O_TIME_CUT, O_VALID_CUT, O_TRAIN, O_VALID, O_TEST,
       O_MASK_PROB, O_MAX_PRED, O_MAX_LEN, O_SLIDE, O_DUPE, O_NO_LAST, O_SEED,
       O_WHOLE, O_RANDOM, O_MASK_FIELD, O_PURCHASE, O_RETURN, O_FIRST,
       O_TRAIN_VALID, O_AT, O_VALID_AT };

static const struct option longopts[] = {
	{ "loo", no_argument, 0, O_LOO },
	{ "time-cut", required_argument, 0, O_TIME_CUT },
	{ "valid-cut", required_argument, 0, O_VALID_CUT },
	{ "min-len", required_argument, 0, 'l' },
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
	{ "whole", no_argument, 0, O_WHOLE },
	{ "train-valid", no_argument, 0, O_TRAIN_VALID },
	{ "random", required_argument, 0, O_RANDOM },
	{ "at", required_argument, 0, O_AT },
	{ "valid-at", required_argument, 0, O_VALID_AT },
	{ "mask-field", required_argument, 0, O_MASK_FIELD },
	{ "action", required_argument, 0, 'a' },
	{ "purchase", required_argument, 0, O_PURCHASE },
	{ "return", required_argument, 0, O_RETURN },
	{ "first", required_argument, 0, O_FIRST },
	{ "vocab", required_argument, 0, 'v' },
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
	if (cs_time_parse(s, strlen(s), CS_TIME_AUTO, NULL, &ms) < 0)
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

static int run_label(int returns, const char *in, const char *out, const char *vocab,
		     cs_label_opts *o, int quiet)
{
	cs_error err;
	cs_record rec = { 0 }, ex = { 0 };
	cs_writer *w = NULL;
	cs_vocab *v = NULL;
	cs_session_labeler *sl = NULL;
	cs_return_labeler *rl = NULL;
	const cs_label_stats *st = NULL;
	const cs_schema *schema;
	int rc = EXIT_DATA, got, k;
	progress pr;
	progress_init(&pr, quiet);
	cs_reader *r = cs_reader_open(in, &err);
	if (!r)
		goto fail;
	if (vocab && !(o->vocab = v = cs_vocab_read(vocab, &err)))
		goto fail;
	if (returns) {
		if (!(rl = cs_return_labeler_new(cs_reader_schema(r), cs_reader_path(r), o, &err)))
			goto fail;
		schema = cs_return_labeler_schema(rl);
		st = cs_return_labeler_stats(rl);
	} else {
		if (!(sl = cs_session_labeler_new(cs_reader_schema(r), cs_reader_path(r), o, &err)))
			goto fail;
		schema = cs_session_labeler_schema(sl);
		st = cs_session_labeler_stats(sl);
	}
	if (!(w = cs_writer_open(out, schema, NULL, &err)))
		goto fail;
	while ((got = cs_reader_next(r, &rec, &err)) == 1) {
		k = rl ? cs_return_labeler_run(rl, &rec, &ex, &err) :
			 cs_session_labeler_run(sl, &rec, &ex, &err);
		if (k < 0 || (k > 0 && cs_writer_put(w, &ex, &err) < 0))
			goto fail;
		progress_update(&pr, "%llu sequences, %llu examples",
				(unsigned long long)st->sequences,
				(unsigned long long)st->examples);
	}
	if (got < 0)
		goto fail;
	progress_done(&pr);
	k = cs_writer_close(w, &err);
	w = NULL;
	if (k < 0)
		goto fail;
	if (!quiet && returns)
		warnx_("%llu sequences -> %llu examples, %llu dropped: %llu purchases, "
		       "%llu returned; %llu returns without a purchase in the data",
		       (unsigned long long)st->sequences, (unsigned long long)st->examples,
		       (unsigned long long)st->dropped, (unsigned long long)st->purchases,
		       (unsigned long long)st->returned, (unsigned long long)st->unmatched);
	else if (!quiet)
		warnx_("%llu sequences -> %llu examples, %llu positive; %llu dropped "
		       "(no events before the first purchase)",
		       (unsigned long long)st->sequences, (unsigned long long)st->examples,
		       (unsigned long long)st->positives, (unsigned long long)st->dropped);
	rc = 0;
	goto out;
fail:
	progress_done(&pr);
	report(&err);
out:
	cs_writer_abort(w);
	cs_session_labeler_free(sl);
	cs_return_labeler_free(rl);
	cs_vocab_free(v);
	cs_record_free(&ex);
	cs_record_free(&rec);
	cs_reader_close(r);
	return rc;
}

/* "0.1,0.1" into the validation and test shares of a random split. */
static void parse_random(const char *s, cs_split_opts *so)
{
	const char *comma = strchr(s, ',');
	char *a = comma ? strndup(s, (size_t)(comma - s)) : NULL;
	if (!comma)
		usage_error("--random needs two shares, VALID,TEST (e.g. 0.1,0.1)");
	if (!a) {
		warnx_("out of memory");
		exit(EXIT_DATA);
	}
	so->valid_frac = parse_double("--random", a, 0, 1);
	so->test_frac = parse_double("--random", comma + 1, 0, 1);
	free(a);
	if (so->valid_frac + so->test_frac >= 1)
		usage_error("invalid value '%s' for --random (shares in [0, 1) that sum to less than 1)",
			    s);
	so->mode = CS_SPLIT_RANDOM;
}

/* Free what parse_fields made. */
static void free_fields(const char **names)
{
	if (names) {
		free((char *)names[0]);
		free(names);
	}
}

/* "action,brand" into *names, replacing it: pointers into one copy of s. */
static size_t parse_fields(const char *s, const char ***names)
{
	char *copy = strdup(s);
	size_t n = 1;
	for (const char *p = s; *p; p++)
		n += *p == ',';
	const char **v = calloc(n, sizeof *v);
	if (!copy || !v) {
		warnx_("out of memory");
		exit(EXIT_DATA);
	}
	n = 0;
	for (char *tok, *rest = copy; (tok = strsep(&rest, ",")) != NULL;) {
		if (!*tok)
			usage_error("empty field name in --mask-field '%s'", s);
		v[n++] = tok;
	}
	free_fields(*names);
	*names = v;
	return n;
}

int main(int argc, char **argv)
{
	cleanup_on_signals();
	enum { SPLIT, CLOZE, SESSION, RETURNS, NEXT, NCMD };
	static const char *cmds[] = { "split", "cloze", "session", "returns", "next" };
	cs_split_opts so = { 0 };
	cs_cloze_opts co;
	cs_label_opts lo;
	cs_cloze_defaults(&co);
	cs_label_defaults(&lo);
	so.min_len = 1;
	so.seed = 1;
	const char *out = NULL, *named[CS_NSPLIT] = { 0 }, *vocab = NULL, **mfield = NULL;
	int c, cmd, force = 0, quiet = 0, time_set = 0, random_set = 0, slide_set = 0;
	int loo_set = 0, at_set = 0;
	int64_t at = 0, valid_at = 0;
	const char *cloze_only = NULL;
	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
		usage();
	if (argc > 1 && (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")))
		print_version();
	if (argc < 2)
		usage_error("missing command: split, cloze, next, session or returns");
	for (cmd = 0; cmd < NCMD && strcmp(argv[1], cmds[cmd]) != 0; cmd++)
		;
	if (cmd == NCMD)
		usage_error("unknown command '%s' (split, cloze, next, session or returns)",
			    argv[1]);
	argc--, argv++;
	while ((c = getopt_long(argc, argv, "l:a:v:o:fqhV", longopts, NULL)) != -1) {
		switch (c) {
		case O_LOO: so.mode = CS_SPLIT_LOO; loo_set = 1; break;
		case O_AT: at = parse_time("--at", optarg); at_set = 1; break;
		case O_VALID_AT: valid_at = parse_time("--valid-at", optarg); so.valid_at = 1; break;
		case O_TIME_CUT: so.mode = CS_SPLIT_TIME; time_set = 1;
			so.time_cut = parse_time("--time-cut", optarg); break;
		case O_WHOLE: so.whole = 1; break;
		case O_TRAIN_VALID: so.train_valid = 1; break;
		case O_RANDOM: parse_random(optarg, &so); random_set = 1; break;
		case O_VALID_CUT: so.valid_cut = parse_time("--valid-cut", optarg); break;
		case 'l': so.min_len = (size_t)parse_long("--min-len", optarg, 1, 1L << 30); break;
		case O_TRAIN: named[CS_SPLIT_TRAIN] = optarg; break;
		case O_VALID: named[CS_SPLIT_VALID] = optarg; break;
		case O_TEST: named[CS_SPLIT_TEST] = optarg; break;
		case O_MASK_PROB: cloze_only = "--mask-prob"; co.mask_prob = parse_double("--mask-prob", optarg, 0, 1); break;
		case O_MAX_PRED: cloze_only = "--max-pred"; co.max_pred = (size_t)parse_long("--max-pred", optarg, 1, 1 << 20); break;
		case O_MAX_LEN: co.max_len = (size_t)parse_long("--max-len", optarg, 1, 1 << 20); break;
		case O_SLIDE: co.slide = parse_double("--slide", optarg, 0, 1); slide_set = 1;
			break;
		case O_DUPE: cloze_only = "--dupe"; co.dupe = (size_t)parse_long("--dupe", optarg, 0, 1000); break;
		case O_NO_LAST: cloze_only = "--no-mask-last"; co.mask_last = 0; break;
		case O_SEED: so.seed = co.seed =
			(uint64_t)parse_long("--seed", optarg, 0, 0x7fffffffffffffffL); break;
		case O_MASK_FIELD: co.nmask_field = parse_fields(optarg, &mfield); break;
		case 'a': lo.action = optarg; break;
		case O_PURCHASE: lo.purchase = optarg; break;
		case O_RETURN: lo.ret = optarg; break;
		case O_FIRST: lo.first = (size_t)parse_long("--first", optarg, 1, 1L << 30); break;
		case 'v': vocab = optarg; break;
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
	if (out && cmd != SPLIT)
		check_output(out);
	if (cmd == SESSION || cmd == RETURNS) {
		if (!*lo.action || !*lo.purchase || !*lo.ret)
			usage_error("empty --action, --purchase or --return");
		if (cmd == RETURNS && !strcmp(lo.purchase, lo.ret))
			usage_error("--purchase and --return are both '%s'", lo.ret);
		if (check_binary_out(out, force) < 0)
			return EXIT_DATA;
		return run_label(cmd == RETURNS, in, out, vocab, &lo, quiet);
	}
	if (cmd == NEXT) {
		if (cloze_only)
			usage_error("%s is for Cloze examples, not next-item ones", cloze_only);
		co.next = 1;
		if (!slide_set)
			co.slide = 1.0;
	}
	if (cmd == CLOZE || cmd == NEXT) {
		if (co.dupe == 0 && !co.mask_last)
			usage_error("--dupe 0 with --no-mask-last makes no examples");
		if (check_binary_out(out, force) < 0)
			return EXIT_DATA;
		co.mask_field = mfield;
		int rc = run_cloze(in, out, &co, quiet);
		free_fields(mfield);
		return rc;
	}
	if (random_set + time_set + loo_set > 1)
		usage_error("--loo, --random and --time-cut are three different splits: give one");
	if (at_set && (time_set || random_set || loo_set || so.valid_cut))
		usage_error("--at is a split of its own: give no --time-cut, --valid-cut, "
			    "--random or --loo with it");
	if (at_set && so.train_valid)
		usage_error("--train-valid is for leave-one-out splits");
	if (so.valid_at && (!at_set || valid_at >= at))
		usage_error("--valid-at needs a later --at");
	if (so.valid_cut && (!time_set || so.valid_cut >= so.time_cut))
		usage_error("--valid-cut needs a later --time-cut");
	if (so.whole && so.mode == CS_SPLIT_LOO)
		usage_error("--whole needs --time-cut (or --random, whose parts are always whole)");
	if (so.train_valid && so.mode != CS_SPLIT_LOO)
		usage_error("--train-valid is for leave-one-out splits");
	if (at_set) {
		so.mode = CS_SPLIT_AT;
		so.time_cut = at;
		so.valid_cut = valid_at;
	}
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
	for (int p = 0; p < CS_NSPLIT; p++) {
		for (int q = p + 1; q < CS_NSPLIT; q++)
			if (cs_ofile_same(names[p], names[q]))
				usage_error("the %s and %s splits would both go to '%s'", suffix[p],
					    suffix[q], names[q]);
		check_output(names[p]);
	}
	int rc = run_split(in, names, &so, quiet);
	for (int p = 0; p < CS_NSPLIT; p++)
		free(names[p]);
	return rc;
}
