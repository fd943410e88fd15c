/*
 * bertfile.h - BERT4Rec models in model files (modelfile.h): every
 * hyperparameter as metadata, the item vocabulary fingerprint, the
 * parameters by name, and for checkpoints the AdamW moments and step.
 */
#ifndef CS_BERTFILE_H
#define CS_BERTFILE_H

#include "model.h"
#include "modelfile.h"

/*
 * Make a model file of m trained with t (tensors refer to their buffers;
 * write it before they change): t's step, forward count and dropout seed
 * (t NULL: an untrained model, all 0). item_vocab: fingerprint of the
 * item ids. with_optim adds t's AdamW moments for --resume.
 */
cs_modelfile *cs_bert_to_file(const cs_bert *m, const cs_bert_train *t, uint64_t item_vocab,
			      int with_optim, cs_error *err);
/*
 * The model file of m's configuration with other weights: params (m's
 * layout, m->nparams floats) as they were at step after nforward
 * training forwards of t (the best model a checkpoint keeps). No moments.
 */
cs_modelfile *cs_bert_weights_to_file(const cs_bert *m, const cs_bert_train *t,
				      float *params, long step, uint64_t nforward,
				      uint64_t item_vocab, cs_error *err);
/*
 * The shape of parameter tensor i (cs_bert_param_name) of a model of
 * config c into d, outermost first; returns the rank (1 to 3). Model files
 * store it as the metadata "shape.NAME" (cs-formats(5)).
 */
int cs_bert_param_shape(const cs_bert_config *c, int i, uint64_t d[3]);
/* Build a model from a file read by cs_modelfile_read or _open; *item_vocab gets
 * the fingerprint. The model alone: its training state is another object. */
cs_bert *cs_bert_from_file(const cs_modelfile *mf, const char *path,
			   uint64_t *item_vocab, cs_error *err);
/* The training state of m in checkpoint mf (path: for errors): its step,
 * forward count, dropout seed and AdamW moments. NULL with err filled if
 * they are missing or do not fit. */
cs_bert_train *cs_bert_train_from_file(const cs_bert *m, const cs_modelfile *mf,
				       const char *path, cs_error *err);
/* Read path and build the model (the file is freed unless mfp is given). */
cs_bert *cs_bert_load(const char *path, uint64_t *item_vocab, cs_modelfile **mfp,
		      cs_error *err);

#endif
