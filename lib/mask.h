/*
 * mask.h - BERT4Rec's Cloze examples and next-item examples.
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
 * The splits (split.h) and the classifiers' labels (label.h), once
 * declared here, have headers of their own; this one includes them, so
 * that programs written against it build as they did.
 */
#ifndef CS_MASK_H
#define CS_MASK_H

#include "cs.h"
#include "label.h"
#include "rng.h"
#include "split.h"
#include "vocab.h"

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

#endif
