/*
 * mask.h - splits of sequence streams and BERT4Rec's Cloze examples.
 *
 * Splits turn each sequence into training, validation and test parts.
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
 *
 * A Cloze example is a window of at most max_len events whose item is
 * replaced by the [MASK] id at some positions; the event-level id field
 * "target" holds the original item there and 0 elsewhere. Other id fields
 * masked with the item (mask_field) keep theirs in "target_<field>".
 *
 * A next-item example (cs_cloze_opts.next, for causal models) is a window
 * of at most max_len events whose "target" holds, at every position, the
 * item of the event after it (the window's own events unchanged; its last
 * event's successor is left out of the window); mask_field fields get
 * target_<field> the same way. Windows cover the whole sequence, the last
 * ending at its end, each slide * max_len events after the one before;
 * a sequence of n <= max_len + 1 events gives one example of n - 1
 * events. Metadata "split" is "next" (Cloze examples: "cloze").
 *
 * Classification examples add an int64 field "label": sequence-level for
 * purchase intention (does the session go on to a purchase?), event-level
 * for returns (is this purchase returned later?).
 */
#ifndef CS_MASK_H
#define CS_MASK_H

#include "cs.h"
#include "rng.h"
#include "vocab.h"

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

typedef struct cs_cloze_opts {
	double mask_prob;   /* share of positions masked [0.6, Beauty] */
	size_t max_pred;    /* at most this many masked positions [30] */
	size_t max_len;     /* window length [50] */
	double slide;       /* window step as a share of max_len [0.1] */
	size_t dupe;        /* differently masked copies of each window [10] */
	int mask_last;      /* add one example masking only the last item [1] */
	uint64_t seed;
	const char *const *mask_field; /* event id fields also masked [none] */
	size_t nmask_field;
	int next;           /* next-item examples instead (see below) [0] */
} cs_cloze_opts;

void cs_cloze_defaults(cs_cloze_opts *o);

typedef struct cs_cloze cs_cloze;

/*
 * Prepare Cloze examples from streams with schema in (item must be an id
 * field; so must each mask_field, at event level).
 */
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

/* ------------------------------------------------------------ labels */

typedef struct cs_label_opts {
	const char *action;    /* event field holding the event type ["action"] */
	const char *purchase;  /* its purchase token ["purchase"] */
	const char *ret;       /* returns: its return token ["return"] */
	size_t first;          /* session: keep at most the first K events, 0: all [0] */
	const cs_vocab *vocab; /* needed when action is an id field; must outlive the labeler */
} cs_label_opts;

void cs_label_defaults(cs_label_opts *o);

typedef struct cs_label_stats {
	uint64_t sequences;  /* read */
	uint64_t examples;   /* records written */
	uint64_t dropped;    /* sequences left without events */
	uint64_t positives;  /* session: examples labelled 1 */
	uint64_t purchases;  /* returns: purchases written (labelled 0 or 1) */
	uint64_t returned;   /* returns: purchases labelled 1 */
	uint64_t unmatched;  /* returns: returns with no earlier purchase to match */
} cs_label_stats;

/*
 * Purchase intention. A session's label is 1 if any event is a purchase;
 * its events are those before the first purchase (all without one), at
 * most the first K. Output: the input plus sequence-level int64 "label".
 */
typedef struct cs_session_labeler cs_session_labeler;

cs_session_labeler *cs_session_labeler_new(const cs_schema *in, const char *stream,
					   const cs_label_opts *o, cs_error *err);
void cs_session_labeler_free(cs_session_labeler *sl);
const cs_schema *cs_session_labeler_schema(const cs_session_labeler *sl);
/* Label one sequence into out: 1 an example, 0 dropped (no events left), -1 error. */
int cs_session_labeler_run(cs_session_labeler *sl, const cs_record *in, cs_record *out,
			   cs_error *err);
const cs_label_stats *cs_session_labeler_stats(const cs_session_labeler *sl);

/*
 * Returns. Each return is matched to the most recent earlier purchase of
 * the same item not matched yet, which gets label 1; other purchases get
 * 0, other events -1. Return events are left out. Output: the input plus
 * event-level int64 "label".
 */
typedef struct cs_return_labeler cs_return_labeler;

cs_return_labeler *cs_return_labeler_new(const cs_schema *in, const char *stream,
					 const cs_label_opts *o, cs_error *err);
void cs_return_labeler_free(cs_return_labeler *rl);
const cs_schema *cs_return_labeler_schema(const cs_return_labeler *rl);
/* Label one sequence into out: 1 an example, 0 dropped (no events left), -1 error. */
int cs_return_labeler_run(cs_return_labeler *rl, const cs_record *in, cs_record *out,
			  cs_error *err);
const cs_label_stats *cs_return_labeler_stats(const cs_return_labeler *rl);

#endif
