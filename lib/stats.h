/*
 * stats.h - descriptive statistics of a sequence stream in one pass:
 * events per type, the funnel per session and per user, unique counts,
 * time range and events per day and hour, sequence lengths, top values of
 * the categorical fields and how concentrated item popularity is.
 *
 * Memory is bounded by the catalogue (one counter per distinct item,
 * category, brand, action and day), never by the number of events: unique
 * users and sessions, which grow with the events, are counted exactly up
 * to CS_STATS_EXACT distinct values and by HyperLogLog beyond.
 */
#ifndef CS_STATS_H
#define CS_STATS_H

#include "cs.h"
#include "vocab.h"

/* Distinct values a unique counter holds exactly before it estimates. */
#define CS_STATS_EXACT 65536
/* HyperLogLog precision beyond it: 2^16 registers, standard error 0.41%. */
#define CS_STATS_HLL_P 16
/* Action types followed per session and per user; more are still counted. */
#define CS_STATS_MAX_ACTIONS 16

typedef struct cs_stats cs_stats;

typedef struct cs_stats_opts {
	size_t top;            /* values listed per categorical field, 0: 10 */
	const cs_vocab *vocab; /* names for id fields (may be NULL) */
	const char *name;      /* the stream's name, for messages */
} cs_stats_opts;

/* Start statistics of a stream of schema s; NULL with err on failure. */
cs_stats *cs_stats_new(const cs_schema *s, const cs_stats_opts *o, cs_error *err);
void cs_stats_free(cs_stats *st);
/* Count one record. */
int cs_stats_add(cs_stats *st, const cs_record *rec, cs_error *err);

enum { CS_STATS_TSV = 0, CS_STATS_JSON = 1 };
/*
 * Write the statistics as "section<TAB>key<TAB>value" rows, or as one JSON
 * object of sections ({"section": {"key": value, ...}, ...}). Statistics
 * the stream cannot give (no 'action' field, no 'time' field, ...) are
 * rows of the section "missing" naming the field and why.
 */
int cs_stats_write(cs_stats *st, FILE *fp, const char *name, int format,
		   cs_error *err);

/*
 * Write the data of the plots into directory dir (which must exist):
 * length.tsv (length, sequences), popularity.tsv (rank, events), day.tsv
 * (date, events), hour.tsv (hour, events) and funnel.tsv (action,
 * events, sessions, users). A file whose data the stream lacks is not
 * written; *have gets a bit per file written, in that order.
 */
int cs_stats_write_plot_data(cs_stats *st, const char *dir, unsigned *have,
			     cs_error *err);
enum {
	CS_PLOT_LENGTH = 1, CS_PLOT_POPULARITY = 2, CS_PLOT_DAY = 4,
	CS_PLOT_HOUR = 8, CS_PLOT_FUNNEL = 16
};

/* Bytes the statistics hold now (tables and counters). */
size_t cs_stats_memory(const cs_stats *st);

#endif
