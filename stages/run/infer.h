/* What the decoding stages (generate, eval) share: a trained model loaded
 * for inference, and decoding options from the command line or config. */
#ifndef RD_STAGES_RUN_INFER_H
#define RD_STAGES_RUN_INFER_H

#include <stddef.h>

#include "io/ckpt.h"
#include "model/decode.h"
#include "model/vlm.h"
#include "stages/run/stage.h"

/* rd_vlm_init from the config's model section, the vocabulary and prompt of
 * env (rd_stage_vocab first), for batches of up to max_batch; feature_dim as
 * in rd_vlm_init. Collective over env's world. */
int rd_infer_init(rd_vlm *m, const rd_stage_env *env, int max_batch, int feature_dim);
/* Loads the parameters (no optimizer state) of ckpt: a checkpoint file, or a
 * checkpoint folder (its LATEST, falling back as rd_ckpt_load_latest does).
 * Returns 1 when the folder holds no checkpoint. loaded (may be NULL) gets
 * the file's path, *step (may be NULL) its step. */
int rd_infer_load(rd_vlm *m, const rd_stage_env *env, const char *ckpt, char *loaded, size_t n_loaded,
                  long long *step);

/* The checkpoint view of the model's tensor table: ct [n tensors] points
 * into params (and the AdamW moments when with_moments). A tensor split by
 * tensor parallelism is this rank's slab of the full tensor along its split
 * axis; the file holds the full tensor, so any tp reads it back. */
void rd_infer_ckpt_table(const rd_vlm *m, int with_moments, rd_ckpt_tensor *ct);

/* Decoding options from the config (eval.block, eval.temperature,
 * eval.refine_tau, eval.refine_frac, train.seed): the same for eval and
 * draft, so drafts are the captions the evaluated model would write. */
void rd_infer_decode_opts(const rd_config *cfg, rd_decode_mode mode, int steps, rd_decode_opts *o);

/* An rd_captioner (stages/eval/evalset.h): rd_decode with the model and
 * options of ctx, an rd_infer_decoder. */
typedef struct {
  rd_vlm *m;
  rd_decode_opts o;
} rd_infer_decoder;
int rd_infer_caption(void *ctx, const rd_decode_input *in, rd_decode_output *out);
/* An rd_predictor (stages/eval/evalset.h) of ctx, an rd_vlm: one logits-only
 * forward (collective over tp), then argmax over the ids decoding may
 * choose at every position. */
int rd_infer_predict(void *ctx, int B, const uint8_t *images, const float *features, const int32_t *x,
                     int32_t *x0);

#endif
