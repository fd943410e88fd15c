/* modelfile.c - named tensors with metadata, checksummed, written atomically. */
#include <errno.h>
#include <fcntl.h>
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
	free(mf);
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

/* Writes through a running checksum. */
typedef struct hfile {
	FILE *fp;
	uint64_t h;
	int bad;
} hfile;

static void hput(hfile *f, const void *p, size_t n)
{
	f->h = cs_hash64(p, n, f->h);
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
	hfile f = { of.fp, CS_HASH64_INIT, 0 };
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
	uint64_t sum = f.h;
	hput_u64(&f, sum);
	if (f.bad) {
		int e = errno;
		cs_ofile_abort(&of);
		return cs_err(err, CS_ERR_IO, path, 0, "cannot write: %s", strerror(e ? e : EIO));
	}
	return cs_ofile_commit(&of, err);
}

cs_modelfile *cs_modelfile_read(const char *path, cs_error *err)
{
	/* O_NONBLOCK: a FIFO with no writer must be refused, not waited for
	 * (it changes nothing for a regular file) */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		cs_err(err, CS_ERR_IO, path, 0, "cannot open: %s", strerror(errno));
		return NULL;
	}
	struct stat st;
	unsigned char *buf = NULL;
	cs_modelfile *mf = NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		cs_err(err, CS_ERR_IO, path, 0, "not a regular file (a model file is read whole)");
		return NULL;
	}
	FILE *fp = fdopen(fd, "rb");
	if (!fp) {
		close(fd);
		cs_err(err, CS_ERR_NOMEM, path, 0, "out of memory");
		return NULL;
	}
	size_t size = (size_t)st.st_size;
	if (size < 24) {
		cs_err(err, CS_ERR_FORMAT, path, 0, "not a cs model file (too short)");
		goto fail;
	}
	/* the magic and version before the rest is read (a CSV given as -m) */
	unsigned char head[8];
	if (fread(head, 1, 8, fp) != 8) {
		cs_err(err, CS_ERR_IO, path, 0, "read error: %s", strerror(errno));
		goto fail;
	}
	if (memcmp(head, MAGIC, 4) != 0) {
		cs_err(err, CS_ERR_FORMAT, path, 0, "not a cs model file (bad magic)");
		goto fail;
	}
	uint32_t version;
	memcpy(&version, head + 4, 4);
	if (version > CS_MODELFILE_VERSION) {
		cs_err(err, CS_ERR_VERSION, path, 0,
		       "model file version %u is newer than this program reads (%d): upgrade cs",
		       version, CS_MODELFILE_VERSION);
		goto fail;
	}
	if (!(buf = malloc(size))) {
		cs_err(err, CS_ERR_NOMEM, path, 0, "out of memory (%zu bytes)", size);
		goto fail;
	}
	memcpy(buf, head, 8);
	if (fread(buf + 8, 1, size - 8, fp) != size - 8) {
		cs_err(err, CS_ERR_IO, path, 0, "read error: %s", strerror(errno));
		goto fail;
	}
	uint64_t sum;
	memcpy(&sum, buf + size - 8, 8);
	if (cs_hash64(buf, size - 8, CS_HASH64_INIT) != sum) {
		cs_err(err, CS_ERR_FORMAT, path, 0, "corrupt model file (checksum mismatch)");
		goto fail;
	}
	if (!(mf = cs_modelfile_new())) {
		cs_err(err, CS_ERR_NOMEM, path, 0, "out of memory");
		goto fail;
	}
	mf->own = 1;
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
		float *d = NULL;
		if (!name || r.bad || n > (uint64_t)(r.end - r.p) / sizeof(float) ||
		    !(d = malloc(n ? n * sizeof(float) : 1)) ||
		    cs_modelfile_add(mf, name, d, n, NULL) < 0) {
			free(name);
			free(d);
			r.bad = 1;
			break;
		}
		free(name);
		cs_take(&r, d, n * sizeof(float));
	}
	if (r.bad || r.p != r.end) {
		cs_err(err, CS_ERR_FORMAT, path, 0, "corrupt model file (bad layout)");
		goto fail;
	}
	free(buf);
	fclose(fp);
	return mf;
fail:
	cs_modelfile_free(mf);
	free(buf);
	fclose(fp);
	return NULL;
}
