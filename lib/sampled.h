/*
 * sampled.h - losses over sampled negatives, whose cost does not grow
 * with the catalogue: sampled softmax (Jean et al. 2015; SASRec+ and
 * eSASRec train this way) and gSASRec's generalised binary cross-entropy
 * (gBCE, Petrov & Macdonald, RecSys 2023), over tied logits
 * z = h (M, C) . w[j] (C) + bias[j].
 *
 * Every row i (a predicted position with target item tgt[i]) is scored
 * against its target and the K negatives neg (K) that the whole batch
 * shares (one (M, C) x (C, K) product). A negative equal to the row's
 * target (an accidental hit) is left out of that row.
 *
 *   softmax  loss_i = logsumexp(z_i+, z_i1..z_iK) - z_i+, where every
 *            logit of item j has log(K q_j) subtracted (logq[j]; the logQ
 *            correction for a sampler drawing j with probability q_j;
 *            logq NULL: uniform, where it cancels out);
 *   gbce     loss_i = -beta log sigmoid(z_i+) - sum_k log(1 - sigmoid(z_ik)),
 *            beta = alpha (t (1 - 1/alpha) + 1/alpha), alpha = K / (items - 1)
 *            (cs_gbce_beta); t = 0 is plain BCE, t = 1 full calibration.
 * The loss is the mean over the M rows (summed in double).
 */
#ifndef CS_SAMPLED_H
#define CS_SAMPLED_H

#include <stddef.h>
#include <stdint.h>

enum { CS_LOSS_FULL = 0, CS_LOSS_SAMPLED = 1, CS_LOSS_GBCE = 2 };
/* How negatives are drawn: uniformly from the catalogue, by popularity
 * (the items' counts as training targets), or from the batch's targets. */
enum { CS_NEG_UNIFORM = 0, CS_NEG_POP = 1, CS_NEG_BATCH = 2 };

const char *cs_loss_name(int loss);        /* "full", "sampled", "gbce" */
int cs_loss_parse(const char *s);          /* inverse, -1 if unknown */
const char *cs_sampler_name(int s);        /* "uniform", "pop", "batch" */
int cs_sampler_parse(const char *s);

/* gSASRec's beta for K negatives out of items catalogue items and t. */
float cs_gbce_beta(size_t K, size_t items, float t);

/* Floats of scratch the loss needs for M rows, K negatives, hidden C. */
size_t cs_sampled_scratch(size_t M, size_t K, size_t C);

/*
 * Forward: returns the mean loss; scratch (cs_sampled_scratch) keeps the
 * logits (M, 1+K) for the backward pass, which must follow with the same
 * arguments. kind: CS_LOSS_SAMPLED or CS_LOSS_GBCE.
 */
double cs_sampled_forward(float *scratch, const float *h, const float *w,
			  const float *bias, const uint32_t *tgt, const uint32_t *neg,
			  const float *logq, size_t M, size_t C, size_t K, int kind,
			  float beta);
/* Adds the gradient of dloss * loss into dh (M, C), dw (V, C) and dbias (V). */
void cs_sampled_backward(float *dh, float *dw, float *dbias, float *scratch,
			 const float *h, const float *w, const uint32_t *tgt,
			 const uint32_t *neg, size_t M, size_t C, size_t K, int kind,
			 float beta, float dloss);

#endif
