/* check_mask.c - unit tests of splits, Cloze examples and ranking metrics. */
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

START_TEST(test_leave_one_out)
{
	cs_schema *s = schema();
	cs_split_opts o = { 0, 0, 0, 1 };
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
	ck_assert_uint_eq(out[0].nevents, 3);
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
	cs_split_opts o = { 1, 1000, 500, 1 };
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
	tcase_add_test(tc, test_leave_one_out);
	tcase_add_test(tc, test_time_cut);
	tcase_add_test(tc, test_cloze_windows);
	tcase_add_test(tc, test_cloze_seeded);
	tcase_add_test(tc, test_metrics);
	tcase_add_test(tc, test_ranks);
	tcase_add_test(tc, test_sampler);
	suite_add_tcase(s, tc);
	return check_run(s);
}
