/* cs-recommend - top-K next items for histories, from a BERT4Rec model;
 * or the probabilities of a session or event head. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "blas.h"
#include "bertfile.h"
#include "evaluate.h"
#include "recommend.h"
#include "text.h"
#include "vocab.h"

#include "common.h"

const char *progname = "cs-recommend";

static void __attribute__((noreturn)) usage(void)
{
	printf("usage: cs-recommend -m MODEL -v VOCAB [options] [IN]\n"
	       "Print the top-K next items for each history in IN or stdin: an encoded\n"
	       "stream, or with --text lines 'key<TAB>item item ...' of original item ids.\n"
	       "Output lines: key<TAB>rank<TAB>item<TAB>score.\n"
	       "\n"
	       "  -m, --model FILE     model from cs-train (required)\n"
	       "  -v, --vocab FILE     the vocabulary of the model (required)\n"
	       "  -k, --top N          items per history [10]\n"
	       "      --text           read text lines instead of a stream\n"
	       "      --key FIELD      stream field naming a history [user, else session]\n"
	       "  -x, --exclude-seen   never recommend an item of the history\n"
	       "  -J, --json           a JSON object per line instead: {\"key\", \"items\",\n"
	       "                       \"scores\"}; {\"key\", \"probability\"} or {\"key\",\n"
	       "                       \"position\", \"item\", \"probability\"} for the heads\n"
	       "  -o, --output FILE    write here, atomically ('-': stdout) [-]\n"
	       "      --batch N        histories scored at once [256]\n"
	       "  -j, --threads N      threads [all cores]\n"
	       "  -q, --quiet          no summary on stderr\n"
	       "  -h, --help           this help\n"
	       "  -V, --version        version\n"
	       "Histories longer than the model's maximum length keep their most recent items.\n"
	       "CS_KERNEL=auto|amx|bf16|fp32|avx512|c picks the kernel that scores the\n"
	       "catalogue [auto: the fastest this CPU runs]; all give the same items.\n"
	       "\n"
	       "With a session model, print key<TAB>probability for each sequence of IN\n"
	       "(from cs-mask session); with an event model, key<TAB>position<TAB>item<TAB>\n"
	       "probability for each event labelled 0 or 1 (from cs-mask returns: each\n"
	       "purchase). The labels themselves are not used.\n");
	exit(0);
}

enum { O_KEY = 256, O_BATCH };

static const struct option longopts[] = {
	{ "model", required_argument, 0, 'm' },
	{ "vocab", required_argument, 0, 'v' },
	{ "top", required_argument, 0, 'k' },
	{ "text", no_argument, 0, 't' },
	{ "json", no_argument, 0, 'J' },
	{ "key", required_argument, 0, O_KEY },
	{ "exclude-seen", no_argument, 0, 'x' },
	{ "batch", required_argument, 0, O_BATCH },
	{ "output", required_argument, 0, 'o' },
	{ "threads", required_argument, 0, 'j' },
	{ "quiet", no_argument, 0, 'q' },
	{ "help", no_argument, 0, 'h' },
	{ "version", no_argument, 0, 'V' },
	{ 0, 0, 0, 0 }
};

typedef struct ctx {
	cs_bert *m;
	double mem_limit;   /* bytes the model's forwards may need, 0: no limit */
	const cs_vocab *voc;
	size_t vf, k, batch;
	size_t room;        /* events of a history the model reads */
	int exclude;
	int json;           /* --json: an object per line */
	cs_recommender *rec;
	uint32_t *ids;
	size_t *nres;     /* (batch) items found per history */
	float *vals;      /* ids, vals: (batch, k) */
	uint64_t histories, truncated;
	FILE *out;          /* stdout or the -o file */
	const char *oname;
	char *kbuf, *line;  /* put_top's: a key escaped, a line */
	size_t kcap, lcap;
} ctx;

/* Add one history (items, already ids) under key; all of it is kept for
 * --exclude-seen, the model reads the last c->room. */
static int add(ctx *c, cs_histories *pd, const char *key, size_t klen, const uint32_t *it,
	       size_t n, cs_error *err)
{
	if (n > c->room)
		c->truncated++;
	return cs_histories_add(pd, key, klen, it, n, err);
}

/* A key, escaped (a tab or newline in it cannot forge lines), and a tab. */
static void put_key(FILE *fp, const char *keys, const size_t *key_off, size_t i)
{
	cs_text_put(fp, keys + key_off[i], key_off[i + 1] - key_off[i] - 1);
	fputc('\t', fp);
}

/* --json: '{"key":KEY,' with the key as a JSON string. */
static void json_key(FILE *fp, const char *keys, const size_t *key_off, size_t i)
{
	fputs("{\"key\":", fp);
	cs_text_put_json(fp, keys + key_off[i], key_off[i + 1] - key_off[i] - 1);
	fputc(',', fp);
}

/* --json: a score or probability; null if it is not finite. */
static void json_num(FILE *fp, float v)
{
	if (isfinite(v))
		fprintf(fp, "%.6g", v);
	else
		fputs("null", fp);
}

/* --json: one history's top items, {"key", "items", "scores"}. */
static void json_top(ctx *c, const cs_histories *pd, size_t i, size_t row)
{
	json_key(c->out, pd->d.keys, pd->d.key_off, i);
	fputs("\"items\":[", c->out);
	for (size_t r = 0; r < c->nres[row]; r++) {
		size_t len;
		const char *tok = cs_vocab_token(c->voc, c->vf, c->ids[row * c->k + r], &len);
		if (r)
			fputc(',', c->out);
		cs_text_put_json(c->out, tok, len);
	}
	fputs("],\"scores\":[", c->out);
	for (size_t r = 0; r < c->nres[row]; r++) {
		if (r)
			fputc(',', c->out);
		json_num(c->out, c->vals[row * c->k + r]);
	}
	fputs("]}\n", c->out);
}

/* Room for one escaped string of n bytes (cs_text_escape: 4 a byte, a NUL). */
static char *room(char **buf, size_t *cap, size_t n)
{
	if (4 * n + 1 > *cap) {
		char *b = realloc(*buf, 4 * n + 1);
		if (!b)
			return NULL;
		*buf = b;
		*cap = 4 * n + 1;
	}
	return *buf;
}

/*
 * One history's lines key<TAB>rank<TAB>item<TAB>score, each built in a
 * buffer and written at once (the key escaped once for its k lines):
 * four stdio calls a line, two of them printf, were a few per cent of
 * the run. The bytes are those fprintf("%zu", "%.6g") and cs_text_put
 * wrote (strfromf's "%.6g" agreed with snprintf's on 20 million random
 * float bit patterns, infinities and NaNs among them).
 */
static int put_top(ctx *c, const cs_histories *pd, size_t i, size_t row)
{
	const char *keys = pd->d.keys;
	const size_t *key_off = pd->d.key_off;
	size_t klen = key_off[i + 1] - key_off[i] - 1;
	if (!room(&c->kbuf, &c->kcap, klen))
		return -1;
	size_t ke = cs_text_escape(c->kbuf, keys + key_off[i], klen);
	for (size_t r = 0; r < c->nres[row]; r++) {
		size_t len, at = row * c->k + r;
		const char *tok = cs_vocab_token(c->voc, c->vf, c->ids[at], &len);
		/* key, tab, rank (20 digits), tab, token, tab, score (%.6g: 13), newline */
		if (!room(&c->line, &c->lcap, ke + len + 40))
			return -1;
		char *line = c->line, *p = line;
		memcpy(p, c->kbuf, ke);
		p += ke;
		*p++ = '\t';
		char dig[24];
		size_t nd = 0;
		for (size_t v = r + 1; v; v /= 10)
			dig[nd++] = (char)('0' + v % 10);
		while (nd)
			*p++ = dig[--nd];
		*p++ = '\t';
		p += cs_text_escape(p, tok, len);
		*p++ = '\t';
		/* glibc's strfromf formats as printf's %.6g does, without the
		 * positional path printf takes here (libquadmath, loaded with
		 * OpenBLAS, registers a printf modifier) */
		p += strfromf(p, 32, "%.6g", c->vals[at]);
		*p++ = '\n';
		if (fwrite(line, 1, (size_t)(p - line), c->out) != (size_t)(p - line))
			return 0; /* the stream's error, reported at the flush */
	}
	return 0;
}

/* Score the pending histories, print their top k and flush. */
static int flush(ctx *c, cs_histories *pd, cs_error *err)
{
	for (size_t first = 0; first < pd->d.n; first += c->batch) {
		size_t B = pd->d.n - first < c->batch ? pd->d.n - first : c->batch;
		if (cs_recommender_run(c->rec, &pd->d, first, B, c->k, c->exclude, c->ids,
				       c->vals, c->nres, err) < 0)
			return -1;
		for (size_t i = 0; i < B; i++) {
			if (c->json) {
				json_top(c, pd, first + i, i);
				continue;
			}
			if (put_top(c, pd, first + i, i) < 0)
				return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
		}
	}
	c->histories += pd->d.n;
	cs_histories_clear(pd);
	if (fflush(c->out) != 0 || ferror(c->out))
		return cs_err(err, CS_ERR_IO, c->oname, 0, "write error: %s", strerror(errno));
	return 0;
}

/* Histories from an encoded stream. */
static int from_stream(ctx *c, cs_histories *pd, const char *in, const char *keyfield,
		       uint64_t model_vocab, cs_error *err)
{
	cs_record rec = { 0 };
	int rc = -1, got;
	cs_reader *r = cs_reader_open(in, err);
	if (!r)
		return -1;
	const cs_schema *s = cs_reader_schema(r);
	int item = cs_schema_find(s, "item"), key;
	if (item < 0 || s->f[item].level != CS_EVENT || s->f[item].type != CS_ID) {
		cs_err(err, CS_ERR_FORMAT, cs_reader_path(r), 0,
		       "stream has no encoded event field 'item'%s",
		       item >= 0 && s->f[item].type == CS_STRING ?
		       " (encode it with cs-vocab, or use --text)" : "");
		goto out;
	}
	if (s->f[item].vocab != model_vocab) {
		cs_vocab_check_field(c->voc, s, cs_reader_path(r), "item", err);
		goto out;
	}
	if ((key = cs_dataset_key_field(s, keyfield ? keyfield : "", cs_reader_path(r), err)) < -1)
		goto out;
	while ((got = cs_reader_next(r, &rec, err)) == 1) {
		char num[CS_KEY_BUF];
		size_t klen;
		const char *k = cs_dataset_key(s, key, &rec, cs_reader_records(r), num, &klen);
		const uint32_t *it = rec.col[item].v.u32;
		for (size_t j = 0; j < rec.nevents; j++)
			if (it[j] >= c->m->cfg.V) {
				cs_err(err, CS_ERR_FORMAT, cs_reader_path(r), 0,
				       "record %" PRIu64 ": item id %u is beyond the model's %zu items",
				       cs_reader_records(r), it[j], c->m->cfg.V);
				goto out;
			}
		if (add(c, pd, k, klen, it, rec.nevents, err) < 0)
			goto out;
		if (pd->d.n >= c->batch && flush(c, pd, err) < 0)
			goto out;
	}
	if (got == 0 && flush(c, pd, err) == 0)
		rc = 0;
out:
	cs_record_free(&rec);
	cs_reader_close(r);
	return rc;
}

/* A token of the input for a message: control bytes as \xHH, at most 40 bytes. */
static void put_token(FILE *fp, const char *p, size_t n)
{
	for (size_t i = 0; i < n && i < 40; i++) {
		unsigned char b = (unsigned char)p[i];
		if (b < 0x20 || b == 0x7f || b == '\\')
			fprintf(fp, "\\x%02x", b);
		else
			fputc(b, fp);
	}
	if (n > 40)
		fprintf(fp, "... (%zu bytes)", n);
}

/*
 * Histories from text lines 'key<TAB>item item ...'. A batch is what has
 * arrived, up to c->batch: when the input stalls, what was read is
 * answered (and flushed) before the wait, so that a service writing one
 * history and waiting gets its answer.
 */
static int from_text(ctx *c, cs_histories *pd, const char *in, cs_error *err)
{
	int std = !strcmp(in, "-");
	const char *name = std ? "<stdin>" : in;
	int fd = std ? 0 : open(in, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cs_err(err, CS_ERR_IO, in, 0, "cannot open: %s", strerror(errno));
	cs_lines *lr = cs_lines_new(fd, name);
	char *line;
	size_t len, ids_cap = 0;
	uint32_t *ids = NULL;
	long lineno = 0;
	uint64_t unknown = 0;
	int rc = -1, got;
	if (!lr) {
		cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
		goto out;
	}
	while ((got = cs_lines_next(lr, pd->d.n == 0, &line, &len, err)) != 0) {
		if (got < 0)
			goto out;
		if (got == CS_LINES_LATER) {
			if (flush(c, pd, err) < 0)
				goto out;
			continue;
		}
		lineno++;
		while (len > 0 && line[len - 1] == '\r')
			line[--len] = 0;
		if (len == 0)
			continue;
		if (memchr(line, 0, len)) {
			cs_err(err, CS_ERR_FORMAT, name, lineno, "NUL byte in line");
			goto out;
		}
		char *tab = memchr(line, '\t', len);
		if (!tab) {
			cs_err(err, CS_ERR_FORMAT, name, lineno, "expected 'key<TAB>items', found no tab");
			goto out;
		}
		size_t n = 0;
		for (char *p = tab + 1; *p;) {
			while (*p == ' ' || *p == '\t')
				p++;
			char *e = p;
			while (*e && *e != ' ' && *e != '\t')
				e++;
			if (e == p)
				break;
			uint32_t id = cs_vocab_lookup(c->voc, c->vf, p, (size_t)(e - p));
			if (id < CS_ITEM_FIRST) {
				if (unknown++ < 5) {
					fprintf(stderr, "%s: %s:%ld: unknown item '", progname, name, lineno);
					put_token(stderr, p, (size_t)(e - p));
					fputs("' skipped\n", stderr);
				}
			} else {
				if (cs_grow((void **)&ids, &ids_cap, n + 1, sizeof *ids) < 0) {
					cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
					goto out;
				}
				ids[n++] = id;
			}
			p = e;
		}
		if (add(c, pd, line, (size_t)(tab - line), ids, n, err) < 0)
			goto out;
		if (pd->d.n >= c->batch && flush(c, pd, err) < 0)
			goto out;
	}
	if (flush(c, pd, err) < 0)
		goto out;
	if (unknown > 5)
		fprintf(stderr, "%s: %s: %" PRIu64 " unknown items skipped in all\n", progname, name,
			unknown);
	rc = 0;
out:
	cs_lines_free(lr);
	free(ids);
	if (!std)
		close(fd);
	return rc;
}

/* Probabilities of a session or event head for the labelled data in in. */
static int predict(ctx *c, const char *in, const char *keyfield, uint64_t fp, cs_error *err)
{
	cs_dataset *d = cs_dataset_for_model(in, &c->m->cfg, fp, 0, keyfield ? keyfield : "", err);
	float *p = d ? malloc(d->nlabels * sizeof *p + 1) : NULL;
	cs_bert_work *w = p ? cs_bert_work_new(err) : NULL;
	int rc = -1;
	if (d && !p)
		cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	if (!w || cs_dataset_mem_check(d, &c->m->cfg, 0, c->batch, c->mem_limit, NULL, err) < 0)
		goto out;
	w->mem_limit = c->mem_limit;
	if (cs_predict(c->m, w, d, c->batch, p, NULL, err) < 0)
		goto out;
	size_t k = 0;
	for (size_t i = 0; i < d->n; i++) {
		if (c->m->cfg.head == CS_HEAD_SESSION && c->json) {
			json_key(c->out, d->keys, d->key_off, i);
			fputs("\"probability\":", c->out);
			json_num(c->out, p[k++]);
			fputs("}\n", c->out);
			continue;
		}
		if (c->m->cfg.head == CS_HEAD_SESSION) {
			put_key(c->out, d->keys, d->key_off, i);
			fprintf(c->out, "%.6g\n", p[k++]);
			continue;
		}
		for (size_t j = d->off[i]; j < d->off[i + 1]; j++) {
			if (d->label[j] == CS_NO_LABEL)
				continue;
			size_t len;
			const char *tok = cs_vocab_token(c->voc, c->vf, d->item[j], &len);
			if (c->json) {
				json_key(c->out, d->keys, d->key_off, i);
				fprintf(c->out, "\"position\":%zu,\"item\":",
					d->start[i] + (j - d->off[i]) + 1);
				if (tok)
					cs_text_put_json(c->out, tok, len);
				else
					fputs("null", c->out);
				fputs(",\"probability\":", c->out);
				json_num(c->out, p[k++]);
				fputs("}\n", c->out);
				continue;
			}
			put_key(c->out, d->keys, d->key_off, i);
			fprintf(c->out, "%zu\t", d->start[i] + (j - d->off[i]) + 1);
			if (tok)
				cs_text_put(c->out, tok, len);
			else
				fputc('?', c->out);
			fprintf(c->out, "\t%.6g\n", p[k++]);
		}
	}
	c->histories = d->n;
	if (ferror(c->out))
		cs_err(err, CS_ERR_IO, c->oname, 0, "write error: %s", strerror(errno));
	else
		rc = 0;
out:
	cs_bert_work_free(w);
	free(p);
	cs_dataset_free(d);
	return rc;
}

/* The vocabulary, read beside the model. */
typedef struct vocab_job {
	const char *path;
	cs_vocab *voc;
	cs_error err;
} vocab_job;

static void *read_vocab(void *arg)
{
	vocab_job *j = arg;
	j->voc = cs_vocab_read(j->path, &j->err);
	return NULL;
}

int main(int argc, char **argv)
{
	cleanup_on_signals();
	const char *model_path = NULL, *vocab_path = NULL, *keyfield = NULL;
	int opt, threads = 0, text = 0, quiet = 0;
	ctx c = { .k = 10, .batch = 256, .out = stdout, .oname = "<stdout>" };
	const char *out_path = NULL;
	cs_ofile of = { 0 };
	/* -t: the spelling of --text before the suite's option table (cs(7)),
	 * where it means --time; kept, as cs-recommend has no --time */
	while ((opt = getopt_long(argc, argv, "m:v:k:tJxo:j:qhV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'm': model_path = optarg; break;
		case 'v': vocab_path = optarg; break;
		case 'k': c.k = (size_t)parse_long("--top", optarg, 1, 1 << 20); break;
		case 't': text = 1; break;
		case 'J': c.json = 1; break;
		case O_KEY: keyfield = optarg; break;
		case 'x': c.exclude = 1; break;
		case 'o': out_path = optarg; break;
		case O_BATCH: c.batch = (size_t)parse_long("--batch", optarg, 1, 1 << 16); break;
		case 'j': threads = (int)parse_long("--threads", optarg, 1, 1024); break;
		case 'q': quiet = 1; break;
		case 'h': usage();
		case 'V': print_version();
		default: usage_error("bad option");
		}
	}
	if (!model_path || !vocab_path)
		usage_error("missing %s", model_path ? "-v VOCAB" : "-m MODEL");
	if (optind + 1 < argc)
		usage_error("too many inputs");
	const char *in = optind < argc ? argv[optind] : "-";
	check_env();
	cs_error err;
	model_setup(argv, threads, 0, 0);
	int rc = EXIT_DATA;
	uint64_t fp;
	cs_vocab *voc = NULL;
	cs_histories pd = { 0 };
	double t0 = cs_now();
	if (out_path && strcmp(out_path, "-") != 0) {
		if (cs_ofile_open(&of, out_path, &err) < 0)
			goto fail;
		c.out = of.fp;
		c.oname = out_path;
	}
	/*
	 * Model and vocabulary read side by side (a one-history run waits for
	 * both), the vocabulary on a thread of its own: an OpenMP team's
	 * thread would spin for milliseconds after it, on the cores the rest
	 * of the start-up needs.
	 */
	vocab_job vj = { .path = vocab_path };
	pthread_t vt;
	int side = threads != 1 && pthread_create(&vt, NULL, read_vocab, &vj) == 0;
	c.m = cs_bert_load(model_path, &fp, NULL, &err);
	if (side)
		pthread_join(vt, NULL);
	else
		read_vocab(&vj);
	voc = vj.voc;
	cs_error verr = vj.err;
	if (!c.m || !voc) {
		if (c.m)
			err = verr;
		goto fail;
	}
	int vf = cs_vocab_find(voc, "item");
	if (vf < 0 || cs_vocab_fingerprint(voc, (size_t)vf) != fp) {
		cs_err(&err, CS_ERR_FORMAT, vocab_path, 0,
		       "not the vocabulary the model '%s' was trained with", model_path);
		goto fail;
	}
	c.voc = voc;
	c.vf = (size_t)vf;
	c.room = cs_batch_appends(&c.m->cfg, cs_data_kind(&c.m->cfg, 0)) ? c.m->cfg.P - 1
									 : c.m->cfg.P;
	/* every batch is checked before it runs (histories come one by one) */
	c.mem_limit = mem_limit();
	if (c.m->cfg.head != CS_HEAD_CLOZE) {
		if (text)
			usage_error("a %s model reads streams from cs-mask, not --text",
				    cs_bert_head_name(c.m->cfg.head));
		if (predict(&c, in, keyfield, fp, &err) < 0)
			goto fail;
		goto done;
	}
	if (c.m->cfg.NF) {
		cs_err(&err, CS_ERR_USAGE, model_path, 0,
		       "the model reads extra event inputs (%s, ...): cs-recommend takes item "
		       "histories only; rank with cs-eval", c.m->cfg.fname[0]);
		goto fail;
	}
	if (!(c.rec = cs_recommender_new(c.m, c.batch, NULL, c.mem_limit, &err)))
		goto fail;
	c.ids = malloc(c.batch * c.k * sizeof *c.ids);
	c.vals = malloc(c.batch * c.k * sizeof *c.vals);
	c.nres = malloc(c.batch * sizeof *c.nres);
	if (!c.ids || !c.vals || !c.nres) {
		cs_err(&err, CS_ERR_NOMEM, NULL, 0, "out of memory");
		goto fail;
	}
	if ((text ? from_text(&c, &pd, in, &err) : from_stream(&c, &pd, in, keyfield, fp, &err)) < 0)
		goto fail;
done:
	if (fflush(c.out) != 0 || ferror(c.out)) {
		cs_err(&err, CS_ERR_IO, c.oname, 0, "write error: %s", strerror(errno));
		goto fail;
	}
	if (of.fp) {
		int bad = cs_ofile_commit(&of, &err) < 0;
		of.fp = NULL;
		if (bad)
			goto fail;
	}
	if (!quiet) {
		double t = cs_now() - t0;
		warnx_("%" PRIu64 " histories in %.2f s (%.0f/s%s%s)", c.histories, t,
		       c.histories / (t + 1e-9), c.rec ? ", kernel " : "",
		       c.rec ? cs_recommender_kernel(c.rec) : "");
		if (c.truncated)
			warnx_("%" PRIu64 " histories longer than %zu items kept their most recent ones",
			       c.truncated, c.room);
	}
	rc = 0;
	goto out;
fail:
	if ((err.code == CS_ERR_LIMIT || err.code == CS_ERR_MODEL) && !err.path[0])
		snprintf(err.path, sizeof err.path, "%s", model_path);
	report(&err);
out:
	if (of.fp)
		cs_ofile_abort(&of);
	cs_recommender_free(c.rec);
	free(c.ids);
	free(c.vals);
	free(c.nres);
	free(c.kbuf);
	free(c.line);
	cs_histories_free(&pd);
	cs_vocab_free(voc);
	cs_bert_free(c.m);
	return rc;
}
