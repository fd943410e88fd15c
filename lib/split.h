/*
 * split.h - splits of sequence streams: each sequence into training,
 * validation and test parts.
 *
 * An evaluation record is a history (the events before the held-out one,
 * every field passed through) plus sequence-level fields "target" (the
 * held-out item, same type and vocabulary as "item") and "target_pos"
 * (its 0-based position in the original sequence, int64).
 *
 * A split can also send whole sequences to each part (a time cut with
 * whole set, or a random split): then every part has the input's schema.
 *
 * A global time split (CS_SPLIT_AT) cuts every sequence at the same
 * instant: training gets the events before the cut, test the first event
 * at or after it, with every event before that one as its history.
 */
#ifndef CS_SPLIT_H
#define CS_SPLIT_H

#include "cs.h"

/* Which part of a split a record goes to. */
enum { CS_SPLIT_TRAIN = 0, CS_SPLIT_VALID = 1, CS_SPLIT_TEST = 2, CS_NSPLIT = 3 };

/* How a split assigns sequences. */
enum { CS_SPLIT_LOO = 0, CS_SPLIT_TIME = 1, CS_SPLIT_RANDOM = 2, CS_SPLIT_AT = 3 };

typedef struct cs_split_opts {
	int mode;           /* CS_SPLIT_LOO, CS_SPLIT_TIME, CS_SPLIT_RANDOM or CS_SPLIT_AT */
	int64_t time_cut;   /* time: sequences starting at or after go to test;
			       at: the first event at or after is the test target */
	int64_t valid_cut;  /* time: [valid_cut, time_cut) go to validation; 0: none;
			       at (with valid_at): training ends here, and the first
			       event in [valid_cut, time_cut) is the validation target */
	int valid_at;       /* at: there is a validation cut, valid_cut < time_cut */
	size_t min_len;     /* shorter sequences are dropped [1] */
	int whole;          /* time: whole sequences in valid and test, none held out */
	int train_valid;    /* leave-one-out: training keeps the validation item */
	double valid_frac;  /* random: share of sequences for validation, [0, 1) */
	double test_frac;   /* random: share for test; valid_frac + test_frac < 1 */
	uint64_t seed;      /* random: the assignment is a hash of seed and record index */
} cs_split_opts;

typedef struct cs_splitter cs_splitter;

/* Prepare splits of streams with schema in (needs an event field "item"). */
cs_splitter *cs_splitter_new(const cs_schema *in, const char *stream,
			     const cs_split_opts *o, cs_error *err);
void cs_splitter_free(cs_splitter *sp);
/*
 * Schema of a part: the input's (with metadata "split") for training and
 * for whole sequences, the input's plus target and target_pos otherwise.
 * A global time split adds metadata "split_at" (and "split_valid_at"),
 * the cuts in decimal seconds, to every part.
 */
const cs_schema *cs_splitter_schema(const cs_splitter *sp, int part);
/*
 * Split one sequence: out[part] gets a record for each part it has,
 * has[part] says which. Call once per input record, in order (a random
 * split counts them; a global time split names them in its errors, such
 * as events out of time order). Returns 0, or -1 on error.
 */
int cs_splitter_run(cs_splitter *sp, const cs_record *in, cs_record out[CS_NSPLIT],
		    int has[CS_NSPLIT], cs_error *err);

#endif
