/*
 * buf.h - a growable byte buffer over cs_grow, for the library's own use
 * (not installed).
 */
#ifndef CS_BUF_H
#define CS_BUF_H

#include <stdint.h>
#include "cs.h"

typedef struct cs_buf {
	uint8_t *p;
	size_t n, cap;
} cs_buf;

/* Room for extra more bytes at p + n (at least 4 KiB in all). 0 or -1. */
static inline int cs_buf_reserve(cs_buf *b, size_t extra)
{
	size_t need = b->n + extra;
	if (need <= b->cap)
		return 0;
	return cs_grow((void **)&b->p, &b->cap, need < 4096 ? 4096 : need, 1);
}

#endif
