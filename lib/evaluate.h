/*
 * evaluate.h - next-item evaluation of a BERT4Rec model on held-out
 * targets, as the papers do: each history (its last P-1 items) gets a
 * [MASK] appended, the model scores every item there, and the rank of the
 * target gives HR@K, NDCG@K and MRR, over the whole catalogue (full
 * ranking) and/or against N sampled negatives (uniform or by popularity,
 * never an item of the user's history or the target itself). Reserved
 * ids are never candidates; targets that are [UNK] are skipped. Scores
 * are cs_scorer's (score.h), the ones cs_recommender ranks by; the full
 * ranking counts the items that reach the target's score as they are
 * computed (cs_scorer_rank), with no (batch, V) score matrix.
 */
#ifndef CS_EVALUATE_H
#define CS_EVALUATE_H

#include "batch.h"
#include "dataset.h"
#include "metrics.h"
#include "model.h"
#include "score.h"

typedef struct cs_eval_opts {
	size_t nk;
	size_t ks[CS_METRICS_MAXK]; /* cut-offs [1 5 10 20] */
	int full;             /* rank against the whole catalogue [1] */
	size_t negatives;     /* sampled ranking against N negatives, 0: off [100] */
	int popular;          /* sample by popularity (counted in the data), else uniformly [1] */
	int exclude_seen;     /* full ranking skips history items [0] */
	size_t batch;         /* histories scored at once [256] */
	uint64_t seed;        /* negative sampling [1] */
} cs_eval_opts;

void cs_eval_defaults(cs_eval_opts *o);

typedef struct cs_eval_result {
	cs_metrics full, sampled;
	uint64_t skipped; /* targets that were [UNK] */
	double seconds;
} cs_eval_result;

/* Rank d's targets with model m, its forwards in workspace w, into res. */
int cs_evaluate(const cs_bert *m, cs_bert_work *w, const cs_dataset *d, const cs_eval_opts *o,
		cs_eval_result *res, cs_error *err);

/*
 * Binary heads: the probability of each label of d, in order (session:
 * one per sequence; event: one per labelled event) into prob, and the
 * label into label (may be NULL); both hold d->nlabels. batch: sequences
 * at once (0: 256). The forwards of m run in workspace w.
 */
int cs_predict(const cs_bert *m, cs_bert_work *w, const cs_dataset *d, size_t batch,
	       float *prob, uint8_t *label, cs_error *err);
/* cs_predict, then the metrics at threshold. */
int cs_evaluate_binary(const cs_bert *m, cs_bert_work *w, const cs_dataset *d, size_t batch,
		       double threshold, cs_binmetrics *res, cs_error *err);

#endif
