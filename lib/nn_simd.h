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

/* dinp (n) = gelu'(inp) dout: written, not added to */
SIMD_ATTR static void K(gelu_bwd)(float *dinp, const float *inp,
				  const float *dout, size_t n)
{
	size_t i = 0;
	for (; i + W <= n; i += W)
		K(storev)(dinp + i, K(dgeluv)(K(loadv)(inp + i)) * K(loadv)(dout + i));
	if (i < n) {
		float buf[W] = {0};
		memcpy(buf, inp + i, (n - i) * sizeof *inp);
		K(storev)(buf, K(dgeluv)(K(loadv)(buf)));
		for (size_t j = 0; i + j < n; j++)
			dinp[i + j] = buf[j] * dout[i + j];
	}
}

/* The largest of x (n >= 1). */
SIMD_ATTR static float K(maxv)(const float *x, size_t n)
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
	return mx;
}

/* log(sum(exp(x))) over n >= 1 elements: the maximum, then the sum. */
SIMD_ATTR static double K(logsumexp)(const float *x, size_t n)
{
	float mx = K(maxv)(x, n);
	size_t i;
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

/* ---------------------------------------------------------- dropout, attention */

typedef uint64_t K(vu) __attribute__((vector_size(8 * W)));
#define vu K(vu)

/*
 * Inverted dropout of n values, draw j of it splitmix64 at counter
 * s + (j + 1) G (rng.c: the j-th cs_nn_rng_uniform of a generator in
 * state s, so the same mask as drawing one at a time): mask 0 where the
 * draw is below p, else keep; out = inp * mask. out may be inp.
 */
SIMD_ATTR static void K(dropout_n)(float *out, float *mask, const float *inp, size_t n,
				   float p, float keep, uint64_t s)
{
	const uint64_t G = 0x9e3779b97f4a7c15ULL;
	vu lane;
	for (int k = 0; k < W; k++)
		lane[k] = (uint64_t)(k + 1) * G;
	for (size_t i = 0; i < n; i += W) {
		vu z = s + (uint64_t)i * G + lane;
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		z = z ^ (z >> 31);
		vf u = __builtin_convertvector(__builtin_convertvector(z >> 40, vi), vf) *
		       (1.0f / 16777216.0f);
		vi drop = u < p;
		vf m = (vf)((vi)((vf){0} + keep) & ~drop);
		if (i + W <= n) {
			K(storev)(mask + i, m);
			K(storev)(out + i, K(loadv)(inp + i) * m);
		} else {
			for (size_t k = 0; i + k < n; k++) {
				mask[i + k] = m[k];
				out[i + k] = inp[i + k] * m[k];
			}
		}
	}
}

/*
 * One row of attention weights: a (n >= 1 scores) -> their softmax in
 * place, then dropout (dropout_n; p <= 0: none, am = 1, ad = a); the
 * entries [n, w) of a, ad and am are set to 0.
 */
SIMD_ATTR static void K(att_row)(float *a, float *ad, float *am, size_t n, size_t w,
				 float p, uint64_t s)
{
	float mx = K(maxv)(a, n), sum = 0.0f;
	vf acc = {0};
	size_t i = 0;
	for (; i + W <= n; i += W) {
		vf e = K(expv)(K(loadv)(a + i) - mx);
		K(storev)(a + i, e);
		acc += e;
	}
	if (i < n) {
		float buf[W] = {0};
		memcpy(buf, a + i, (n - i) * sizeof *a);
		vf e = K(expv)(K(loadv)(buf) - mx);
		for (size_t k = 0; i + k < n; k++) {
			a[i + k] = e[k];
			sum += e[k];
		}
	}
	for (int k = 0; k < W; k++)
		sum += acc[k];
	vf inv = (vf){0} + 1.0f / sum;
	for (i = 0; i + W <= n; i += W)
		K(storev)(a + i, K(loadv)(a + i) * inv);
	for (; i < n; i++)
		a[i] *= inv[0];
	if (p > 0.0f) {
		K(dropout_n)(ad, am, a, n, p, 1.0f / (1.0f - p), s);
	} else {
		memcpy(ad, a, n * sizeof *a);
		for (i = 0; i < n; i++)
			am[i] = 1.0f;
	}
	if (w > n) {
		memset(a + n, 0, (w - n) * sizeof *a);
		memset(ad + n, 0, (w - n) * sizeof *a);
		memset(am + n, 0, (w - n) * sizeof *a);
	}
}

/*
 * Back through dropout, softmax and the scale for one row: d (n) holds
 * the gradient of the weights after dropout; it becomes that of the
 * scores, a (softmax) * (d m - dot(d m, a)) * scale; [n, w) set to 0.
 */
SIMD_ATTR static void K(att_row_bwd)(float *d, const float *a, const float *m, size_t n,
				     size_t w, float scale)
{
	vf acc = {0};
	float dot = 0.0f;
	size_t i = 0;
	for (; i + W <= n; i += W) {
		vf g = K(loadv)(d + i) * K(loadv)(m + i);
		K(storev)(d + i, g);
		acc += g * K(loadv)(a + i);
	}
	for (; i < n; i++) {
		d[i] *= m[i];
		dot += d[i] * a[i];
	}
	for (int k = 0; k < W; k++)
		dot += acc[k];
	for (i = 0; i + W <= n; i += W)
		K(storev)(d + i, K(loadv)(a + i) * (K(loadv)(d + i) - dot) * scale);
	for (; i < n; i++)
		d[i] = a[i] * (d[i] - dot) * scale;
	if (w > n)
		memset(d + n, 0, (w - n) * sizeof *d);
}

#undef vu
#undef vf
#undef vi
#undef K
#undef KI
