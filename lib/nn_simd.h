/*
 * nn_simd.h - private to nn.c: the exp-bound loops of the layers, written
 * once for W float lanes with GCC vector extensions. nn.c includes it once
 * per instruction set, with W (lanes), SIMD_SUFFIX (name suffix) and
 * SIMD_ATTR (a target attribute, or nothing) defined, and picks a version
 * at run time. Lane-wise arithmetic is the same in every version (no FMA
 * contraction under -std=c11), so versions differ only in the order of
 * the sums.
 */
#define SIMD_CAT2(a, b) a##b
#define SIMD_CAT(a, b) SIMD_CAT2(a, b)
#define K(name) SIMD_CAT(name, SIMD_SUFFIX)
#define KI static inline __attribute__((always_inline)) SIMD_ATTR

typedef float K(vf) __attribute__((vector_size(4 * W)));
typedef int K(vi) __attribute__((vector_size(4 * W)));
#define vf K(vf)
#define vi K(vi)

KI vf K(loadv)(const float *p)
{
	vf v;
	memcpy(&v, p, sizeof v);
	return v;
}

KI void K(storev)(float *p, vf v)
{
	memcpy(p, &v, sizeof v);
}

/*
 * Cephes' expf: x = n ln2 + r, |r| <= ln2/2, exp(r) by a degree-6
 * polynomial, 2^n put into the exponent bits. Inputs are clamped to
 * [-87.3, 88.3], so exp of a very negative x is ~1e-38, not 0 (harmless
 * where it is used: softmax terms below the maximum).
 */
KI vf K(expv)(vf x)
{
	const vf hi = (vf){0} + 88.3f, lo = (vf){0} + -87.3f;
	vi gt = x > hi, lt = x < lo;
	x = (vf)(((vi)hi & gt) | ((vi)x & ~gt));
	x = (vf)(((vi)lo & lt) | ((vi)x & ~lt));
	/* n = round(x / ln2) by the 1.5 * 2^23 trick */
	vf t = x * 1.44269504088896341f + 12582912.0f;
	vf n = t - 12582912.0f;
	vf r = x - n * 0.693359375f;
	r = r - n * -2.12194440e-4f;
	vf z = r * r;
	vf y = (vf){0} + 1.9875691500e-4f;
	y = y * r + 1.3981999507e-3f;
	y = y * r + 8.3334519073e-3f;
	y = y * r + 4.1665795894e-2f;
	y = y * r + 1.6666665459e-1f;
	y = y * r + 5.0000001201e-1f;
	y = y * z + r + 1.0f;
	vi e = (__builtin_convertvector(n, vi) + 127) << 23;
	return y * (vf)e;
}

/* tanh(u) = 1 - 2 / (exp(2u) + 1) */
KI vf K(tanhv)(vf u)
{
	return 1.0f - 2.0f / (K(expv)(2.0f * u) + 1.0f);
}

KI vf K(geluv)(vf x)
{
	vf u = GELU_K * (x + 0.044715f * x * x * x);
	return 0.5f * x * (1.0f + K(tanhv)(u));
}

/* d/dx = 0.5 (1 + th) + 0.5 x (1 - th^2) k (1 + 3 0.044715 x^2) */
KI vf K(dgeluv)(vf x)
{
	vf u = GELU_K * (x + 0.044715f * x * x * x);
	vf th = K(tanhv)(u);
	vf du = GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
	return 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du;
}

SIMD_ATTR static void K(exp_n)(float *y, const float *x, size_t n)
{
	size_t i = 0;
	for (; i + W <= n; i += W)
		K(storev)(y + i, K(expv)(K(loadv)(x + i)));
	if (i < n) {
		float buf[W] = {0};
		memcpy(buf, x + i, (n - i) * sizeof *x);
		K(storev)(buf, K(expv)(K(loadv)(buf)));
		memcpy(y + i, buf, (n - i) * sizeof *y);
	}
}

SIMD_ATTR static void K(gelu_fwd)(float *out, const float *inp, size_t n)
{
	size_t i = 0;
	for (; i + W <= n; i += W)
		K(storev)(out + i, K(geluv)(K(loadv)(inp + i)));
	if (i < n) {
		float buf[W] = {0};
		memcpy(buf, inp + i, (n - i) * sizeof *inp);
		K(storev)(buf, K(geluv)(K(loadv)(buf)));
		memcpy(out + i, buf, (n - i) * sizeof *out);
	}
}

SIMD_ATTR static void K(gelu_bwd)(float *dinp, const float *inp,
				  const float *dout, size_t n)
{
	size_t i = 0;
	for (; i + W <= n; i += W)
		K(storev)(dinp + i, K(loadv)(dinp + i) +
			  K(dgeluv)(K(loadv)(inp + i)) * K(loadv)(dout + i));
	if (i < n) {
		float buf[W] = {0};
		memcpy(buf, inp + i, (n - i) * sizeof *inp);
		K(storev)(buf, K(dgeluv)(K(loadv)(buf)));
		for (size_t j = 0; i + j < n; j++)
			dinp[i + j] += buf[j] * dout[i + j];
	}
}

/* log(sum(exp(x))) over n >= 1 elements: the maximum, then the sum. */
SIMD_ATTR static double K(logsumexp)(const float *x, size_t n)
{
	float mx = x[0];
	size_t i = 0;
	if (n >= W) {
		vf m = K(loadv)(x);
		for (i = W; i + W <= n; i += W) {
			vf v = K(loadv)(x + i);
			vi g = v > m;
			m = (vf)(((vi)v & g) | ((vi)m & ~g));
		}
		for (int k = 0; k < W; k++)
			mx = m[k] > mx ? m[k] : mx;
	}
	for (; i < n; i++)
		mx = x[i] > mx ? x[i] : mx;
	vf acc = {0};
	double s = 0.0;
	for (i = 0; i + W <= n; i += W)
		acc += K(expv)(K(loadv)(x + i) - mx);
	for (int k = 0; k < W; k++)
		s += acc[k];
	for (; i < n; i++)
		s += expf(x[i] - mx);
	return mx + log(s);
}

/* d (n) += x (n) */
SIMD_ATTR static void K(add_to)(float *d, const float *x, size_t n)
{
	size_t i = 0;
	for (; i + W <= n; i += W)
		K(storev)(d + i, K(loadv)(d + i) + K(loadv)(x + i));
	for (; i < n; i++)
		d[i] += x[i];
}

/* d (n) = s exp(x - lse) */
SIMD_ATTR static void K(softmax_scaled)(float *d, const float *x, size_t n,
					float lse, float s)
{
	size_t i = 0;
	for (; i + W <= n; i += W)
		K(storev)(d + i, s * K(expv)(K(loadv)(x + i) - lse));
	for (; i < n; i++)
		d[i] = s * expf(x[i] - lse);
}

#undef vf
#undef vi
#undef K
#undef KI
