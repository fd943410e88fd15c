/*
 * group.h - the ingest's groups of rows to sequence records (not
 * installed): a group is split at gaps, repeats are collapsed, short
 * sequences dropped, and groups of the second input alone (the join) left
 * out. Also the layout of a row's payload, which ingest.c writes and this
 * module reads.
 */
#ifndef CS_GROUP_H
#define CS_GROUP_H

#include <string.h>
#include "extsort.h"
#include "ingest.h"

/* ------------------------------------------------------------ payloads */

/* A row's payload: a flags byte, then the user (grouped by session, when
 * mapped), the item, the action (when there is one), the session (grouped
 * by user, when mapped), then the kept fields in order. Strings are a
 * varint length and the bytes; int64 and float32 fields 8 and 4 bytes in
 * host order (payloads never leave the process). */
enum { CS_ROW_SECOND = 1 }; /* flag: the row is of the second input */

static inline uint8_t *cs_row_put_varint(uint8_t *d, uint64_t v)
{
	while (v >= 0x80) {
		*d++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*d++ = (uint8_t)v;
	return d;
}

static inline const uint8_t *cs_row_get_varint(const uint8_t *s, uint64_t *v)
{
	uint64_t x = 0;
	int sh = 0;
	while (*s & 0x80) {
		x |= (uint64_t)(*s++ & 0x7f) << sh;
		sh += 7;
	}
	*v = x | (uint64_t)*s++ << sh;
	return s;
}

static inline uint8_t *cs_row_put_str(uint8_t *d, const char *s, size_t n)
{
	d = cs_row_put_varint(d, n);
	memcpy(d, s, n);
	return d + n;
}

/* ------------------------------------------------------------ records */

/* What the payloads hold, which says what the records hold. */
typedef struct cs_group_layout {
	const cs_ingest_map *m; /* action mode, time format, kept fields */
	int seq_user;           /* the user is in the payload */
	int ev_session;         /* the session is in the payload */
	const char *keep_name[CS_INGEST_MAX_KEEP]; /* the kept fields' names */
} cs_group_layout;

typedef struct cs_grouper {
	const cs_ingest_opts *o;
	cs_ingest_stats *st;
	cs_schema *schema;
	cs_writer *w; /* set before the groups come */
	cs_record rec;
	int f_user, f_session, f_part, f_item, f_action, f_time, f_evsession;
	int f_keep[CS_INGEST_MAX_KEEP];
	int seq_user, ev_session, has_action, has_time;
	const cs_ingest_map *m;
	int have_second;
	int last_action;
	double last_progress;
} cs_grouper;

/* Set up g and the output schema of layout l. 0 or -1. */
int cs_grouper_init(cs_grouper *g, const cs_ingest_opts *o, const cs_group_layout *l,
		    cs_ingest_stats *st, cs_error *err);
void cs_grouper_free(cs_grouper *g);
/* A cs_sort_group_fn (ctx a cs_grouper): the group's records to g->w. */
int cs_grouper_put(void *g, const char *key, size_t klen, const cs_sort_row *rows,
		   size_t n, size_t avail, cs_error *err);
/* Call the progress callback of the options (at most 5 times a second
 * unless forced). */
void cs_grouper_progress(cs_grouper *g, int force);

#endif
