/*
 * nn.h - the layers of the model: forward and backward by hand.
 *
 * Legend: B sequences in a batch, T_b the length of sequence b, N = sum
 * T_b packed tokens, C channels, V items, P positions (max length), L
 * layers, NH heads, hs = C / NH, M masked (scored) positions, A = NH *
 * sum_b T_b^2 attention weights.
 *
 * Every layer is a pair <layer>_forward / <layer>_backward, outputs (or
 * gradients) first. Backward functions accumulate (+=) into the gradients
 * of their inputs and parameters, so the caller zeroes them once per step;
 * the exceptions say so. All matrix products go through cs_sgemm.
 * Threads: the losses over the catalogue (cs_tiedce_*, cs_crossentropy_*)
 * split their item tiles or rows between OpenMP threads, each running its
 * products on one OpenBLAS thread, and so do attention's (sequence, head)
 * blocks where they are many (cs_attention_forward); the elementwise and
 * row-wise loops (LayerNorm, GELU, dropout, residual) run over OpenMP
 * threads in fixed chunks where they are large, each value computed the
 * same way whichever thread takes it; the other loops run on the calling
 * thread, OpenBLAS threading their products. Shares and the order of the
 * sums follow from the thread count, so the results are a function of
 * the inputs, the seed and the thread count.
 */
#ifndef CS_NN_H
#define CS_NN_H

#include <stddef.h>
#include <stdint.h>
#include "rng.h"

/* ------------------------------------------------------------ layers */

/* out (N, C) = wte[tok] + wpe[pos]; tok, pos (N); wte (V, C); wpe (P, C). */
void cs_embed_forward(float *out, const uint32_t *tok, const uint32_t *pos,
		      const float *wte, const float *wpe, size_t N, size_t C);
void cs_embed_backward(float *dwte, float *dwpe, const float *dout,
		       const uint32_t *tok, const uint32_t *pos, size_t N,
		       size_t C);

/* LayerNorm over C, eps 1e-12 as BERT. out, inp (N, C); mean, rstd (N). */
#define CS_LN_EPS 1e-12f
void cs_layernorm_forward(float *out, float *mean, float *rstd,
			  const float *inp, const float *w, const float *b,
			  size_t N, size_t C);
void cs_layernorm_backward(float *dinp, float *dw, float *db,
			   const float *dout, const float *inp, const float *w,
			   const float *mean, const float *rstd, size_t N,
			   size_t C);

/* out (N, OC) = inp (N, C) @ w (OC, C)^T + b (OC); b may be NULL. */
void cs_linear_forward(float *out, const float *inp, const float *w,
		       const float *b, size_t N, size_t C, size_t OC);
/* dinp (N, C), dw (OC, C), db (OC) += ...; any of them may be NULL. */
void cs_linear_backward(float *dinp, float *dw, float *db, const float *dout,
			const float *inp, const float *w, size_t N, size_t C,
			size_t OC);
/* The same with dinp written (=), not added to: for a gradient that has
 * no other source, so that nobody need zero it first. */
void cs_linear_backward_set(float *dinp, float *dw, float *db, const float *dout,
			    const float *inp, const float *w, size_t N, size_t C,
			    size_t OC);

/*
 * Multi-head self-attention over packed sequences: token i of sequence b
 * attends to every token of b (bidirectional) and to nothing else, which is
 * BERT's padding mask without the padding. qkv (N, 3C) holds the query,
 * key and value of each token; off (B+1) the token offsets of the
 * sequences. att (A) receives the softmax weights, per sequence then head
 * a (T_b, T_b) row-major block; attd (A) the weights after dropout with
 * probability p (attm (A) the dropout scale, 0 or 1/(1-p)); out (N, C)
 * the heads' outputs side by side. rng NULL or p == 0: no dropout.
 * causal: token i attends only to tokens 0..i of its sequence (SASRec);
 * the upper triangle is skipped (computed and back-propagated by blocks
 * of queries against the keys up to the block's end): the weights past
 * the diagonal are 0 within those blocks and not written beyond, so the
 * backward pass takes the same flag.
 *
 * Threads: where the weights are many (A >= 65536) and the caller is not
 * in a parallel region, the (sequence, head) blocks run in parallel over
 * the OpenMP threads, each product on one OpenBLAS thread; each block's
 * arithmetic is the same whichever thread runs it. The softmax, its scale and the dropout are
 * one pass over a row while it is in cache; the dropout draws are those
 * of cs_dropout_forward over the whole A in order (the skipped ones
 * skipped), and rng ends A draws on.
 */
void cs_attention_forward(float *out, float *att, float *attd, float *attm,
			  const float *qkv, const size_t *off, size_t B,
			  size_t C, size_t NH, int causal, float p, cs_nn_rng *rng);
/*
 * The same in eval mode (no dropout, no weights kept) for M queries only:
 * token mpos[i] attends to the tokens of its sequence (causal: up to
 * itself); its heads' outputs go to row i of out (M, C). w (T) is scratch
 * for one query's weights, T the longest sequence. Scalar loops: a query
 * at a time, for scoring a few positions of each sequence.
 */
void cs_attention_forward_at(float *out, float *w, const float *qkv, const size_t *off,
			     size_t B, const size_t *mpos, size_t M, size_t C, size_t NH,
			     int causal);
/* dqkv (N, 3C) is written, not added to; datt (A) is scratch (overwritten);
 * causal as given to the forward pass. */
void cs_attention_backward(float *dqkv, float *datt, const float *dout,
			   const float *qkv, const float *att,
			   const float *attd, const float *attm,
			   const size_t *off, size_t B, size_t C, size_t NH, int causal);
/* A for these sequences. */
size_t cs_attention_size(const size_t *off, size_t B, size_t NH);

/*
 * GELU, the tanh approximation of BERT's modeling.py (and of PyTorch's
 * gelu(approximate='tanh')): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
 */
void cs_gelu_forward(float *out, const float *inp, size_t n);
/* dinp (n) written, not added to. */
void cs_gelu_backward(float *dinp, const float *inp, const float *dout,
		      size_t n);

/*
 * Inverted dropout: out = inp * mask, mask 0 with probability p else
 * 1/(1-p). rng NULL or p == 0: out = inp, mask = 1. out may be inp.
 */
void cs_dropout_forward(float *out, float *mask, const float *inp, size_t n,
			float p, cs_nn_rng *rng);
/* dinp (n) = dout * mask: written, not added to. */
void cs_dropout_backward(float *dinp, const float *dout, const float *mask,
			 size_t n);

/* out (n) = a + b; backward is dout added to both. */
void cs_residual_forward(float *out, const float *a, const float *b,
			 size_t n);
void cs_residual_backward(float *da, float *db, const float *dout, size_t n);

/* out (M, C) = inp[idx[m]]; idx (M) rows of inp (N, C). */
void cs_gather_forward(float *out, const float *inp, const size_t *idx,
		       size_t M, size_t C);
void cs_gather_backward(float *dinp, const float *dout, const size_t *idx,
			size_t M, size_t C);

/*
 * Softmax cross-entropy, mean over M rows of logits (M, V) with targets
 * tgt (M). Items below v0 (the reserved pad and mask ids) are left out of
 * the softmax, as if their logits were -inf: they get probability 0 and
 * gradient 0. lse (M) receives each row's log-sum-exp over [v0, V).
 * Returns the mean loss (summed in double); targets must lie in [v0, V).
 */
double cs_crossentropy_forward(float *lse, const float *logits,
			      const uint32_t *tgt, size_t M, size_t V,
			      size_t v0);
/* dlogits (M, V) = dloss * (softmax - onehot) / M; overwritten, not +=. */
void cs_crossentropy_backward(float *dlogits, const float *logits,
			      const float *lse, const uint32_t *tgt, size_t M,
			      size_t V, size_t v0, float dloss);

/*
 * The same loss over tied logits z = h (M, C) w (V, C)^T + bias (V),
 * computed a tile of items at a time (in parallel over OpenMP threads,
 * each product on one OpenBLAS thread) so that z is never stored whole:
 * the forward pass keeps only lse (M), the backward one recomputes the
 * scores it needs. Where C is a multiple of 32 the products run in
 * bfloat16 (amx.h) on AMX tiles, else with AVX512-BF16, where the CPU has
 * them and CS_KERNEL allows (auto, amx; auto, bf16: cpu.h), else in FP32
 * through OpenBLAS. scratch holds cs_tiedce_scratch(M, C) floats (the
 * count depends on omp_get_max_threads(), which must not change between
 * the call that sized it and the calls that use it). The backward pass
 * adds into dh (M, C), dw (V, C) and dbias (V); dw or dbias may be NULL.
 * Same thread count, same bits.
 */
size_t cs_tiedce_scratch(size_t M, size_t C);
/* "AMX bfloat16", "AVX512-BF16" or "FP32": how the products run for hidden size C. */
const char *cs_tiedce_kernel(size_t C);
double cs_tiedce_forward(float *lse, float *scratch, const float *h,
			 const float *w, const float *bias, const uint32_t *tgt,
			 size_t M, size_t C, size_t V, size_t v0);
void cs_tiedce_backward(float *dh, float *dw, float *dbias, float *scratch,
			const float *h, const float *w, const float *bias,
			const float *lse, const uint32_t *tgt, size_t M,
			size_t C, size_t V, size_t v0, float dloss);

/* The largest |x[i]| of n finite values (0 for none): as an integer
 * maximum of the bits without the sign, which orders finite floats as
 * their magnitudes do, so that it runs as vector code. */
float cs_absmax(const float *x, size_t n);

/* y[i] = exp(x[i]), vectorised, relative error below 2e-7. */
void cs_nn_expf(float *y, const float *x, size_t n);

/*
 * The exp-bound loops (GELU, softmax cross-entropy, cs_nn_expf) have an
 * SSE2 version, an AVX2 one and an AVX-512F one, picked at run time.
 * cs_nn_simd(0) forces the baseline, cs_nn_simd(1) (the default) takes
 * the best; for tests.
 */
void cs_nn_simd(int best);

#endif
