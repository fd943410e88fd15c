/*
 * ingest.h - turn CSV exports of shop events into sequence streams.
 *
 * A mapping says which CSV column holds the user, the session, the item,
 * the action and the time, and which extra columns to keep. Rows are
 * grouped by user or session, ordered by time (ties keep input order) and
 * written as one record per group, groups in key order: keys made only of
 * digits come first in numeric order, all other keys follow in bytewise
 * order. Grouping works in bounded memory: sorted runs are spilled to
 * temporary files and merged.
 */
#ifndef CS_INGEST_H
#define CS_INGEST_H

#include <stdint.h>
#include "cs.h"
#include "time.h"

#define CS_INGEST_MAX_KEEP 64

/* How the action of an event is found. */
enum cs_action_mode {
	CS_ACTION_NONE = 0, /* no action field */
	CS_ACTION_COLUMN,   /* taken from a column */
	CS_ACTION_CONST,    /* the same for every row */
	CS_ACTION_INVOICE   /* 'return' if the column starts with C, else 'purchase' */
};

enum cs_group_by { CS_BY_USER = 0, CS_BY_SESSION = 1 };

/* An extra column kept as an event-level field. */
typedef struct cs_ingest_keep {
	const char *name; /* output field name, NULL: the header name */
	const char *col;  /* header name or 1-based column number */
	int type;         /* CS_STRING, CS_INT64 or CS_FLOAT32 */
} cs_ingest_keep;

/* How the columns of one CSV input map to fields. Columns are header names
 * or 1-based numbers; NULL means absent. */
typedef struct cs_ingest_map {
	char sep;          /* field separator */
	int header;        /* the first line names the columns */
	int seqlines;      /* lines are 'user item1 item2 ...' */
	const char *user, *session, *item, *action, *time;
	const char *time_offset; /* column of milliseconds added to the time */
	int action_mode;   /* enum cs_action_mode */
	const char *action_value; /* CS_ACTION_CONST */
	int time_format;   /* enum cs_time_format */
	const char *time_pattern; /* CS_TIME_PATTERN */
	int skip_missing_key; /* rows with an empty or NA group key are skipped, not bad */
	size_t nkeep;
	cs_ingest_keep keep[CS_INGEST_MAX_KEEP];
} cs_ingest_map;

typedef struct cs_ingest_stats {
	uint64_t bytes;      /* CSV bytes read */
	uint64_t rows;       /* data rows read (events for seqlines) */
	uint64_t bad;        /* bad rows skipped */
	uint64_t skipped;    /* rows without a group key (skip_missing_key) */
	uint64_t unmatched;  /* second-input rows whose group had no first-input row */
	uint64_t sequences;  /* records written */
	uint64_t events;     /* events written */
	uint64_t collapsed;  /* events dropped as repeats */
	uint64_t short_seqs; /* sequences dropped by min_len */
	uint64_t groups;     /* distinct group keys */
	uint64_t runs;       /* sorted runs spilled to temporary files */
	size_t nactions;     /* events per action, the first 16 actions seen */
	char action[16][32];
	uint64_t action_count[16];
	int phase;           /* 0 reading, 1 merging/writing */
} cs_ingest_stats;

typedef struct cs_ingest_opts {
	cs_ingest_map map;
	const char *second;      /* optional second input joined on the group key */
	cs_ingest_map map2;      /* its mapping (same output fields) */
	const char *source;      /* metadata 'source', e.g. the preset name */
	int by;                  /* enum cs_group_by */
	int64_t gap;             /* split a group at gaps longer than this (s), 0: never */
	int collapse;            /* drop consecutive repeats of item and action */
	size_t min_len;          /* drop shorter sequences */
	uint64_t mem;            /* memory budget in bytes, 0: 256 MiB */
	int threads;             /* parser threads, 0: 1 */
	int strict;              /* the first bad row is fatal */
	const char *tmpdir;      /* for spilled runs, NULL: $TMPDIR or /tmp */
	size_t block;            /* parse block size, 0: automatic (tests) */
	/* Called for each of the first max_report bad rows, in input order. */
	int max_report;
	void (*on_bad)(void *ctx, const cs_error *e);
	/* Called now and then while running. */
	void (*on_progress)(void *ctx, const cs_ingest_stats *st);
	void *ctx;
} cs_ingest_opts;

/* Set defaults: comma separated with a header, group by user, no fields. */
void cs_ingest_opts_init(cs_ingest_opts *o);
/* Fill the mapping(s) for a preset: kaggle, amazon, pairs, seqlines,
 * retail, diginetica. Returns -1 for an unknown name. */
int cs_ingest_preset(cs_ingest_opts *o, const char *name, cs_error *err);
/* Names of the presets, NULL-terminated. */
extern const char *const cs_ingest_presets[];

/*
 * An ingest of the CSV files (none, NULL or "-": stdin; several are read
 * one after the other, then o->second), in two steps: cs_ingest_open reads the
 * first input's header, which settles the output schema; cs_ingest_run
 * reads everything and writes the records to a writer opened with that
 * schema (it neither closes nor aborts it). st (may be NULL) is filled as
 * it goes. o and paths must outlive the ingest.
 */
typedef struct cs_ingest cs_ingest;
cs_ingest *cs_ingest_open(const cs_ingest_opts *o, const char *const *paths, size_t npaths,
			  cs_ingest_stats *st, cs_error *err);
const cs_schema *cs_ingest_schema(const cs_ingest *in);
/* Returns 0 or -1. */
int cs_ingest_run(cs_ingest *in, cs_writer *w, cs_error *err);
void cs_ingest_close(cs_ingest *in);

/* Compare two group keys in output order. */
int cs_ingest_keycmp(const char *a, size_t na, const char *b, size_t nb);

#endif
