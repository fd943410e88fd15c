/*
 * extsort.h - rows grouped by key and ordered by time, in bounded memory
 * (not installed).
 *
 * A row is a payload of bytes with a group key and a time. Rows go into
 * chunks, which threads can fill side by side. Chunks handed over pile up
 * until they pass the memory budget; then a background thread ranks their
 * keys, sorts their rows into one run and spills it to an unlinked
 * temporary file. At the end every group comes out once, through a
 * callback: groups in key order (cs_sort_keycmp), the rows of a group by
 * time, ties in the order they were added. They come from the one run in
 * memory when nothing was spilled, else from a merge of the spilled runs,
 * whose groups go to the callback in a second thread while the merge reads
 * on. Both paths give the same groups.
 */
#ifndef CS_EXTSORT_H
#define CS_EXTSORT_H

#include <stdint.h>
#include "cs.h"

typedef struct cs_sort cs_sort;
typedef struct cs_sort_chunk cs_sort_chunk;

typedef struct cs_sort_row {
	int64_t t;
	const uint8_t *p; /* payload */
	uint32_t len;
} cs_sort_row;

/* One group, its key and its n rows by time; rows[0 .. avail) may be read
 * (to fetch ahead). Called from one thread at a time, in key order.
 * Returns 0, or -1 with err filled to stop. */
typedef int (*cs_sort_group_fn)(void *ctx, const char *key, size_t klen,
				const cs_sort_row *rows, size_t n, size_t avail,
				cs_error *err);

/* A sort holding up to limit bytes of chunks before it spills, to files
 * in tmpdir. NULL when out of memory. */
cs_sort *cs_sort_new(size_t limit, const char *tmpdir);
void cs_sort_free(cs_sort *s);

/* An empty chunk (its buffers from a spilled one when there is one). */
cs_sort_chunk *cs_sort_chunk_new(cs_sort *s);
void cs_sort_chunk_free(cs_sort_chunk *c);
/* Size an empty chunk for the rows of len bytes of text. 0 or -1. */
int cs_sort_chunk_reserve(cs_sort_chunk *c, size_t len);
/* Start a row of key at time t with room for need payload bytes: where
 * the payload goes, to be ended by cs_sort_row_end; NULL out of memory. */
uint8_t *cs_sort_row_begin(cs_sort_chunk *c, const char *key, size_t klen, int64_t t,
			   size_t need);
void cs_sort_row_end(cs_sort_chunk *c, uint8_t *end);

/* Hand a filled chunk over: s owns it from now on. 0 or -1. */
int cs_sort_add(cs_sort *s, cs_sort_chunk *c, cs_error *err);
/* When the chunks held pass the budget, spill them in the background
 * (while an earlier spill still runs, only past 1.5 times the budget).
 * 0 or -1 (a failed spill). */
int cs_sort_spill(cs_sort *s, cs_error *err);
/* Every group to fn, then the sort is spent. 0 or -1. */
int cs_sort_finish(cs_sort *s, cs_sort_group_fn fn, void *ctx, cs_error *err);
/* Runs spilled so far. */
uint64_t cs_sort_runs(const cs_sort *s);

/* The order of group keys: digit-only keys first in numeric order, then
 * the rest bytewise. */
int cs_sort_keycmp(const char *a, size_t na, const char *b, size_t nb);

#endif
