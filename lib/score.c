/*
 * score.c - top-K items fused with the output layer's scores (see
 * score.h): packing, kernel choice, threads, selection; the portable C
 * kernel. The SIMD kernels are in score_x86.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "amx.h"
#include "score_impl.h"

int cs_scorer_kernel_supported(const char *kernel)
{
	int k = cs_kernel_parse(kernel, NULL);
	return k >= 0 && cs_kernel_supported((cs_kernel)k);
}

/* The kernel for a name (NULL or auto: CS_KERNEL's, else auto), or -1. */
static int pick_kernel(const char *name, cs_error *err)
{
	int k = name ? cs_kernel_parse(name, err) : CS_KERNEL_AUTO;
	if (k == CS_KERNEL_AUTO)
		k = cs_cpu_kernel(err);
	if (k < 0)
		return -1;
	/*
	 * auto: AMX, else AVX512-BF16 (on a Zen 5, 1.3x avx512 on one thread
	 * and 1.6x on two, scripts/bench-score.c), else AVX-512F, else C.
	 * All give the same items and scores, so the choice is speed alone.
	 */
	if (k == CS_KERNEL_AUTO)
		return cs_kernel_supported(CS_KERNEL_AMX) ? CS_KERNEL_AMX
		       : cs_kernel_supported(CS_KERNEL_BF16) ? CS_KERNEL_BF16
		       : cs_kernel_supported(CS_KERNEL_AVX512) ? CS_KERNEL_AVX512 : CS_KERNEL_C;
	if (k == CS_KERNEL_FP32)
		return cs_kernel_supported(CS_KERNEL_AVX512) ? CS_KERNEL_AVX512 : CS_KERNEL_C;
	if (!cs_kernel_supported((cs_kernel)k))
		return cs_err(err, CS_ERR_USAGE, NULL, 0,
			      "kernel '%s' needs a CPU feature this one lacks "
			      "(try CS_KERNEL=fp32)", cs_kernel_name((cs_kernel)k));
	return k;
}

cs_scorer *cs_scorer_new(const float *w, const float *bias, size_t V, size_t C,
			 size_t first, const char *kernel, cs_error *err)
{
	int kern = pick_kernel(kernel, err);
	if (kern < 0)
		return NULL;
	cs_scorer *s = calloc(1, sizeof *s);
	if (!s)
		goto nomem;
	s->V = V;
	s->C = C;
	s->C2 = ((C + 1) / 2 + 15) / 16 * 16;
	s->first = first;
	s->kernel = (cs_kernel)kern;
	s->U = (V + CS_SCORE_UNIT - 1) / CS_SCORE_UNIT;
	s->w = w;
	s->bias = aligned_alloc(64, s->U * CS_SCORE_UNIT * sizeof *s->bias);
	if (!s->bias)
		goto nomem;
	for (size_t j = 0; j < s->U * CS_SCORE_UNIT; j++)
		s->bias[j] = j < V && j >= first ? bias[j] : -INFINITY;
	return s;
nomem:
	cs_scorer_free(s);
	cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory for the item scorer");
	return NULL;
}

/* The kernel's copy of the weights, made when a batch first needs it. */
static int pack(cs_scorer *s, cs_error *err)
{
	size_t V = s->V, C = s->C, Vp = s->U * CS_SCORE_UNIT;
	const float *w = s->w;
	int bf = s->kernel == CS_KERNEL_BF16 || s->kernel == CS_KERNEL_AMX;
	/* panels of 16 items: channel-major for fp32, pair-major for bf16 */
	if (!bf) {
		/* huge pages: filled at once, as the model's weights */
		if (!(s->wp = cs_malloc_huge(Vp * C * sizeof *s->wp + 64)))
			goto nomem;
		for (size_t j0 = 0; j0 < Vp; j0 += 16) {
			float *o = s->wp + j0 * C;
			for (size_t l = 0; l < 16; l++)
				for (size_t c = 0; c < C; c++)
					o[c * 16 + l] = j0 + l < V ? w[(j0 + l) * C + c] : 0.0f;
		}
	} else {
		size_t C2 = s->C2;
		if (!(s->wb = cs_malloc_huge(Vp * C2 * 2 * sizeof *s->wb + 64)))
			goto nomem;
		/* B^T of amx.h: panels of 16 items, C2 pair rows each */
		cs_amx_pack(s->wb, 2 * C2, Vp, w, C, C, V, 1);
		/* the largest norm and bias, for the error bound; four chains */
		for (size_t j = s->first; j < V; j++) {
			const float *x = w + j * C;
			double n4[4] = { 0 }, nrm;
			size_t c = 0;
			for (; c + 4 <= C; c += 4)
				for (int i = 0; i < 4; i++)
					n4[i] += (double)x[c + i] * x[c + i];
			for (; c < C; c++)
				n4[0] += (double)x[c] * x[c];
			nrm = sqrt(n4[0] + n4[1] + n4[2] + n4[3]);
			if (nrm > s->wmax)
				s->wmax = nrm;
			if (fabs(s->bias[j]) > s->bmax)
				s->bmax = fabs(s->bias[j]);
		}
		s->wmax *= 1.0 + 0x1p-40; /* the sums' own rounding, in double */
	}
	s->packed = 1;
	return 0;
nomem:
	return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory for the item scorer");
}

void cs_scorer_free(cs_scorer *s)
{
	if (!s)
		return;
	free(s->wp);
	free(s->bias);
	free(s->wb);
	free(s->scratch);
	free(s);
}

const char *cs_scorer_kernel(const cs_scorer *s)
{
	return cs_kernel_name(s->kernel);
}

/* One score as the kernels define it. */
static float score_one(const cs_scorer *s, const float *h, size_t j)
{
	const float *w = s->w + j * s->C;
	float acc = 0.0f;
	for (size_t c = 0; c < s->C; c++)
		acc = fmaf(h[c], w[c], acc);
	return acc + s->bias[j];
}

float cs_scorer_score(const cs_scorer *s, const float *h, size_t j)
{
	return score_one(s, h, j);
}

void cs_scorer_scores(const cs_scorer *s, const float *h, float *out)
{
	for (size_t j = 0; j < s->V; j++)
		out[j] = j < s->first ? -INFINITY : score_one(s, h, j);
}

void cs__score_take(const cs_scorer *s, cs__topk_row *row, const float *sc,
		    uint32_t mask, size_t base)
{
	if (row->seeding) {
		cs__seed(row, sc, base);
		return;
	}
	if (row->ranking) {
		for (; mask; mask &= mask - 1) {
			size_t j = base + (unsigned)__builtin_ctz(mask);
			row->n += j != row->target && cs__admissible(s, row, j);
		}
		return;
	}
	for (; mask; mask &= mask - 1) {
		unsigned l = (unsigned)__builtin_ctz(mask);
		size_t j = base + l;
		if (!cs__admissible(s, row, j))
			continue;
		cs__topk_push(row->vals, row->ids, &row->n, row->k, sc[l], (uint32_t)j);
	}
	row->thr = row->n == row->k && row->vals[0] > row->sthr ? row->vals[0] : row->sthr;
}

/* Quickselect, three ways (above the pivot | equal | below). */
float cs__kth_largest(float *v, size_t n, size_t k)
{
	size_t lo = 0, hi = n, want = k - 1;
	while (hi - lo > 1) {
		float pv = v[lo + (hi - lo) / 2], t;
		size_t lt = lo, i = lo, gt = hi;
		while (i < gt) {
			if (v[i] > pv) {
				t = v[lt]; v[lt++] = v[i]; v[i++] = t;
			} else if (v[i] < pv) {
				t = v[--gt]; v[gt] = v[i]; v[i] = t;
			} else {
				i++;
			}
		}
		if (want < lt)
			hi = lt;
		else if (want >= gt)
			lo = gt;
		else
			return pv;
	}
	return v[want];
}

/*
 * After the seeding pass over units u0 .. u0+G-1: a lower bound of the
 * row's k-th best score, the k-th best of the units' best scores (k
 * distinct items score at least that), leaving out units that hold an
 * item the row must skip.
 */
static void seed_done(cs__topk_row *row, size_t G)
{
	float v[CS_SCORE_SEED];
	size_t n = 0;
	for (size_t g = 0; g < G; g++) {
		size_t lo = (row->seed_u0 + g) * CS_SCORE_UNIT, a = 0, b = row->nseen;
		while (a < b) { /* the first seen item >= lo */
			size_t mid = (a + b) / 2;
			if (row->seen[mid] < lo)
				a = mid + 1;
			else
				b = mid;
		}
		if (a == row->nseen || row->seen[a] >= lo + CS_SCORE_UNIT)
			v[n++] = row->seed[g];
	}
	row->seeding = 0;
	row->sthr = n >= row->k ? cs__kth_largest(v, n, row->k) : -INFINITY;
	if (row->sthr != row->sthr) /* NaN scores: no bound */
		row->sthr = -INFINITY;
}

/*
 * A few rows before any packing (one history from the command line): the
 * scores straight from w, eight items on eight chains at a time. The FMA
 * clone makes fmaf one instruction.
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__GLIBC__)
__attribute__((target_clones("fma", "default")))
#endif
static void score_direct(const cs_scorer *s, const float *h, size_t M, size_t u0,
			 size_t u1, cs__topk_row *rows)
{
	size_t C = s->C, V = s->V;
	float sc[CS_SCORE_UNIT];
	for (size_t r = 0; r < M; r++) {
		const float *hr = h + r * C;
		for (size_t u = u0; u < u1; u++) {
			for (size_t j0 = u * CS_SCORE_UNIT; j0 < (u + 1) * CS_SCORE_UNIT; j0 += 8) {
				float acc[8] = { 0 };
				if (j0 + 8 <= V) {
					const float *w = s->w + j0 * C;
					for (size_t c = 0; c < C; c++) {
#pragma GCC unroll 8
						for (size_t q = 0; q < 8; q++)
							acc[q] = fmaf(hr[c], w[q * C + c], acc[q]);
					}
				} else {
					for (size_t q = 0; q < 8 && j0 + q < V; q++)
						for (size_t c = 0; c < C; c++)
							acc[q] = fmaf(hr[c], s->w[(j0 + q) * C + c], acc[q]);
				}
				for (size_t q = 0; q < 8; q++)
					sc[j0 % CS_SCORE_UNIT + q] = acc[q] + s->bias[j0 + q];
			}
			uint32_t mask = 0;
			for (size_t l = 0; l < CS_SCORE_UNIT; l++)
				mask |= (uint32_t)(sc[l] >= rows[r].thr) << l;
			if (mask)
				cs__score_take(s, &rows[r], sc, mask, u * CS_SCORE_UNIT);
		}
	}
}

/* The portable kernel: one row and unit at a time. */
static void score_c(const cs_scorer *s, const float *h, size_t M, size_t u0,
		    size_t u1, cs__topk_row *rows)
{
	size_t C = s->C;
	float sc[CS_SCORE_UNIT];
	for (size_t u = u0; u < u1; u++) {
		const float *w = s->wp + u * CS_SCORE_UNIT * C;
		const float *b = s->bias + u * CS_SCORE_UNIT;
		for (size_t r = 0; r < M; r++) {
			const float *hr = h + r * C;
			uint32_t mask = 0;
			for (size_t l = 0; l < CS_SCORE_UNIT; l++) {
				const float *wl = w + (l / 16) * 16 * C + l % 16;
				float acc = 0.0f;
				for (size_t c = 0; c < C; c++)
					acc = fmaf(hr[c], wl[c * 16], acc);
				sc[l] = acc + b[l];
				mask |= (uint32_t)(sc[l] >= rows[r].thr) << l;
			}
			if (mask)
				cs__score_take(s, &rows[r], sc, mask, u * CS_SCORE_UNIT);
		}
	}
}

/* Heap sort of a heap of n: best first. */
static void heap_sort(float *vals, uint32_t *ids, size_t n)
{
	for (size_t e = n; e > 1; e--) {
		float tv = vals[0]; vals[0] = vals[e - 1]; vals[e - 1] = tv;
		uint32_t ti = ids[0]; ids[0] = ids[e - 1]; ids[e - 1] = ti;
		cs__sift_down(vals, ids, e - 1, 0);
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* Carve n bytes, 64-aligned, from *p. */
static void *carve(char **p, size_t n)
{
	void *r = *p;
	*p += (n + 63) & ~(size_t)63;
	return r;
}

/* The scorer's scratch, at least need bytes. */
static int scratch(cs_scorer *s, size_t need, cs_error *err)
{
	if (need <= s->scratch_cap)
		return 0;
	free(s->scratch);
	s->scratch_cap = 0;
	if (!(s->scratch = aligned_alloc(64, (need + 63) & ~(size_t)63)))
		return cs_err(err, CS_ERR_NOMEM, NULL, 0, "out of memory for the item scorer");
	s->scratch_cap = need;
	return 0;
}

/*
 * The threads that score M rows: the OpenMP threads, at most one a unit
 * and one per CS_SCORE_WORK multiply-adds. A thread woken for less saves
 * little, and after each loop libgomp's threads spin for milliseconds
 * (unless OMP_WAIT_POLICY=PASSIVE) on cores that a service's client needs:
 * on two cores, one history at a time over 54,542 items answered in 1.5 ms
 * at p90 on one thread, 7 ms on two.
 */
#define CS_SCORE_WORK (4.0 * 1024 * 1024)
static size_t score_threads(const cs_scorer *s, size_t M)
{
	size_t T = 1;
#ifdef _OPENMP
	T = (size_t)omp_get_max_threads();
#endif
	double work = (double)M * (s->V > s->first ? s->V - s->first : 0) * s->C;
	if (work < T * CS_SCORE_WORK)
		T = work < CS_SCORE_WORK ? 1 : (size_t)(work / CS_SCORE_WORK);
	return T < s->U ? T : s->U;
}

/* Sorted copies of the seen lists of rows 0 .. M-1 into ss. */
static void sort_seen(uint32_t *ss, size_t M, const size_t *seen_off, const uint32_t *seen)
{
	memcpy(ss, seen + seen_off[0], (seen_off[M] - seen_off[0]) * sizeof *ss);
	for (size_t r = 0; r < M; r++)
		qsort(ss + seen_off[r] - seen_off[0], seen_off[r + 1] - seen_off[r],
		      sizeof *ss, cmp_u32);
}

int cs_scorer_topk(cs_scorer *s, const float *h, size_t M, size_t k,
		   const size_t *seen_off, const uint32_t *seen, uint32_t *ids,
		   float *vals, size_t *n, cs_error *err)
{
	/* a few rows straight from w, until a service fed one at a time has
	 * had enough of them for packing to pay (on 54,542 items at C 64,
	 * 0.7 ms a row saved against 4 ms to pack, once) */
	int direct = M < CS_SCORE_DIRECT && !s->packed && s->direct < CS_SCORE_DIRECT_ALL;
	if (direct)
		s->direct += M;
	int bf = !direct && (s->kernel == CS_KERNEL_BF16 || s->kernel == CS_KERNEL_AMX);
	size_t C = s->C, C2 = s->C2;
	size_t R = s->kernel == CS_KERNEL_AMX ? CS_SCORE_R_AMX : CS_SCORE_R;
	size_t Mp = (M + R - 1) / R * R;
	size_t kk = s->V > s->first ? s->V - s->first : 0;
	kk = k < kk ? k : kk;
	if (M == 0)
		return 0;
	if (kk == 0) {
		memset(n, 0, M * sizeof *n);
		return 0;
	}
	if (!direct && !s->packed && pack(s, err) < 0)
		return -1;
	size_t T = score_threads(s, M);
	size_t nseen = seen && seen_off ? seen_off[M] - seen_off[0] : 0;
	size_t need = 64 * 8 + Mp * C * sizeof(float) + Mp * C2 * sizeof(uint32_t) +
		      nseen * sizeof(uint32_t) + T * Mp * sizeof(cs__topk_row) +
		      T * Mp * kk * (sizeof(float) + sizeof(uint32_t)) * (bf ? 2 : 1) +
		      (bf ? T * Mp * CS_SCORE_CAND * 2 * sizeof(uint32_t) : 0) +
		      T * Mp * CS_SCORE_SEED * sizeof(float) + 64 * 8;
	if (scratch(s, need, err) < 0)
		return -1;
	char *p = s->scratch;
	float *hp = carve(&p, Mp * C * sizeof *hp);
	uint32_t *hb = carve(&p, Mp * C2 * sizeof *hb);
	uint32_t *ss = carve(&p, nseen * sizeof *ss);
	cs__topk_row *rows = carve(&p, T * Mp * sizeof *rows);
	float *hv = carve(&p, T * Mp * kk * sizeof *hv);
	uint32_t *hi = carve(&p, T * Mp * kk * sizeof *hi);
	float *av = bf ? carve(&p, T * Mp * kk * sizeof *av) : NULL;
	uint32_t *ai = bf ? carve(&p, T * Mp * kk * sizeof *ai) : NULL;
	float *seed = carve(&p, T * Mp * CS_SCORE_SEED * sizeof *seed);
	uint32_t *cand = bf ? carve(&p, T * Mp * CS_SCORE_CAND * sizeof *cand) : NULL;
	float *cval = bf ? carve(&p, T * Mp * CS_SCORE_CAND * sizeof *cval) : NULL;

	/* rows padded with zeros to a multiple of R; seen lists sorted */
	memcpy(hp, h, M * C * sizeof *hp);
	memset(hp + M * C, 0, (Mp - M) * C * sizeof *hp);
	if (bf)
		for (size_t r = 0; r < Mp; r++)
			for (size_t q = 0; q < C2; q++) {
				float lo = 2 * q < C ? hp[r * C + 2 * q] : 0.0f;
				float hi2 = 2 * q + 1 < C ? hp[r * C + 2 * q + 1] : 0.0f;
				hb[r * C2 + q] = (uint32_t)cs_bf16(lo) |
						 (uint32_t)cs_bf16(hi2) << 16;
			}
	if (nseen)
		sort_seen(ss, M, seen_off, seen);
	for (size_t t = 0; t < T; t++)
		for (size_t r = 0; r < Mp; r++) {
			cs__topk_row *row = &rows[t * Mp + r];
			size_t o = (t * Mp + r) * kk;
			memset(row, 0, sizeof *row);
			row->vals = hv + o;
			row->ids = hi + o;
			row->k = kk;
			row->h = hp + r * C;
			row->thr = r < M ? -INFINITY : INFINITY;
			row->sthr = -INFINITY;
			row->seed = seed + (t * Mp + r) * CS_SCORE_SEED;
			if (nseen && r < M) {
				row->seen = ss + seen_off[r] - seen_off[0];
				row->nseen = seen_off[r + 1] - seen_off[r];
			}
			if (bf) {
				row->cand = cand + (t * Mp + r) * CS_SCORE_CAND;
				row->cval = cval + (t * Mp + r) * CS_SCORE_CAND;
				row->avals = av + o;
				row->aids = ai + o;
				/* |approximate - exact| <= D (see score_x86.c) */
				double hn = 0;
				for (size_t c = 0; c < C; c++)
					hn += (double)row->h[c] * row->h[c];
				hn = sqrt(hn) * s->wmax;
				double beta = 0x1p-7 + 0x1p-16 + 2.0 * (double)(2 * C2) * 0x1p-24;
				double D = 1.01 * beta * hn + 0x1p-22 * (hn + s->bmax) + 1e-30;
				row->margin = 2 * D;
			}
		}

	/* chunks of at most 4G units, at least four a thread */
	size_t chunk = (s->U + 4 * T - 1) / (4 * T);
	chunk = chunk < 4 * CS_SCORE_SEED ? chunk : 4 * CS_SCORE_SEED;
	size_t nch = (s->U + chunk - 1) / chunk;
	#pragma omp parallel num_threads((int)T)
	{
		size_t t = 0;
#ifdef _OPENMP
		t = (size_t)omp_get_thread_num();
#endif
		cs__topk_row *rt = rows + t * Mp;
		/*
		 * Seeding: the first G units a thread takes run once with every
		 * score handed over, each row keeping its units' best, so that
		 * the threshold starts near the k-th best rather than at -inf
		 * and far fewer scores reach the heaps; then all the units as
		 * usual. The units go in chunks to whichever thread is free (a
		 * shared machine may stall one), each thread with its own heaps.
		 */
		size_t G = CS_SCORE_SEED;
		int first_chunk = 1;
		#pragma omp for schedule(dynamic, 1) nowait
		for (size_t ch = 0; ch < nch; ch++) {
			size_t u0 = ch * chunk, u1 = u0 + chunk < s->U ? u0 + chunk : s->U;
			int seeding = first_chunk && !direct && kk <= G && u1 - u0 >= 4 * G;
			first_chunk = 0;
			for (int pass = !seeding; pass < 2; pass++) {
				size_t e = pass ? u1 : u0 + G;
				for (size_t r = 0; pass == 0 && r < M; r++) {
					rt[r].seeding = 1;
					rt[r].seed_u0 = u0;
					for (size_t g = 0; g < G; g++)
						rt[r].seed[g] = -INFINITY;
				}
				if (direct)
					score_direct(s, hp, M, u0, e, rt);
				else if (s->kernel == CS_KERNEL_AVX512)
					cs__score_avx512(s, hp, Mp, u0, e, rt);
				else if (s->kernel == CS_KERNEL_AMX)
					cs__score_amx(s, hb, Mp, u0, e, rt);
				else if (s->kernel == CS_KERNEL_BF16)
					cs__score_bf16(s, hb, Mp, u0, e, rt);
				else
					score_c(s, hp, Mp, u0, e, rt);
				for (size_t r = 0; pass == 0 && r < M; r++) {
					seed_done(&rt[r], G);
					rt[r].thr = rt[r].sthr;
					if (bf)
						cs__score_seeded(&rt[r]);
				}
			}
		}
		for (size_t r = 0; bf && r < M; r++) {
			cs__score_compact(s, &rt[r]);
			cs__score_rescore(s, &rt[r]);
		}
	}

	/* merge each row's heaps, then best first */
	for (size_t r = 0; r < M; r++) {
		float *v = vals + r * k;
		uint32_t *id = ids + r * k;
		size_t got = 0;
		for (size_t t = 0; t < T; t++) {
			const cs__topk_row *row = &rows[t * Mp + r];
			for (size_t i = 0; i < row->n; i++)
				cs__topk_push(v, id, &got, kk, row->vals[i], row->ids[i]);
		}
		if (got < kk)
			for (size_t i = got / 2; i-- > 0;)
				cs__sift_down(v, id, got, i);
		heap_sort(v, id, got);
		n[r] = got;
	}
	return 0;
}

int cs_scorer_rank(cs_scorer *s, const float *h, size_t M, const uint32_t *target,
		   const size_t *seen_off, const uint32_t *seen, size_t *rank,
		   cs_error *err)
{
	if (s->kernel != CS_KERNEL_AVX512 && s->kernel != CS_KERNEL_C)
		return cs_err(err, CS_ERR_USAGE, NULL, 0,
			      "ranks are counted by the fp32 kernels, not '%s'",
			      cs_kernel_name(s->kernel));
	if (M == 0)
		return 0;
	if (!s->packed && pack(s, err) < 0)
		return -1;
	size_t C = s->C, Mp = (M + CS_SCORE_R - 1) / CS_SCORE_R * CS_SCORE_R;
	size_t T = score_threads(s, M);
	size_t nseen = seen && seen_off ? seen_off[M] - seen_off[0] : 0;
	size_t need = Mp * C * sizeof(float) + nseen * sizeof(uint32_t) +
		      T * Mp * sizeof(cs__topk_row) + 64 * 3;
	if (scratch(s, need, err) < 0)
		return -1;
	char *p = s->scratch;
	float *hp = carve(&p, Mp * C * sizeof *hp);
	uint32_t *ss = carve(&p, nseen * sizeof *ss);
	cs__topk_row *rows = carve(&p, T * Mp * sizeof *rows);
	memcpy(hp, h, M * C * sizeof *hp);
	memset(hp + M * C, 0, (Mp - M) * C * sizeof *hp);
	if (nseen)
		sort_seen(ss, M, seen_off, seen);
	/* each row's threshold is its target's score: the kernels hand over
	 * exactly the items that score at least as high */
	for (size_t t = 0; t < T; t++)
		for (size_t r = 0; r < Mp; r++) {
			cs__topk_row *row = &rows[t * Mp + r];
			memset(row, 0, sizeof *row);
			row->ranking = 1;
			row->h = hp + r * C;
			row->sthr = -INFINITY;
			row->thr = INFINITY; /* padding: nothing */
			if (r < M) {
				row->target = target[r];
				row->thr = target[r] >= s->first && target[r] < s->V ?
					   score_one(s, h + r * C, target[r]) : INFINITY;
			}
			if (nseen && r < M) {
				row->seen = ss + seen_off[r] - seen_off[0];
				row->nseen = seen_off[r + 1] - seen_off[r];
			}
		}
	size_t chunk = (s->U + 4 * T - 1) / (4 * T);
	chunk = chunk < 4 * CS_SCORE_SEED ? chunk : 4 * CS_SCORE_SEED;
	size_t nch = (s->U + chunk - 1) / chunk;
	#pragma omp parallel num_threads((int)T)
	{
		size_t t = 0;
#ifdef _OPENMP
		t = (size_t)omp_get_thread_num();
#endif
		#pragma omp for schedule(dynamic, 1) nowait
		for (size_t ch = 0; ch < nch; ch++) {
			size_t u0 = ch * chunk, u1 = u0 + chunk < s->U ? u0 + chunk : s->U;
			if (s->kernel == CS_KERNEL_AVX512)
				cs__score_avx512(s, hp, Mp, u0, u1, rows + t * Mp);
			else
				score_c(s, hp, Mp, u0, u1, rows + t * Mp);
		}
	}
	for (size_t r = 0; r < M; r++) {
		rank[r] = 0;
		for (size_t t = 0; t < T; t++)
			rank[r] += rows[t * Mp + r].n;
	}
	return 0;
}

size_t cs_topk(const float *score, size_t V, size_t first, size_t k,
	       const uint32_t *excl, uint32_t stamp, uint32_t *ids, float *vals)
{
	size_t n = 0, j = first;
	if (!excl) {
		/* Once the heap is full, skip blocks whose best is below its worst. */
		for (; j < V && n < k; j++)
			cs__topk_push(vals, ids, &n, k, score[j], (uint32_t)j);
		for (; j + 16 <= V; j += 16) {
			float mx = score[j];
			for (size_t i = 1; i < 16; i++)
				mx = score[j + i] > mx ? score[j + i] : mx;
			if (mx < vals[0])
				continue;
			for (size_t i = 0; i < 16; i++)
				cs__topk_push(vals, ids, &n, k, score[j + i], (uint32_t)(j + i));
		}
	}
	for (; j < V; j++)
		if (!excl || excl[j] != stamp)
			cs__topk_push(vals, ids, &n, k, score[j], (uint32_t)j);
	if (n < k)
		for (size_t i = n / 2; i-- > 0;)
			cs__sift_down(vals, ids, n, i);
	heap_sort(vals, ids, n);
	return n;
}
