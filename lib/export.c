/* export.c - model files as safetensors. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "bertfile.h"
#include "export.h"

/* Append s as a JSON string to the memstream fp. */
static void json_str(FILE *fp, const char *s)
{
	putc('"', fp);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(fp, "\\%c", c);
		else if (c < 0x20)
			fprintf(fp, "\\u%04x", c);
		else
			putc(c, fp);
	}
	putc('"', fp);
}

/* A checkpoint's tensor of the training state: the moments, the best model. */
static int training_state(const char *name)
{
	return !strncmp(name, "adam.", 5) || !strcmp(name, "train.best_params");
}

/* The shape of tensor t into d; its rank. */
static int shape_of(const cs_modelfile *mf, const cs_bert_config *cfg, const cs_tensor *t,
		    uint64_t d[8])
{
	char key[300];
	snprintf(key, sizeof key, "shape.%s", t->name);
	const char *s = cs_modelfile_get(mf, key);
	int rank = 0;
	uint64_t n = 1;
	while (s && *s && rank < 8) {
		char *end;
		d[rank] = strtoull(s, &end, 10);
		n *= d[rank++];
		if (end == s || (*end && *end != ','))
			break;
		s = *end ? end + 1 : end;
	}
	if (s && !*s && rank && n == t->n)
		return rank;
	for (int i = 0; cfg && i < CS_BERT_NPARAMS; i++) {
		if (strcmp(cs_bert_param_name(i), t->name))
			continue;
		rank = cs_bert_param_shape(cfg, i, d);
		n = 1;
		for (int k = 0; k < rank; k++)
			n *= d[k];
		if (n == t->n)
			return rank;
	}
	d[0] = t->n;
	return 1;
}

int cs_export_safetensors(const cs_modelfile *mf, const cs_bert_config *cfg, int with_optim,
			  FILE *fp, const char *name, cs_error *err)
{
	char *hdr = NULL;
	size_t hlen = 0;
	FILE *h = open_memstream(&hdr, &hlen);
	if (!h)
		return cs_err(err, CS_ERR_NOMEM, name, 0, "out of memory");
	fputs("{\"__metadata__\":{", h);
	for (size_t i = 0; i < mf->meta->nmeta; i++) {
		if (i)
			putc(',', h);
		json_str(h, mf->meta->key[i]);
		putc(':', h);
		json_str(h, mf->meta->val[i]);
	}
	putc('}', h);
	uint64_t off = 0;
	for (size_t i = 0; i < mf->ntensors; i++) {
		const cs_tensor *t = &mf->t[i];
		if (!with_optim && training_state(t->name))
			continue;
		uint64_t d[8];
		int rank = shape_of(mf, cfg, t, d);
		putc(',', h);
		json_str(h, t->name);
		fputs(":{\"dtype\":\"F32\",\"shape\":[", h);
		for (int k = 0; k < rank; k++)
			fprintf(h, "%s%" PRIu64, k ? "," : "", d[k]);
		fprintf(h, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", off, off + 4 * t->n);
		off += 4 * t->n;
	}
	putc('}', h);
	if (fclose(h) != 0) {
		free(hdr);
		return cs_err(err, CS_ERR_NOMEM, name, 0, "out of memory");
	}
	size_t pad = (8 - hlen % 8) % 8; /* spaces, so that the data start 8-aligned */
	uint64_t n = hlen + pad;
	unsigned char len[8];
	for (int k = 0; k < 8; k++)
		len[k] = (unsigned char)(n >> (8 * k));
	fwrite(len, 1, 8, fp);
	fwrite(hdr, 1, hlen, fp);
	for (size_t k = 0; k < pad; k++)
		putc(' ', fp);
	free(hdr);
	/* the data: float32, little-endian like the host (cs builds only there) */
	for (size_t i = 0; i < mf->ntensors; i++) {
		const cs_tensor *t = &mf->t[i];
		if (!with_optim && training_state(t->name))
			continue;
		if (fwrite(t->data, sizeof(float), t->n, fp) != t->n)
			break;
	}
	if (fflush(fp) != 0 || ferror(fp))
		return cs_err(err, CS_ERR_IO, name, 0, "write error: %s", strerror(errno));
	return 0;
}
