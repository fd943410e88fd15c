/* recommend.c - top-K next items for batches of histories (see recommend.h). */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "blas.h"
#include "recommend.h"

struct cs_recommender {
	size_t T;           /* threads */
	const cs_bert *m;   /* the model every thread reads */
	cs_bert_work **ws;  /* (T) each thread's workspace, made when first needed */
	double mem_limit;   /* the process's, shared by the workspaces at work */
	cs_batcher *bt;     /* (T) */
	cs_scorer *sc;
	size_t batch, C;
	float *h;           /* (batch, C) the output layer's inputs */
	const float *w, *b; /* the output layer: (V, C) and (V) */
	size_t V;
	double wmax, bmax;  /* the largest |w| and |b| of the catalogue's items */
	cs_error *errs;     /* (T) */
};

cs_recommender *cs_recommender_new(const cs_bert *m, size_t batch, const char *kernel,
				   double mem_limit, cs_error *err)
{
	if (m->cfg.head != CS_HEAD_CLOZE) {
		cs_err(err, CS_ERR_USAGE, NULL, 0,
		       "a %s model gives probabilities, it does not rank items",
		       cs_bert_head_name(m->cfg.head));
		return NULL;
	}
	cs_recommender *r = calloc(1, sizeof *r);
	if (!r)
		goto nomem;
	size_t T = 1;
#ifdef _OPENMP
	T = (size_t)omp_get_max_threads();
#endif
	if (T > batch)
		T = batch ? batch : 1;
	r->T = T;
	r->batch = batch;
	r->C = m->cfg.C;
	r->m = m;
	r->mem_limit = mem_limit;
	r->ws = calloc(T, sizeof *r->ws);
	r->bt = calloc(T, sizeof *r->bt);
	r->errs = calloc(T, sizeof *r->errs);
	r->h = malloc(batch * r->C * sizeof *r->h + 1);
	if (!r->ws || !r->bt || !r->errs || !r->h)
		goto nomem;
	for (size_t t = 0; t < T; t++)
		if (cs_batcher_init(&r->bt[t], &m->cfg, CS_DATA_EVAL, (batch + T - 1) / T,
				    err) < 0)
			goto fail;
	r->w = m->params.wte;
	r->b = m->params.out_b;
	r->V = m->cfg.V;
	/* the weights are finite (checked on loading) */
	r->wmax = r->V > CS_ITEM_FIRST ? cs_absmax(r->w + CS_ITEM_FIRST * r->C,
						  (r->V - CS_ITEM_FIRST) * r->C) : 0;
	r->bmax = r->V > CS_ITEM_FIRST ? cs_absmax(r->b + CS_ITEM_FIRST, r->V - CS_ITEM_FIRST) : 0;
	if (!(r->sc = cs_scorer_new(m->params.wte, m->params.out_b, m->cfg.V, m->cfg.C,
				    CS_ITEM_FIRST, kernel, err)))
		goto fail;
	return r;
nomem:
	cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
fail:
	cs_recommender_free(r);
	return NULL;
}

void cs_recommender_free(cs_recommender *r)
{
	if (!r)
		return;
	for (size_t t = 0; r->ws && t < r->T; t++)
		cs_bert_work_free(r->ws[t]);
	for (size_t t = 0; r->bt && t < r->T; t++)
		cs_batcher_free(&r->bt[t]);
	cs_scorer_free(r->sc);
	free(r->ws);
	free(r->bt);
	free(r->errs);
	free(r->h);
	free(r);
}

const char *cs_recommender_kernel(const cs_recommender *r)
{
	return cs_scorer_kernel(r->sc);
}

/*
 * The scorer drops NaN scores: check that none can arise. A row's scores
 * are at most sum|h| max|w| + max|b| in size; only a row whose bound comes
 * near the float range (never, for a sane model) is scored exactly here.
 */
static int check_finite(const cs_recommender *r, size_t B, cs_error *err)
{
	size_t C = r->C;
	for (size_t i = 0; i < B; i++) {
		const float *h = r->h + i * C;
		double hsum = 0;
		for (size_t c = 0; c < C; c++)
			hsum += fabs(h[c]);
		if (!isfinite(hsum))
			return cs_err(err, CS_ERR_MODEL, NULL, 0, "model gives a non-finite output "
				      "(%g): its weights overflow in the forward pass", hsum);
		if (hsum * r->wmax + r->bmax < FLT_MAX / 4)
			continue;
		for (size_t j = CS_ITEM_FIRST; j < r->V; j++) {
			double s = r->b[j];
			for (size_t c = 0; c < C; c++)
				s += (double)h[c] * r->w[j * C + c];
			if (!(fabs(s) < FLT_MAX / 2))
				return cs_err(err, CS_ERR_MODEL, NULL, 0, "model gives a score out of "
					      "the float range (%g): its weights overflow", s);
		}
	}
	return 0;
}

int cs_recommender_run(cs_recommender *r, const cs_dataset *d, size_t first, size_t B,
		       size_t k, int exclude, uint32_t *ids, float *vals, size_t *n,
		       cs_error *err)
{
	if (B > r->batch)
		return cs_err(err, CS_ERR_USAGE, NULL, 0, "%zu histories, more than the batch %zu",
			      B, r->batch);
	size_t T = r->T < B ? r->T : B, C = r->C;
	int bad = 0;
	/* the threads' workspaces, made when first needed (not for one
	 * history); the memory limit is the process's: T at work share it */
	for (size_t t = 0; t < T; t++) {
		if (!r->ws[t] && !(r->ws[t] = cs_bert_work_new(err)))
			return -1;
		r->ws[t]->mem_limit = r->mem_limit;
		r->ws[t]->mem_share = (int)T;
	}
	memset(r->errs, 0, T * sizeof *r->errs);
	/*
	 * The encoder: the batch in chunks (four a thread), each to whichever
	 * thread is free, in its workspace over the one model;
	 * OpenBLAS on one thread, even for one history: its products are too
	 * small to share, and a woken OpenBLAS thread competes with the
	 * OpenMP threads still spinning after the last loop.
	 */
	size_t cs = (B + 4 * T - 1) / (4 * T), nch = (B + cs - 1) / cs;
	int blas = cs_blas_set_threads(1);
	/* one history: its forward's own loops on this thread too, so that
	 * a service fed one at a time wakes no thread at all */
#ifdef _OPENMP
	int omp = omp_get_max_threads();
	if (T == 1)
		omp_set_num_threads(1);
#endif
	#pragma omp parallel num_threads((int)T) if (T > 1) reduction(|:bad)
	{
		size_t t = 0;
#ifdef _OPENMP
		t = (size_t)omp_get_thread_num();
#endif
		#pragma omp for schedule(dynamic, 1)
		for (size_t ch = 0; ch < nch; ch++) {
			size_t lo = ch * cs, hi = lo + cs < B ? lo + cs : B;
			const cs_batch *b = cs_batcher_fill(&r->bt[t], d, NULL, first + lo, hi - lo);
			const float *h;
			if (bad || cs_bert_score_hidden(r->m, r->ws[t], b, &h, &r->errs[t]) < 0)
				bad = 1;
			else
				memcpy(r->h + lo * C, h, (hi - lo) * C * sizeof *h);
		}
	}
	cs_blas_set_threads(blas);
#ifdef _OPENMP
	if (T == 1)
		omp_set_num_threads(omp);
#endif
	if (bad) {
		for (size_t t = 0; t < T; t++)
			if (r->errs[t].code) {
				if (err)
					*err = r->errs[t];
				break;
			}
		return -1;
	}
	if (check_finite(r, B, err) < 0)
		return -1;
	return cs_scorer_topk(r->sc, r->h, B, k, exclude ? d->off + first : NULL, d->item,
			      ids, vals, n, err);
}
