#include "stages/run/infer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/ckpt.h"
#include "io/core/err.h"
#include "io/core/fs.h"
#include "io/vocab.h"

int rd_infer_init(rd_vlm *m, const rd_stage_env *env, int max_batch, int feature_dim) {
  int32_t prompt[64];
  int n_prompt = 0;
  RD_TRY(rd_stage_prompt(env, prompt, &n_prompt));
  return rd_vlm_init_tp(m, &env->cfg.model, rd_vocab_size(&env->vocab), prompt, n_prompt, max_batch, feature_dim,
                        env->cfg.train.seed, &env->grid.tp);
}

int rd_infer_load(rd_vlm *m, const rd_stage_env *env, const char *ckpt, char *loaded, size_t n_loaded,
                  long long *step) {
  int n;
  rd_vlm_tensors(m, &n);
  rd_ckpt_tensor *ct = rd_calloc((size_t)n, sizeof *ct, "the checkpoint table");
  if (!ct) return RD_ENOMEM;
  rd_infer_ckpt_table(m, 0, ct);
  rd_ckpt_meta meta = {0};
  meta.vocab_hash = rd_vocab_hash(&env->vocab);
  char path[RD_PATH_MAX];
  snprintf(path, sizeof path, "%s", ckpt);
  int s;
  if (rd_fs_isdir(ckpt)) {
    s = rd_ckpt_load_latest(ckpt, ct, n, &meta, env->grid.world.mpi, path, sizeof path);
  } else if (!rd_fs_exists(ckpt)) {
    s = rd_err(RD_EINVAL, "checkpoint %s does not exist", ckpt);
  } else {
    s = rd_ckpt_load(ckpt, ct, n, &meta, env->grid.world.mpi);
  }
  if (s < 0) rd_err_wrap(s, "loading %s", ckpt);
  if (s == RD_OK) {
    if (loaded) snprintf(loaded, n_loaded, "%s", path);
    if (step) *step = (long long)meta.step;
  }
  rd_ckpt_meta_free(&meta);
  free(ct);
  return s;
}

void rd_infer_decode_opts(const rd_config *cfg, rd_decode_mode mode, int steps, rd_decode_opts *o) {
  rd_decode_opts_default(o);
  o->mode = mode;
  o->steps = steps;
  o->block = cfg->eval.block;
  o->temperature = cfg->eval.temperature;
  o->tau = cfg->eval.refine_tau;
  o->top_frac = cfg->eval.refine_frac;
  o->seed = cfg->train.seed;
  o->mask_id = RD_TOK_MASK;
  o->eos_id = RD_TOK_EOS;
  o->n_special = RD_TOK_NSPECIAL;
}

void rd_infer_ckpt_table(const rd_vlm *m, int with_moments, rd_ckpt_tensor *ct) {
  int n;
  const rd_tensor *tab = rd_vlm_tensors(m, &n);
  for (int i = 0; i < n; i++) {
    rd_ckpt_tensor *c = &ct[i];
    memset(c, 0, sizeof *c);
    c->name = tab[i].name;
    c->ndim = tab[i].ndim;
    for (int d = 0; d < tab[i].ndim; d++) c->shape[d] = tab[i].shape[d];
    int ax = tab[i].split;
    c->split_axis = ax >= 0 && tab[i].local[ax] < tab[i].shape[ax] ? ax : -1;
    if (c->split_axis >= 0) {
      c->slab_offset = tab[i].slab_offset;
      c->slab_count = tab[i].local[ax];
    }
    c->param = m->params + tab[i].offset;
    c->m = with_moments ? m->adam_m + tab[i].offset : NULL;
    c->v = with_moments ? m->adam_v + tab[i].offset : NULL;
  }
}

int rd_infer_caption(void *ctx, const rd_decode_input *in, rd_decode_output *out) {
  rd_infer_decoder *d = ctx;
  return rd_decode(d->m, &d->o, in, out);
}

int rd_infer_predict(void *ctx, int B, const uint8_t *images, const float *features, const int32_t *x,
                     int32_t *x0) {
  rd_vlm *m = ctx;
  rd_batch b = {B, images, features, x, NULL, NULL, NULL, 0.0f};
  RD_TRY(rd_vlm_forward(m, &b, NULL));
  rd_decode_opts o;
  rd_decode_opts_default(&o);
  o.mask_id = RD_TOK_MASK, o.eos_id = RD_TOK_EOS, o.n_special = RD_TOK_NSPECIAL;
  float *conf = malloc((size_t)m->L * sizeof *conf);
  if (!conf) return rd_err(RD_ENOMEM, "out of memory for the predictions");
  const float *logits = rd_vlm_logits(m);
  for (int j = 0; j < B; j++)
    rd_decode_predict(&o, logits + (size_t)j * m->L * m->Vp, m->L, m->V, m->Vp, 0, 0, x0 + (size_t)j * m->L, conf,
                      NULL);
  free(conf);
  return RD_OK;
}
