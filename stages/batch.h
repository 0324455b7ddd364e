/* Batch builders: every training stage is weighted token cross-entropy
 * (DESIGN section 5). A builder turns each sample's response into input
 * tokens x, targets y and weights w; the model only computes
 * sum_i w_i * CE(logits_i, y_i). Stages differ only here.
 *
 * Every random draw is keyed by (seed, kind, step, sample_id), so a sample's
 * noise does not depend on which rank or which batch slot holds it. Weights
 * already include the 1/B_global batch average, so per-rank losses add up to
 * the global mean. */
#ifndef RD_STAGES_BATCH_H
#define RD_STAGES_BATCH_H

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

#endif
