/* sampled.c - sampled softmax and gBCE over shared negatives (sampled.h). */
#include <math.h>
#include <string.h>

#include "blas.h"
#include "sampled.h"

static const char *const loss_names[] = { "full", "sampled", "gbce" };
static const char *const sampler_names[] = { "uniform", "pop", "batch" };

const char *cs_loss_name(int l) { return l >= 0 && l < 3 ? loss_names[l] : "?"; }
const char *cs_sampler_name(int s) { return s >= 0 && s < 3 ? sampler_names[s] : "?"; }

static int parse(const char *const *names, const char *s)
{
	for (int i = 0; s && i < 3; i++)
		if (!strcmp(names[i], s))
			return i;
	return -1;
}

int cs_loss_parse(const char *s) { return parse(loss_names, s); }
int cs_sampler_parse(const char *s) { return parse(sampler_names, s); }

float cs_gbce_beta(size_t K, size_t items, float t)
{
	double alpha = items > 1 ? (double)K / (double)(items - 1) : 1.0;
	if (alpha > 1.0)
		alpha = 1.0;
	return (float)(alpha * (t * (1.0 - 1.0 / alpha) + 1.0 / alpha));
}

size_t cs_sampled_scratch(size_t M, size_t K, size_t C)
{
	return M * (1 + K) + M + 2 * K * C;
}

static float dot(const float *a, const float *b, size_t n)
{
	float s = 0.0f;
	for (size_t k = 0; k < n; k++)
		s += a[k] * b[k];
	return s;
}

/* -log sigmoid(z), stably */
static double nls(double z)
{
	return (z < 0 ? -z : 0) + log1p(exp(-fabs(z)));
}

double cs_sampled_forward(float *scratch, const float *h, const float *w,
			  const float *bias, const uint32_t *tgt, const uint32_t *neg,
			  const float *logq, size_t M, size_t C, size_t K, int kind,
			  float beta)
{
	size_t R = 1 + K;
	float *z = scratch, *lse = z + M * R, *wn = lse + M;
	for (size_t k = 0; k < K; k++)
		memcpy(wn + k * C, w + (size_t)neg[k] * C, C * sizeof *wn);
	/* z[:, 1..K] = h (M, C) wn (K, C)^T */
	cs_sgemm(0, 1, M, K, C, 1.0f, h, C, wn, C, 0.0f, z + 1, R);
	double sum = 0.0;
	for (size_t i = 0; i < M; i++) {
		float *zi = z + i * R;
		uint32_t t = tgt[i];
		zi[0] = dot(h + i * C, w + (size_t)t * C, C) + bias[t] -
			(logq ? logq[t] : 0.0f);
		for (size_t k = 0; k < K; k++)
			zi[1 + k] = neg[k] == t ? -INFINITY :
				    zi[1 + k] + bias[neg[k]] - (logq ? logq[neg[k]] : 0.0f);
		if (kind == CS_LOSS_GBCE) {
			double l = beta * nls(zi[0]);
			for (size_t k = 0; k < K; k++)
				if (zi[1 + k] != -INFINITY)
					l += nls(-(double)zi[1 + k]);
			sum += l;
			continue;
		}
		float mx = zi[0];
		for (size_t k = 1; k < R; k++)
			mx = zi[k] > mx ? zi[k] : mx;
		double s = 0.0;
		for (size_t k = 0; k < R; k++)
			s += exp((double)zi[k] - mx);
		lse[i] = (float)(mx + log(s));
		sum += (double)lse[i] - zi[0];
	}
	return M ? sum / (double)M : 0.0;
}

void cs_sampled_backward(float *dh, float *dw, float *dbias, float *scratch,
			 const float *h, const float *w, const uint32_t *tgt,
			 const uint32_t *neg, size_t M, size_t C, size_t K, int kind,
			 float beta, float dloss)
{
	size_t R = 1 + K;
	float *z = scratch, *lse = z + M * R, *wn = lse + M, *dwn = wn + K * C;
	float sc = M ? dloss / (float)M : 0.0f;
	/* z becomes dloss/dz, row by row */
	for (size_t i = 0; i < M; i++) {
		float *zi = z + i * R;
		if (kind == CS_LOSS_GBCE) {
			zi[0] = -beta * (1.0f / (1.0f + expf(zi[0]))) * sc;
			for (size_t k = 1; k < R; k++)
				zi[k] = zi[k] == -INFINITY ? 0.0f :
					sc / (1.0f + expf(-zi[k]));
		} else {
			for (size_t k = 0; k < R; k++)
				zi[k] = expf(zi[k] - lse[i]) * sc;
			zi[0] -= sc;
		}
		uint32_t t = tgt[i];
		const float *hi = h + i * C, *wt = w + (size_t)t * C;
		float *dhi = dh + i * C;
		for (size_t c = 0; c < C; c++)
			dhi[c] += zi[0] * wt[c];
		if (dw) {
			float *dwt = dw + (size_t)t * C;
			for (size_t c = 0; c < C; c++)
				dwt[c] += zi[0] * hi[c];
		}
		if (dbias)
			dbias[t] += zi[0];
	}
	/* dh += dz[:, 1..K] (M, K) wn (K, C); dwn = dz[:, 1..K]^T h (K, C) */
	cs_sgemm(0, 0, M, C, K, 1.0f, z + 1, R, wn, C, 1.0f, dh, C);
	if (dw) {
		cs_sgemm(1, 0, K, C, M, 1.0f, z + 1, R, h, C, 0.0f, dwn, C);
		for (size_t k = 0; k < K; k++) {
			float *d = dw + (size_t)neg[k] * C;
			for (size_t c = 0; c < C; c++)
				d[c] += dwn[k * C + c];
		}
	}
	if (dbias)
		for (size_t k = 0; k < K; k++) {
			float s = 0.0f;
			for (size_t i = 0; i < M; i++)
				s += z[i * R + 1 + k];
			dbias[neg[k]] += s;
		}
}
