/*
 * batch.h - packed batches (model.h) from the sequences of a dataset, for
 * each kind of data:
 *   Cloze    the example as is, predicting its masked positions;
 *   eval     the last P-1 events of a history and a [MASK] appended, scored;
 *            a causal model: the last P events, scored at the last one;
 *   session  cls pooling: the last P-1 events and a [MASK] as [CLS], its
 *            label at the [MASK]; mean pooling: the last P events;
 *   event    the window as is, predicting its labelled events.
 * The extra inputs of an appended [MASK] are [MASK] too.
 */
#ifndef CS_BATCH_H
#define CS_BATCH_H

#include "dataset.h"
#include "model.h"

typedef struct cs_batcher {
	size_t cap, P, NF;  /* sequences per batch, model length, extra inputs */
	int kind;           /* CS_DATA_* */
	int mean;           /* session head with mean pooling */
	int append;         /* a [MASK] goes after each sequence (cs_batch_appends) */
	size_t *off, *mpos;
	uint32_t *tok, *pos, *ftok, *mtgt, *ftgt;
	cs_batch b;
} cs_batcher;

/*
 * Whether batches of data kind for model c append a [MASK] to each
 * sequence (which then keeps its last P-1 events, not P): held-out
 * histories of a bidirectional model, sessions pooled by a [CLS] token.
 */
int cs_batch_appends(const cs_bert_config *c, int kind);

/* Buffers for batches of up to cap sequences of data kind for model c. */
int cs_batcher_init(cs_batcher *bt, const cs_bert_config *c, int kind, size_t cap,
		    cs_error *err);
void cs_batcher_free(cs_batcher *bt);
/*
 * The batch of sequences seq[0..B) of d, or first .. first+B-1 when seq
 * is NULL (B <= cap). Valid until the next fill.
 */
cs_batch *cs_batcher_fill(cs_batcher *bt, const cs_dataset *d, const size_t *seq,
				size_t first, size_t B);

/*
 * The data kind (CS_DATA_*) model c trains on (training) or is evaluated
 * on: Cloze examples or held-out histories for the cloze head, labelled
 * sequences or events for the others.
 */
int cs_data_kind(const cs_bert_config *c, int training);

/*
 * Read the stream at path as data for the model c: Cloze examples
 * (training) or held-out histories for the cloze head, labelled sequences
 * or events for the others; with the model's extra inputs; cut to what
 * the model reads. key: as in cs_dataset_inputs.
 */
cs_dataset *cs_dataset_for_model(const char *path, const cs_bert_config *c,
				 uint64_t item_vocab, int training, const char *key,
				 cs_error *err);

/*
 * cs_bert_mem_check for the largest batch of up to B sequences of d that
 * model c may run, training or scoring (as cs_dataset_for_model read it):
 * the B longest sequences, the B with the most attention weights and the
 * B with the most predicted positions, each as cut to the model's
 * length. 0 when it fits in limit bytes (or limit is 0), else -1 with err
 * about path (the model file, or NULL).
 */
int cs_dataset_mem_check(const cs_dataset *d, const cs_bert_config *c, int training,
			 size_t B, double limit, const char *path, cs_error *err);

/* Check that every id of d fits the model; -1 with a message if not. */
int cs_dataset_check(const cs_dataset *d, const cs_bert_config *c, cs_error *err);

#endif
