/* check_metrics.c - unit tests of the binary classification metrics. */
#include <check.h>
#include "check_run.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "metrics.h"

#define EPS 1e-12

/* Compute with threshold 0.5, asserting success. */
static cs_binmetrics bin(const float *p, const uint8_t *y, size_t n)
{
	cs_binmetrics m;
	cs_error err = { 0 };
	ck_assert_msg(cs_binmetrics_compute(p, y, n, 0.5, &m, &err) == 0, "%s", err.msg);
	return m;
}

START_TEST(test_perfect)
{
	float p[] = { 0.9f, 0.8f, 0.2f, 0.1f };
	uint8_t y[] = { 1, 1, 0, 0 };
	cs_binmetrics m = bin(p, y, 4);
	ck_assert_uint_eq(m.n, 4);
	ck_assert_uint_eq(m.npos, 2);
	ck_assert_double_eq_tol(m.auc, 1, EPS);
	ck_assert_double_eq_tol(m.prauc, 1, EPS);
	ck_assert_double_eq_tol(m.pos_rate, 0.5, EPS);
	ck_assert_double_eq_tol(m.precision, 1, EPS);
	ck_assert_double_eq_tol(m.recall, 1, EPS);
	ck_assert_double_eq_tol(m.f1, 1, EPS);
}
END_TEST

START_TEST(test_reversed)
{
	float p[] = { 0.9f, 0.8f, 0.2f, 0.1f };
	uint8_t y[] = { 0, 0, 1, 1 };
	cs_binmetrics m = bin(p, y, 4);
	ck_assert_double_eq_tol(m.auc, 0, EPS);
	/* positives at ranks 3 and 4: (1/3 + 2/4) / 2 */
	ck_assert_double_eq_tol(m.prauc, 5.0 / 12, EPS);
	/* two predicted positives, both wrong */
	ck_assert_double_eq_tol(m.precision, 0, EPS);
	ck_assert_double_eq_tol(m.recall, 0, EPS);
	ck_assert_double_eq_tol(m.f1, 0, EPS);
}
END_TEST

START_TEST(test_all_equal)
{
	float p[] = { 0.3f, 0.3f, 0.3f, 0.3f, 0.3f };
	uint8_t y[] = { 1, 0, 0, 1, 0 };
	cs_binmetrics m = bin(p, y, 5);
	ck_assert_double_eq_tol(m.auc, 0.5, EPS);
	ck_assert_double_eq_tol(m.prauc, 0.4, EPS);
	ck_assert_double_eq_tol(m.pos_rate, 0.4, EPS);
	/* nothing reaches 0.5: no predicted positives, all undefined */
	ck_assert_double_eq_tol(m.precision, 0, EPS);
	ck_assert_double_eq_tol(m.recall, 0, EPS);
	ck_assert_double_eq_tol(m.f1, 0, EPS);
}
END_TEST

/*
 * By hand, four positives (P) and four negatives (N) in four tied groups:
 *
 *   score  0.9  0.8  0.5    0.2
 *   group  P    P N  P N N  P N
 *
 * AUC: average ranks from the bottom are 1.5 (0.2), 4 (0.5), 6.5 (0.8)
 * and 8 (0.9); the positives' rank sum is 8 + 6.5 + 4 + 1.5 = 20, so
 * U = 20 - 4*5/2 = 10 of 16 pairs and AUC = 0.625.
 * AP: each group gains recall 1/4; precision after the groups is 1/1,
 * 2/3, 3/6, 4/8, so AP = (1 + 2/3 + 1/2 + 1/2) / 4 = 2/3.
 * At 0.5: 3 TP, 3 FP, 1 FN: precision 1/2, recall 3/4, F1 0.6.
 * At 0.85: 1 TP: precision 1, recall 1/4, F1 0.4.
 * Shuffled, so the order of the input cannot matter.
 */
START_TEST(test_worked_ties)
{
	float p[] = { 0.5f, 0.2f, 0.8f, 0.5f, 0.9f, 0.2f, 0.5f, 0.8f };
	uint8_t y[] = { 0, 1, 0, 1, 1, 0, 0, 1 };
	float keep[8];
	memcpy(keep, p, sizeof p);
	cs_binmetrics m = bin(p, y, 8);
	ck_assert_int_eq(memcmp(keep, p, sizeof p), 0); /* sorted a copy */
	ck_assert_uint_eq(m.npos, 4);
	ck_assert_double_eq_tol(m.auc, 0.625, EPS);
	ck_assert_double_eq_tol(m.prauc, 2.0 / 3, EPS);
	ck_assert_double_eq_tol(m.threshold, 0.5, EPS);
	ck_assert_double_eq_tol(m.precision, 0.5, EPS);
	ck_assert_double_eq_tol(m.recall, 0.75, EPS);
	ck_assert_double_eq_tol(m.f1, 0.6, EPS);
	ck_assert_int_eq(cs_binmetrics_compute(p, y, 8, 0.85, &m, NULL), 0);
	ck_assert_double_eq_tol(m.threshold, 0.85, EPS);
	ck_assert_double_eq_tol(m.precision, 1, EPS);
	ck_assert_double_eq_tol(m.recall, 0.25, EPS);
	ck_assert_double_eq_tol(m.f1, 0.4, EPS);
	ck_assert_double_eq_tol(m.auc, 0.625, EPS);
}
END_TEST

START_TEST(test_logloss)
{
	float half[] = { 0.5f, 0.5f };
	uint8_t y01[] = { 0, 1 };
	ck_assert_double_eq_tol(bin(half, y01, 2).logloss, log(2), EPS);
	/* -log 0.75 (true class 1), -log 0.75 (true class 0), and two clipped */
	float p[] = { 0.75f, 0.25f, 0.0f, 1.0f };
	uint8_t y[] = { 1, 0, 1, 1 };
	double want = (-2 * log(0.75) - log(1e-7) - log(1 - 1e-7)) / 4;
	ck_assert_double_eq_tol(bin(p, y, 4).logloss, want, 1e-9);
	/* confident and right costs almost nothing */
	float sure[] = { 0.0f, 1.0f };
	ck_assert_double_eq_tol(bin(sure, y01, 2).logloss, 1e-7, 1e-12);
}
END_TEST

START_TEST(test_one_class)
{
	float p[] = { 0.1f, 0.6f, 0.7f };
	uint8_t neg[] = { 0, 0, 0 }, pos[] = { 1, 1, 1 };
	cs_binmetrics m = bin(p, neg, 3);
	ck_assert(isnan(m.auc));
	ck_assert(isnan(m.prauc));
	ck_assert_uint_eq(m.npos, 0);
	ck_assert_double_eq_tol(m.recall, 0, EPS);
	ck_assert_double_eq_tol(m.precision, 0, EPS);
	m = bin(p, pos, 3);
	ck_assert(isnan(m.auc));
	ck_assert_double_eq_tol(m.prauc, 1, EPS);
	ck_assert_double_eq_tol(m.pos_rate, 1, EPS);
	ck_assert_double_eq_tol(m.recall, 2.0 / 3, EPS);
}
END_TEST

/* AUC and AP against O(n^2) definitions on random scores with many ties. */
START_TEST(test_random_brute)
{
	enum { N = 500 };
	float p[N];
	uint8_t y[N];
	uint64_t x = 88172645463325252ULL;
	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < N; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			p[i] = (float)(x % 11) / 10; /* 0.0, 0.1, ..., 1.0 */
			/* positives lean high so the AUC is not near 0.5 */
			y[i] = (x >> 32) % 100 < 20 + 6 * (x % 11);
		}
		cs_binmetrics m = bin(p, y, N);
		double pairs = 0, wins = 0, ap = 0;
		uint64_t npos = 0;
		for (int i = 0; i < N; i++) {
			if (!y[i])
				continue;
			npos++;
			double above = 0, posabove = 0;
			for (int j = 0; j < N; j++) {
				if (!y[j]) {
					pairs++;
					wins += p[i] > p[j] ? 1 : p[i] == p[j] ? 0.5 : 0;
				}
				if (p[j] >= p[i]) {
					above++;
					posabove += y[j];
				}
			}
			ap += posabove / above; /* precision at this positive's score */
		}
		ck_assert_uint_eq(m.npos, npos);
		ck_assert(npos > 50 && npos < N - 50);
		ck_assert_double_eq_tol(m.auc, wins / pairs, 1e-12);
		ck_assert_double_eq_tol(m.prauc, ap / (double)npos, 1e-12);
		ck_assert(m.auc > 0.6);
	}
}
END_TEST

START_TEST(test_errors)
{
	float p[] = { 0.5f, 0.5f };
	uint8_t y[] = { 0, 1 };
	cs_binmetrics m;
	cs_error err;
	ck_assert_int_eq(cs_binmetrics_compute(p, y, 0, 0.5, &m, &err), -1);
	ck_assert_int_eq(err.code, CS_ERR_USAGE);
	uint8_t two[] = { 0, 2 };
	ck_assert_int_eq(cs_binmetrics_compute(p, two, 2, 0.5, &m, &err), -1);
	ck_assert_int_eq(err.code, CS_ERR_FORMAT);
	ck_assert_ptr_nonnull(strstr(err.msg, "label 2"));
	float bad[] = { 0.5f, NAN, -0.1f, 1.5f, INFINITY };
	for (int i = 1; i < 5; i++) {
		float q[] = { 0.5f, bad[i] };
		memset(&err, 0, sizeof err);
		ck_assert_int_eq(cs_binmetrics_compute(q, y, 2, 0.5, &m, &err), -1);
		ck_assert_int_eq(err.code, CS_ERR_FORMAT);
		ck_assert_ptr_nonnull(strstr(err.msg, "probability"));
	}
	/* NULL err is allowed */
	ck_assert_int_eq(cs_binmetrics_compute(p, two, 2, 0.5, &m, NULL), -1);
}
END_TEST

/* Text into a temporary file; its name into path (a PATH_MAX buffer). */
static void text_file(char *path, const char *text)
{
	snprintf(path, 4096, "%s/check_metrics.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (int)strlen(text));
	close(fd);
}

/* Scores as text: the metrics of the same values, and each bad line by
 * its file and number. */
START_TEST(test_read_scores)
{
	char path[4096];
	cs_binmetrics a, b;
	cs_error err = { 0 };
	float p[] = { 0.9f, 0.25f, 0.5f, 0.125f };
	uint8_t y[] = { 1, 0, 1, 0 };
	text_file(path, "0.9\t1\n0.25\t0\r\n0.5\t1\n0.125\t0");
	ck_assert_msg(cs_binmetrics_read(path, 0.5, &a, &err) == 0, "%s", err.msg);
	unlink(path);
	b = bin(p, y, 4);
	ck_assert_uint_eq(a.n, 4);
	ck_assert_uint_eq(a.npos, 2);
	ck_assert_double_eq(a.auc, b.auc);
	ck_assert_double_eq(a.logloss, b.logloss);
	ck_assert_double_eq(a.f1, b.f1);
	static const struct { const char *text, *msg; long line; int code; } bad[] = {
		{ "0.5\t1\n0.5 1\n", "expected 'probability<TAB>label'", 2, CS_ERR_FORMAT },
		{ "0.5\t1\n0.5\t2\n", "label is not 0 or 1", 2, CS_ERR_FORMAT },
		{ "0.5\t1x\n", "label is not 0 or 1", 1, CS_ERR_FORMAT },
		{ "1.5\t1\n", "probability 1.5 not in [0, 1]", 1, CS_ERR_FORMAT },
		{ "nan\t0\n", "not in [0, 1]", 1, CS_ERR_FORMAT },
		{ "", "", 0, CS_ERR_USAGE }, /* nothing to score */
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		text_file(path, bad[i].text);
		memset(&err, 0, sizeof err);
		ck_assert_int_eq(cs_binmetrics_read(path, 0.5, &a, &err), -1);
		unlink(path);
		ck_assert_int_eq(err.code, bad[i].code);
		ck_assert_str_eq(err.path, path);
		ck_assert_int_eq(err.line, bad[i].line);
		ck_assert_msg(strstr(err.msg, bad[i].msg), "case %zu: %s", i, err.msg);
	}
	ck_assert_int_eq(cs_binmetrics_read("/nonexistent/scores", 0.5, &a, &err), -1);
	ck_assert_int_eq(err.code, CS_ERR_IO);
}
END_TEST

/* More negatives asked for than there are items: every item once, soon
 * (it took 64 (n + 16) misses per history: cs-eval -n 1000000 hung). */
START_TEST(test_sampler_more_than_items)
{
	size_t V = 30, first = 3, n = 1u << 20;
	cs_error err = { 0 };
	cs_sampler *s = cs_sampler_new(V, first, NULL, &err);
	ck_assert_ptr_nonnull(s);
	uint32_t excl[30] = { 0 }, *out = malloc(n * sizeof *out);
	ck_assert_ptr_nonnull(out);
	cs_nn_rng rng;
	cs_nn_rng_seed(&rng, 7);
	for (uint32_t stamp = 1; stamp <= 200; stamp++) {
		excl[first] = stamp; /* as a target */
		ck_assert_uint_eq(cs_sampler_draw(s, &rng, n, excl, stamp, out), V - first - 1);
		for (size_t j = first; j < V; j++)
			ck_assert_uint_eq(excl[j], stamp);
	}
	free(out);
	cs_sampler_free(s);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("binary");
	tcase_add_test(tc, test_perfect);
	tcase_add_test(tc, test_reversed);
	tcase_add_test(tc, test_all_equal);
	tcase_add_test(tc, test_worked_ties);
	tcase_add_test(tc, test_logloss);
	tcase_add_test(tc, test_one_class);
	tcase_add_test(tc, test_random_brute);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_read_scores);
	suite_add_tcase(s, tc);
	tc = tcase_create("sampler");
	tcase_add_test(tc, test_sampler_more_than_items);
	suite_add_tcase(s, tc);
	return check_run(s);
}
