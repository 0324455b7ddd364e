/* `rediff stage1`: foundational revision training (the paper's Sec. 3.2,
 * Eq. 2 and 3), and `rediff mask`: the mask-trained baseline, base continued
 * with Eq. 1 for the same number of steps, so the two differ only in the
 * objective. Both start from the base model's final checkpoint. */
#include <stdio.h>

#include "io/core/err.h"
#include "io/core/rng.h"
#include "io/vocab.h"
#include "stages/commands.h"
#include "stages/run/rundir.h"
#include "stages/train/train.h"

int rd_build_stage1(const rd_trainer *t, const rd_stage1_opts *o, const rd_batch_ctx *c,
                    const rd_shard_batch *data, int64_t i, int eval, int32_t *x, int32_t *y, float *w) {
  const int32_t *halluc = data->halluc ? data->halluc + i * c->L : NULL;
  int start = data->halluc_span ? data->halluc_span[2 * i] : 0;
  int len = data->halluc_span ? data->halluc_span[2 * i + 1] : 0;
  rd_batch_stage1(c, o, eval ? RD_RNG_EVALMASK : RD_RNG_MASK, data->sample_id[i], data->captions + i * c->L,
                  halluc, start, len, x, y, w, t->types + i * c->L);
  return RD_OK;
}

rd_stage1_opts rd_stage1_opts_of(const rd_stage_env *env) {
  const rd_stage1_cfg *s = &env->cfg.stage1;
  rd_stage1_opts o = {s->replace_prob, s->dynamic_rate, s->syntax, s->hallucination, s->halluc_frac,
                      env->has_vocab ? rd_vocab_size(&env->vocab) : 0};
  return o;
}

static int build_stage1(const rd_trainer *t, const rd_batch_ctx *c, const rd_shard_batch *data, int64_t i,
                        int eval, int32_t *x, int32_t *y, float *w) {
  return rd_build_stage1(t, t->spec.build_ctx, c, data, i, eval, x, y, w);
}

static int run(const rd_cli *cli, const char *stage, rd_build_fn build) {
  static const char *const known[] = {"stop-at", NULL};
  RD_TRY(rd_cli_check_opts(cli, known));
  if (cli->n_args) return rd_err(RD_EUSAGE, "'%s' takes no arguments", stage);
  long stop_at;
  RD_TRY(rd_cli_opt_int(cli, "stop-at", 0, &stop_at));
  rd_stage_env env;
  int s = rd_stage_begin(&env, cli);
  if (s == RD_OK && rd_done_exists(env.cfg.run_dir, stage, 0)) {
    if (env.is_root) printf("%s: done already (%s/done/%s)\n", stage, env.cfg.run_dir, stage);
  } else {
    if (s == RD_OK) s = rd_stage_agree(&env, rd_stage_vocab(&env));
    if (s == RD_OK && !rd_done_exists(env.cfg.run_dir, "base", 0))
      s = rd_err(RD_EINVAL, "%s starts from the base model, but %s/done/base is missing: run `rediff base` first", stage,
                 env.cfg.run_dir);
    rd_stage1_opts o = rd_stage1_opts_of(&env);
    rd_train_spec spec = {.stage = stage, .steps = env.cfg.stage1.steps, .init_from = "ckpt/base", .build = build, .build_ctx = &o, .stop_at = stop_at};
    if (s == RD_OK) s = rd_train_run(&env, &spec);
  }
  rd_stage_end(&env);
  return s;
}

int rd_cmd_stage1(const rd_cli *cli) { return run(cli, "stage1", build_stage1); }

int rd_cmd_mask(const rd_cli *cli) { return run(cli, "mask", rd_build_mask); }
