/*
 * label.h - examples for the classifiers: an int64 field "label",
 * sequence-level for purchase intention (does the session go on to a
 * purchase?), event-level for returns (is this purchase returned later?).
 */
#ifndef CS_LABEL_H
#define CS_LABEL_H

#include "cs.h"
#include "vocab.h"

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
