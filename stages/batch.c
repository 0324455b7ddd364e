#include "stages/batch.h"

#include "io/rng.h"

double rd_batch_mask(const rd_batch_ctx *c, uint32_t kind, int64_t sample_id, const int32_t *r0,
                     int32_t *x, int32_t *y, float *w) {
  rd_rng r;
  rd_rng_init(&r, c->seed, kind, (uint64_t)c->step, (uint64_t)sample_id);
  double t = rd_rng_uniform(&r);
  double p = (1.0 - RD_MASK_EPS) * t + RD_MASK_EPS;
  /* 1/(p L) on masked positions (LLaDA's Eq. 1 with L the full response
   * length including EOS padding), then the batch average. */
  float wm = (float)(1.0 / (p * c->L * c->batch_size));
  for (int i = 0; i < c->L; i++) {
    int masked = rd_rng_uniform(&r) < p;
    x[i] = masked ? c->mask_id : r0[i];
    y[i] = r0[i];
    w[i] = masked ? wm : 0.0f;
  }
  return p;
}
