/* batch.c - packed batches from datasets. */
#include <stdlib.h>
#include <string.h>
#include "batch.h"

int cs_batch_appends(const cs_bert_config *c, int kind)
{
	return (kind == CS_DATA_EVAL && !c->causal) ||
	       (kind == CS_DATA_SESSION && c->pool == CS_POOL_CLS);
}

int cs_batcher_init(cs_batcher *bt, const cs_bert_config *c, int kind, size_t cap,
		    cs_error *err)
{
	memset(bt, 0, sizeof *bt);
	bt->cap = cap;
	bt->P = c->P;
	bt->NF = c->NF;
	bt->kind = kind;
	bt->mean = kind == CS_DATA_SESSION && c->pool == CS_POOL_MEAN;
	bt->append = cs_batch_appends(c, kind);
	size_t T = cap * c->P;
	bt->off = malloc((cap + 1) * sizeof *bt->off);
	bt->mpos = malloc(T * sizeof *bt->mpos);
	bt->tok = malloc(T * sizeof *bt->tok);
	bt->pos = malloc(T * sizeof *bt->pos);
	bt->mtgt = malloc(T * sizeof *bt->mtgt);
	bt->ftgt = c->pred ? malloc(T * sizeof *bt->ftgt) : NULL;
	bt->ftok = c->NF ? malloc(T * c->NF * sizeof *bt->ftok) : NULL;
	if (!bt->off || !bt->mpos || !bt->tok || !bt->pos || !bt->mtgt ||
	    (c->NF && !bt->ftok) || (c->pred && !bt->ftgt)) {
		cs_batcher_free(bt);
		return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory for batches");
	}
	return 0;
}

void cs_batcher_free(cs_batcher *bt)
{
	free(bt->off);
	free(bt->mpos);
	free(bt->tok);
	free(bt->pos);
	free(bt->mtgt);
	free(bt->ftok);
	free(bt->ftgt);
	memset(bt, 0, sizeof *bt);
}

cs_batch *cs_batcher_fill(cs_batcher *bt, const cs_dataset *d, const size_t *seq,
				size_t first, size_t B)
{
	size_t P = bt->P, NF = bt->NF, N = 0, M = 0;
	int append = bt->append;
	size_t room = append ? P - 1 : P;
	bt->off[0] = 0;
	for (size_t i = 0; i < B; i++) {
		size_t s = seq ? seq[i] : first + i, len = cs_dataset_len(d, s), from = 0;
		if (len > room) {
			from = len - room;
			len = room;
		}
		size_t t0 = d->off[s] + from;
		memcpy(bt->tok + N, d->item + t0, len * sizeof *bt->tok);
		if (NF)
			memcpy(bt->ftok + N * NF, d->ftok + t0 * NF, len * NF * sizeof *bt->ftok);
		for (size_t j = 0; j < len; j++)
			bt->pos[N + j] = (uint32_t)j;
		if (bt->kind == CS_DATA_CLOZE) {
			for (size_t j = 0; j < len; j++)
				if (d->mtgt[t0 + j]) {
					if (d->fmtgt && bt->ftgt)
						bt->ftgt[M] = d->fmtgt[t0 + j];
					bt->mpos[M] = N + j;
					bt->mtgt[M++] = d->mtgt[t0 + j];
				}
		} else if (bt->kind == CS_DATA_EVENT) {
			for (size_t j = 0; j < len; j++)
				if (d->label[t0 + j] != CS_NO_LABEL) {
					bt->mpos[M] = N + j;
					bt->mtgt[M++] = d->label[t0 + j];
				}
		}
		if (append) {
			bt->tok[N + len] = CS_ITEM_MASK;
			bt->pos[N + len] = (uint32_t)len;
			for (size_t f = 0; f < NF; f++)
				bt->ftok[(N + len) * NF + f] = CS_ITEM_MASK;
			len++;
		}
		if (bt->kind == CS_DATA_EVAL || bt->kind == CS_DATA_SESSION) {
			bt->mpos[M] = N + len - 1;
			bt->mtgt[M++] = bt->kind == CS_DATA_SESSION ? d->label[s] :
					d->target ? d->target[s] : 0;
		}
		N += len;
		bt->off[i + 1] = N;
	}
	cs_batch *b = &bt->b;
	memset(b, 0, sizeof *b);
	b->B = B;
	b->off = bt->off;
	b->tok = bt->tok;
	b->pos = bt->pos;
	b->ftok = NF ? bt->ftok : NULL;
	b->M = M;
	b->mpos = bt->mpos;
	/* evaluation targets are checked by the caller, not the model */
	b->mtgt = bt->kind == CS_DATA_EVAL ? NULL : bt->mtgt;
	b->ftgt = bt->kind == CS_DATA_CLOZE && d->fmtgt ? bt->ftgt : NULL;
	return b;
}

int cs_dataset_check(const cs_dataset *d, const cs_bert_config *c, cs_error *err)
{
	size_t nt = d->off[d->n];
	if (d->nf != c->NF)
		return cs_err(err, CS_ERR_USAGE, NULL, 0, "data has %zu extra inputs, the model %zu",
			      d->nf, c->NF);
	for (size_t i = 0; i < nt; i++) {
		uint32_t t = d->mtgt && d->mtgt[i] > d->item[i] ? d->mtgt[i] : d->item[i];
		if (t >= c->V)
			return cs_err(err, CS_ERR_FORMAT, NULL, 0,
				      "item id %u is beyond the model's %zu items", t, c->V);
	}
	if (d->target)
		for (size_t i = 0; i < d->n; i++)
			if (d->target[i] >= c->V)
				return cs_err(err, CS_ERR_FORMAT, NULL, 0,
					      "target item id %u of sequence %zu is beyond the "
					      "model's %zu items", d->target[i], i + 1, c->V);
	for (size_t i = 0; i < nt * c->NF; i++)
		if (d->ftok[i] >= c->VF[i % c->NF])
			return cs_err(err, CS_ERR_FORMAT, NULL, 0,
				      "'%s' id %u is beyond the model's %zu", c->fname[i % c->NF],
				      d->ftok[i], c->VF[i % c->NF]);
	return 0;
}

int cs_data_kind(const cs_bert_config *c, int training)
{
	return c->head == CS_HEAD_SESSION ? CS_DATA_SESSION :
	       c->head == CS_HEAD_EVENT ? CS_DATA_EVENT :
	       training ? CS_DATA_CLOZE : CS_DATA_EVAL;
}

cs_dataset *cs_dataset_for_model(const char *path, const cs_bert_config *c,
				 uint64_t item_vocab, int training, const char *key,
				 cs_error *err)
{
	const char *names[CS_BERT_MAXF];
	for (size_t i = 0; i < c->NF; i++)
		names[i] = c->fname[i];
	cs_dataset_inputs in = { c->NF, names, c->fvocab, (size_t)c->pred, key, c->V, c->VF };
	int kind = cs_data_kind(c, training);
	size_t keep = cs_batch_appends(c, kind) ? c->P - 1 : c->P;
	return cs_dataset_read(path, kind, keep, item_vocab, &in, err);
}

/* Keep the k largest values pushed in the min-heap h (*n of them so far). */
static void top_push(double *h, size_t *n, size_t k, double v)
{
	size_t i;
	if (*n < k) {
		for (i = (*n)++; i > 0 && h[(i - 1) / 2] > v; i = (i - 1) / 2)
			h[i] = h[(i - 1) / 2];
		h[i] = v;
		return;
	}
	if (v <= h[0])
		return;
	for (i = 0;;) {
		size_t c = 2 * i + 1;
		if (c >= k)
			break;
		if (c + 1 < k && h[c + 1] < h[c])
			c++;
		if (h[c] >= v)
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = v;
}

int cs_dataset_mem_check(const cs_dataset *d, const cs_bert_config *c, int training,
			 size_t B, double limit, const char *path, cs_error *err)
{
	if (!(limit > 0) || d->n == 0 || B == 0)
		return 0;
	int kind = cs_data_kind(c, training);
	int append = cs_batch_appends(c, kind);
	size_t room = append ? c->P - 1 : c->P, T = 0;
	if (B > d->n)
		B = d->n;
	double *h = malloc(3 * B * sizeof *h);
	if (!h)
		return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	size_t hn[3] = { 0, 0, 0 };
	for (size_t s = 0; s < d->n; s++) {
		/* the sequence as cs_batcher_fill packs it */
		size_t len = cs_dataset_len(d, s), from = len > room ? len - room : 0, m = 0;
		len -= from;
		size_t t0 = d->off[s] + from;
		if (kind == CS_DATA_CLOZE && d->mtgt)
			for (size_t j = 0; j < len; j++)
				m += d->mtgt[t0 + j] != 0;
		else if (kind == CS_DATA_EVENT && d->label)
			for (size_t j = 0; j < len; j++)
				m += d->label[t0 + j] != CS_NO_LABEL;
		else
			m = 1;
		len += append;
		if (len > T)
			T = len;
		top_push(h, &hn[0], B, (double)len);
		top_push(h + B, &hn[1], B, (double)c->NH * (double)len * (double)len);
		top_push(h + 2 * B, &hn[2], B, (double)m);
	}
	double sum[3] = { 0, 0, 0 };
	for (size_t k = 0; k < 3; k++)
		for (size_t i = 0; i < hn[k]; i++)
			sum[k] += h[k * B + i];
	free(h);
	return cs_bert_mem_check(c, B, T, sum[0], sum[1], sum[2], training, limit, path, err);
}
