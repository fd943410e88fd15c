/*
 * vocab.h - vocabularies of string fields: counting, k-core filtering,
 * the text vocabulary file, fast lookup, and encoding string fields of a
 * sequence stream to ids (and back).
 *
 * A vocabulary holds one section per field. Ids 0, 1 and 2 are reserved
 * ([PAD], [MASK], [UNK]); real tokens start at 3, by count descending, ties
 * by token bytes. The fingerprint of a section is a 64-bit hash over the
 * field name and the tokens in id order; an encoded stream carries it in
 * the schema of each id field.
 */
#ifndef CS_VOCAB_H
#define CS_VOCAB_H

#include "cs.h"

#define CS_VOCAB_PAD 0u
#define CS_VOCAB_MASK 1u
#define CS_VOCAB_UNK 2u
#define CS_VOCAB_RESERVED 3u
#define CS_VOCAB_FILE_VERSION 1

typedef struct cs_vocab cs_vocab;

void cs_vocab_free(cs_vocab *v);
/* Read and check a vocabulary file ("file:line: reason" errors). */
cs_vocab *cs_vocab_read(const char *path, cs_error *err);
/* Parse from an open FILE; name is used in messages. */
cs_vocab *cs_vocab_read_file(FILE *fp, const char *name, cs_error *err);
/* Write the text form to fp (not closed), or atomically to path ("-": stdout). */
int cs_vocab_write_file(const cs_vocab *v, FILE *fp, const char *name,
			cs_error *err);
int cs_vocab_write(const cs_vocab *v, const char *path, cs_error *err);

/* The file the vocabulary was read from ("" if built). */
const char *cs_vocab_path(const cs_vocab *v);
size_t cs_vocab_nfields(const cs_vocab *v);
/* Section index of a field, or -1. */
int cs_vocab_find(const cs_vocab *v, const char *field);
const char *cs_vocab_field(const cs_vocab *v, size_t f);
/* Number of ids, the three reserved ones included. */
uint32_t cs_vocab_size(const cs_vocab *v, size_t f);
uint64_t cs_vocab_fingerprint(const cs_vocab *v, size_t f);
/* Token of an id (not NUL-terminated) and its count; NULL if out of range. */
const char *cs_vocab_token(const cs_vocab *v, size_t f, uint32_t id,
			   size_t *len);
uint64_t cs_vocab_count(const cs_vocab *v, size_t f, uint32_t id);
/* Id of a token, CS_VOCAB_UNK if it has none (reserved names have none). */
uint32_t cs_vocab_lookup(const cs_vocab *v, size_t f, const char *tok,
			 size_t len);
/* The fingerprint of field name over tokens tok[0..n) in id order. */
uint64_t cs_vocab_hash(const char *name, const char *const *tok,
		       const size_t *len, size_t n);
/* "0123456789abcdef" into buf (17 bytes). */
const char *cs_vocab_fpstr(uint64_t fp, char buf[17]);

/*
 * Check that id field `field` of a stream (schema s, named `stream` in
 * messages) was encoded with this vocabulary. Returns the section index,
 * or -1 with a message such as "'in.cseq' was encoded with another
 * vocabulary for 'item' (fingerprint X, vocabulary has Y): re-run
 * cs-vocab encode".
 */
int cs_vocab_check_field(const cs_vocab *v, const cs_schema *s,
			 const char *stream, const char *field, cs_error *err);

/* ------------------------------------------------------------ building */

typedef struct cs_vocab_opts {
	uint64_t min_count;     /* drop tokens seen fewer times (0 or 1: keep all) */
	uint64_t max_size;      /* keep at most this many real tokens, 0: no limit */
	uint64_t kcore;         /* k-core filter of sequences and items, 0: off */
	const char *item_field; /* the item field for the k-core ["item"] */
} cs_vocab_opts;

typedef struct cs_vocab_builder cs_vocab_builder;

/* Count the string fields fields[0..n) (each given once). */
cs_vocab_builder *cs_vocab_builder_new(const char *const *fields, size_t n,
				       const cs_vocab_opts *o, cs_error *err);
void cs_vocab_builder_free(cs_vocab_builder *b);
/* Find the fields in a stream's schema; call before the first add. */
int cs_vocab_builder_bind(cs_vocab_builder *b, const cs_schema *s,
			  const char *stream, cs_error *err);
int cs_vocab_builder_add(cs_vocab_builder *b, const cs_record *rec,
			 cs_error *err);

typedef struct cs_vocab_build_stats {
	uint64_t records, events;            /* read */
	uint64_t kept_records, kept_events;  /* in the k-core (all without one) */
	int kcore_rounds;                    /* passes to the fixed point */
} cs_vocab_build_stats;

/* Apply the k-core, min-count and max-size and make the vocabulary. */
cs_vocab *cs_vocab_builder_finish(cs_vocab_builder *b, cs_vocab_build_stats *st,
				  cs_error *err);

/* ------------------------------------------------------------ coding */

enum { CS_VOCAB_ENCODE = 0, CS_VOCAB_DECODE = 1 };

typedef struct cs_vocab_coder_opts {
	int drop_unknown;       /* encode: drop events whose item is unknown */
	const char *item_field; /* ["item"] */
	uint64_t min_len;       /* drop sequences with fewer events, 0: keep */
} cs_vocab_coder_opts;

typedef struct cs_vocab_stat {
	const char *field;
	uint64_t values;  /* values encoded or decoded */
	uint64_t unknown; /* of them unknown ([UNK] or dropped events) */
} cs_vocab_stat;

typedef struct cs_vocab_coder cs_vocab_coder;

/*
 * Encode (string fields with a section become id fields carrying its
 * fingerprint) or decode (id fields with a section, fingerprints checked,
 * become strings). Other fields pass through. v must outlive the coder.
 */
cs_vocab_coder *cs_vocab_coder_new(const cs_vocab *v, const cs_schema *in,
				   const char *stream, int direction,
				   const cs_vocab_coder_opts *o, cs_error *err);
void cs_vocab_coder_free(cs_vocab_coder *c);
const cs_schema *cs_vocab_coder_schema(const cs_vocab_coder *c);
/* Code one record into out: 1 done, 0 sequence dropped, -1 error. */
int cs_vocab_coder_run(cs_vocab_coder *c, const cs_record *in, cs_record *out,
		       cs_error *err);
/* Per-field counts; returns the number of coded fields. */
size_t cs_vocab_coder_stats(const cs_vocab_coder *c, const cs_vocab_stat **st);
uint64_t cs_vocab_coder_dropped_events(const cs_vocab_coder *c);
uint64_t cs_vocab_coder_dropped_records(const cs_vocab_coder *c);

#endif
