#include "stages/train/batch.h"

#include "io/core/rng.h"
#include "io/vocab.h"

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

double rd_batch_stage1(const rd_batch_ctx *c, const rd_stage1_opts *o, uint32_t kind, int64_t sample_id,
                       const int32_t *r0, const int32_t *halluc, int span_start, int span_len, int32_t *x,
                       int32_t *y, float *w, int8_t *type) {
  /* The masking draws come first and in the same order as rd_batch_mask, so
   * a sample is masked the same way by base and stage1 at the same step. */
  rd_rng r;
  rd_rng_init(&r, c->seed, kind, (uint64_t)c->step, (uint64_t)sample_id);
  double t = rd_rng_uniform(&r);
  double p = (1.0 - RD_MASK_EPS) * t + RD_MASK_EPS;
  int8_t *tp = type;
  for (int i = 0; i < c->L; i++) {
    int masked = rd_rng_uniform(&r) < p;
    x[i] = masked ? c->mask_id : r0[i];
    y[i] = r0[i];
    tp[i] = masked ? RD_TYPE_MASK : RD_TYPE_CLEAN;
  }
  /* The noise has its own stream so that switching a kind of noise off
   * leaves the masks unchanged (the ablation compares like with like). */
  rd_rng n;
  rd_rng_init(&n, c->seed, kind == RD_RNG_EVALMASK ? RD_RNG_EVALNOISE : RD_RNG_NOISE, (uint64_t)c->step,
              (uint64_t)sample_id);
  int use_halluc = o->hallucination && halluc && span_len > 0 && rd_rng_uniform(&n) < o->halluc_frac;
  if (use_halluc) {
    for (int i = span_start; i < span_start + span_len && i < c->L; i++)
      if (tp[i] == RD_TYPE_CLEAN && halluc[i] != r0[i]) {
        x[i] = halluc[i];
        tp[i] = RD_TYPE_HALLUC;
      }
  }
  double q = o->dynamic_rate && t < o->replace_prob ? t : o->replace_prob;
  int n_ordinary = o->vocab_size - RD_TOK_NSPECIAL;
  if (o->syntax && n_ordinary > 1) {
    for (int i = 0; i < c->L; i++) {
      if (tp[i] != RD_TYPE_CLEAN || rd_rng_uniform(&n) >= q) continue;
      /* A uniformly random ordinary token other than the true one. */
      int tok = RD_TOK_NSPECIAL + (int)rd_rng_below(&n, (uint32_t)(n_ordinary - 1));
      if (tok >= r0[i] && r0[i] >= RD_TOK_NSPECIAL) tok++;
      x[i] = tok;
      tp[i] = RD_TYPE_SYNTAX;
    }
  }
  int count[RD_NTYPES] = {0};
  for (int i = 0; i < c->L; i++) count[tp[i]]++;
  for (int i = 0; i < c->L; i++)
    w[i] = (float)(1.0 / (p * count[tp[i]] * c->batch_size));
  return p;
}
