/*
 * dataset.h - encoded sequences held in memory for training and
 * evaluation: item ids packed back to back, the ids of any extra event
 * inputs (action, category, ...), and what is predicted: the Cloze targets
 * of a training stream (event field "target"), the held-out item of an
 * evaluation stream (sequence field "target"), a sequence label (sequence
 * field "label", 0 or 1) or event labels (event field "label": 1, 0, or -1
 * for events not scored).
 */
#ifndef CS_DATASET_H
#define CS_DATASET_H

#include "cs.h"

#define CS_NO_LABEL 255 /* an event that is not scored */

enum { CS_DATA_CLOZE = 1, CS_DATA_EVAL = 2, CS_DATA_SESSION = 3, CS_DATA_EVENT = 4 };

typedef struct cs_dataset {
	int kind;         /* CS_DATA_* */
	size_t n;         /* sequences */
	size_t *off;      /* (n+1) token offsets */
	uint32_t *item;   /* (off[n]) item ids */
	size_t nf;        /* extra inputs per event */
	uint32_t *ftok;   /* (off[n], nf) their ids; or NULL */
	uint32_t *mtgt;   /* (off[n]) Cloze targets, 0 = not masked; or NULL */
	uint32_t *fmtgt;  /* (off[n]) Cloze targets of the predicted input; or NULL */
	uint32_t *target; /* (n) held-out items; or NULL */
	uint8_t *label;   /* (n) sequence labels or (off[n]) event labels; or NULL */
	uint64_t nlabels, npos; /* labels, positive ones */
	uint64_t vocab;   /* fingerprint of the item ids */
	size_t truncated; /* sequences longer than keep */
	size_t skipped;   /* examples left with nothing to predict */
	uint64_t events;  /* events read */
	char *keys;       /* with a key field: each sequence's key, NUL-terminated, */
	size_t *key_off;  /* (n + 1) at keys + key_off[i], key_off[i + 1] - key_off[i] - 1
			   * bytes (a string key may hold a NUL) */
	size_t *start;    /* (n) index of its first event in its record */
	int holds_valid;  /* metadata holds_valid: made with cs-mask split --train-valid */
	int next;         /* metadata split "next": next-item examples (cs-mask next) */
	size_t window;    /* metadata max_len: the examples' window length (cs-mask
			     cloze, next); 0: not said */
} cs_dataset;

/* Extra event inputs to read: id fields name[0..n), each encoded with the
 * vocabulary of fingerprint vocab[i] (0: any). */
typedef struct cs_dataset_inputs {
	size_t n;
	const char *const *name;
	const uint64_t *vocab;
	size_t pred;       /* Cloze: also read target_<name[pred-1]>; 0: no */
	const char *key;   /* sequence field kept as text, "#": the record number,
			      "": user, else session, else the record number; NULL: none */
	size_t nitems;     /* item and target ids must be below this; 0: unchecked */
	const size_t *nids; /* (n) so must each extra input's ids (and its Cloze
			       targets); NULL: unchecked */
} cs_dataset_inputs;

/*
 * Read a whole stream of kind CS_DATA_CLOZE (needs event id fields item
 * and target), CS_DATA_EVAL (event id item, seq id target),
 * CS_DATA_SESSION (event id item, seq int64 label) or CS_DATA_EVENT (event
 * id item, event int64 label). Cloze and session examples longer than
 * keep events keep their last keep; event examples are cut into windows of
 * keep; longer histories are kept whole (the model reads their last
 * keep). All are counted in truncated. vocab (if not 0) must match the
 * item field's fingerprint. in (may be NULL) names extra inputs and the
 * id limits: an id beyond them is an error naming the file and record.
 */
cs_dataset *cs_dataset_read(const char *path, int kind, size_t keep,
			    uint64_t vocab, const cs_dataset_inputs *in,
			    cs_error *err);
void cs_dataset_free(cs_dataset *d);
/*
 * The sequence field that names the records of a stream of schema s, as
 * cs_dataset_inputs.key says: -1 for none (key NULL or "#": the record
 * number; "": no user or session field). A field named that is not a
 * sequence field of s is an error (path: for the message): -2.
 */
int cs_dataset_key_field(const cs_schema *s, const char *key, const char *path, cs_error *err);
#define CS_KEY_BUF 32
/*
 * The key of record rec (recno: its number) by field key (-1: the record
 * number) as text, *len bytes: rec's own string, or written into buf.
 */
const char *cs_dataset_key(const cs_schema *s, int key, const cs_record *rec, uint64_t recno,
			   char buf[CS_KEY_BUF], size_t *len);

/*
 * Histories gathered one at a time, as a service receives them: a
 * dataset of items and keys only (off, item, keys, key_off), emptied and
 * refilled batch after batch. Starts zeroed.
 */
typedef struct cs_histories {
	cs_dataset d;
	size_t cap_off, cap_tok, cap_keys, cap_koff, keys_len;
} cs_histories;
/* Append the history items[0..n) named key (klen bytes). */
int cs_histories_add(cs_histories *h, const char *key, size_t klen, const uint32_t *items,
		     size_t n, cs_error *err);
/* Empty h, keeping its memory. */
void cs_histories_clear(cs_histories *h);
void cs_histories_free(cs_histories *h);

/* Length of sequence i. */
static inline size_t cs_dataset_len(const cs_dataset *d, size_t i)
{
	return d->off[i + 1] - d->off[i];
}

#endif
