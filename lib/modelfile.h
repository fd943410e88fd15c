/*
 * modelfile.h - model and checkpoint files: named float32 tensors with
 * text metadata (every hyperparameter, the vocabulary fingerprint), a
 * version and a checksum, written atomically. Layout in cs-formats(5):
 *
 *   "CSMF" u32 version u32 nmeta { u16 klen key u32 vlen val }
 *   u32 ntensors { u16 nlen name u64 count f32[count] }
 *   u64 checksum (of every byte before it: XXH64 with seed 0; in version 1
 *                 files, which are still read, 64-bit FNV-1a)
 */
#ifndef CS_MODELFILE_H
#define CS_MODELFILE_H

#include "cs.h"

/* 2: the checksum is XXH64 (1: FNV-1a, read still) */
#define CS_MODELFILE_VERSION 2
#define CS_MODELFILE_MAX_TENSORS 4096

typedef struct cs_tensor {
	char *name;
	float *data;      /* NULL for a tensor of cs_modelfile_open: see src */
	uint64_t n;
	const void *src;  /* read: the values in the file's image, little-endian
			   * f32, not aligned; NULL for a tensor added */
} cs_tensor;

typedef struct cs_modelfile {
	cs_schema *meta;   /* only its metadata is used */
	size_t ntensors;
	cs_tensor *t;
	int own;           /* tensors' data belongs to the file (read) */
	void *image;       /* read: the file's bytes, in memory */
	size_t image_len;
} cs_modelfile;

cs_modelfile *cs_modelfile_new(void);
void cs_modelfile_free(cs_modelfile *mf);
/* Add a tensor referring to data (not copied; must outlive the write). */
int cs_modelfile_add(cs_modelfile *mf, const char *name, float *data, uint64_t n,
		     cs_error *err);
int cs_modelfile_set(cs_modelfile *mf, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
const char *cs_modelfile_get(const cs_modelfile *mf, const char *key);
/* Tensor by name, NULL if absent. */
const cs_tensor *cs_modelfile_find(const cs_modelfile *mf, const char *name);
/* Write atomically to path. */
int cs_modelfile_write(const cs_modelfile *mf, const char *path, cs_error *err);
/* Read and check a whole file (magic, version, sizes, checksum). */
cs_modelfile *cs_modelfile_read(const char *path, cs_error *err);
/*
 * The same checks, the tensors' values left in the file's image (the
 * file read whole into memory): their data is NULL, cs_tensor_get copies
 * them out. For a program that copies the tensors once (into a model),
 * this saves a copy of the whole file; the image lives until
 * cs_modelfile_free.
 */
cs_modelfile *cs_modelfile_open(const char *path, cs_error *err);
/* Copy the values of t into dst (t->n floats). */
void cs_tensor_get(const cs_tensor *t, float *dst);
/* Index of the first value of t that is not finite (NaN or infinite), or t->n. */
uint64_t cs_tensor_first_nonfinite(const cs_tensor *t);
/* Value i of t. */
float cs_tensor_at(const cs_tensor *t, uint64_t i);
/* The checksum a file of this version holds for its bytes p[0, n). */
uint64_t cs_modelfile_checksum(uint32_t version, const void *p, size_t n);

#endif
