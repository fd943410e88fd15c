/*
 * train.h - the training loop: shuffled packed batches of Cloze or
 * next-item examples (the full softmax, or a sampled loss over negatives
 * drawn for each batch from a seeded stream, so that a resume goes on
 * exactly), AdamW with warmup and linear decay, evaluation on a
 * validation split every few epochs with early stopping on NDCG@10 (full
 * ranking), atomic checkpoints that --resume continues bit for bit.
 */
#ifndef CS_TRAIN_H
#define CS_TRAIN_H

#include "comm.h"
#include "dataset.h"
#include "evaluate.h"
#include "model.h"
#include "vocab.h"

typedef struct cs_train_opts {
	size_t epochs;       /* [20] */
	size_t batch;        /* examples per step [128] */
	cs_adamw adamw;      /* lr [1e-3], warmup [100]; total set from epochs */
	size_t eval_every;   /* epochs between validations [1] */
	size_t patience;     /* validations without improvement before stopping [3] */
	long ckpt_every;     /* steps between checkpoints, 0: epoch ends only [0] */
	const char *output;  /* best (or last) model */
	const char *ckpt;    /* checkpoint file, NULL: none */
	uint64_t item_vocab; /* fingerprint stored in the files */
	uint64_t seed;       /* data order */
	float pos_weight;    /* binary heads: weight of positives, 0: negatives/positives [1] */
	size_t freeze;       /* epochs the encoder stays frozen, SIZE_MAX: all [0] */
	int loss;            /* cloze head: CS_LOSS_* (sampled.h) [full] */
	size_t negatives;    /* sampled losses: negatives a batch shares [256] */
	int sampler;         /* how they are drawn, CS_NEG_* [uniform] */
	int logq;            /* pop, batch: subtract log(K q_j) from item j's logit
				(the logQ correction); 0: train on the raw logits,
				which ranks the target above popular items [1] */
	float gbce_t;        /* gbce: calibration t in [0, 1] [0.75] */
	double mem_limit;    /* bytes a forward may need (cs_bert_work), 0: no limit [0] */
	/*
	 * The processes that train together (data parallel), NULL: this one
	 * alone [NULL]. Each holds the model and the whole data set; the
	 * examples of each step (batch, the global batch) are split into
	 * contiguous shares, one a process, whose losses and gradients are
	 * summed (cs_comm), so that every process takes the same AdamW step,
	 * the one a single process takes for the global batch (up to the
	 * order of the sums). Rank 0 alone writes the model and checkpoints;
	 * validation is split the same way and summed.
	 */
	cs_comm *comm;
} cs_train_opts;

void cs_train_defaults(cs_train_opts *o);

/* Where a run stands; saved in checkpoints. */
typedef struct cs_train_state {
	size_t epoch;       /* epochs finished */
	size_t batch_pos;   /* batches done in the current epoch */
	double best;        /* best validation NDCG@10 (cloze) or AUC, -1: none yet */
	size_t best_epoch;
	size_t bad_evals;   /* validations since the best */
	double loss_sum;    /* losses of the batches done in the current epoch */
	size_t loss_n;      /* and their number: the epoch's mean goes on after a resume */
	size_t examples;    /* training examples, 0: not known yet */
	int validated;      /* on a validation split; a resume must give one too */
	int stopped_early;
	/*
	 * The best model as it was written to the output (weights, step,
	 * training forwards), kept on validated runs with a checkpoint: a
	 * checkpoint taken after it carries it, so that a resumed run that
	 * never improves on it writes the model the uninterrupted run left
	 * (to its own -o). best_params is NULL until there is a best;
	 * best_in_model: the model's weights are the best (no step since).
	 * cs_train_state_free frees it.
	 */
	float *best_params;
	long best_step;
	uint64_t best_nforward;
	int best_in_model;
	/*
	 * The model's training state (gradients, AdamW moments, step, dropout
	 * stream): a checkpoint's (cs_train_resume), or made by cs_train for
	 * a new run (NULL until then). cs_train_state_free frees it.
	 */
	cs_bert_train *ts;
} cs_train_state;

/* Free what st holds (best_params, ts); st stays usable as a fresh state. */
void cs_train_state_free(cs_train_state *st);

/*
 * Every epoch ends with one of CS_TRAIN_EVAL (validated), CS_TRAIN_SAVE
 * (no validation set: the model saved) or CS_TRAIN_EPOCH (a validation set,
 * but not validated this epoch: --eval-every).
 */
enum { CS_TRAIN_STEP = 1, CS_TRAIN_EVAL = 2, CS_TRAIN_CKPT = 3, CS_TRAIN_SAVE = 4,
       CS_TRAIN_EPOCH = 5 };

typedef struct cs_train_event {
	int kind;
	size_t epoch, epochs;
	long step, steps;     /* optimiser steps so far and in all */
	double loss;          /* running mean of the epoch */
	double ex_per_s;      /* examples per second this epoch */
	double elapsed, eta;  /* seconds */
	double lr, gnorm;     /* of the last step */
	const cs_eval_result *eval; /* CS_TRAIN_EVAL, cloze head */
	const cs_binmetrics *bin;   /* CS_TRAIN_EVAL, binary heads */
	int improved;
	const char *path;     /* CS_TRAIN_CKPT, CS_TRAIN_SAVE */
	double step_loss;     /* CS_TRAIN_STEP: the loss of this step's batch */
	/* data parallel: seconds of this epoch's steps spent in the processes'
	 * sums (waiting for the slowest one included), and in its steps */
	double comm_s, steps_s;
} cs_train_event;

/* Called after events; a non-zero return stops training after a checkpoint. */
typedef int (*cs_train_cb)(void *ctx, const cs_train_event *ev);

/*
 * Train m on train (Cloze examples for the cloze head, labelled sequences
 * or events for the others), validating on valid (may be NULL: then the
 * model is saved after every epoch): NDCG@10 of full ranking for the
 * cloze head, AUC for the binary heads. st starts zeroed with
 * best = -1, or as restored by cs_train_resume; m's training state is
 * st->ts, made (dropout seed o->seed) when NULL, and its forwards run in a
 * workspace of cs_train's own (o->mem_limit). Returns 0 when done,
 * 1 when the callback stopped it (a checkpoint was written), -1 on error.
 * A loss or gradient norm that is not finite stops it with an error
 * before anything more is written, and no model or checkpoint with a
 * weight or moment that is not finite is ever written: the files on disk
 * stay the last good ones. With o->comm, a failure of any process stops
 * every one (o->comm->failed: the lowest rank that failed; err on the
 * others says which). A validated run that ends (0) having written no
 * model itself, resumed after its best, writes the best it was resumed
 * with (st->best_params) to o->output.
 */
int cs_train(cs_bert *m, const cs_dataset *train, const cs_dataset *valid,
	     const cs_train_opts *o, cs_train_state *st, cs_train_cb cb, void *ctx,
	     cs_error *err);

/*
 * Can the run of st go on with train and valid? A checkpoint's (read from
 * path, which messages name; NULL: none) needs as many examples as its
 * run had, a validation split if it had one, and a position within an
 * epoch of train. cs_train checks it first; a program checks it before it
 * starts its log.
 */
int cs_train_check_data(const cs_train_state *st, const cs_train_opts *o,
			const cs_dataset *train, const cs_dataset *valid, const char *path,
			cs_error *err);

/* Write a checkpoint of m and st to path. */
int cs_train_checkpoint(const cs_bert *m, const cs_train_opts *o,
			const cs_train_state *st, const char *path, cs_error *err);
/*
 * Load a checkpoint: the model, st with the model's training state
 * (st->ts) and the best model's weights when the checkpoint has them, and
 * the options the run was started with (epochs, batch, the AdamW
 * settings, validation cadence, patience, seed) into o, so that it goes
 * on exactly. st is overwritten: free it first.
 */
cs_bert *cs_train_resume(const char *path, cs_train_state *st, cs_train_opts *o,
			 uint64_t *item_vocab, cs_error *err);

/*
 * The model of a run, set up as cs-train's options say. First the
 * vocabulary voc (vpath: its file, for messages) gives cfg its items (V)
 * and item_vocab their fingerprint, and the extra inputs of the
 * comma-separated list inputs (NULL: none) with their sizes and
 * fingerprints.
 */
int cs_train_vocab(cs_bert_config *cfg, uint64_t *item_vocab, const cs_vocab *voc,
		   const char *vpath, const char *inputs, cs_error *err);
/*
 * Then the model, by what the run starts from: resume, the checkpoint's
 * model, with st and o as cs_train_resume restores them; init, a new
 * model on the encoder of the trained model init (its sizes and extra
 * inputs, which must be those of --inputs when given, and cfg's head,
 * pooling and dropouts); neither, a new model of cfg. Every model read
 * must have been trained on the run's vocabulary (o->item_vocab, and voc
 * for init's inputs). cfg ends as the model's config. A new model's
 * parameters, gradients and optimiser state must fit in mem_limit bytes
 * (0: no limit).
 */
cs_bert *cs_train_model(cs_bert_config *cfg, const char *inputs, const cs_vocab *voc,
			const char *vpath, const char *init, const char *resume,
			cs_train_opts *o, cs_train_state *st, double mem_limit, cs_error *err);
/*
 * Then the training examples at path, read for the model *m of config
 * cfg; a new model (fresh: neither init nor resume) follows them. Its
 * length covers the examples' windows (cs-mask --max-len) unless
 * fixed_len: the model is made anew (seed, mem_limit) and the examples
 * read again, which stdin cannot (*window then gets the examples' window
 * length, the model keeping its own; else 0). A cloze model's attention
 * is causal on next-item examples (cs-mask next), else bidirectional,
 * unless attention says (1 causal, 0 bidirectional, -1 the examples');
 * its blocks are pre-LN with causal attention, else post-LN, unless norm
 * says (1 pre, 0 post, -1 by the attention): a new model when that
 * changes. Cloze examples for a causal cloze model, or next-item examples
 * for a bidirectional one, are an error. *m may be replaced (NULL on
 * failure).
 */
cs_dataset *cs_train_examples(const char *path, cs_bert **m, cs_bert_config *cfg, int fresh,
			      int fixed_len, int attention, int norm, uint64_t seed,
			      uint64_t item_vocab, double mem_limit, size_t *window, cs_error *err);
/* A new model of cfg (seed: its weights) that fits in mem_limit as above
 * (path: the file its config came from, for the message, or NULL). */
cs_bert *cs_train_new_model(const cs_bert_config *cfg, uint64_t seed, double mem_limit,
			    const char *path, cs_error *err);

#endif
