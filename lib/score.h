/*
 * score.h - the top K items for hidden states: the output layer's scores
 * (h @ w^T + bias) made a tile of items at a time and selected as they are
 * made, on all threads, so that the (M, V) score matrix is never written.
 *
 * The score of item j for a row h (C) is, in single precision, the fused
 * multiply-adds s = fma(h[c], w[j][c], s) for c = 0 .. C-1 from s = 0,
 * then s + bias[j]. Every kernel gives exactly these values, so they all
 * select the same items; the order is best score first, ties by the
 * smaller id (the order of cs_topk).
 *
 * Kernels (chosen once, at cs_scorer_new):
 *   c          portable C (fmaf), any CPU
 *   avx512     AVX-512F, 16 items per register, 8 rows x 32 items a tile
 *   bf16       AVX512-BF16 (vdpbf16ps) on item embeddings rounded to
 *              bfloat16 once, then the items within a proven error bound of
 *              the K-th best re-scored as above: the same result as fp32
 * Packing the weights for a kernel costs more than scoring a few rows, so
 * a call of fewer than 8 rows on a scorer not yet packed scores straight
 * from w (the same scores), and the first larger call packs, as does the
 * first call after 32 rows in all were scored straight from w (a service
 * fed one history at a time: one call pays for the packing, the rest are
 * about twice as fast).
 * "auto" (or NULL) takes the environment variable CS_KERNEL if set, else
 * the fastest kernel this CPU runs (amx, else bf16, else avx512, else c);
 * "fp32" is avx512 where the CPU has it, else c. Asking for a kernel the
 * CPU lacks is an error.
 */
#ifndef CS_SCORE_H
#define CS_SCORE_H

#include <stddef.h>
#include <stdint.h>
#include "cs.h"

typedef struct cs_scorer cs_scorer;

/*
 * A scorer over items first .. V-1 of w (V, C) and bias (V). w is packed
 * for the kernel and also read as it is (exact scores of candidates), so
 * it must outlive the scorer; bias is copied. kernel: see above. Returns
 * NULL with err filled on failure.
 */
cs_scorer *cs_scorer_new(const float *w, const float *bias, size_t V, size_t C,
			 size_t first, const char *kernel, cs_error *err);
void cs_scorer_free(cs_scorer *s);
/* The kernel in use: "c", "avx512" or "bf16". */
const char *cs_scorer_kernel(const cs_scorer *s);
/* Non-zero if this CPU (and OS) runs the named kernel. */
int cs_scorer_kernel_supported(const char *kernel);

/*
 * The k best items of each row of h (M, C), best first, into ids and vals
 * (M, k) and their count into n (M): k, or fewer when the catalogue
 * (less the excluded items) is smaller. seen (may be NULL): items never to
 * return for row i are seen[seen_off[i] .. seen_off[i+1]-1], in any order
 * (either NULL: none).
 * Runs on the OpenMP threads (omp_get_max_threads), the items split
 * between them; one call at a time on a scorer. Returns 0, or -1 with err
 * filled (out of memory).
 */
int cs_scorer_topk(cs_scorer *s, const float *h, size_t M, size_t k,
		   const size_t *seen_off, const uint32_t *seen, uint32_t *ids,
		   float *vals, size_t *n, cs_error *err);

/*
 * The rank (from 0) of item target[i] in row i of h (M, C) into rank (M):
 * how many items first .. V-1 other than the target, and not among the
 * row's seen items (seen_off, seen as for cs_scorer_topk), score at least
 * as high as it, the scores as defined above; items that tie with the
 * target count ahead of it (as cs_rank_full). No score matrix is written:
 * the kernels hand over only the scores that reach the target's. Needs a
 * single-precision kernel (c or avx512: "fp32"). Threads and calls as
 * cs_scorer_topk. A target outside first .. V-1 ranks 0. Returns 0, or
 * -1 with err filled.
 */
int cs_scorer_rank(cs_scorer *s, const float *h, size_t M, const uint32_t *target,
		   const size_t *seen_off, const uint32_t *seen, size_t *rank,
		   cs_error *err);
/* The score of item j (< V) for row h (C), as the kernels make it. */
float cs_scorer_score(const cs_scorer *s, const float *h, size_t j);

/* All V scores of one row h (C) as the kernels define them (for tests). */
void cs_scorer_scores(const cs_scorer *s, const float *h, float *out);

/*
 * The k best items of score (V) from first on, best first, skipping those
 * with excl[item] == stamp (excl may be NULL). Returns how many (< k only
 * if the catalogue is smaller).
 */
size_t cs_topk(const float *score, size_t V, size_t first, size_t k,
	       const uint32_t *excl, uint32_t stamp, uint32_t *ids, float *vals);

#endif
