/*
 * optim.h - AdamW with linear warmup and linear decay, and gradient
 * clipping by global norm: flat loops over one parameter buffer.
 *
 * The update is torch.optim.AdamW's (decoupled weight decay, bias-corrected
 * moments), not BERT's AdamWeightDecayOptimizer, which skips the bias
 * correction. Clipping is torch.nn.utils.clip_grad_norm_'s: the gradients
 * are scaled by max_norm / (norm + 1e-6) when that is below 1.
 */
#ifndef CS_OPTIM_H
#define CS_OPTIM_H

#include <stddef.h>

typedef struct cs_adamw {
	float lr;           /* peak learning rate [1e-4] */
	float beta1, beta2; /* [0.9, 0.999] */
	float eps;          /* [1e-8] */
	float weight_decay; /* [0.01], on the tensors the model says */
	float clip;         /* max global gradient norm, 0 = off [1.0] */
	long warmup;        /* steps of linear warmup [100] */
	long total;         /* steps until the rate reaches 0, 0 = no decay */
} cs_adamw;

/* The defaults in brackets above (BERT4Rec's run_beauty.sh and BERT's
 * create_optimizer: lr 1e-4, 100 warmup steps, decay 0.01, clip 1.0). */
void cs_adamw_default(cs_adamw *o);

/*
 * Learning rate of step t (0-based): lr (t+1) / warmup during warmup,
 * then lr (total - t) / (total - warmup), never below 0.
 */
float cs_adamw_lr(const cs_adamw *o, long t);

/* Euclidean norm of g (n), accumulated in double. */
double cs_grad_norm(const float *g, size_t n);

/* The factor clipping multiplies the gradients by (1 if no clipping). */
float cs_clip_scale(const cs_adamw *o, double norm);

/*
 * One AdamW update of p (n) with gradients gscale * g, moments m and v,
 * learning rate lr, weight decay wd (0 for biases and LayerNorms), t the
 * 1-based step count for the bias correction.
 */
void cs_adamw_update(const cs_adamw *o, float *p, const float *g, float *m,
		     float *v, size_t n, float lr, float wd, float gscale,
		     long t);

#endif
