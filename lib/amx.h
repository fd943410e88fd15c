/*
 * amx.h - matrix products in bfloat16 (fp32 sums): on Intel AMX tiles, or
 * with AVX512-BF16's vdpbf16ps (Zen 4 and 5, Cooper Lake, Sapphire Rapids).
 *
 * The output layer's products (items x 64) run several times faster so
 * than FP32 sgemm on the same core. Inputs are rounded to bfloat16
 * (8 bits of mantissa, cs_bf16 of cpu.h), products summed in FP32, as
 * mixed-precision training does elsewhere. Which one runs, if any, is the
 * caller's choice from cpu.h (cs_cpu_kernel, cs_kernel_supported).
 *
 * Layouts. A is row-major bfloat16. B (K, N) is packed by cs_amx_pack:
 * each block of 16 columns holds K/2 rows of 16 pairs (B[2p][n],
 * B[2p+1][n]); blocks follow each other bstride elements apart. M, N and K
 * must be multiples of 32: callers pad with zeros. The scorer (score.c)
 * packs the item embeddings the same way, as B^T.
 */
#ifndef CS_AMX_H
#define CS_AMX_H

#include <stddef.h>
#include <stdint.h>
#include "cpu.h"

/*
 * Non-zero where this file's products are built (GCC on x86-64 Linux);
 * elsewhere they abort, and callers take their FP32 paths.
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define CS_AMX_BUILT 1
#else
#define CS_AMX_BUILT 0
#endif

/*
 * The tile configuration every AMX user here loads (_tile_loadconfig):
 * palette 1, all eight tiles 16 rows of 64 bytes.
 */
typedef struct cs_amx_tilecfg {
	uint8_t palette, start_row, reserved[14];
	uint16_t colsb[16];
	uint8_t rows[16];
} cs_amx_tilecfg;

static inline void cs_amx_tilecfg_init(cs_amx_tilecfg *c)
{
	*c = (cs_amx_tilecfg){ .palette = 1 };
	for (int i = 0; i < 8; i++) {
		c->rows[i] = 16;
		c->colsb[i] = 64;
	}
}

/*
 * dst (rows_pad, cols_pad), row stride cols_pad = src (rows, cols) in
 * bfloat16, zeros beyond; trans: dst is src transposed (src is then
 * (cols, rows) as stored, stride lds).
 */
void cs_bf16_copy(uint16_t *dst, size_t rows_pad, size_t cols_pad,
		  const float *src, size_t lds, size_t rows, size_t cols,
		  int trans);

/*
 * Pack B (K, N) for cs_amx_gemm: B[k][n] = src[k * lds + n], or
 * src[n * lds + k] when trans; zeros for k >= Kr or n >= Nr. K and N are
 * the padded sizes (multiples of 32); bstride = K * 16.
 */
void cs_amx_pack(uint16_t *Bp, size_t K, size_t N, const float *src,
		 size_t lds, size_t Kr, size_t Nr, int trans);

/*
 * S (rows_pad, cols_pad), stride lds, whose rows from rows on count as
 * zeros, both as A (row-major, stride cols_pad) and packed as B (K =
 * rows_pad, N = cols_pad), in one pass.
 */
void cs_amx_split(uint16_t *A, uint16_t *Bp, const float *S, size_t lds,
		  size_t rows, size_t rows_pad, size_t cols_pad);

/*
 * C (M, N) = A (M, K) B (K, N), or C += when acc, or C = bias + A B when
 * bias (N, every row) is not NULL. A has row stride lda, C row stride ldc;
 * B's 16-column blocks start bstride apart at Bp (which may point at pair
 * row k0 / 2 of a larger packed matrix). cs_amx_gemm on AMX tiles (only
 * where cs_kernel_supported(CS_KERNEL_AMX)), cs_bf16_gemm with vdpbf16ps
 * (CS_KERNEL_BF16); the same sums, in their own orders.
 */
void cs_amx_gemm(size_t M, size_t N, size_t K, const uint16_t *A, size_t lda,
		 const uint16_t *Bp, size_t bstride, float *C, size_t ldc,
		 int acc, const float *bias);
void cs_bf16_gemm(size_t M, size_t N, size_t K, const uint16_t *A, size_t lda,
		  const uint16_t *Bp, size_t bstride, float *C, size_t ldc,
		  int acc, const float *bias);

#endif
