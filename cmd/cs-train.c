/* cs-train - train a BERT4Rec model on Cloze examples, or a session or
 * event head on labelled examples, from scratch or on a pretrained encoder. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "blas.h"
#include "batch.h"
#include "bertfile.h"
#include "comm.h"
#include "train.h"
#include "vocab.h"

#include "common.h"

const char *progname = "cs-train";

static volatile sig_atomic_t interrupted;

static void __attribute__((noreturn)) usage(void)
{
	cs_train_opts t;
	cs_bert_config c;
	cs_train_defaults(&t);
	cs_bert_config_default(&c, 10);
	printf("usage: cs-train -v VOCAB -o MODEL [options] [TRAIN]\n"
	       "Train BERT4Rec on Cloze examples (cs-mask cloze) read from TRAIN or stdin,\n"
	       "or a session or event head on labelled examples (cs-mask session, returns).\n"
	       "\n"
	       "  -v, --vocab FILE     the vocabulary the streams were encoded with (required)\n"
	       "  -o, --output FILE    the model: the best on --valid, else the last\n"
	       "      --valid FILE     validation split (cs-mask split) for early stopping\n"
	       "                       on NDCG@10, full ranking (cloze) or AUC (other heads)\n"
	       "      --head NAME      cloze, session or event [cloze]\n"
	       "      --attention NAME bidirectional (BERT4Rec) or causal (SASRec) [causal\n"
	       "                       on next-item examples (cs-mask next), else\n"
	       "                       bidirectional]\n"
	       "      --norm NAME      where the blocks' LayerNorms sit: post (BERT4Rec:\n"
	       "                       after each residual, a dense+GELU+LayerNorm output\n"
	       "                       transform) or pre (SASRec: before each branch, one\n"
	       "                       final LayerNorm, logits straight from it) [pre with\n"
	       "                       causal attention, else post]\n"
	       "      --loss NAME      cloze head: full (softmax over every item), sampled\n"
	       "                       (softmax over shared negatives) or gbce [full]\n"
	       "  -n, --negatives N    sampled, gbce: negatives a batch shares [%zu]\n"
	       "      --sampler NAME   how they are drawn: uniform, pop (by popularity,\n"
	       "                       logQ-corrected) or batch (the batch's targets) [uniform]\n"
	       "      --logq on|off    pop, batch: the logQ correction; off ranks targets\n"
	       "                       above popular items, as popularity-sampled\n"
	       "                       metrics reward [on]\n"
	       "      --gbce-t T       gbce: calibration, 0 plain BCE .. 1 [%g]\n"
	       "      --pool NAME      session head: cls (a [MASK] token appended) or mean [cls]\n"
	       "      --inputs LIST    extra event inputs, id fields such as action,category [none]\n"
	       "      --combine NAME   join them to the item embedding by sum or concat [sum]\n"
	       "      --predict-input NAME  cloze head: also predict this input at masked\n"
	       "                       events (examples from cs-mask cloze --mask-field NAME)\n"
	       "      --pos-weight W   binary heads: weight of positives, or 'auto' for\n"
	       "                       negatives/positives [1]\n"
	       "      --init MODEL     start from the encoder of a trained model (its sizes\n"
	       "                       and inputs); a new head is trained on it\n"
	       "      --freeze N       keep the encoder fixed for the first N epochs, 'all': the\n"
	       "                       whole run [0]\n"
	       "      --epochs N       [%zu]\n"
	       "      --batch N        examples per step, all processes together under\n"
	       "                       mpirun -n N (data parallel: see cs-train(1)) [%zu]\n"
	       "      --lr F           peak learning rate [%g]\n"
	       "      --warmup N       warmup steps [%ld]\n"
	       "      --weight-decay F [%g]\n"
	       "      --clip F         max gradient norm, 0: off [%g]\n"
	       "      --eval-every N   epochs between validations [%zu]\n"
	       "      --patience N     validations without improvement before stopping [%zu]\n"
	       "      --hidden N       hidden size C [%zu]\n"
	       "      --layers N       Transformer blocks [%zu]\n"
	       "      --heads N        attention heads [%zu]\n"
	       "      --max-len N      longest history; longer ones keep their last N [%zu,\n"
	       "                       or the window length of longer cs-mask examples]\n"
	       "      --dropout F      hidden dropout [%g]\n"
	       "      --attn-dropout F attention dropout [%g]\n"
	       "      --init-range F   std of the initial weights [%g]\n"
	       "      --seed N         weights, dropout and data order [%" PRIu64 "]\n"
	       "      --checkpoint FILE  checkpoint [MODEL.ckpt]\n"
	       "      --checkpoint-every N  steps between checkpoints, 0: epochs only [0]\n"
	       "      --resume FILE    continue from a checkpoint, with the model and training\n"
	       "                       options it was started with\n"
	       "      --log FILE       a row per epoch: loss, learning rate, speed, time and\n"
	       "                       validation metrics, TSV (or --log-json)\n"
	       "      --log-json       write the log as JSON lines\n"
	       "      --log-every N    also a row every N steps, 0: none [0]\n"
	       "  -j, --threads N      threads [all cores]\n"
	       "      --verbose        print the OpenBLAS kernel and the configuration\n"
	       "  -q, --quiet          no progress or summary\n"
	       "  -h, --help           this help\n"
	       "  -V, --version        version\n",
	       t.negatives, t.gbce_t, t.epochs, t.batch, t.adamw.lr, t.adamw.warmup, t.adamw.weight_decay,
	       t.adamw.clip, t.eval_every, t.patience, c.C, c.L, c.NH, c.P,
	       c.hidden_dropout, c.attn_dropout, c.init_range, t.seed);
	exit(0);
}

enum { O_VALID = 256, O_EPOCHS, O_BATCH, O_LR, O_WARMUP, O_WD, O_CLIP, O_EVAL_EVERY,
       O_PATIENCE, O_HIDDEN, O_LAYERS, O_HEADS, O_MAXLEN, O_DROPOUT, O_ATTN_DROPOUT,
       O_INIT, O_SEED, O_CKPT, O_CKPT_EVERY, O_RESUME, O_LOG, O_LOG_JSON, O_LOG_EVERY, O_VERBOSE,
       O_HEAD, O_POOL, O_INPUTS, O_COMBINE, O_POS_WEIGHT, O_INIT_MODEL, O_FREEZE, O_PREDICT,
       O_ATTENTION, O_NORM, O_LOSS, O_NEGATIVES, O_SAMPLER, O_GBCE_T, O_LOGQ };

static const struct option longopts[] = {
	{ "vocab", required_argument, 0, 'v' },
	{ "output", required_argument, 0, 'o' },
	{ "valid", required_argument, 0, O_VALID },
	{ "epochs", required_argument, 0, O_EPOCHS },
	{ "batch", required_argument, 0, O_BATCH },
	{ "lr", required_argument, 0, O_LR },
	{ "warmup", required_argument, 0, O_WARMUP },
	{ "weight-decay", required_argument, 0, O_WD },
	{ "clip", required_argument, 0, O_CLIP },
	{ "eval-every", required_argument, 0, O_EVAL_EVERY },
	{ "patience", required_argument, 0, O_PATIENCE },
	{ "hidden", required_argument, 0, O_HIDDEN },
	{ "layers", required_argument, 0, O_LAYERS },
	{ "heads", required_argument, 0, O_HEADS },
	{ "max-len", required_argument, 0, O_MAXLEN },
	{ "dropout", required_argument, 0, O_DROPOUT },
	{ "attn-dropout", required_argument, 0, O_ATTN_DROPOUT },
	{ "init-range", required_argument, 0, O_INIT },
	{ "seed", required_argument, 0, O_SEED },
	{ "head", required_argument, 0, O_HEAD },
	{ "pool", required_argument, 0, O_POOL },
	{ "inputs", required_argument, 0, O_INPUTS },
	{ "combine", required_argument, 0, O_COMBINE },
	{ "pos-weight", required_argument, 0, O_POS_WEIGHT },
	{ "init", required_argument, 0, O_INIT_MODEL },
	{ "freeze", required_argument, 0, O_FREEZE },
	{ "predict-input", required_argument, 0, O_PREDICT },
	{ "attention", required_argument, 0, O_ATTENTION },
	{ "norm", required_argument, 0, O_NORM },
	{ "loss", required_argument, 0, O_LOSS },
	{ "negatives", required_argument, 0, O_NEGATIVES },
	{ "sampler", required_argument, 0, O_SAMPLER },
	{ "logq", required_argument, 0, O_LOGQ },
	{ "gbce-t", required_argument, 0, O_GBCE_T },
	{ "checkpoint", required_argument, 0, O_CKPT },
	{ "checkpoint-every", required_argument, 0, O_CKPT_EVERY },
	{ "resume", required_argument, 0, O_RESUME },
	{ "log", required_argument, 0, O_LOG },
	{ "log-json", no_argument, 0, O_LOG_JSON },
	{ "log-every", required_argument, 0, O_LOG_EVERY },
	{ "threads", required_argument, 0, 'j' },
	{ "verbose", no_argument, 0, O_VERBOSE },
	{ "quiet", no_argument, 0, 'q' },
	{ "help", no_argument, 0, 'h' },
	{ "version", no_argument, 0, 'V' },
	{ 0, 0, 0, 0 }
};

typedef struct run {
	progress pr;
	int comm_verbose;         /* --verbose on several processes: time in their sums */
	FILE *log;
	int json, quiet;
	long log_every;
	const char *const *vname; /* the three validation metrics of the log */
	double win_loss;          /* step losses since the last step row */
	long win_n;
	int log_errno; /* a write to the log failed: stop (with a checkpoint) */
} run;

/* Flush the log; on a write error remember it and stop the run. */
static int log_flush(run *r)
{
	if (fflush(r->log) == 0 && !ferror(r->log))
		return 0;
	if (!r->log_errno)
		r->log_errno = errno ? errno : EIO;
	return 1;
}

static const char *const cloze_metrics[3] = { "ndcg10", "hr10", "mrr" };
static const char *const binary_metrics[3] = { "auc", "prauc", "logloss" };

/*
 * One row of the log: an epoch's (epoch whole) or, every --log-every
 * steps, a step's (epoch as a fraction); valid and best only after a
 * validation (NULL, -1: left empty in TSV, out of JSON).
 */
static int log_row(run *r, const cs_train_event *ev, double epoch, int whole, double loss,
		    const double *valid, int best)
{
	FILE *fp = r->log;
	char ep[32];
	if (whole)
		snprintf(ep, sizeof ep, "%.0f", epoch);
	else
		snprintf(ep, sizeof ep, "%.3f", epoch);
	if (r->json) {
		fprintf(fp, "{\"epoch\":%s,\"step\":%ld,\"loss\":%.6f,\"examples_per_s\":%.1f,"
			"\"elapsed_s\":%.2f", ep, ev->step, loss, ev->ex_per_s, ev->elapsed);
		for (int i = 0; valid && i < 3; i++)
			fprintf(fp, ",\"valid_%s\":%.6f", r->vname[i], valid[i]);
		if (best >= 0)
			fprintf(fp, ",\"best\":%s", best ? "true" : "false");
		fprintf(fp, ",\"lr\":%.6g}\n", ev->lr);
	} else {
		fprintf(fp, "%s\t%ld\t%.6f\t%.1f\t%.2f", ep, ev->step, loss, ev->ex_per_s, ev->elapsed);
		for (int i = 0; i < 3; i++)
			if (valid)
				fprintf(fp, "\t%.6f", valid[i]);
			else
				fputc('\t', fp);
		if (best >= 0)
			fprintf(fp, "\t%d", best);
		else
			fputc('\t', fp);
		fprintf(fp, "\t%.6g\n", ev->lr);
	}
	return log_flush(r);
}

/*
 * On --resume, keep the log lines of the epochs the checkpoint has done
 * under a fresh header (TSV): lines a run killed after its checkpoint
 * wrote are written again by this one, and a kill may have cut the last
 * line short or lost the header.
 */
static int trim_log(const char *path, size_t epochs_done, long steps_done, const char *header,
		    cs_error *err)
{
	struct stat st;
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
		return 0;
	FILE *in = fopen(path, "r");
	if (!in && errno != ENOENT)
		return cs_err(err, CS_ERR_IO, path, 0, "cannot open: %s", strerror(errno));
	cs_ofile of;
	if (cs_ofile_open(&of, path, err) < 0) {
		if (in)
			fclose(in);
		return -1;
	}
	if (header)
		fputs(header, of.fp);
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while (in && (n = getline(&line, &cap, in)) > 0 && line[n - 1] == '\n') {
		int json = strncmp(line, "{\"epoch\":", 9) == 0;
		const char *s = line + (json ? 9 : 0);
		char *end;
		unsigned long long e = strtoull(s, &end, 10);
		if (end == s)
			continue;
		if (*end == '.') { /* a step row (--log-every): keep those up to the checkpoint */
			const char *p = json ? strstr(line, "\"step\":") : strchr(line, '\t');
			long step = p ? strtol(p + (json ? 7 : 1), NULL, 10) : LONG_MAX;
			if (step <= steps_done)
				fwrite(line, 1, (size_t)n, of.fp);
		} else if (e <= epochs_done) {
			fwrite(line, 1, (size_t)n, of.fp);
		}
	}
	free(line);
	int bad = in && ferror(in);
	if (in)
		fclose(in);
	if (bad) {
		cs_ofile_abort(&of);
		return cs_err(err, CS_ERR_IO, path, 0, "read error: %s", strerror(errno));
	}
	return cs_ofile_commit(&of, err);
}

static void on_stop(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int on_event(void *ctx, const cs_train_event *ev)
{
	run *r = ctx;
	if (r->comm_verbose && ev->kind != CS_TRAIN_STEP && ev->kind != CS_TRAIN_CKPT) {
		progress_done(&r->pr);
		fprintf(stderr, "%s: epoch %zu: %.2f s of %.2f s in the sums of the processes "
			"(%.1f%%)\n", progname, ev->epoch, ev->comm_s, ev->steps_s,
			100 * ev->comm_s / (ev->steps_s + 1e-9));
	}
	switch (ev->kind) {
	case CS_TRAIN_STEP:
		progress_update(&r->pr, "epoch %zu/%zu  step %ld/%ld  loss %.4f  %.0f ex/s  %.0fs left",
				ev->epoch + 1, ev->epochs, ev->step, ev->steps, ev->loss,
				ev->ex_per_s, ev->eta);
		r->win_loss += ev->step_loss;
		r->win_n++;
		if (r->log && r->log_every && ev->step % r->log_every == 0) {
			double per = ev->steps ? (double)ev->steps / (double)ev->epochs : 1;
			int bad = log_row(r, ev, (double)ev->step / per, 0,
					  r->win_loss / (double)r->win_n, NULL, -1);
			r->win_loss = 0;
			r->win_n = 0;
			if (bad)
				return 1;
		}
		break;
	case CS_TRAIN_EVAL: {
		progress_done(&r->pr);
		double v[3];
		if (ev->bin) {
			const cs_binmetrics *b = ev->bin;
			if (!r->quiet)
				fprintf(stderr, "%s: epoch %zu  loss %.4f  %.0f ex/s  valid AUC %.4f  "
					"PR-AUC %.4f  log loss %.4f%s\n", progname, ev->epoch, ev->loss,
					ev->ex_per_s, b->auc, b->prauc, b->logloss,
					ev->improved ? "  (best, saved)" : "");
			v[0] = b->auc, v[1] = b->prauc, v[2] = b->logloss;
		} else {
			const cs_metrics *f = &ev->eval->full;
			if (!r->quiet)
				fprintf(stderr, "%s: epoch %zu  loss %.4f  %.0f ex/s  valid NDCG@10 %.4f  "
					"HR@10 %.4f%s\n", progname, ev->epoch, ev->loss, ev->ex_per_s,
					cs_metrics_ndcg(f, 2), cs_metrics_hr(f, 2),
					ev->improved ? "  (best, saved)" : "");
			v[0] = cs_metrics_ndcg(f, 2), v[1] = cs_metrics_hr(f, 2), v[2] = cs_metrics_mrr(f);
		}
		if (r->log && log_row(r, ev, (double)ev->epoch, 1, ev->loss, v, ev->improved))
			return 1;
		break;
	}
	case CS_TRAIN_SAVE:
		progress_done(&r->pr);
		if (!r->quiet)
			fprintf(stderr, "%s: epoch %zu  loss %.4f  %.0f ex/s  saved '%s'\n", progname,
				ev->epoch, ev->loss, ev->ex_per_s, ev->path);
		if (r->log && log_row(r, ev, (double)ev->epoch, 1, ev->loss, NULL, -1))
			return 1;
		break;
	case CS_TRAIN_EPOCH:
		if (r->log && log_row(r, ev, (double)ev->epoch, 1, ev->loss, NULL, -1))
			return 1;
		break;
	default:
		break;
	}
	return interrupted;
}

int main(int argc, char **argv)
{
	cleanup_on_signals();
	cs_train_opts to;
	cs_train_defaults(&to);
	cs_bert_config cfg;
	cs_bert_config_default(&cfg, 10);
	const char *vocab_path = NULL, *valid_path = NULL, *resume = NULL, *log_path = NULL;
	const char *init_path = NULL, *predict = NULL;
	const char *inputs = NULL;
	char *ckpt = NULL;
	int c, threads = 0, verbose = 0, pool_set = 0, attention = -1, norm = -1, neg_set = 0, gt_set = 0,
	    logq_set = 0, maxlen_set = 0;
	run r = { .quiet = 0 };
	while ((c = getopt_long(argc, argv, "v:o:n:j:qhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'v': vocab_path = optarg; break;
		case 'o': to.output = optarg; break;
		case O_VALID: valid_path = optarg; break;
		case O_EPOCHS: to.epochs = (size_t)parse_long("--epochs", optarg, 1, 1000000); break;
		case O_BATCH: to.batch = (size_t)parse_long("--batch", optarg, 1, 1 << 16); break;
		case O_LR: to.adamw.lr = (float)parse_double("--lr", optarg, 0, 10); break;
		case O_WARMUP: to.adamw.warmup = parse_long("--warmup", optarg, 0, 1L << 40); break;
		case O_WD: to.adamw.weight_decay = (float)parse_double("--weight-decay", optarg, 0, 10); break;
		case O_CLIP: to.adamw.clip = (float)parse_double("--clip", optarg, 0, 1e9); break;
		case O_EVAL_EVERY: to.eval_every = (size_t)parse_long("--eval-every", optarg, 1, 1000000); break;
		case O_PATIENCE: to.patience = (size_t)parse_long("--patience", optarg, 1, 1000000); break;
		case O_HIDDEN: cfg.C = (size_t)parse_long("--hidden", optarg, 1, 1 << 14); break;
		case O_LAYERS: cfg.L = (size_t)parse_long("--layers", optarg, 1, 64); break;
		case O_HEADS: cfg.NH = (size_t)parse_long("--heads", optarg, 1, 256); break;
		case O_MAXLEN: cfg.P = (size_t)parse_long("--max-len", optarg, 2, 1 << 14);
			maxlen_set = 1; break;
		case O_DROPOUT: cfg.hidden_dropout = (float)parse_double("--dropout", optarg, 0, 0.99); break;
		case O_ATTN_DROPOUT: cfg.attn_dropout = (float)parse_double("--attn-dropout", optarg, 0, 0.99); break;
		case O_INIT: cfg.init_range = (float)parse_double("--init-range", optarg, 1e-6, 10); break;
		case O_SEED: to.seed = (uint64_t)parse_long("--seed", optarg, 0, 0x7fffffffffffffffL); break;
		case O_CKPT: free(ckpt); ckpt = strdup(optarg); break;
		case O_CKPT_EVERY: to.ckpt_every = parse_long("--checkpoint-every", optarg, 0, 1L << 40); break;
		case O_RESUME: resume = optarg; break;
		case O_HEAD:
			if ((cfg.head = cs_bert_head_parse(optarg)) < 0)
				usage_error("--head is cloze, session or event, not '%s'", optarg);
			break;
		case O_POOL:
			if ((cfg.pool = cs_bert_pool_parse(optarg)) < 0)
				usage_error("--pool is cls or mean, not '%s'", optarg);
			pool_set = 1;
			break;
		case O_COMBINE:
			if ((cfg.combine = cs_bert_combine_parse(optarg)) < 0)
				usage_error("--combine is sum or concat, not '%s'", optarg);
			break;
		case O_INPUTS: inputs = optarg; break;
		case O_POS_WEIGHT:
			to.pos_weight = !strcmp(optarg, "auto") ? 0.0f :
					(float)parse_double("--pos-weight", optarg, 1e-6, 1e6);
			break;
		case O_ATTENTION:
			if (!strcmp(optarg, "causal"))
				attention = 1;
			else if (!strcmp(optarg, "bidirectional"))
				attention = 0;
			else
				usage_error("--attention is bidirectional or causal, not '%s'", optarg);
			break;
		case O_NORM:
			if (!strcmp(optarg, "pre"))
				norm = 1;
			else if (!strcmp(optarg, "post"))
				norm = 0;
			else
				usage_error("--norm is post or pre, not '%s'", optarg);
			break;
		case O_LOSS:
			if ((to.loss = cs_loss_parse(optarg)) < 0)
				usage_error("--loss is full, sampled or gbce, not '%s'", optarg);
			break;
		case 'n': case O_NEGATIVES: to.negatives = (size_t)parse_long("--negatives", optarg, 1, 1 << 20);
			neg_set = 1; break;
		case O_SAMPLER:
			if ((to.sampler = cs_sampler_parse(optarg)) < 0)
				usage_error("--sampler is uniform, pop or batch, not '%s'", optarg);
			neg_set = 1;
			break;
		case O_LOGQ:
			if (strcmp(optarg, "on") && strcmp(optarg, "off"))
				usage_error("--logq is on or off, not '%s'", optarg);
			to.logq = !strcmp(optarg, "on");
			logq_set = 1;
			break;
		case O_GBCE_T: to.gbce_t = (float)parse_double("--gbce-t", optarg, 0, 1); gt_set = 1;
			break;
		case O_INIT_MODEL: init_path = optarg; break;
		case O_PREDICT: predict = optarg; break;
		case O_FREEZE:
			to.freeze = !strcmp(optarg, "all") ? SIZE_MAX :
				    (size_t)parse_long("--freeze", optarg, 0, 1000000);
			break;
		case O_LOG: log_path = optarg; break;
		case O_LOG_JSON: r.json = 1; break;
		case O_LOG_EVERY: r.log_every = parse_long("--log-every", optarg, 0, LONG_MAX); break;
		case 'j': threads = (int)parse_long("--threads", optarg, 1, 1024); break;
		case O_VERBOSE: verbose = 1; break;
		case 'q': r.quiet = 1; break;
		case 'h': usage();
		case 'V':
#ifdef CS_MPI
			version_note = "data parallel: MPI (mpirun -n N cs-train)";
#else
			version_note = "data parallel: no (built without MPI)";
#endif
			print_version();
		default: usage_error("bad option");
		}
	}
	if (!vocab_path)
		usage_error("missing -v VOCAB");
	if (!to.output || !strcmp(to.output, "-"))
		usage_error("missing -o MODEL (a file)");
	if (optind + 1 < argc)
		usage_error("too many inputs");
	if (r.log_every && !log_path)
		usage_error("--log-every needs --log FILE");
	if (cfg.C % cfg.NH)
		usage_error("--hidden %zu is not a multiple of --heads %zu", cfg.C, cfg.NH);
	if (pool_set && cfg.head != CS_HEAD_SESSION)
		usage_error("--pool is for the session head (--head session)");
	if (init_path && resume)
		usage_error("--init and --resume: a checkpoint holds its model, give one of them");
	if (to.loss != CS_LOSS_FULL && cfg.head != CS_HEAD_CLOZE)
		usage_error("--loss %s is for the cloze head", cs_loss_name(to.loss));
	if (to.loss == CS_LOSS_FULL && neg_set)
		usage_error("--negatives and --sampler need --loss sampled or gbce");
	if (logq_set && (to.loss != CS_LOSS_SAMPLED || to.sampler == CS_NEG_UNIFORM))
		usage_error("--logq needs --loss sampled with --sampler pop or batch");
	if (gt_set && to.loss != CS_LOSS_GBCE)
		usage_error("--gbce-t needs --loss gbce");
	if (to.loss == CS_LOSS_GBCE && to.sampler != CS_NEG_UNIFORM)
		usage_error("--loss gbce calibrates for uniform negatives: no --sampler %s",
			    cs_sampler_name(to.sampler));
	if (attention >= 0 && (resume || init_path))
		usage_error("--attention comes from the %s model", resume ? "resumed" : "--init");
	if (norm >= 0 && (resume || init_path))
		usage_error("--norm comes from the %s model", resume ? "resumed" : "--init");
	cfg.prenorm = norm > 0;
	cfg.FF = 4 * cfg.C;
	const char *train_path = optind < argc ? argv[optind] : "-";
	if (!ckpt && asprintf(&ckpt, "%s.ckpt", to.output) < 0) {
		warnx_("out of memory");
		return EXIT_DATA;
	}
	to.ckpt = ckpt;
	/* every output can be written, and no two are one file, before any work */
	const char *outs[3] = { to.output, ckpt, log_path };
	static const char *what[3] = { "-o", "--checkpoint", "--log" };
	for (int i = 0; i < 3; i++)
		for (int j = i + 1; j < 3; j++)
			if (outs[i] && outs[j] && cs_ofile_same(outs[i], outs[j]))
				usage_error("%s and %s name the same file '%s'", what[i], what[j],
					    outs[j]);
	check_env();

	cs_error err;
#ifdef CS_MPI
	/* processes on one machine share its cores */
	const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
	long nlocal = local ? strtol(local, NULL, 10) : 1;
	if (!threads && nlocal > 1) {
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		threads = ncpu > nlocal ? (int)(ncpu / nlocal) : 1;
	}
#endif
	model_setup(argv, threads, CS_BLAS_OMP_PASSIVE, verbose);
	/* after model_setup, which may re-execute the program */
	cs_comm *cm = cs_comm_single();
#ifdef CS_MPI
	if (!(cm = cs_comm_mpi_init(&err))) {
		report(&err);
		return EXIT_DATA;
	}
#else
	const char *world = getenv("OMPI_COMM_WORLD_SIZE");
	if (world && strcmp(world, "1")) {
		warnx_("built without MPI: %s processes of mpirun would each train alone (install "
		       "libopenmpi-dev, 'make deps', and rebuild)", world);
		return EXIT_USAGE;
	}
#endif
	to.comm = cm;
	static char rank_name[64];
	if (cm->rank > 0) {
		/* rank 0 speaks for the run, writes its files and its log */
		snprintf(rank_name, sizeof rank_name, "%s: rank %d", progname, cm->rank);
		progname = rank_name;
		r.quiet = 1;
		verbose = 0;
		log_path = NULL;
		outs[0] = outs[1] = outs[2] = NULL;
	}
	int rc = EXIT_DATA;
	cs_vocab *voc = NULL;
	cs_dataset *train = NULL, *valid = NULL;
	cs_bert *m = NULL;
	cs_train_state st = { .best = -1 };
	progress_init(&r.pr, r.quiet);
	for (int i = 0; i < 3; i++)
		if (outs[i] && cs_ofile_check(outs[i], &err) < 0) {
			if (err.code == CS_ERR_USAGE)
				rc = EXIT_USAGE;
			goto fail;
		}

	if (!(voc = cs_vocab_read(vocab_path, &err)) ||
	    cs_train_vocab(&cfg, &to.item_vocab, voc, vocab_path, inputs, &err) < 0)
		goto fail;
	for (size_t i = 0; predict && i < cfg.NF; i++)
		if (!strcmp(cfg.fname[i], predict))
			cfg.pred = (int)i + 1;
	if (predict && (!cfg.pred || cfg.head != CS_HEAD_CLOZE)) {
		cs_err(&err, CS_ERR_USAGE, NULL, 0, "--predict-input %s needs the cloze head and "
		       "'%s' among the --inputs", predict, predict);
		rc = EXIT_USAGE;
		goto fail;
	}
	if (!(m = cs_train_model(&cfg, inputs, voc, vocab_path, init_path, resume, &to, &st,
				 mem_limit(), &err)))
		goto fail;
	int kind = cs_data_kind(&cfg, 1);
	size_t window;
	train = cs_train_examples(train_path, &m, &cfg, !resume && !init_path, maxlen_set, attention,
				  norm, to.seed, to.item_vocab, mem_limit(), &window, &err);
	if (window)
		warnx_("warning: the examples on stdin are windows of %zu events, the model reads "
		       "%zu: give --max-len %zu to train on all of them", window, cfg.P, window);
	if (!train)
		goto fail;
	size_t keep = cs_batch_appends(&cfg, kind) ? cfg.P - 1 : cfg.P;
	if (valid_path && !(valid = cs_dataset_for_model(valid_path, &cfg, to.item_vocab, 0, NULL, &err)))
		goto fail;
	if (valid && train->holds_valid && cm->rank == 0)
		warnx_("warning: '%s' comes from cs-mask split --train-valid, so the validation "
		       "items are trained on: validation figures and early stopping are optimistic",
		       train_path);
	/* the largest batches of training and validation must fit in memory */
	cs_eval_opts eo;
	cs_eval_defaults(&eo);
	to.mem_limit = mem_limit();
	if (cs_dataset_mem_check(train, &cfg, 1, to.batch, to.mem_limit, resume ? resume : init_path,
				 &err) < 0 ||
	    (valid && cs_dataset_mem_check(valid, &cfg, 0, eo.batch, to.mem_limit,
					   resume ? resume : init_path, &err) < 0))
		goto fail;
	if (resume && cs_train_check_data(&st, &to, train, valid, resume, &err) < 0)
		goto fail;
	char origin[128];
	if (verbose) {
		char loss[96];
		if (to.loss == CS_LOSS_FULL)
			snprintf(loss, sizeof loss, "full softmax, %s", cs_tiedce_kernel(cfg.C));
		else
			snprintf(loss, sizeof loss, "%s over %zu %s negatives%s", cs_loss_name(to.loss),
				 to.negatives, cs_sampler_name(to.sampler),
				 to.sampler != CS_NEG_UNIFORM && !to.logq ? ", no logQ correction" : "");
		fprintf(stderr, "%s: OpenBLAS kernel %s (%s), %d threads; V=%zu C=%zu L=%zu "
			"heads=%zu max-len=%zu inputs=%zu head=%s attention=%s norm=%s, %zu "
			"parameters; loss %s\n", progname, cs_blas_corename(),
			cs_blas_core_origin(origin, sizeof origin), cs_blas_threads(), cfg.V, cfg.C,
			cfg.L, cfg.NH, cfg.P, cfg.NF, cs_bert_head_name(cfg.head),
			cfg.causal ? "causal" : "bidirectional", cfg.prenorm ? "pre" : "post",
			m->nparams, loss);
	}
	r.comm_verbose = verbose && cm->size > 1;
	if (!r.quiet && cm->size > 1)
		fprintf(stderr, "%s: %d processes (MPI) share each batch of %zu examples\n",
			progname, cm->size, to.batch);
	if (!r.quiet) {
		fprintf(stderr, "%s: %zu examples, %" PRIu64 " events", progname, train->n,
			train->events);
		if (kind != CS_DATA_CLOZE)
			fprintf(stderr, ", %" PRIu64 " labels (%" PRIu64 " positive)", train->nlabels,
				train->npos);
		if (train->truncated)
			fprintf(stderr, cfg.head == CS_HEAD_EVENT ? ", %zu cut into windows of %zu events"
				: ", %zu cut to their last %zu events", train->truncated, keep);
		if (train->skipped)
			fprintf(stderr, ", %zu left out with nothing to predict", train->skipped);
		if (valid)
			fprintf(stderr, "; %zu validation %s", valid->n,
				kind == CS_DATA_CLOZE ? "histories" : "sequences");
		fputc('\n', stderr);
	}
	if (log_path) {
		r.vname = kind == CS_DATA_CLOZE ? cloze_metrics : binary_metrics;
		const char *header = r.json ? NULL : kind == CS_DATA_CLOZE ?
			"epoch\tstep\tloss\texamples_per_s\telapsed_s\tvalid_ndcg10\t"
			"valid_hr10\tvalid_mrr\tbest\tlr\n" :
			"epoch\tstep\tloss\texamples_per_s\telapsed_s\tvalid_auc\t"
			"valid_prauc\tvalid_logloss\tbest\tlr\n";
		if (resume && trim_log(log_path, st.epoch, st.ts->step, header, &err) < 0)
			goto fail;
		if (!(r.log = fopen(log_path, resume ? "a" : "w"))) {
			cs_err(&err, CS_ERR_IO, log_path, 0, "cannot open: %s", strerror(errno));
			goto fail;
		}
		if (header && !resume)
			fputs(header, r.log);
		if (log_flush(&r)) {
			cs_err(&err, CS_ERR_IO, log_path, 0, "write error: %s", strerror(r.log_errno));
			goto fail;
		}
	}
	/* stop at the next step with a checkpoint, unless ignored from the start */
	int stops[] = { SIGINT, SIGTERM };
	for (size_t i = 0; i < 2; i++) {
		struct sigaction sa;
		if (sigaction(stops[i], NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
			continue;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_stop;
		sigaction(stops[i], &sa, NULL);
	}
	int got = cs_train(m, train, valid, &to, &st, on_event, &r, &err);
	progress_done(&r.pr);
	if (got < 0)
		goto fail;
	if (got == 1) {
		if (cm->rank > 0) /* rank 0 says it */
			goto out;
		if (r.log_errno)
			warnx_("%s: write error: %s", log_path, strerror(r.log_errno));
		warnx_("%s: checkpoint written to '%s'; continue with --resume %s",
		       r.log_errno ? "stopped" : "interrupted", ckpt, ckpt);
		goto out;
	}
	if (!r.quiet) {
		if (valid)
			warnx_("best validation %s %.4f at epoch %zu%s; model '%s'",
			       kind == CS_DATA_CLOZE ? "NDCG@10" : "AUC", st.best,
			       st.best_epoch, st.stopped_early ? " (stopped early)" : "", to.output);
		else
			warnx_("model '%s'", to.output);
	}
	rc = 0;
	goto out;
fail:
	progress_done(&r.pr);
	if (cm->size > 1 && cm->failed < 0) { /* failed before training: tell the others */
		cs_error e2;
		cs_comm_agree(cm, 0, &e2);
	}
	/* one message: the failed rank's own, or rank 0's saying which failed */
	if (cm->size == 1 || cm->failed == cm->rank || cm->rank == 0)
		report(&err);
out:
	if (r.log) {
		int bad = log_flush(&r); /* fclose returns 0 after a failed flush */
		if ((fclose(r.log) != 0 || bad) && rc == 0) {
			warnx_("%s: write error: %s", log_path,
			       strerror(r.log_errno ? r.log_errno : errno));
			rc = EXIT_DATA;
		}
	}
	cs_train_state_free(&st);
	cs_bert_free(m);
	cs_dataset_free(train);
	cs_dataset_free(valid);
	cs_vocab_free(voc);
	free(ckpt);
#ifdef CS_MPI
	cs_comm_mpi_finalize(cm);
#endif
	return rc;
}
