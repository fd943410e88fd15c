/*
 * optim.c - AdamW, its schedule and gradient clipping (see optim.h).
 */
#include <math.h>

#include "optim.h"

void cs_adamw_default(cs_adamw *o)
{
	o->lr = 1e-4f;
	o->beta1 = 0.9f;
	o->beta2 = 0.999f;
	o->eps = 1e-8f;
	o->weight_decay = 0.01f;
	o->clip = 1.0f;
	o->warmup = 100;
	o->total = 0;
}

float cs_adamw_lr(const cs_adamw *o, long t)
{
	if (t < o->warmup)
		return o->lr * (float)(t + 1) / (float)o->warmup;
	if (o->total <= 0 || o->total <= o->warmup)
		return o->lr;
	if (t >= o->total)
		return 0.0f;
	return o->lr * (float)(o->total - t) / (float)(o->total - o->warmup);
}

double cs_grad_norm(const float *g, size_t n)
{
	/* Fixed blocks summed in order: the same result on any thread count. */
	enum { BLK = 1 << 16 };
	size_t nb = (n + BLK - 1) / BLK;
	double part[256], s = 0.0;
	for (size_t b0 = 0; b0 < nb; b0 += 256) {
		size_t b1 = nb - b0 < 256 ? nb - b0 : 256;
		#pragma omp parallel for schedule(static)
		for (size_t b = 0; b < b1; b++) {
			size_t lo = (b0 + b) * BLK, hi = lo + BLK < n ? lo + BLK : n;
			double t = 0.0;
			for (size_t i = lo; i < hi; i++)
				t += (double)g[i] * g[i];
			part[b] = t;
		}
		for (size_t b = 0; b < b1; b++)
			s += part[b];
	}
	return sqrt(s);
}

float cs_clip_scale(const cs_adamw *o, double norm)
{
	if (o->clip <= 0.0f)
		return 1.0f;
	double c = o->clip / (norm + 1e-6);
	return c < 1.0 ? (float)c : 1.0f;
}

void cs_adamw_update(const cs_adamw *o, float *p, const float *g, float *m,
		     float *v, size_t n, float lr, float wd, float gscale,
		     long t)
{
	float b1 = o->beta1, b2 = o->beta2;
	float bc1 = 1.0f - powf(b1, (float)t);
	float bc2 = sqrtf(1.0f - powf(b2, (float)t));
	float step = lr / bc1, decay = 1.0f - lr * wd;
	#pragma omp parallel for simd schedule(static) if (n > 65536)
	for (size_t i = 0; i < n; i++) {
		float gi = g[i] * gscale;
		m[i] = b1 * m[i] + (1.0f - b1) * gi;
		v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
		p[i] = p[i] * decay - step * m[i] / (sqrtf(v[i]) / bc2 + o->eps);
	}
}
