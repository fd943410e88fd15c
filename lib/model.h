/*
 * model.h - BERT4Rec (Sun et al., CIKM 2019): config, parameters in one
 * buffer with named views, forward and backward over a packed batch, the
 * masked-item loss, scoring, and the AdamW step over the whole model.
 *
 * Architecture, as the paper and its reference code (BERT's modeling.py):
 *   x = Dropout(LayerNorm(wte[item] + wpe[position]))
 *   L post-LN blocks:
 *     x = LayerNorm(x + Dropout(Proj(Attention(x))))  bidirectional, NH heads
 *     x = LayerNorm(x + Dropout(W2 GELU(W1 x + b1) + b2))  width FF = 4C
 *   at the M masked positions: h = LayerNorm(GELU(Dense(x)))
 *   logits (M, V) = h @ wte^T + out_bias  (tied item embedding)
 *   loss = mean cross-entropy over the M positions (or, training, a
 *   sampled loss over K negatives the batch shares: sampled.h).
 * Pre-LN (SASRec's layout, cfg.prenorm): the LayerNorms move to the front
 * of each branch, x = x + Dropout(Proj(Attention(LayerNorm(x)))), x = x +
 * Dropout(FFN(LayerNorm(x))); a final LayerNorm over every token is the
 * encoder's output, and the cloze head's logits are taken from it
 * directly (no dense+GELU+LayerNorm transform).
 * Attention is bidirectional (BERT4Rec) or causal (SASRec: each event
 * sees itself and the past, trained on next-item examples whose every
 * position predicts the item after it; scored at a history's last event,
 * with no [MASK] appended).
 * Extra event inputs (action, category, brand, ...): each of NF fields has
 * its own embedding table; by default their rows are added to
 * wte[item] + wpe[position] (sum); with concat, [wte[item], fte_1[..],
 * ...] (width (1+NF) C) goes through a dense layer back to C, then wpe
 * is added.
 *
 * Heads on the final hidden states x:
 *   cloze    the output layer above (BERT4Rec);
 *   session  one probability per sequence: pooled h (the hidden state of
 *            a [MASK] token appended as [CLS], or the mean over the
 *            sequence), p = sigmoid(cls_w . tanh(pool_w h + pool_b) + cls_b);
 *   event    the same at chosen events (e.g. every purchase).
 * The cloze head can also predict one extra input at the masked positions
 * (the action of a masked (action, item) event): its logits are
 * h @ fte_f^T + fout_b over that input's ids, tied to its embedding like
 * the items, and its mean cross-entropy is added to the loss.
 * Binary heads minimise weighted cross-entropy: positives count
 * pos_weight times, the loss is divided by the total weight.
 *
 * GELU is BERT's tanh approximation. LayerNorm eps 1e-12. Attention-prob
 * dropout on the softmax weights, hidden dropout after the embedding
 * LayerNorm and after each residual branch, as BERT.
 *
 * Item ids: 0 pad, 1 mask, 2 unknown, 3.. catalogue items (V includes
 * all). Pad and mask are never predicted: they are left out of the softmax
 * (their logits count as -inf), get zero gradient through it, and
 * cs_bert_score gives them -INFINITY. Unknown (2) is an ordinary class.
 *
 * Initialisation: weight matrices and both embeddings from a normal with
 * standard deviation init_range truncated at 2 standard deviations (TF's
 * truncated_normal_initializer, as BERT); biases 0, LayerNorm weights 1.
 *
 * Packing: the batch holds B sequences back to back, N tokens in all, no
 * padding; attention runs per sequence and head (small sgemms), so a batch
 * costs what it contains.
 *
 * Three objects (llm.c's buffers, each with its owner): a model
 * (cs_bert: the config and one parameter buffer with named views), read
 * only once made or loaded; a workspace (cs_bert_work: the activations of
 * a batch, their gradients, the loss's scratch); a training state
 * (cs_bert_train: gradients, the AdamW moments, the step, the dropout
 * stream, the loss and its policy), which only training makes. Eval
 * forwards take a const model and a workspace; training's forward,
 * backward and update take the training state too, and only the update
 * writes the model.
 *
 * Threads: OpenBLAS threads the matrix products (cs_blas_init); the loss
 * over the catalogue, attention's blocks and the large elementwise loops
 * run over OpenMP threads (nn.h); the model's other loops run on the
 * calling thread (vectorised). Scoring runs a workspace per thread on a
 * share of the batch, every thread reading the one model (recommend.h).
 * Results are bitwise reproducible for a seed and thread count.
 */
#ifndef CS_MODEL_H
#define CS_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "cs.h"
#include "nn.h"
#include "optim.h"
#include "sampled.h"

#define CS_ITEM_PAD 0
#define CS_ITEM_MASK 1
#define CS_ITEM_UNKNOWN 2
#define CS_ITEM_FIRST 3  /* first catalogue item */
#define CS_BERT_V0 2     /* first id the model may predict */
#define CS_BERT_MAXF 8   /* extra categorical event inputs */

/* What the model predicts (see the heads above). */
enum { CS_HEAD_CLOZE = 0, CS_HEAD_SESSION = 1, CS_HEAD_EVENT = 2 };
/* How the session head pools a sequence: the hidden state of a [MASK]
 * token appended to it (a [CLS] token), or the mean of its tokens. */
enum { CS_POOL_CLS = 0, CS_POOL_MEAN = 1 };
/* How the extra event inputs join the item embedding. */
enum { CS_COMBINE_SUM = 0, CS_COMBINE_CONCAT = 1 };

typedef struct cs_bert_config {
	size_t V;          /* items, including the reserved ids 0..2 */
	size_t C;          /* hidden size [64] */
	size_t L;          /* Transformer blocks [2] */
	size_t NH;         /* attention heads, divides C [2] */
	size_t P;          /* max sequence length [50] */
	size_t FF;         /* feed-forward width [4C] */
	float hidden_dropout; /* [0.5] */
	float attn_dropout;   /* [0.2] */
	float init_range;     /* truncated-normal std [0.02] */
	/* extra categorical event inputs (action, category, ...) [none] */
	size_t NF;
	size_t VF[CS_BERT_MAXF];        /* their id counts, reserved ids included */
	char fname[CS_BERT_MAXF][64];   /* their stream field names */
	uint64_t fvocab[CS_BERT_MAXF];  /* their vocabulary fingerprints */
	int combine;          /* CS_COMBINE_* [sum] */
	int head;             /* CS_HEAD_* [cloze] */
	int pool;             /* CS_POOL_*, session head [cls] */
	int pred;             /* cloze head: also predict extra input pred-1 at the
				 masked positions; 0: none [0] */
	int causal;           /* attention: 0 bidirectional (BERT4Rec), 1 causal
				 (SASRec: each event sees itself and the past) [0] */
	int prenorm;          /* blocks: 0 post-LN (BERT), 1 pre-LN with a final
				 LayerNorm and no output transform (SASRec) [0] */
} cs_bert_config;

/* The paper's Beauty setup for V items (BERT4Rec's
 * bert_config_beauty_64.json: C 64, L 2, 2 heads, FF 256, length 50,
 * hidden dropout 0.5, attention dropout 0.2, init range 0.02). */
void cs_bert_config_default(cs_bert_config *cfg, size_t V);
/* 0, or -1 with err filled if cfg is unusable. */
int cs_bert_config_check(const cs_bert_config *cfg, cs_error *err);

/* Parameter tensors, in buffer order; those a config does not use have size 0. */
#define CS_BERT_NPARAMS 31
typedef struct cs_bert_params {
	float *wte;      /* (V, C) item embedding, tied with the output */
	float *wpe;      /* (P, C) position embedding */
	float *embln_w;  /* (C) */
	float *embln_b;  /* (C) */
	float *qkv_w;    /* (L, 3C, C) query, key, value stacked */
	float *qkv_b;    /* (L, 3C) */
	float *proj_w;   /* (L, C, C) attention output */
	float *proj_b;   /* (L, C) */
	float *ln1_w;    /* (L, C) */
	float *ln1_b;    /* (L, C) */
	float *fc_w;     /* (L, FF, C) */
	float *fc_b;     /* (L, FF) */
	float *fc2_w;    /* (L, C, FF) */
	float *fc2_b;    /* (L, C) */
	float *ln2_w;    /* (L, C) */
	float *ln2_b;    /* (L, C) */
	float *head_w;   /* (C, C) output transform, cloze head */
	float *head_b;   /* (C) */
	float *headln_w; /* (C) */
	float *headln_b; /* (C) */
	float *out_b;    /* (V) output bias */
	float *fte;      /* (sum VF, C) embeddings of the extra inputs, stacked */
	float *in_w;     /* (C, (1+NF) C) concat: projection of the joined embeddings */
	float *in_b;     /* (C) */
	float *pool_w;   /* (C, C) session and event heads: tanh(pool_w h + pool_b) */
	float *pool_b;   /* (C) */
	float *cls_w;    /* (C) logit = cls_w . tanh(...) + cls_b */
	float *cls_b;    /* (1) */
	float *fout_b;   /* (VF[pred-1]) output bias of the predicted input */
	float *fln_w;    /* (C) pre-LN: the final LayerNorm */
	float *fln_b;    /* (C) */
} cs_bert_params;

/* Sizes (floats) of the tensors into sizes; returns the total. */
size_t cs_bert_param_sizes(const cs_bert_config *cfg,
			   size_t sizes[CS_BERT_NPARAMS]);
/* "wte", "wpe", ... (the field names above). */
const char *cs_bert_param_name(int i);
/* Non-zero if tensor i gets weight decay (matrices and embeddings). */
int cs_bert_param_decays(int i);
/* Non-zero if tensor i belongs to the encoder (embeddings and blocks),
 * the part --init transfers and --freeze holds. */
int cs_bert_param_encoder(int i);
const char *cs_bert_head_name(int head);  /* "cloze", "session", "event" */
int cs_bert_head_parse(const char *s);    /* inverse, -1 if unknown */
const char *cs_bert_pool_name(int pool);  /* "cls", "mean" */
int cs_bert_pool_parse(const char *s);
const char *cs_bert_combine_name(int c);  /* "sum", "concat" */
int cs_bert_combine_parse(const char *s);

/* Activations of one batch, each (N, ...), (M, ...) or (L, ...) as said. */
typedef struct cs_bert_acts {
	float *emb;      /* (N, C) wte[item] + wpe[pos] */
	float *embln;    /* (N, C) */
	float *embln_mean, *embln_rstd; /* (N) */
	float *embm;     /* (N, C) dropout scale */
	float *x0;       /* (N, C) input of block 0 */
	float *qkv;      /* (L, N, 3C) */
	float *att;      /* (L, A) softmax weights */
	float *attm;     /* (L, A) dropout scale */
	float *attd;     /* (L, A) weights after dropout */
	float *atty;     /* (L, N, C) heads side by side */
	float *proj;     /* (L, N, C) */
	float *projm;    /* (L, N, C) dropout scale */
	float *res1;     /* (L, N, C) x + dropout(proj) */
	float *ln1;      /* (L, N, C) LayerNorm(res1); pre-LN: LayerNorm(x) */
	float *ln1_mean, *ln1_rstd; /* (L, N) */
	float *fch;      /* (L, N, FF) */
	float *fch_gelu; /* (L, N, FF) */
	float *fc2;      /* (L, N, C) */
	float *fc2m;     /* (L, N, C) dropout scale */
	float *res2;     /* (L, N, C) ln1 + dropout(fc2); pre-LN: res1 + dropout(fc2),
			    the block's output */
	float *ln2;      /* (L, N, C) LayerNorm(res2), the block's output (the
			    last: final hidden); pre-LN: LayerNorm(res1) */
	float *ln2_mean, *ln2_rstd; /* (L, N) */
	float *hm;       /* (M, C) hidden states at the scored positions */
	float *hh;       /* (M, C) */
	float *hh_gelu;  /* (M, C) */
	float *hln;      /* (M, C) */
	float *hln_mean, *hln_rstd; /* (M) */
	float *lse;      /* (M) log-sum-exp of each logits row */
	float *ecat;     /* (N, (1+NF) C) concat: the joined embeddings */
	float *flse;     /* (M) pred: log-sum-exp of each row of flogits */
	float *flogits;  /* (M, VF[pred-1]) pred: logits of the masked input */
	float *fln;      /* (N, C) pre-LN: the final LayerNorm, the encoder's output */
	float *fln_mean, *fln_rstd; /* (N) */
	float *logits;   /* (M, V) raw, or (M) for the binary heads; last so it
			    can be skipped when zeroing */
} cs_bert_acts;
#define CS_BERT_NACTS 39

/*
 * A packed batch: B sequences, sequence b is tokens off[b] .. off[b+1]-1
 * of tok and pos (N = off[B]); ftok holds the NF extra inputs of each
 * token, (N, NF) (NULL when NF is 0). mpos (M) are token indices to
 * predict (or score) and mtgt (M) their targets (NULL when only scoring):
 * items for the cloze head, 0/1 labels for the binary heads. The session
 * head with mean pooling scores whole sequences: M = B, mpos unused.
 */
typedef struct cs_batch {
	size_t B;
	const size_t *off;   /* (B+1), off[0] = 0 */
	const uint32_t *tok; /* (N) item ids, masked positions hold 1 */
	const uint32_t *pos; /* (N) position ids, < P */
	const uint32_t *ftok; /* (N, NF) or NULL */
	size_t M;
	const size_t *mpos;  /* (M) */
	const uint32_t *mtgt; /* (M) or NULL */
	const uint32_t *ftgt; /* (M) pred: targets of the predicted input, or NULL */
	size_t K;            /* sampled losses: negatives shared by the batch */
	const uint32_t *neg; /* (K) their items */
} cs_batch;

/*
 * A model: its config and its parameters, read only once made or loaded
 * (const wherever it is only read), so that any number of threads run
 * forwards over it at once, each with its own workspace. Only training's
 * update writes it (cs_bert_update).
 */
typedef struct cs_bert {
	cs_bert_config cfg;
	size_t param_sizes[CS_BERT_NPARAMS];
	size_t nparams;
	float *params_memory; /* (nparams) */
	cs_bert_params params;
} cs_bert;

/*
 * A workspace: the activations of the last forward and their gradients,
 * grown to the largest batch, the loss's scratch, and what that forward
 * was. One a thread; any model's forwards can use it, a backward only
 * the model and batch of its last forward.
 */
typedef struct cs_bert_work {
	size_t N, A, M, B;
	size_t act_sizes[CS_BERT_NACTS];
	size_t nacts, acts_cap, dacts_cap;
	float *acts_memory, *dacts_memory;
	cs_bert_acts acts, dacts;
	const cs_batch *batch; /* the batch of the last forward */
	int have_targets;
	double loss;          /* of the last forward with targets */
	/*
	 * The cloze loss is computed a tile of items at a time
	 * (cs_tiedce_forward) without storing the (M, V) logits, unless
	 * keep_logits is set (tests compare them); tiled tells which way the
	 * last forward went, so that the backward pass goes the same way.
	 */
	int keep_logits, tiled;
	int sampled;          /* the last forward took the sampled loss */
	float *ce_scratch;
	size_t ce_cap;
	/*
	 * The memory policy of the forwards run on this workspace: it is
	 * what they allocate, and the process's limit is split between the
	 * workspaces at work at once (one a thread), which a model shared by
	 * them cannot know and an eval run, with no training state, needs.
	 */
	double mem_limit;     /* bytes a forward may need (cs_bert_mem_bytes), 0: no limit [0] */
	int mem_share;        /* workspaces at work at once that share mem_limit [0: alone] */
} cs_bert_work;

/*
 * A training state: what training adds to a model (made by
 * cs_bert_train_new or read from a checkpoint, bertfile.h): gradients
 * and AdamW moments in the parameters' layout, the step, the dropout
 * stream, and the loss and update policy.
 */
typedef struct cs_bert_train {
	float *grads_memory;  /* (nparams) */
	float *m_memory;      /* (nparams) Adam first moment */
	float *v_memory;      /* (nparams) Adam second moment */
	cs_bert_params grads;
	long step;            /* AdamW steps taken */
	uint64_t seed;        /* dropout stream: seed, forward count */
	uint64_t nforward;    /* training forwards run */
	float pos_weight;     /* binary heads: weight of positive examples [1] */
	int frozen;           /* the update leaves the encoder alone (backward skips it) */
	int loss_kind;        /* cloze head: CS_LOSS_* (sampled.h) [full] */
	float gbce_beta;      /* CS_LOSS_GBCE: the weight of the positive */
	const float *logq;    /* CS_LOSS_SAMPLED: (V) log of each item's expected
				 count among the negatives, NULL: uniform [NULL] */
	/*
	 * lazy: the update touches only the rows of wte and out_b that the
	 * last training forward used (its items, targets and negatives; lazy
	 * Adam, for the sampled losses, whose gradient is zero elsewhere):
	 * other rows keep their weights and moments, so a step costs what
	 * the batch holds, not the catalogue. Their gradients stay zero
	 * between steps; cs_bert_zero_grad leaves them alone.
	 */
	int lazy;
	uint32_t *rows;       /* (nrows) those rows */
	size_t nrows, rows_cap;
	unsigned char *rowmark; /* (V) which are in rows */
	/*
	 * Data parallel training (train.c over a cs_comm): the batch of a
	 * training forward may be one process's share of a global batch of
	 * shard.N tokens and shard.A attention weights a layer, its tokens
	 * starting at token shard.tok0 of those and its weights at shard.att0.
	 * Dropout then draws what one process would draw for these tokens, and
	 * the loss is divided by the global batch's shard.M targets (binary
	 * heads: their weight, shard.W), so that the gradients of the shares
	 * sum to the global batch's. shard.N 0: the batch is all there is [0].
	 */
	struct { size_t N, A, tok0, att0; double M, W; } shard;
} cs_bert_train;

/* A model with fresh weights drawn from seed. */
cs_bert *cs_bert_new(const cs_bert_config *cfg, uint64_t seed, cs_error *err);
/* The same with the parameters left uninitialised, to be loaded. */
cs_bert *cs_bert_alloc(const cs_bert_config *cfg, cs_error *err);
/* The same on params (room for the parameters, from malloc or
 * cs_malloc_large), which the model takes: freed with it, or at once if
 * this fails. NULL params: cs_bert_alloc. */
cs_bert *cs_bert_alloc_on(const cs_bert_config *cfg, float *params, cs_error *err);
void cs_bert_free(cs_bert *m);

/* An empty workspace (its buffers grow with the batches). NULL with err
 * filled when out of memory. */
cs_bert_work *cs_bert_work_new(cs_error *err);
void cs_bert_work_free(cs_bert_work *w);

/*
 * A training state for m: gradients and AdamW moments (zero, 3 times the
 * parameters), step 0, the dropout stream of seed. NULL with err filled
 * when out of memory.
 */
cs_bert_train *cs_bert_train_new(const cs_bert *m, uint64_t seed, cs_error *err);
void cs_bert_train_free(cs_bert_train *t);

/*
 * Bytes of memory model cfg needs for a batch of N tokens, A attention
 * weights (cs_attention_size) and M predicted positions: the parameters
 * (when training, with their gradients and the two Adam moments), and the
 * activations, twice when training (their gradients). A double: the
 * products of a hostile config overflow 64 bits.
 */
double cs_bert_mem_bytes(const cs_bert_config *cfg, double N, double A, double M,
			 int training);
/*
 * 0 when that fits in limit bytes (or limit is 0), else -1 with err
 * (CS_ERR_LIMIT, about path) naming the need, the batch (B sequences of
 * up to T tokens), the hyperparameters and the limit. Before anything is
 * allocated for it: a forward checks every batch against its workspace's
 * mem_limit, and cs_dataset_mem_check (batch.h) the largest batch of a
 * dataset.
 */
int cs_bert_mem_check(const cs_bert_config *cfg, size_t B, size_t T, double N, double A,
		      double M, int training, double limit, const char *path, cs_error *err);

/* 0, or -1 with err filled if b is inconsistent with the model. */
int cs_bert_batch_check(const cs_bert *m, const cs_batch *b, cs_error *err);

/*
 * Forward of m over batch b (which must stay valid until cs_bert_backward)
 * in workspace w. t: the training state whose loss it takes (NULL: the
 * full loss, positives weighing 1); train: dropout on, drawn from t's
 * stream (t is then required). With targets, *loss (if not NULL) gets the
 * mean cross-entropy. Returns 0 or -1.
 */
int cs_bert_forward(const cs_bert *m, cs_bert_work *w, cs_bert_train *t, const cs_batch *b,
		    int train, float *loss, cs_error *err);
/*
 * Copy the encoder of src into m (both built; the same items, hidden size,
 * blocks, length and extra inputs). Returns 0, or -1 with err naming the
 * tensor that does not fit.
 */
int cs_bert_copy_encoder(cs_bert *m, const cs_bert *src, cs_error *err);

/*
 * Lazy updates (cs_bert_train.lazy) of a global batch: after the processes
 * have or-ed their rowmark (V) together, make rows the rows marked, in
 * increasing order, so that every process updates the same ones.
 */
int cs_bert_rows_from_mark(const cs_bert *m, cs_bert_train *t, cs_error *err);

/* Add the loss gradient of w's last forward (of m, with targets) to t->grads. */
int cs_bert_backward(const cs_bert *m, cs_bert_work *w, cs_bert_train *t, cs_error *err);
void cs_bert_zero_grad(const cs_bert *m, cs_bert_train *t);
/*
 * Clip, then one AdamW step of m with the gradients of t and the schedule
 * of o at step t->step, and count it. *gnorm (if not NULL) gets the norm
 * before clipping.
 */
void cs_bert_update(cs_bert *m, cs_bert_train *t, const cs_adamw *o, float *gnorm);

/* Final hidden states (N, C) of w's last forward (of m). */
const float *cs_bert_hidden(const cs_bert *m, const cs_bert_work *w);
/* Encoder only (no output layer, no loss): hidden states of b, eval mode. */
int cs_bert_encode(const cs_bert *m, cs_bert_work *w, const cs_batch *b,
		   const float **hidden, cs_error *err);
/*
 * Scores (M, V) over all items at positions b->mpos (eval mode): the
 * logits, pad and mask set to -INFINITY. For the next item after a
 * history, append a mask token (1) to each sequence and score it.
 * *scores points into w's activations: valid until its next forward, no
 * copy made.
 */
int cs_bert_score(const cs_bert *m, cs_bert_work *w, const cs_batch *b,
		  const float **scores, cs_error *err);
/*
 * The hidden states (M, C) the output layer scores at b->mpos (eval mode):
 * scores = h @ wte^T + out_b, for cs_scorer (score.h), which selects the
 * top items without writing all M x V scores. Points into the activations
 * like scores.
 */
int cs_bert_score_hidden(const cs_bert *m, cs_bert_work *w, const cs_batch *b,
			 const float **h, cs_error *err);
/*
 * Binary heads: probabilities (M) of the positive class at b->mpos (the
 * event head, the session head with a [CLS] token) or of each sequence
 * (mean pooling), eval mode. Points into the activations like scores.
 */
int cs_bert_prob(const cs_bert *m, cs_bert_work *w, const cs_batch *b, const float **prob,
		 cs_error *err);

#endif
