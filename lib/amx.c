/*
 * amx.c - bfloat16 matrix products on AMX tiles and with AVX512-BF16,
 * and their operands' packing (see amx.h).
 */
#include <stdlib.h>
#include <string.h>
#include "amx.h"

#if CS_AMX_BUILT
#include <immintrin.h>

__attribute__((target("amx-tile,amx-bf16")))
void cs_amx_gemm(size_t M, size_t N, size_t K, const uint16_t *A, size_t lda,
		 const uint16_t *Bp, size_t bstride, float *C, size_t ldc,
		 int acc, const float *bias)
{
	cs_amx_tilecfg cfg;
	cs_amx_tilecfg_init(&cfg);
	_tile_loadconfig(&cfg);
	size_t sa = lda * 2, sc = ldc * 4;
	if (K == 64 && !acc) {
		/*
		 * Short products (the scores: K is the hidden size): A's four
		 * tiles of a 32-row block stay loaded while B's columns pass,
		 * 16 at a time, so that each product needs half a load of B and
		 * half a store of C rather than two loads and half a store.
		 */
		for (size_t i = 0; i < M; i += 32) {
			const uint16_t *a0 = A + i * lda, *a1 = a0 + 16 * lda;
			_tile_loadd(4, a0, sa);
			_tile_loadd(5, a0 + 32, sa);
			_tile_loadd(6, a1, sa);
			_tile_loadd(7, a1 + 32, sa);
			for (size_t j = 0; j < N; j += 16) {
				const uint16_t *b = Bp + (j / 16) * bstride;
				float *c0 = C + i * ldc + j, *c1 = c0 + 16 * ldc;
				if (bias) {
					_tile_loadd(0, bias + j, 0);
					_tile_loadd(1, bias + j, 0);
				} else {
					_tile_zero(0);
					_tile_zero(1);
				}
				_tile_loadd(2, b, 64);
				_tile_loadd(3, b + 512, 64);
				_tile_dpbf16ps(0, 4, 2);
				_tile_dpbf16ps(0, 5, 3);
				_tile_dpbf16ps(1, 6, 2);
				_tile_dpbf16ps(1, 7, 3);
				_tile_stored(0, c0, sc);
				_tile_stored(1, c1, sc);
			}
		}
		_tile_release();
		return;
	}
	for (size_t j = 0; j < N; j += 32) {
		const uint16_t *b0 = Bp + (j / 16) * bstride, *b1 = b0 + bstride;
		for (size_t i = 0; i < M; i += 32) {
			float *c0 = C + i * ldc + j, *c1 = c0 + 16 * ldc;
			if (acc) {
				_tile_loadd(0, c0, sc);
				_tile_loadd(1, c0 + 16, sc);
				_tile_loadd(2, c1, sc);
				_tile_loadd(3, c1 + 16, sc);
			} else if (bias) { /* stride 0: every row the same */
				_tile_loadd(0, bias + j, 0);
				_tile_loadd(1, bias + j + 16, 0);
				_tile_loadd(2, bias + j, 0);
				_tile_loadd(3, bias + j + 16, 0);
			} else {
				_tile_zero(0);
				_tile_zero(1);
				_tile_zero(2);
				_tile_zero(3);
			}
			const uint16_t *a0 = A + i * lda, *a1 = a0 + 16 * lda;
			for (size_t k = 0; k < K; k += 32) {
				_tile_loadd(4, a0 + k, sa);
				_tile_loadd(5, a1 + k, sa);
				_tile_loadd(6, b0 + k * 16, 64);
				_tile_loadd(7, b1 + k * 16, 64);
				_tile_dpbf16ps(0, 4, 6);
				_tile_dpbf16ps(1, 4, 7);
				_tile_dpbf16ps(2, 5, 6);
				_tile_dpbf16ps(3, 5, 7);
			}
			_tile_stored(0, c0, sc);
			_tile_stored(1, c0 + 16, sc);
			_tile_stored(2, c1, sc);
			_tile_stored(3, c1 + 16, sc);
		}
	}
	_tile_release();
}

/*
 * AVX512-BF16: a register tile of 8 rows x 32 columns (16 accumulators);
 * per pair row p of B, its two 16-column blocks are loaded once and each
 * row's pair (A[r][2p], A[r][2p+1]) is broadcast against them: vdpbf16ps
 * adds both products into each column's FP32 sum. Columns outside (j),
 * rows inside, so that B's 32-column panel stays in L1 while A passes.
 */
#define BF_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
__attribute__((target("avx512f,avx512bf16")))
void cs_bf16_gemm(size_t M, size_t N, size_t K, const uint16_t *A, size_t lda,
		  const uint16_t *Bp, size_t bstride, float *C, size_t ldc,
		  int acc, const float *bias)
{
	for (size_t j = 0; j < N; j += 32) {
		const uint16_t *b0 = Bp + (j / 16) * bstride, *b1 = b0 + bstride;
		__m512 z0 = bias ? _mm512_loadu_ps(bias + j) : _mm512_setzero_ps();
		__m512 z1 = bias ? _mm512_loadu_ps(bias + j + 16) : _mm512_setzero_ps();
		for (size_t i = 0; i < M; i += 8) {
			const uint16_t *a = A + i * lda;
			float *c = C + i * ldc + j;
#define INIT(r)                                                                \
	__m512 c##r##0 = acc ? _mm512_loadu_ps(c + r * ldc) : z0;               \
	__m512 c##r##1 = acc ? _mm512_loadu_ps(c + r * ldc + 16) : z1;
			BF_ROWS(INIT)
#undef INIT
			for (size_t p = 0; p < K / 2; p++) {
				__m512bh x0 = (__m512bh)_mm512_loadu_si512(b0 + p * 32);
				__m512bh x1 = (__m512bh)_mm512_loadu_si512(b1 + p * 32);
				__m512bh y;
				uint32_t pr;
#define DP(r)                                                                  \
	memcpy(&pr, a + r * lda + 2 * p, sizeof pr);                           \
	y = (__m512bh)_mm512_set1_epi32((int)pr);                              \
	c##r##0 = _mm512_dpbf16_ps(c##r##0, y, x0);                            \
	c##r##1 = _mm512_dpbf16_ps(c##r##1, y, x1);
				BF_ROWS(DP)
#undef DP
			}
#define STORE(r)                                                               \
	_mm512_storeu_ps(c + r * ldc, c##r##0);                                \
	_mm512_storeu_ps(c + r * ldc + 16, c##r##1);
			BF_ROWS(STORE)
#undef STORE
		}
	}
}
#else
void cs_amx_gemm(size_t M, size_t N, size_t K, const uint16_t *A, size_t lda,
		 const uint16_t *Bp, size_t bstride, float *C, size_t ldc,
		 int acc, const float *bias)
{
	(void)M, (void)N, (void)K, (void)A, (void)lda, (void)Bp, (void)bstride;
	(void)C, (void)ldc, (void)acc, (void)bias;
	abort(); /* callers check cs_kernel_supported() */
}

void cs_bf16_gemm(size_t M, size_t N, size_t K, const uint16_t *A, size_t lda,
		  const uint16_t *Bp, size_t bstride, float *C, size_t ldc,
		  int acc, const float *bias)
{
	(void)M, (void)N, (void)K, (void)A, (void)lda, (void)Bp, (void)bstride;
	(void)C, (void)ldc, (void)acc, (void)bias;
	abort(); /* callers check cs_kernel_supported() */
}
#endif

/* The bfloat16 of x (cs_bf16) in the high half of the result (low half zero). */
static inline uint32_t bf16_hi(float x)
{
	return (uint32_t)cs_bf16(x) << 16;
}

void cs_bf16_copy(uint16_t *dst, size_t rows_pad, size_t cols_pad,
		  const float *src, size_t lds, size_t rows, size_t cols,
		  int trans)
{
	for (size_t i = 0; i < rows_pad; i++) {
		uint16_t *d = dst + i * cols_pad;
		size_t j = 0;
		if (i < rows) {
			if (trans)
				for (; j < cols; j++)
					d[j] = cs_bf16(src[j * lds + i]);
			else
				for (const float *s = src + i * lds; j < cols; j++)
					d[j] = cs_bf16(s[j]);
		}
		for (; j < cols_pad; j++)
			d[j] = 0;
	}
}

/*
 * Rounding 16 floats at once, as cs_bf16 does: GCC's -O2 leaves these
 * loops scalar, and only CPUs with AVX512-BF16 or AMX (hence AVX-512F and
 * BW) come here.
 */
typedef uint32_t u32x16 __attribute__((vector_size(64)));
typedef uint16_t u16x16 __attribute__((vector_size(32)));

#if defined(__x86_64__)
#define VEC_ATTR __attribute__((target("avx512f,avx512bw")))
#else
#define VEC_ATTR
#endif

static inline VEC_ATTR u32x16 bf16_hi16(const float *x)
{
	u32x16 u;
	memcpy(&u, x, sizeof u);
	u32x16 nan = (u32x16)((u & 0x7fffffffu) > 0x7f800000u); /* all ones where NaN */
	u32x16 r = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
	return (r & ~nan) | ((u | 0x400000u) & 0xffff0000u & nan);
}

/*
 * One pair row p of B's blocks: pairs (r0[n], r1[n]) for n < Nr, zeros
 * after; a missing row (NULL) is zeros. The pair is one 32-bit word, the
 * first row's bfloat16 in its low half.
 */
static VEC_ATTR void pack_pair(uint16_t *Bp, size_t K, size_t N, size_t p,
			       const float *r0, const float *r1, size_t Nr)
{
	static const float zero[16];
	for (size_t jb = 0; jb < N; jb += 16) {
		uint32_t *row = (uint32_t *)(Bp + (jb / 16) * (K * 16) + p * 32);
		const float *a = r0 ? r0 + jb : zero, *b = r1 ? r1 + jb : zero;
		if (jb + 16 <= Nr) {
			u32x16 w = bf16_hi16(a) >> 16 | bf16_hi16(b);
			memcpy(row, &w, sizeof w);
		} else {
			for (size_t jj = 0; jj < 16; jj++)
				row[jj] = jb + jj < Nr ? bf16_hi(a[jj]) >> 16 | bf16_hi(b[jj]) : 0;
		}
	}
}

void cs_amx_pack(uint16_t *Bp, size_t K, size_t N, const float *src,
		 size_t lds, size_t Kr, size_t Nr, int trans)
{
	if (!trans) {
		for (size_t p = 0; p < K / 2; p++)
			pack_pair(Bp, K, N, p, 2 * p < Kr ? src + 2 * p * lds : NULL,
				  2 * p + 1 < Kr ? src + (2 * p + 1) * lds : NULL, Nr);
		return;
	}
	/* B[k][n] = src[n][k]: pair p of column n is src row n at 2p, 2p+1 */
	for (size_t jb = 0; jb < N; jb += 16) {
		uint32_t *blk = (uint32_t *)(Bp + (jb / 16) * (K * 16));
		for (size_t jj = 0; jj < 16; jj++) {
			size_t n = jb + jj;
			const float *s = src + n * lds;
			size_t p = 0;
			if (n < Nr) {
				for (; 2 * p + 1 < Kr; p++)
					blk[p * 16 + jj] = bf16_hi(s[2 * p]) >> 16 | bf16_hi(s[2 * p + 1]);
				if (2 * p < Kr) {
					blk[p * 16 + jj] = bf16_hi(s[2 * p]) >> 16;
					p++;
				}
			}
			for (; p < K / 2; p++)
				blk[p * 16 + jj] = 0;
		}
	}
}

VEC_ATTR void cs_amx_split(uint16_t *A, uint16_t *Bp, const float *S, size_t lds,
			   size_t rows, size_t rows_pad, size_t cols_pad)
{
	static const float zero[16];
	for (size_t p = 0; p < rows_pad / 2; p++) {
		int h0 = 2 * p < rows, h1 = 2 * p + 1 < rows;
		uint16_t *a0 = A + 2 * p * cols_pad, *a1 = a0 + cols_pad;
		for (size_t j = 0; j < cols_pad; j += 16) {
			u32x16 x = bf16_hi16(h0 ? S + 2 * p * lds + j : zero);
			u32x16 y = bf16_hi16(h1 ? S + (2 * p + 1) * lds + j : zero);
			u16x16 x16 = __builtin_convertvector(x >> 16, u16x16);
			u16x16 y16 = __builtin_convertvector(y >> 16, u16x16);
			memcpy(a0 + j, &x16, sizeof x16);
			memcpy(a1 + j, &y16, sizeof y16);
			u32x16 w = x >> 16 | y;
			memcpy(Bp + (j / 16) * (rows_pad * 16) + p * 32, &w, sizeof w);
		}
	}
}
