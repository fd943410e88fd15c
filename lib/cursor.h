/*
 * cursor.h - a bounds-checked reader over bytes in memory, for the file
 * formats (private to lib/). A read past the end sets bad and yields
 * zeros, so a parser checks once at the end instead of at every field.
 */
#ifndef CS_CURSOR_H
#define CS_CURSOR_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct cs_cursor {
	const unsigned char *p, *end;
	int bad;
} cs_cursor;

static inline int cs_take(cs_cursor *c, void *dst, size_t n)
{
	if ((size_t)(c->end - c->p) < n) {
		c->bad = 1;
		memset(dst, 0, n);
		return -1;
	}
	memcpy(dst, c->p, n);
	c->p += n;
	return 0;
}

static inline uint8_t cs_take_u8(cs_cursor *c) { uint8_t v; cs_take(c, &v, 1); return v; }
static inline uint16_t cs_take_u16(cs_cursor *c) { uint16_t v; cs_take(c, &v, 2); return v; }
static inline uint32_t cs_take_u32(cs_cursor *c) { uint32_t v; cs_take(c, &v, 4); return v; }
static inline uint64_t cs_take_u64(cs_cursor *c) { uint64_t v; cs_take(c, &v, 8); return v; }

/* A NUL-terminated copy of the next n bytes; NULL (bad set) if they run
 * past the end or hold a NUL, or when out of memory. */
static inline char *cs_take_str(cs_cursor *c, size_t n)
{
	if ((size_t)(c->end - c->p) < n || memchr(c->p, 0, n)) {
		c->bad = 1;
		return NULL;
	}
	char *s = malloc(n + 1);
	if (s) {
		memcpy(s, c->p, n);
		s[n] = 0;
	}
	c->p += n;
	return s;
}

#endif
