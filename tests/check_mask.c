/*
 * check_mask.c - unit tests of splits, Cloze examples, classification
 * labels and ranking metrics.
 */
#include <check.h>
#include "check_run.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "mask.h"
#include "metrics.h"
#include "vocab.h"

/* Schema: seq user (string), event item (id), time (int64). */
static cs_schema *schema(void)
{
	cs_schema *s = cs_schema_new();
	cs_schema_add(s, "user", CS_SEQ, CS_STRING, NULL);
	cs_schema_add(s, "item", CS_EVENT, CS_ID, NULL);
	cs_schema_add(s, "time", CS_EVENT, CS_INT64, NULL);
	s->f[1].vocab = 42;
	return s;
}

/* A sequence of n events: items 10, 11, ...; times t0, t0 + 1, ... */
static void seq(cs_record *r, const cs_schema *s, size_t n, int64_t t0)
{
	ck_assert_int_eq(cs_record_init(r, s, NULL), 0);
	cs_col_push_str(&r->col[0], "u", 1);
	for (size_t i = 0; i < n; i++) {
		cs_col_push_u32(&r->col[1], (uint32_t)(10 + i));
		cs_col_push_i64(&r->col[2], t0 + (int64_t)i);
	}
	r->nevents = n;
}

/* _i = 1: train_valid, training keeps the validation item. */
START_TEST(test_leave_one_out)
{
	cs_schema *s = schema();
	cs_split_opts o = { .mode = CS_SPLIT_LOO, .min_len = 1, .train_valid = _i };
	cs_error err;
	cs_splitter *sp = cs_splitter_new(s, "x", &o, &err);
	ck_assert_ptr_nonnull(sp);
	const cs_schema *es = cs_splitter_schema(sp, CS_SPLIT_TEST);
	int t = cs_schema_find(es, "target");
	ck_assert_int_ge(t, 0);
	ck_assert(es->f[t].vocab == 42 && es->f[t].level == CS_SEQ && es->f[t].type == CS_ID);
	cs_record in = { 0 }, out[3] = { { 0 } };
	int has[3];
	seq(&in, s, 5, 100);
	ck_assert_int_eq(cs_splitter_run(sp, &in, out, has, &err), 0);
	ck_assert(has[0] && has[1] && has[2]);
	ck_assert_uint_eq(out[0].nevents, _i ? 4 : 3);
	ck_assert_uint_eq(out[0].col[1].v.u32[out[0].nevents - 1], _i ? 13 : 12);
	ck_assert_uint_eq(out[1].nevents, 3);
	ck_assert_uint_eq(out[1].col[t].v.u32[0], 13);
	ck_assert_uint_eq(out[2].nevents, 4);
	ck_assert_uint_eq(out[2].col[t].v.u32[0], 14);
	ck_assert_uint_eq(out[2].col[1].v.u32[3], 13);
	ck_assert_int_eq(out[2].col[t + 1].v.i64[0], 4);
	/* Too short to hold anything out: all of it trains. */
	seq(&in, s, 2, 100);
	ck_assert_int_eq(cs_splitter_run(sp, &in, out, has, &err), 0);
	ck_assert(has[0] && !has[1] && !has[2]);
	ck_assert_uint_eq(out[0].nevents, 2);
	for (int i = 0; i < 3; i++)
		cs_record_free(&out[i]);
	cs_record_free(&in);
	cs_splitter_free(sp);
	cs_schema_free(s);
}
END_TEST

START_TEST(test_time_cut)
{
	cs_schema *s = schema();
	cs_split_opts o = { .mode = CS_SPLIT_TIME, .time_cut = 1000, .valid_cut = 500,
			    .min_len = 1 };
	cs_error err;
	cs_splitter *sp = cs_splitter_new(s, "x", &o, &err);
	cs_record in = { 0 }, out[3] = { { 0 } };
	int has[3];
	int64_t starts[] = { 100, 499, 500, 999, 1000, 5000 };
	int want[] = { 0, 0, 1, 1, 2, 2 };
	for (int i = 0; i < 6; i++) {
		seq(&in, s, 4, starts[i]);
		ck_assert_int_eq(cs_splitter_run(sp, &in, out, has, &err), 0);
		for (int p = 0; p < 3; p++)
			ck_assert_int_eq(has[p], p == want[i]);
		ck_assert_uint_eq(out[want[i]].nevents, want[i] ? 3 : 4);
	}
	cs_schema *bare = cs_schema_new();
	cs_schema_add(bare, "item", CS_EVENT, CS_ID, NULL);
	ck_assert_ptr_null(cs_splitter_new(bare, "bare.cseq", &o, &err));
	ck_assert_ptr_nonnull(strstr(err.msg, "'time'"));
	cs_schema_free(bare);
	for (int i = 0; i < 3; i++)
		cs_record_free(&out[i]);
	cs_record_free(&in);
	cs_splitter_free(sp);
	cs_schema_free(s);
}
END_TEST

/* A sequence of n events at times t: items 10, 11, ... */
static void seq_at(cs_record *r, const cs_schema *s, const int64_t *t, size_t n)
{
	ck_assert_int_eq(cs_record_init(r, s, NULL), 0);
	cs_col_push_str(&r->col[0], "u", 1);
	for (size_t i = 0; i < n; i++) {
		cs_col_push_u32(&r->col[1], (uint32_t)(10 + i));
		cs_col_push_i64(&r->col[2], t[i]);
	}
	r->nevents = n;
}

/* Part p of a split holds the first len events of in (items and times);
 * an evaluation part also its target, the next item, at target_pos len. */
static void check_part(const cs_record *out, int p, const cs_record *in, size_t len)
{
	ck_assert_uint_eq(out->nevents, len);
	for (size_t i = 0; i < len; i++) {
		ck_assert_uint_eq(out->col[1].v.u32[i], in->col[1].v.u32[i]);
		ck_assert_int_eq(out->col[2].v.i64[i], in->col[2].v.i64[i]);
	}
	if (p == CS_SPLIT_TRAIN)
		return;
	ck_assert_uint_eq(out->col[3].n, 1);
	ck_assert_uint_eq(out->col[3].v.u32[0], 10 + len);
	ck_assert_int_eq(out->col[4].v.i64[0], (int64_t)len);
}

/*
 * Global time split at 100, _i = 1 with validation from 50: each case is
 * the times of a sequence and the length of each part's history (0: none).
 */
START_TEST(test_time_at)
{
	static const struct {
		int64_t t[8];
		size_t n, want[2][3]; /* [_i][part] */
	} cases[] = {
		/* the events at the cuts are held out; test history has the valid one */
		{ { 10, 20, 50, 60, 100, 110 }, 6, { { 4, 0, 4 }, { 2, 2, 4 } } },
		{ { 10, 20, 30 }, 3, { { 3, 0, 0 }, { 3, 0, 0 } } },   /* nothing after */
		{ { 10, 60, 70 }, 3, { { 3, 0, 0 }, { 1, 1, 0 } } },   /* not after 100 */
		{ { 10, 20, 150 }, 3, { { 2, 0, 2 }, { 2, 0, 2 } } },  /* none in [50, 100) */
		{ { 60, 70, 150 }, 3, { { 2, 0, 2 }, { 0, 0, 2 } } },  /* none before 50 */
		{ { 100, 150 }, 2, { { 0, 0, 0 }, { 0, 0, 0 } } },     /* no history */
		{ { 99, 99, 100, 100 }, 4, { { 2, 0, 2 }, { 0, 0, 2 } } }, /* ties */
		{ { 5 }, 1, { { 1, 0, 0 }, { 1, 0, 0 } } },
	};
	cs_schema *s = schema();
	cs_split_opts o = { .mode = CS_SPLIT_AT, .time_cut = 100, .valid_cut = 50,
			    .valid_at = _i, .min_len = 1 };
	cs_error err;
	cs_splitter *sp = cs_splitter_new(s, "x", &o, &err);
	ck_assert_msg(sp != NULL, "%s", err.msg);
	const char *names[] = { "train", "valid", "test" };
	for (int p = 0; p < 3; p++) {
		const cs_schema *ps = cs_splitter_schema(sp, p);
		ck_assert_str_eq(cs_schema_get_meta(ps, "split"), names[p]);
		ck_assert_str_eq(cs_schema_get_meta(ps, "split_at"), "100");
		if (_i)
			ck_assert_str_eq(cs_schema_get_meta(ps, "split_valid_at"), "50");
		else
			ck_assert_ptr_null(cs_schema_get_meta(ps, "split_valid_at"));
		ck_assert_uint_eq(ps->nfields, p ? 5 : 3);
	}
	ck_assert_int_eq(cs_schema_find(cs_splitter_schema(sp, CS_SPLIT_TEST), "target"), 3);
	ck_assert_int_eq(cs_schema_find(cs_splitter_schema(sp, CS_SPLIT_TEST), "target_pos"), 4);
	cs_record in = { 0 }, out[3] = { { 0 } };
	int has[3];
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		seq_at(&in, s, cases[c].t, cases[c].n);
		ck_assert_int_eq(cs_splitter_run(sp, &in, out, has, &err), 0);
		for (int p = 0; p < 3; p++) {
			size_t len = cases[c].want[_i][p];
			ck_assert_msg(has[p] == (len > 0), "case %zu part %d: has %d", c, p, has[p]);
			if (has[p])
				check_part(&out[p], p, &in, len);
		}
	}
	/* Events out of time order: an error naming the stream and the record. */
	int64_t back[] = { 10, 30, 20, 200 };
	seq_at(&in, s, back, 4);
	ck_assert_int_eq(cs_splitter_run(sp, &in, out, has, &err), -1);
	ck_assert_int_eq(err.code, CS_ERR_FORMAT);
	ck_assert_str_eq(err.path, "x");
	ck_assert_int_eq(err.record, (long long)(sizeof cases / sizeof cases[0]) + 1);
	ck_assert_ptr_nonnull(strstr(err.msg, "out of time order (event 3 at 20 after one at 30)"));
	cs_splitter_free(sp);
	/* min_len drops whole sequences before the split, as for the others. */
	o.min_len = 4;
	sp = cs_splitter_new(s, "x", &o, &err);
	seq_at(&in, s, cases[3].t, cases[3].n);
	ck_assert_int_eq(cs_splitter_run(sp, &in, out, has, &err), 0);
	ck_assert(!has[0] && !has[1] && !has[2]);
	seq_at(&in, s, cases[6].t, cases[6].n);
	ck_assert_int_eq(cs_splitter_run(sp, &in, out, has, &err), 0);
	ck_assert(has[CS_SPLIT_TEST]);
	cs_splitter_free(sp);
	/* The validation cut must come first; the stream needs int64 times. */
	o.valid_cut = 100;
	o.valid_at = 1;
	ck_assert_ptr_null(cs_splitter_new(s, "x", &o, &err));
	ck_assert_int_eq(err.code, CS_ERR_USAGE);
	o.valid_at = 0;
	cs_schema *bare = cs_schema_new();
	cs_schema_add(bare, "item", CS_EVENT, CS_ID, NULL);
	cs_schema_add(bare, "time", CS_EVENT, CS_FLOAT32, NULL);
	ck_assert_ptr_null(cs_splitter_new(bare, "bare.cseq", &o, &err));
	ck_assert_str_eq(err.path, "bare.cseq");
	ck_assert_ptr_nonnull(strstr(err.msg, "int64 event field 'time'"));
	cs_schema_free(bare);
	for (int i = 0; i < 3; i++)
		cs_record_free(&out[i]);
	cs_record_free(&in);
	cs_schema_free(s);
}
END_TEST

typedef struct collect {
	size_t n;
	size_t len[256];
	size_t masked[256];
	uint32_t first_item[256];
	int first_masked[256];
	int ok;
} collect;

static int gather(void *ctx, const cs_record *ex, cs_error *err)
{
	collect *c = ctx;
	const cs_column *item = &ex->col[1], *tgt = &ex->col[3];
	size_t m = 0;
	for (size_t i = 0; i < ex->nevents; i++) {
		if (tgt->v.u32[i]) {
			m++;
			/* masked: the item is [MASK], the target the original */
			if (item->v.u32[i] != CS_VOCAB_MASK || tgt->v.u32[i] < 10)
				c->ok = 0;
		} else if (item->v.u32[i] == CS_VOCAB_MASK) {
			c->ok = 0;
		}
	}
	c->len[c->n] = ex->nevents;
	c->masked[c->n] = m;
	c->first_item[c->n] = tgt->v.u32[0] ? tgt->v.u32[0] : item->v.u32[0];
	c->first_masked[c->n] = tgt->v.u32[0] != 0;
	c->n++;
	return 0;
}

START_TEST(test_cloze_windows)
{
	cs_schema *s = schema();
	cs_cloze_opts o;
	cs_cloze_defaults(&o);
	o.max_len = 10;
	o.slide = 0.3;  /* step 3 */
	o.dupe = 2;
	o.mask_prob = 0.5;
	o.max_pred = 4;
	cs_error err;
	cs_cloze *cz = cs_cloze_new(s, "x", &o, &err);
	ck_assert_ptr_nonnull(cz);
	cs_record in = { 0 };
	seq(&in, s, 17, 0); /* windows start at 0, 1, 4, 7 */
	collect c = { .ok = 1 };
	ck_assert_int_eq(cs_cloze_run(cz, &in, gather, &c, &err), 4 * 2 + 1);
	ck_assert(c.ok);
	ck_assert_uint_eq(c.n, 9);
	uint32_t firsts[] = { 10, 10, 11, 11, 14, 14, 17, 17, 17 };
	for (size_t i = 0; i < c.n; i++) {
		ck_assert_uint_eq(c.len[i], 10);
		ck_assert_uint_eq(c.first_item[i], firsts[i]);
		ck_assert_uint_eq(c.masked[i], i == 8 ? 1 : 4); /* round(5) capped at 4 */
	}
	/* A short sequence: one window; a single masked position at least. */
	seq(&in, s, 1, 0);
	memset(&c, 0, sizeof c);
	c.ok = 1;
	ck_assert_int_eq(cs_cloze_run(cz, &in, gather, &c, &err), 3);
	ck_assert(c.ok);
	ck_assert_uint_eq(c.masked[0], 1);
	cs_record_free(&in);
	cs_cloze_free(cz);

	/* Strings can't be masked. */
	s->f[1].type = CS_STRING;
	ck_assert_ptr_null(cs_cloze_new(s, "raw.cseq", &o, &err));
	ck_assert_ptr_nonnull(strstr(err.msg, "cs-vocab"));
	cs_schema_free(s);
}
END_TEST

/* Masks differ between dupes and repeat exactly for the same seed. */
START_TEST(test_cloze_seeded)
{
	cs_schema *s = schema();
	cs_cloze_opts o;
	cs_cloze_defaults(&o);
	o.dupe = 50;
	o.mask_prob = 0.2;
	cs_error err;
	cs_record in = { 0 };
	seq(&in, s, 30, 0);
	collect a = { .ok = 1 }, b = { .ok = 1 };
	cs_cloze *cz = cs_cloze_new(s, "x", &o, &err);
	cs_cloze_run(cz, &in, gather, &a, &err);
	cs_cloze_free(cz);
	cz = cs_cloze_new(s, "x", &o, &err);
	cs_cloze_run(cz, &in, gather, &b, &err);
	cs_cloze_free(cz);
	ck_assert(a.ok && b.ok);
	ck_assert(memcmp(a.first_masked, b.first_masked, sizeof a.first_masked) == 0);
	size_t first_masked = 0;
	for (size_t i = 0; i < 50; i++)
		first_masked += a.first_masked[i];
	/* position 0 masked in about 6/30 of 50 copies: neither never nor always */
	ck_assert_uint_eq(a.masked[0], 6);
	ck_assert_uint_gt(first_masked, 0);
	ck_assert_uint_lt(first_masked, 50);
	cs_record_free(&in);
	cs_schema_free(s);
}
END_TEST

/* Time cut with whole sequences: every part has the input's schema. */
START_TEST(test_time_whole)
{
	cs_schema *s = schema();
	cs_split_opts o = { .mode = CS_SPLIT_TIME, .time_cut = 1000, .valid_cut = 500,
			    .min_len = 1, .whole = 1 };
	cs_error err;
	cs_splitter *sp = cs_splitter_new(s, "x", &o, &err);
	ck_assert_ptr_nonnull(sp);
	const char *names[] = { "train", "valid", "test" };
	for (int p = 0; p < 3; p++) {
		const cs_schema *ps = cs_splitter_schema(sp, p);
		ck_assert_uint_eq(ps->nfields, s->nfields);
		ck_assert_str_eq(cs_schema_get_meta(ps, "split"), names[p]);
	}
	cs_record in = { 0 }, out[3] = { { 0 } };
	int has[3];
	int64_t starts[] = { 100, 600, 2000 };
	for (int i = 0; i < 3; i++) {
		seq(&in, s, 1, starts[i]); /* one event is enough for a whole sequence */
		ck_assert_int_eq(cs_splitter_run(sp, &in, out, has, &err), 0);
		ck_assert(has[i]);
		ck_assert_uint_eq(out[i].nevents, 1);
		ck_assert_int_eq(out[i].col[2].v.i64[0], starts[i]);
	}
	for (int i = 0; i < 3; i++)
		cs_record_free(&out[i]);
	cs_record_free(&in);
	cs_splitter_free(sp);
	/* Held-out records name their part (valid used to say "test"). */
	o.whole = 0;
	sp = cs_splitter_new(s, "x", &o, &err);
	const cs_schema *vs = cs_splitter_schema(sp, CS_SPLIT_VALID);
	ck_assert_str_eq(cs_schema_get_meta(vs, "split"), "valid");
	ck_assert_int_ge(cs_schema_find(vs, "target"), 0);
	cs_splitter_free(sp);
	cs_schema_free(s);
}
END_TEST

/* Assign n records of a random split; counts per part into count. */
static void random_parts(const cs_schema *s, const cs_split_opts *o, int *part, size_t n,
			 size_t count[3])
{
	cs_error err;
	cs_splitter *sp = cs_splitter_new(s, "x", o, &err);
	ck_assert_msg(sp != NULL, "%s", err.msg);
	cs_record in = { 0 }, out[3] = { { 0 } };
	int has[3];
	count[0] = count[1] = count[2] = 0;
	for (size_t i = 0; i < n; i++) {
		seq(&in, s, 1 + i % 4, (int64_t)i);
		ck_assert_int_eq(cs_splitter_run(sp, &in, out, has, &err), 0);
		ck_assert_int_eq(has[0] + has[1] + has[2], 1);
		part[i] = has[0] ? 0 : has[1] ? 1 : 2;
		/* whole: the same events, every field */
		ck_assert_uint_eq(out[part[i]].nevents, in.nevents);
		ck_assert_uint_eq(out[part[i]].ncols, s->nfields);
		ck_assert_int_eq(out[part[i]].col[2].v.i64[0], (int64_t)i);
		count[part[i]]++;
	}
	for (int i = 0; i < 3; i++)
		cs_record_free(&out[i]);
	cs_record_free(&in);
	cs_splitter_free(sp);
}

START_TEST(test_random_split)
{
	enum { N = 10000 };
	cs_schema *s = schema();
	cs_split_opts o = { .mode = CS_SPLIT_RANDOM, .min_len = 1, .valid_frac = 0.1,
			    .test_frac = 0.2, .seed = 1 };
	static int a[N], b[N], c[N];
	size_t na[3], nb[3], nc[3];
	cs_error err;
	cs_splitter *sp = cs_splitter_new(s, "x", &o, &err);
	for (int p = 0; p < 3; p++) {
		const cs_schema *ps = cs_splitter_schema(sp, p);
		ck_assert_uint_eq(ps->nfields, s->nfields);
		ck_assert_int_lt(cs_schema_find(ps, "target"), 0);
	}
	cs_splitter_free(sp);
	random_parts(s, &o, a, N, na);
	random_parts(s, &o, b, N, nb);
	ck_assert(memcmp(a, b, sizeof a) == 0); /* the same seed, the same parts */
	/* 1000 and 2000 expected; the standard deviations are 30 and 40 */
	ck_assert_uint_gt(na[1], 880);
	ck_assert_uint_lt(na[1], 1120);
	ck_assert_uint_gt(na[2], 1840);
	ck_assert_uint_lt(na[2], 2160);
	o.seed = 2;
	random_parts(s, &o, c, N, nc);
	size_t moved = 0;
	for (size_t i = 0; i < N; i++)
		moved += a[i] != c[i];
	ck_assert_uint_gt(moved, N / 5); /* another seed, other parts */
	/* No item needed; shares that leave no training part are refused. */
	cs_schema *bare = cs_schema_new();
	cs_schema_add(bare, "user", CS_SEQ, CS_STRING, NULL);
	sp = cs_splitter_new(bare, "x", &o, &err);
	ck_assert_ptr_nonnull(sp);
	cs_splitter_free(sp);
	o.valid_frac = 0.5;
	o.test_frac = 0.5;
	ck_assert_ptr_null(cs_splitter_new(s, "x", &o, &err));
	ck_assert_int_eq(err.code, CS_ERR_USAGE);
	cs_schema_free(bare);
	cs_schema_free(s);
}
END_TEST

/* Schema: seq user (string), event item (id), action (id), time (int64). */
static cs_schema *schema_action(void)
{
	cs_schema *s = schema();
	cs_schema_add(s, "action", CS_EVENT, CS_ID, NULL);
	s->f[3].vocab = 7;
	return s;
}

typedef struct masks {
	size_t examples, masked, action_masked, action_changed;
	size_t target_ok, events;
} masks;

static int count_masks(void *ctx, const cs_record *ex, cs_error *err)
{
	masks *m = ctx;
	m->examples++;
	for (size_t i = 0; i < ex->nevents; i++) {
		int masked = ex->col[4].v.u32[i] != 0;
		uint32_t act = ex->col[3].v.u32[i];
		m->masked += masked;
		m->action_masked += masked && act == CS_VOCAB_MASK;
		m->action_changed += !masked && act != 3 + i % 2;
		/* target_action keeps the masked action, 0 elsewhere */
		if (ex->ncols > 5)
			m->target_ok += ex->col[5].v.u32[i] == (masked ? 3 + i % 2 : 0);
		m->events++;
	}
	return 0;
}

START_TEST(test_cloze_mask_field)
{
	cs_schema *s = schema_action();
	cs_cloze_opts o;
	cs_cloze_defaults(&o);
	o.dupe = 3;
	cs_error err;
	cs_record in = { 0 };
	ck_assert_int_eq(cs_record_init(&in, s, NULL), 0);
	cs_col_push_str(&in.col[0], "u", 1);
	for (uint32_t i = 0; i < 20; i++) {
		cs_col_push_u32(&in.col[1], 10 + i);
		cs_col_push_i64(&in.col[2], i);
		cs_col_push_u32(&in.col[3], 3 + i % 2);
	}
	in.nevents = 20;
	/* Default: the action keeps its value. */
	masks m = { 0 };
	cs_cloze *cz = cs_cloze_new(s, "x", &o, &err);
	ck_assert_int_eq(cs_cloze_run(cz, &in, count_masks, &m, &err), 4);
	ck_assert_uint_eq(m.masked, 3 * 12 + 1);
	ck_assert_uint_eq(m.action_masked, 0);
	cs_cloze_free(cz);
	/* --mask-field action: masked with the item, and nowhere else. */
	const char *const fields[] = { "action", "item" };
	o.mask_field = fields;
	o.nmask_field = 2;
	memset(&m, 0, sizeof m);
	cz = cs_cloze_new(s, "x", &o, &err);
	ck_assert_ptr_nonnull(cz);
	ck_assert_int_eq(cs_cloze_run(cz, &in, count_masks, &m, &err), 4);
	ck_assert_uint_eq(m.masked, 3 * 12 + 1);
	ck_assert_uint_eq(m.action_masked, m.masked);
	ck_assert_uint_eq(m.action_changed, 0);
	ck_assert_uint_eq(m.target_ok, m.events);
	ck_assert_int_eq(cs_schema_find(cs_cloze_schema(cz), "target_action"), 5);
	cs_cloze_free(cz);
	/* Only event-level id fields can be masked. */
	const char *const bad[][1] = { { "time" }, { "user" }, { "nope" } };
	const char *want[] = { "holds int64 values", "no event field 'user'", "'nope'" };
	for (int i = 0; i < 3; i++) {
		o.mask_field = bad[i];
		o.nmask_field = 1;
		ck_assert_ptr_null(cs_cloze_new(s, "x", &o, &err));
		ck_assert_msg(strstr(err.msg, want[i]) != NULL, "%s", err.msg);
	}
	cs_record_free(&in);
	cs_schema_free(s);
}
END_TEST

/* ------------------------------------------------------------ labels */

/* Schema: seq user (string), event item (string), action (string). */
static cs_schema *schema_events(int action_type)
{
	cs_schema *s = cs_schema_new();
	cs_schema_add(s, "user", CS_SEQ, CS_STRING, NULL);
	cs_schema_add(s, "item", CS_EVENT, CS_STRING, NULL);
	cs_schema_add(s, "action", CS_EVENT, action_type, NULL);
	return s;
}

/*
 * A sequence from "v:a c:b p:a r:a": event type (view, cart, purchase,
 * return) and item. An id action field gets ids 3 to 6 in that order.
 */
static void events(cs_record *r, const cs_schema *s, const char *spec)
{
	static const char *type[] = { "view", "cart", "purchase", "return" };
	ck_assert_int_eq(cs_record_init(r, s, NULL), 0);
	cs_col_push_str(&r->col[0], "u", 1);
	for (const char *p = spec; *p; p += p[3] ? 4 : 3) {
		int t = (int)(strchr("vcpr", p[0]) - "vcpr");
		cs_col_push_str(&r->col[1], p + 2, 1);
		if (s->f[2].type == CS_ID)
			cs_col_push_u32(&r->col[2], 3 + (uint32_t)t);
		else
			cs_col_push_str(&r->col[2], type[t], strlen(type[t]));
		r->nevents++;
	}
}

/* The items of out, as a string. */
static const char *items(const cs_record *out)
{
	static char buf[64];
	size_t n = 0, len;
	for (size_t i = 0; i < out->nevents && n < sizeof buf - 1; i++)
		buf[n++] = *cs_col_str(&out->col[1], i, &len);
	buf[n] = 0;
	return buf;
}

START_TEST(test_session_labels)
{
	cs_schema *s = schema_events(CS_STRING);
	cs_label_opts o;
	cs_label_defaults(&o);
	cs_error err;
	cs_session_labeler *sl = cs_session_labeler_new(s, "x", &o, &err);
	ck_assert_ptr_nonnull(sl);
	const cs_schema *ls = cs_session_labeler_schema(sl);
	ck_assert_int_eq(cs_schema_find(ls, "label"), 3);
	ck_assert(ls->f[3].level == CS_SEQ && ls->f[3].type == CS_INT64);
	cs_record in = { 0 }, out = { 0 };
	/* A purchase in the middle: the events before it, label 1. */
	events(&in, s, "v:a c:b p:b v:c p:d");
	ck_assert_int_eq(cs_session_labeler_run(sl, &in, &out, &err), 1);
	ck_assert_str_eq(items(&out), "ab");
	ck_assert_int_eq(out.col[3].v.i64[0], 1);
	ck_assert_uint_eq(out.col[0].n, 1);
	/* None: every event, label 0. */
	events(&in, s, "v:a v:b c:c");
	ck_assert_int_eq(cs_session_labeler_run(sl, &in, &out, &err), 1);
	ck_assert_str_eq(items(&out), "abc");
	ck_assert_int_eq(out.col[3].v.i64[0], 0);
	/* A purchase first: nothing left, dropped. */
	events(&in, s, "p:a v:b");
	ck_assert_int_eq(cs_session_labeler_run(sl, &in, &out, &err), 0);
	const cs_label_stats *st = cs_session_labeler_stats(sl);
	ck_assert_uint_eq(st->sequences, 3);
	ck_assert_uint_eq(st->examples, 2);
	ck_assert_uint_eq(st->positives, 1);
	ck_assert_uint_eq(st->dropped, 1);
	cs_session_labeler_free(sl);

	/* --first 2 and another purchase token. */
	o.first = 2;
	o.purchase = "cart";
	sl = cs_session_labeler_new(s, "x", &o, &err);
	events(&in, s, "v:a v:b v:c c:d");
	ck_assert_int_eq(cs_session_labeler_run(sl, &in, &out, &err), 1);
	ck_assert_str_eq(items(&out), "ab");
	ck_assert_int_eq(out.col[3].v.i64[0], 1);
	events(&in, s, "v:a c:b");
	ck_assert_int_eq(cs_session_labeler_run(sl, &in, &out, &err), 1);
	ck_assert_str_eq(items(&out), "a");
	events(&in, s, "v:a v:b v:c");
	ck_assert_int_eq(cs_session_labeler_run(sl, &in, &out, &err), 1);
	ck_assert_str_eq(items(&out), "ab");
	ck_assert_int_eq(out.col[3].v.i64[0], 0);
	cs_session_labeler_free(sl);
	cs_record_free(&in);
	cs_record_free(&out);

	/* Errors: no action field, a float one, a label already there. */
	cs_label_defaults(&o);
	o.action = "event_type";
	ck_assert_ptr_null(cs_session_labeler_new(s, "in.cseq", &o, &err));
	ck_assert_str_eq(err.msg, "stream has no event field 'event_type'");
	ck_assert_str_eq(err.path, "in.cseq");
	o.action = "action";
	cs_schema_add(s, "price", CS_EVENT, CS_FLOAT32, NULL);
	cs_schema_add(s, "label", CS_SEQ, CS_INT64, NULL);
	ck_assert_ptr_null(cs_session_labeler_new(s, "in.cseq", &o, &err));
	ck_assert_ptr_nonnull(strstr(err.msg, "already has a field 'label'"));
	o.action = "price";
	ck_assert_ptr_null(cs_session_labeler_new(s, "in.cseq", &o, &err));
	ck_assert_ptr_nonnull(strstr(err.msg, "float32"));
	cs_schema_free(s);
}
END_TEST

/* An id action field: the tokens are found through the vocabulary. */
START_TEST(test_labels_vocab)
{
	const char *tok[] = { "[PAD]", "[MASK]", "[UNK]", "view", "cart", "purchase", "return" };
	size_t len[7];
	for (int i = 0; i < 7; i++)
		len[i] = strlen(tok[i]);
	uint64_t fp = cs_vocab_hash("action", tok, len, 7);
	char fps[17], text[512];
	int n = snprintf(text, sizeof text, "# cs-vocab 1\nfield\taction\t7\t%s\n",
			 cs_vocab_fpstr(fp, fps));
	for (int i = 0; i < 7; i++)
		n += snprintf(text + n, sizeof text - (size_t)n, "%d\t%s\t%d\n", i, tok[i],
			      i < 3 ? 0 : 1);
	FILE *f = fmemopen(text, (size_t)n, "r");
	cs_error err;
	cs_vocab *v = cs_vocab_read_file(f, "v.txt", &err);
	fclose(f);
	ck_assert_msg(v != NULL, "%s", err.msg);

	cs_schema *s = schema_events(CS_ID);
	s->f[2].vocab = fp;
	cs_label_opts o;
	cs_label_defaults(&o);
	ck_assert_ptr_null(cs_session_labeler_new(s, "enc.cseq", &o, &err));
	ck_assert_ptr_nonnull(strstr(err.msg, "--vocab"));
	ck_assert_ptr_null(cs_return_labeler_new(s, "enc.cseq", &o, &err));
	ck_assert_ptr_nonnull(strstr(err.msg, "--vocab"));
	o.vocab = v;
	cs_session_labeler *sl = cs_session_labeler_new(s, "enc.cseq", &o, &err);
	ck_assert_msg(sl != NULL, "%s", err.msg);
	cs_record in = { 0 }, out = { 0 };
	events(&in, s, "v:a c:b p:c v:d");
	ck_assert_int_eq(cs_session_labeler_run(sl, &in, &out, &err), 1);
	ck_assert_str_eq(items(&out), "ab");
	ck_assert_int_eq(out.col[3].v.i64[0], 1);
	cs_session_labeler_free(sl);
	cs_return_labeler *rl = cs_return_labeler_new(s, "enc.cseq", &o, &err);
	ck_assert_msg(rl != NULL, "%s", err.msg);
	events(&in, s, "p:a p:b r:a");
	ck_assert_int_eq(cs_return_labeler_run(rl, &in, &out, &err), 1);
	ck_assert_str_eq(items(&out), "ab");
	ck_assert_int_eq(out.col[3].v.i64[0], 1);
	ck_assert_int_eq(out.col[3].v.i64[1], 0);
	cs_return_labeler_free(rl);
	/* A token the vocabulary lacks; another vocabulary. */
	o.purchase = "buy";
	ck_assert_ptr_null(cs_session_labeler_new(s, "enc.cseq", &o, &err));
	ck_assert_str_eq(err.msg, "no token 'buy' in the vocabulary of 'action'");
	o.purchase = "purchase";
	s->f[2].vocab = fp + 1;
	ck_assert_ptr_null(cs_session_labeler_new(s, "enc.cseq", &o, &err));
	ck_assert_ptr_nonnull(strstr(err.msg, "another vocabulary"));
	cs_record_free(&in);
	cs_record_free(&out);
	cs_schema_free(s);
	cs_vocab_free(v);
}
END_TEST

START_TEST(test_return_labels)
{
	cs_schema *s = schema_events(CS_STRING);
	cs_label_opts o;
	cs_label_defaults(&o);
	cs_error err;
	cs_return_labeler *rl = cs_return_labeler_new(s, "x", &o, &err);
	ck_assert_ptr_nonnull(rl);
	const cs_schema *ls = cs_return_labeler_schema(rl);
	ck_assert_int_eq(cs_schema_find(ls, "label"), 3);
	ck_assert(ls->f[3].level == CS_EVENT && ls->f[3].type == CS_INT64);
	cs_record in = { 0 }, out = { 0 };
	/*
	 * Two returns of a: the first to the latest purchase of a (event 2),
	 * the second to the one before (event 0); a third has none left. The
	 * purchase of a after them is not returned.
	 */
	events(&in, s, "p:a p:b p:a v:c r:a r:a r:a p:a");
	ck_assert_int_eq(cs_return_labeler_run(rl, &in, &out, &err), 1);
	ck_assert_str_eq(items(&out), "abaca");
	int64_t want[] = { 1, 0, 1, -1, 0 };
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(out.col[3].v.i64[i], want[i]);
	ck_assert_uint_eq(out.col[3].n, 5);
	ck_assert_uint_eq(out.col[2].n, 5);
	/* Two purchases, one return: the later purchase is the returned one. */
	events(&in, s, "p:x v:y p:x r:x");
	ck_assert_int_eq(cs_return_labeler_run(rl, &in, &out, &err), 1);
	ck_assert_str_eq(items(&out), "xyx");
	ck_assert_int_eq(out.col[3].v.i64[0], 0);
	ck_assert_int_eq(out.col[3].v.i64[1], -1);
	ck_assert_int_eq(out.col[3].v.i64[2], 1);
	/* A return before any purchase of its item, and a return of another item. */
	events(&in, s, "r:z p:z v:y p:w r:q");
	ck_assert_int_eq(cs_return_labeler_run(rl, &in, &out, &err), 1);
	ck_assert_str_eq(items(&out), "zyw");
	ck_assert_int_eq(out.col[3].v.i64[0], 0);
	ck_assert_int_eq(out.col[3].v.i64[2], 0);
	/* Only returns: nothing left. */
	events(&in, s, "r:a r:b");
	ck_assert_int_eq(cs_return_labeler_run(rl, &in, &out, &err), 0);
	const cs_label_stats *st = cs_return_labeler_stats(rl);
	ck_assert_uint_eq(st->sequences, 4);
	ck_assert_uint_eq(st->examples, 3);
	ck_assert_uint_eq(st->dropped, 1);
	ck_assert_uint_eq(st->purchases, 4 + 2 + 2);
	ck_assert_uint_eq(st->returned, 3);
	ck_assert_uint_eq(st->unmatched, 1 + 2 + 2);
	cs_return_labeler_free(rl);
	/* Items compared as ids too; no item field is an error. */
	cs_schema *si = schema_events(CS_STRING);
	si->f[1].type = CS_ID;
	rl = cs_return_labeler_new(si, "x", &o, &err);
	ck_assert_int_eq(cs_record_init(&in, si, NULL), 0);
	cs_col_push_str(&in.col[0], "u", 1);
	const char *act[] = { "purchase", "purchase", "return" };
	uint32_t item[] = { 5, 6, 5 };
	for (int i = 0; i < 3; i++) {
		cs_col_push_u32(&in.col[1], item[i]);
		cs_col_push_str(&in.col[2], act[i], strlen(act[i]));
	}
	in.nevents = 3;
	ck_assert_int_eq(cs_return_labeler_run(rl, &in, &out, &err), 1);
	ck_assert_uint_eq(out.nevents, 2);
	ck_assert_int_eq(out.col[3].v.i64[0], 1);
	ck_assert_int_eq(out.col[3].v.i64[1], 0);
	cs_return_labeler_free(rl);
	cs_schema_remove(si, 1);
	ck_assert_ptr_null(cs_return_labeler_new(si, "x", &o, &err));
	ck_assert_ptr_nonnull(strstr(err.msg, "'item'"));
	o.ret = "purchase";
	ck_assert_ptr_null(cs_return_labeler_new(s, "x", &o, &err));
	ck_assert_ptr_nonnull(strstr(err.msg, "both 'purchase'"));
	cs_record_free(&in);
	cs_record_free(&out);
	cs_schema_free(si);
	cs_schema_free(s);
}
END_TEST

START_TEST(test_metrics)
{
	size_t ks[] = { 1, 5, 10 };
	cs_metrics m;
	cs_metrics_init(&m, ks, 3);
	cs_metrics_add(&m, 0);
	cs_metrics_add(&m, 3);
	cs_metrics_add(&m, 20);
	ck_assert_double_eq_tol(cs_metrics_hr(&m, 0), 1.0 / 3, 1e-12);
	ck_assert_double_eq_tol(cs_metrics_hr(&m, 1), 2.0 / 3, 1e-12);
	ck_assert_double_eq_tol(cs_metrics_ndcg(&m, 1), (1.0 + 1.0 / log2(5.0)) / 3, 1e-12);
	ck_assert_double_eq_tol(cs_metrics_ndcg(&m, 2), (1.0 + 1.0 / log2(5.0)) / 3, 1e-12);
	ck_assert_double_eq_tol(cs_metrics_mrr(&m), (1.0 + 0.25 + 1.0 / 21) / 3, 1e-12);
}
END_TEST

START_TEST(test_ranks)
{
	/* items 0..2 reserved; scores of 3..9 */
	float sc[10] = { 99, 99, 99, 0.5f, 0.9f, 0.1f, 0.5f, 0.7f, 0.2f, 0.5f };
	ck_assert_uint_eq(cs_rank_full(sc, 10, 3, 4, NULL, 0), 0);
	ck_assert_uint_eq(cs_rank_full(sc, 10, 3, 7, NULL, 0), 1);
	/* ties: 3, 6 and 9 tie; the other two always come ahead */
	ck_assert_uint_eq(cs_rank_full(sc, 10, 3, 9, NULL, 0), 4);
	ck_assert_uint_eq(cs_rank_full(sc, 10, 3, 3, NULL, 0), 4);
	uint32_t excl[10] = { 0 };
	excl[4] = excl[7] = excl[6] = 5; /* seen items, excluded */
	ck_assert_uint_eq(cs_rank_full(sc, 10, 3, 3, excl, 5), 1);
	float flat[10] = { 0 };
	ck_assert_uint_eq(cs_rank_full(flat, 10, 3, 5, NULL, 0), 6);
	uint32_t cand[] = { 5, 8, 4 };
	ck_assert_uint_eq(cs_rank_among(sc, 7, cand, 3), 1);
	ck_assert_uint_eq(cs_rank_among(sc, 4, cand, 3), 0);
}
END_TEST

START_TEST(test_sampler)
{
	enum { V = 103 };
	double w[V] = { 0 };
	for (int j = 3; j < V; j++)
		w[j] = j == 3 ? 1000 : 1;
	cs_error err;
	cs_sampler *pop = cs_sampler_new(V, 3, w, &err), *uni = cs_sampler_new(V, 3, NULL, &err);
	uint32_t excl[V] = { 0 }, out[100];
	cs_nn_rng rng;
	cs_nn_rng_seed(&rng, 7);
	size_t hit3_pop = 0, hit3_uni = 0;
	for (uint32_t stamp = 1; stamp <= 200; stamp++) {
		excl[10] = stamp; /* a history item */
		size_t n = cs_sampler_draw(pop, &rng, 5, excl, stamp, out);
		ck_assert_uint_eq(n, 5);
		for (size_t i = 0; i < n; i++) {
			ck_assert_uint_ne(out[i], 10);
			ck_assert_uint_ge(out[i], 3);
			ck_assert_uint_lt(out[i], V);
			for (size_t j = 0; j < i; j++)
				ck_assert_uint_ne(out[i], out[j]);
			hit3_pop += out[i] == 3;
		}
		n = cs_sampler_draw(uni, &rng, 5, excl, stamp + 1000, out);
		for (size_t i = 0; i < n; i++)
			hit3_uni += out[i] == 3;
	}
	ck_assert_uint_gt(hit3_pop, 190); /* item 3 is half the mass */
	ck_assert_uint_lt(hit3_uni, 40);  /* about 200 * 5 / 100 */
	/* Asking for more than there is returns what there is. */
	size_t n = cs_sampler_draw(uni, &rng, 100, excl, 9999, out);
	ck_assert_uint_eq(n, 100);
	n = cs_sampler_draw(uni, &rng, 10, excl, 9999, out);
	ck_assert_uint_eq(n, 0);
	cs_sampler_free(pop);
	cs_sampler_free(uni);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mask");
	TCase *tc = tcase_create("core");
	tcase_add_loop_test(tc, test_leave_one_out, 0, 2);
	tcase_add_test(tc, test_time_cut);
	tcase_add_loop_test(tc, test_time_at, 0, 2);
	tcase_add_test(tc, test_cloze_windows);
	tcase_add_test(tc, test_cloze_seeded);
	tcase_add_test(tc, test_time_whole);
	tcase_add_test(tc, test_random_split);
	tcase_add_test(tc, test_cloze_mask_field);
	tcase_add_test(tc, test_session_labels);
	tcase_add_test(tc, test_labels_vocab);
	tcase_add_test(tc, test_return_labels);
	tcase_add_test(tc, test_metrics);
	tcase_add_test(tc, test_ranks);
	tcase_add_test(tc, test_sampler);
	suite_add_tcase(s, tc);
	return check_run(s);
}
