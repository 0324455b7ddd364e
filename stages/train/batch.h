/* Batch builders: every training stage is weighted token cross-entropy
 * (docs/objectives.md). A builder turns each sample's response into input
 * tokens x, targets y and weights w; the model only computes
 * sum_i w_i * CE(logits_i, y_i). Stages differ only here.
 *
 * Every random draw is keyed by (seed, kind, step, sample_id), so a sample's
 * noise does not depend on which rank or which batch slot holds it. Weights
 * already include the 1/B_global batch average, so per-rank losses add up to
 * the global mean. */
#ifndef RD_STAGES_TRAIN_BATCH_H
#define RD_STAGES_TRAIN_BATCH_H

#include <stdint.h>

/* Token types of Stage I (Eq. 2). */
enum { RD_TYPE_CLEAN = 0, RD_TYPE_MASK = 1, RD_TYPE_SYNTAX = 2, RD_TYPE_HALLUC = 3, RD_NTYPES = 4 };

#define RD_MASK_EPS 1e-3

typedef struct {
  uint64_t seed;
  int64_t step;
  int L;          /* response length (gen_len) */
  int mask_id;    /* [MASK] */
  int batch_size; /* global batch, for the 1/B average */
} rd_batch_ctx;

/* Eq. 1 for one sample. r0: [L] clean response (EOS-padded); writes x, y, w
 * [L]. Returns the masking rate p actually used. `kind` selects the RNG
 * stream (RD_RNG_MASK for training, RD_RNG_EVALMASK for held-out loss). */
double rd_batch_mask(const rd_batch_ctx *c, uint32_t kind, int64_t sample_id, const int32_t *r0,
                     int32_t *x, int32_t *y, float *w);

/* Stage I options (config section stage1). */
typedef struct {
  double replace_prob; /* q */
  int dynamic_rate;    /* q = min(t, replace_prob) */
  int syntax;          /* inject syntax noise */
  int hallucination;   /* inject hallucinated spans */
  double halluc_frac;  /* fraction of samples that get their hallucinated span */
  int vocab_size;      /* ordinary tokens are ids [RD_TOK_NSPECIAL, vocab_size) */
} rd_stage1_opts;

/* Eq. 2 and 3 for one sample. r0 [L] clean response; halluc [L] the same
 * caption with one fact changed at [span_start, span_start + span_len), or
 * NULL. Masks as rd_batch_mask, then on the still-visible positions puts the
 * hallucinated tokens (for a halluc_frac share of samples) and replaces others
 * by random ordinary tokens with probability q. type [L] receives RD_TYPE_*
 * per position. Weights: 1/(p N_type) for each position of
 * a present type, so every present type adds its mean cross-entropy / p; the
 * four terms are summed, and divided by the global batch. */
double rd_batch_stage1(const rd_batch_ctx *c, const rd_stage1_opts *o, uint32_t kind, int64_t sample_id,
                       const int32_t *r0, const int32_t *halluc, int span_start, int span_len, int32_t *x,
                       int32_t *y, float *w, int8_t *type);

#endif
