/* modelfile.c - named tensors with metadata, checksummed, written atomically. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cursor.h"
#include "modelfile.h"

#define MAGIC "CSMF"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "cs model files are little-endian; this host needs byte swapping added"
#endif

cs_modelfile *cs_modelfile_new(void)
{
	cs_modelfile *mf = calloc(1, sizeof *mf);
	if (mf && !(mf->meta = cs_schema_new())) {
		free(mf);
		return NULL;
	}
	return mf;
}

void cs_modelfile_free(cs_modelfile *mf)
{
	if (!mf)
		return;
	for (size_t i = 0; i < mf->ntensors; i++) {
		free(mf->t[i].name);
		if (mf->own)
			free(mf->t[i].data);
	}
	free(mf->t);
	cs_schema_free(mf->meta);
	free(mf->image);
	free(mf);
}

void cs_tensor_get(const cs_tensor *t, float *dst)
{
	if (t->n)
		memcpy(dst, t->data ? (const void *)t->data : t->src, t->n * sizeof(float));
}

float cs_tensor_at(const cs_tensor *t, uint64_t i)
{
	float v;
	memcpy(&v, t->data ? (const void *)(t->data + i)
			   : (const void *)((const unsigned char *)t->src + i * sizeof(float)),
	       sizeof v);
	return v;
}

/* Blocks of 16 floats at p (any alignment) up to nblocks: the first that
 * holds a value with every exponent bit set (NaN or infinity), or nblocks.
 * Bit tests on whole blocks: the compiler makes vector code of the inner
 * loop, where isfinite() one value at a time took 2 ms for a 15 MB model. */
static size_t first_bad_block(const unsigned char *p, size_t nblocks)
{
	for (size_t k = 0; k < nblocks; k++, p += 64) {
		uint32_t v[16], bad = 0;
		memcpy(v, p, 64);
		for (int i = 0; i < 16; i++)
			bad |= (v[i] & 0x7f800000u) == 0x7f800000u;
		if (bad)
			return k;
	}
	return nblocks;
}

uint64_t cs_tensor_first_nonfinite(const cs_tensor *t)
{
	const unsigned char *p = t->data ? (const unsigned char *)t->data : t->src;
	uint64_t i = (uint64_t)first_bad_block(p, (size_t)(t->n / 16)) * 16;
	for (; i < t->n; i++)
		if (!isfinite(cs_tensor_at(t, i)))
			return i;
	return t->n;
}

int cs_modelfile_add(cs_modelfile *mf, const char *name, float *data, uint64_t n,
		     cs_error *err)
{
	if (cs_modelfile_find(mf, name))
		return cs_err(err, CS_ERR_USAGE, NULL, 0, "duplicate tensor '%s'", name);
	cs_tensor *t = realloc(mf->t, (mf->ntensors + 1) * sizeof *t);
	if (!t)
		return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	mf->t = t;
	t += mf->ntensors;
	if (!(t->name = strdup(name)))
		return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	t->data = data;
	t->n = n;
	t->src = NULL;
	mf->ntensors++;
	return 0;
}

int cs_modelfile_set(cs_modelfile *mf, const char *key, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return cs_schema_set_meta(mf->meta, key, buf, NULL);
}

const char *cs_modelfile_get(const cs_modelfile *mf, const char *key)
{
	return cs_schema_get_meta(mf->meta, key);
}

const cs_tensor *cs_modelfile_find(const cs_modelfile *mf, const char *name)
{
	for (size_t i = 0; i < mf->ntensors; i++)
		if (strcmp(mf->t[i].name, name) == 0)
			return &mf->t[i];
	return NULL;
}

/*
 * The checksum of a file of the given version over its bytes p[0, n):
 * XXH64 from version 2 on, FNV-1a in version 1 (a byte at a time, it took
 * longer than the rest of a 15 MB model's loading).
 */
uint64_t cs_modelfile_checksum(uint32_t version, const void *p, size_t n)
{
	return version >= 2 ? cs_xxh64(p, n, 0) : cs_hash64(p, n, CS_HASH64_INIT);
}

/* Writes through a running checksum. */
typedef struct hfile {
	FILE *fp;
	cs_xxh64_state h;
	int bad;
} hfile;

static void hput(hfile *f, const void *p, size_t n)
{
	cs_xxh64_update(&f->h, p, n);
	if (fwrite(p, 1, n, f->fp) != n)
		f->bad = 1;
}

static void hput_u16(hfile *f, uint16_t v) { hput(f, &v, 2); }
static void hput_u32(hfile *f, uint32_t v) { hput(f, &v, 4); }
static void hput_u64(hfile *f, uint64_t v) { hput(f, &v, 8); }

int cs_modelfile_write(const cs_modelfile *mf, const char *path, cs_error *err)
{
	cs_ofile of;
	if (cs_ofile_open(&of, path, err) < 0)
		return -1;
	hfile f = { .fp = of.fp };
	cs_xxh64_init(&f.h, 0);
	hput(&f, MAGIC, 4);
	hput_u32(&f, CS_MODELFILE_VERSION);
	const cs_schema *m = mf->meta;
	hput_u32(&f, (uint32_t)m->nmeta);
	for (size_t i = 0; i < m->nmeta; i++) {
		size_t kl = strlen(m->key[i]), vl = strlen(m->val[i]);
		hput_u16(&f, (uint16_t)kl);
		hput(&f, m->key[i], kl);
		hput_u32(&f, (uint32_t)vl);
		hput(&f, m->val[i], vl);
	}
	hput_u32(&f, (uint32_t)mf->ntensors);
	for (size_t i = 0; i < mf->ntensors; i++) {
		size_t nl = strlen(mf->t[i].name);
		hput_u16(&f, (uint16_t)nl);
		hput(&f, mf->t[i].name, nl);
		hput_u64(&f, mf->t[i].n);
		hput(&f, mf->t[i].data, mf->t[i].n * sizeof(float));
	}
	hput_u64(&f, cs_xxh64_digest(&f.h));
	if (f.bad) {
		int e = errno;
		cs_ofile_abort(&of);
		return cs_err(err, CS_ERR_IO, path, 0, "cannot write: %s", strerror(e ? e : EIO));
	}
	return cs_ofile_commit(&of, err);
}

/*
 * The whole file at path into memory, read into a buffer on huge pages.
 * Not mapped: the first pass over a mapping of the page cache (the
 * checksum) took 9-17 ms for a 15 MB model on a virtual machine, reading
 * it into fresh huge pages 4 ms and the pass then 1 ms.
 */
static int load_image(cs_modelfile *mf, const char *path, cs_error *err)
{
	/* O_NONBLOCK: a FIFO with no writer must be refused, not waited for
	 * (it changes nothing for a regular file) */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return cs_err(err, CS_ERR_IO, path, 0, "cannot open: %s", strerror(errno));
	struct stat st;
	int rc = -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		cs_err(err, CS_ERR_IO, path, 0, "not a regular file (a model file is read whole)");
		goto out;
	}
	size_t size = (size_t)st.st_size;
	if (size < 24) {
		cs_err(err, CS_ERR_FORMAT, path, 0, "not a cs model file (too short)");
		goto out;
	}
	/* the magic and version before the rest is mapped (a CSV given as -m) */
	unsigned char head[8];
	if (pread(fd, head, 8, 0) != 8) {
		cs_err(err, CS_ERR_IO, path, 0, "read error: %s", strerror(errno));
		goto out;
	}
	if (memcmp(head, MAGIC, 4) != 0) {
		cs_err(err, CS_ERR_FORMAT, path, 0, "not a cs model file (bad magic)");
		goto out;
	}
	uint32_t version;
	memcpy(&version, head + 4, 4);
	if (version > CS_MODELFILE_VERSION) {
		cs_err(err, CS_ERR_VERSION, path, 0,
		       "model file version %u is newer than this program reads (%d): upgrade cs",
		       version, CS_MODELFILE_VERSION);
		goto out;
	}
	if (!(mf->image = cs_malloc_large(size))) {
		cs_err(err, CS_ERR_NOMEM, path, 0, "out of memory (%zu bytes)", size);
		goto out;
	}
	mf->image_len = size;
	for (size_t got = 0; got < size;) {
		ssize_t n = pread(fd, (char *)mf->image + got, size - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			cs_err(err, CS_ERR_IO, path, 0, "read error: %s",
			       n < 0 ? strerror(errno) : "file shrank");
			goto out;
		}
		got += (size_t)n;
	}
	rc = 0;
out:
	close(fd);
	return rc;
}

cs_modelfile *cs_modelfile_open(const char *path, cs_error *err)
{
	cs_modelfile *mf = cs_modelfile_new();
	if (!mf) {
		cs_err(err, CS_ERR_NOMEM, path, 0, "out of memory");
		return NULL;
	}
	if (load_image(mf, path, err) < 0)
		goto fail;
	const unsigned char *buf = mf->image; /* magic and version checked */
	size_t size = mf->image_len;
	uint64_t sum;
	uint32_t version;
	memcpy(&sum, buf + size - 8, 8);
	memcpy(&version, buf + 4, 4);
	if (cs_modelfile_checksum(version, buf, size - 8) != sum) {
		cs_err(err, CS_ERR_FORMAT, path, 0, "corrupt model file (checksum mismatch)");
		goto fail;
	}
	cs_cursor r = { buf + 8, buf + size - 8, 0 };
	uint32_t nm = cs_take_u32(&r);
	for (uint32_t i = 0; i < nm && !r.bad; i++) {
		char *k = cs_take_str(&r, cs_take_u16(&r));
		uint32_t vl = cs_take_u32(&r);
		char *v = vl <= CS_MAX_META_VALUE ? cs_take_str(&r, vl) : NULL;
		int bad = !k || !v || cs_schema_set_meta(mf->meta, k, v, NULL) < 0;
		free(k);
		free(v);
		if (bad)
			r.bad = 1;
	}
	uint32_t nt = cs_take_u32(&r);
	if (nt > CS_MODELFILE_MAX_TENSORS)
		r.bad = 1;
	for (uint32_t i = 0; i < nt && !r.bad; i++) {
		char *name = cs_take_str(&r, cs_take_u16(&r));
		uint64_t n = cs_take_u64(&r);
		if (!name || r.bad || n > (uint64_t)(r.end - r.p) / sizeof(float) ||
		    cs_modelfile_add(mf, name, NULL, n, NULL) < 0) {
			free(name);
			r.bad = 1;
			break;
		}
		free(name);
		mf->t[mf->ntensors - 1].src = r.p;
		r.p += n * sizeof(float);
	}
	if (r.bad || r.p != r.end) {
		cs_err(err, CS_ERR_FORMAT, path, 0, "corrupt model file (bad layout)");
		goto fail;
	}
	return mf;
fail:
	cs_modelfile_free(mf);
	return NULL;
}

cs_modelfile *cs_modelfile_read(const char *path, cs_error *err)
{
	cs_modelfile *mf = cs_modelfile_open(path, err);
	if (!mf)
		return NULL;
	mf->own = 1;
	for (size_t i = 0; i < mf->ntensors; i++) {
		cs_tensor *t = &mf->t[i];
		float *d = malloc(t->n ? t->n * sizeof(float) : 1);
		if (!d) {
			cs_err(err, CS_ERR_NOMEM, path, 0, "out of memory");
			cs_modelfile_free(mf);
			return NULL;
		}
		cs_tensor_get(t, d); /* from src, while data is still NULL */
		t->data = d;
		t->src = NULL;
	}
	/* the values are copied: the image can go */
	free(mf->image);
	mf->image = NULL;
	return mf;
}
