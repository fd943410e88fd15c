/*
 * mask.h - splits of sequence streams and BERT4Rec's Cloze examples.
 *
 * Splits turn each sequence into training, validation and test parts.
 * An evaluation record is a history (the events before the held-out one,
 * every field passed through) plus sequence-level fields "target" (the
 * held-out item, same type and vocabulary as "item") and "target_pos"
 * (its 0-based position in the original sequence, int64).
 *
 * A Cloze example is a window of at most max_len events whose item is
 * replaced by the [MASK] id at some positions; the event-level id field
 * "target" holds the original item there and 0 elsewhere.
 */
#ifndef CS_MASK_H
#define CS_MASK_H

#include "cs.h"
#include "nn.h"

/* Which part of a split a record goes to. */
enum { CS_SPLIT_TRAIN = 0, CS_SPLIT_VALID = 1, CS_SPLIT_TEST = 2, CS_NSPLIT = 3 };

typedef struct cs_split_opts {
	int by_time;        /* 0: leave-one-out, 1: time cut */
	int64_t time_cut;   /* by_time: sequences starting at or after go to test */
	int64_t valid_cut;  /* by_time: [valid_cut, time_cut) go to validation; 0: none */
	size_t min_len;     /* shorter sequences are dropped [1] */
} cs_split_opts;

typedef struct cs_splitter cs_splitter;

/* Prepare splits of streams with schema in (needs an event field "item"). */
cs_splitter *cs_splitter_new(const cs_schema *in, const char *stream,
			     const cs_split_opts *o, cs_error *err);
void cs_splitter_free(cs_splitter *sp);
/* Schema of the training part (the input's) and of the evaluation parts. */
const cs_schema *cs_splitter_schema(const cs_splitter *sp, int part);
/*
 * Split one sequence: out[part] gets a record for each part it has,
 * has[part] says which. Returns 0, or -1 on error.
 */
int cs_splitter_run(cs_splitter *sp, const cs_record *in, cs_record out[CS_NSPLIT],
		    int has[CS_NSPLIT], cs_error *err);

typedef struct cs_cloze_opts {
	double mask_prob;   /* share of positions masked [0.6, Beauty] */
	size_t max_pred;    /* at most this many masked positions [30] */
	size_t max_len;     /* window length [50] */
	double slide;       /* window step as a share of max_len [0.1] */
	size_t dupe;        /* differently masked copies of each window [10] */
	int mask_last;      /* add one example masking only the last item [1] */
	uint64_t seed;
} cs_cloze_opts;

void cs_cloze_defaults(cs_cloze_opts *o);

typedef struct cs_cloze cs_cloze;

/* Prepare Cloze examples from streams with schema in (item must be an id field). */
cs_cloze *cs_cloze_new(const cs_schema *in, const char *stream,
		       const cs_cloze_opts *o, cs_error *err);
void cs_cloze_free(cs_cloze *cz);
const cs_schema *cs_cloze_schema(const cs_cloze *cz);
/*
 * Make the examples of one sequence; calls emit for each. Returns the
 * number of examples, or -1 if emit failed (its error is kept).
 */
long cs_cloze_run(cs_cloze *cz, const cs_record *in,
		  int (*emit)(void *ctx, const cs_record *ex, cs_error *err),
		  void *ctx, cs_error *err);

#endif
