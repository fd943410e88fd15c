/*
 * score_x86.c - the SIMD kernels of score.c: AVX-512F in single precision,
 * and AVX512-BF16 with exact re-scoring. Each function carries its target
 * attribute, so the file builds with the default flags and the kernels
 * run only where cpu.h says the CPU has them.
 *
 * Register tile: 8 rows x 32 items, 16 accumulators. A unit's weights
 * (32 items x C: 8 KiB at C 64) stay in L1 while the rows stream past
 * from L2; the scores never leave the registers unless one reaches its
 * row's threshold (the K-th best so far), which after the first units is
 * rare, so selection costs one compare per 16 scores.
 *
 * bf16: vdpbf16ps multiplies pairs of bfloat16 and adds both products to
 * a single-precision lane. With h and w rounded to bfloat16 (relative
 * error 2^-8 each), approximate and exact scores of a row differ by at
 * most D = beta |h| max_j |w_j| + 2^-22 (|h| max_j |w_j| + max |bias|)
 * where beta = 2^-7 + 2^-16 + 2 C 2^-24 (the products' rounding, then
 * both sums' accumulation; |h.w| <= |h| |w|; the bias additions), times
 * 1.01. Let A be a lower bound of the K-th best approximate score of a
 * row (the heap's K-th best so far, or the seed; see score.c): K items
 * score at least A approximately, so exactly at least A - D, so the K-th
 * best exact score E >= A - D, and an item of the exact top K has an
 * approximate score >= E - D >= A - 2D. Every item whose approximate score
 * reaches A - 2D (2D is the row's margin) is kept as a candidate and, if
 * it still does at the end, re-scored exactly as the fp32 kernels do; the
 * top K of those is the exact top K.
 */
#include <math.h>
#include <string.h>
#include "amx.h"
#include "score_impl.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define TILE_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define DECL(i) __m512 a##i##0 = _mm512_setzero_ps(), a##i##1 = _mm512_setzero_ps();

/* Scores of row i of the tile reaching its threshold go to take(). */
#define OUT(i, take)                                                           \
	{                                                                      \
		cs__topk_row *row = &rows[r + i];                              \
		__m512 t = _mm512_set1_ps(row->thr);                           \
		__m512 s0 = _mm512_add_ps(a##i##0, b0);                        \
		__m512 s1 = _mm512_add_ps(a##i##1, b1);                        \
		uint32_t m = (uint32_t)_mm512_cmp_ps_mask(s0, t, _CMP_GE_OQ) | \
			     (uint32_t)_mm512_cmp_ps_mask(s1, t, _CMP_GE_OQ) << 16; \
		if (m) {                                                       \
			_mm512_store_ps(sc, s0);                               \
			_mm512_store_ps(sc + 16, s1);                          \
			take(s, row, sc, m, u * CS_SCORE_UNIT);                \
		}                                                              \
	}
#define OUT_FP32(i) OUT(i, cs__score_take)
#define OUT_BF16(i) OUT(i, take_approx)

__attribute__((target("avx512f")))
void cs__score_avx512(const cs_scorer *s, const float *h, size_t Mp,
		      size_t u0, size_t u1, cs__topk_row *rows)
{
	size_t C = s->C;
	float sc[CS_SCORE_UNIT] __attribute__((aligned(64)));
	for (size_t u = u0; u < u1; u++) {
		const float *w0 = s->wp + u * CS_SCORE_UNIT * C, *w1 = w0 + 16 * C;
		__m512 b0 = _mm512_load_ps(s->bias + u * CS_SCORE_UNIT);
		__m512 b1 = _mm512_load_ps(s->bias + u * CS_SCORE_UNIT + 16);
		for (size_t r = 0; r < Mp; r += CS_SCORE_R) {
			const float *hr = h + r * C;
			TILE_ROWS(DECL)
			for (size_t c = 0; c < C; c++) {
				__m512 x0 = _mm512_load_ps(w0 + c * 16);
				__m512 x1 = _mm512_load_ps(w1 + c * 16);
				__m512 y;
#define FMA(i)                                                   \
	y = _mm512_set1_ps(hr[i * C + c]);                       \
	a##i##0 = _mm512_fmadd_ps(y, x0, a##i##0);               \
	a##i##1 = _mm512_fmadd_ps(y, x1, a##i##1);
				TILE_ROWS(FMA)
#undef FMA
			}
			TILE_ROWS(OUT_FP32)
		}
	}
}

/* The kernel's threshold: A, the k-th best approximate score so far,
 * less the margin, rounded down; -inf while fewer than k. */
static float margin_thr(const cs__topk_row *row)
{
	double a = row->an == row->k && row->avals[0] > row->sthr ? row->avals[0] : row->sthr;
	if (a == -INFINITY)
		return -INFINITY;
	return (float)(a - row->margin - fabs(a) * 0x1p-22);
}

void cs__score_seeded(cs__topk_row *row)
{
	row->thr = margin_thr(row);
}

void cs__score_compact(const cs_scorer *s, cs__topk_row *row)
{
	float t = row->thr;
	size_t m = 0;
	for (size_t i = 0; i < row->nc; i++)
		if (row->cval[i] >= t) {
			row->cand[m] = row->cand[i];
			row->cval[m++] = row->cval[i];
		}
	row->nc = m;
	/* many within the margin: settle them now to make room */
	if (row->nc > CS_SCORE_CAND / 2)
		cs__score_rescore(s, row);
}

/* bf16: approximate scores sc (32) of unit base/32 that reached the margin. */
static void take_approx(const cs_scorer *s, cs__topk_row *row, const float *sc,
			uint32_t mask, size_t base)
{
	if (row->seeding) {
		cs__seed(row, sc, base);
		return;
	}
	for (; mask; mask &= mask - 1) {
		unsigned l = (unsigned)__builtin_ctz(mask);
		size_t j = base + l;
		if (sc[l] < row->thr || !cs__admissible(s, row, j))
			continue;
		cs__topk_push(row->avals, row->aids, &row->an, row->k, sc[l], (uint32_t)j);
		row->thr = margin_thr(row);
		if (row->nc == CS_SCORE_CAND)
			cs__score_compact(s, row);
		row->cand[row->nc] = (uint32_t)j;
		row->cval[row->nc++] = sc[l];
	}
}

__attribute__((target("avx512f,avx512bf16")))
void cs__score_bf16(const cs_scorer *s, const uint32_t *hb, size_t Mp,
		    size_t u0, size_t u1, cs__topk_row *rows)
{
	size_t C2 = s->C2;
	float sc[CS_SCORE_UNIT] __attribute__((aligned(64)));
	for (size_t u = u0; u < u1; u++) {
		const uint16_t *w0 = s->wb + u * CS_SCORE_UNIT * 2 * C2, *w1 = w0 + 32 * C2;
		__m512 b0 = _mm512_load_ps(s->bias + u * CS_SCORE_UNIT);
		__m512 b1 = _mm512_load_ps(s->bias + u * CS_SCORE_UNIT + 16);
		for (size_t r = 0; r < Mp; r += CS_SCORE_R) {
			const uint32_t *hr = hb + r * C2;
			TILE_ROWS(DECL)
			for (size_t q = 0; q < C2; q++) {
				__m512bh x0 = (__m512bh)_mm512_load_si512(w0 + q * 32);
				__m512bh x1 = (__m512bh)_mm512_load_si512(w1 + q * 32);
				__m512bh y;
#define DP(i)                                                        \
	y = (__m512bh)_mm512_set1_epi32((int)hr[i * C2 + q]);        \
	a##i##0 = _mm512_dpbf16_ps(a##i##0, y, x0);                  \
	a##i##1 = _mm512_dpbf16_ps(a##i##1, y, x1);
				TILE_ROWS(DP)
#undef DP
			}
			TILE_ROWS(OUT_BF16)
		}
	}
}

/*
 * AMX: 32 rows x 32 items a step, in tiles of 16 x 16 scores: C tiles
 * 0..3 (row half x item panel) += A tiles 4, 5 (16 rows x 16 channel
 * pairs) x B tiles 6, 7 (16 channel pairs x 16 items, pairs side by side:
 * a panel's 16 pairs of wb as they lie). Then each row's 32 scores are
 * compared with its threshold as in the other kernels.
 */
__attribute__((target("amx-tile,amx-bf16,avx512f")))
void cs__score_amx(const cs_scorer *s, const uint32_t *hb, size_t Mp,
		   size_t u0, size_t u1, cs__topk_row *rows)
{
	size_t C2 = s->C2, KB = C2 / 16, hs = C2 * sizeof *hb;
	cs_amx_tilecfg cfg;
	float buf[4][256] __attribute__((aligned(64)));
	float sc[CS_SCORE_UNIT] __attribute__((aligned(64)));
	cs_amx_tilecfg_init(&cfg);
	_tile_loadconfig(&cfg);
	for (size_t u = u0; u < u1; u++) {
		const uint16_t *w0 = s->wb + u * CS_SCORE_UNIT * 2 * C2, *w1 = w0 + 32 * C2;
		__m512 b0 = _mm512_load_ps(s->bias + u * CS_SCORE_UNIT);
		__m512 b1 = _mm512_load_ps(s->bias + u * CS_SCORE_UNIT + 16);
		for (size_t r0 = 0; r0 < Mp; r0 += CS_SCORE_R_AMX) {
			if (rows[r0].thr == INFINITY) /* padding from here on */
				break;
			_tile_zero(0);
			_tile_zero(1);
			_tile_zero(2);
			_tile_zero(3);
			for (size_t kb = 0; kb < KB; kb++) {
				_tile_loadd(4, hb + r0 * C2 + kb * 16, hs);
				_tile_loadd(5, hb + (r0 + 16) * C2 + kb * 16, hs);
				_tile_loadd(6, w0 + kb * 16 * 32, 64);
				_tile_loadd(7, w1 + kb * 16 * 32, 64);
				_tile_dpbf16ps(0, 4, 6);
				_tile_dpbf16ps(1, 4, 7);
				_tile_dpbf16ps(2, 5, 6);
				_tile_dpbf16ps(3, 5, 7);
			}
			_tile_stored(0, buf[0], 64);
			_tile_stored(1, buf[1], 64);
			_tile_stored(2, buf[2], 64);
			_tile_stored(3, buf[3], 64);
			for (size_t i = 0; i < CS_SCORE_R_AMX; i++) {
				cs__topk_row *row = &rows[r0 + i];
				const float *p0 = buf[i < 16 ? 0 : 2] + (i % 16) * 16;
				const float *p1 = buf[i < 16 ? 1 : 3] + (i % 16) * 16;
				__m512 t = _mm512_set1_ps(row->thr);
				__m512 s0 = _mm512_add_ps(_mm512_load_ps(p0), b0);
				__m512 s1 = _mm512_add_ps(_mm512_load_ps(p1), b1);
				uint32_t m = (uint32_t)_mm512_cmp_ps_mask(s0, t, _CMP_GE_OQ) |
					     (uint32_t)_mm512_cmp_ps_mask(s1, t, _CMP_GE_OQ) << 16;
				if (m) {
					_mm512_store_ps(sc, s0);
					_mm512_store_ps(sc + 16, s1);
					take_approx(s, row, sc, m, u * CS_SCORE_UNIT);
				}
			}
		}
	}
	_tile_release();
}

/* Exact scores of the candidates, eight chains at a time. */
__attribute__((target("avx512f,fma")))
void cs__score_rescore(const cs_scorer *s, cs__topk_row *row)
{
	size_t C = s->C, i = 0, nc = row->nc;
	const float *h = row->h;
	/* the rows are cold: ask for all of them before the first is needed */
	for (size_t q = 0; q < nc; q++)
		for (size_t c = 0; c < C; c += 16)
			__builtin_prefetch(s->w + row->cand[q] * C + c);
	for (; i < nc; i += 8) {
		size_t g = nc - i < 8 ? nc - i : 8;
		const float *w[8];
		float acc[8] = { 0 };
		for (size_t q = 0; q < 8; q++) {
			size_t j = row->cand[i + (q < g ? q : 0)];
			w[q] = s->w + j * C;
		}
		for (size_t c = 0; c < C; c++) {
#pragma GCC unroll 8
			for (size_t q = 0; q < 8; q++)
				acc[q] = fmaf(h[c], w[q][c], acc[q]);
		}
		for (size_t q = 0; q < g; q++) {
			uint32_t j = row->cand[i + q];
			cs__topk_push(row->vals, row->ids, &row->n, row->k,
				      acc[q] + s->bias[j], j);
		}
	}
	row->nc = 0;
}

#else /* not x86-64 with GNU C: the portable kernel only */

void cs__score_amx(const cs_scorer *s, const uint32_t *hb, size_t Mp,
		   size_t u0, size_t u1, cs__topk_row *rows) { }
void cs__score_avx512(const cs_scorer *s, const float *h, size_t Mp,
		      size_t u0, size_t u1, cs__topk_row *rows) { }
void cs__score_bf16(const cs_scorer *s, const uint32_t *hb, size_t Mp,
		    size_t u0, size_t u1, cs__topk_row *rows) { }
void cs__score_rescore(const cs_scorer *s, cs__topk_row *row) { }

#endif
