/* evaluate.c - full and sampled ranking evaluation; top-k selection. */
#include <stdlib.h>
#include <string.h>
#include "evaluate.h"

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

void cs_eval_batch(cs_batch *b, const cs_dataset *d, size_t first, size_t B,
		   size_t P, size_t *off, uint32_t *tok, uint32_t *pos, size_t *mpos)
{
	size_t n = 0;
	off[0] = 0;
	for (size_t i = 0; i < B; i++) {
		size_t len = cs_dataset_len(d, first + i), from = 0;
		if (len > P - 1) {
			from = len - (P - 1);
			len = P - 1;
		}
		const uint32_t *it = d->item + d->off[first + i] + from;
		for (size_t j = 0; j < len; j++) {
			tok[n + j] = it[j];
			pos[n + j] = (uint32_t)j;
		}
		tok[n + len] = CS_ITEM_MASK;
		pos[n + len] = (uint32_t)len;
		mpos[i] = n + len;
		n += len + 1;
		off[i + 1] = n;
	}
	memset(b, 0, sizeof *b);
	b->B = B;
	b->off = off;
	b->tok = tok;
	b->pos = pos;
	b->M = B;
	b->mpos = mpos;
}

int cs_evaluate(cs_bert *m, const cs_dataset *d, const cs_eval_opts *o,
		cs_eval_result *res, cs_error *err)
{
	size_t V = m->cfg.V, P = m->cfg.P, BS = o->batch ? o->batch : 256;
	double t0 = cs_now();
	memset(res, 0, sizeof *res);
	cs_metrics_init(&res->full, o->ks, o->nk);
	cs_metrics_init(&res->sampled, o->ks, o->nk);
	int rc = -1;
	double *w = NULL;
	cs_sampler *smp = NULL;
	size_t *off = malloc((BS + 1) * sizeof *off), *mpos = malloc(BS * sizeof *mpos);
	uint32_t *tok = malloc(BS * P * sizeof *tok), *pos = malloc(BS * P * sizeof *pos);
	uint32_t *excl = calloc(V, sizeof *excl);
	uint32_t *cand = malloc((o->negatives + 1) * sizeof *cand);
	if (!off || !mpos || !tok || !pos || !excl || !cand)
		goto nomem;
	for (size_t i = 0; i < d->n; i++)
		if (d->target[i] >= V) {
			cs_err(err, CS_ERR_FORMAT, NULL, 0,
			       "target item id %u of sequence %zu is beyond the model's %zu items",
			       d->target[i], i + 1, V);
			goto out;
		}
	for (size_t i = 0; i < d->off[d->n]; i++)
		if (d->item[i] >= V) {
			cs_err(err, CS_ERR_FORMAT, NULL, 0,
			       "item id %u is beyond the model's %zu items", d->item[i], V);
			goto out;
		}
	if (o->negatives) {
		if (o->popular) { /* popularity: counts over histories and targets */
			if (!(w = calloc(V, sizeof *w)))
				goto nomem;
			for (size_t i = 0; i < d->off[d->n]; i++)
				w[d->item[i]] += 1;
			for (size_t i = 0; i < d->n; i++)
				w[d->target[i]] += 1;
		}
		if (!(smp = cs_sampler_new(V, CS_ITEM_FIRST, w, err)))
			goto out;
	}
	cs_nn_rng rng;
	cs_nn_rng_seed(&rng, o->seed);
	uint32_t stamp = 0;
	for (size_t first = 0; first < d->n; first += BS) {
		size_t B = d->n - first < BS ? d->n - first : BS;
		cs_batch b;
		cs_eval_batch(&b, d, first, B, P, off, tok, pos, mpos);
		const float *scores;
		if (cs_bert_score(m, &b, &scores, err) < 0)
			goto out;
		for (size_t i = 0; i < B; i++) {
			uint32_t t = d->target[first + i];
			const float *sc = scores + i * V;
			if (t < CS_ITEM_FIRST) {
				res->skipped++;
				continue;
			}
			const uint32_t *h = d->item + d->off[first + i];
			size_t hn = cs_dataset_len(d, first + i);
			if (o->full) {
				stamp++;
				if (o->exclude_seen)
					for (size_t j = 0; j < hn; j++)
						if (h[j] != t)
							excl[h[j]] = stamp;
				cs_metrics_add(&res->full, cs_rank_full(sc, V, CS_ITEM_FIRST, t,
									o->exclude_seen ? excl : NULL,
									stamp));
			}
			if (o->negatives) {
				stamp++;
				for (size_t j = 0; j < hn; j++)
					excl[h[j]] = stamp;
				excl[t] = stamp;
				size_t k = cs_sampler_draw(smp, &rng, o->negatives, excl, stamp, cand);
				cs_metrics_add(&res->sampled, cs_rank_among(sc, t, cand, k));
			}
		}
	}
	res->seconds = cs_now() - t0;
	rc = 0;
	goto out;
nomem:
	cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
out:
	free(off);
	free(mpos);
	free(tok);
	free(pos);
	free(excl);
	free(cand);
	free(w);
	cs_sampler_free(smp);
	return rc;
}

/* Min-heap of (value, id) on values; ties: the larger id is "smaller". */
static inline int worse(float a, uint32_t ia, float b, uint32_t ib)
{
	return a < b || (a == b && ia > ib);
}

static void sift_down(float *v, uint32_t *id, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, s = i;
		if (l < n && worse(v[l], id[l], v[s], id[s]))
			s = l;
		if (r < n && worse(v[r], id[r], v[s], id[s]))
			s = r;
		if (s == i)
			return;
		float tv = v[i]; v[i] = v[s]; v[s] = tv;
		uint32_t ti = id[i]; id[i] = id[s]; id[s] = ti;
		i = s;
	}
}

/* Push item j (score s) into a full or filling heap of k. */
static inline void topk_push(float *vals, uint32_t *ids, size_t *n, size_t k,
			     float s, uint32_t j)
{
	if (*n < k) {
		ids[*n] = j;
		vals[*n] = s;
		if (++*n == k)
			for (size_t i = k / 2; i-- > 0;)
				sift_down(vals, ids, k, i);
	} else if (worse(vals[0], ids[0], s, j)) {
		vals[0] = s;
		ids[0] = j;
		sift_down(vals, ids, k, 0);
	}
}

size_t cs_topk(const float *score, size_t V, size_t first, size_t k,
	       const uint32_t *excl, uint32_t stamp, uint32_t *ids, float *vals)
{
	size_t n = 0, j = first;
	if (!excl) {
		/* Once the heap is full, skip blocks whose best is below its worst. */
		for (; j < V && n < k; j++)
			topk_push(vals, ids, &n, k, score[j], (uint32_t)j);
		for (; j + 16 <= V; j += 16) {
			float mx = score[j];
			for (size_t i = 1; i < 16; i++)
				mx = score[j + i] > mx ? score[j + i] : mx;
			if (mx < vals[0])
				continue;
			for (size_t i = 0; i < 16; i++)
				topk_push(vals, ids, &n, k, score[j + i], (uint32_t)(j + i));
		}
	}
	for (; j < V; j++)
		if (!excl || excl[j] != stamp)
			topk_push(vals, ids, &n, k, score[j], (uint32_t)j);
	if (n < k)
		for (size_t i = n / 2; i-- > 0;)
			sift_down(vals, ids, n, i);
	/* Heap sort: pop the worst to the back, leaving best first. */
	for (size_t e = n; e > 1; e--) {
		float tv = vals[0]; vals[0] = vals[e - 1]; vals[e - 1] = tv;
		uint32_t ti = ids[0]; ids[0] = ids[e - 1]; ids[e - 1] = ti;
		sift_down(vals, ids, e - 1, 0);
	}
	return n;
}
