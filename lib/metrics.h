/*
 * metrics.h - ranking metrics for next-item recommendation.
 *
 * For each evaluated sequence the model scores every item; the rank of
 * the held-out target (0-based) among the candidates gives HR@K (equal to
 * Recall@K with one target), NDCG@K = 1/log2(rank + 2) when rank < K, and
 * MRR = 1/(rank + 1). Candidates are the whole catalogue (full ranking)
 * or the target plus N sampled negatives. Items that outscore the target
 * count ahead of it, and so does every other item with an equal score, so
 * ties never flatter the model (a model scoring everything alike ranks
 * every target last).
 *
 * Binary classification metrics (purchase intention, return prediction)
 * score the session and event heads: ROC AUC, average precision, log
 * loss, and precision, recall and F1 at a threshold.
 */
#ifndef CS_METRICS_H
#define CS_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include "cs.h"
#include "rng.h"

#define CS_METRICS_MAXK 16

typedef struct cs_metrics {
	size_t nk;
	size_t k[CS_METRICS_MAXK];
	double hr[CS_METRICS_MAXK], ndcg[CS_METRICS_MAXK];
	double mrr;
	uint64_t n;
} cs_metrics;

/* Set up for the cut-offs ks[0..nk) (at most CS_METRICS_MAXK). */
void cs_metrics_init(cs_metrics *m, const size_t *ks, size_t nk);
/* Count one target at rank (0-based). */
void cs_metrics_add(cs_metrics *m, size_t rank);
/* Add the sums of b into a (same cut-offs). */
void cs_metrics_merge(cs_metrics *a, const cs_metrics *b);
/* Means over the targets counted. */
double cs_metrics_hr(const cs_metrics *m, size_t i);
double cs_metrics_ndcg(const cs_metrics *m, size_t i);
double cs_metrics_mrr(const cs_metrics *m);

/*
 * Rank of target among items first .. V-1 by score, skipping items whose
 * excl[item] == stamp (excl may be NULL).
 */
size_t cs_rank_full(const float *score, size_t V, size_t first, uint32_t target,
		    const uint32_t *excl, uint32_t stamp);
/* Rank of target among itself and the n candidates cand[0..n). */
size_t cs_rank_among(const float *score, uint32_t target, const uint32_t *cand,
		     size_t n);

/*
 * Negative sampler over items first .. V-1, uniform or by popularity
 * (weights w[item], e.g. counts).
 */
typedef struct cs_sampler cs_sampler;
cs_sampler *cs_sampler_new(size_t V, size_t first, const double *w, cs_error *err);
void cs_sampler_free(cs_sampler *s);
/*
 * Draw n distinct items with excl[item] != stamp into out (and mark them
 * in excl). Returns the number drawn: fewer than n only when the
 * catalogue runs out.
 */
size_t cs_sampler_draw(const cs_sampler *s, cs_nn_rng *rng, size_t n,
		       uint32_t *excl, uint32_t stamp, uint32_t *out);

/* Binary classification: predicted probabilities of the positive class against 0/1 labels. */
typedef struct cs_binmetrics {
	uint64_t n, npos;      /* examples, positives */
	double auc;            /* area under the ROC curve; ties count one half; NAN if one class is absent */
	double prauc;          /* area under the precision-recall curve as average precision (ties grouped: all examples with equal score enter together); NAN without positives */
	double logloss;        /* mean -log p of the true class, p clipped to [1e-7, 1-1e-7] */
	double threshold;      /* the cut-off used below */
	double precision, recall, f1; /* predicting positive when p >= threshold (0 when undefined, e.g. no predicted positives) */
	double pos_rate;       /* npos / n */
} cs_binmetrics;

/* Compute all of the above for n examples. Sorts a copy (O(n log n)); label[i] is 0 or 1. Returns 0, or -1 with err filled (n == 0, out of memory, a label not 0/1, a probability not finite or outside [0,1]). */
int cs_binmetrics_compute(const float *prob, const uint8_t *label, size_t n, double threshold, cs_binmetrics *out, cs_error *err);
/*
 * The same for scores kept as text (a baseline's): lines
 * 'probability<TAB>label', a probability in [0, 1] and a label 0 or 1,
 * read from path ("-": stdin). Returns 0, or -1 with err filled (the file
 * and line of a malformed line).
 */
int cs_binmetrics_read(const char *path, double threshold, cs_binmetrics *out, cs_error *err);

#endif
