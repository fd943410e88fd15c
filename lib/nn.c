/*
 * nn.c - layers of the model, forward and backward (see nn.h for the
 * legend of letters and the conventions).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "amx.h"
#include "blas.h"
#include "cpu.h"
#include "nn.h"

/* ------------------------------------------------------------ exp */

#define GELU_K 0.7978845608028654f /* sqrt(2 / pi) */

/* The exp-bound loops: SSE2 (the x86-64 baseline, or any GCC target) ... */
#define W 4
#define SIMD_SUFFIX _w4
#define SIMD_ATTR
#include "nn_simd.h"
#undef W
#undef SIMD_SUFFIX
#undef SIMD_ATTR

/* ... and AVX2 or AVX-512 where the CPU has it, chosen at run time. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define W 8
#define SIMD_SUFFIX _w8
#define SIMD_ATTR __attribute__((target("avx2")))
#include "nn_simd.h"
#undef W
#undef SIMD_SUFFIX
#undef SIMD_ATTR
#define W 16
#define SIMD_SUFFIX _w16
#define SIMD_ATTR __attribute__((target("avx512f,avx512dq")))
#include "nn_simd.h"
#undef W
#undef SIMD_SUFFIX
#undef SIMD_ATTR

static int simd_best = 1;

/* 0: SSE2, 1: AVX2, 2: AVX-512 */
static int wide(void)
{
	if (!simd_best)
		return 0;
	return cs_cpu_has(CS_CPU_AVX512F | CS_CPU_AVX512DQ) ? 2 : cs_cpu_has(CS_CPU_AVX2);
}

void cs_nn_simd(int best)
{
	simd_best = best;
}
#define DISPATCH(name, ...) \
	(wide() == 2 ? name##_w16(__VA_ARGS__) : wide() ? name##_w8(__VA_ARGS__) \
		     : name##_w4(__VA_ARGS__))
#else
#define DISPATCH(name, ...) name##_w4(__VA_ARGS__)
void cs_nn_simd(int best)
{
	(void)best;
}
#endif

/*
 * The elementwise loops run in parallel over fixed chunks of PAR_CHUNK
 * values (the row-wise ones over rows) where there are at least PAR_MIN
 * values: each value is computed the same way whichever thread takes it,
 * so the results do not depend on the thread count.
 */
#define PAR_MIN ((size_t)1 << 16)
#define PAR_CHUNK ((size_t)1 << 14)
#define PAR_FOR(n, i0, i1, body)                                                        \
	do {                                                                             \
		size_t par_n_ = (n), par_k_ = (par_n_ + PAR_CHUNK - 1) / PAR_CHUNK;      \
		_Pragma("omp parallel for schedule(static) if (par_n_ >= PAR_MIN)")     \
		for (size_t par_c_ = 0; par_c_ < par_k_; par_c_++) {                     \
			size_t i0 = par_c_ * PAR_CHUNK;                                  \
			size_t i1 = par_n_ - i0 < PAR_CHUNK ? par_n_ : i0 + PAR_CHUNK;   \
			body;                                                            \
		}                                                                        \
	} while (0)

float cs_absmax(const float *x, size_t n)
{
	int32_t m[16] = { 0 }, r = 0; /* 16 lanes: the inner loop becomes vector code */
	size_t i = 0;
	for (; i + 16 <= n; i += 16)
		for (int l = 0; l < 16; l++) {
			int32_t b;
			memcpy(&b, x + i + l, 4);
			b &= 0x7fffffff;
			m[l] = b > m[l] ? b : m[l];
		}
	for (; i < n; i++) {
		int32_t b;
		memcpy(&b, x + i, 4);
		b &= 0x7fffffff;
		r = b > r ? b : r;
	}
	for (int l = 0; l < 16; l++)
		r = m[l] > r ? m[l] : r;
	float f;
	memcpy(&f, &r, 4);
	return f;
}

void cs_nn_expf(float *y, const float *x, size_t n)
{
	DISPATCH(exp_n, y, x, n);
}

/* ------------------------------------------------------------ embedding */

void cs_embed_forward(float *out, const uint32_t *tok, const uint32_t *pos,
		      const float *wte, const float *wpe, size_t N, size_t C)
{
	for (size_t i = 0; i < N; i++) {
		const float *we = wte + (size_t)tok[i] * C;
		const float *wp = wpe + (size_t)pos[i] * C;
		float *o = out + i * C;
		for (size_t c = 0; c < C; c++)
			o[c] = we[c] + wp[c];
	}
}

void cs_embed_backward(float *dwte, float *dwpe, const float *dout,
		       const uint32_t *tok, const uint32_t *pos, size_t N,
		       size_t C)
{
	for (size_t i = 0; i < N; i++) {
		float *dwe = dwte + (size_t)tok[i] * C;
		float *dwp = dwpe + (size_t)pos[i] * C;
		const float *d = dout + i * C;
		for (size_t c = 0; c < C; c++) {
			dwe[c] += d[c];
			dwp[c] += d[c];
		}
	}
}

/* ------------------------------------------------------------ layernorm */

/*
 * Parameter gradients summed over rows: in row order for each column, as
 * the plain loop, so the sums are the same bits; 16 columns at a time.
 * On one thread: the loop is bound by memory, and splitting the columns
 * between two threads made it slower.
 * dw[c] += sum_i (inp[i][c] - mean[i]) rstd[i] dout[i][c] when inp (the
 * LayerNorm's weight), and db[c] += sum_i dout[i][c] when db (any bias).
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__GLIBC__)
__attribute__((target_clones("avx512f", "default")))
#endif
static void colsums(float *dw, float *db, const float *dout, const float *inp,
		    const float *mean, const float *rstd, size_t N, size_t C)
{
	typedef float v16 __attribute__((vector_size(64)));
	size_t nb = (C + 15) / 16;
	for (size_t k = 0; k < nb; k++) {
		size_t c0 = k * 16;
		if (c0 + 16 > C) { /* a last, partial block */
			for (size_t i = 0; i < N; i++) {
				const float *d = dout + i * C;
				for (size_t c = c0; c < C; c++) {
					if (dw)
						dw[c] += (inp[i * C + c] - mean[i]) * rstd[i] * d[c];
					if (db)
						db[c] += d[c];
				}
			}
			continue;
		}
		v16 w = { 0 }, b = { 0 }, x, d;
		if (dw)
			memcpy(&w, dw + c0, sizeof w);
		if (db)
			memcpy(&b, db + c0, sizeof b);
		for (size_t i = 0; i < N; i++) {
			memcpy(&d, dout + i * C + c0, sizeof d);
			if (dw) {
				memcpy(&x, inp + i * C + c0, sizeof x);
				w += (x - mean[i]) * rstd[i] * d;
			}
			b += d;
		}
		if (dw)
			memcpy(dw + c0, &w, sizeof w);
		if (db)
			memcpy(db + c0, &b, sizeof b);
	}
}

/* An AVX-512 build beside the baseline one, chosen at load (ifunc). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__GLIBC__)
__attribute__((target_clones("avx512f", "default")))
#endif
void cs_layernorm_forward(float *out, float *mean, float *rstd,
			  const float *inp, const float *w, const float *b,
			  size_t N, size_t C)
{
	/* rows in parallel where there are many values */
	#pragma omp parallel for schedule(static) if (N * C >= PAR_MIN)
	for (size_t i = 0; i < N; i++) {
		/* restrict: out never overlaps the others */
		const float *restrict x = inp + i * C;
		const float *restrict wr = w, *restrict br = b;
		float *restrict o = out + i * C;
		/* sums on eight chains: a dependent chain of doubles was the cost */
		double m8[8] = { 0 }, v8[8] = { 0 }, m = 0.0, v = 0.0;
		size_t c8 = C / 8 * 8;
		for (size_t c = 0; c < c8; c += 8)
			for (size_t k = 0; k < 8; k++)
				m8[k] += x[c + k];
		for (size_t c = c8; c < C; c++)
			m += x[c];
		m += ((m8[0] + m8[1]) + (m8[2] + m8[3])) + ((m8[4] + m8[5]) + (m8[6] + m8[7]));
		m /= (double)C;
		for (size_t c = 0; c < c8; c += 8)
			for (size_t k = 0; k < 8; k++)
				v8[k] += (x[c + k] - m) * (x[c + k] - m);
		for (size_t c = c8; c < C; c++)
			v += (x[c] - m) * (x[c] - m);
		v += ((v8[0] + v8[1]) + (v8[2] + v8[3])) + ((v8[4] + v8[5]) + (v8[6] + v8[7]));
		v /= (double)C;
		float s = (float)(1.0 / sqrt(v + CS_LN_EPS));
		float mf = (float)m;
		size_t c = 0; /* 16 lanes at a time: -O2 leaves this loop scalar */
		typedef float v16 __attribute__((vector_size(64)));
		for (; c + 16 <= C; c += 16) {
			v16 xv, wv, bv;
			memcpy(&xv, x + c, sizeof xv);
			memcpy(&wv, wr + c, sizeof wv);
			memcpy(&bv, br + c, sizeof bv);
			xv = (xv - mf) * s * wv + bv;
			memcpy(o + c, &xv, sizeof xv);
		}
		for (; c < C; c++)
			o[c] = (x[c] - mf) * s * wr[c] + br[c];
		mean[i] = mf;
		rstd[i] = s;
	}
}

/*
 * With n = (x - mean) rstd and y = n w + b:
 * dx = rstd (g - mean(g) - n mean(g n)), g = dy w.
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__GLIBC__)
__attribute__((target_clones("avx512f", "default")))
#endif
void cs_layernorm_backward(float *dinp, float *dw, float *db,
			   const float *dout, const float *inp, const float *w,
			   const float *mean, const float *rstd, size_t N,
			   size_t C)
{
	/* dx by rows in parallel; dw and db after, summed in row order */
	#pragma omp parallel for schedule(static) if (N * C >= PAR_MIN)
	for (size_t i = 0; i < N; i++) {
		const float *x = inp + i * C, *d = dout + i * C;
		float *dx = dinp + i * C;
		float m = mean[i], s = rstd[i];
		/* sums on eight chains, as the forward's */
		double gm8[8] = { 0 }, gnm8[8] = { 0 }, gm = 0.0, gnm = 0.0;
		size_t c8 = C / 8 * 8;
		for (size_t c = 0; c < c8; c += 8)
			for (size_t k = 0; k < 8; k++) {
				float n = (x[c + k] - m) * s;
				float g = d[c + k] * w[c + k];
				gm8[k] += g;
				gnm8[k] += g * n;
			}
		for (size_t c = c8; c < C; c++) {
			float n = (x[c] - m) * s;
			float g = d[c] * w[c];
			gm += g;
			gnm += g * n;
		}
		gm += ((gm8[0] + gm8[1]) + (gm8[2] + gm8[3])) + ((gm8[4] + gm8[5]) + (gm8[6] + gm8[7]));
		gnm += ((gnm8[0] + gnm8[1]) + (gnm8[2] + gnm8[3])) +
		       ((gnm8[4] + gnm8[5]) + (gnm8[6] + gnm8[7]));
		float gmf = (float)(gm / (double)C);
		float gnmf = (float)(gnm / (double)C);
		size_t c = 0; /* 16 lanes at a time: -O2 leaves this loop scalar */
		typedef float v16 __attribute__((vector_size(64)));
		for (; c + 16 <= C; c += 16) {
			v16 xv, dv, wv, dxv;
			memcpy(&xv, x + c, sizeof xv);
			memcpy(&dv, d + c, sizeof dv);
			memcpy(&wv, w + c, sizeof wv);
			memcpy(&dxv, dx + c, sizeof dxv);
			v16 n = (xv - m) * s;
			dxv += s * (dv * wv - gmf - n * gnmf);
			memcpy(dx + c, &dxv, sizeof dxv);
		}
		for (; c < C; c++) {
			float n = (x[c] - m) * s;
			dx[c] += s * (d[c] * w[c] - gmf - n * gnmf);
		}
	}
	if (dw || db)
		colsums(dw, db, dout, inp, mean, rstd, N, C);
}

/* ------------------------------------------------------------ linear */

void cs_linear_forward(float *out, const float *inp, const float *w,
		       const float *b, size_t N, size_t C, size_t OC)
{
	if (b) {
		for (size_t i = 0; i < N; i++)
			memcpy(out + i * OC, b, OC * sizeof *b);
	}
	/* (N, C) @ (OC, C)^T */
	cs_sgemm(0, 1, N, OC, C, 1.0f, inp, C, w, C, b ? 1.0f : 0.0f, out,
		 OC);
}

/* beta 1: dinp is added to; 0: written */
static void linear_backward(float *dinp, float *dw, float *db, const float *dout,
			    const float *inp, const float *w, size_t N, size_t C,
			    size_t OC, float beta)
{
	/* dinp (N, C) = beta dinp + dout (N, OC) @ w (OC, C) */
	if (dinp)
		cs_sgemm(0, 0, N, C, OC, 1.0f, dout, OC, w, C, beta, dinp, C);
	/* dw (OC, C) += dout^T (OC, N) @ inp (N, C) */
	if (dw)
		cs_sgemm(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw, C);
	if (db)
		colsums(NULL, db, dout, NULL, NULL, NULL, N, OC);
}

void cs_linear_backward(float *dinp, float *dw, float *db, const float *dout,
			const float *inp, const float *w, size_t N, size_t C,
			size_t OC)
{
	linear_backward(dinp, dw, db, dout, inp, w, N, C, OC, 1.0f);
}

void cs_linear_backward_set(float *dinp, float *dw, float *db, const float *dout,
			    const float *inp, const float *w, size_t N, size_t C,
			    size_t OC)
{
	linear_backward(dinp, dw, db, dout, inp, w, N, C, OC, 0.0f);
}

/* ------------------------------------------------------------ attention */

size_t cs_attention_size(const size_t *off, size_t B, size_t NH)
{
	size_t a = 0;
	for (size_t b = 0; b < B; b++) {
		size_t T = off[b + 1] - off[b];
		a += NH * T * T;
	}
	return a;
}

/*
 * Causal attention runs by row blocks of ATT_RB queries: the scores of
 * block [i0, i1) against keys [0, i1) only, so the products and the
 * softmax skip the upper triangle (about half the work at length 200),
 * where the weights are 0. The blocks' weights past i1 are never written.
 */
#define ATT_RB 32

/* Blocks (sequence, head) to run in parallel, each product on one OpenBLAS
 * thread, where there is enough work and no parallel region around. */
static int att_parallel(size_t A)
{
#ifdef _OPENMP
	return A >= 65536 && !omp_in_parallel() && omp_get_max_threads() > 1;
#else
	(void)A;
	return 0;
#endif
}

/* Each block's offset in the A arrays, (B NH + 1) of them; NULL if out of memory. */
static size_t *att_offsets(const size_t *off, size_t B, size_t NH)
{
	size_t *ao = malloc((B * NH + 1) * sizeof *ao), a = 0;
	if (!ao)
		return NULL;
	for (size_t b = 0; b < B; b++) {
		size_t T = off[b + 1] - off[b];
		for (size_t h = 0; h < NH; h++, a += T * T)
			ao[b * NH + h] = a;
	}
	ao[B * NH] = a;
	return ao;
}

/*
 * Block k (sequence k / NH, head k % NH), its weights at ao of the A
 * arrays; s0 the dropout stream's state at the first weight of A.
 */
static void att_fwd_block(float *out, float *att, float *attd, float *attm,
			  const float *qkv, const size_t *off, size_t C, size_t NH,
			  size_t k, size_t ao, int causal, float p, uint64_t s0)
{
	size_t C3 = 3 * C, hs = C / NH, b = k / NH, h = k % NH;
	size_t s = off[b], T = off[b + 1] - off[b];
	float scale = 1.0f / sqrtf((float)hs);
	const float *Q = qkv + s * C3 + h * hs, *K = Q + C, *Vv = Q + 2 * C;
	float *a = att + ao, *ad = attd + ao, *am = attm + ao, *Y = out + s * C + h * hs;
	const uint64_t G = 0x9e3779b97f4a7c15ULL;
	/* causal: row blocks [i0, i1) against keys [0, i1); else one block */
	size_t rb = causal ? ATT_RB : T;
	for (size_t i0 = 0; i0 < T; i0 += rb) {
		size_t i1 = T - i0 < rb ? T : i0 + rb, w = causal ? i1 : T;
		/* scores (i1 - i0, w) = Q K^T / sqrt(hs) */
		cs_sgemm(0, 1, i1 - i0, w, hs, scale, Q + i0 * C3, C3, K, C3, 0.0f,
			 a + i0 * T, T);
		for (size_t i = i0; i < i1; i++) /* token i sees 0..i (causal) */
			DISPATCH(att_row, a + i * T, ad + i * T, am + i * T,
				 causal ? i + 1 : T, w, p, s0 + (ao + i * T) * G);
		/* out (i1 - i0, hs) = attd (i1 - i0, w) @ V (w, hs) */
		cs_sgemm(0, 0, i1 - i0, hs, w, 1.0f, ad + i0 * T, T, Vv, C3, 0.0f,
			 Y + i0 * C, C);
	}
}

void cs_attention_forward(float *out, float *att, float *attd, float *attm,
			  const float *qkv, const size_t *off, size_t B,
			  size_t C, size_t NH, int causal, float p, cs_nn_rng *rng)
{
	size_t A = cs_attention_size(off, B, NH), nb = B * NH;
	if (!rng)
		p = 0.0f;
	uint64_t s0 = rng ? rng->s : 0;
	size_t *ao = att_parallel(A) ? att_offsets(off, B, NH) : NULL;
	if (ao) {
		int blas = cs_blas_set_threads(1);
		#pragma omp parallel for schedule(dynamic, 1)
		for (size_t k = 0; k < nb; k++)
			att_fwd_block(out, att, attd, attm, qkv, off, C, NH, k, ao[k], causal,
				      p, s0);
		cs_blas_set_threads(blas);
		free(ao);
	} else {
		for (size_t k = 0, a = 0; k < nb; k++) {
			size_t T = off[k / NH + 1] - off[k / NH];
			att_fwd_block(out, att, attd, attm, qkv, off, C, NH, k, a, causal, p, s0);
			a += T * T;
		}
	}
	if (rng && p > 0.0f) /* the draws of the whole A, as if taken in order */
		cs_nn_rng_skip(rng, A);
}

void cs_attention_forward_at(float *out, float *w, const float *qkv, const size_t *off,
			     size_t B, const size_t *mpos, size_t M, size_t C, size_t NH,
			     int causal)
{
	size_t C3 = 3 * C, hs = C / NH;
	float scale = 1.0f / sqrtf((float)hs);

	for (size_t i = 0; i < M; i++) {
		size_t t = mpos[i], lo = 0, hi = B;
		while (hi - lo > 1) { /* the sequence holding token t */
			size_t mid = (lo + hi) / 2;
			if (off[mid] <= t)
				lo = mid;
			else
				hi = mid;
		}
		size_t s0 = off[lo], T = off[lo + 1] - s0;
		if (causal)
			T = t - s0 + 1; /* token t sees itself and the past */
		for (size_t h = 0; h < NH; h++) {
			const float *q = qkv + t * C3 + h * hs;
			float mx = -INFINITY, sum = 0.0f, *o = out + i * C + h * hs;
			for (size_t j = 0; j < T; j++) {
				const float *k = qkv + (s0 + j) * C3 + C + h * hs;
				float d = 0.0f;
				for (size_t e = 0; e < hs; e++)
					d += q[e] * k[e];
				w[j] = d * scale;
				mx = w[j] > mx ? w[j] : mx;
			}
			for (size_t j = 0; j < T; j++) {
				w[j] = expf(w[j] - mx);
				sum += w[j];
			}
			memset(o, 0, hs * sizeof *o);
			for (size_t j = 0; j < T; j++) {
				const float *v = qkv + (s0 + j) * C3 + 2 * C + h * hs;
				float wj = w[j] / sum;
				for (size_t e = 0; e < hs; e++)
					o[e] += wj * v[e];
			}
		}
	}
}

static void att_bwd_block(float *dqkv, float *datt, const float *dout,
			  const float *qkv, const float *att, const float *attd,
			  const float *attm, const size_t *off, size_t C, size_t NH,
			  size_t k, size_t ao, int causal)
{
	size_t C3 = 3 * C, hs = C / NH, b = k / NH, h = k % NH;
	size_t s = off[b], T = off[b + 1] - off[b];
	float scale = 1.0f / sqrtf((float)hs);
	const float *Q = qkv + s * C3 + h * hs;
	const float *K = Q + C, *Vv = Q + 2 * C;
	float *dQ = dqkv + s * C3 + h * hs;
	float *dK = dQ + C, *dV = dQ + 2 * C;
	const float *dY = dout + s * C + h * hs;
	const float *a = att + ao, *ad = attd + ao, *m = attm + ao;
	float *da = datt + ao;
	size_t rb = causal ? ATT_RB : T;
	/* dqkv is written, not added to: this head's columns of the
	 * sequence's rows zeroed here, while they are about to be used */
	for (size_t i = 0; i < T; i++)
		for (size_t j = 0; j < 3; j++)
			memset(dQ + i * C3 + j * C, 0, hs * sizeof *dQ);
	for (size_t i0 = 0; i0 < T; i0 += rb) {
		size_t i1 = T - i0 < rb ? T : i0 + rb, w = causal ? i1 : T, r = i1 - i0;
		/* d attd (r, w) = dY (r, hs) @ V (w, hs)^T */
		cs_sgemm(0, 1, r, w, hs, 1.0f, dY + i0 * C, C, Vv, C3, 0.0f,
			 da + i0 * T, T);
		/* dV (w, hs) += attd^T (w, r) @ dY (r, hs) */
		cs_sgemm(1, 0, w, hs, r, 1.0f, ad + i0 * T, T, dY + i0 * C, C,
			 1.0f, dV, C3);
		/* through dropout, softmax and the scale */
		for (size_t i = i0; i < i1; i++)
			DISPATCH(att_row_bwd, da + i * T, a + i * T, m + i * T,
				 causal ? i + 1 : T, w, scale);
		/* dQ += dS (r, w) @ K (w, hs); dK (w, hs) += dS^T @ Q (r, hs) */
		cs_sgemm(0, 0, r, hs, w, 1.0f, da + i0 * T, T, K, C3, 1.0f,
			 dQ + i0 * C3, C3);
		cs_sgemm(1, 0, w, hs, r, 1.0f, da + i0 * T, T, Q + i0 * C3, C3,
			 1.0f, dK, C3);
	}
}

void cs_attention_backward(float *dqkv, float *datt, const float *dout,
			   const float *qkv, const float *att,
			   const float *attd, const float *attm,
			   const size_t *off, size_t B, size_t C, size_t NH, int causal)
{
	size_t nb = B * NH;
	size_t *ao = att_parallel(cs_attention_size(off, B, NH)) ? att_offsets(off, B, NH)
								   : NULL;
	if (ao) {
		int blas = cs_blas_set_threads(1);
		#pragma omp parallel for schedule(dynamic, 1)
		for (size_t k = 0; k < nb; k++)
			att_bwd_block(dqkv, datt, dout, qkv, att, attd, attm, off, C, NH, k,
				      ao[k], causal);
		cs_blas_set_threads(blas);
		free(ao);
		return;
	}
	for (size_t k = 0, a = 0; k < nb; k++) {
		size_t T = off[k / NH + 1] - off[k / NH];
		att_bwd_block(dqkv, datt, dout, qkv, att, attd, attm, off, C, NH, k, a, causal);
		a += T * T;
	}
}

/* ------------------------------------------------------------ gelu */

void cs_gelu_forward(float *out, const float *inp, size_t n)
{
	PAR_FOR(n, i0, i1, DISPATCH(gelu_fwd, out + i0, inp + i0, i1 - i0));
}

void cs_gelu_backward(float *dinp, const float *inp, const float *dout,
		      size_t n)
{
	PAR_FOR(n, i0, i1, DISPATCH(gelu_bwd, dinp + i0, inp + i0, dout + i0, i1 - i0));
}

/* ------------------------------------------------------------ dropout */

void cs_dropout_forward(float *out, float *mask, const float *inp, size_t n,
			float p, cs_nn_rng *rng)
{
	if (!rng || p <= 0.0f) {
		if (out != inp)
			memmove(out, inp, n * sizeof *out);
		for (size_t i = 0; i < n; i++)
			mask[i] = 1.0f;
		return;
	}
	/* draw i of the stream at counter s + (i + 1) G, vectorised */
	uint64_t s = rng->s;
	float keep = 1.0f / (1.0f - p);
	PAR_FOR(n, i0, i1, DISPATCH(dropout_n, out + i0, mask + i0, inp + i0, i1 - i0, p, keep,
				    s + i0 * 0x9e3779b97f4a7c15ULL));
	cs_nn_rng_skip(rng, n);
}

void cs_dropout_backward(float *dinp, const float *dout, const float *mask,
			 size_t n)
{
	PAR_FOR(n, i0, i1, for (size_t i = i0; i < i1; i++) dinp[i] = dout[i] * mask[i]);
}

/* ------------------------------------------------------------ residual */

void cs_residual_forward(float *out, const float *a, const float *b,
			 size_t n)
{
	PAR_FOR(n, i0, i1, for (size_t i = i0; i < i1; i++) out[i] = a[i] + b[i]);
}

void cs_residual_backward(float *da, float *db, const float *dout, size_t n)
{
	PAR_FOR(n, i0, i1, for (size_t i = i0; i < i1; i++) {
		da[i] += dout[i];
		db[i] += dout[i];
	});
}

/* ------------------------------------------------------------ gather */

void cs_gather_forward(float *out, const float *inp, const size_t *idx,
		       size_t M, size_t C)
{
	for (size_t m = 0; m < M; m++)
		memcpy(out + m * C, inp + idx[m] * C, C * sizeof *out);
}

void cs_gather_backward(float *dinp, const float *dout, const size_t *idx,
			size_t M, size_t C)
{
	for (size_t m = 0; m < M; m++) {
		float *d = dinp + idx[m] * C;
		for (size_t c = 0; c < C; c++)
			d[c] += dout[m * C + c];
	}
}

/* ------------------------------------------------------------ tied softmax */

/*
 * Tiles: TIE_TV items by TIE_RB rows of scores (512 KiB) stay in the L2
 * cache between the product that makes them and the loops that use them,
 * where the whole (M, V) matrix of logits went to memory and back several
 * times. Each thread takes a contiguous range of item tiles. With AMX or
 * AVX512-BF16 (amx.h) the three products of a tile run in bfloat16, from
 * operands packed per item tile and per row block, padded to 32.
 */
#define TIE_TV 512
#define TIE_RB 256
#define R32(x) (((x) + 31) / 32 * 32)

static int tie_threads(void)
{
#ifdef _OPENMP
	return omp_get_max_threads();
#else
	return 1;
#endif
}

/* How the products run: CS_KERNEL_AMX, CS_KERNEL_BF16 or CS_KERNEL_FP32. */
static cs_kernel tie_kernel(size_t C)
{
	int k = cs_cpu_kernel(NULL);
	if (C % 32 || !CS_AMX_BUILT)
		return CS_KERNEL_FP32;
	if ((k == CS_KERNEL_AUTO || k == CS_KERNEL_AMX) && cs_kernel_supported(CS_KERNEL_AMX))
		return CS_KERNEL_AMX;
	if ((k == CS_KERNEL_AUTO || k == CS_KERNEL_BF16) && cs_kernel_supported(CS_KERNEL_BF16))
		return CS_KERNEL_BF16;
	return CS_KERNEL_FP32;
}

/* One thread's part of the scratch, and the shared part after them all. */
typedef struct tie_buf {
	float *S;          /* (RB, TV) scores, then their gradient */
	uint16_t *dsb;     /* (RB, TV) that in bfloat16, and packed as B */
	uint16_t *dst;
	float *dh;         /* (R32(M), C) this thread's part of dh */
	float *dwt;        /* (C, TV) a tile's dw^T, added once complete */
	uint16_t *wt, *w;  /* the tile's w packed as B^T and as B */
	float *bias;       /* (TV) the tile's bias, zeros after its end */
	float *lp;         /* (M) log-sum-exp over this thread's tiles */
} tie_buf;

static size_t tie_per(size_t M, size_t C)
{
	return 2 * TIE_RB * TIE_TV + R32(M) * C + 2 * TIE_TV * C + TIE_TV + M;
}

static size_t tie_shared(size_t M, size_t C)
{
	return M + R32(M) * C; /* zt; h in bfloat16 and h packed */
}

static tie_buf tie_view(float *scratch, size_t M, size_t C, int t)
{
	tie_buf b;
	float *p = scratch + tie_shared(M, C) + (size_t)t * tie_per(M, C);
	b.S = p;
	p += TIE_RB * TIE_TV;
	b.dsb = (uint16_t *)p;
	b.dst = b.dsb + TIE_RB * TIE_TV;
	p += TIE_RB * TIE_TV;
	b.dh = p;
	p += R32(M) * C;
	b.dwt = p;
	p += TIE_TV * C;
	b.wt = (uint16_t *)p;
	b.w = b.wt + TIE_TV * C;
	p += TIE_TV * C;
	b.bias = p;
	p += TIE_TV;
	b.lp = p;
	return b;
}

const char *cs_tiedce_kernel(size_t C)
{
	switch (tie_kernel(C)) {
	case CS_KERNEL_AMX: return "AMX bfloat16";
	case CS_KERNEL_BF16: return "AVX512-BF16";
	default: return "FP32";
	}
}

size_t cs_tiedce_scratch(size_t M, size_t C)
{
	return tie_shared(M, C) + (size_t)tie_threads() * tie_per(M, C);
}

/* The bfloat16 product of a kernel (cs_amx_gemm's arguments). */
typedef void tie_gemm(size_t M, size_t N, size_t K, const uint16_t *A, size_t lda,
		      const uint16_t *Bp, size_t bstride, float *C, size_t ldc,
		      int acc, const float *bias);

/*
 * S (rb, n) = h[r0 ..] w[v .. v+n)^T + bias[v ..]: FP32 with stride n, or
 * in bfloat16 (gemm) from hb (h in bfloat16), b->wt and b->bias, stride
 * R32(n) (rows and columns beyond rb and n hold the padding's scores).
 */
static size_t tie_scores(tie_buf *b, tie_gemm *gemm, const float *h, const uint16_t *hb,
			 const float *w, const float *bias, size_t r0, size_t rb,
			 size_t n, size_t C, size_t v)
{
	if (hb) {
		size_t ld = R32(n);
		gemm(R32(rb), ld, C, hb + r0 * C, C, b->wt, C * 16, b->S, ld, 0, b->bias);
		return ld;
	}
	cs_sgemm(0, 1, rb, n, C, 1.0f, h + r0 * C, C, w + v * C, C, 0.0f, b->S, n);
	for (size_t i = 0; i < rb; i++)
		DISPATCH(add_to, b->S + i * n, bias + v, n);
	return n;
}

/* A tile's bfloat16 operands: w packed as B^T (scores) and as B (dh). */
static void tie_pack(tie_buf *b, const float *w, const float *bias, size_t n,
		     size_t C, size_t v, int for_dh)
{
	size_t n32 = R32(n);
	cs_amx_pack(b->wt, C, n32, w + v * C, C, C, n, 1);
	if (for_dh)
		cs_amx_pack(b->w, n32, C, w + v * C, C, n, C, 0);
	memcpy(b->bias, bias + v, n * sizeof *bias);
	memset(b->bias + n, 0, (n32 - n) * sizeof *bias);
}

static double logaddexp(double a, double b)
{
	if (a == -INFINITY)
		return b;
	if (b == -INFINITY)
		return a;
	return a > b ? a + log1p(exp(b - a)) : b + log1p(exp(a - b));
}

/* A pass over the item tiles: what the threads share. */
typedef struct tie_job {
	const float *h, *w, *bias, *lse;
	const uint32_t *tgt;
	const uint16_t *hb, *ht; /* bfloat16: h, and h^T by row block */
	tie_gemm *gemm;          /* bfloat16: cs_amx_gemm or cs_bf16_gemm */
	float *scratch, *zt, *dw, *dbias;
	size_t M, C, V, v0;
	float s;      /* backward: dloss / M */
	int backward;
} tie_job;

/* The backward pass's products for rows [r0, r0 + rb) of a tile. */
static void tie_grads(const tie_job *j, tie_buf *b, size_t r0, size_t rb,
		      size_t n, size_t v, size_t ld)
{
	size_t C = j->C;
	if (!j->hb) {
		/* dh (rb, C) += dS (rb, n) w (n, C); dw (n, C) += dS^T h (rb, C) */
		cs_sgemm(0, 0, rb, C, n, 1.0f, b->S, n, j->w + v * C, C, 1.0f,
			 b->dh + r0 * C, C);
		if (j->dw)
			cs_sgemm(1, 0, n, C, rb, 1.0f, b->S, n, j->h + r0 * C, C, 1.0f,
				 j->dw + v * C, C);
		return;
	}
	/* dh (rb, C) += dS (rb, n) w (n, C): dS as A, w packed;
	 * dw^T (C, n) = h^T (C, rb) dS (rb, n): dS packed, summed over the
	 * row blocks of the tile */
	size_t rb32 = R32(rb), n32 = R32(n);
	cs_amx_split(b->dsb, b->dst, b->S, ld, rb, rb32, n32);
	j->gemm(rb32, C, n32, b->dsb, n32, b->w, n32 * 16, b->dh + r0 * C, C, 1, NULL);
	if (j->dw)
		j->gemm(C, n32, rb32, j->ht + r0 * C, rb32, b->dst, rb32 * 16, b->dwt,
			n32, r0 > 0, NULL);
}

/* Thread t of T: its item tiles, forward (log-sum-exps) or backward. */
static void tie_thread(const tie_job *j, int t, int T)
{
	size_t M = j->M, C = j->C, V = j->V, v0 = j->v0;
	size_t ntiles = (V - v0 + TIE_TV - 1) / TIE_TV;
	tie_buf b = tie_view(j->scratch, M, C, t);
	if (j->backward)
		memset(b.dh, 0, R32(M) * C * sizeof *b.dh);
	else
		for (size_t m = 0; m < M; m++)
			b.lp[m] = -INFINITY;
	for (size_t k = ntiles * t / T; k < ntiles * (t + 1) / T; k++) {
		size_t v = v0 + k * TIE_TV, n = V - v < TIE_TV ? V - v : TIE_TV;
		if (j->hb)
			tie_pack(&b, j->w, j->bias, n, C, v, j->backward);
		for (size_t r0 = 0; r0 < M; r0 += TIE_RB) {
			size_t rb = M - r0 < TIE_RB ? M - r0 : TIE_RB;
			size_t ld = tie_scores(&b, j->gemm, j->h, j->hb, j->w, j->bias, r0, rb, n,
					       C, v);
			for (size_t i = 0; i < rb; i++) {
				size_t m = r0 + i;
				float *row = b.S + i * ld;
				int hit = j->tgt[m] >= v && j->tgt[m] < v + n;
				if (!j->backward) {
					b.lp[m] = (float)logaddexp(b.lp[m],
								   DISPATCH(logsumexp, row, n));
					if (hit)
						j->zt[m] = row[j->tgt[m] - v];
					continue;
				}
				DISPATCH(softmax_scaled, row, row, n, j->lse[m], j->s);
				if (hit)
					row[j->tgt[m] - v] -= j->s;
				if (j->dbias)
					DISPATCH(add_to, j->dbias + v, row, n);
			}
			if (j->backward)
				tie_grads(j, &b, r0, rb, n, v, ld);
		}
		if (j->backward && j->hb && j->dw) /* dw[v ..] (n, C) += dw^T (C, n) */
			for (size_t i = 0; i < n; i++) {
				float *dwv = j->dw + (v + i) * C;
				for (size_t c = 0; c < C; c++)
					dwv[c] += b.dwt[c * R32(n) + i];
			}
	}
}

/* Run the job on every thread, each product on one; returns their number. */
static int tie_run(const tie_job *j)
{
	int team = 1, blas = cs_blas_set_threads(1);
	#pragma omp parallel num_threads(tie_threads())
	{
		int t = 0, T = 1;
#ifdef _OPENMP
		t = omp_get_thread_num();
		T = omp_get_num_threads();
		#pragma omp single
		team = T;
#endif
		tie_thread(j, t, T);
	}
	cs_blas_set_threads(blas);
	return team;
}

double cs_tiedce_forward(float *lse, float *scratch, const float *h,
			 const float *w, const float *bias, const uint32_t *tgt,
			 size_t M, size_t C, size_t V, size_t v0)
{
	if (M == 0)
		return 0.0;
	tie_job j = { .h = h, .w = w, .bias = bias, .tgt = tgt, .scratch = scratch,
		      .zt = scratch /* the target's logit, by row */,
		      .M = M, .C = C, .V = V, .v0 = v0 };
	cs_kernel k = tie_kernel(C);
	if (k != CS_KERNEL_FP32) {
		uint16_t *hb = (uint16_t *)(scratch + M);
		cs_bf16_copy(hb, R32(M), C, h, C, M, C, 0);
		j.hb = hb;
		j.gemm = k == CS_KERNEL_AMX ? cs_amx_gemm : cs_bf16_gemm;
	}
	int team = tie_run(&j);
	double loss = 0.0;
	for (size_t m = 0; m < M; m++) {
		double l = -INFINITY;
		for (int t = 0; t < team; t++)
			l = logaddexp(l, tie_view(scratch, M, C, t).lp[m]);
		lse[m] = (float)l;
		loss += (double)lse[m] - j.zt[m];
	}
	return loss / (double)M;
}

void cs_tiedce_backward(float *dh, float *dw, float *dbias, float *scratch,
			const float *h, const float *w, const float *bias,
			const float *lse, const uint32_t *tgt, size_t M,
			size_t C, size_t V, size_t v0, float dloss)
{
	if (M == 0)
		return;
	tie_job j = { .h = h, .w = w, .bias = bias, .lse = lse, .tgt = tgt,
		      .scratch = scratch, .dw = dw, .dbias = dbias, .M = M, .C = C,
		      .V = V, .v0 = v0, .s = dloss / (float)M, .backward = 1 };
	cs_kernel k = tie_kernel(C);
	if (k != CS_KERNEL_FP32) { /* h as A, and h^T as A (C, R32(rb)) of each row block */
		uint16_t *hb = (uint16_t *)(scratch + M), *ht = hb + R32(M) * C;
		cs_bf16_copy(hb, R32(M), C, h, C, M, C, 0);
		for (size_t r0 = 0; r0 < M; r0 += TIE_RB) {
			size_t rb = M - r0 < TIE_RB ? M - r0 : TIE_RB;
			cs_bf16_copy(ht + r0 * C, C, R32(rb), h + r0 * C, C, C, rb, 1);
		}
		j.hb = hb;
		j.ht = ht;
		j.gemm = k == CS_KERNEL_AMX ? cs_amx_gemm : cs_bf16_gemm;
	}
	int team = tie_run(&j);
	if (dh)
		for (int t = 0; t < team; t++) {
			const float *dhp = tie_view(scratch, M, C, t).dh;
			for (size_t i = 0; i < M * C; i++)
				dh[i] += dhp[i];
		}
}

/* ------------------------------------------------------------ loss */

double cs_crossentropy_forward(float *lse, const float *logits,
			      const uint32_t *tgt, size_t M, size_t V,
			      size_t v0)
{
	double loss = 0.0;
	/* Rows in parallel; the sum in row order, so any thread count agrees. */
	#pragma omp parallel for schedule(static)
	for (size_t m = 0; m < M; m++)
		lse[m] = (float)DISPATCH(logsumexp, logits + m * V + v0, V - v0);
	for (size_t m = 0; m < M; m++)
		loss += (double)lse[m] - logits[m * V + tgt[m]];
	return M ? loss / (double)M : 0.0;
}

void cs_crossentropy_backward(float *dlogits, const float *logits,
			      const float *lse, const uint32_t *tgt, size_t M,
			      size_t V, size_t v0, float dloss)
{
	float s = M ? dloss / (float)M : 0.0f;
	#pragma omp parallel for schedule(static)
	for (size_t m = 0; m < M; m++) {
		float *d = dlogits + m * V;
		for (size_t k = 0; k < v0; k++)
			d[k] = 0.0f;
		DISPATCH(softmax_scaled, d + v0, logits + m * V + v0, V - v0,
			 lse[m], s);
		d[tgt[m]] -= s;
	}
}
