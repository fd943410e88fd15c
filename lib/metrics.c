/* metrics.c - HR, NDCG and MRR at cut-offs; ranks; negative sampling; binary classification. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "metrics.h"

void cs_metrics_init(cs_metrics *m, const size_t *ks, size_t nk)
{
	memset(m, 0, sizeof *m);
	m->nk = nk < CS_METRICS_MAXK ? nk : CS_METRICS_MAXK;
	memcpy(m->k, ks, m->nk * sizeof *ks);
}

void cs_metrics_add(cs_metrics *m, size_t rank)
{
	for (size_t i = 0; i < m->nk; i++)
		if (rank < m->k[i]) {
			m->hr[i] += 1.0;
			m->ndcg[i] += 1.0 / log2((double)rank + 2.0);
		}
	m->mrr += 1.0 / ((double)rank + 1.0);
	m->n++;
}

void cs_metrics_merge(cs_metrics *a, const cs_metrics *b)
{
	for (size_t i = 0; i < a->nk; i++) {
		a->hr[i] += b->hr[i];
		a->ndcg[i] += b->ndcg[i];
	}
	a->mrr += b->mrr;
	a->n += b->n;
}

double cs_metrics_hr(const cs_metrics *m, size_t i) { return m->n ? m->hr[i] / m->n : 0; }
double cs_metrics_ndcg(const cs_metrics *m, size_t i) { return m->n ? m->ndcg[i] / m->n : 0; }
double cs_metrics_mrr(const cs_metrics *m) { return m->n ? m->mrr / m->n : 0; }

/* Does item j (score s) come before the target (score st, id t)? */
static inline int ahead(float s, uint32_t j, float st, uint32_t t)
{
	return s > st || (s == st && j != t);
}

size_t cs_rank_full(const float *score, size_t V, size_t first, uint32_t target,
		    const uint32_t *excl, uint32_t stamp)
{
	float st = score[target];
	size_t r = 0;
	if (!excl) {
		for (size_t j = first; j < V; j++)
			r += ahead(score[j], (uint32_t)j, st, target);
		return r;
	}
	for (size_t j = first; j < V; j++)
		r += excl[j] != stamp && ahead(score[j], (uint32_t)j, st, target);
	return r;
}

size_t cs_rank_among(const float *score, uint32_t target, const uint32_t *cand,
		     size_t n)
{
	float st = score[target];
	size_t r = 0;
	for (size_t i = 0; i < n; i++)
		r += cand[i] != target && ahead(score[cand[i]], cand[i], st, target);
	return r;
}

struct cs_sampler {
	size_t V, first;
	double *cdf; /* (V - first) cumulative weights, NULL: uniform */
};

cs_sampler *cs_sampler_new(size_t V, size_t first, const double *w, cs_error *err)
{
	cs_sampler *s = calloc(1, sizeof *s);
	if (!s || V <= first) {
		free(s);
		cs_err(err, s ? CS_ERR_USAGE : CS_ERR_NOMEM, NULL, 0,
		       s ? "no items to sample from" : "out of memory");
		return NULL;
	}
	s->V = V;
	s->first = first;
	if (w) {
		if (!(s->cdf = malloc((V - first) * sizeof *s->cdf))) {
			free(s);
			cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
			return NULL;
		}
		double acc = 0;
		for (size_t j = first; j < V; j++) {
			acc += w[j] > 0 ? w[j] : 0;
			s->cdf[j - first] = acc;
		}
		if (acc <= 0) { /* no weights at all: uniform */
			free(s->cdf);
			s->cdf = NULL;
		}
	}
	return s;
}

void cs_sampler_free(cs_sampler *s)
{
	if (!s)
		return;
	free(s->cdf);
	free(s);
}

/* One item by weight or uniformly. */
static size_t draw_one(const cs_sampler *s, cs_nn_rng *rng)
{
	size_t n = s->V - s->first;
	double u = (double)(cs_nn_rng_next(rng) >> 11) * 0x1p-53;
	if (!s->cdf)
		return s->first + (size_t)(u * (double)n);
	double x = u * s->cdf[n - 1];
	size_t lo = 0, hi = n - 1;
	while (lo < hi) { /* first index with cdf > x */
		size_t mid = lo + (hi - lo) / 2;
		if (s->cdf[mid] > x)
			hi = mid;
		else
			lo = mid + 1;
	}
	return s->first + lo;
}

size_t cs_sampler_draw(const cs_sampler *s, cs_nn_rng *rng, size_t n,
		       uint32_t *excl, uint32_t stamp, uint32_t *out)
{
	size_t got = 0, tries = 0, avail = 0;
	/* Rejection sampling; past many misses, count what is left to be sure
	 * (soon, when n asks for more items than there are: never 64 n misses) */
	size_t pool = s->V - s->first, patience = 64 * ((n < pool ? n : pool) + 16);
	while (got < n) {
		size_t j = draw_one(s, rng);
		if (excl[j] != stamp) {
			excl[j] = stamp;
			out[got++] = (uint32_t)j;
			continue;
		}
		if (++tries == patience) {
			avail = 0;
			for (size_t k = s->first; k < s->V; k++)
				avail += excl[k] != stamp &&
					 (!s->cdf || s->cdf[k - s->first] >
					  (k > s->first ? s->cdf[k - s->first - 1] : 0));
			if (avail == 0)
				break;
			tries = 0;
		}
	}
	return got;
}

/* ------------------------------------------------------------ binary classification */

typedef struct scored {
	float p;
	uint8_t y;
} scored;

/* Descending by score; within a tie any order will do (ties are walked as one group). */
static int by_score_desc(const void *a, const void *b)
{
	float x = ((const scored *)a)->p, y = ((const scored *)b)->p;
	return (x < y) - (x > y);
}

int cs_binmetrics_compute(const float *prob, const uint8_t *label, size_t n, double threshold,
			  cs_binmetrics *out, cs_error *err)
{
	if (n == 0)
		return cs_err(err, CS_ERR_USAGE, NULL, 0, "no examples");
	uint64_t npos = 0, tp = 0, fp = 0;
	double loss = 0;
	/* Check the input; log loss and the confusion counts on the way. */
	for (size_t i = 0; i < n; i++) {
		if (label[i] > 1)
			return cs_err(err, CS_ERR_FORMAT, NULL, 0,
				      "example %zu: label %u is not 0 or 1", i, label[i]);
		if (!(prob[i] >= 0 && prob[i] <= 1)) /* NaN fails both */
			return cs_err(err, CS_ERR_FORMAT, NULL, 0,
				      "example %zu: probability %g is not in [0, 1]", i, prob[i]);
		double q = fmin(fmax(prob[i], 1e-7), 1 - 1e-7);
		loss -= label[i] ? log(q) : log1p(-q);
		npos += label[i];
		if (prob[i] >= threshold) {
			tp += label[i];
			fp += !label[i];
		}
	}
	scored *s = malloc(n * sizeof *s);
	if (!s)
		return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	for (size_t i = 0; i < n; i++)
		s[i] = (scored){ prob[i], label[i] };
	qsort(s, n, sizeof *s, by_score_desc);

	/*
	 * Walk groups of equal score from the top. A positive beats every
	 * negative below its group and half of those beside it: the
	 * Mann-Whitney U with average ranks for ties. Average precision adds
	 * each group's recall gain times the precision after the group.
	 */
	uint64_t nneg = n - npos, seen = 0, seenpos = 0;
	double u = 0, ap = 0;
	for (size_t i = 0, j; i < n; i = j) {
		uint64_t gp = 0;
		for (j = i; j < n && s[j].p == s[i].p; j++)
			gp += s[j].y;
		uint64_t gn = (j - i) - gp;
		seen += j - i;
		seenpos += gp;
		u += (double)gp * ((double)(nneg - (seen - seenpos)) + 0.5 * (double)gn);
		ap += (double)gp * (double)seenpos / (double)seen;
	}
	free(s);

	double prec = tp + fp ? (double)tp / (double)(tp + fp) : 0;
	double rec = npos ? (double)tp / (double)npos : 0;
	*out = (cs_binmetrics){
		.n = n, .npos = npos,
		.auc = npos && nneg ? u / ((double)npos * (double)nneg) : NAN,
		.prauc = npos ? ap / (double)npos : NAN,
		.logloss = loss / (double)n,
		.threshold = threshold,
		.precision = prec, .recall = rec,
		.f1 = prec + rec > 0 ? 2 * prec * rec / (prec + rec) : 0,
		.pos_rate = (double)npos / (double)n,
	};
	return 0;
}

int cs_binmetrics_read(const char *path, double threshold, cs_binmetrics *out, cs_error *err)
{
	int std = !strcmp(path, "-");
	const char *name = std ? "<stdin>" : path;
	FILE *fp = std ? stdin : fopen(path, "r");
	float *p = NULL;
	uint8_t *y = NULL;
	size_t n = 0, cap_p = 0, cap_y = 0, cap = 0;
	char *line = NULL;
	long lineno = 0;
	int rc = -1;
	if (!fp)
		return cs_err(err, CS_ERR_IO, path, 0, "cannot open: %s", strerror(errno));
	while (getline(&line, &cap, fp) >= 0) {
		char *e, *t;
		lineno++;
		double v = strtod(line, &e);
		if (e == line || *e != '\t') {
			cs_err(err, CS_ERR_FORMAT, name, lineno, "expected 'probability<TAB>label'");
			goto out;
		}
		long l = strtol(e + 1, &t, 10);
		if (t == e + 1 || (*t && *t != '\n' && *t != '\r') || (l != 0 && l != 1)) {
			cs_err(err, CS_ERR_FORMAT, name, lineno, "label is not 0 or 1");
			goto out;
		}
		if (!(v >= 0 && v <= 1)) {
			cs_err(err, CS_ERR_FORMAT, name, lineno, "probability %g not in [0, 1]", v);
			goto out;
		}
		if (cs_grow((void **)&p, &cap_p, n + 1, sizeof *p) < 0 ||
		    cs_grow((void **)&y, &cap_y, n + 1, sizeof *y) < 0) {
			cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
			goto out;
		}
		p[n] = (float)v;
		y[n++] = (uint8_t)l;
	}
	if (ferror(fp)) {
		cs_err(err, CS_ERR_IO, name, 0, "read error: %s", strerror(errno));
		goto out;
	}
	if (cs_binmetrics_compute(p, y, n, threshold, out, err) < 0) {
		snprintf(err->path, sizeof err->path, "%s", name);
		goto out;
	}
	rc = 0;
out:
	if (!std)
		fclose(fp);
	free(line);
	free(p);
	free(y);
	return rc;
}
