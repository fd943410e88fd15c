/*
 * dataset.h - encoded sequences held in memory for training and
 * evaluation: item ids packed back to back, with the Cloze targets of a
 * training stream (event field "target") or the held-out item of an
 * evaluation stream (sequence field "target").
 */
#ifndef CS_DATASET_H
#define CS_DATASET_H

#include "cs.h"

typedef struct cs_dataset {
	size_t n;         /* sequences */
	size_t *off;      /* (n+1) token offsets */
	uint32_t *item;   /* (off[n]) item ids */
	uint32_t *mtgt;   /* (off[n]) Cloze targets, 0 = not masked; or NULL */
	uint32_t *target; /* (n) held-out items; or NULL */
	uint64_t vocab;   /* fingerprint of the item ids */
	size_t truncated; /* sequences longer than keep */
	size_t skipped;   /* Cloze examples left with no masked position */
	uint64_t events;  /* events read */
} cs_dataset;

enum { CS_DATA_CLOZE = 1, CS_DATA_EVAL = 2 };

/*
 * Read a whole stream of kind CS_DATA_CLOZE (needs event id fields item and
 * target) or CS_DATA_EVAL (event id item, seq id target). Cloze examples
 * longer than keep events keep their last keep; longer histories are kept
 * whole and counted in truncated (the model reads their last keep). vocab
 * (if not 0) must match the item field's fingerprint.
 */
cs_dataset *cs_dataset_read(const char *path, int kind, size_t keep,
			    uint64_t vocab, cs_error *err);
void cs_dataset_free(cs_dataset *d);
/* Length of sequence i. */
static inline size_t cs_dataset_len(const cs_dataset *d, size_t i)
{
	return d->off[i + 1] - d->off[i];
}

#endif
