/* Decoding: a response from all [MASK] (or from a given caption) to tokens,
 * a few positions per forward pass (docs/decoding.md).
 *
 * Each step runs one forward pass over the batch, predicts x0 at every
 * position (argmax, or Gumbel-max at a temperature) with its confidence (the
 * softmax probability of x0), and unmasks the n most confident masked
 * positions of the current block. Then
 *   refine (ReDiff, Sec. 3.4): every position unmasked in an EARLIER step
 *     takes the current x0 (optionally only where confidence >= tau, and
 *     only the most confident top_frac of those);
 *   remask (LLaDA's low-confidence remasking): unmasked tokens are frozen.
 *
 * The per-step selection is a pure function of (logits or x0 and confidence,
 * current tokens), rd_decode_select, so it is tested without a model. The
 * Gumbel noise of a sample comes from the stream (seed, RD_RNG_DECODE, step,
 * sample id): a sample decodes to the same tokens alone, in any batch, on
 * any rank. */
#ifndef RD_MODEL_DECODE_H
#define RD_MODEL_DECODE_H

#include <stdint.h>

#include "model/vlm.h"

typedef enum { RD_DECODE_REFINE = 0, RD_DECODE_REMASK = 1 } rd_decode_mode;

typedef struct {
  int steps;            /* forward passes S, 1 .. L */
  rd_decode_mode mode;
  int block;            /* semi-autoregressive block length; 0 (or >= L): one block */
  double temperature;   /* 0: argmax; > 0: Gumbel-max on logits / temperature */
  double tau;           /* refine: revise an earlier token only where confidence >= tau */
  double top_frac;      /* refine: of those, only the most confident fraction, (0, 1] */
  uint64_t seed;        /* of the Gumbel noise */
  int32_t mask_id;      /* the [MASK] token */
  int32_t eos_id;       /* [EOS]: the one special token that may be predicted */
  int n_special;        /* ids below this other than eos_id are never predicted */
} rd_decode_opts;

/* refine, argmax, one block, tau 0, top_frac 1, seed 0, and the special ids
 * of io/vocab.h (mask 0, eos 1, four specials). steps is left 0: set it. */
void rd_decode_opts_default(rd_decode_opts *o);
/* RD_EINVAL naming the bad option for a response of L tokens. */
int rd_decode_check(const rd_decode_opts *o, int L);
/* "refine" / "remask" <-> the mode; parse gives RD_EINVAL on anything else. */
int rd_decode_mode_parse(const char *s, rd_decode_mode *mode);
const char *rd_decode_mode_name(rd_decode_mode mode);

/* Where step `step` (0-based) of the plan stands: blocks of `block` tokens
 * (the last one shorter), steps spread over blocks like tokens over steps
 * (the remainder to the first blocks). */
typedef struct {
  int block;     /* index of the block decoded at this step */
  int lo, hi;    /* its positions [lo, hi) */
  int k;         /* this step's index inside the block, 0 .. steps-1 */
  int steps;     /* steps the block gets */
} rd_decode_stepinfo;
int rd_decode_plan(const rd_decode_opts *o, int L, int step, rd_decode_stepinfo *si);
/* Tokens unmasked at a step: ceil(n_masked / steps_left), which spreads the
 * remainder of n_masked / steps over the first steps. */
int rd_decode_count(int n_masked, int steps_left);

/* One change of one sample at one step. old_tok == mask_id: the position was
 * unmasked; otherwise an earlier token was revised. */
typedef struct {
  int32_t step, pos, old_tok, new_tok;
} rd_decode_event;

/* The trajectory of one sample: its events in order of step, then unmasked
 * before revised, then position. */
typedef struct {
  int n, cap;
  rd_decode_event *ev; /* [n] */
} rd_decode_traj;
void rd_decode_traj_free(rd_decode_traj *t);

/* x0 [L] and confidence [L] of one sample from its logits [L, Vp]. Ids at or
 * past V, mask_id and the other specials except eos_id are never chosen;
 * confidence is x0's softmax probability over the ids that may be chosen
 * (at temperature 1). With temperature > 0, x0 = argmax(logits / T + g),
 * g ~ Gumbel(0, 1) from (seed, RD_RNG_DECODE, step, sample_id), drawn in
 * the order position, then id. Ties go to the lowest id. gap [L] (may be
 * NULL) gets how far x0 won by: the best score (logit, or logit / T + g)
 * minus the runner-up's. */
void rd_decode_predict(const rd_decode_opts *o, const float *logits, int L, int V, int Vp, int step,
                       int64_t sample_id, int32_t *x0, float *conf, float *gap);

/* One step's update of one sample's tokens x [L] (mask_id = still masked)
 * given x0 and conf: unmasks the rd_decode_count(masked in [si->lo, si->hi),
 * si->steps - si->k) most confident masked positions of the block (ties to
 * the lower position), then in refine mode revises the earlier tokens.
 * work: [2 L] ints of scratch. traj (may be NULL) gets the events.
 * *n_unmasked, *n_changed (may be NULL) get the counts. */
int rd_decode_select(const rd_decode_opts *o, const rd_decode_stepinfo *si, int step, int L,
                     const int32_t *x0, const float *conf, int32_t *x, int *work, rd_decode_traj *traj,
                     int *n_unmasked, int *n_changed);

/* How close one step's decisions for one sample come to going the other
 * way, for the tokens x [L] BEFORE rd_decode_select updates them, in logit
 * units: the smallest error in the logits that could swap the confidences
 * at the edge of the positions unmasked (and, in refine, at tau and at the
 * top_frac edge), or the token of a position the step sets (its gap from
 * rd_decode_predict). Logits that
 * differ by rounding (another BLAS kernel, another tensor-parallel split)
 * can change a decision only where this is of the order of that rounding:
 * a decode whose every step has a margin well above it gives the same
 * tokens. INFINITY when the step decides nothing. work: [L] ints. */
double rd_decode_margin(const rd_decode_opts *o, const rd_decode_stepinfo *si, int L, const int32_t *x,
                        const float *conf, const float *gap, int *work);

/* A batch of images to caption. */
typedef struct {
  int B;
  const uint8_t *images;    /* [B, H, W, 3], or NULL with features */
  const float *features;    /* [B, Np, Dv], or NULL with images */
  const int64_t *sample_id; /* [B] ids naming each sample's noise */
  const int32_t *init;      /* [B, L] starting tokens, mask_id where undecided; NULL: all masked */
} rd_decode_input;

typedef struct {
  int32_t *tokens;          /* [B, L] the raw decoded tokens (caller's memory) */
  rd_decode_traj *traj;     /* [B] per-sample trajectories, or NULL */
  int64_t forward_passes;   /* added to: one per step */
  float *margin;            /* [B] each sample's smallest rd_decode_margin over the steps, or NULL */
} rd_decode_output;

/* Decodes the batch with o->steps forward passes (B <= m->max_batch). */
int rd_decode(rd_vlm *m, const rd_decode_opts *o, const rd_decode_input *in, rd_decode_output *out);

/* Length of the caption in tokens[L]: the position of the first eos_id, or L. */
int rd_decode_caption_len(const int32_t *tokens, int L, int32_t eos_id);

#endif
