/*
 * recommend.h - the top K next items for batches of histories: the
 * encoder of a BERT4Rec model with a [MASK] appended to each history,
 * then cs_scorer over the whole catalogue (score.h).
 *
 * Threads: the encoder runs data-parallel, each OpenMP thread on its own
 * share of the batch in its own workspace, all reading the one model
 * (const), and OpenBLAS on one thread, since the products of
 * a small batch and the model's own loops thread badly; the scorer then
 * splits the items between the threads. Results do not depend on the
 * thread count beyond the rounding of the encoder's products.
 */
#ifndef CS_RECOMMEND_H
#define CS_RECOMMEND_H

#include "batch.h"
#include "dataset.h"
#include "model.h"
#include "score.h"

typedef struct cs_recommender cs_recommender;

/*
 * For the cloze model m (which must outlive it and not change while it
 * runs), batches of up to batch histories, kernel as cs_scorer_new.
 * Returns NULL with err filled. The threads each run m's forwards in a
 * workspace of their own, and share the memory limit mem_limit (bytes, 0:
 * none; cs_bert_work.mem_limit, mem_share).
 */
cs_recommender *cs_recommender_new(const cs_bert *m, size_t batch, const char *kernel,
				   double mem_limit, cs_error *err);
void cs_recommender_free(cs_recommender *r);
/* The scorer's kernel ("amx", "avx512", ...). */
const char *cs_recommender_kernel(const cs_recommender *r);

/*
 * The k best next items for histories first .. first+B-1 of d (B <= batch;
 * each history's last P-1 items are read), best first, into ids and vals
 * (B, k) and their counts into n (B). exclude: never an item of the
 * history (all of it). Returns 0, or -1 with err filled.
 */
int cs_recommender_run(cs_recommender *r, const cs_dataset *d, size_t first, size_t B,
		       size_t k, int exclude, uint32_t *ids, float *vals, size_t *n,
		       cs_error *err);

#endif
