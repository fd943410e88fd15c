/* cs-eval - ranking metrics of a BERT4Rec model on a held-out split, or
 * classification metrics of a session or event head. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "blas.h"
#include "bertfile.h"
#include "evaluate.h"

#include "common.h"

const char *progname = "cs-eval";

static void __attribute__((noreturn)) usage(void)
{
	printf("usage: cs-eval -m MODEL [options] [TEST]\n"
	       "       cs-eval --scores [--threshold P] [-J] [FILE]\n"
	       "Rank the held-out item of each history in TEST (cs-mask split) or stdin;\n"
	       "for a session or event model, score its labelled sequences or events.\n"
	       "\n"
	       "  -m, --model FILE     model from cs-train (required)\n"
	       "  -k, --k LIST         cut-offs, comma-separated [1,5,10,20]\n"
	       "  -n, --negatives N    sampled ranking against N negatives, 0: off [100]\n"
	       "      --sampler KIND   negatives by 'popularity' or 'uniform' [popularity]\n"
	       "      --no-full        skip ranking against the whole catalogue\n"
	       "  -x, --exclude-seen   full ranking skips items of the history\n"
	       "      --seed N         negative sampling seed [1]\n"
	       "      --batch N        histories scored at once [256]\n"
	       "      --threshold P    session and event heads: predict positive at P [0.5]\n"
	       "      --scores         no model: read lines 'probability<TAB>label' (0 or 1),\n"
	       "                       e.g. a baseline's, and print the same metrics\n"
	       "  -J, --json           JSON instead of a TSV table\n"
	       "  -j, --threads N      threads [all cores]\n"
	       "  -q, --quiet          no summary on stderr\n"
	       "  -h, --help           this help\n"
	       "  -V, --version        version\n"
	       "Popularity is counted over the evaluated stream (histories and targets).\n");
	exit(0);
}

enum { O_SAMPLER = 256, O_NO_FULL, O_SEED, O_BATCH, O_THRESHOLD, O_SCORES };

static const struct option longopts[] = {
	{ "model", required_argument, 0, 'm' },
	{ "k", required_argument, 0, 'k' },
	{ "negatives", required_argument, 0, 'n' },
	{ "sampler", required_argument, 0, O_SAMPLER },
	{ "no-full", no_argument, 0, O_NO_FULL },
	{ "exclude-seen", no_argument, 0, 'x' },
	{ "seed", required_argument, 0, O_SEED },
	{ "batch", required_argument, 0, O_BATCH },
	{ "json", no_argument, 0, 'J' },
	{ "threshold", required_argument, 0, O_THRESHOLD },
	{ "scores", no_argument, 0, O_SCORES },
	{ "threads", required_argument, 0, 'j' },
	{ "quiet", no_argument, 0, 'q' },
	{ "help", no_argument, 0, 'h' },
	{ "version", no_argument, 0, 'V' },
	{ 0, 0, 0, 0 }
};

/* "1,5,10" into o->ks; an empty item ("5,,10") is an error, not skipped. */
static void parse_ks(cs_eval_opts *o, const char *s)
{
	char *dup = strdup(s), *p = dup, *t;
	o->nk = 0;
	while (p && (t = strsep(&p, ","))) {
		if (!*t)
			usage_error("empty cut-off in --k '%s'", s);
		if (o->nk == CS_METRICS_MAXK)
			usage_error("at most %d cut-offs", CS_METRICS_MAXK);
		o->ks[o->nk++] = (size_t)parse_long("--k", t, 1, 1L << 30);
	}
	free(dup);
}

static void print_tsv(const cs_eval_opts *o, const cs_eval_result *r)
{
	printf("metric");
	if (o->full)
		printf("\tfull");
	if (o->negatives)
		printf("\tsampled_%zu_%s", o->negatives, o->popular ? "pop" : "uniform");
	putchar('\n');
	for (int kind = 0; kind < 2; kind++)
		for (size_t i = 0; i < o->nk; i++) {
			printf("%s@%zu", kind ? "NDCG" : "HR", o->ks[i]);
			if (o->full)
				printf("\t%.4f", kind ? cs_metrics_ndcg(&r->full, i) : cs_metrics_hr(&r->full, i));
			if (o->negatives)
				printf("\t%.4f", kind ? cs_metrics_ndcg(&r->sampled, i)
						      : cs_metrics_hr(&r->sampled, i));
			putchar('\n');
		}
	printf("MRR");
	if (o->full)
		printf("\t%.4f", cs_metrics_mrr(&r->full));
	if (o->negatives)
		printf("\t%.4f", cs_metrics_mrr(&r->sampled));
	printf("\nusers");
	if (o->full)
		printf("\t%" PRIu64, r->full.n);
	if (o->negatives)
		printf("\t%" PRIu64, r->sampled.n);
	putchar('\n');
}

static void print_json_part(const char *name, const cs_eval_opts *o, const cs_metrics *m)
{
	printf("\"%s\":{", name);
	for (size_t i = 0; i < o->nk; i++)
		printf("\"HR@%zu\":%.6f,\"NDCG@%zu\":%.6f,", o->ks[i], cs_metrics_hr(m, i), o->ks[i],
		       cs_metrics_ndcg(m, i));
	printf("\"MRR\":%.6f,\"users\":%" PRIu64 "}", cs_metrics_mrr(m), m->n);
}

static void print_json(const cs_eval_opts *o, const cs_eval_result *r)
{
	putchar('{');
	if (o->full)
		print_json_part("full", o, &r->full);
	if (o->negatives) {
		if (o->full)
			putchar(',');
		printf("\"sampled\":{\"negatives\":%zu,\"sampler\":\"%s\",", o->negatives,
		       o->popular ? "popularity" : "uniform");
		print_json_part("metrics", o, &r->sampled);
		putchar('}');
	}
	printf(",\"skipped\":%" PRIu64 "}\n", r->skipped);
}

/* A JSON number, or null for the metrics a single class leaves undefined. */
static void json_num(const char *key, double v, int last)
{
	if (isfinite(v))
		printf("\"%s\":%.6f%s", key, v, last ? "" : ",");
	else
		printf("\"%s\":null%s", key, last ? "" : ",");
}

static void print_binary(const cs_binmetrics *b, int json)
{
	if (!isfinite(b->auc))
		warnx_("AUC undefined: every label is %d", b->npos ? 1 : 0);
	if (json) {
		putchar('{');
		json_num("AUC", b->auc, 0);
		json_num("PR-AUC", b->prauc, 0);
		json_num("logloss", b->logloss, 0);
		printf("\"threshold\":%g,", b->threshold);
		json_num("precision", b->precision, 0);
		json_num("recall", b->recall, 0);
		json_num("F1", b->f1, 0);
		printf("\"examples\":%" PRIu64 ",\"positives\":%" PRIu64 ",", b->n, b->npos);
		json_num("positive_rate", b->pos_rate, 1);
		puts("}");
		return;
	}
	printf("metric\tvalue\nAUC\t%.4f\nPR-AUC\t%.4f\nlogloss\t%.4f\nthreshold\t%g\n"
	       "precision\t%.4f\nrecall\t%.4f\nF1\t%.4f\nexamples\t%" PRIu64 "\n"
	       "positives\t%" PRIu64 "\npositive_rate\t%.4f\n", b->auc, b->prauc, b->logloss,
	       b->threshold, b->precision, b->recall, b->f1, b->n, b->npos, b->pos_rate);
}

/* Metrics of 'probability<TAB>label' lines. */
static int eval_scores(const char *in, double threshold, int json)
{
	cs_error err;
	cs_binmetrics bm;
	if (cs_binmetrics_read(in, threshold, &bm, &err) < 0) {
		report(&err);
		return EXIT_DATA;
	}
	print_binary(&bm, json);
	if (fflush(stdout) == 0)
		return 0;
	warnx_("<stdout>: write error: %s", strerror(errno));
	return EXIT_DATA;
}

int main(int argc, char **argv)
{
	cleanup_on_signals();
	cs_eval_opts o;
	cs_eval_defaults(&o);
	const char *model_path = NULL;
	int c, threads = 0, json = 0, quiet = 0;
	double threshold = 0.5;
	int scores = 0;
	while ((c = getopt_long(argc, argv, "m:k:n:xJj:qhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'm': model_path = optarg; break;
		case 'k': parse_ks(&o, optarg); break;
		case 'n': o.negatives = (size_t)parse_long("--negatives", optarg, 0, 1 << 24); break;
		case O_SAMPLER:
			if (!strcmp(optarg, "popularity") || !strcmp(optarg, "pop"))
				o.popular = 1;
			else if (!strcmp(optarg, "uniform"))
				o.popular = 0;
			else
				usage_error("unknown sampler '%s' (popularity or uniform)", optarg);
			break;
		case O_NO_FULL: o.full = 0; break;
		case 'x': o.exclude_seen = 1; break;
		case O_SEED: o.seed = (uint64_t)parse_long("--seed", optarg, 0, 0x7fffffffffffffffL); break;
		case O_BATCH: o.batch = (size_t)parse_long("--batch", optarg, 1, 1 << 16); break;
		case 'J': json = 1; break;
		case O_SCORES: scores = 1; break;
		case O_THRESHOLD: threshold = parse_double("--threshold", optarg, 0, 1); break;
		case 'j': threads = (int)parse_long("--threads", optarg, 1, 1024); break;
		case 'q': quiet = 1; break;
		case 'h': usage();
		case 'V': print_version();
		default: usage_error("bad option");
		}
	}
	if (scores) {
		if (model_path || optind + 1 < argc)
			usage_error("--scores takes no model and one input");
		return eval_scores(optind < argc ? argv[optind] : "-", threshold, json);
	}
	if (!model_path)
		usage_error("missing -m MODEL");
	if (optind + 1 < argc)
		usage_error("too many inputs");
	if (!o.full && !o.negatives)
		usage_error("--no-full with --negatives 0 leaves nothing to compute");
	const char *in = optind < argc ? argv[optind] : "-";
	check_env();
	cs_error err;
	model_setup(argv, threads, CS_BLAS_OMP_PASSIVE, 0);
	int rc = EXIT_DATA;
	uint64_t fp;
	cs_dataset *d = NULL;
	cs_eval_result res;
	cs_bert_work *w = NULL;
	cs_bert *m = cs_bert_load(model_path, &fp, NULL, &err);
	if (!m)
		goto fail;
	/* the sampler stops when no item is left (it used to try 64 (n + 16) times) */
	if (m->cfg.head == CS_HEAD_CLOZE && o.negatives >= m->cfg.V - CS_ITEM_FIRST && !quiet)
		warnx_("%zu negatives, more than the model's %zu items: each history is ranked "
		       "against all the items it has not seen", o.negatives, m->cfg.V - CS_ITEM_FIRST);
	if (!(d = cs_dataset_for_model(in, &m->cfg, fp, 0, NULL, &err)))
		goto fail;
	if (!(w = cs_bert_work_new(&err)))
		goto fail;
	w->mem_limit = mem_limit();
	if (cs_dataset_mem_check(d, &m->cfg, 0, o.batch, w->mem_limit, model_path, &err) < 0)
		goto fail;
	if (m->cfg.head != CS_HEAD_CLOZE) {
		cs_binmetrics bm;
		double t0 = cs_now();
		if (cs_evaluate_binary(m, w, d, o.batch, threshold, &bm, &err) < 0) {
			if (!err.path[0])
				snprintf(err.path, sizeof err.path, "%s",
					 err.code == CS_ERR_MODEL ? model_path : in);
			goto fail;
		}
		print_binary(&bm, json);
		if (fflush(stdout) != 0) {
			warnx_("<stdout>: write error: %s", strerror(errno));
			goto out;
		}
		if (!quiet)
			warnx_("%" PRIu64 " %s in %.2f s", bm.n, m->cfg.head == CS_HEAD_SESSION ?
			       "sequences" : "events", cs_now() - t0);
		rc = 0;
		goto out;
	}
	if (cs_evaluate(m, w, d, &o, &res, &err) < 0) {
		if (!err.path[0])
			snprintf(err.path, sizeof err.path, "%s",
				 err.code == CS_ERR_MODEL ? model_path : in);
		goto fail;
	}
	if (json)
		print_json(&o, &res);
	else
		print_tsv(&o, &res);
	if (fflush(stdout) != 0) {
		warnx_("<stdout>: write error: %s", strerror(errno));
		goto out;
	}
	if (!quiet) {
		warnx_("%zu histories in %.2f s (%.0f/s)%s", d->n, res.seconds,
		       d->n / (res.seconds + 1e-9), d->truncated ? ", long ones cut to the model's length" : "");
		if (res.skipped)
			warnx_("%" PRIu64 " targets were unknown items and were skipped", res.skipped);
		if (d->skipped)
			warnx_("%zu empty histories were skipped", d->skipped);
	}
	rc = 0;
	goto out;
fail:
	report(&err);
out:
	cs_dataset_free(d);
	cs_bert_work_free(w);
	cs_bert_free(m);
	return rc;
}
