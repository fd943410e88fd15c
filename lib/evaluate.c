/* evaluate.c - full and sampled ranking evaluation; top-k selection. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "evaluate.h"

/* A model whose scores overflow ranks NaN first: refuse it instead. */
static int finite_or_fail(const float *x, size_t n, const char *what, cs_error *err)
{
	for (size_t j = 0; j < n; j++)
		if (!isfinite(x[j]))
			return cs_err(err, CS_ERR_MODEL, NULL, 0,
				      "model gives a non-finite %s (%g): its weights overflow in "
				      "the forward pass", what, x[j]);
	return 0;
}

/*
 * The scores of hidden state h (C) finite and in the float range, without
 * making them: |score| <= sum |h| max|w| + max|b|, and only a model near
 * the range (never, for a sane one) has its scores made here.
 */
static int scores_finite(const cs_bert *m, const float *h, float wmax, float bmax,
			 cs_error *err)
{
	size_t C = m->cfg.C;
	double hsum = 0;
	for (size_t c = 0; c < C; c++)
		hsum += fabs(h[c]);
	if (!isfinite(hsum))
		return cs_err(err, CS_ERR_MODEL, NULL, 0, "model gives a non-finite score "
			      "(%g): its weights overflow in the forward pass", hsum);
	if (hsum * wmax + bmax < FLT_MAX / 4)
		return 0;
	for (size_t j = CS_ITEM_FIRST; j < m->cfg.V; j++) {
		double s = m->params.out_b[j];
		for (size_t c = 0; c < C; c++)
			s += (double)h[c] * m->params.wte[j * C + c];
		if (!(fabs(s) < FLT_MAX / 2))
			return cs_err(err, CS_ERR_MODEL, NULL, 0, "model gives a non-finite score "
				      "(%g): its weights overflow in the forward pass", s);
	}
	return 0;
}

void cs_eval_defaults(cs_eval_opts *o)
{
	memset(o, 0, sizeof *o);
	size_t ks[] = { 1, 5, 10, 20 };
	o->nk = 4;
	memcpy(o->ks, ks, sizeof ks);
	o->full = 1;
	o->negatives = 100;
	o->popular = 1;
	o->batch = 256;
	o->seed = 1;
}

/*
 * The output layer's scores come from cs_scorer in single precision (the
 * scores cs-recommend ranks by): the full ranking counts the items that
 * reach each target's score as they are computed, the sampled one scores
 * the target and its negatives alone; no (B, V) score matrix is made.
 */
int cs_evaluate(const cs_bert *m, cs_bert_work *w, const cs_dataset *d, const cs_eval_opts *o,
		cs_eval_result *res, cs_error *err)
{
	size_t V = m->cfg.V, C = m->cfg.C, BS = o->batch ? o->batch : 256;
	double t0 = cs_now();
	memset(res, 0, sizeof *res);
	cs_metrics_init(&res->full, o->ks, o->nk);
	cs_metrics_init(&res->sampled, o->ks, o->nk);
	int rc = -1;
	double *pop = NULL;
	cs_sampler *smp = NULL;
	cs_scorer *sc = NULL;
	if (!d->target)
		return cs_err(err, CS_ERR_USAGE, NULL, 0, "no held-out items to rank");
	cs_batcher bt = { 0 };
	uint32_t *excl = calloc(V, sizeof *excl);
	uint32_t *cand = malloc((o->negatives + 1) * sizeof *cand);
	float *score = malloc(V * sizeof *score); /* of the target and negatives only */
	uint32_t *tgt = malloc(BS * sizeof *tgt);
	size_t *rank = malloc(BS * sizeof *rank);
	if (!excl || !cand || !score || !tgt || !rank)
		goto nomem;
	if (cs_dataset_check(d, &m->cfg, err) < 0 ||
	    cs_batcher_init(&bt, &m->cfg, CS_DATA_EVAL, BS, err) < 0 ||
	    !(sc = cs_scorer_new(m->params.wte, m->params.out_b, V, C, CS_ITEM_FIRST, "fp32",
				 err)))
		goto out;
	float wmax = 0, bmax = 0; /* the weights are finite (checked on loading) */
	for (size_t j = CS_ITEM_FIRST; j < V; j++) {
		for (size_t c = 0; c < C; c++)
			wmax = fmaxf(wmax, fabsf(m->params.wte[j * C + c]));
		bmax = fmaxf(bmax, fabsf(m->params.out_b[j]));
	}
	if (o->negatives) {
		if (o->popular) { /* popularity: counts over histories and targets */
			if (!(pop = calloc(V, sizeof *pop)))
				goto nomem;
			for (size_t i = 0; i < d->off[d->n]; i++)
				pop[d->item[i]] += 1;
			for (size_t i = 0; i < d->n; i++)
				pop[d->target[i]] += 1;
		}
		if (!(smp = cs_sampler_new(V, CS_ITEM_FIRST, pop, err)))
			goto out;
	}
	cs_nn_rng rng;
	cs_nn_rng_seed(&rng, o->seed);
	uint32_t stamp = 0;
	for (size_t first = 0; first < d->n; first += BS) {
		size_t B = d->n - first < BS ? d->n - first : BS;
		const cs_batch *b = cs_batcher_fill(&bt, d, NULL, first, B);
		const float *hid; /* (B, C) */
		if (cs_bert_score_hidden(m, w, b, &hid, err) < 0)
			goto out;
		/* the history is never ahead of its target with --exclude-seen */
		for (size_t i = 0; i < B; i++)
			tgt[i] = d->target[first + i];
		if (o->full && cs_scorer_rank(sc, hid, B, tgt, o->exclude_seen ? d->off + first : NULL,
					      d->item, rank, err) < 0)
			goto out;
		for (size_t i = 0; i < B; i++) {
			uint32_t t = tgt[i];
			if (t < CS_ITEM_FIRST) {
				res->skipped++;
				continue;
			}
			if (scores_finite(m, hid + i * C, wmax, bmax, err) < 0)
				goto out;
			const uint32_t *h = d->item + d->off[first + i];
			size_t hn = cs_dataset_len(d, first + i);
			if (o->full)
				cs_metrics_add(&res->full, rank[i]);
			if (o->negatives) {
				stamp++;
				for (size_t j = 0; j < hn; j++)
					excl[h[j]] = stamp;
				excl[t] = stamp;
				size_t k = cs_sampler_draw(smp, &rng, o->negatives, excl, stamp, cand);
				score[t] = cs_scorer_score(sc, hid + i * C, t);
				for (size_t j = 0; j < k; j++)
					score[cand[j]] = cs_scorer_score(sc, hid + i * C, cand[j]);
				cs_metrics_add(&res->sampled, cs_rank_among(score, t, cand, k));
			}
		}
	}
	res->seconds = cs_now() - t0;
	rc = 0;
	goto out;
nomem:
	cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
out:
	cs_batcher_free(&bt);
	cs_scorer_free(sc);
	free(excl);
	free(cand);
	free(score);
	free(tgt);
	free(rank);
	free(pop);
	cs_sampler_free(smp);
	return rc;
}

int cs_predict(const cs_bert *m, cs_bert_work *w, const cs_dataset *d, size_t batch,
	       float *prob, uint8_t *label, cs_error *err)
{
	int kind = cs_data_kind(&m->cfg, 0);
	size_t BS = batch ? batch : 256, k = 0;
	cs_batcher bt;
	if (m->cfg.head == CS_HEAD_CLOZE)
		return cs_err(err, CS_ERR_USAGE, NULL, 0, "a cloze model gives no probabilities");
	if (d->kind != kind)
		return cs_err(err, CS_ERR_USAGE, NULL, 0, "a %s model needs %s labels",
			      cs_bert_head_name(m->cfg.head),
			      kind == CS_DATA_SESSION ? "sequence" : "event");
	if (cs_dataset_check(d, &m->cfg, err) < 0 ||
	    cs_batcher_init(&bt, &m->cfg, kind, BS, err) < 0)
		return -1;
	for (size_t first = 0; first < d->n; first += BS) {
		size_t B = d->n - first < BS ? d->n - first : BS;
		const cs_batch *b = cs_batcher_fill(&bt, d, NULL, first, B);
		const float *p;
		if (b->M == 0)
			continue;
		if (k + b->M > d->nlabels || cs_bert_prob(m, w, b, &p, err) < 0) {
			if (k + b->M > d->nlabels)
				cs_err(err, CS_ERR_USAGE, NULL, 0, "labels do not match the model's head");
			cs_batcher_free(&bt);
			return -1;
		}
		for (size_t i = 0; i < b->M; i++)
			if (finite_or_fail(p + i, 1, "probability", err) < 0) {
				cs_batcher_free(&bt);
				return -1;
			}
		memcpy(prob + k, p, b->M * sizeof *prob);
		for (size_t i = 0; label && i < b->M; i++)
			label[k + i] = (uint8_t)b->mtgt[i];
		k += b->M;
	}
	cs_batcher_free(&bt);
	if (k != d->nlabels)
		return cs_err(err, CS_ERR_USAGE, NULL, 0,
			      "%zu of %llu labels scored: longer windows than the model reads?",
			      k, (unsigned long long)d->nlabels);
	return 0;
}

int cs_evaluate_binary(const cs_bert *m, cs_bert_work *w, const cs_dataset *d, size_t batch,
		       double threshold, cs_binmetrics *res, cs_error *err)
{
	float *p = malloc(d->nlabels * sizeof *p + 1);
	uint8_t *y = malloc(d->nlabels + 1);
	int rc = -1;
	if (!p || !y)
		cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	else if (cs_predict(m, w, d, batch, p, y, err) == 0)
		rc = cs_binmetrics_compute(p, y, d->nlabels, threshold, res, err);
	free(p);
	free(y);
	return rc;
}
