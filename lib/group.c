/*
 * group.c - groups of rows to sequence records (see group.h): called for
 * each group the external sort hands out, in key order, from one thread at
 * a time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "group.h"

int cs_grouper_init(cs_grouper *g, const cs_ingest_opts *o, const cs_group_layout *l,
		    cs_ingest_stats *st, cs_error *err)
{
	const cs_ingest_map *m = l->m;
	memset(g, 0, sizeof *g);
	g->o = o;
	g->st = st;
	g->last_action = -1;
	g->have_second = o->second != NULL;
	cs_schema *s = cs_schema_new();
	if (!s)
		return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
	g->schema = s;
	g->f_user = g->f_session = g->f_part = g->f_action = g->f_time = g->f_evsession = -1;
	g->seq_user = l->seq_user;
	g->ev_session = l->ev_session;
	g->has_action = m->action_mode != CS_ACTION_NONE;
	g->has_time = m->time_format != CS_TIME_NONE;
	g->m = m;
	if ((o->by == CS_BY_USER || g->seq_user) &&
	    (g->f_user = cs_schema_add(s, "user", CS_SEQ, CS_STRING, err)) < 0)
		return -1;
	if (o->by == CS_BY_SESSION &&
	    (g->f_session = cs_schema_add(s, "session", CS_SEQ, CS_STRING, err)) < 0)
		return -1;
	if (o->gap > 0 && (g->f_part = cs_schema_add(s, "part", CS_SEQ, CS_INT64, err)) < 0)
		return -1;
	if ((g->f_item = cs_schema_add(s, "item", CS_EVENT, CS_STRING, err)) < 0)
		return -1;
	if (g->has_action && (g->f_action = cs_schema_add(s, "action", CS_EVENT, CS_STRING, err)) < 0)
		return -1;
	if (g->has_time && (g->f_time = cs_schema_add(s, "time", CS_EVENT, CS_INT64, err)) < 0)
		return -1;
	if (g->ev_session &&
	    (g->f_evsession = cs_schema_add(s, "session", CS_EVENT, CS_STRING, err)) < 0)
		return -1;
	for (size_t i = 0; i < m->nkeep; i++) {
		const char *name = l->keep_name[i];
		if ((g->f_keep[i] = cs_schema_add(s, name, CS_EVENT, m->keep[i].type, err)) < 0) {
			err->line = 0;
			return cs_err(err, CS_ERR_USAGE, NULL, 0, "field '%s' kept twice or clashes with a standard field", name);
		}
	}
	char v[64];
	if (cs_schema_set_meta(s, "source", o->source ? o->source : "csv", err) < 0 ||
	    cs_schema_set_meta(s, "grouped_by", o->by == CS_BY_SESSION ? "session" : "user", err) < 0 ||
	    cs_schema_set_meta(s, "key_order", "digit-only keys numerically, then bytewise", err) < 0 ||
	    cs_schema_set_meta(s, "time_unit", "s", err) < 0)
		return -1;
	if (o->gap > 0) {
		snprintf(v, sizeof v, "%lld", (long long)o->gap);
		if (cs_schema_set_meta(s, "session_gap", v, err) < 0)
			return -1;
	}
	if (o->collapse && cs_schema_set_meta(s, "collapse_repeats", "1", err) < 0)
		return -1;
	if (o->min_len > 1) {
		snprintf(v, sizeof v, "%zu", o->min_len);
		if (cs_schema_set_meta(s, "min_len", v, err) < 0)
			return -1;
	}
	return cs_record_init(&g->rec, s, err);
}

void cs_grouper_free(cs_grouper *g)
{
	cs_record_free(&g->rec);
	cs_schema_free(g->schema);
	g->schema = NULL;
}

void cs_grouper_progress(cs_grouper *g, int force)
{
	if (!g->o->on_progress)
		return;
	double t = cs_now();
	if (!force && t - g->last_progress < 0.2)
		return;
	g->last_progress = t;
	g->o->on_progress(g->o->ctx, g->st);
}

static void count_action(cs_grouper *g, const char *s, size_t n)
{
	cs_ingest_stats *st = g->st;
	if (n >= sizeof st->action[0])
		n = sizeof st->action[0] - 1;
	int k = g->last_action;
	if (k >= 0 && (size_t)k < st->nactions && strlen(st->action[k]) == n &&
	    !memcmp(st->action[k], s, n)) {
		st->action_count[k]++;
		return;
	}
	for (size_t i = 0; i < st->nactions; i++)
		if (strlen(st->action[i]) == n && !memcmp(st->action[i], s, n)) {
			st->action_count[i]++;
			g->last_action = (int)i;
			return;
		}
	if (st->nactions < 16) {
		memcpy(st->action[st->nactions], s, n);
		st->action[st->nactions][n] = 0;
		st->action_count[st->nactions] = 1;
		g->last_action = (int)st->nactions++;
	}
}

static const uint8_t *skip_str(const uint8_t *q)
{
	uint64_t n;
	q = cs_row_get_varint(q, &n);
	return q + n;
}

/* cs_col_push_* with the common case (room left) inline: emitting calls
 * them for every value. */
static inline int col_str(cs_column *c, const void *s, size_t len)
{
	if (c->n < c->cap && c->off) {
		size_t at = c->off[c->n];
		if (at + len <= c->strcap && at + len <= UINT32_MAX) {
			memcpy(c->str + at, s, len);
			c->off[++c->n] = (uint32_t)(at + len);
			return 0;
		}
	}
	return cs_col_push_str(c, s, len);
}

static inline int col_i64(cs_column *c, int64_t v)
{
	if (c->n < c->cap) {
		c->v.i64[c->n++] = v;
		return 0;
	}
	return cs_col_push_i64(c, v);
}

static inline int col_f32(cs_column *c, float v)
{
	if (c->n < c->cap) {
		c->v.f32[c->n++] = v;
		return 0;
	}
	return cs_col_push_f32(c, v);
}

/* Write the finished record if it is long enough. */
static int put_record(cs_grouper *g, size_t ev, cs_error *err)
{
	const cs_ingest_opts *o = g->o;
	if (ev == 0)
		return 0;
	if (ev < o->min_len) {
		g->st->short_seqs++;
		return 0;
	}
	g->rec.nevents = ev;
	if (cs_writer_put(g->w, &g->rec, err) < 0)
		return -1;
	g->st->sequences++;
	g->st->events += ev;
	if (g->has_action) {
		const cs_column *c = &g->rec.col[g->f_action];
		for (size_t i = 0; i < ev; i++) {
			size_t n;
			const char *s = cs_col_str(c, i, &n);
			count_action(g, s, n);
		}
	}
	return 0;
}

/*
 * A group that cannot become a record: past a record's limits, or past
 * the 4 GiB of strings a column holds. The message names the group, the
 * one thing in the input that can be looked for.
 */
static int group_fail(cs_grouper *g, const char *key, size_t klen, int put_failed,
		      cs_error *err)
{
	const char *kind = g->o->by == CS_BY_SESSION ? "session" : "user";
	int kl = klen > 60 ? 60 : (int)klen;
	if (put_failed) {
		if (err->code == CS_ERR_LIMIT) {
			char msg[sizeof err->msg + 128];
			snprintf(msg, sizeof msg, "%s '%.*s%s': %s", kind, kl, key,
				 klen > 60 ? "..." : "", err->msg);
			msg[sizeof err->msg - 1] = 0;
			memcpy(err->msg, msg, sizeof err->msg);
			err->record = 0;
		}
		return -1;
	}
	for (size_t k = 0; k < g->rec.ncols; k++) {
		const cs_column *c = &g->rec.col[k];
		if (c->type == CS_STRING && c->off && c->off[c->n] > UINT32_MAX - (128u << 20))
			return cs_err(err, CS_ERR_LIMIT, cs_writer_path(g->w), 0,
				      "%s '%.*s%s': field '%s' passes the 4 GiB of strings a "
				      "sequence can hold", kind, kl, key, klen > 60 ? "..." : "",
				      g->schema->f[k].name);
	}
	return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory");
}

/* Turn one group (rows sorted by time) into records: split at gaps, drop
 * repeats and short sequences. rows[0 .. avail) may be read ahead. */
int cs_grouper_put(void *ctx, const char *key, size_t klen, const cs_sort_row *rows,
		   size_t n, size_t avail, cs_error *err)
{
	cs_grouper *g = ctx;
	const cs_ingest_opts *o = g->o;
	cs_record *rec = &g->rec;
	if (g->have_second) {
		size_t i;
		for (i = 0; i < n && (rows[i].p[0] & CS_ROW_SECOND); i++)
			;
		if (i == n) {
			g->st->unmatched += n;
			return 0;
		}
	}
	g->st->groups++;
	int64_t gap = o->gap > 0 ? o->gap * 1000 : 0;
	int64_t part = 0;
	size_t i = 0;
	while (i < n) {
		cs_record_clear(rec);
		part++;
		const uint8_t *q = rows[i].p + 1;
		int e = 0;
		if (g->seq_user) {
			uint64_t un;
			q = cs_row_get_varint(q, &un);
			e |= col_str(&rec->col[g->f_user], (const char *)q, un);
		} else if (g->f_user >= 0) {
			e |= col_str(&rec->col[g->f_user], key, klen);
		}
		if (g->f_session >= 0)
			e |= col_str(&rec->col[g->f_session], key, klen);
		if (g->f_part >= 0)
			e |= col_i64(&rec->col[g->f_part], part);
		if (e)
			return group_fail(g, key, klen, 0, err);
		size_t ev = 0, first = i;
		const uint8_t *last = NULL;
		size_t lastn = 0;
		for (; i < n; i++) {
			const cs_sort_row *r = &rows[i];
			/* payloads are scattered: fetch ahead of use */
			if (i + 8 < avail)
				__builtin_prefetch(rows[i + 8].p);
			if (gap && i > first && r->t - rows[i - 1].t > gap)
				break;
			q = r->p + 1;
			if (g->seq_user)
				q = skip_str(q);
			const uint8_t *ia = q;
			uint64_t len;
			const uint8_t *item = cs_row_get_varint(q, &len);
			size_t nitem = len;
			q = item + len;
			const uint8_t *act = NULL;
			size_t nact = 0;
			if (g->has_action) {
				act = cs_row_get_varint(q, &len);
				nact = len;
				q = act + len;
			}
			if (o->collapse && last && lastn == (size_t)(q - ia) && !memcmp(last, ia, lastn)) {
				g->st->collapsed++;
				continue;
			}
			last = ia;
			lastn = (size_t)(q - ia);
			e |= col_str(&rec->col[g->f_item], (const char *)item, nitem);
			if (g->has_action)
				e |= col_str(&rec->col[g->f_action], (const char *)act, nact);
			if (g->has_time) {
				int64_t t = r->t >= 0 ? r->t / 1000 : -((-r->t + 999) / 1000);
				e |= col_i64(&rec->col[g->f_time], t);
			}
			if (g->ev_session) {
				const uint8_t *s = cs_row_get_varint(q, &len);
				e |= col_str(&rec->col[g->f_evsession], (const char *)s, len);
				q = s + len;
			}
			for (size_t k = 0; k < g->m->nkeep; k++) {
				cs_column *c = &rec->col[g->f_keep[k]];
				switch (g->m->keep[k].type) {
				case CS_FLOAT32: {
					float f;
					memcpy(&f, q, 4);
					q += 4;
					e |= col_f32(c, f);
					break;
				}
				case CS_INT64: {
					int64_t v;
					memcpy(&v, q, 8);
					q += 8;
					e |= col_i64(c, v);
					break;
				}
				default: {
					const uint8_t *s = cs_row_get_varint(q, &len);
					e |= col_str(c, (const char *)s, len);
					q = s + len;
				}
				}
			}
			if (e)
				return group_fail(g, key, klen, 0, err);
			ev++;
		}
		if (put_record(g, ev, err) < 0)
			return group_fail(g, key, klen, 1, err);
	}
	if ((g->st->groups & 4095) == 0)
		cs_grouper_progress(g, 0);
	return 0;
}

